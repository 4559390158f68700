// Provider mediation, mediated vs direct, against the same local HTTPS server in the same run
// (scripts/mediation-bench.sh sets up the bus, the daemon, the CA, the policy and the secret):
//   - added latency of a small request: Request + stream to EOF + its end (RequestEnded) through the
//     vault, against a libcurl client with keep-alive calling the server itself (p50, p99);
//   - throughput of a 1 MiB streamed response at 1 and 16 concurrent streams, both ways;
//   - the daemon's RSS with 100 streams open at once.
//
//   mediation_bench --bus ADDR --port PORT --cert PEM --key PEM --ca PEM --daemon-pid PID
#include <curl/curl.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <systemd/sd-bus.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "bench/bench_stats.hpp"
#include "cli/request_call.hpp"

using namespace codexvault;

namespace {

constexpr std::uint64_t kMebibyte = 1024 * 1024;

struct Gate {
    std::mutex mutex;
    std::condition_variable changed;
    bool open = false;
};
Gate gate;

ssize_t mebibyte_reader(void* /*cls*/, uint64_t pos, char* buffer, size_t max)
{
    if (pos >= kMebibyte) {
        return MHD_CONTENT_READER_END_OF_STREAM;
    }
    const auto n = static_cast<std::size_t>(std::min<uint64_t>({kMebibyte - pos, max, 65536}));
    std::memset(buffer, 'm', n);
    return static_cast<ssize_t>(n);
}

// /hold: one byte, then waits for the gate: a stream that stays open.
ssize_t hold_reader(void* /*cls*/, uint64_t pos, char* buffer, size_t max)
{
    if (pos == 0 && max > 0) {
        buffer[0] = '.';
        return 1;
    }
    std::unique_lock lock(gate.mutex);
    gate.changed.wait(lock, [] { return gate.open; });
    return MHD_CONTENT_READER_END_OF_STREAM;
}

MHD_Result on_request(void* /*cls*/, MHD_Connection* connection, const char* url, const char* /*method*/,
                      const char* /*version*/, const char* /*upload*/, size_t* /*upload_size*/, void** state)
{
    if (*state == nullptr) {
        *state = connection;
        return MHD_YES;
    }
    *state = nullptr;
    MHD_Response* response = nullptr;
    const std::string path(url);
    if (path == "/v1/mebibyte") {
        response = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 65536, &mebibyte_reader, nullptr, nullptr);
    } else if (path == "/v1/hold") {
        response = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 64, &hold_reader, nullptr, nullptr);
    } else {
        static const char kSmall[] = "{\"ok\":true}\n";
        response =
            MHD_create_response_from_buffer(sizeof kSmall - 1, const_cast<char*>(kSmall), MHD_RESPMEM_PERSISTENT);
    }
    const MHD_Result result = MHD_queue_response(connection, 200, response);
    MHD_destroy_response(response);
    return result;
}

std::string slurp(const std::string& path)
{
    std::ifstream in(path);
    std::ostringstream out;
    out << in.rdbuf();
    return out.str();
}

struct Options {
    std::string bus;
    int port = 0;
    std::string cert;
    std::string key;
    std::string ca;
    int daemon_pid = 0;
    double seconds = 2.0;
    std::string only;  // latency, throughput or rss: one figure alone (for profiling the daemon)
};

size_t discard(char* /*data*/, size_t size, size_t count, void* total)
{
    *static_cast<std::uint64_t*>(total) += size * count;
    return size * count;
}

// A direct client: libcurl with keep-alive (one easy handle reused).
class Direct {
public:
    explicit Direct(const Options& o) : easy_(curl_easy_init()), base_("https://127.0.0.1:" + std::to_string(o.port))
    {
        curl_easy_setopt(easy_, CURLOPT_CAINFO, o.ca.c_str());
        curl_easy_setopt(easy_, CURLOPT_WRITEFUNCTION, &discard);
        curl_easy_setopt(easy_, CURLOPT_WRITEDATA, &bytes_);
        curl_easy_setopt(easy_, CURLOPT_HTTP_VERSION, CURL_HTTP_VERSION_1_1);
    }
    ~Direct() { curl_easy_cleanup(easy_); }
    Direct(const Direct&) = delete;
    Direct& operator=(const Direct&) = delete;
    std::uint64_t get(const std::string& path)
    {
        bytes_ = 0;
        const std::string url = base_ + path;
        curl_easy_setopt(easy_, CURLOPT_URL, url.c_str());
        return curl_easy_perform(easy_) == CURLE_OK ? bytes_ : 0;
    }

private:
    CURL* easy_;
    std::string base_;
    std::uint64_t bytes_ = 0;
};

// A mediated client: its own bus connection; Request, the stream to EOF, its end (RequestEnded, else RequestOutcome).
class Mediated {
public:
    explicit Mediated(const Options& o) : client_(o.bus) {}
    std::uint64_t get(const std::string& path)
    {
        cli::ProviderRequest r;
        r.provider = "bench";
        r.method = "GET";
        r.path_and_query = path;
        const std::int64_t start = bench::now_ns();
        cli::ProviderResponse response = cli::send_request(client_.bus(), r);
        const std::int64_t answered = bench::now_ns();
        std::int64_t eof = 0;
        std::uint64_t bytes = 0;
        const auto outcome = cli::relay_response(
            client_, response,
            [&](std::span<const char> chunk) {
                bytes += chunk.size();
                return true;
            },
            [&] { eof = bench::now_ns(); });
        const std::int64_t end = bench::now_ns();
        if (phases_) {
            phases_->reply.push_back(answered - start);
            phases_->stream.push_back(eof - answered);
            phases_->outcome.push_back(end - eof);
        }
        return outcome.complete() ? bytes : 0;
    }
    sd_bus* bus() { return client_.bus(); }

    // Where a mediated call's wall time goes: the Request's reply, the stream to EOF, the outcome.
    struct Phases {
        std::vector<std::int64_t> reply;
        std::vector<std::int64_t> stream;
        std::vector<std::int64_t> outcome;
    };
    void record_phases(Phases* phases) { phases_ = phases; }

private:
    cli::VaultClient client_;
    Phases* phases_ = nullptr;
};

template <typename Client>
std::vector<std::int64_t> latencies(Client& client, const std::string& path, double seconds, std::uint64_t& errors)
{
    std::vector<std::int64_t> out;
    for (int i = 0; i < 20; ++i) {
        (void)client.get(path);  // warm-up: connections, caches
    }
    const std::int64_t end = bench::now_ns() + static_cast<std::int64_t>(seconds * 1e9);
    while (bench::now_ns() < end) {
        const std::int64_t start = bench::now_ns();
        const std::uint64_t got = client.get(path);
        if (got == 0) {
            ++errors;
            continue;
        }
        out.push_back(bench::now_ns() - start);
    }
    return out;
}

template <typename Client>
double throughput_mib_s(const Options& o, int streams, double seconds, double* mib = nullptr)
{
    std::atomic<std::uint64_t> total{0};
    std::vector<std::thread> threads;
    const std::int64_t start = bench::now_ns();
    const std::int64_t end = start + static_cast<std::int64_t>(seconds * 1e9);
    for (int i = 0; i < streams; ++i) {
        threads.emplace_back([&] {
            try {
                Client client(o);
                while (bench::now_ns() < end) {
                    total += client.get("/v1/mebibyte");
                }
            } catch (const std::exception& e) {
                std::fprintf(stderr, "mediation_bench: %s\n", e.what());
            }
        });
    }
    for (auto& t : threads) {
        t.join();
    }
    const double wall = static_cast<double>(bench::now_ns() - start) / 1e9;
    if (mib != nullptr) {
        *mib = static_cast<double>(total.load()) / static_cast<double>(kMebibyte);
    }
    return static_cast<double>(total.load()) / static_cast<double>(kMebibyte) / wall;
}

// The daemon's CPU time so far (user + system, all threads), in milliseconds: the cost of a phase
// that does not depend on what else the machine runs, unlike its wall-clock figures.
double cpu_ms(int pid)
{
    std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
    std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const auto close = stat.rfind(')');
    if (close == std::string::npos) {
        return 0.0;
    }
    std::istringstream fields(stat.substr(close + 2));
    std::string field;
    unsigned long long utime = 0;
    unsigned long long stime = 0;
    for (int i = 3; fields >> field; ++i) {  // field 3 is the state
        if (i == 14) {
            utime = std::stoull(field);
        } else if (i == 15) {
            stime = std::stoull(field);
            break;
        }
    }
    return static_cast<double>(utime + stime) * 1000.0 / static_cast<double>(sysconf(_SC_CLK_TCK));
}

long rss_kib(int pid)
{
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(in, line)) {
        if (line.rfind("VmRSS:", 0) == 0) {
            return std::stol(line.substr(6));
        }
    }
    return -1;
}

// 100 Requests to /v1/hold on one connection, all answered (streams open), then the RSS.
long rss_with_open_streams(const Options& o, int streams, int& opened)
{
    cli::VaultClient client(o.bus);
    (void)client.request_ends();  // before the bus is read for the replies
    struct Slot {
        bool done = false;
        bool ok = false;
        cli::ProviderResponse response;
    };
    std::vector<Slot> slots(static_cast<std::size_t>(streams));
    std::vector<bus::SlotPtr> pending;
    for (auto& slot : slots) {
        cli::ProviderRequest r;
        r.provider = "bench";
        r.method = "GET";
        r.path_and_query = "/v1/hold";
        bus::MessagePtr m = cli::new_request_message(client.bus(), r);
        sd_bus_slot* raw = nullptr;
        sd_bus_call_async(
            client.bus(), &raw, m.get(),
            [](sd_bus_message* reply, void* userdata, sd_bus_error*) -> int {
                auto* s = static_cast<Slot*>(userdata);
                s->done = true;
                if (!sd_bus_message_is_method_error(reply, nullptr)) {
                    s->response = cli::read_request_reply(reply);
                    s->ok = true;
                }
                return 0;
            },
            &slot, cli::kRequestCallTimeoutUsec);
        pending.emplace_back(raw);
    }
    for (;;) {
        const bool all = std::all_of(slots.begin(), slots.end(), [](const Slot& s) { return s.done; });
        if (all) {
            break;
        }
        sd_bus_process(client.bus(), nullptr);
        sd_bus_wait(client.bus(), 100'000);
    }
    opened = static_cast<int>(std::count_if(slots.begin(), slots.end(), [](const Slot& s) { return s.ok; }));
    const long rss = rss_kib(o.daemon_pid);
    {
        std::lock_guard lock(gate.mutex);
        gate.open = true;
    }
    gate.changed.notify_all();
    for (auto& s : slots) {
        if (s.ok) {
            (void)cli::relay_response(client, s.response, [](std::span<const char>) { return true; });
        }
    }
    return rss;
}

}  // namespace

int main(int argc, char** argv)
{
    Options o;
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string k = argv[i];
        const std::string v = argv[i + 1];
        if (k == "--bus") {
            o.bus = v;
        } else if (k == "--port") {
            o.port = std::stoi(v);
        } else if (k == "--cert") {
            o.cert = slurp(v);
        } else if (k == "--key") {
            o.key = slurp(v);
        } else if (k == "--ca") {
            o.ca = v;
        } else if (k == "--daemon-pid") {
            o.daemon_pid = std::stoi(v);
        } else if (k == "--seconds") {
            o.seconds = std::stod(v);
        } else if (k == "--only") {
            o.only = v;
        }
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<std::uint16_t>(o.port));
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    MHD_Daemon* server = MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_TLS,
                                          0, nullptr, nullptr, &on_request, nullptr, MHD_OPTION_SOCK_ADDR, &address,
                                          MHD_OPTION_HTTPS_MEM_KEY, o.key.c_str(), MHD_OPTION_HTTPS_MEM_CERT,
                                          o.cert.c_str(), MHD_OPTION_CONNECTION_TIMEOUT, 0U, MHD_OPTION_END);
    if (server == nullptr) {
        std::fprintf(stderr, "mediation_bench: cannot serve HTTPS on 127.0.0.1:%d\n", o.port);
        return 1;
    }
    int status = 0;
    try {
        std::printf("provider mediation (HTTP/1.1 keep-alive, HTTPS on 127.0.0.1, %.1f s per figure)\n", o.seconds);
        const auto wanted = [&o](const char* figure) {
            return o.only.empty() || o.only == figure;
        };
        Direct direct(o);
        Mediated mediated(o);
        if (wanted("latency")) {
            std::uint64_t direct_errors = 0;
            std::uint64_t mediated_errors = 0;
            auto d = latencies(direct, "/v1/small", o.seconds, direct_errors);
            Mediated::Phases phases;
            mediated.record_phases(&phases);
            const double cpu_before = cpu_ms(o.daemon_pid);
            auto m = latencies(mediated, "/v1/small", o.seconds, mediated_errors);
            const double cpu = cpu_ms(o.daemon_pid) - cpu_before;
            mediated.record_phases(nullptr);
            const auto ds = bench::summarise(d, o.seconds, direct_errors);
            const auto ms = bench::summarise(m, o.seconds, mediated_errors);
            std::printf("small request, direct libcurl: p50 %.0f us, p99 %.0f us (%llu calls)\n", ds.p50_us, ds.p99_us,
                        static_cast<unsigned long long>(ds.calls));
            std::printf(
                "small request, via the bus (Request + stream + its end): p50 %.0f us, p99 %.0f us "
                "(%llu calls, %llu errors)\n",
                ms.p50_us, ms.p99_us, static_cast<unsigned long long>(ms.calls),
                static_cast<unsigned long long>(ms.errors));
            const double added_p50 = ms.p50_us - ds.p50_us;
            std::printf("added p50 via the bus: %.0f us (target <= 150) — %s\n", added_p50,
                        added_p50 <= 150 ? "met" : "not met");
            std::printf("added p99 via the bus: %.0f us\n", ms.p99_us - ds.p99_us);
            const auto p50 = [](std::vector<std::int64_t>& v) {
                std::sort(v.begin(), v.end());
                return bench::percentile_us(v, 50);
            };
            std::printf("  phases p50: Request until its reply %.0f us, stream to EOF %.0f us, outcome %.0f us\n",
                        p50(phases.reply), p50(phases.stream), p50(phases.outcome));
            std::printf("  daemon CPU per Request: %.0f us\n",
                        m.empty() ? 0.0 : cpu * 1000.0 / static_cast<double>(m.size() + 20));
        }
        for (const int streams : {1, 16}) {
            if (!wanted("throughput")) {
                break;
            }
            const double dt = throughput_mib_s<Direct>(o, streams, o.seconds);
            double mib = 0.0;
            const double cpu_before = cpu_ms(o.daemon_pid);
            const double mt = throughput_mib_s<Mediated>(o, streams, o.seconds, &mib);
            const double cpu = cpu_ms(o.daemon_pid) - cpu_before;
            std::printf(
                "1 MiB responses, %d stream(s): direct %.1f MiB/s, via the bus %.1f MiB/s (%.0f %%)%s\n", streams, dt,
                mt, dt > 0 ? 100.0 * mt / dt : 0.0,
                streams == 16 ? (mt >= 0.8 * dt ? " (target >= 80 %) — met" : " (target >= 80 %) — not met") : "");
            std::printf("  daemon CPU per MiB relayed: %.2f ms\n", mib > 0 ? cpu / mib : 0.0);
        }
        if (wanted("rss")) {
            const long idle = rss_kib(o.daemon_pid);
            int opened = 0;
            const long rss = rss_with_open_streams(o, 100, opened);
            std::printf("daemon RSS: %.1f MiB idle, %.1f MiB with %d streams open (target <= 64) — %s\n",
                        static_cast<double>(idle) / 1024.0, static_cast<double>(rss) / 1024.0, opened,
                        rss >= 0 && rss <= 64 * 1024 && opened == 100 ? "met" : "not met");
        }
    } catch (const std::exception& e) {
        std::fprintf(stderr, "mediation_bench: %s\n", e.what());
        status = 1;
    }
    {
        std::lock_guard lock(gate.mutex);
        gate.open = true;
    }
    gate.changed.notify_all();
    MHD_stop_daemon(server);
    curl_global_cleanup();
    return status;
}
