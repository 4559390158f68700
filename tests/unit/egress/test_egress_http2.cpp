// HTTP/2 through the egress engine on Debian 12's libcurl 7.88, against nghttpd (the nghttp2
// project's HTTP/2 server, Debian package nghttp2-server) on 127.0.0.1 with the test's CA: a slow
// reader pauses and resumes a multi-MiB stream and gets every byte, and streams multiplexed on one
// connection, one of them paused again and again, all complete with their own bytes.
// docs/egress.md ("HTTP/2") says what these found.
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "exchange_harness.hpp"

using namespace codexvault;
using namespace egress_test;
using egress::End;

namespace {

constexpr const char* kNghttpd = "/usr/sbin/nghttpd";

std::string pattern(std::size_t size, unsigned seed)
{
    std::string out(size, '\0');
    for (std::size_t i = 0; i < size; ++i) {
        out[i] = static_cast<char>('a' + (i * 7 + seed + i / 4099) % 26);
    }
    return out;
}

std::uint16_t free_port()
{
    UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(::bind(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
    socklen_t len = sizeof sa;
    cr_assert_eq(::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&sa), &len), 0);
    return ntohs(sa.sin_port);
}

bool accepts(std::uint16_t port)
{
    UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return ::connect(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0;
}

// nghttpd serving files from a folder, TLS with the fixture's certificate, h2 by ALPN.
class H2Server {
public:
    explicit H2Server(const TlsFixture& tls) : dir_(tls.dir + "/h2")
    {
        std::filesystem::create_directories(dir_ + "/htdocs/v1");
        std::ofstream(dir_ + "/cert.pem") << tls.server_cert;
        std::ofstream(dir_ + "/key.pem") << tls.server_key;
        port_ = free_port();
        pid_ = ::fork();
        if (pid_ == 0) {
            const int null = ::open("/dev/null", O_WRONLY);
            ::dup2(null, STDOUT_FILENO);
            ::dup2(null, STDERR_FILENO);
            const std::string port = std::to_string(port_);
            const std::string htdocs = "--htdocs=" + dir_ + "/htdocs";
            const std::string key = dir_ + "/key.pem";
            const std::string cert = dir_ + "/cert.pem";
            ::execl(kNghttpd, kNghttpd, "--address=127.0.0.1", htdocs.c_str(), port.c_str(), key.c_str(), cert.c_str(),
                    static_cast<char*>(nullptr));
            ::_exit(127);
        }
        for (int i = 0; i < 500 && !accepts(port_); ++i) {
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
    }
    ~H2Server()
    {
        if (pid_ > 0) {
            ::kill(pid_, SIGTERM);
            ::waitpid(pid_, nullptr, 0);
        }
    }
    H2Server(const H2Server&) = delete;
    H2Server& operator=(const H2Server&) = delete;

    [[nodiscard]] std::uint16_t port() const { return port_; }
    [[nodiscard]] bool running() const { return pid_ > 0 && accepts(port_); }
    void put(const std::string& name, const std::string& content) const
    {
        std::ofstream(dir_ + "/htdocs/v1/" + name, std::ios::binary) << content;
    }

private:
    std::string dir_;
    std::uint16_t port_ = 0;
    pid_t pid_ = -1;
};

// Reads at most one small bite per turn, then waits a millisecond: a reader far slower than the
// upstream, so the daemon's side of the stream fills and the download pauses again and again.
struct SlowReader {
    sd_event* event = nullptr;
    Exchange* exchange = nullptr;
    bus::EventSourcePtr watch;
    bus::EventSourcePtr pause;

    static int on_readable(sd_event_source* /*source*/, int fd, uint32_t /*events*/, void* self)
    {
        auto* r = static_cast<SlowReader*>(self);
        char buffer[8192];
        const ssize_t n = ::recv(fd, buffer, sizeof buffer, MSG_DONTWAIT);
        if (n > 0) {
            r->exchange->body.append(buffer, static_cast<std::size_t>(n));
            (void)sd_event_source_set_enabled(r->watch.get(), SD_EVENT_OFF);
            std::uint64_t now = 0;
            (void)sd_event_now(r->event, CLOCK_MONOTONIC, &now);
            (void)sd_event_source_set_time(r->pause.get(), now + 1000);
            (void)sd_event_source_set_enabled(r->pause.get(), SD_EVENT_ONESHOT);
        } else if (n == 0) {
            r->exchange->eof = true;
            r->watch.reset();
        }
        return 0;
    }
    static int on_pause_over(sd_event_source* /*source*/, uint64_t /*usec*/, void* self)
    {
        auto* r = static_cast<SlowReader*>(self);
        if (r->watch) {
            (void)sd_event_source_set_enabled(r->watch.get(), SD_EVENT_ON);
        }
        return 0;
    }
    // Replaces the harness's reader (which reads everything at once) when the head arrives.
    void attach(Exchange& x)
    {
        exchange = &x;
        x.reader_watch.reset();
        sd_event_source* source = nullptr;
        cr_assert_geq(sd_event_add_io(event, &source, x.reader.get(), EPOLLIN, &SlowReader::on_readable, this), 0);
        watch.reset(source);
        cr_assert_geq(sd_event_add_time(event, &source, CLOCK_MONOTONIC, 0, 1, &SlowReader::on_pause_over, this), 0);
        pause.reset(source);
        (void)sd_event_source_set_enabled(pause.get(), SD_EVENT_OFF);
    }
};

struct H2 {
    Harness h;
    std::unique_ptr<H2Server> server;

    H2()
    {
        if (::access(kNghttpd, X_OK) != 0) {
            cr_skip_test("nghttpd is missing (Debian package nghttp2-server, packaging/install-deps.sh)");
        }
        server = std::make_unique<H2Server>(h.tls);
        if (!server->running()) {
            cr_skip_test("nghttpd did not start on 127.0.0.1");
        }
        h.engine = std::make_unique<egress::Engine>(h.event, egress::EngineOptions{.http2 = true});
    }
    egress::ExchangeRequest request(const std::string& path) const
    {
        auto r = h.request("GET", path);
        r.provider.origin = policy::parse_origin("https://127.0.0.1:" + std::to_string(server->port())).value();
        return r;
    }
};

}  // namespace

Test(egress_http2, a_slow_reader_pauses_and_resumes_a_multi_mebibyte_http2_stream_and_gets_every_byte, .timeout = 120)
{
    H2 t;
    const std::string content = pattern(6 * 1024 * 1024, 1);
    t.server->put("big", content);
    Exchange e;
    SlowReader slow;
    slow.event = t.h.event;
    e.on_head = [&slow](Exchange& x) {
        slow.attach(x);
    };
    t.h.start(e, t.request("/v1/big"));
    t.h.loop_until([&e] { return e.ended && (!e.head || e.eof); });
    cr_assert_eq(e.outcome.end, End::Complete, "%s", e.outcome.reason.c_str());
    cr_assert(e.outcome.http2, "the exchange did not use HTTP/2");
    cr_assert_gt(e.outcome.receive_pauses, 0U, "the slow reader never paused the download");
    cr_assert_eq(e.body.size(), content.size());
    cr_assert(e.body == content, "the bytes differ from what the server sent");
}

Test(egress_http2, streams_multiplexed_on_one_connection_complete_with_their_own_bytes, .timeout = 120)
{
    H2 t;
    constexpr int kStreams = 4;
    std::vector<std::string> contents;
    for (int i = 0; i < kStreams; ++i) {
        contents.push_back(pattern(2 * 1024 * 1024 + static_cast<std::size_t>(i) * 4099, static_cast<unsigned>(i)));
        t.server->put("part" + std::to_string(i), contents.back());
    }
    std::vector<Exchange> exchanges(kStreams);
    SlowReader slow;  // the first stream is read slowly: it pauses while the others flow
    slow.event = t.h.event;
    exchanges[0].on_head = [&slow](Exchange& x) {
        slow.attach(x);
    };
    for (int i = 0; i < kStreams; ++i) {
        t.h.start(exchanges[static_cast<std::size_t>(i)], t.request("/v1/part" + std::to_string(i)));
    }
    t.h.loop_until([&exchanges] {
        return std::all_of(exchanges.begin(), exchanges.end(),
                           [](const Exchange& e) { return e.ended && (!e.head || e.eof); });
    });
    std::uint64_t connections = 0;
    for (int i = 0; i < kStreams; ++i) {
        const Exchange& e = exchanges[static_cast<std::size_t>(i)];
        cr_assert_eq(e.outcome.end, End::Complete, "stream %d: %s", i, e.outcome.reason.c_str());
        cr_assert(e.outcome.http2, "stream %d did not use HTTP/2", i);
        cr_assert(e.body == contents[static_cast<std::size_t>(i)], "stream %d: wrong bytes (%zu of %zu)", i,
                  e.body.size(), contents[static_cast<std::size_t>(i)].size());
        connections += e.outcome.new_connections;
    }
    cr_assert_eq(connections, 1U, "the streams were not multiplexed on one connection (%llu connections)",
                 static_cast<unsigned long long>(connections));
    cr_assert_gt(exchanges[0].outcome.receive_pauses, 0U, "the slow stream never paused");
}

// Several streams whose readers read nothing (their downloads paused, their data held) must not
// starve another stream on the same connection of HTTP/2 flow-control window: a slow caller
// must not stall a fast one multiplexed beside it.
Test(egress_http2, stalled_streams_do_not_hold_up_a_stream_multiplexed_beside_them, .timeout = 120)
{
    H2 t;
    constexpr int kStalled = 8;
    const std::string stalled_content = pattern(4 * 1024 * 1024, 3);
    const std::string fast_content = pattern(8 * 1024 * 1024, 4);
    t.server->put("stalled", stalled_content);
    t.server->put("fast", fast_content);
    std::vector<Exchange> stalled(kStalled);
    for (auto& e : stalled) {
        e.on_head = [](Exchange& x) {
            (void)sd_event_source_set_enabled(x.reader_watch.get(), SD_EVENT_OFF);
        };
        t.h.start(e, t.request("/v1/stalled"));
    }
    // Every stalled stream has its head (so each holds its share of the connection) before the
    // fast one starts.
    t.h.loop_until(
        [&stalled] { return std::all_of(stalled.begin(), stalled.end(), [](const Exchange& e) { return e.head; }); });
    Exchange fast;
    t.h.start(fast, t.request("/v1/fast"));
    t.h.loop_until([&fast] { return fast.ended && (!fast.head || fast.eof); });
    cr_assert_eq(fast.outcome.end, End::Complete, "%s", fast.outcome.reason.c_str());
    cr_assert(fast.body == fast_content, "the fast stream's bytes differ (%zu of %zu)", fast.body.size(),
              fast_content.size());
    std::uint64_t connections = fast.outcome.new_connections;
    for (auto& e : stalled) {
        cr_assert_not(e.ended && e.eof, "a stalled stream ended although nothing read it");
        (void)sd_event_source_set_enabled(e.reader_watch.get(), SD_EVENT_ON);
    }
    t.h.loop_until([&stalled] {
        return std::all_of(stalled.begin(), stalled.end(),
                           [](const Exchange& e) { return e.ended && (!e.head || e.eof); });
    });
    for (const auto& e : stalled) {
        cr_assert_eq(e.outcome.end, End::Complete, "%s", e.outcome.reason.c_str());
        cr_assert(e.body == stalled_content, "a stalled stream's bytes differ (%zu of %zu)", e.body.size(),
                  stalled_content.size());
        connections += e.outcome.new_connections;
    }
    cr_assert_eq(connections, 1U, "the streams were not multiplexed on one connection");
}
