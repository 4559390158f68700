// Audit log throughput: encodes N typical records (a signed checkpoint every K records, segments
// sealed and rotated by size) in memory with the daemon's ChainWriter, then verifies the whole log
// with the offline verifier, and prints records/s for both. Nothing touches the disk.
//
//   audit_verify_bench [--records N] [--checkpoint-every K] [--segment-mib M] [--rounds R]
//
// Defaults: 1,000,000 records, K = 1,000, 64 MiB segments, 5 verification rounds (the median and
// the best are printed). Prints figures only; it never judges them (the target, >= 500,000
// records/s verified, is printed next to the figure for information). Exit status: 0 when the log
// verified, 1 when it did not (a bug), 2 on bad usage.
//
// A log on disk (scripts/run-bench.sh: the log the daemon wrote during the run, after an orderly
// stop):
//
//   audit_verify_bench --dir DIR [--pubkey FILE] [--vaultctl PATH] [--summary FILE]
//
// times `vaultctl --json audit verify --dir DIR [--pubkey FILE]` (process start included; with
// --vaultctl) and the same verification in this process (reading the segments and
// verify_directory), and prints records/s for each. --pubkey defaults to DIR/audit.pub. --summary
// appends the figures to FILE for the run's summary. Exit status: 0 when measured (a log that does
// not verify is reported, not fatal: the figures are information), 1 when the folder or the key
// cannot be read, 2 on bad usage.
#include <fcntl.h>
#include <sodium.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <fstream>
#include <iterator>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "bench/bench_stats.hpp"
#include "lib/auditcore/chain.hpp"
#include "lib/auditcore/checkpoint.hpp"
#include "lib/auditcore/record.hpp"
#include "lib/auditcore/segment_dir.hpp"
#include "lib/auditcore/verifier.hpp"

namespace {

using namespace codexvault::audit;
using Clock = std::chrono::steady_clock;

constexpr double kTargetVerifyPerSecond = 500'000.0;

struct Options {
    std::uint64_t records = 1'000'000;
    std::uint64_t checkpoint_every = 1'000;
    std::uint64_t segment_bytes = 64ULL << 20;
    int rounds = 5;
    // A log on disk.
    std::string dir;
    std::string pubkey;
    std::string vaultctl;
    std::string summary;
};

bool parse_u64(const char* text, std::uint64_t& out)
{
    char* end = nullptr;
    const unsigned long long v = std::strtoull(text, &end, 10);
    if (end == text || *end != '\0' || v == 0) {
        return false;
    }
    out = v;
    return true;
}

int usage()
{
    std::fprintf(stderr,
                 "usage: audit_verify_bench [--records N] [--checkpoint-every K] [--segment-mib M] [--rounds R]\n"
                 "       audit_verify_bench --dir DIR [--pubkey FILE] [--vaultctl PATH] [--summary FILE]\n");
    return 2;
}

double seconds_since(Clock::time_point start)
{
    return std::chrono::duration<double>(Clock::now() - start).count();
}

// ---- a log on disk ------------------------------------------------------------------------------

struct Timed {
    bool started = false;
    int exit_status = -1;  // -1: killed by a signal
    double seconds = 0.0;
    std::string output;  // stdout and stderr
    std::string error;   // when !started
};

// Runs argv[0] (a path) with stdout and stderr into a pipe; times it from spawn to reaped exit.
Timed run_timed(const std::vector<std::string>& args)
{
    Timed t;
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) {
        t.error = std::string("pipe: ") + std::strerror(errno);
        return t;
    }
    std::vector<char*> argv;
    for (const std::string& a : args) {
        argv.push_back(const_cast<char*>(a.c_str()));
    }
    argv.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, fds[1], STDOUT_FILENO);
    posix_spawn_file_actions_adddup2(&actions, fds[1], STDERR_FILENO);
    pid_t pid = 0;
    const auto start = Clock::now();
    const int r = posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    ::close(fds[1]);
    if (r != 0) {
        ::close(fds[0]);
        t.error = "cannot start " + args[0] + ": " + std::strerror(r);
        return t;
    }
    char buf[4096];
    for (;;) {
        const ssize_t n = ::read(fds[0], buf, sizeof buf);
        if (n > 0) {
            t.output.append(buf, static_cast<std::size_t>(n));
        } else if (n == 0 || errno != EINTR) {
            break;
        }
    }
    ::close(fds[0]);
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    t.seconds = seconds_since(start);
    t.started = true;
    t.exit_status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return t;
}

std::optional<PublicKey> read_key(const std::string& path)
{
    std::ifstream in(path);
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (!in.good() && !in.eof()) {
        return std::nullopt;
    }
    return parse_public_key(text);
}

int verify_on_disk(const Options& opt)
{
    namespace bench = codexvault::bench;
    const std::string pubkey = opt.pubkey.empty() ? opt.dir + "/" + kPublicKeyFileName : opt.pubkey;
    const std::optional<PublicKey> key = read_key(pubkey);
    if (!key) {
        std::fprintf(stderr, "audit_verify_bench: cannot read an audit public key from %s\n", pubkey.c_str());
        return 1;
    }
    const int dir_fd = ::open(opt.dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir_fd < 0) {
        std::fprintf(stderr, "audit_verify_bench: cannot open %s: %s\n", opt.dir.c_str(), std::strerror(errno));
        return 1;
    }

    bench::Report report("offline verify of the log this run wrote");
    report.heading("offline verify of the log this run wrote (after an orderly stop)");

    // vaultctl first, so that neither run finds the segments in the page cache only because the
    // other read them (both find them there: the daemon just wrote them).
    std::optional<Timed> tool;
    if (!opt.vaultctl.empty()) {
        std::vector<std::string> args{opt.vaultctl, "--json", "audit", "verify", "--dir", opt.dir};
        if (!opt.pubkey.empty()) {
            args.insert(args.end(), {"--pubkey", opt.pubkey});
        }
        tool = run_timed(args);
    }

    DirectoryVerification v;
    double in_process_s = 0.0;
    std::uint64_t bytes = 0;
    try {
        const auto start = Clock::now();
        v = verify_directory(dir_fd, *key);
        in_process_s = seconds_since(start);
        for (const SegmentFile& segment : v.segments) {
            struct stat st {};
            if (::fstatat(dir_fd, segment.name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) {
                bytes += static_cast<std::uint64_t>(st.st_size);
            }
        }
    } catch (const std::exception& e) {
        ::close(dir_fd);
        std::fprintf(stderr, "audit_verify_bench: %s\n", e.what());
        return 1;
    }
    ::close(dir_fd);
    const VerifyReport& r = v.report;
    const auto records = static_cast<double>(r.records);
    const std::string result = r.ok ? "ok" : "FAILED: " + describe(r.problem);

    report.line(bench::format("%s: %llu records (%llu checkpoints) in %zu segment(s), %.1f MiB; key from %s",
                              opt.dir.c_str(), static_cast<unsigned long long>(r.records),
                              static_cast<unsigned long long>(r.checkpoints), v.segments.size(),
                              static_cast<double>(bytes) / 1048576.0, pubkey.c_str()));
    if (tool) {
        if (!tool->started) {
            report.warning("WARNING: " + tool->error);
        } else {
            const std::string tool_result =
                tool->exit_status == 0 ? "ok" : bench::format("FAILED (exit %d)", tool->exit_status);
            report.figure(
                bench::Figure{"verify of this run's log, vaultctl audit verify (process start included)",
                              tool->seconds > 0 && r.records > 0 ? bench::Value(records / tool->seconds) : std::nullopt,
                              0, " records/s", std::nullopt,
                              bench::format("(%llu records in %.3f s; %s)", static_cast<unsigned long long>(r.records),
                                            tool->seconds, tool_result.c_str())});
            if (tool->exit_status != 0) {
                std::string head = tool->output.substr(0, 400);
                report.line("vaultctl said: " + head);
            }
        }
    }
    report.figure(
        bench::Figure{"verify of this run's log in this process (read + verify_directory)",
                      in_process_s > 0 && r.records > 0 ? bench::Value(records / in_process_s) : std::nullopt, 0,
                      " records/s", std::nullopt,
                      bench::format("(%llu records in %.3f s; %s)", static_cast<unsigned long long>(r.records),
                                    in_process_s, result.c_str())});
    report.line("(the in-memory verify throughput, with its target, is audit_verify_bench's without --dir)");
    report.line("");
    if (!report.append_summary(opt.summary, "")) {
        std::fprintf(stderr, "audit_verify_bench: cannot append to %s: %s\n", opt.summary.c_str(),
                     std::strerror(errno));
    }
    return 0;
}

}  // namespace

int main(int argc, char** argv)
{
    Options opt;
    for (int i = 1; i < argc; ++i) {
        const std::string_view arg = argv[i];
        if (i + 1 >= argc) {
            return usage();
        }
        ++i;
        if (arg == "--dir" || arg == "--pubkey" || arg == "--vaultctl" || arg == "--summary") {
            std::string& target = arg == "--dir"        ? opt.dir
                                  : arg == "--pubkey"   ? opt.pubkey
                                  : arg == "--vaultctl" ? opt.vaultctl
                                                        : opt.summary;
            target = argv[i];
            if (target.empty()) {
                return usage();
            }
            continue;
        }
        std::uint64_t value = 0;
        if (!parse_u64(argv[i], value)) {
            return usage();
        }
        if (arg == "--records") {
            opt.records = value;
        } else if (arg == "--checkpoint-every") {
            opt.checkpoint_every = value;
        } else if (arg == "--segment-mib") {
            opt.segment_bytes = value << 20;
        } else if (arg == "--rounds" && value <= 100) {
            opt.rounds = static_cast<int>(value);
        } else {
            return usage();
        }
    }
    if (sodium_init() < 0) {
        std::fprintf(stderr, "audit_verify_bench: sodium_init failed\n");
        return 1;
    }
    if (!opt.dir.empty()) {
        return verify_on_disk(opt);
    }

    // The audit key, as the daemon derives it from a seed (here a fixed one).
    std::array<std::uint8_t, kAuditSeedBytes> seed{};
    seed.fill(0x42);
    std::array<std::uint8_t, kAuditSecretKeyBytes> secret{};
    PublicKey pub{};
    derive_audit_keypair(seed, pub, secret);
    const CheckpointSigner signer(secret);

    // Typical records: decision/outcome pairs of a few agents using a few secrets.
    static constexpr std::array<std::string_view, 4> kExes{"/usr/bin/python3.11", "/usr/lib/node_modules/agent/bin/run",
                                                           "/opt/ide/bin/assistant", "/usr/local/bin/vaultctl"};
    static constexpr std::array<std::string_view, 4> kUnits{"agent@1.service", "agent@2.service", "user@1000.service",
                                                            "ide-helper.service"};
    static constexpr std::array<std::string_view, 6> kObjects{"openai-prod",  "anthropic-main", "github-deploy",
                                                              "aws-readonly", "gcp-ci",         "stripe-test"};
    static constexpr std::array<std::string_view, 3> kActions{"request", "inject", "status"};
    static constexpr std::array<std::string_view, 3> kReasons{"grant g-3f2a allows request to api.openai.com",
                                                              "no grant for this subject and action",
                                                              "completed: provider answered 200 in 412 ms"};

    std::vector<std::vector<std::uint8_t>> segments;
    ChainWriter writer;
    std::uint64_t clock_usec = 1'714'564'800'000'000ULL;
    std::uint64_t checkpoints = 0;
    std::vector<std::uint8_t> staging;  // begin_segment's extra records (none here)

    const auto start_segment = [&] {
        const SegmentHeaderBytes header = writer.begin_segment(clock_usec, clock_usec, staging);
        segments.emplace_back();
        segments.back().reserve(opt.segment_bytes + (1U << 20));
        segments.back().assign(header.begin(), header.end());
        segments.back().insert(segments.back().end(), staging.begin(), staging.end());
        staging.clear();
    };

    const auto encode_start = Clock::now();
    start_segment();
    std::uint64_t written = 0;
    while (written < opt.records) {
        const std::uint64_t i = written;
        RecordView r;
        r.type = i % 2 == 0 ? EventType::Decision : EventType::Outcome;
        r.decision = i % 5 == 0 ? Decision::Deny : Decision::Allow;
        r.realtime_usec = clock_usec;
        r.monotonic_usec = clock_usec - 1'714'000'000'000'000ULL;
        r.subject_known = true;
        r.uid = 1000 + static_cast<std::uint32_t>(i % 4);
        r.pid = 20000 + static_cast<std::int32_t>(i % 5000);
        r.sender = ":1.4711";
        r.exe = kExes[i % kExes.size()];
        r.unit = kUnits[i % kUnits.size()];
        r.action = kActions[i % kActions.size()];
        r.object = kObjects[i % kObjects.size()];
        r.reason = kReasons[i % kReasons.size()];
        r.grant = "g-3f2a9c";
        writer.append(r, segments.back());
        ++written;
        clock_usec += 37;
        if (writer.state().records_since_checkpoint >= opt.checkpoint_every) {
            const bool seal = writer.state().segment_bytes >= opt.segment_bytes;
            writer.append_checkpoint(signer, clock_usec, clock_usec, seal, segments.back());
            ++checkpoints;
            if (seal) {
                start_segment();
            }
        }
    }
    writer.append_checkpoint(signer, clock_usec, clock_usec, false, segments.back());
    ++checkpoints;
    const double encode_s = seconds_since(encode_start);
    const auto head = writer.head(signer);

    std::uint64_t total_bytes = 0;
    std::vector<std::span<const std::uint8_t>> spans;
    for (const auto& s : segments) {
        total_bytes += s.size();
        spans.emplace_back(s);
    }
    const std::uint64_t total_records = writer.state().next_seq - 1;

    std::vector<double> times;
    VerifyReport report;
    for (int round = 0; round < opt.rounds; ++round) {
        const auto start = Clock::now();
        report = verify_log(spans, pub, std::span<const std::uint8_t>(*head));
        times.push_back(seconds_since(start));
        if (!report.ok) {
            std::fprintf(stderr, "audit_verify_bench: the generated log did not verify: %s\n",
                         describe(report.problem).c_str());
            return 1;
        }
    }
    const double median = codexvault::bench::median(times).value_or(0.0);
    const double best = *std::min_element(times.begin(), times.end());
    const auto per_s = [](double count, double secs) {
        return secs > 0 ? count / secs : 0.0;
    };

    std::printf("== audit log throughput (in memory, one thread) ==\n");
    std::printf(
        "log: %llu records (%llu checkpoints, one per %llu records), %zu segment(s) of <= %llu MiB, "
        "%.1f MiB, %.0f bytes/record\n",
        static_cast<unsigned long long>(total_records), static_cast<unsigned long long>(checkpoints),
        static_cast<unsigned long long>(opt.checkpoint_every), segments.size(),
        static_cast<unsigned long long>(opt.segment_bytes >> 20), static_cast<double>(total_bytes) / 1048576.0,
        static_cast<double>(total_bytes) / static_cast<double>(total_records));
    std::printf("encode: %10.0f records/s  (%.3f s; ChainWriter::append + checkpoint signing)\n",
                per_s(static_cast<double>(total_records), encode_s), encode_s);
    std::printf("%s\n",
                codexvault::bench::to_line(
                    codexvault::bench::Figure{
                        "verify (in memory), median of rounds", per_s(static_cast<double>(total_records), median), 0,
                        " records/s", codexvault::bench::at_least(kTargetVerifyPerSecond),
                        codexvault::bench::format("(%.0f best of %d; %.3f s median; %.0f MiB/s)",
                                                  per_s(static_cast<double>(total_records), best), opt.rounds, median,
                                                  static_cast<double>(total_bytes) / 1048576.0 / median)})
                    .c_str());
    std::printf("verified: %llu records, %llu checkpoints, head seq %llu checked: %s\n",
                static_cast<unsigned long long>(report.records), static_cast<unsigned long long>(report.checkpoints),
                static_cast<unsigned long long>(report.head_seq), report.head_checked ? "yes" : "no");
    std::printf("(figures are information only; timing never fails this program)\n");
    return 0;
}
