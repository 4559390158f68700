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
#include <sodium.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "lib/auditcore/chain.hpp"
#include "lib/auditcore/checkpoint.hpp"
#include "lib/auditcore/record.hpp"
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
                 "usage: audit_verify_bench [--records N] [--checkpoint-every K] [--segment-mib M] [--rounds R]\n");
    return 2;
}

double seconds_since(Clock::time_point start)
{
    return std::chrono::duration<double>(Clock::now() - start).count();
}

}  // namespace

int main(int argc, char** argv)
{
    Options opt;
    for (int i = 1; i < argc; ++i) {
        const std::string_view arg = argv[i];
        std::uint64_t value = 0;
        if (i + 1 >= argc || !parse_u64(argv[i + 1], value)) {
            return usage();
        }
        ++i;
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
    std::sort(times.begin(), times.end());
    const double median = times[times.size() / 2];
    const double best = times.front();
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
    std::printf("verify: %10.0f records/s median, %.0f best of %d  (%.3f s median; %.0f MiB/s)   target >= %.0f: %s\n",
                per_s(static_cast<double>(total_records), median), per_s(static_cast<double>(total_records), best),
                opt.rounds, median, static_cast<double>(total_bytes) / 1048576.0 / median, kTargetVerifyPerSecond,
                per_s(static_cast<double>(total_records), median) >= kTargetVerifyPerSecond ? "met" : "NOT met");
    std::printf("verified: %llu records, %llu checkpoints, head seq %llu checked: %s\n",
                static_cast<unsigned long long>(report.records), static_cast<unsigned long long>(report.checkpoints),
                static_cast<unsigned long long>(report.head_seq), report.head_checked ? "yes" : "no");
    std::printf("(figures are information only; timing never fails this program)\n");
    return 0;
}
