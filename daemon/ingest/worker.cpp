#include "daemon/ingest/worker.hpp"

#include <fcntl.h>
#include <linux/landlock.h>
#include <seccomp.h>
#include <signal.h>
#include <sodium.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <new>
#include <set>
#include <string>
#include <system_error>

#include "daemon/ingest/walker.hpp"
#include "lib/scan/env_files.hpp"
#include "lib/scan/env_reads.hpp"
#include "lib/scan/finding_details.hpp"

namespace codexvault::ingest {
namespace {

// The kernel's ruleset attribute as of Landlock ABI 6; fields an older kernel does not know are
// left out of the size passed (net: ABI 4, scoped: ABI 6).
struct RulesetAttr {
    std::uint64_t handled_access_fs;
    std::uint64_t handled_access_net;
    std::uint64_t scoped;
};

std::uint64_t fs_rights(int abi) noexcept
{
    std::uint64_t rights = (1ULL << 13) - 1;  // ABI 1: EXECUTE .. MAKE_SYM
    if (abi >= 2) {
        rights |= 1ULL << 13;  // REFER
    }
    if (abi >= 3) {
        rights |= 1ULL << 14;  // TRUNCATE
    }
    if (abi >= 5) {
        rights |= 1ULL << 15;  // IOCTL_DEV
    }
    return rights;
}

// Everything the kernel can restrict is handled; only reading files and listing directories
// beneath the scanned directory is allowed. ABI 4 adds TCP bind/connect (none allowed), ABI 6
// scopes abstract unix sockets and signals to the worker itself.
int confine_landlock(int dir_fd) noexcept
{
    const int abi = landlock_abi();
    if (abi <= 0) {
        return abi;
    }
    RulesetAttr attr{fs_rights(abi), abi >= 4 ? 3ULL : 0ULL, abi >= 6 ? 3ULL : 0ULL};
    const std::size_t size = abi >= 6 ? sizeof attr : abi >= 4 ? 2 * sizeof(std::uint64_t) : sizeof(std::uint64_t);
    const long ruleset = ::syscall(SYS_landlock_create_ruleset, &attr, size, 0U);
    if (ruleset < 0) {
        return -errno;
    }
    struct landlock_path_beneath_attr beneath {};
    beneath.allowed_access = LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_READ_DIR;
    beneath.parent_fd = dir_fd;
    int result = abi;
    if (::syscall(SYS_landlock_add_rule, static_cast<int>(ruleset), LANDLOCK_RULE_PATH_BENEATH, &beneath, 0U) != 0 ||
        ::syscall(SYS_landlock_restrict_self, static_cast<int>(ruleset), 0U) != 0) {
        result = -errno;
    }
    ::close(static_cast<int>(ruleset));
    return result;
}

bool set_limit(int resource, rlim_t soft, rlim_t hard) noexcept
{
    const struct rlimit limit {
        soft, hard
    };
    return ::setrlimit(resource, &limit) == 0;
}

bool apply_rlimits(const ScanLimits& limits) noexcept
{
    const rlim_t cpu = std::max<rlim_t>(1, limits.cpu_seconds);
    // Descriptors: the walker holds one per directory level plus a few; nothing else opens any.
    const rlim_t files = std::min<rlim_t>(kMaxDepthLimit, limits.max_depth) + 16;
    return set_limit(RLIMIT_CORE, 0, 0) && set_limit(RLIMIT_FSIZE, 0, 0) && set_limit(RLIMIT_NOFILE, files, files) &&
           set_limit(RLIMIT_CPU, cpu, cpu + 1) &&
           set_limit(RLIMIT_AS, static_cast<rlim_t>(limits.memory_bytes), static_cast<rlim_t>(limits.memory_bytes)) &&
           set_limit(RLIMIT_NPROC, 0, 0) && set_limit(RLIMIT_MEMLOCK, 0, 0);
}

struct ReleaseFilter {
    void operator()(void* ctx) const noexcept { ::seccomp_release(ctx); }
};

// What a worker may do once it reads hostile input: read beneath its directory, allocate
// (never executable memory: PCRE2's JIT code was compiled in the helper before the fork), write
// to its result pipe, exit. Anything else kills it (SIGSYS), and the scan reports it.
bool install_filter(int result_fd) noexcept
{
    std::unique_ptr<void, ReleaseFilter> ctx(::seccomp_init(SCMP_ACT_KILL_PROCESS));
    if (!ctx || ::seccomp_attr_set(ctx.get(), SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS) < 0) {
        return false;
    }
    const auto allow = [&](int nr, std::initializer_list<scmp_arg_cmp> checks = {}) {
        return ::seccomp_rule_add_exact_array(ctx.get(), SCMP_ACT_ALLOW, nr, static_cast<unsigned>(checks.size()),
                                              checks.size() == 0 ? nullptr : checks.begin()) == 0;
    };
    const auto fd = static_cast<scmp_datum_t>(result_fd);
    constexpr scmp_datum_t kInt = 0xffffffffU;
    constexpr scmp_datum_t kWriteFlags = O_ACCMODE | O_CREAT | O_TRUNC | O_APPEND;
    bool ok = true;
    for (const int nr :
         {SCMP_SYS(read), SCMP_SYS(close), SCMP_SYS(openat2), SCMP_SYS(getdents64), SCMP_SYS(newfstatat),
          SCMP_SYS(fstat), SCMP_SYS(lseek), SCMP_SYS(brk), SCMP_SYS(munmap), SCMP_SYS(mremap), SCMP_SYS(madvise),
          SCMP_SYS(futex), SCMP_SYS(exit_group), SCMP_SYS(exit), SCMP_SYS(rt_sigreturn), SCMP_SYS(rt_sigprocmask),
          SCMP_SYS(clock_gettime), SCMP_SYS(getpid), SCMP_SYS(gettid)}) {
        ok = ok && allow(nr);
    }
    ok = ok && allow(SCMP_SYS(write), {SCMP_A0(SCMP_CMP_MASKED_EQ, kInt, fd)});
    ok = ok && allow(SCMP_SYS(openat), {SCMP_A2(SCMP_CMP_MASKED_EQ, kWriteFlags, 0)});
    ok = ok && allow(SCMP_SYS(mmap), {SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0)});
    ok = ok && allow(SCMP_SYS(mprotect), {SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0)});
    return ok && ::seccomp_load(ctx.get()) == 0;
}

// Buffered writes to the result pipe; a daemon that stopped reading ends the worker.
class Output {
public:
    explicit Output(int fd) : fd_(fd) { buffer_.reserve(kFlushAt + kMaxRecordBytes); }
    std::string& buffer() noexcept { return buffer_; }
    void maybe_flush()
    {
        if (buffer_.size() >= kFlushAt) {
            flush();
        }
    }
    void flush()
    {
        std::size_t at = 0;
        while (at < buffer_.size()) {
            const ssize_t n = ::write(fd_, buffer_.data() + at, buffer_.size() - at);
            if (n < 0 && errno == EINTR) {
                continue;
            }
            if (n <= 0) {
                ::_exit(kExitFailed);
            }
            at += static_cast<std::size_t>(n);
        }
        buffer_.clear();
    }

private:
    static constexpr std::size_t kFlushAt = 64 * 1024;
    int fd_;
    std::string buffer_;
};

WalkLimits walk_limits(const ScanRequest& request)
{
    WalkLimits limits;
    limits.max_files = request.limits.max_files;
    limits.max_entries = request.limits.max_entries;
    limits.max_file_bytes = std::max<std::uint64_t>(1, request.limits.max_file_bytes);
    limits.max_total_bytes = request.limits.max_total_bytes;
    limits.max_depth = request.limits.max_depth;
    limits.read_hardlinked = request.read_hardlinked != 0;
    return limits;
}

void scan(int dir_fd, const ScanRequest& request, scan::Scanner& scanner, Output& out, int landlock)
{
    const std::span<const std::uint8_t, scan::kFingerprintKeyBytes> key(request.key, scan::kFingerprintKeyBytes);
    WireSummary summary;
    summary.landlock_abi = landlock;
    std::set<std::string, std::less<>> reads;
    const auto visit = [&](const FileVisit& file) {
        const scan::EnvFileKind kind = scan::env_file_kind(file.name);
        scan::ScanOptions options;
        options.env_reads = kind == scan::EnvFileKind::NotEnv;
        scan::ScanResult result = scanner.scan(file.content, file.path, key, options);
        const bool incomplete = result.truncated() || file.truncated;
        summary.incomplete_files += incomplete ? 1 : 0;
        for (scan::Finding& f : result.findings) {
            if (f.confidence == scan::Confidence::Low && request.include_low == 0) {
                continue;
            }
            if (kind != scan::EnvFileKind::NotEnv) {
                scan::withhold_value(f);  // nothing computed from an env file's values leaves the worker
            }
            ++summary.findings;
            if (summary.findings > request.limits.max_findings) {
                ++summary.findings_dropped;
                continue;
            }
            encode(out.buffer(), WireFinding{std::string(file.path), f.rule_id, f.family, f.provider,
                                             static_cast<std::uint8_t>(f.confidence),
                                             static_cast<std::uint32_t>(std::min<std::size_t>(f.line, UINT32_MAX)),
                                             static_cast<std::uint32_t>(std::min<std::size_t>(f.column, UINT32_MAX)),
                                             static_cast<std::uint32_t>(std::min<std::size_t>(f.length, UINT32_MAX)),
                                             f.preview, f.entropy, f.fingerprint});
            out.maybe_flush();
        }
        if (incomplete) {
            encode(out.buffer(), WireFileNote{std::string(file.path), static_cast<std::uint8_t>(result.truncation),
                                              static_cast<std::uint8_t>(file.truncated ? 1 : 0)});
        }
        if (kind != scan::EnvFileKind::NotEnv) {
            // Names only: the values never leave env_file_variable_names.
            encode(out.buffer(), WireEnvFile{std::string(file.path), static_cast<std::uint8_t>(kind),
                                             scan::env_file_variable_names(file.content)});
        } else {
            for (auto& name : result.env_reads) {
                if (reads.size() < 4096) {
                    reads.insert(std::move(name));
                }
            }
        }
        out.maybe_flush();
    };
    const WalkSummary walked = walk(dir_fd, walk_limits(request), visit);
    for (const Skip& skip : walked.skips) {
        encode(out.buffer(), WireSkip{skip.path, static_cast<std::uint8_t>(skip.reason), skip.error});
        out.maybe_flush();
    }
    for (const std::string& name : reads) {
        encode_env_read(out.buffer(), name);
    }
    summary.files = walked.files;
    summary.directories = walked.directories;
    summary.entries = walked.entries;
    summary.bytes_read = walked.bytes_read;
    summary.truncated_files = walked.truncated_files;
    summary.skipped = walked.skipped;
    summary.stopped = static_cast<std::uint8_t>(walked.stopped);
    encode(out.buffer(), summary);
    out.flush();
}

}  // namespace

int confine_worker(int dir_fd, int result_fd, const ScanLimits& limits)
{
    if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 || ::prctl(PR_SET_DUMPABLE, 0) != 0) {
        throw std::runtime_error("ingest worker: prctl");
    }
    if (!apply_rlimits(limits)) {
        throw std::runtime_error("ingest worker: setrlimit");
    }
    const int landlock = confine_landlock(dir_fd);
    if (landlock <= 0 && landlock != -ENOSYS && landlock != -EOPNOTSUPP) {
        // Offered but refused: never scan less confined than the kernel allows.
        throw std::runtime_error("ingest worker: Landlock: " + std::string(std::strerror(-landlock)));
    }
    if (!install_filter(result_fd)) {
        throw std::runtime_error("ingest worker: seccomp filter");
    }
    return landlock;
}

int landlock_abi() noexcept
{
    const long abi = ::syscall(SYS_landlock_create_ruleset, nullptr, 0, LANDLOCK_CREATE_RULESET_VERSION);
    return abi > 0 ? static_cast<int>(abi) : -errno;
}

void run_worker(int dir_fd, int result_fd, const ScanRequest& request,
                const std::shared_ptr<const scan::Matcher>& matcher) noexcept
{
    try {
        if (::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) {
            ::_exit(kExitSandbox);
        }
        // The daemon may stop reading (it refused the result as too large): writing then fails
        // with EPIPE instead of a signal, and the worker exits.
        ::signal(SIGPIPE, SIG_IGN);
        struct stat st {};
        if (::fstat(dir_fd, &st) != 0 || !S_ISDIR(st.st_mode)) {
            ::_exit(kExitBadDirectory);
        }
        int landlock = 0;
        try {
            landlock = confine_worker(dir_fd, result_fd, request.limits);
        } catch (const std::runtime_error&) {
            ::_exit(kExitSandbox);
        }
        // Made under the filter: the Vectorscan scratch and PCRE2's JIT stack are plain memory.
        scan::Scanner scanner(matcher);
        Output out(result_fd);
        scan(dir_fd, request, scanner, out, landlock);
        ::_exit(0);
    } catch (const std::bad_alloc&) {
        ::_exit(kExitOutOfMemory);
    } catch (const std::system_error& e) {
        ::_exit(e.code().value() == ENOTDIR || e.code().value() == EACCES ? kExitBadDirectory : kExitFailed);
    } catch (...) {
        ::_exit(kExitFailed);
    }
}

}  // namespace codexvault::ingest
