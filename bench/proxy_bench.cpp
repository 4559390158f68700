// `vaultctl proxy`/`vaultctl run` against direct, in the same run, against the same local HTTPS
// server: the proxy (cli/proxy_server.hpp, what both commands serve) runs in this process on a
// loopback port and forwards to the daemon's Request. Measured with libcurl clients that keep
// their connections alive:
//   - a small GET: p50 and p99 through the proxy, direct, and the difference (target: at most
//     300 us added);
//   - a 1 MiB streamed GET at 16 concurrent streams: MiB/s through the proxy and direct, and the
//     ratio (target: at least 80 %).
// Takes the set-up of scripts/mediation-bench.sh (a daemon whose provider "bench" points at
// https://127.0.0.1:PORT, allowing GET /v1/*, with a grant for this uid):
//
//   proxy_bench --bus ADDR --port PORT --cert PEM --key PEM --ca PEM [--seconds S]
//
// Without arguments (the `make bench` loop) it says so and exits 0.
#include <curl/curl.h>
#include <microhttpd.h>
#include <netinet/in.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "bench/bench_stats.hpp"
#include "cli/proxy_server.hpp"
#include "cli/request_call.hpp"
#include "cli/vault_client.hpp"

using namespace codexvault;

namespace {

constexpr std::size_t kMebibyte = 1024 * 1024;
const std::string kToken = "sk-cv-bench0000000000000000000000000000000000000000000";

std::string slurp(const std::string& path)
{
    std::ifstream in(path);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

// ---- the upstream: /v1/small (64 bytes), /v1/mebibyte (1 MiB in 16 KiB pieces) ----------------
struct Body {
    std::size_t left;
};

ssize_t read_body(void* cls, std::uint64_t /*pos*/, char* buf, std::size_t max)
{
    auto* body = static_cast<Body*>(cls);
    if (body->left == 0) {
        return MHD_CONTENT_READER_END_OF_STREAM;
    }
    const std::size_t n = std::min({max, body->left, std::size_t{16384}});
    std::memset(buf, 'x', n);
    body->left -= n;
    return static_cast<ssize_t>(n);
}

void free_body(void* cls)
{
    delete static_cast<Body*>(cls);
}

MHD_Result serve(void* /*cls*/, MHD_Connection* c, const char* url, const char* /*method*/, const char* /*version*/,
                 const char* /*upload*/, std::size_t* /*size*/, void** state)
{
    if (*state == nullptr) {
        *state = c;
        return MHD_YES;
    }
    const std::size_t size = std::strcmp(url, "/v1/mebibyte") == 0 ? kMebibyte : 64;
    MHD_Response* r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16384, read_body, new Body{size}, free_body);
    MHD_add_response_header(r, "Content-Type", "application/octet-stream");
    const MHD_Result q = MHD_queue_response(c, 200, r);
    MHD_destroy_response(r);
    return q;
}

// ---- clients ------------------------------------------------------------------------------------
std::size_t discard(char* /*data*/, std::size_t size, std::size_t n, void* counter)
{
    *static_cast<std::uint64_t*>(counter) += size * n;
    return size * n;
}

struct Client {
    CURL* curl = nullptr;
    curl_slist* headers = nullptr;
    std::uint64_t bytes = 0;

    Client(const std::string& url, const std::string& ca, bool via_proxy)
    {
        curl = curl_easy_init();
        curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
        curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, discard);
        curl_easy_setopt(curl, CURLOPT_WRITEDATA, &bytes);
        curl_easy_setopt(curl, CURLOPT_CAINFO, ca.c_str());
        curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(curl, CURLOPT_PROXY, "");
        if (via_proxy) {
            headers = curl_slist_append(headers, ("x-api-key: " + kToken).c_str());
        } else {
            headers = curl_slist_append(headers, "Authorization: Bearer sk-bench-direct");
        }
        curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    }
    ~Client()
    {
        curl_slist_free_all(headers);
        curl_easy_cleanup(curl);
    }
    Client(const Client&) = delete;
    Client& operator=(const Client&) = delete;

    bool get()
    {
        long status = 0;
        return curl_easy_perform(curl) == CURLE_OK &&
               curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status) == CURLE_OK && status == 200;
    }
};

bench::Sample latency(const std::string& url, const std::string& ca, bool via_proxy, double seconds)
{
    Client client(url, ca, via_proxy);
    for (int i = 0; i < 50; ++i) {
        (void)client.get();  // warm-up: connections open, TLS done, caches warm
    }
    std::vector<std::int64_t> ns;
    std::uint64_t errors = 0;
    const std::int64_t start = bench::now_ns();
    const auto end = start + static_cast<std::int64_t>(seconds * 1e9);
    while (bench::now_ns() < end) {
        const std::int64_t t0 = bench::now_ns();
        if (client.get()) {
            ns.push_back(bench::now_ns() - t0);
        } else {
            ++errors;
        }
    }
    return bench::summarise(ns, static_cast<double>(bench::now_ns() - start) / 1e9, errors);
}

// The same small GET as a bare Request on one bus connection (stream read to EOF, then
// its end): what the proxy adds on top of the bus is the difference.
bench::Sample bus_latency(const std::string& address, double seconds)
{
    cli::VaultClient client(address);
    auto once = [&] {
        cli::ProviderRequest request;
        request.provider = "bench";
        request.method = "GET";
        request.path_and_query = "/v1/small";
        cli::ProviderResponse response = cli::send_request(client.bus(), request);
        std::uint64_t bytes = 0;
        const auto outcome = cli::relay_response(client, response, [&](std::span<const char> chunk) {
            bytes += chunk.size();
            return true;
        });
        return response.status == 200 && outcome.complete();
    };
    for (int i = 0; i < 50; ++i) {
        (void)once();
    }
    std::vector<std::int64_t> ns;
    std::uint64_t errors = 0;
    const std::int64_t start = bench::now_ns();
    const auto end = start + static_cast<std::int64_t>(seconds * 1e9);
    while (bench::now_ns() < end) {
        const std::int64_t t0 = bench::now_ns();
        bool ok = false;
        try {
            ok = once();
        } catch (const std::exception&) {
            ok = false;
        }
        if (ok) {
            ns.push_back(bench::now_ns() - t0);
        } else {
            ++errors;
        }
    }
    return bench::summarise(ns, static_cast<double>(bench::now_ns() - start) / 1e9, errors);
}

// MiB/s of 1 MiB bodies fetched by `streams` clients at once for `seconds`; errors counted.
double throughput(const std::string& url, const std::string& ca, bool via_proxy, int streams, double seconds,
                  std::uint64_t& errors)
{
    std::atomic<std::uint64_t> bytes{0};
    std::atomic<std::uint64_t> failed{0};
    std::vector<std::thread> threads;
    const std::int64_t start = bench::now_ns();
    const auto end = start + static_cast<std::int64_t>(seconds * 1e9);
    for (int i = 0; i < streams; ++i) {
        threads.emplace_back([&] {
            Client client(url, ca, via_proxy);
            while (bench::now_ns() < end) {
                client.bytes = 0;
                if (client.get() && client.bytes == kMebibyte) {
                    bytes += client.bytes;
                } else {
                    ++failed;
                }
            }
        });
    }
    for (auto& t : threads) {
        t.join();
    }
    errors = failed.load();
    const double wall = static_cast<double>(bench::now_ns() - start) / 1e9;
    return static_cast<double>(bytes.load()) / static_cast<double>(kMebibyte) / wall;
}

}  // namespace

int main(int argc, char** argv)
{
    std::string bus, cert, key, ca;
    int port = 0;
    double seconds = 3.0;
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string k = argv[i];
        const std::string v = argv[i + 1];
        if (k == "--bus") {
            bus = v;
        } else if (k == "--port") {
            port = std::stoi(v);
        } else if (k == "--cert") {
            cert = slurp(v);
        } else if (k == "--key") {
            key = slurp(v);
        } else if (k == "--ca") {
            ca = v;
        } else if (k == "--seconds") {
            seconds = std::stod(v);
        }
    }
    if (bus.empty() || port == 0 || cert.empty() || key.empty() || ca.empty()) {
        std::puts(
            "proxy_bench: skipped: needs --bus --port --cert --key --ca (the set-up of "
            "scripts/mediation-bench.sh: a daemon with provider \"bench\")");
        return 0;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(static_cast<std::uint16_t>(port));
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    MHD_Daemon* upstream = MHD_start_daemon(
        MHD_USE_TLS | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_AUTO, 0, nullptr,
        nullptr, serve, nullptr, MHD_OPTION_HTTPS_MEM_KEY, key.c_str(), MHD_OPTION_HTTPS_MEM_CERT, cert.c_str(),
        MHD_OPTION_SOCK_ADDR, reinterpret_cast<sockaddr*>(&sa), MHD_OPTION_CONNECTION_LIMIT, 256U, MHD_OPTION_END);
    if (upstream == nullptr) {
        std::fprintf(stderr, "proxy_bench: cannot serve HTTPS on 127.0.0.1:%d\n", port);
        return 1;
    }
    cli::proxy::ProxyConfig config;
    config.listen.host = "127.0.0.1";
    config.token = kToken;
    config.providers = {"bench"};
    config.bus_address = bus;
    auto proxy = std::make_unique<cli::proxy::ProxyServer>(config);
    const std::string direct = "https://127.0.0.1:" + std::to_string(port);
    const std::string proxied = "http://127.0.0.1:" + std::to_string(proxy->port()) + "/bench";

    // Interleaved rounds, medians reported.
    std::vector<double> d50, d99, b50, b99, p50, p99;
    std::uint64_t errors = 0;
    for (int round = 0; round < 3; ++round) {
        const auto d = latency(direct + "/v1/small", ca, false, seconds / 3);
        const auto b = bus_latency(bus, seconds / 3);
        const auto p = latency(proxied + "/v1/small", ca, true, seconds / 3);
        d50.push_back(d.p50_us);
        d99.push_back(d.p99_us);
        b50.push_back(b.p50_us);
        b99.push_back(b.p99_us);
        p50.push_back(p.p50_us);
        p99.push_back(p.p99_us);
        errors += d.errors + b.errors + p.errors;
    }
    const auto md50 = *bench::median(d50), md99 = *bench::median(d99), mb50 = *bench::median(b50),
               mb99 = *bench::median(b99), mp50 = *bench::median(p50), mp99 = *bench::median(p99);
    std::printf(
        "proxy small GET: direct p50 %.1f us p99 %.1f us | bus Request p50 %.1f us p99 %.1f us | "
        "via proxy p50 %.1f us p99 %.1f us | errors %llu\n",
        md50, md99, mb50, mb99, mp50, mp99, static_cast<unsigned long long>(errors));
    std::printf(
        "proxy small GET: added over direct p50 %.1f us (target <= 300) p99 %.1f us; "
        "the proxy's own share (over the bus Request) p50 %.1f us p99 %.1f us\n",
        mp50 - md50, mp99 - md99, mp50 - mb50, mp99 - mb99);

    std::uint64_t direct_errors = 0, proxy_errors = 0;
    const double direct_mib = throughput(direct + "/v1/mebibyte", ca, false, 16, seconds, direct_errors);
    const double proxy_mib = throughput(proxied + "/v1/mebibyte", ca, true, 16, seconds, proxy_errors);
    std::printf(
        "proxy 1 MiB x 16 streams  direct %.1f MiB/s | via proxy %.1f MiB/s | %.0f %% of direct "
        "(target >= 80) | errors %llu/%llu\n",
        direct_mib, proxy_mib, direct_mib > 0 ? 100.0 * proxy_mib / direct_mib : 0.0,
        static_cast<unsigned long long>(direct_errors), static_cast<unsigned long long>(proxy_errors));
    std::fflush(stdout);
    // The proxy's threads may sit in calls; the process ends here (as vaultctl run does).
    (void)proxy.release();
    MHD_stop_daemon(upstream);
    std::_Exit(0);
}
