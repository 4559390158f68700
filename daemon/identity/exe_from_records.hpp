// A caller's executable from the eBPF monitor's exec records, and the rule that a caller is
// judged by the executable its process had when its bus connection appeared.
//
// The records are keyed by (pid, start time), so a reused pid never finds another process's exe.
// A record only names a file: the daemon believes it only if the path, opened in the daemon's own
// mount namespace, is still the inode (device, inode) the kernel recorded at exec. A path cut
// short, a file renamed, replaced or deleted, or a path that means something else in the caller's
// mount namespace (a bind mount in a private namespace) leaves the exe unknown, so exe and
// exe_sha256 conditions fail closed.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "daemon/identity/exe_digest.hpp"
#include "daemon/identity/exec_records.hpp"
#include "daemon/identity/subject.hpp"

namespace codexvault::identity {

// At the first pin of a connection that appeared at CLOCK_BOOTTIME `appeared_ns`. `subject`
// holds what /proc said (exe_source proc, or none when the link was closed). Returns a refusal
// when the process exec'd after its connection appeared (it kept the connection across exec,
// or handed it to a child before exec'ing: either way the program that connected is gone);
// otherwise fills in the exe from the records when /proc could not, and returns nullopt.
std::optional<std::string> exe_at_connection(ExecRecords& records, ExeDigestCache& digests, std::uint64_t appeared_ns,
                                             Subject& subject);

// At a re-read of a caller whose pinned exe came from the monitor: a refusal when its process
// runs another executable now, else `fresh` gets the pinned exe again if the records and the
// file still vouch for it, or an unknown exe.
std::optional<std::string> recheck_recorded_exe(ExecRecords& records, ExeDigestCache& digests, const Subject& pinned,
                                                Subject& fresh);

// Clears every exe field.
void forget_exe(Subject& subject);

}  // namespace codexvault::identity
