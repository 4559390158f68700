// The "one fdatasync per record" baseline, shared by fdatasync_bench (a folder on its own) and
// bus_bench's durable suite (interleaved with the daemon's durable calls, in the folder that holds
// the daemon's state): append one record-sized write (default 250 bytes, about one audit record)
// to a fresh O_APPEND file and fdatasync it, back to back; the latency of each append+fdatasync is
// the sample, and the records/s of the loop is the ceiling that one fdatasync per record allows.
//
// describe_filesystem() says what a folder lives on (type and source from /proc/self/mountinfo,
// matched by the folder's device number; the statfs f_type magic; the mount point): on tmpfs an
// fdatasync costs next to nothing, so a figure from there says little about a disk.
#pragma once

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "bench/bench_stats.hpp"

namespace codexvault::bench {

struct FsInfo {
    std::string type = "unknown";  // from mountinfo
    std::string mount_point = "?";
    std::string source = "?";
    unsigned long magic = 0;  // statfs f_type
};

// mountinfo escapes blanks and backslashes as \ooo.
inline std::string unescape_mount_field(std::string_view in)
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

inline FsInfo describe_filesystem(const std::string& dir)
{
    FsInfo info;
    struct statfs sfs {};
    if (::statfs(dir.c_str(), &sfs) == 0) {
        info.magic = static_cast<unsigned long>(sfs.f_type);
    }
    struct stat st {};
    if (::stat(dir.c_str(), &st) != 0) {
        return info;
    }
    const std::string dev = std::to_string(major(st.st_dev)) + ":" + std::to_string(minor(st.st_dev));
    std::ifstream in("/proc/self/mountinfo");
    std::string line;
    // The last mount of the device wins (a later mount stacks over an earlier one).
    while (std::getline(in, line)) {
        std::istringstream fields(line);
        std::string id, parent, majmin, root, mount_point;
        if (!(fields >> id >> parent >> majmin >> root >> mount_point) || majmin != dev) {
            continue;
        }
        const auto sep = line.find(" - ");
        if (sep == std::string::npos) {
            continue;
        }
        std::istringstream tail(line.substr(sep + 3));
        std::string type, source;
        tail >> type >> source;
        info.type = type;
        info.source = unescape_mount_field(source);
        info.mount_point = unescape_mount_field(mount_point);
    }
    return info;
}

// "DIR on SOURCE (TYPE, statfs f_type 0x..., mounted on MOUNT)"
inline std::string describe(const std::string& dir, const FsInfo& fs)
{
    return format("%s on %s (%s, statfs f_type 0x%lx, mounted on %s)", dir.c_str(), fs.source.c_str(), fs.type.c_str(),
                  fs.magic, fs.mount_point.c_str());
}

struct FdatasyncResult {
    bool ok = false;
    std::string error;  // when !ok: what failed, with errno's text
    Sample sample;
};

// One run: `warmup` unrecorded append+fdatasync rounds, then the loop for `seconds`, on a new file
// in `dir` that is removed afterwards.
inline FdatasyncResult run_fdatasync(const std::string& dir, double seconds, unsigned warmup,
                                     std::size_t record_bytes = 250)
{
    FdatasyncResult result;
    std::string path = dir + "/fdatasync-bench.XXXXXX";
    const int fd = ::mkostemp(path.data(), O_APPEND | O_CLOEXEC);
    if (fd < 0) {
        result.error = "cannot create a file in " + dir + ": " + std::strerror(errno);
        return result;
    }
    // A record-like line; the sequence number changes so no two writes are alike.
    std::string record(std::max<std::size_t>(record_bytes, 1), 'r');
    record.back() = '\n';
    std::uint64_t seq = 0;
    auto append_and_sync = [&]() -> bool {
        char head[24];
        const int n = std::snprintf(head, sizeof head, "%020llu", static_cast<unsigned long long>(++seq));
        std::memcpy(record.data(), head, std::min<std::size_t>(static_cast<std::size_t>(n), record.size() - 1));
        std::size_t done = 0;
        while (done < record.size()) {
            const ssize_t w = ::write(fd, record.data() + done, record.size() - done);
            if (w < 0 && errno == EINTR) {
                continue;
            }
            if (w <= 0) {
                return false;
            }
            done += static_cast<std::size_t>(w);
        }
        return ::fdatasync(fd) == 0;
    };

    bool ok = true;
    for (unsigned i = 0; i < warmup && ok; ++i) {
        ok = append_and_sync();
    }
    std::vector<std::int64_t> latencies;
    latencies.reserve(1 << 16);
    std::int64_t start = now_ns();
    std::int64_t t0 = start;
    if (ok) {
        const std::int64_t deadline = start + static_cast<std::int64_t>(seconds * 1e9);
        while (t0 < deadline) {
            if (!append_and_sync()) {
                ok = false;
                break;
            }
            const std::int64_t t1 = now_ns();
            latencies.push_back(t1 - t0);
            t0 = t1;
        }
    }
    if (!ok) {
        result.error = "cannot append to and fdatasync " + path + ": " + std::strerror(errno);
    }
    ::close(fd);
    ::unlink(path.c_str());
    if (ok) {
        result.ok = true;
        result.sample = summarise(latencies, static_cast<double>(t0 - start) / 1e9, 0);
    }
    return result;
}

}  // namespace codexvault::bench
