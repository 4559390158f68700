// The "one fdatasync per record" baseline for the durable-call benchmark: appends one record-sized
// write (default 250 bytes, about one audit record) to a fresh O_APPEND file in DIR and fdatasyncs
// it, back to back, and reports the latency of each append+fdatasync and the records/s this allows.
// scripts/run-bench.sh runs it in the folder that holds the vault daemon's state, in the same run,
// so the durable decisions/s of the daemon can be set against it. The file is removed afterwards.
//
//   fdatasync_bench --dir DIR [--seconds S] [--record-bytes N] [--warmup N] [--json]
//
// Also prints what DIR lives on: the filesystem type from /proc/self/mountinfo (matched by the
// folder's device number), the statfs f_type magic and the mount point; on tmpfs an fdatasync
// costs next to nothing, so a figure from there says little about a disk.
//
// Without --dir it prints where its figures are (scripts/run-bench.sh, run by `make bench`) and
// exits 0: `make bench` also runs every benchmark binary without arguments.
// Exit status: 0 when measured, 1 when the file could not be written or synced, 2 on bad usage.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

namespace {

struct Options {
    std::string dir;
    double seconds = 2.0;
    std::size_t record_bytes = 250;
    unsigned warmup = 20;
    bool json = false;
};

struct FsInfo {
    std::string type = "unknown";  // from mountinfo
    std::string mount_point = "?";
    std::string source = "?";
    unsigned long magic = 0;  // statfs f_type
};

std::int64_t now_ns()
{
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

double percentile_us(const std::vector<std::int64_t>& sorted, double p)
{
    if (sorted.empty())
        return 0.0;
    auto rank = static_cast<std::size_t>(std::ceil(p / 100.0 * static_cast<double>(sorted.size())));
    rank = std::clamp<std::size_t>(rank, 1, sorted.size());
    return static_cast<double>(sorted[rank - 1]) / 1000.0;
}

// mountinfo escapes blanks and backslashes as \ooo.
std::string unescape_mount_field(std::string_view in)
{
    std::string out;
    for (std::size_t i = 0; i < in.size(); ++i) {
        if (in[i] == '\\' && i + 3 < in.size()) {
            const std::string oct(in.substr(i + 1, 3));
            char* end = nullptr;
            const long v = std::strtol(oct.c_str(), &end, 8);
            if (end == oct.c_str() + 3) {
                out += static_cast<char>(v);
                i += 3;
                continue;
            }
        }
        out += in[i];
    }
    return out;
}

FsInfo describe_filesystem(const std::string& dir)
{
    FsInfo info;
    struct statfs sfs {};
    if (::statfs(dir.c_str(), &sfs) == 0)
        info.magic = static_cast<unsigned long>(sfs.f_type);
    struct stat st {};
    if (::stat(dir.c_str(), &st) != 0)
        return info;
    const std::string dev = std::to_string(major(st.st_dev)) + ":" + std::to_string(minor(st.st_dev));
    std::ifstream in("/proc/self/mountinfo");
    std::string line;
    // The last mount of the device wins (a later mount stacks over an earlier one).
    while (std::getline(in, line)) {
        std::istringstream fields(line);
        std::string id, parent, majmin, root, mount_point;
        if (!(fields >> id >> parent >> majmin >> root >> mount_point) || majmin != dev)
            continue;
        const auto sep = line.find(" - ");
        if (sep == std::string::npos)
            continue;
        std::istringstream tail(line.substr(sep + 3));
        std::string type, source;
        tail >> type >> source;
        info.type = type;
        info.source = unescape_mount_field(source);
        info.mount_point = unescape_mount_field(mount_point);
    }
    return info;
}

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
        "usage: fdatasync_bench --dir DIR [--seconds S] [--record-bytes N] [--warmup N] [--json]\n"
        "  Appends N bytes (default 250) to a new O_APPEND file in DIR and fdatasyncs it, back to back,\n"
        "  for S seconds (default 2) after N unrecorded warm-up rounds (default 20); prints the\n"
        "  latency of append+fdatasync and the records/s that one fdatasync per record allows.\n",
        out);
}

int fail(const char* what, const std::string& path)
{
    std::fprintf(stderr, "fdatasync_bench: %s %s: %s\n", what, path.c_str(), std::strerror(errno));
    return 1;
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

    const FsInfo fs = describe_filesystem(opt.dir);
    std::string path = opt.dir + "/fdatasync-bench.XXXXXX";
    const int fd = ::mkostemp(path.data(), O_APPEND | O_CLOEXEC);
    if (fd < 0)
        return fail("cannot create a file in", opt.dir);

    // A record-like line; the sequence number changes so no two writes are alike.
    std::string record(opt.record_bytes, 'r');
    record.back() = '\n';
    std::uint64_t seq = 0;
    auto append_and_sync = [&]() -> bool {
        char head[24];
        const int n = std::snprintf(head, sizeof head, "%020llu", static_cast<unsigned long long>(++seq));
        std::memcpy(record.data(), head, std::min<std::size_t>(static_cast<std::size_t>(n), record.size() - 1));
        std::size_t done = 0;
        while (done < record.size()) {
            const ssize_t w = ::write(fd, record.data() + done, record.size() - done);
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0)
                return false;
            done += static_cast<std::size_t>(w);
        }
        return ::fdatasync(fd) == 0;
    };

    int status = 0;
    std::vector<std::int64_t> latencies;
    latencies.reserve(1 << 16);
    std::int64_t start = 0;
    std::int64_t end = 0;
    for (unsigned i = 0; i < opt.warmup && status == 0; ++i) {
        if (!append_and_sync())
            status = fail("cannot append to and fdatasync", path);
    }
    if (status == 0) {
        start = now_ns();
        const std::int64_t deadline = start + static_cast<std::int64_t>(opt.seconds * 1e9);
        std::int64_t t0 = start;
        while (t0 < deadline) {
            if (!append_and_sync()) {
                status = fail("cannot append to and fdatasync", path);
                break;
            }
            const std::int64_t t1 = now_ns();
            latencies.push_back(t1 - t0);
            t0 = t1;
        }
        end = t0;
    }
    ::close(fd);
    ::unlink(path.c_str());
    if (status != 0)
        return status;

    std::sort(latencies.begin(), latencies.end());
    const double wall_s = static_cast<double>(end - start) / 1e9;
    const double rate = wall_s > 0.0 ? static_cast<double>(latencies.size()) / wall_s : 0.0;
    const double p50 = percentile_us(latencies, 50.0);
    const double p90 = percentile_us(latencies, 90.0);
    const double p99 = percentile_us(latencies, 99.0);
    const double max = latencies.empty() ? 0.0 : static_cast<double>(latencies.back()) / 1000.0;
    if (opt.json) {
        // The field names match bus_bench's, so scripts/run-bench.sh reads both alike; a folder
        // name with a quote or backslash is not expected here and is not escaped.
        std::printf(
            "{\"label\":\"fdatasync\",\"calls\":%zu,\"errors\":0,\"wall_s\":%.3f,\"calls_per_s\":%.1f,"
            "\"p50_us\":%.1f,\"p90_us\":%.1f,\"p99_us\":%.1f,\"max_us\":%.1f,\"record_bytes\":%zu,"
            "\"fs_type\":\"%s\",\"fs_magic\":\"0x%lx\",\"mount_point\":\"%s\",\"source\":\"%s\"}\n",
            latencies.size(), wall_s, rate, p50, p90, p99, max, opt.record_bytes, fs.type.c_str(), fs.magic,
            fs.mount_point.c_str(), fs.source.c_str());
    } else {
        std::printf("fdatasync_bench: %s on %s (%s, statfs f_type 0x%lx, mounted on %s)\n", opt.dir.c_str(),
                    fs.source.c_str(), fs.type.c_str(), fs.magic, fs.mount_point.c_str());
        std::printf(
            "  append %zu B + fdatasync: %zu calls in %.2fs  %.1f records/s  p50=%.1fus p90=%.1fus p99=%.1fus "
            "max=%.1fus\n",
            opt.record_bytes, latencies.size(), wall_s, rate, p50, p90, p99, max);
    }
    return 0;
}
