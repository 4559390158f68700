#include "daemon/identity/exe_from_records.hpp"

#include <fcntl.h>
#include <sys/stat.h>

#include <climits>

#include "lib/fileio/unique_fd.hpp"

namespace codexvault::identity {
namespace {

bool same_file(const monitor::ExeRecord& a, std::uint64_t device, std::uint64_t inode)
{
    return a.dev == device && a.ino == inode;
}

std::string who(const Subject& subject)
{
    return "caller pid " + std::to_string(subject.pid) + " (connection " + subject.bus_name + ")";
}

// The record's exe into `subject` if its path names, here and now, the inode it recorded; the
// digest is of that same inode (opened by path, checked by fstat).
void take_recorded_exe(const monitor::ExeRecord& rec, ExeDigestCache& digests, Subject& subject)
{
    forget_exe(subject);
    if (rec.path_truncated || rec.path.empty() || rec.path.front() != '/') {
        return;
    }
    struct stat st {};
    if (::stat(rec.path.c_str(), &st) != 0 || !S_ISREG(st.st_mode) || st.st_dev != rec.dev || st.st_ino != rec.ino) {
        return;
    }
    subject.exe = rec.path;
    subject.exe_known = true;
    subject.exe_device = rec.dev;
    subject.exe_inode = rec.ino;
    subject.exe_source = ExeSource::monitor;
    if (auto known = digests.cached(st)) {
        subject.exe_sha256 = std::move(*known);
        return;
    }
    // O_NONBLOCK: a FIFO swapped in after the stat must not stall the loop; digest() checks that
    // the opened file is still (device, inode).
    const UniqueFd file(::open(rec.path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW | O_NONBLOCK));
    subject.exe_sha256 = file ? digests.digest(file.get(), rec.dev, rec.ino).value_or("") : std::string();
}

}  // namespace

void forget_exe(Subject& subject)
{
    subject.exe.clear();
    subject.exe_known = false;
    subject.exe_device = 0;
    subject.exe_inode = 0;
    subject.exe_sha256.clear();
    subject.exe_source = ExeSource::none;
}

std::optional<std::string> exe_at_connection(ExecRecords& records, ExeDigestCache& digests, std::uint64_t appeared_ns,
                                             Subject& subject)
{
    const monitor::ExeHistory history = records.exe_history(subject.pid, subject.start_time_ticks, appeared_ns);
    if (history.exec_since) {
        return who(subject) + " exec'd " + (history.now ? history.now->path : std::string("another program")) +
               " after its connection appeared on the bus: a connection kept across exec, or handed to another "
               "process, is not trusted; reconnect";
    }
    if (history.uncertain) {
        // Lost records: an exec after the connection appeared may be among them.
        forget_exe(subject);
        return std::nullopt;
    }
    if (subject.exe_known) {
        // /proc answered; the records, when they know, must agree (they cannot disagree without
        // an exec since the appearance, refused above, unless a record was lost).
        if (history.at && !same_file(*history.at, subject.exe_device, subject.exe_inode)) {
            return who(subject) + " runs " + subject.exe + " but ran " + history.at->path +
                   " when its connection appeared; reconnect";
        }
        return std::nullopt;
    }
    if (history.at && history.now && same_file(*history.at, history.now->dev, history.now->ino)) {
        take_recorded_exe(*history.at, digests, subject);
    }
    return std::nullopt;
}

std::optional<std::string> recheck_recorded_exe(ExecRecords& records, ExeDigestCache& digests, const Subject& pinned,
                                                Subject& fresh)
{
    const monitor::ExeHistory history = records.exe_history(pinned.pid, pinned.start_time_ticks, UINT64_MAX);
    if (history.now && !history.uncertain && !same_file(*history.now, pinned.exe_device, pinned.exe_inode)) {
        return who(pinned) + " runs another executable (" + history.now->path + ") than when it was pinned (" +
               pinned.exe + "): a connection kept across exec is not trusted; reconnect";
    }
    if (!history.now || history.uncertain) {
        forget_exe(fresh);  // evicted or lost: no longer vouched for
        return std::nullopt;
    }
    take_recorded_exe(*history.now, digests, fresh);
    return std::nullopt;
}

}  // namespace codexvault::identity
