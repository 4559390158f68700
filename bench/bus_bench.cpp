// Load generator and figures for the bus benchmarks (scripts/run-bench.sh, run by `make bench`).
//
// One measurement (any method without arguments, or shaped like the vault's Use/Check):
//
//   bus_bench --bus ADDRESS --dest NAME --path PATH --iface IFACE --method METHOD
//             [--capability CAP] [--expect-error NAME]
//             [--clients N] [--seconds S | --calls N] [--warmup N] [--timeout S]
//             [--label TEXT] [--json]
//
// A suite of measurements with their figures and targets, all on one bus in one run:
//
//   bus_bench --suite bus --bus ADDRESS [--vault-name NAME] [--noop-name NAME] [--stand-in]
//             [--vault-pid PID] [--pin-pid PID]... [COMMON]
//       1. single client, sequential: Peer.Ping, WhoAmI and Status on the vault, Ping and Nop on
//          the no-op server, with every --pin-pid process (and this one) pinned to one CPU;
//       2. throughput with 1 and 4 clients: WhoAmI and Status on the vault vs Nop on the no-op
//          server, unpinned;
//       3. the vault's idle RSS (VmRSS) 1 s after start and 1 s after the load, and its peak.
//   bus_bench --suite durable --bus ADDRESS --state-dir DIR --capability CAP --ungranted CAP
//             [--grant-id ID] [--vault-name NAME] [--noop-name NAME] [--stand-in] [COMMON]
//       4. durable audited decisions: Use of CAP (granted to this uid) with 1, 4 and 16 clients,
//          beside "one fdatasync per record" (bench_fdatasync.hpp, run here in DIR, the folder that
//          holds the daemon's state) and audited informational Check of CAP with 1 and 16 clients;
//          Use of the ungranted CAP (a refusal, folded and answered at once) for information;
//       5. Status p99 seen by one extra client while 16 clients run durable Use, and while 16
//          clients run audited Check (the same CPU load without the disk);
//       6. audited Check vs Nop on the no-op server, 4 clients;
//       7. the latency a durable record adds: Use vs Check, 1 client (section 4's rounds).
//   COMMON: [--rounds R] [--seconds S] [--warmup N] [--durable-seconds S] [--durable-warmup N]
//           [--timeout S] [--summary FILE]
//
// Each client is a thread with its own bus connection (sd-bus objects are not thread-safe) that
// calls METHOD (with no arguments, or with --capability the arguments (s CAP, a{sv} {}) of the
// vault's Use and Check) in a closed loop with sd_bus_call_method and records every call's latency
// (CLOCK_MONOTONIC). Connections are set up and warmed up (--warmup calls per client, not
// recorded) before the clients are released together; a measurement's figures are the successful
// calls, calls/s over the wall time of the measured phase, and p50/p90/p99/max latency in
// microseconds. Failed calls are counted separately (their latency is not in the percentiles) and
// the first error's name and message are printed. --expect-error NAME counts a call answered with
// the D-Bus error NAME as a success (to measure a refusal, e.g. Use without a grant).
//
// In a suite, every measurement is split into R rounds (default 5) of S/R seconds (S: default 3;
// --durable-seconds, default 5, for sections 4, 5 and 7, with --durable-warmup calls, default 20),
// and the rounds of measurements that are compared are interleaved (A B C A B C ...), so drift in
// the machine's speed hits all of them alike. Every figure is the median over the rounds that
// measured (bench_stats.hpp); calls/s also shows the lowest and highest round. Ratios are taken
// between measurements of this run only. Each figure is printed on one line with its target where
// it has one; --summary FILE appends the measurements and figures to FILE for the run's summary.
// --stand-in: the vault is a second noop_server under --vault-name (WhoAmI and Status become Nop,
// the durable suite measures only the fdatasync baseline), to exercise the tools without the vault.
//
// Prints figures only; timing never fails it. Exit status: single measurement: 0 if the run
// completed with at least one successful call (failed calls are reported, not fatal), 1 if no
// call succeeded or a client could not connect or lost its connection; suite: 0 when the
// measurements ran (failed calls and measurements are reported), 1 when the bus could not be
// reached; 2 on bad usage.
#include <sched.h>
#include <sys/types.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <latch>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "bench/bench_bus.hpp"
#include "bench/bench_fdatasync.hpp"
#include "bench/bench_stats.hpp"
#include "common/bus_contract.hpp"
#include "common/vault_error.hpp"

namespace {

namespace bench = codexvault::bench;
using bench::BusError;
using bench::BusPtr;
using bench::MessagePtr;
using bench::now_ns;

constexpr unsigned kMaxClients = 256;
constexpr double kMaxSeconds = 3600.0;

// ---- calls and clients --------------------------------------------------------------------------

struct Call {
    std::string dest;
    std::string path;
    std::string iface;
    std::string method;
    std::optional<std::string> capability;  // send (s CAP, a{sv} {}) instead of no arguments
    std::string expect_error;               // this error reply counts as success
};

struct LoadSpec {
    std::string address;
    Call call;
    unsigned clients = 1;
    double seconds = 3.0;
    std::uint64_t calls = 0;  // per client; 0 means run for `seconds`
    std::uint64_t warmup = 100;
    double timeout = 5.0;
    std::optional<Call> probe;  // one extra client calling this alongside, recorded apart
};

// What one client did; written only by its own thread, read by main after join().
struct ClientResult {
    std::vector<std::int64_t> latencies_ns;  // successful calls only
    std::uint64_t errors = 0;
    std::int64_t start_ns = 0;
    std::int64_t end_ns = 0;
    bool measured = false;    // reached the measured phase
    std::string fatal;        // could not connect, or lost the connection
    std::string first_error;  // first failed call: "name: message"
    std::int64_t first_error_ns = 0;
};

std::string describe(const BusError& error, int r)
{
    std::string text;
    if (error.is_set()) {
        text = error.name();
        if (*error.message() != '\0') {
            text += std::string(": ") + error.message();
        }
    } else {
        text = std::string("errno: ") + std::strerror(r < 0 ? -r : r);
    }
    return text;
}

std::optional<BusPtr> connect(const std::string& address, double timeout, std::string& why)
{
    sd_bus* raw = nullptr;
    int r = sd_bus_new(&raw);
    if (r < 0) {
        why = std::string("sd_bus_new: ") + std::strerror(-r);
        return std::nullopt;
    }
    BusPtr bus(raw);
    const auto timeout_usec = static_cast<std::uint64_t>(timeout * 1e6);
    if ((r = sd_bus_set_address(bus.get(), address.c_str())) < 0 || (r = sd_bus_set_bus_client(bus.get(), 1)) < 0 ||
        (r = sd_bus_set_method_call_timeout(bus.get(), timeout_usec)) < 0 || (r = sd_bus_start(bus.get())) < 0) {
        why = "cannot connect to " + address + ": " + std::strerror(-r);
        return std::nullopt;
    }
    // Waits for the Hello() reply, so connection setup is not charged to the first call.
    const char* unique = nullptr;
    if ((r = sd_bus_get_unique_name(bus.get(), &unique)) < 0) {
        why = "Hello() on " + address + " failed: " + std::strerror(-r);
        return std::nullopt;
    }
    return bus;
}

// One call. Returns true on success; on failure fills `error_text`.
bool call_once(sd_bus* bus, const Call& call, std::string& error_text, bool& connection_lost)
{
    BusError error;
    sd_bus_message* raw_reply = nullptr;
    const int r = call.capability ? sd_bus_call_method(bus, call.dest.c_str(), call.path.c_str(), call.iface.c_str(),
                                                       call.method.c_str(), error.get(), &raw_reply, "sa{sv}",
                                                       call.capability->c_str(), 0U)
                                  : sd_bus_call_method(bus, call.dest.c_str(), call.path.c_str(), call.iface.c_str(),
                                                       call.method.c_str(), error.get(), &raw_reply, "");
    const MessagePtr reply(raw_reply);
    if (r >= 0) {
        if (call.expect_error.empty()) {
            return true;
        }
        error_text = "unexpected success (expected " + call.expect_error + ")";
        connection_lost = false;
        return false;
    }
    if (!call.expect_error.empty() && error.is_set() && call.expect_error == error.name()) {
        return true;
    }
    error_text = describe(error, r);
    connection_lost = sd_bus_is_open(bus) <= 0;
    return false;
}

void run_client(const LoadSpec& spec, const Call& call, ClientResult& out, std::latch& ready)
{
    std::string why;
    auto bus = connect(spec.address, spec.timeout, why);
    bool arrived = false;
    auto arrive = [&] {
        if (!arrived) {
            arrived = true;
            ready.arrive_and_wait();
        }
    };
    if (!bus) {
        out.fatal = why;
        arrive();
        return;
    }

    std::string error_text;
    bool lost = false;
    auto note_error = [&] {
        ++out.errors;
        if (out.first_error.empty()) {
            out.first_error = error_text;
            out.first_error_ns = now_ns();
        }
    };

    // Warm-up failures are counted as errors too: a method that fails here will fail later.
    for (std::uint64_t i = 0; i < spec.warmup; ++i) {
        if (!call_once(bus->get(), call, error_text, lost)) {
            note_error();
            if (lost) {
                out.fatal = "connection lost during warm-up: " + error_text;
                arrive();
                return;
            }
        }
    }

    // Enough for most runs without reallocating mid-measurement; grows beyond that if needed.
    constexpr std::uint64_t kReserve = 1u << 16;
    out.latencies_ns.reserve(static_cast<std::size_t>(spec.calls > 0 ? std::min(spec.calls, kReserve) : kReserve));

    arrive();
    out.measured = true;
    out.start_ns = now_ns();
    const auto budget_ns = static_cast<std::int64_t>(spec.seconds * 1e9);
    const std::int64_t deadline = out.start_ns + budget_ns;
    std::uint64_t done = 0;
    std::int64_t t0 = out.start_ns;
    for (;;) {
        if (spec.calls > 0 ? done >= spec.calls : t0 >= deadline) {
            break;
        }
        const bool ok = call_once(bus->get(), call, error_text, lost);
        const std::int64_t t1 = now_ns();
        ++done;
        if (ok) {
            out.latencies_ns.push_back(t1 - t0);
        } else {
            note_error();
            if (lost) {
                out.fatal = "connection lost: " + error_text;
                t0 = t1;
                break;
            }
        }
        t0 = t1;
    }
    out.end_ns = t0;
}

// The merged results of a group of clients.
struct GroupResult {
    std::vector<std::int64_t> latencies_ns;  // sorted by sample()
    std::uint64_t errors = 0;
    double wall_s = 0.0;
    unsigned clients = 0;
    unsigned fatal_clients = 0;
    std::string first_error;
    std::string first_fatal;

    // At least one successful call and every client connected and stayed connected.
    [[nodiscard]] bool measured() const { return !latencies_ns.empty() && fatal_clients == 0; }
    [[nodiscard]] bool clean() const { return measured() && errors == 0; }
    bench::Sample sample() { return bench::summarise(latencies_ns, wall_s, errors); }
    // What went wrong, for a message; empty when nothing did.
    [[nodiscard]] std::string problems(const std::string& label) const
    {
        std::string text;
        if (!first_fatal.empty()) {
            text += label + ": " + std::to_string(fatal_clients) + " of " + std::to_string(clients) +
                    " clients failed: " + first_fatal;
        }
        if (errors > 0) {
            text += (text.empty() ? "" : "; ") + label + ": " + std::to_string(errors) +
                    " failed calls; first: " + first_error;
        }
        if (text.empty() && latencies_ns.empty()) {
            text = label + ": no successful call";
        }
        return text;
    }
};

GroupResult merge(const std::vector<ClientResult>& results, std::size_t begin, std::size_t end)
{
    GroupResult g;
    g.clients = static_cast<unsigned>(end - begin);
    std::size_t total = 0;
    for (std::size_t i = begin; i < end; ++i) {
        total += results[i].latencies_ns.size();
    }
    g.latencies_ns.reserve(total);
    std::int64_t start = 0;
    std::int64_t stop = 0;
    bool any_measured = false;
    std::int64_t first_error_ns = 0;
    for (std::size_t i = begin; i < end; ++i) {
        const ClientResult& r = results[i];
        g.latencies_ns.insert(g.latencies_ns.end(), r.latencies_ns.begin(), r.latencies_ns.end());
        g.errors += r.errors;
        if (!r.first_error.empty() && (g.first_error.empty() || r.first_error_ns < first_error_ns)) {
            g.first_error = r.first_error;
            first_error_ns = r.first_error_ns;
        }
        if (!r.fatal.empty()) {
            ++g.fatal_clients;
            if (g.first_fatal.empty()) {
                g.first_fatal = r.fatal;
            }
        }
        if (r.measured) {
            start = any_measured ? std::min(start, r.start_ns) : r.start_ns;
            stop = any_measured ? std::max(stop, r.end_ns) : r.end_ns;
            any_measured = true;
        }
    }
    g.wall_s = any_measured ? static_cast<double>(stop - start) / 1e9 : 0.0;
    return g;
}

struct LoadResult {
    GroupResult main;
    std::optional<GroupResult> probe;
};

// Runs spec.clients clients (and the probe client, if any), released together.
LoadResult run_load(const LoadSpec& spec)
{
    const std::size_t total = spec.clients + (spec.probe ? 1U : 0U);
    std::vector<ClientResult> results(total);
    std::latch ready(static_cast<std::ptrdiff_t>(total));
    {
        std::vector<std::jthread> threads;
        threads.reserve(total);
        for (std::size_t i = 0; i < total; ++i) {
            const Call& call = i < spec.clients ? spec.call : *spec.probe;
            threads.emplace_back(
                [&spec, &call, &ready, &result = results[i]] { run_client(spec, call, result, ready); });
        }
    }  // jthreads join here
    LoadResult out;
    out.main = merge(results, 0, spec.clients);
    if (spec.probe) {
        out.probe = merge(results, spec.clients, total);
    }
    return out;
}

// ---- options ------------------------------------------------------------------------------------

struct Options {
    // Single measurement.
    Call call;
    std::string label;
    unsigned clients = 1;
    std::uint64_t calls = 0;
    bool json = false;
    // Both.
    std::string suite;  // empty: one measurement
    std::string address;
    double seconds = 3.0;
    std::uint64_t warmup = 100;
    bool have_warmup = false;
    double timeout = 5.0;
    // Suites.
    unsigned rounds = 5;
    double durable_seconds = 5.0;
    std::uint64_t durable_warmup = 20;
    std::string vault_name = codexvault::bus::kBusName;
    std::string noop_name = bench::kNoopName;
    bool stand_in = false;
    pid_t vault_pid = 0;
    std::vector<pid_t> pin_pids;
    std::string state_dir;
    std::string ungranted;
    std::string grant_id;
    std::string summary;
};

void usage(FILE* out)
{
    std::fputs(
        "usage: bus_bench --bus ADDRESS --dest NAME --path PATH --iface IFACE --method METHOD\n"
        "                 [--capability CAP] [--expect-error NAME]\n"
        "                 [--clients N] [--seconds S | --calls N] [--warmup N] [--timeout S]\n"
        "                 [--label TEXT] [--json]\n"
        "       bus_bench --suite bus --bus ADDRESS [--vault-name NAME] [--noop-name NAME] [--stand-in]\n"
        "                 [--vault-pid PID] [--pin-pid PID]... [COMMON]\n"
        "       bus_bench --suite durable --bus ADDRESS --state-dir DIR --capability CAP --ungranted CAP\n"
        "                 [--grant-id ID] [--vault-name NAME] [--noop-name NAME] [--stand-in] [COMMON]\n"
        "  COMMON: [--rounds R] [--seconds S] [--warmup N] [--durable-seconds S] [--durable-warmup N]\n"
        "          [--timeout S] [--summary FILE]\n"
        "  --capability CAP   call with the arguments (s CAP, a{sv} {}) (the vault's Use and Check)\n"
        "  --expect-error NAME  an error reply NAME counts as a successful call\n"
        "  --clients N   client threads, each with its own connection (default 1, max 256)\n"
        "  --seconds S   measured run time per client (default 3; fractions allowed); in a suite, the\n"
        "                measured time of each measurement, split into --rounds rounds (default 5)\n"
        "  --calls N     measured calls per client instead of a time budget\n"
        "  --warmup N    unrecorded calls per client before the run (default 100; suite: 200 per round)\n"
        "  --timeout S   per-call timeout (default 5)\n"
        "  --json        print one JSON object instead of the text line\n"
        "  --pin-pid PID pin this process's threads (and this program) to one CPU for section 1\n"
        "  --vault-pid PID  the started vault, whose RSS is read (the name's owner on the bus wins)\n"
        "  --summary FILE  append the measurements and figures to FILE\n",
        out);
}

template <typename T>
bool parse_uint(std::string_view text, T& value)
{
    const auto* end = text.data() + text.size();
    const auto [ptr, ec] = std::from_chars(text.data(), end, value);
    return ec == std::errc() && ptr == end;
}

bool parse_seconds(const char* text, double& value)
{
    char* end = nullptr;
    errno = 0;
    value = std::strtod(text, &end);
    return errno == 0 && end != text && *end == '\0' && std::isfinite(value) && value > 0.0 && value <= kMaxSeconds;
}

// Returns 0 to run, -1 after --help, or an exit status.
int parse_args(int argc, char** argv, Options& opt)
{
    bool have_seconds = false;
    std::optional<std::string> capability;
    for (int i = 1; i < argc; ++i) {
        const std::string_view arg = argv[i];
        if (arg == "-h" || arg == "--help") {
            usage(stdout);
            return -1;
        }
        if (arg == "--json") {
            opt.json = true;
            continue;
        }
        if (arg == "--stand-in") {
            opt.stand_in = true;
            continue;
        }
        if (i + 1 >= argc) {
            std::fprintf(stderr, "bus_bench: unknown option or missing value: %s\n", argv[i]);
            return 2;
        }
        const char* value = argv[++i];
        bool ok = true;
        int pid = 0;
        if (arg == "--bus") {
            opt.address = value;
        } else if (arg == "--suite") {
            opt.suite = value;
            ok = opt.suite == "bus" || opt.suite == "durable";
        } else if (arg == "--dest") {
            opt.call.dest = value;
        } else if (arg == "--path") {
            opt.call.path = value;
        } else if (arg == "--iface") {
            opt.call.iface = value;
        } else if (arg == "--method") {
            opt.call.method = value;
        } else if (arg == "--label") {
            opt.label = value;
        } else if (arg == "--capability") {
            capability = value;
            ok = !capability->empty();
        } else if (arg == "--expect-error") {
            opt.call.expect_error = value;
            ok = !opt.call.expect_error.empty();
        } else if (arg == "--clients") {
            ok = parse_uint(value, opt.clients) && opt.clients >= 1 && opt.clients <= kMaxClients;
        } else if (arg == "--seconds") {
            ok = parse_seconds(value, opt.seconds);
            have_seconds = true;
        } else if (arg == "--calls") {
            ok = parse_uint(value, opt.calls) && opt.calls >= 1 && opt.calls <= 100'000'000;
        } else if (arg == "--warmup") {
            ok = parse_uint(value, opt.warmup) && opt.warmup <= 100'000'000;
            opt.have_warmup = true;
        } else if (arg == "--timeout") {
            ok = parse_seconds(value, opt.timeout);
        } else if (arg == "--rounds") {
            ok = parse_uint(value, opt.rounds) && opt.rounds >= 1 && opt.rounds <= 99;
        } else if (arg == "--durable-seconds") {
            ok = parse_seconds(value, opt.durable_seconds);
        } else if (arg == "--durable-warmup") {
            ok = parse_uint(value, opt.durable_warmup) && opt.durable_warmup <= 100'000'000;
        } else if (arg == "--vault-name") {
            opt.vault_name = value;
            ok = sd_bus_service_name_is_valid(value) != 0;
        } else if (arg == "--noop-name") {
            opt.noop_name = value;
            ok = sd_bus_service_name_is_valid(value) != 0;
        } else if (arg == "--vault-pid") {
            ok = parse_uint(value, pid) && pid > 0;
            opt.vault_pid = pid;
        } else if (arg == "--pin-pid") {
            ok = parse_uint(value, pid) && pid > 0;
            opt.pin_pids.push_back(pid);
        } else if (arg == "--state-dir") {
            opt.state_dir = value;
            ok = !opt.state_dir.empty();
        } else if (arg == "--ungranted") {
            opt.ungranted = value;
            ok = !opt.ungranted.empty();
        } else if (arg == "--grant-id") {
            opt.grant_id = value;
        } else if (arg == "--summary") {
            opt.summary = value;
        } else {
            std::fprintf(stderr, "bus_bench: unknown option: %s\n", argv[i - 1]);
            return 2;
        }
        if (!ok) {
            std::fprintf(stderr, "bus_bench: bad value for %s: '%s'\n", argv[i - 1], value);
            return 2;
        }
    }
    opt.call.capability = capability;
    if (opt.address.empty()) {
        std::fputs("bus_bench: --bus is required\n", stderr);
        usage(stderr);
        return 2;
    }
    if (!opt.suite.empty()) {
        if (!opt.have_warmup) {
            opt.warmup = 200;
        }
        if (opt.seconds / opt.rounds < 0.001 || opt.durable_seconds / opt.rounds < 0.001) {
            std::fputs("bus_bench: --seconds / --rounds and --durable-seconds / --rounds must be >= 0.001\n", stderr);
            return 2;
        }
        if (opt.suite == "durable" &&
            (opt.state_dir.empty() || (!opt.stand_in && (!capability || opt.ungranted.empty())))) {
            std::fputs("bus_bench: --suite durable needs --state-dir, and --capability and --ungranted for the vault\n",
                       stderr);
            return 2;
        }
        return 0;
    }
    const Call& c = opt.call;
    if (c.dest.empty() || c.path.empty() || c.iface.empty() || c.method.empty()) {
        std::fputs("bus_bench: --dest, --path, --iface and --method are required (or --suite)\n", stderr);
        usage(stderr);
        return 2;
    }
    if (have_seconds && opt.calls > 0) {
        std::fputs("bus_bench: --seconds and --calls are mutually exclusive\n", stderr);
        return 2;
    }
    if (!sd_bus_service_name_is_valid(c.dest.c_str()) || !sd_bus_object_path_is_valid(c.path.c_str()) ||
        !sd_bus_interface_name_is_valid(c.iface.c_str()) || !sd_bus_member_name_is_valid(c.method.c_str())) {
        std::fputs("bus_bench: invalid --dest, --path, --iface or --method\n", stderr);
        return 2;
    }
    if (opt.label.empty()) {
        opt.label = c.method;
    }
    return 0;
}

// ---- one measurement (the original command line) --------------------------------------------

std::string json_escape(std::string_view s)
{
    std::string out;
    out.reserve(s.size() + 2);
    for (const char c : s) {
        switch (c) {
        case '"':
            out += "\\\"";
            break;
        case '\\':
            out += "\\\\";
            break;
        case '\n':
            out += "\\n";
            break;
        case '\t':
            out += "\\t";
            break;
        default:
            if (static_cast<unsigned char>(c) < 0x20) {
                out += bench::format("\\u%04x", static_cast<unsigned>(static_cast<unsigned char>(c)));
            } else {
                out += c;
            }
        }
    }
    return out;
}

int run_single(const Options& opt)
{
    LoadSpec spec;
    spec.address = opt.address;
    spec.call = opt.call;
    spec.clients = opt.clients;
    spec.seconds = opt.seconds;
    spec.calls = opt.calls;
    spec.warmup = opt.warmup;
    spec.timeout = opt.timeout;
    LoadResult result = run_load(spec);
    GroupResult& g = result.main;
    const bench::Sample s = g.sample();

    if (!g.first_fatal.empty()) {
        std::fprintf(stderr, "bus_bench: %s: %u of %u clients failed: %s\n", opt.label.c_str(), g.fatal_clients,
                     g.clients, g.first_fatal.c_str());
    }
    if (g.errors > 0) {
        std::fprintf(stderr, "bus_bench: %s: %llu failed calls; first: %s\n", opt.label.c_str(),
                     static_cast<unsigned long long>(g.errors), g.first_error.c_str());
    }
    if (opt.json) {
        std::printf(
            "{\"label\":\"%s\",\"method\":\"%s.%s\",\"clients\":%u,\"calls\":%llu,\"errors\":%llu,"
            "\"failed_clients\":%u,\"wall_s\":%.3f,\"calls_per_s\":%.1f,\"p50_us\":%.1f,\"p90_us\":%.1f,"
            "\"p99_us\":%.1f,\"max_us\":%.1f,\"first_error\":\"%s\"}\n",
            json_escape(opt.label).c_str(), json_escape(opt.call.iface).c_str(), json_escape(opt.call.method).c_str(),
            opt.clients, static_cast<unsigned long long>(s.calls), static_cast<unsigned long long>(s.errors),
            g.fatal_clients, s.wall_s, s.calls_per_s, s.p50_us, s.p90_us, s.p99_us, s.max_us,
            json_escape(g.first_error.empty() ? g.first_fatal : g.first_error).c_str());
    } else {
        std::printf(
            "%-24s clients=%-3u calls=%-8llu errors=%-6llu wall=%.2fs  %10.1f calls/s  "
            "p50=%.1fus p90=%.1fus p99=%.1fus max=%.1fus\n",
            opt.label.c_str(), opt.clients, static_cast<unsigned long long>(s.calls),
            static_cast<unsigned long long>(s.errors), s.wall_s, s.calls_per_s, s.p50_us, s.p90_us, s.p99_us, s.max_us);
        if (!g.first_error.empty()) {
            std::printf("%-24s first error: %s\n", "", g.first_error.c_str());
        }
    }
    std::fflush(stdout);
    return (s.calls > 0 && g.fatal_clients == 0) ? 0 : 1;
}

// ---- suites: interleaved rounds -------------------------------------------------------------

struct Measurement {
    std::string label;
    unsigned clients = 1;
    Call call;
    double round_seconds = 0.0;
    std::uint64_t warmup = 0;
    std::optional<Call> probe;  // one extra client alongside, recorded apart
    std::string probe_label;
    std::string fdatasync_dir;  // not empty: a round is the fdatasync loop in this folder
    bench::Rounds rounds;
    bench::Rounds probe_rounds;
    bool failed = false;  // some round had failed calls or did not measure
};

class Suite {
public:
    Suite(const Options& opt, std::string title) : opt_(opt), report_(std::move(title)) {}

    bench::Report& report() { return report_; }
    [[nodiscard]] const Options& options() const { return opt_; }

    // Rounds interleaved over the measurements, then one line each.
    void measure(const std::vector<Measurement*>& ms)
    {
        run(ms);
        for (const Measurement* m : ms) {
            show(*m);
        }
    }

    // Rounds interleaved over the measurements, shown later with show().
    void run(const std::vector<Measurement*>& ms)
    {
        for (unsigned r = 0; r < opt_.rounds; ++r) {
            for (Measurement* m : ms) {
                run_round(*m);
            }
        }
    }

    // A measurement's line (and its probe's).
    void show(const Measurement& m)
    {
        show_line(m.label, std::to_string(m.clients), m.rounds);
        if (m.probe) {
            show_line("+ " + m.probe_label, "+1", m.probe_rounds);
        }
    }

    // The closing lines: failed measurements, then the summary block.
    void finish()
    {
        if (!failures_.empty()) {
            report_.warning(
                bench::format("WARNING: %zu measurement(s) had failed calls or rounds; figures cover "
                              "successful calls only:",
                              failures_.size()));
            for (const std::string& f : failures_) {
                report_.warning("  " + f);
            }
        }
        if (!report_.append_summary(opt_.summary, bench::format("%-26s %7s %10s %10s %10s %10s %7s", "measurement",
                                                                "clients", "calls/s", "p50", "p90", "p99", "errors"))) {
            std::fprintf(stderr, "bus_bench: cannot append to %s: %s\n", opt_.summary.c_str(), std::strerror(errno));
        }
    }

private:
    void note_failure(Measurement& m, const std::string& text)
    {
        if (m.failed) {
            return;  // shown once per measurement
        }
        m.failed = true;
        std::printf("      bus_bench: %s\n", text.c_str());
        std::fflush(stdout);
        failures_.push_back(text);
    }

    void record(Measurement& m, bench::Rounds& rounds, GroupResult& g, const std::string& label)
    {
        if (g.measured()) {
            rounds.add(g.sample());
        } else {
            rounds.add_failed(g.errors);
        }
        if (!g.clean()) {
            note_failure(m, g.problems(label));
        }
    }

    void run_round(Measurement& m)
    {
        if (!m.fdatasync_dir.empty()) {
            const bench::FdatasyncResult r =
                bench::run_fdatasync(m.fdatasync_dir, m.round_seconds, static_cast<unsigned>(m.warmup));
            if (r.ok) {
                m.rounds.add(r.sample);
            } else {
                m.rounds.add_failed(0);
                note_failure(m, m.label + ": " + r.error);
            }
            return;
        }
        LoadSpec spec;
        spec.address = opt_.address;
        spec.call = m.call;
        spec.clients = m.clients;
        spec.seconds = m.round_seconds;
        spec.warmup = m.warmup;
        spec.timeout = opt_.timeout;
        spec.probe = m.probe;
        LoadResult result = run_load(spec);
        record(m, m.rounds, result.main, bench::format("%s, %u client(s)", m.label.c_str(), m.clients));
        if (result.probe) {
            record(m, m.probe_rounds, *result.probe, m.probe_label);
        }
    }

    void show_line(const std::string& label, const std::string& clients, const bench::Rounds& r)
    {
        const auto range = r.rate_range();
        const std::string range_text =
            range ? bench::format("%.0f-%.0f", range->first, range->second) : std::string("n/a");
        report_.line(
            bench::format("%-24s %2s client(s) %9s calls/s (rounds %13s)  p50 %8s  p90 %8s  p99 %8s us  "
                          "errors %llu",
                          label.c_str(), clients.c_str(), bench::fixed(r.calls_per_s()).c_str(), range_text.c_str(),
                          bench::fixed(r.p50_us()).c_str(), bench::fixed(r.p90_us()).c_str(),
                          bench::fixed(r.p99_us()).c_str(), static_cast<unsigned long long>(r.errors())));
        report_.row(bench::format("%-26s %7s %10s %10s %10s %10s %7llu", label.c_str(), clients.c_str(),
                                  bench::fixed(r.calls_per_s()).c_str(), bench::fixed(r.p50_us()).c_str(),
                                  bench::fixed(r.p90_us()).c_str(), bench::fixed(r.p99_us()).c_str(),
                                  static_cast<unsigned long long>(r.errors())));
    }

    const Options& opt_;
    bench::Report report_;
    std::vector<std::string> failures_;
};

// The vault (or its stand-in) and the no-op server, as calls.
struct Targets {
    std::string vault_label;  // "vault", or "noop2" for the stand-in
    std::string whoami_label;
    std::string status_label;
    Call vault_ping, whoami, status, noop_ping, nop;
};

Targets targets_of(const Options& opt)
{
    namespace bus = codexvault::bus;
    Targets t;
    const std::string path = opt.stand_in ? bench::kNoopPath : bus::kObjectPath;
    const std::string iface = opt.stand_in ? bench::kNoopInterface : bus::kInterface;
    t.vault_label = opt.stand_in ? "noop2" : "vault";
    t.whoami_label = opt.stand_in ? "WhoAmI*" : "WhoAmI";
    t.status_label = opt.stand_in ? "Status*" : "Status";
    t.vault_ping = Call{opt.vault_name, path, bench::kPeerInterface, "Ping", std::nullopt, {}};
    t.whoami =
        Call{opt.vault_name, path, iface, opt.stand_in ? bench::kNoopMethod : bus::method::kWhoAmI, std::nullopt, {}};
    t.status =
        Call{opt.vault_name, path, iface, opt.stand_in ? bench::kNoopMethod : bus::method::kStatus, std::nullopt, {}};
    t.noop_ping = Call{opt.noop_name, bench::kNoopPath, bench::kPeerInterface, "Ping", std::nullopt, {}};
    t.nop = Call{opt.noop_name, bench::kNoopPath, bench::kNoopInterface, bench::kNoopMethod, std::nullopt, {}};
    return t;
}

Measurement make(std::string label, const Call& call, unsigned clients, double round_seconds, std::uint64_t warmup)
{
    Measurement m;
    m.label = std::move(label);
    m.call = call;
    m.clients = clients;
    m.round_seconds = round_seconds;
    m.warmup = warmup;
    return m;
}

bench::Figure fig(std::string name, bench::Value value, int decimals, std::string unit = {},
                  std::optional<bench::Target> target = std::nullopt, std::string note = {})
{
    return bench::Figure{std::move(name), value, decimals, std::move(unit), target, std::move(note)};
}

// ---- suite "bus": sections 1-3 ---------------------------------------------------------------

// The process that owns `name` on the bus, or 0.
pid_t owner_pid(const Options& opt, const std::string& name)
{
    std::string why;
    auto bus = connect(opt.address, opt.timeout, why);
    if (!bus) {
        return 0;
    }
    BusError error;
    sd_bus_message* raw = nullptr;
    if (sd_bus_call_method(bus->get(), "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
                           "GetConnectionUnixProcessID", error.get(), &raw, "s", name.c_str()) < 0) {
        return 0;
    }
    const MessagePtr reply(raw);
    std::uint32_t pid = 0;
    if (sd_bus_message_read(reply.get(), "u", &pid) < 0) {
        return 0;
    }
    return static_cast<pid_t>(pid);
}

// A field of /proc/PID/status in KiB ("VmRSS", "VmHWM"), as MiB.
bench::Value status_mib(pid_t pid, const std::string& field)
{
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(in, line)) {
        if (line.starts_with(field + ":")) {
            const double kib = std::strtod(line.c_str() + field.size() + 1, nullptr);
            return kib / 1024.0;
        }
    }
    return std::nullopt;
}

// Pins every thread of the given processes, and this thread (the clients it starts inherit it), to
// one CPU; restore() puts each thread's own mask back.
class Pinning {
public:
    Pinning() = default;
    Pinning(const Pinning&) = delete;
    Pinning& operator=(const Pinning&) = delete;
    ~Pinning() { restore(); }

    // Returns the CPU, or nullopt with `why` (nothing stays pinned then).
    std::optional<int> pin(const std::vector<pid_t>& pids, std::string& why)
    {
        cpu_set_t mine;
        CPU_ZERO(&mine);
        if (sched_getaffinity(0, sizeof mine, &mine) != 0) {
            why = std::string("sched_getaffinity: ") + std::strerror(errno);
            return std::nullopt;
        }
        int cpu = -1;
        for (int c = 0; c < CPU_SETSIZE; ++c) {
            if (CPU_ISSET(c, &mine)) {
                cpu = c;
                break;
            }
        }
        if (cpu < 0) {
            why = "no CPU in this process's affinity mask";
            return std::nullopt;
        }
        std::vector<pid_t> tids{0};
        for (const pid_t pid : pids) {
            std::error_code ec;
            std::filesystem::directory_iterator it("/proc/" + std::to_string(pid) + "/task", ec);
            if (ec) {
                why = "cannot list the threads of pid " + std::to_string(pid) + ": " + ec.message();
                return std::nullopt;
            }
            for (const auto& entry : it) {
                pid_t tid = 0;
                if (parse_uint(entry.path().filename().string(), tid)) {
                    tids.push_back(tid);
                }
            }
        }
        cpu_set_t one;
        CPU_ZERO(&one);
        CPU_SET(cpu, &one);
        for (const pid_t tid : tids) {
            cpu_set_t old;
            CPU_ZERO(&old);
            if (sched_getaffinity(tid, sizeof old, &old) != 0 || sched_setaffinity(tid, sizeof one, &one) != 0) {
                why = "cannot pin " + (tid == 0 ? std::string("bus_bench") : "thread " + std::to_string(tid)) + ": " +
                      std::strerror(errno);
                restore();
                return std::nullopt;
            }
            saved_.emplace_back(tid, old);
        }
        return cpu;
    }

    void restore()
    {
        for (auto& [tid, mask] : saved_) {
            (void)sched_setaffinity(tid, sizeof mask, &mask);
        }
        saved_.clear();
    }

private:
    std::vector<std::pair<pid_t, cpu_set_t>> saved_;
};

int run_bus_suite(const Options& opt)
{
    const Targets t = targets_of(opt);
    const std::string& VL = t.vault_label;
    const std::string& WL = t.whoami_label;
    const std::string& SL = t.status_label;
    Suite suite(opt, "bus round trips, throughput and RSS (sections 1-3)");
    bench::Report& out = suite.report();

    // The process to measure is the one that owns the name; it should be the one started.
    pid_t rss_pid = opt.vault_pid;
    const pid_t owner = owner_pid(opt, opt.vault_name);
    if (owner == 0) {
        std::fprintf(stderr, "bus_bench: nobody owns %s on %s\n", opt.vault_name.c_str(), opt.address.c_str());
        return 1;
    }
    if (rss_pid != 0 && owner != rss_pid) {
        out.line(bench::format("note: %s is owned by pid %d, not the started pid %d; measuring %d",
                               opt.vault_name.c_str(), static_cast<int>(owner), static_cast<int>(rss_pid),
                               static_cast<int>(owner)));
    }
    rss_pid = owner;

    const double round_s = opt.seconds / opt.rounds;
    std::printf(
        "each measurement: %u interleaved rounds of %.3fs (median of rounds shown), %llu unrecorded warm-up "
        "calls per client per round\n",
        opt.rounds, round_s, static_cast<unsigned long long>(opt.warmup));
    if (opt.stand_in) {
        std::printf(
            "--stand-in: a second noop_server (%s) stands in for the vault; its WhoAmI*/Status* rows call Nop\n",
            opt.vault_name.c_str());
    }
    std::printf("\n");
    std::fflush(stdout);

    // Idle RSS: the vault has answered the script's first Ping just before this started.
    std::this_thread::sleep_for(std::chrono::seconds(1));
    const bench::Value rss_idle = status_mib(rss_pid, "VmRSS");

    Measurement ping1 = make("Ping " + VL, t.vault_ping, 1, round_s, opt.warmup);
    Measurement whoami1 = make(WL + " " + VL, t.whoami, 1, round_s, opt.warmup);
    Measurement status1 = make(SL + " " + VL, t.status, 1, round_s, opt.warmup);
    Measurement nping1 = make("Ping noop", t.noop_ping, 1, round_s, opt.warmup);
    Measurement nop1 = make("Nop noop", t.nop, 1, round_s, opt.warmup);
    Measurement whoami4 = make(WL + " " + VL, t.whoami, 4, round_s, opt.warmup);
    Measurement status4 = make(SL + " " + VL, t.status, 4, round_s, opt.warmup);
    Measurement nop4 = make("Nop noop", t.nop, 4, round_s, opt.warmup);

    // Single-client latency depends heavily on whether the client, dbus-daemon and the server
    // share a CPU: a cross-CPU wake-up costs far more than the call itself on many (virtual)
    // machines, and the scheduler's choice flips from run to run; so section 1 runs pinned.
    std::string pin_note = "unpinned";
    {
        Pinning pinning;
        if (!opt.pin_pids.empty()) {
            std::string why;
            if (const auto cpu = pinning.pin(opt.pin_pids, why)) {
                pin_note = "all processes pinned to CPU " + std::to_string(*cpu);
            } else {
                std::fprintf(stderr, "note: %s; running unpinned\n", why.c_str());
            }
        }
        out.heading("1. single client, sequential (" + pin_note + ")");
        suite.measure({&ping1, &whoami1, &status1, &nping1, &nop1});
    }
    using bench::at_least;
    using bench::at_most;
    using bench::ratio;
    out.figure(fig(WL + "/Ping " + VL + " p50, 1 client", ratio(whoami1.rounds.p50_us(), ping1.rounds.p50_us()), 2, "x",
                   at_most(1.5)));
    out.figure(
        fig(WL + "/Ping " + VL + " p99, 1 client", ratio(whoami1.rounds.p99_us(), ping1.rounds.p99_us()), 2, "x"));
    out.figure(
        fig(SL + "/Ping " + VL + " p50, 1 client", ratio(status1.rounds.p50_us(), ping1.rounds.p50_us()), 2, "x"));
    out.figure(
        fig(SL + "/Ping " + VL + " p99, 1 client", ratio(status1.rounds.p99_us(), ping1.rounds.p99_us()), 2, "x"));
    out.figure(fig("Nop/Ping noop p50, 1 client", ratio(nop1.rounds.p50_us(), nping1.rounds.p50_us()), 2, "x",
                   std::nullopt, "(baseline: a vtable method vs Ping in the same server)"));
    out.figure(fig("Nop/Ping noop p99, 1 client", ratio(nop1.rounds.p99_us(), nping1.rounds.p99_us()), 2, "x"));
    out.line("");

    out.heading("2. throughput, unpinned (the 1-client figures are section 1's)");
    suite.measure({&whoami4, &status4, &nop4});
    out.figure(fig(WL + " " + VL + "/Nop noop calls/s, 1 client",
                   ratio(whoami1.rounds.calls_per_s(), nop1.rounds.calls_per_s()), 2));
    out.figure(fig(WL + " " + VL + "/Nop noop calls/s, 4 clients",
                   ratio(whoami4.rounds.calls_per_s(), nop4.rounds.calls_per_s()), 2, "", at_least(0.70)));
    out.figure(fig(SL + " " + VL + "/Nop noop calls/s, 1 client",
                   ratio(status1.rounds.calls_per_s(), nop1.rounds.calls_per_s()), 2));
    out.figure(fig(SL + " " + VL + "/Nop noop calls/s, 4 clients",
                   ratio(status4.rounds.calls_per_s(), nop4.rounds.calls_per_s()), 2, "", at_least(0.70)));
    out.line("");

    out.heading(bench::format("3. idle RSS of %s (pid %d)", VL.c_str(), static_cast<int>(rss_pid)));
    std::this_thread::sleep_for(std::chrono::seconds(1));
    const bench::Value rss_after = status_mib(rss_pid, "VmRSS");
    const bench::Value rss_peak = status_mib(rss_pid, "VmHWM");
    out.figure(fig("idle RSS 1 s after start", rss_idle, 1, " MiB", at_most(12)));
    out.figure(fig("idle RSS 1 s after the load", rss_after, 1, " MiB", at_most(12)));
    out.figure(fig("peak RSS (VmHWM)", rss_peak, 1, " MiB"));
    if (!rss_after) {
        out.warning(bench::format("WARNING: %s (pid %d) is gone", VL.c_str(), static_cast<int>(rss_pid)));
    }
    out.line("");
    suite.finish();
    return 0;
}

// ---- suite "durable": sections 4-7 -----------------------------------------------------------

int run_durable_suite(const Options& opt)
{
    namespace bus = codexvault::bus;
    const Targets t = targets_of(opt);
    const std::string& VL = t.vault_label;
    Suite suite(opt, "durable calls (sections 4-7)");
    bench::Report& out = suite.report();
    using bench::at_least;
    using bench::at_most;
    using bench::ratio;

    {
        std::string why;
        if (!connect(opt.address, opt.timeout, why)) {
            std::fprintf(stderr, "bus_bench: %s\n", why.c_str());
            return 1;
        }
    }
    const double round_s = opt.seconds / opt.rounds;
    const double durable_round_s = opt.durable_seconds / opt.rounds;
    const std::uint64_t dw = opt.durable_warmup;
    const std::string cap = opt.call.capability.value_or("");

    Measurement fsync = make("fdatasync 250 B", Call{}, 1, durable_round_s, 20);
    fsync.fdatasync_dir = opt.state_dir;
    const Call use{opt.vault_name, bus::kObjectPath, bus::kInterface, bus::method::kUse, cap, {}};
    const Call check{opt.vault_name, bus::kObjectPath, bus::kInterface, bus::method::kCheck, cap, {}};
    const Call refused{opt.vault_name,  bus::kObjectPath,
                       bus::kInterface, bus::method::kUse,
                       opt.ungranted,   codexvault::error_info(codexvault::ErrorCode::PermissionDenied).bus_name};
    Measurement use1 = make("Use (durable)", use, 1, durable_round_s, dw);
    Measurement use4 = make("Use (durable)", use, 4, durable_round_s, dw);
    Measurement use16 = make("Use (durable)", use, 16, durable_round_s, dw);
    Measurement check16 = make("Check (audited)", check, 16, durable_round_s, dw);
    Measurement check1 = make("Check (audited)", check, 1, durable_round_s, dw);
    Measurement deny4 = make("Use refused", refused, 4, round_s, opt.warmup);
    Measurement use16s = make("Use (durable), probed", use, 16, durable_round_s, dw);
    use16s.probe = t.status;
    use16s.probe_label = "Status probe";
    Measurement check16s = make("Check (audited), probed", check, 16, durable_round_s, dw);
    check16s.probe = t.status;
    check16s.probe_label = "Status probe";
    Measurement check4 = make("Check (audited)", check, 4, round_s, opt.warmup);
    Measurement nop4b = make("Nop noop", t.nop, 4, round_s, opt.warmup);

    out.heading("4. durable audited decisions vs one fdatasync per record (unpinned)");
    out.line("fdatasync: " + bench::describe(opt.state_dir, bench::describe_filesystem(opt.state_dir)));
    if (opt.stand_in) {
        out.line("--stand-in: no vault, so only the fdatasync baseline");
        suite.measure({&fsync});
    } else {
        out.line(bench::format("Use %s under runtime grant %s (uid %u), closed loop, one connection per client;",
                               cap.c_str(), opt.grant_id.empty() ? "?" : opt.grant_id.c_str(),
                               static_cast<unsigned>(getuid())));
        out.line(
            bench::format("rounds of %.3fs, %llu warm-up calls per client per round; 'Check (audited)' is the "
                          "informational",
                          durable_round_s, static_cast<unsigned long long>(dw)));
        out.line(bench::format("Check of %s: audited, no fdatasync waited for; 'Use refused' is Use of %s without a",
                               cap.c_str(), opt.ungranted.c_str()));
        out.line("grant: repeated denials are folded and answered at once (no fdatasync waited for);");
        out.line("section 5's two measurements run in the same interleaved rounds");
        suite.run({&fsync, &use1, &use4, &use16, &check16, &check1, &deny4, &use16s, &check16s});
        for (const Measurement* m : {&fsync, &use1, &use4, &use16, &check16, &check1, &deny4}) {
            suite.show(*m);
        }
    }
    // The ceiling of one fdatasync per record is what the measured loop achieved (records/s): it
    // pays the same latency distribution, tail included, that the daemon's commit rounds pay. 1 s /
    // the median latency is shown beside it; on a disk whose fdatasync latency has a long tail it
    // is far higher than what any loop achieves, so it is information only.
    const bench::Value ceiling = fsync.rounds.calls_per_s();
    const bench::Value ceiling_p50 = ratio(1e6, fsync.rounds.p50_us());
    out.figure(fig("one fdatasync per record allows (measured loop; the ceiling)", ceiling, 1, " records/s"));
    out.figure(fig("one fdatasync per record allows (1 s / p50 " + bench::fixed(fsync.rounds.p50_us()) + " us)",
                   ceiling_p50, 1, " records/s", std::nullopt, "(information only)"));
    if (!opt.stand_in) {
        out.figure(fig("durable Use 1 client / fdatasync ceiling", ratio(use1.rounds.calls_per_s(), ceiling), 2, "x"));
        out.figure(fig("durable Use 4 clients / fdatasync ceiling", ratio(use4.rounds.calls_per_s(), ceiling), 2, "x"));
        out.figure(fig("durable Use 16 clients / fdatasync ceiling", ratio(use16.rounds.calls_per_s(), ceiling), 2, "x",
                       at_least(3)));
        out.figure(fig("durable Use 16 clients / (1 s / fdatasync p50)", ratio(use16.rounds.calls_per_s(), ceiling_p50),
                       2, "x", std::nullopt, "(information only)"));
        out.figure(fig("durable Use 16 clients / audited Check 16 clients",
                       ratio(use16.rounds.calls_per_s(), check16.rounds.calls_per_s()), 2, "", at_least(0.75)));
    }
    out.line("");

    if (!opt.stand_in) {
        out.heading("5. Status latency seen by one extra client during a 16-client storm (section 4's rounds)");
        out.line("Status called in a closed loop by a 17th client while 16 clients run durable Use, and while");
        out.line("they run audited Check: the same CPU load without the disk");
        suite.show(use16s);
        suite.show(check16s);
        out.figure(fig("Status p99 while 16 clients run durable Use", use16s.probe_rounds.p99_us(), 1, " us"));
        out.figure(fig("Status p99 while 16 clients run audited Check", check16s.probe_rounds.p99_us(), 1, " us"));
        out.figure(fig("Status p99 during durable Use 16 / during audited Check 16",
                       ratio(use16s.probe_rounds.p99_us(), check16s.probe_rounds.p99_us()), 2, "", at_most(1.2)));
        out.figure(fig("Status p50 during durable Use 16 / during audited Check 16",
                       ratio(use16s.probe_rounds.p50_us(), check16s.probe_rounds.p50_us()), 2, "", std::nullopt,
                       "(information only)"));
        out.line("");

        out.heading("6. informational calls with a policy evaluation, 4 clients, unpinned");
        suite.measure({&check4, &nop4b});
        out.figure(fig("audited Check " + VL + "/Nop noop calls/s, 4 clients",
                       ratio(check4.rounds.calls_per_s(), nop4b.rounds.calls_per_s()), 2, "", at_least(0.70)));
        out.line("");

        out.heading("7. latency a durable record adds: Use vs Check of " + cap + ", 1 client (section 4's rounds)");
        const bench::Value use_p50 = use1.rounds.p50_us();
        const bench::Value check_p50 = check1.rounds.p50_us();
        const bench::Value fsync_p50 = fsync.rounds.p50_us();
        out.figure(fig("durable Use p50, 1 client", use_p50, 1, " us"));
        out.figure(fig("durable Use p99, 1 client", use1.rounds.p99_us(), 1, " us"));
        out.figure(fig("audited Check p50, 1 client", check_p50, 1, " us"));
        out.figure(fig("audited Check p99, 1 client", check1.rounds.p99_us(), 1, " us"));
        out.figure(fig("added by the durable record p50 (Use - Check)", bench::difference(use_p50, check_p50), 1, " us",
                       std::nullopt,
                       "(a Use waits for one commit round: its decision and outcome share the fdatasync)"));
        out.figure(fig("added by the durable record p99 (Use - Check)",
                       bench::difference(use1.rounds.p99_us(), check1.rounds.p99_us()), 1, " us"));
        out.figure(fig("one fdatasync p50 (section 4)", fsync_p50, 1, " us"));
        out.figure(fig("one fdatasync p99 (section 4)", fsync.rounds.p99_us(), 1, " us"));
        bench::Value budget;
        if (check_p50 && fsync_p50) {
            budget = *check_p50 + 1.2 * *fsync_p50;
        }
        out.figure(fig("durable Use p50 / (Check p50 + 1.2 × fdatasync p50), 1 client", ratio(use_p50, budget), 2, "",
                       at_most(1),
                       "(" + bench::fixed(use_p50) + " us vs " + bench::fixed(check_p50) + " + 1.2 × " +
                           bench::fixed(fsync_p50) + " = " + bench::fixed(budget) + " us)"));
        out.line("");
    }
    suite.finish();
    return 0;
}

}  // namespace

int main(int argc, char** argv)
{
    Options opt;
    if (const int status = parse_args(argc, argv, opt); status != 0) {
        return status < 0 ? 0 : status;
    }
    if (opt.suite == "bus") {
        return run_bus_suite(opt);
    }
    if (opt.suite == "durable") {
        return run_durable_suite(opt);
    }
    return run_single(opt);
}
