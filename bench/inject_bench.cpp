// Injection benchmark (scripts/inject-bench.sh sets up the daemon, the secret and the grant):
//   - Inject round trip p50/p99 beside Check on the same daemon and connection, interleaved;
//   - `vaultctl exec -- true` wall time beside plain `true` and `env X=Y true` (op-run-style
//     injection without a vault), with and without masking;
//   - output masking through vaultctl exec: a 1 GiB base64 stream to /dev/null, masked and not.
// Prints figures; never pass/fail.
//
//   inject_bench --bus ADDR --vaultctl PATH --secret NAME [--calls N] [--runs N] [--mib N]
#include <fcntl.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "bench/bench_stats.hpp"
#include "cli/vault_client.hpp"
#include "common/bus_contract.hpp"
#include "lib/fileio/unique_fd.hpp"

extern char** environ;

using namespace codexvault;
using namespace codexvault::bench;

namespace {

struct Options {
    std::string bus;
    std::string vaultctl;
    std::string secret = "demo";
    int calls = 200;  // below the daemon's 256 live injections (each lives its 1 s ttl)
    int runs = 20;
    int mib = 1024;
};

void usage()
{
    std::fprintf(stderr,
                 "usage: inject_bench --bus ADDR --vaultctl PATH --secret NAME [--calls N] [--runs N] [--mib N]\n");
    std::exit(2);
}

Options parse(int argc, char** argv)
{
    Options o;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (i + 1 >= argc) {
            usage();
        }
        const std::string v = argv[++i];
        if (a == "--bus") {
            o.bus = v;
        } else if (a == "--vaultctl") {
            o.vaultctl = v;
        } else if (a == "--secret") {
            o.secret = v;
        } else if (a == "--calls") {
            o.calls = std::atoi(v.c_str());
        } else if (a == "--runs") {
            o.runs = std::atoi(v.c_str());
        } else if (a == "--mib") {
            o.mib = std::atoi(v.c_str());
        } else {
            usage();
        }
    }
    if (o.bus.empty() || o.vaultctl.empty() || o.calls <= 0 || o.runs <= 0 || o.mib <= 0) {
        usage();
    }
    return o;
}

// One Inject: the call, the descriptor over our socket, closed at once (the injection ends with
// its 1 s ttl).
bool inject_once(cli::VaultClient& client, const std::string& secret)
{
    int pair[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0) {
        return false;
    }
    const UniqueFd ours(pair[0]);
    const UniqueFd theirs(pair[1]);
    try {
        cli::Message reply = client.call(bus::method::kInject, [&](sd_bus_message* m) {
            sd_bus_message_append(m, "sa{sv}h", secret.c_str(), 1, "ttl", "u", 1U, theirs.get());
        });
        char id[64];
        alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
        iovec iov{id, sizeof id};
        msghdr msg{};
        msg.msg_iov = &iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control;
        msg.msg_controllen = sizeof control;
        if (::recvmsg(ours.get(), &msg, MSG_CMSG_CLOEXEC) <= 0) {
            return false;
        }
        const cmsghdr* c = CMSG_FIRSTHDR(&msg);
        if (c == nullptr || c->cmsg_type != SCM_RIGHTS) {
            return false;
        }
        int fd = -1;
        std::memcpy(&fd, CMSG_DATA(c), sizeof fd);
        ::close(fd);
        return true;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "Inject failed: %s\n", e.what());
        return false;
    }
}

bool check_once(cli::VaultClient& client, const std::string& secret)
{
    const std::string capability = "secret:" + secret + ":inject";
    try {
        cli::Message reply = client.call(
            bus::method::kCheck, [&](sd_bus_message* m) { sd_bus_message_append(m, "sa{sv}", capability.c_str(), 0); });
        return true;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "Check failed: %s\n", e.what());
        return false;
    }
}

void print_latency(const char* name, const Sample& s)
{
    std::printf("%s: p50 %.0f us, p99 %.0f us, max %.0f us  (%llu calls, %llu errors)\n", name, s.p50_us, s.p99_us,
                s.max_us, static_cast<unsigned long long>(s.calls), static_cast<unsigned long long>(s.errors));
}

struct Timed {
    std::int64_t wall_ns = -1;  // -1: failed
    double cpu_s = 0.0;         // user + system of the process and the descendants it waited for
};

// Runs argv with stdout and stderr to /dev/null; its wall time in ns, or -1.
std::int64_t run_timed(const std::vector<std::string>& args);
Timed run_measured(const std::vector<std::string>& args);

std::int64_t run_timed(const std::vector<std::string>& args)
{
    return run_measured(args).wall_ns;
}

Timed run_measured(const std::vector<std::string>& args)
{
    std::vector<char*> argv;
    for (const auto& a : args) {
        argv.push_back(const_cast<char*>(a.c_str()));
    }
    argv.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
    const std::int64_t start = now_ns();
    pid_t pid = -1;
    const int r = posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    if (r != 0) {
        return {};
    }
    int status = 0;
    rusage usage{};
    ::wait4(pid, &status, 0, &usage);
    const std::int64_t elapsed = now_ns() - start;
    Timed out;
    out.wall_ns = WIFEXITED(status) && WEXITSTATUS(status) == 0 ? elapsed : -1;
    out.cpu_s = static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
                static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
    return out;
}

}  // namespace

int main(int argc, char** argv)
{
    const Options o = parse(argc, argv);
    cli::VaultClient client(o.bus);

    // 1. Inject beside Check, interleaved so both see the same load.
    std::vector<std::int64_t> inject_ns;
    std::vector<std::int64_t> check_ns;
    std::uint64_t inject_errors = 0;
    std::uint64_t check_errors = 0;
    const std::int64_t wall_start = now_ns();
    for (int i = 0; i < o.calls; ++i) {
        for (int k = 0; k < 10; ++k) {
            const std::int64_t t = now_ns();
            if (check_once(client, o.secret)) {
                check_ns.push_back(now_ns() - t);
            } else {
                ++check_errors;
            }
        }
        const std::int64_t t = now_ns();
        if (inject_once(client, o.secret)) {
            inject_ns.push_back(now_ns() - t);
        } else {
            ++inject_errors;
        }
    }
    const double wall_s = static_cast<double>(now_ns() - wall_start) / 1e9;
    const Sample inject = summarise(inject_ns, wall_s, inject_errors);
    const Sample check = summarise(check_ns, wall_s, check_errors);
    std::printf("== Inject round trip beside Check (same daemon and connection, interleaved 1:10)\n");
    print_latency("Inject", inject);
    print_latency("Check", check);
    if (check.p50_us > 0) {
        std::printf("Inject/Check p50 ratio: %.1fx\n", inject.p50_us / check.p50_us);
    }

    // 2. Process start-up: the vault's exec against the tools it replaces, interleaved.
    const std::string env_name = "TOKEN";
    const std::vector<std::pair<const char*, std::vector<std::string>>> commands{
        {"true", {"/usr/bin/true"}},
        {"env X=Y true", {"/usr/bin/env", "X=Y", "/usr/bin/true"}},
        {"vaultctl exec --no-mask -- true",
         {o.vaultctl, "--bus", o.bus, "exec", "--no-mask", "--secret", o.secret + "=" + env_name, "--",
          "/usr/bin/true"}},
        {"vaultctl exec -- true",
         {o.vaultctl, "--bus", o.bus, "exec", "--secret", o.secret + "=" + env_name, "--", "/usr/bin/true"}},
    };
    std::vector<std::vector<std::int64_t>> times(commands.size());
    std::vector<std::uint64_t> failures(commands.size(), 0);
    for (int run = 0; run < o.runs; ++run) {
        for (std::size_t c = 0; c < commands.size(); ++c) {
            const std::int64_t t = run_timed(commands[c].second);
            if (t < 0) {
                ++failures[c];
            } else {
                times[c].push_back(t);
            }
        }
    }
    std::printf("\n== Wall time per run (%d runs each, interleaved)\n", o.runs);
    double true_p50 = 0;
    for (std::size_t c = 0; c < commands.size(); ++c) {
        const Sample s = summarise(times[c], 0.0, failures[c]);
        if (c == 0) {
            true_p50 = s.p50_us;
        }
        std::printf("%-34s p50 %7.2f ms, p99 %7.2f ms  (%.1fx true; %llu failed)\n", commands[c].first,
                    s.p50_us / 1000.0, s.p99_us / 1000.0, true_p50 > 0 ? s.p50_us / true_p50 : 0.0,
                    static_cast<unsigned long long>(failures[c]));
    }

    // 3. Masking throughput: the command writes o.mib MiB of base64 text (a 64 MiB file, cat'ed
    //    again and again); vaultctl relays it to /dev/null, masked and not.
    char path[] = "/tmp/inject-bench-XXXXXX";
    const int fd = ::mkstemp(path);
    if (fd < 0) {
        std::perror("mkstemp");
        return 1;
    }
    {
        std::string block;
        static constexpr char kB64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        std::uint64_t x = 0x9e3779b97f4a7c15ULL;
        block.reserve(1 << 20);
        for (int i = 0; i < (1 << 20); ++i) {
            x ^= x << 13U;
            x ^= x >> 7U;
            x ^= x << 17U;
            block += (i % 77 == 76) ? '\n' : kB64[x & 63U];
        }
        for (int m = 0; m < 64; ++m) {
            if (::write(fd, block.data(), block.size()) != static_cast<ssize_t>(block.size())) {
                std::perror("write");
                return 1;
            }
        }
        ::close(fd);
    }
    const int copies = (o.mib + 63) / 64;
    std::string script = "for i in $(seq " + std::to_string(copies) + "); do cat " + path + "; done";
    const double gib = static_cast<double>(copies) * 64.0 / 1024.0;
    std::printf("\n== Output masking through vaultctl exec: %.2f GiB of base64 text to /dev/null\n", gib);
    const std::vector<std::pair<const char*, std::vector<std::string>>> streams{
        {"the command alone (sh + cat)", {"/bin/sh", "-c", script}},
        {"vaultctl exec --no-mask",
         {o.vaultctl, "--bus", o.bus, "exec", "--no-mask", "--secret", o.secret, "--", "/bin/sh", "-c", script}},
        {"vaultctl exec (masked)",
         {o.vaultctl, "--bus", o.bus, "exec", "--secret", o.secret, "--", "/bin/sh", "-c", script}},
    };
    // Wall time depends on everything else the machine runs; CPU time does not: the CPU vaultctl
    // adds to the command's own (relaying and masking) is the masked run's CPU minus the command
    // alone's, and GiB per second of that CPU is the masking throughput one core gives.
    std::vector<double> cpu_of(streams.size(), 0.0);
    for (std::size_t k = 0; k < streams.size(); ++k) {
        const auto& [name, args] = streams[k];
        std::vector<double> rates;
        std::vector<double> cpus;
        for (int run = 0; run < 3; ++run) {
            const Timed t = run_measured(args);
            if (t.wall_ns > 0) {
                rates.push_back(gib / (static_cast<double>(t.wall_ns) / 1e9));
                cpus.push_back(t.cpu_s);
            }
        }
        cpu_of[k] = median(cpus).value_or(0.0);
        std::printf("%-30s %.2f GiB/s wall, %.2f s CPU (medians of %zu)\n", name, median(rates).value_or(0.0),
                    cpu_of[k], rates.size());
    }
    for (std::size_t k = 1; k < streams.size(); ++k) {
        const double added = cpu_of[k] - cpu_of[0];
        std::printf("%-30s %.2f s CPU added by vaultctl: %.2f GiB per CPU-second%s\n", streams[k].first, added,
                    added > 0 ? gib / added : 0.0, k == 2 ? "  (goal >= 1 GiB/s)" : "");
    }
    ::unlink(path);
    return 0;
}
