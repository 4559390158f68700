// What the eBPF monitor costs the rest of the machine, attached against detached in the same run:
//
//   monitor_bench [--runs N] [--ring-kib K]     (root; prints figures, never judges them; where
//                                                the monitor cannot load, says why and exits 0)
//
// - ns per 1-byte pread(2) and per mmap(2)+munmap(2) of a page-cache file, with the monitor
//   detached, loaded as the daemon loads it with nothing tracked (the per-syscall hooks are then
//   detached: Options::attach_on_demand), loaded with those hooks attached for life and nothing
//   tracked (the gate closed; how the daemon ran before attach_on_demand), and with 64 tracked
//   inodes (the file itself untracked, as for every other process on the machine); plus a read of
//   a tracked file by its marked owner (one routine record per read);
// - the time the first track_inode takes (it attaches the hooks) and the last untrack_inode (it
//   detaches them);
// - forks/s of marked processes (each child inherits the mark and loses it at exit: two records
//   per fork), one forker per CPU, and the records lost meanwhile, drained every 20 ms as the
//   daemon's timer would;
// - exec records/s (fork + exec /usr/bin/true, each exec recorded and received);
// - a mixed load, `perf bench sched messaging` (processes passing messages over sockets: fork,
//   read, write, context switches), seconds detached vs attached, when perf is installed;
// - with --connection-check N: µs per connect-time credential check (Monitor::
//   check_peer_credentials: one BPF_ITER_CREATE and a read), N checks, for each walk: the
//   descriptors of the process that holds the accepted sockets (this one, as the bus daemon), and
//   every unix socket of this network namespace; as they are and with 2,000 more unix sockets.
// The forking is done by a separate process (this binary re-executed with --forker), as a marked
// process is never the loader. The loader's own fork is slower while the monitor is loaded (the
// ring buffer's pages are mapped page by page and fork copies those page tables): also printed.
// Each figure is the median of --runs runs (default 5); the monitor is loaded and unloaded per
// run, so "detached" is a machine with no program attached.
#include <fcntl.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "daemon/monitor/monitor.hpp"

namespace {

using codexvault::monitor::Event;
using codexvault::monitor::ExecEvent;
using codexvault::monitor::Monitor;
using codexvault::monitor::OnTouch;
using Clock = std::chrono::steady_clock;

double median(std::vector<double> v)
{
    std::sort(v.begin(), v.end());
    return v.empty() ? 0 : v[v.size() / 2];
}

// This thread's CPU time (user + system): the syscall's own cost, not the time other
// processes on a busy machine held the CPU.
double thread_cpu_ns()
{
    timespec ts{};
    ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) * 1e9 + static_cast<double>(ts.tv_nsec);
}

double ns_per_op(int iterations, const std::function<void()>& op)
{
    for (int i = 0; i < iterations / 10; ++i) {
        op();  // warm-up
    }
    const double start = thread_cpu_ns();
    for (int i = 0; i < iterations; ++i) {
        op();
    }
    return (thread_cpu_ns() - start) / iterations;
}

std::unique_ptr<Monitor> load(const codexvault::monitor::Options& options)
{
    auto loaded = Monitor::open_and_load(options);
    if (!loaded.monitor) {
        std::fprintf(stderr, "monitor_bench: %s\n", loaded.status.describe().c_str());
        std::exit(1);
    }
    return std::move(loaded.monitor);
}

struct FileUnderTest {
    int fd;
    std::uint64_t dev;
    std::uint64_t ino;
};

FileUnderTest make_file()
{
    const std::string path = "/var/tmp/cv-monitor-bench-" + std::to_string(::getpid());
    const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || ::ftruncate(fd, 4096) != 0) {
        std::perror("monitor_bench: file");
        std::exit(1);
    }
    ::unlink(path.c_str());
    struct stat st {};
    ::fstat(fd, &st);
    return {fd, st.st_dev, st.st_ino};
}

struct Costs {
    double read_ns;
    double mmap_ns;
};

Costs measure_io(const FileUnderTest& f)
{
    char byte;
    const double read_ns = ns_per_op(300'000, [&] { (void)!::pread(f.fd, &byte, 1, 0); });
    const double mmap_ns = ns_per_op(100'000, [&] {
        void* p = ::mmap(nullptr, 4096, PROT_READ, MAP_SHARED, f.fd, 0);
        ::munmap(p, 4096);
    });
    return {read_ns, mmap_ns};
}

// --forker MODE SECONDS: wait for a byte on stdin, then fork (MODE "fork": the child _exits; MODE
// "exec": the child execs /usr/bin/true) and reap, back to back, for SECONDS; print the count.
int forker_main(const char* mode, const char* seconds)
{
    char go;
    if (::read(0, &go, 1) != 1) {
        return 1;
    }
    const bool exec = std::strcmp(mode, "exec") == 0;
    const auto until = Clock::now() + std::chrono::duration<double>(std::atof(seconds));
    long count = 0;
    while (Clock::now() < until) {
        const pid_t pid = ::fork();
        if (pid == 0) {
            if (exec) {
                ::execl("/usr/bin/true", "true", static_cast<char*>(nullptr));
            }
            ::_exit(0);
        }
        ::waitpid(pid, nullptr, 0);
        ++count;
    }
    std::printf("%ld\n", count);
    return 0;
}

struct Rate {
    double per_second = 0;
    std::uint64_t lost = 0;
    std::uint64_t exec_records = 0;  // exec records of the forker's children
};

// Runs `forkers` forkers for a second (marked when a monitor is given), draining every 20 ms.
Rate run_forker(Monitor* monitor, const char* mode, int forkers = 1)
{
    int in[2], out[2];
    if (::pipe(in) != 0 || ::pipe(out) != 0) {
        std::perror("pipe");
        std::exit(1);
    }
    std::vector<pid_t> pids;
    for (int i = 0; i < forkers; ++i) {
        const pid_t pid = ::fork();
        if (pid == 0) {
            ::dup2(in[0], 0);
            ::dup2(out[1], 1);
            ::execl("/proc/self/exe", "monitor_bench", "--forker", mode, "1", static_cast<char*>(nullptr));
            ::_exit(127);
        }
        pids.push_back(pid);
    }
    ::close(in[0]);
    ::close(out[1]);
    Rate rate;
    const std::uint64_t lost_before = monitor ? monitor->lost_events() : 0;
    const auto count_exec = [&](const Event& e) noexcept {
        const auto* x = std::get_if<ExecEvent>(&e);
        rate.exec_records +=
            x != nullptr && std::find(pids.begin(), pids.end(), static_cast<pid_t>(x->task.ppid)) != pids.end();
    };
    if (monitor) {
        monitor->drain(count_exec);
        for (const pid_t pid : pids) {
            monitor->mark_process(pid, 1, OnTouch::record);
        }
    }
    const auto start = Clock::now();
    (void)!::write(in[1], std::string(static_cast<std::size_t>(forkers), 'g').data(),
                   static_cast<std::size_t>(forkers));
    std::string text;
    for (;;) {
        pollfd p{out[0], POLLIN, 0};
        if (::poll(&p, 1, 20) > 0) {
            char buf[64];
            const ssize_t n = ::read(out[0], buf, sizeof(buf));
            if (n <= 0) {
                break;
            }
            text.append(buf, static_cast<std::size_t>(n));
        }
        if (monitor) {
            monitor->drain(count_exec);
        }
    }
    const double secs = std::chrono::duration<double>(Clock::now() - start).count();
    for (const pid_t pid : pids) {
        ::waitpid(pid, nullptr, 0);
    }
    ::close(in[1]);
    ::close(out[0]);
    if (monitor) {
        monitor->drain(count_exec);
        rate.lost = monitor->lost_events() - lost_before;
    }
    (void)secs;
    // Each forker counted over its own second, one line each.
    for (std::size_t at = 0; at < text.size();) {
        rate.per_second += std::atof(text.c_str() + at);
        const auto nl = text.find('\n', at);
        at = nl == std::string::npos ? text.size() : nl + 1;
    }
    return rate;
}

// `perf bench sched messaging` wall-clock seconds ("Total time: X [sec]"), or a negative value
// when perf is missing or failed.
double messaging_seconds()
{
    FILE* pipe = ::popen("perf bench sched messaging -g 10 -l 300 2>/dev/null", "r");
    if (pipe == nullptr) {
        return -1;
    }
    char line[256];
    double seconds = -1;
    while (std::fgets(line, sizeof line, pipe) != nullptr) {
        const char* total = std::strstr(line, "Total time:");
        if (total != nullptr) {
            seconds = std::atof(total + std::strlen("Total time:"));
        }
    }
    return ::pclose(pipe) == 0 ? seconds : -1;
}

// Forks from this (the loader's) process for a second.
double loader_forks_per_second()
{
    const auto start = Clock::now();
    long n = 0;
    while (Clock::now() - start < std::chrono::seconds(1)) {
        const pid_t pid = ::fork();
        if (pid == 0) {
            ::_exit(0);
        }
        ::waitpid(pid, nullptr, 0);
        ++n;
    }
    return static_cast<double>(n) / std::chrono::duration<double>(Clock::now() - start).count();
}

// The same pread in three states of one loaded monitor, alternated round by round so that a busy
// machine's drift hits them alike: the daemon's idle state (hooks detached), hooks attached with
// the gate closed (how the daemon ran before attach_on_demand: tracepoint cost, no program work),
// and 64 inodes tracked (hooks attached, programs run). Medians of the rounds.
struct Interleaved {
    double idle = 0;
    double gate_closed = 0;
    double tracked = 0;
};

Interleaved interleaved_reads(Monitor& monitor, const FileUnderTest& file, const std::vector<int>& decoys, int rounds)
{
    std::vector<std::pair<std::uint64_t, std::uint64_t>> keys;
    for (const int fd : decoys) {
        struct stat st {};
        ::fstat(fd, &st);
        keys.emplace_back(st.st_dev, st.st_ino);
    }
    char byte;
    const auto reads = [&] {
        return ns_per_op(50'000, [&] { (void)!::pread(file.fd, &byte, 1, 0); });
    };
    std::vector<double> idle, closed, tracked;
    for (int round = 0; round < rounds; ++round) {
        idle.push_back(reads());
        monitor.set_gate(codexvault::monitor::Gate::closed);
        monitor.track_inode(keys[0].first, keys[0].second, 7, OnTouch::record);  // attaches
        closed.push_back(reads());
        monitor.set_gate(codexvault::monitor::Gate::automatic);
        for (std::size_t i = 1; i < keys.size(); ++i) {
            monitor.track_inode(keys[i].first, keys[i].second, 7, OnTouch::record);
        }
        tracked.push_back(reads());
        for (const auto& [dev, ino] : keys) {
            monitor.untrack_inode(dev, ino);  // the last one detaches
        }
        monitor.drain();
    }
    return {median(idle), median(closed), median(tracked)};
}

}  // namespace

// CPU µs per check, median of 5 rounds of `checks`, for a child connected to a listener of ours.
double connection_check_us(Monitor& monitor, int checks)
{
    char dir[] = "/tmp/cv-bench-peer-XXXXXX";
    if (::mkdtemp(dir) == nullptr) {
        return -1;
    }
    const std::string path = std::string(dir) + "/bus";
    const int listener = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
    struct stat st {};
    if (::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 || ::listen(listener, 4) != 0 ||
        ::stat(path.c_str(), &st) != 0) {
        return -1;
    }
    int hold[2];
    if (::pipe(hold) != 0) {
        return -1;
    }
    const pid_t child = ::fork();
    if (child == 0) {
        ::close(hold[1]);
        const int s = ::socket(AF_UNIX, SOCK_STREAM, 0);
        if (::connect(s, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
            ::_exit(1);
        }
        char c;
        (void)!::read(hold[0], &c, 1);
        ::_exit(0);
    }
    ::close(hold[0]);
    const int server = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
    // CPU time of this thread: the walk runs inside its read(2), so on a shared machine this is
    // what the check costs, without the time spent waiting for a CPU.
    const auto cpu_us = [] {
        struct timespec ts {};
        ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
        return static_cast<double>(ts.tv_sec) * 1e6 + static_cast<double>(ts.tv_nsec) / 1e3;
    };
    std::vector<double> rounds;
    bool same = true;
    for (int round = 0; round < 5; ++round) {
        const double t0 = cpu_us();
        for (int i = 0; i < checks; ++i) {
            same = same && monitor.check_peer_credentials(child, st.st_dev, st.st_ino).verdict ==
                               codexvault::monitor::PeerCredentials::same;
        }
        rounds.push_back((cpu_us() - t0) / checks);
    }
    ::close(hold[1]);
    ::waitpid(child, nullptr, 0);
    ::close(server);
    ::close(listener);
    ::unlink(path.c_str());
    ::rmdir(dir);
    return same ? median(rounds) : -1;
}

std::size_t unix_sockets_here()
{
    std::FILE* f = std::fopen("/proc/net/unix", "r");
    if (f == nullptr) {
        return 0;
    }
    std::size_t lines = 0;
    for (int c; (c = std::fgetc(f)) != EOF;) {
        lines += c == '\n' ? 1 : 0;
    }
    std::fclose(f);
    return lines > 0 ? lines - 1 : 0;  // the header
}

int main(int argc, char** argv)
{
    if (argc == 4 && std::strcmp(argv[1], "--forker") == 0) {
        return forker_main(argv[2], argv[3]);
    }
    int runs = 5;
    int interleaved_only = 0;
    int connection_checks = 0;
    codexvault::monitor::Options options;
    for (int i = 1; i < argc; ++i) {
        if (std::strcmp(argv[i], "--runs") == 0 && i + 1 < argc) {
            runs = std::max(1, std::atoi(argv[++i]));
        } else if (std::strcmp(argv[i], "--interleaved") == 0 && i + 1 < argc) {
            interleaved_only = std::max(1, std::atoi(argv[++i]));
        } else if (std::strcmp(argv[i], "--connection-check") == 0 && i + 1 < argc) {
            connection_checks = std::max(1, std::atoi(argv[++i]));
        } else if (std::strcmp(argv[i], "--ring-kib") == 0 && i + 1 < argc) {
            options.ring_bytes = static_cast<std::uint32_t>(std::atoi(argv[++i])) * 1024U;
        } else {
            std::fprintf(stderr, "usage: %s [--runs N] [--ring-kib K] [--interleaved ROUNDS] [--connection-check N]\n",
                         argv[0]);
            return 2;
        }
    }
    // Where the monitor cannot load there is nothing to measure: said so, and not a failure of
    // `make bench` (exit 0); a load that fails later, after this one worked, still is.
    {
        auto first = Monitor::open_and_load(options);
        if (!first.monitor) {
            std::printf("monitor_bench: skipped: eBPF monitor %s\n", first.status.describe().c_str());
            return 0;
        }
        std::printf("monitor: %s\n", first.status.describe().c_str());
    }
    const auto file = make_file();
    std::vector<int> decoys;
    for (int i = 0; i < 64; ++i) {
        decoys.push_back(::memfd_create("cv-bench-decoy", MFD_CLOEXEC));
    }

    const auto print_interleaved = [&](const Interleaved& r, int rounds, double load) {
        std::printf("pread 1 byte, one loaded monitor, %d alternating rounds (load %.2f before them)\n", rounds, load);
        std::printf("  %-48s %9.1f\n", "nothing tracked: hooks detached (the daemon idle)", r.idle);
        std::printf("  %-48s %9.1f %+9.1f\n", "hooks attached, gate closed (hooks for life)", r.gate_closed,
                    r.gate_closed - r.idle);
        std::printf("  %-48s %9.1f %+9.1f\n", "64 inodes tracked (hooks attached)", r.tracked, r.tracked - r.idle);
    };
    if (connection_checks > 0) {
        // Both walks, loaded side by side: the descriptors of the process holding the accepted
        // sockets (this one, standing in for the bus daemon), and every unix socket here.
        double load_now[3] = {};
        ::getloadavg(load_now, 3);
        codexvault::monitor::Options files_options = options;
        files_options.bus_pid = ::getpid();
        auto files = load(files_options);
        auto sockets = load(options);
        const std::size_t before = unix_sockets_here();
        const double files_base = connection_check_us(*files, connection_checks);
        const double sockets_base = connection_check_us(*sockets, connection_checks);
        std::vector<int> extra;
        for (int i = 0; i < 1000; ++i) {
            int pair[2];
            if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) == 0) {
                extra.push_back(pair[0]);
                extra.push_back(pair[1]);
            }
        }
        const double files_more = connection_check_us(*files, connection_checks);
        const double sockets_more = connection_check_us(*sockets, connection_checks);
        std::printf("connection check, CPU us per check (median of 5 x %d; load %.2f before)\n", connection_checks,
                    load_now[0]);
        std::printf("  %-64s %9.1f\n", "bus daemon's descriptors (iter/task_file), a few descriptors", files_base);
        std::printf("  %-64s %9.1f\n", "  the same holding 2,000 more unix sockets", files_more);
        std::printf("  %-64s %9.1f\n",
                    ("every unix socket here (iter/unix), " + std::to_string(before) + " sockets").c_str(),
                    sockets_base);
        std::printf("  %-64s %9.1f\n", ("  " + std::to_string(before + extra.size()) + " sockets").c_str(),
                    sockets_more);
        for (const int fd : extra) {
            ::close(fd);
        }
        return 0;
    }
    if (interleaved_only > 0) {
        // Only the alternating pread comparison (short; what a noisy machine measures best).
        double load_now[3] = {};
        ::getloadavg(load_now, 3);
        auto monitor = load(options);
        print_interleaved(interleaved_reads(*monitor, file, decoys, interleaved_only), interleaved_only, load_now[0]);
        return 0;
    }

    std::vector<double> read_off, read_idle, read_64, read_owner, mmap_off, mmap_idle, mmap_64;
    std::vector<double> fork_off, fork_on, exec_off, exec_on, exec_records, loader_off, loader_on;
    std::vector<double> read_always, mmap_always, mixed_off, mixed_always, mixed_idle, mixed_64;
    std::vector<double> fork2_off, fork2_on, attach_us, detach_us;
    codexvault::monitor::Options always_options = options;
    always_options.attach_on_demand = false;
    std::uint64_t fork_lost = 0, exec_lost = 0, fork2_lost = 0;
    const long cpus = std::max(1L, ::sysconf(_SC_NPROCESSORS_ONLN));
    for (int run = 0; run < runs; ++run) {
        const auto off = measure_io(file);
        read_off.push_back(off.read_ns);
        mmap_off.push_back(off.mmap_ns);
        fork_off.push_back(run_forker(nullptr, "fork").per_second);
        fork2_off.push_back(run_forker(nullptr, "fork", static_cast<int>(cpus)).per_second);
        exec_off.push_back(run_forker(nullptr, "exec").per_second);
        loader_off.push_back(loader_forks_per_second());
        mixed_off.push_back(messaging_seconds());

        {
            auto always = load(always_options);  // before attach_on_demand: hooks for life
            const auto idle_always = measure_io(file);
            read_always.push_back(idle_always.read_ns);
            mmap_always.push_back(idle_always.mmap_ns);
            mixed_always.push_back(messaging_seconds());
            always->drain();
        }

        auto monitor = load(options);  // the daemon's configuration: hooks on demand
        mixed_idle.push_back(messaging_seconds());
        const auto idle = measure_io(file);
        read_idle.push_back(idle.read_ns);
        mmap_idle.push_back(idle.mmap_ns);

        const auto forks = run_forker(monitor.get(), "fork");
        fork_on.push_back(forks.per_second);
        fork_lost += forks.lost;
        const auto forks2 = run_forker(monitor.get(), "fork", static_cast<int>(cpus));
        fork2_on.push_back(forks2.per_second);
        fork2_lost += forks2.lost;
        const auto execs = run_forker(monitor.get(), "exec");
        exec_on.push_back(execs.per_second);
        exec_records.push_back(static_cast<double>(execs.exec_records));
        exec_lost += execs.lost;
        loader_on.push_back(loader_forks_per_second());

        {
            // The first track attaches the hooks, the last untrack detaches them.
            struct stat st {};
            ::fstat(decoys[0], &st);
            monitor->drain();
            const auto t0 = Clock::now();
            monitor->track_inode(st.st_dev, st.st_ino, 999, OnTouch::record);
            const auto t1 = Clock::now();
            monitor->untrack_inode(st.st_dev, st.st_ino);
            const auto t2 = Clock::now();
            attach_us.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
            detach_us.push_back(std::chrono::duration<double, std::micro>(t2 - t1).count());
        }
        for (const int fd : decoys) {
            struct stat st {};
            ::fstat(fd, &st);
            monitor->track_inode(st.st_dev, st.st_ino, 1000 + static_cast<std::uint64_t>(fd), OnTouch::record);
        }
        const auto tracked = measure_io(file);
        read_64.push_back(tracked.read_ns);
        mmap_64.push_back(tracked.mmap_ns);
        mixed_64.push_back(messaging_seconds());

        // The marked owner reading its own tracked file: one routine record per read.
        monitor->track_inode(file.dev, file.ino, 1, OnTouch::record);
        monitor->mark_process(::getpid(), 1, OnTouch::record);
        char byte;
        std::vector<double> batches;
        for (int batch = 0; batch < 10; ++batch) {
            batches.push_back(ns_per_op(10'000, [&] { (void)!::pread(file.fd, &byte, 1, 0); }));
            monitor->drain();
        }
        read_owner.push_back(median(batches));
    }

    double before_interleaved[3] = {};
    ::getloadavg(before_interleaved, 3);
    Interleaved inter;
    {
        auto monitor = load(options);
        inter = interleaved_reads(*monitor, file, decoys, 10 * runs);
    }

    double load_avg[3] = {};
    ::getloadavg(load_avg, 3);
    const auto row = [](const char* what, double detached, double attached) {
        std::printf("  %-48s %9.1f %9.1f %+9.1f\n", what, detached, attached, attached - detached);
    };
    std::printf("\nload average %.2f; ns per op are this thread's CPU time, rates wall-clock\n", load_avg[0]);
    std::printf("medians of %d runs                                  detached  attached     added\n", runs);
    std::printf("ns per op\n");
    row("pread 1 byte, nothing tracked (goal +30)", median(read_off), median(read_idle));
    row("pread 1 byte, hooks for life, nothing tracked", median(read_off), median(read_always));
    row("pread 1 byte, 64 inodes tracked (goal +200)", median(read_off), median(read_64));
    row("pread 1 byte of own tracked file (routine record)", median(read_off), median(read_owner));
    row("mmap+munmap, nothing tracked (goal +30)", median(mmap_off), median(mmap_idle));
    row("mmap+munmap, hooks for life, nothing tracked", median(mmap_off), median(mmap_always));
    row("mmap+munmap, 64 inodes tracked (goal +200)", median(mmap_off), median(mmap_64));
    std::printf("per second\n");
    row("forks by a marked process (goal 10000)", median(fork_off), median(fork_on));
    std::printf("  %-48s %9.1f %9.1f %+9.1f\n",
                (std::string("forks by ") + std::to_string(cpus) + " marked processes at once").c_str(),
                median(fork2_off), median(fork2_on), median(fork2_on) - median(fork2_off));
    row("fork+exec /usr/bin/true by a marked process", median(exec_off), median(exec_on));
    std::printf("  %-48s %9s %9.1f\n", "  exec records received for them", "", median(exec_records));
    row("forks by the loader process itself", median(loader_off), median(loader_on));
    if (median(mixed_off) > 0) {
        const auto pct = [&](const std::vector<double>& v) {
            return 100.0 * (median(v) / median(mixed_off) - 1.0);
        };
        std::printf("mixed load: perf bench sched messaging -g 10 -l 300, seconds (goal +3 %%)\n");
        std::printf("  %-48s %9.3f %9.3f %+8.1f%%\n", "nothing tracked (hooks detached)", median(mixed_off),
                    median(mixed_idle), pct(mixed_idle));
        std::printf("  %-48s %9.3f %9.3f %+8.1f%%\n", "hooks for life, nothing tracked", median(mixed_off),
                    median(mixed_always), pct(mixed_always));
        std::printf("  %-48s %9.3f %9.3f %+8.1f%%\n", "syscall hooks, 64 inodes tracked", median(mixed_off),
                    median(mixed_64), pct(mixed_64));
    } else {
        std::printf("mixed load: skipped (perf bench sched messaging is not available)\n");
    }
    print_interleaved(inter, 10 * runs, before_interleaved[0]);
    std::printf("first track_inode (attaches the hooks) %.0f us, last untrack_inode (detaches) %.0f us\n",
                median(attach_us), median(detach_us));
    std::printf("lost records: %llu during marked forks (%llu with %ld forkers), %llu during execs (goal 0)\n",
                static_cast<unsigned long long>(fork_lost), static_cast<unsigned long long>(fork2_lost), cpus,
                static_cast<unsigned long long>(exec_lost));
    return 0;
}
