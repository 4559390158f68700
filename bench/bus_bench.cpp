// Load generator for the bus benchmarks: synchronous method calls, back to back, from N clients.
//
//   bus_bench --bus ADDRESS --dest NAME --path PATH --iface IFACE --method METHOD
//             [--capability CAP] [--expect-error NAME]
//             [--clients N] [--seconds S | --calls N] [--warmup N] [--timeout S]
//             [--label TEXT] [--json]
//
// Each client is a thread with its own bus connection (sd-bus objects are not thread-safe) that
// calls METHOD (with no arguments, or with --capability the arguments (s CAP, a{sv} {}) of the
// vault's Use and Check) in a loop with sd_bus_call_method and records every call's latency
// (CLOCK_MONOTONIC) into its own vector. Connections are set up and warmed up (--warmup calls per
// client, not recorded) before the clients are released together. --seconds S runs each client for
// S seconds (default 3); --calls N makes each client do N calls instead. Afterwards the latencies
// are merged and the figures printed: successful calls, calls/s over the wall time of the measured
// phase, and p50/p90/p99/max latency in microseconds. Failed calls are counted separately (their
// latency is not in the percentiles) and the first error's name and message are printed.
//
// Works for any method without arguments, including org.freedesktop.DBus.Peer.Ping, which sd-bus
// answers in the destination's event loop, and for methods shaped like Use/Check (--capability).
// --expect-error NAME counts a call answered with the D-Bus error NAME as a success (to measure a
// refusal, e.g. Use without a grant); any other error is a failed call. Prints figures only; it never judges them. Exit
// status: 0 if the run completed with at least one successful call (failed calls are reported, not fatal), 1 if no call
// succeeded or a client could not connect or lost its connection, 2 on bad usage.
#include <systemd/sd-bus.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <latch>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace {

struct BusUnref {
    void operator()(sd_bus* bus) const noexcept { sd_bus_flush_close_unref(bus); }
};
struct MessageUnref {
    void operator()(sd_bus_message* message) const noexcept { sd_bus_message_unref(message); }
};
using BusPtr = std::unique_ptr<sd_bus, BusUnref>;
using MessagePtr = std::unique_ptr<sd_bus_message, MessageUnref>;

class BusError {
public:
    BusError() = default;
    BusError(const BusError&) = delete;
    BusError& operator=(const BusError&) = delete;
    ~BusError() { sd_bus_error_free(&error_); }
    sd_bus_error* get() noexcept { return &error_; }
    void reset() noexcept { sd_bus_error_free(&error_); }
    [[nodiscard]] bool is_set() const noexcept { return sd_bus_error_is_set(&error_) != 0; }
    [[nodiscard]] const char* name() const noexcept { return error_.name ? error_.name : ""; }
    [[nodiscard]] const char* message() const noexcept { return error_.message ? error_.message : ""; }

private:
    sd_bus_error error_ = SD_BUS_ERROR_NULL;
};

struct Options {
    std::string address;
    std::string dest;
    std::string path;
    std::string iface;
    std::string method;
    std::string label;
    std::optional<std::string> capability;  // send (s CAP, a{sv} {}) instead of no arguments
    std::string expect_error;               // this error reply counts as success
    unsigned clients = 1;
    double seconds = 3.0;
    std::uint64_t calls = 0;  // per client; 0 means run for `seconds`
    std::uint64_t warmup = 100;
    double timeout = 5.0;
    bool json = false;
};

constexpr unsigned kMaxClients = 256;
constexpr double kMaxSeconds = 3600.0;

std::int64_t now_ns()
{
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

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
        if (*error.message() != '\0')
            text += std::string(": ") + error.message();
    } else {
        text = std::string("errno: ") + std::strerror(r < 0 ? -r : r);
    }
    return text;
}

std::optional<BusPtr> connect(const Options& opt, std::string& why)
{
    sd_bus* raw = nullptr;
    int r = sd_bus_new(&raw);
    if (r < 0) {
        why = std::string("sd_bus_new: ") + std::strerror(-r);
        return std::nullopt;
    }
    BusPtr bus(raw);
    const auto timeout_usec = static_cast<std::uint64_t>(opt.timeout * 1e6);
    if ((r = sd_bus_set_address(bus.get(), opt.address.c_str())) < 0 || (r = sd_bus_set_bus_client(bus.get(), 1)) < 0 ||
        (r = sd_bus_set_method_call_timeout(bus.get(), timeout_usec)) < 0 || (r = sd_bus_start(bus.get())) < 0) {
        why = "cannot connect to " + opt.address + ": " + std::strerror(-r);
        return std::nullopt;
    }
    // Waits for the Hello() reply, so connection setup is not charged to the first call.
    const char* unique = nullptr;
    if ((r = sd_bus_get_unique_name(bus.get(), &unique)) < 0) {
        why = "Hello() on " + opt.address + " failed: " + std::strerror(-r);
        return std::nullopt;
    }
    return bus;
}

// One call. Returns true on success; on failure fills `error_text`.
bool call_once(sd_bus* bus, const Options& opt, std::string& error_text, bool& connection_lost)
{
    BusError error;
    sd_bus_message* raw_reply = nullptr;
    const int r = opt.capability ? sd_bus_call_method(bus, opt.dest.c_str(), opt.path.c_str(), opt.iface.c_str(),
                                                      opt.method.c_str(), error.get(), &raw_reply, "sa{sv}",
                                                      opt.capability->c_str(), 0U)
                                 : sd_bus_call_method(bus, opt.dest.c_str(), opt.path.c_str(), opt.iface.c_str(),
                                                      opt.method.c_str(), error.get(), &raw_reply, "");
    const MessagePtr reply(raw_reply);
    if (r >= 0) {
        if (opt.expect_error.empty())
            return true;
        error_text = "unexpected success (expected " + opt.expect_error + ")";
        connection_lost = false;
        return false;
    }
    if (!opt.expect_error.empty() && error.is_set() && opt.expect_error == error.name())
        return true;
    error_text = describe(error, r);
    connection_lost = sd_bus_is_open(bus) <= 0;
    return false;
}

void run_client(const Options& opt, ClientResult& out, std::latch& ready)
{
    std::string why;
    auto bus = connect(opt, why);
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
    for (std::uint64_t i = 0; i < opt.warmup; ++i) {
        if (!call_once(bus->get(), opt, error_text, lost)) {
            note_error();
            if (lost) {
                out.fatal = "connection lost during warm-up: " + error_text;
                arrive();
                return;
            }
        }
    }

    // Enough for most runs without reallocating mid-measurement; grows beyond that if needed.
    constexpr std::uint64_t kReserve = 1u << 18;
    out.latencies_ns.reserve(static_cast<std::size_t>(opt.calls > 0 ? std::min(opt.calls, kReserve) : kReserve));

    arrive();
    out.measured = true;
    out.start_ns = now_ns();
    const auto budget_ns = static_cast<std::int64_t>(opt.seconds * 1e9);
    const std::int64_t deadline = out.start_ns + budget_ns;
    std::uint64_t done = 0;
    std::int64_t t0 = out.start_ns;
    for (;;) {
        if (opt.calls > 0 ? done >= opt.calls : t0 >= deadline)
            break;
        const bool ok = call_once(bus->get(), opt, error_text, lost);
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

// Nearest-rank percentile of a sorted vector, in microseconds.
double percentile_us(const std::vector<std::int64_t>& sorted, double p)
{
    if (sorted.empty())
        return 0.0;
    const double n = static_cast<double>(sorted.size());
    auto rank = static_cast<std::size_t>(std::ceil(p / 100.0 * n));
    rank = std::clamp<std::size_t>(rank, 1, sorted.size());
    return static_cast<double>(sorted[rank - 1]) / 1000.0;
}

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
                char buf[8];
                std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(static_cast<unsigned char>(c)));
                out += buf;
            } else {
                out += c;
            }
        }
    }
    return out;
}

void usage(FILE* out)
{
    std::fputs(
        "usage: bus_bench --bus ADDRESS --dest NAME --path PATH --iface IFACE --method METHOD\n"
        "                 [--capability CAP] [--expect-error NAME]\n"
        "                 [--clients N] [--seconds S | --calls N] [--warmup N] [--timeout S]\n"
        "                 [--label TEXT] [--json]\n"
        "  --capability CAP   call with the arguments (s CAP, a{sv} {}) (the vault's Use and Check)\n"
        "  --expect-error NAME  an error reply NAME counts as a successful call\n"
        "  --clients N   client threads, each with its own connection (default 1, max 256)\n"
        "  --seconds S   measured run time per client (default 3; fractions allowed)\n"
        "  --calls N     measured calls per client instead of a time budget\n"
        "  --warmup N    unrecorded calls per client before the run (default 100)\n"
        "  --timeout S   per-call timeout (default 5)\n"
        "  --json        print one JSON object instead of the text line\n",
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

// Returns 0 to run, or an exit status.
int parse_args(int argc, char** argv, Options& opt)
{
    bool have_seconds = false;
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
        if (i + 1 >= argc) {
            std::fprintf(stderr, "bus_bench: unknown option or missing value: %s\n", argv[i]);
            return 2;
        }
        const char* value = argv[++i];
        bool ok = true;
        if (arg == "--bus") {
            opt.address = value;
        } else if (arg == "--dest") {
            opt.dest = value;
        } else if (arg == "--path") {
            opt.path = value;
        } else if (arg == "--iface") {
            opt.iface = value;
        } else if (arg == "--method") {
            opt.method = value;
        } else if (arg == "--label") {
            opt.label = value;
        } else if (arg == "--capability") {
            opt.capability = value;
        } else if (arg == "--expect-error") {
            opt.expect_error = value;
            ok = !opt.expect_error.empty();
        } else if (arg == "--clients") {
            ok = parse_uint(value, opt.clients) && opt.clients >= 1 && opt.clients <= kMaxClients;
        } else if (arg == "--seconds") {
            ok = parse_seconds(value, opt.seconds);
            have_seconds = true;
        } else if (arg == "--calls") {
            ok = parse_uint(value, opt.calls) && opt.calls >= 1 && opt.calls <= 100'000'000;
        } else if (arg == "--warmup") {
            ok = parse_uint(value, opt.warmup) && opt.warmup <= 100'000'000;
        } else if (arg == "--timeout") {
            ok = parse_seconds(value, opt.timeout);
        } else {
            std::fprintf(stderr, "bus_bench: unknown option: %s\n", argv[i - 1]);
            return 2;
        }
        if (!ok) {
            std::fprintf(stderr, "bus_bench: bad value for %s: '%s'\n", argv[i - 1], value);
            return 2;
        }
    }
    if (opt.address.empty() || opt.dest.empty() || opt.path.empty() || opt.iface.empty() || opt.method.empty()) {
        std::fputs("bus_bench: --bus, --dest, --path, --iface and --method are required\n", stderr);
        usage(stderr);
        return 2;
    }
    if (have_seconds && opt.calls > 0) {
        std::fputs("bus_bench: --seconds and --calls are mutually exclusive\n", stderr);
        return 2;
    }
    if (!sd_bus_service_name_is_valid(opt.dest.c_str()) || !sd_bus_object_path_is_valid(opt.path.c_str()) ||
        !sd_bus_interface_name_is_valid(opt.iface.c_str()) || !sd_bus_member_name_is_valid(opt.method.c_str())) {
        std::fputs("bus_bench: invalid --dest, --path, --iface or --method\n", stderr);
        return 2;
    }
    if (opt.label.empty())
        opt.label = opt.method;
    return 0;
}

}  // namespace

int main(int argc, char** argv)
{
    Options opt;
    if (const int status = parse_args(argc, argv, opt); status != 0)
        return status < 0 ? 0 : status;

    std::vector<ClientResult> results(opt.clients);
    std::latch ready(static_cast<std::ptrdiff_t>(opt.clients));
    {
        std::vector<std::jthread> threads;
        threads.reserve(opt.clients);
        for (unsigned i = 0; i < opt.clients; ++i) {
            threads.emplace_back([&opt, &ready, &result = results[i]] { run_client(opt, result, ready); });
        }
    }  // jthreads join here

    // Merge.
    std::vector<std::int64_t> all;
    std::size_t total = 0;
    for (const auto& r : results)
        total += r.latencies_ns.size();
    all.reserve(total);
    std::uint64_t errors = 0;
    std::int64_t start = 0;
    std::int64_t end = 0;
    bool any_measured = false;
    std::string first_error;
    std::int64_t first_error_ns = 0;
    unsigned fatal_clients = 0;
    std::string first_fatal;
    for (const auto& r : results) {
        all.insert(all.end(), r.latencies_ns.begin(), r.latencies_ns.end());
        errors += r.errors;
        if (!r.first_error.empty() && (first_error.empty() || r.first_error_ns < first_error_ns)) {
            first_error = r.first_error;
            first_error_ns = r.first_error_ns;
        }
        if (!r.fatal.empty()) {
            ++fatal_clients;
            if (first_fatal.empty())
                first_fatal = r.fatal;
        }
        if (r.measured) {
            start = any_measured ? std::min(start, r.start_ns) : r.start_ns;
            end = any_measured ? std::max(end, r.end_ns) : r.end_ns;
            any_measured = true;
        }
    }
    std::sort(all.begin(), all.end());

    const double wall_s = any_measured ? static_cast<double>(end - start) / 1e9 : 0.0;
    const auto calls = static_cast<std::uint64_t>(all.size());
    const double rate = wall_s > 0.0 ? static_cast<double>(calls) / wall_s : 0.0;
    const double p50 = percentile_us(all, 50.0);
    const double p90 = percentile_us(all, 90.0);
    const double p99 = percentile_us(all, 99.0);
    const double max = all.empty() ? 0.0 : static_cast<double>(all.back()) / 1000.0;

    if (!first_fatal.empty()) {
        std::fprintf(stderr, "bus_bench: %s: %u of %u clients failed: %s\n", opt.label.c_str(), fatal_clients,
                     opt.clients, first_fatal.c_str());
    }
    if (errors > 0) {
        std::fprintf(stderr, "bus_bench: %s: %llu failed calls; first: %s\n", opt.label.c_str(),
                     static_cast<unsigned long long>(errors), first_error.c_str());
    }

    if (opt.json) {
        std::printf(
            "{\"label\":\"%s\",\"method\":\"%s.%s\",\"clients\":%u,\"calls\":%llu,\"errors\":%llu,"
            "\"failed_clients\":%u,\"wall_s\":%.3f,\"calls_per_s\":%.1f,\"p50_us\":%.1f,\"p90_us\":%.1f,"
            "\"p99_us\":%.1f,\"max_us\":%.1f,\"first_error\":\"%s\"}\n",
            json_escape(opt.label).c_str(), json_escape(opt.iface).c_str(), json_escape(opt.method).c_str(),
            opt.clients, static_cast<unsigned long long>(calls), static_cast<unsigned long long>(errors), fatal_clients,
            wall_s, rate, p50, p90, p99, max, json_escape(first_error.empty() ? first_fatal : first_error).c_str());
    } else {
        std::printf(
            "%-24s clients=%-3u calls=%-8llu errors=%-6llu wall=%.2fs  %10.1f calls/s  "
            "p50=%.1fus p90=%.1fus p99=%.1fus max=%.1fus\n",
            opt.label.c_str(), opt.clients, static_cast<unsigned long long>(calls),
            static_cast<unsigned long long>(errors), wall_s, rate, p50, p90, p99, max);
        if (!first_error.empty())
            std::printf("%-24s first error: %s\n", "", first_error.c_str());
    }
    std::fflush(stdout);
    return (calls > 0 && fatal_clients == 0) ? 0 : 1;
}
