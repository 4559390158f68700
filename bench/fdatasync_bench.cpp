// The "one fdatasync per record" baseline on its own: appends one record-sized write (default 250
// bytes, about one audit record) to a fresh O_APPEND file in DIR and fdatasyncs it, back to back,
// and reports the latency of each append+fdatasync and the records/s this allows. The loop itself
// is bench/bench_fdatasync.hpp's, which bus_bench's durable suite (scripts/run-bench.sh) runs in the
// folder that holds the vault daemon's state, interleaved with the daemon's durable calls, so the
// durable decisions/s of the daemon are set against it in the same run. The file is removed
// afterwards.
//
//   fdatasync_bench --dir DIR [--seconds S] [--rounds R] [--record-bytes N] [--warmup N] [--json]
//
// --rounds R splits the S seconds into R rounds and prints each figure as the median over them.
// Also prints what DIR lives on: the filesystem type from /proc/self/mountinfo (matched by the
// folder's device number), the statfs f_type magic and the mount point; on tmpfs an fdatasync
// costs next to nothing, so a figure from there says little about a disk.
//
// Without --dir it prints where its figures are (scripts/run-bench.sh, run by `make bench`) and
// exits 0: `make bench` also runs every benchmark binary without arguments.
// Exit status: 0 when measured, 1 when the file could not be written or synced, 2 on bad usage.
#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "bench/bench_fdatasync.hpp"
#include "bench/bench_stats.hpp"

namespace {

namespace bench = codexvault::bench;

struct Options {
    std::string dir;
    double seconds = 2.0;
    unsigned rounds = 1;
    std::size_t record_bytes = 250;
    unsigned warmup = 20;
    bool json = false;
};

bool parse_seconds(const char* text, double& value)
{
    char* end = nullptr;
    errno = 0;
    value = std::strtod(text, &end);
    return errno == 0 && end != text && *end == '\0' && std::isfinite(value) && value > 0.0 && value <= 600.0;
}

bool parse_count(const char* text, unsigned long long max, unsigned long long& value)
{
    char* end = nullptr;
    errno = 0;
    value = std::strtoull(text, &end, 10);
    return errno == 0 && end != text && *end == '\0' && value <= max;
}

void usage(FILE* out)
{
    std::fputs(
        "usage: fdatasync_bench --dir DIR [--seconds S] [--rounds R] [--record-bytes N] [--warmup N] [--json]\n"
        "  Appends N bytes (default 250) to a new O_APPEND file in DIR and fdatasyncs it, back to back,\n"
        "  for S seconds (default 2) in R rounds (default 1), each after N unrecorded warm-up rounds\n"
        "  (default 20); prints the latency of append+fdatasync and the records/s that one fdatasync\n"
        "  per record allows (medians over the rounds).\n",
        out);
}

}  // namespace

int main(int argc, char** argv)
{
    Options opt;
    for (int i = 1; i < argc; ++i) {
        const std::string_view arg = argv[i];
        if (arg == "-h" || arg == "--help") {
            usage(stdout);
            return 0;
        }
        if (arg == "--json") {
            opt.json = true;
            continue;
        }
        if (i + 1 >= argc) {
            std::fprintf(stderr, "fdatasync_bench: unknown option or missing value: %s\n", argv[i]);
            return 2;
        }
        const char* value = argv[++i];
        unsigned long long n = 0;
        bool ok = true;
        if (arg == "--dir") {
            opt.dir = value;
            ok = !opt.dir.empty();
        } else if (arg == "--seconds") {
            ok = parse_seconds(value, opt.seconds);
        } else if (arg == "--rounds") {
            ok = parse_count(value, 99, n) && n > 0;
            opt.rounds = static_cast<unsigned>(n);
        } else if (arg == "--record-bytes") {
            ok = parse_count(value, 1 << 20, n) && n > 0;
            opt.record_bytes = static_cast<std::size_t>(n);
        } else if (arg == "--warmup") {
            ok = parse_count(value, 1'000'000, n);
            opt.warmup = static_cast<unsigned>(n);
        } else {
            std::fprintf(stderr, "fdatasync_bench: unknown option: %s\n", argv[i - 1]);
            return 2;
        }
        if (!ok) {
            std::fprintf(stderr, "fdatasync_bench: bad value for %s: '%s'\n", argv[i - 1], value);
            return 2;
        }
    }
    if (opt.dir.empty()) {
        std::puts(
            "fdatasync_bench: the fdatasync-per-record baseline is measured by scripts/run-bench.sh (above), on\n"
            "the vault state folder's filesystem; run 'fdatasync_bench --dir DIR' to measure a folder alone.");
        return 0;
    }

    const bench::FsInfo fs = bench::describe_filesystem(opt.dir);
    bench::Rounds rounds;
    std::uint64_t calls = 0;
    double max_us = 0.0;
    const double round_seconds = opt.seconds / static_cast<double>(opt.rounds);
    for (unsigned r = 0; r < opt.rounds; ++r) {
        const bench::FdatasyncResult result =
            bench::run_fdatasync(opt.dir, round_seconds, opt.warmup, opt.record_bytes);
        if (!result.ok) {
            std::fprintf(stderr, "fdatasync_bench: %s\n", result.error.c_str());
            return 1;
        }
        rounds.add(result.sample);
        calls += result.sample.calls;
        max_us = std::max(max_us, result.sample.max_us);
    }

    if (opt.json) {
        // Medians over the rounds; a folder name with a quote or backslash is not expected here
        // and is not escaped.
        std::printf(
            "{\"label\":\"fdatasync\",\"rounds\":%u,\"calls\":%llu,\"errors\":0,\"calls_per_s\":%s,"
            "\"p50_us\":%s,\"p90_us\":%s,\"p99_us\":%s,\"max_us\":%.1f,\"record_bytes\":%zu,"
            "\"fs_type\":\"%s\",\"fs_magic\":\"0x%lx\",\"mount_point\":\"%s\",\"source\":\"%s\"}\n",
            opt.rounds, static_cast<unsigned long long>(calls), bench::fixed(rounds.calls_per_s()).c_str(),
            bench::fixed(rounds.p50_us()).c_str(), bench::fixed(rounds.p90_us()).c_str(),
            bench::fixed(rounds.p99_us()).c_str(), max_us, opt.record_bytes, fs.type.c_str(), fs.magic,
            fs.mount_point.c_str(), fs.source.c_str());
    } else {
        std::printf("fdatasync_bench: %s\n", bench::describe(opt.dir, fs).c_str());
        std::printf(
            "  append %zu B + fdatasync: %llu calls in %u round(s) of %.2fs (median of rounds shown)\n"
            "  %s records/s  p50 %s us  p90 %s us  p99 %s us  max %.1f us\n",
            opt.record_bytes, static_cast<unsigned long long>(calls), opt.rounds, round_seconds,
            bench::fixed(rounds.calls_per_s()).c_str(), bench::fixed(rounds.p50_us()).c_str(),
            bench::fixed(rounds.p90_us()).c_str(), bench::fixed(rounds.p99_us()).c_str(), max_us);
    }
    return 0;
}
