// What crosses between the daemon, the ingest helper and a worker (docs/ingest.md, "The worker").
//
//   daemon -> helper   (control socket, SOCK_SEQPACKET)  ScanRequest + the directory descriptor
//   helper -> daemon   (control socket)                  Started + the result pipe's read end and an
//                                                        empty memfd; later Finished (how the worker ended)
//   worker -> daemon   (result pipe)                     records: findings, skips, env files, env reads,
//                                                        and last a summary
//
// The daemon and the helper are one program image (the helper is a fork), so the control messages
// are plain structs. The result stream comes from a process that read hostile input, so the
// daemon decodes it as untrusted: every record and string is bounded, and anything malformed ends
// the scan as incomplete. No record has room for a value: a finding carries a redacted preview,
// lengths and a keyed fingerprint.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace codexvault::ingest {

inline constexpr std::uint32_t kRequestMagic = 0x43564e31;  // "CVN1"

// Limits of one scan, as the daemon clamps them (the caller may only lower them).
struct ScanLimits {
    std::uint64_t max_files = 100000;
    std::uint64_t max_entries = 1000000;
    std::uint64_t max_file_bytes = 8ULL << 20;
    std::uint64_t max_total_bytes = 8ULL << 30;
    std::uint32_t max_depth = 64;
    std::uint32_t cpu_seconds = 300;          // RLIMIT_CPU of the worker
    std::uint64_t memory_bytes = 1ULL << 30;  // RLIMIT_AS of the worker
    std::uint32_t wall_seconds = 600;         // the helper kills the worker after this
    std::uint64_t max_findings = 100000;      // findings streamed back in all
};

struct ScanRequest {
    std::uint32_t magic = kRequestMagic;
    std::uint32_t include_low = 0;
    std::uint64_t id = 0;
    std::uint8_t key[32]{};  // the fingerprint key (vault sub-key 7); wiped by both sides after use
    ScanLimits limits;
    std::uint32_t read_hardlinked = 0;
    std::uint32_t reserved = 0;
};
static_assert(std::is_trivially_copyable_v<ScanRequest>);

// How a worker ended, as the helper saw it.
enum class WorkerEnd : std::uint32_t {
    Completed = 0,      // exited 0 after writing its summary
    CpuLimit = 1,       // SIGXCPU / SIGKILL at RLIMIT_CPU
    WallTimeLimit = 2,  // killed by the helper at wall_seconds
    MemoryLimit = 3,    // an allocation failed under RLIMIT_AS
    SandboxFailed = 4,  // could not confine itself (seccomp, rlimits): nothing was read
    BadDirectory = 5,   // the descriptor is not a readable directory
    Killed = 6,         // another signal (SIGSYS: a system call outside its filter)
    Failed = 7,         // another non-zero exit
    Refused = 8,        // the helper could not start it (fork, pipe)
};
std::string_view to_string(WorkerEnd end) noexcept;

// Worker exit codes the helper maps to WorkerEnd.
inline constexpr int kExitSandbox = 10;
inline constexpr int kExitOutOfMemory = 11;
inline constexpr int kExitBadDirectory = 12;
inline constexpr int kExitFailed = 13;

struct HelperMessage {
    enum Kind : std::uint32_t { Started = 1, Finished = 2 };
    std::uint32_t kind = Started;
    WorkerEnd end = WorkerEnd::Completed;
    std::uint64_t id = 0;
    std::int32_t status = 0;  // exit code, or the signal number when killed
    std::uint32_t reserved = 0;
    std::uint64_t peak_rss_kib = 0;  // of the worker (getrusage of the reaped child)
    std::uint64_t cpu_usec = 0;      // user + system time of the worker
};
static_assert(std::is_trivially_copyable_v<HelperMessage>);

// ---- the result stream --------------------------------------------------------------------------

enum class RecordType : std::uint8_t { Finding = 1, FileNote = 2, Skip = 3, EnvFile = 4, EnvRead = 5, Summary = 6 };

inline constexpr std::size_t kMaxRecordBytes = 64 * 1024;
inline constexpr std::size_t kMaxPathBytes = 4096;
inline constexpr std::size_t kMaxShortString = 128;  // rule ids, families, providers, previews, names
inline constexpr std::size_t kMaxEnvNames = 256;     // per env file

struct WireFinding {
    std::string path;
    std::string rule_id;
    std::string family;
    std::string provider;
    std::uint8_t confidence = 0;  // scan::Confidence
    std::uint32_t line = 0;
    std::uint32_t column = 0;
    std::uint32_t length = 0;
    std::string preview;
    double entropy = 0;
    std::string fingerprint;  // 32 hex digits
};

struct WireFileNote {  // a file whose scan was incomplete
    std::string path;
    std::uint8_t truncation = 0;  // scan::Truncation
    std::uint8_t file_truncated = 0;
};

struct WireSkip {
    std::string path;
    std::uint8_t reason = 0;  // SkipReason
    std::int32_t error = 0;
};

struct WireEnvFile {
    std::string path;
    std::uint8_t kind = 0;  // scan::EnvFileKind
    std::vector<std::string> names;
};

struct WireSummary {
    std::uint64_t files = 0;
    std::uint64_t directories = 0;
    std::uint64_t entries = 0;
    std::uint64_t bytes_read = 0;
    std::uint64_t truncated_files = 0;
    std::uint64_t skipped = 0;
    std::uint64_t incomplete_files = 0;
    std::uint64_t findings = 0;          // found (also those beyond max_findings)
    std::uint64_t findings_dropped = 0;  // not sent: over max_findings
    std::uint8_t stopped = 0;            // StopReason
    std::int32_t landlock_abi = 0;       // > 0: confined with this ABI; <= 0: unavailable (-errno)
};

// Appends one record to `out`.
void encode(std::string& out, const WireFinding& r);
void encode(std::string& out, const WireFileNote& r);
void encode(std::string& out, const WireSkip& r);
void encode(std::string& out, const WireEnvFile& r);
void encode_env_read(std::string& out, std::string_view name);
void encode(std::string& out, const WireSummary& r);

// Everything a result stream held, decoded and checked.
struct DecodedResult {
    std::vector<WireFinding> findings;
    std::vector<WireFileNote> notes;
    std::vector<WireSkip> skips;
    std::vector<WireEnvFile> env_files;
    std::vector<std::string> env_reads;
    std::optional<WireSummary> summary;  // absent: the worker ended before its summary
    std::string error;                   // set when the stream was malformed (decoding stopped there)
};

// Decodes a whole stream. Never throws on bad input (only std::bad_alloc); a record cut short at
// the end (a worker killed mid-write) is ignored and leaves no summary.
DecodedResult decode_stream(std::string_view stream, std::size_t max_records);

}  // namespace codexvault::ingest
