// The proxy against the Request contract (docs/bus-api.md), before and besides the real daemon:
// a private dbus-daemon and, on it, a stand-in that answers Request and RequestOutcome the way
// the contract says. It checks what the proxy itself does: the body travels in a descriptor,
// token headers stay behind, a stream is relayed in order as it arrives, and a body the daemon
// calls truncated reaches the client without its final chunk. The real daemon is exercised by
// tests/integration/test_proxy*.cpp.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <systemd/sd-bus.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "cli/proxy_server.hpp"
#include "lib/fileio/unique_fd.hpp"

using namespace codexvault::cli::proxy;
using codexvault::UniqueFd;

namespace {

const std::string kToken = "sk-cv-0123456789abcdef0123456789abcdef0123456789abcdef";

// What the stand-in saw and what it does next; shared between its bus thread and the test.
struct Stub {
    std::mutex mutex;
    std::condition_variable changed;
    std::string provider, method, path, body;
    std::vector<std::pair<std::string, std::string>> headers;
    int body_fds = -1;
    bool cut = false;  // RequestOutcome says truncated
    int released = 0;  // events the test has let through
    std::vector<std::string> events;
    UniqueFd writer;
    std::thread writer_thread;
    std::atomic<bool> stop{false};
    std::string bus_address;
    pid_t bus_pid = -1;
};

Stub* stub = nullptr;

int on_request(sd_bus_message* m, void* /*userdata*/, sd_bus_error* /*error*/)
{
    const char *provider = nullptr, *method = nullptr, *path = nullptr;
    sd_bus_message_read(m, "sss", &provider, &method, &path);
    std::vector<std::pair<std::string, std::string>> headers;
    sd_bus_message_enter_container(m, 'a', "(ss)");
    const char *name = nullptr, *value = nullptr;
    while (sd_bus_message_read(m, "(ss)", &name, &value) > 0) {
        headers.emplace_back(name, value);
    }
    sd_bus_message_exit_container(m);
    sd_bus_message_enter_container(m, 'a', "h");
    int fds = 0;
    std::string body;
    int fd = -1;
    while (sd_bus_message_read(m, "h", &fd) > 0) {
        ++fds;
        char buf[4096];
        ssize_t n = 0;
        while ((n = ::read(fd, buf, sizeof buf)) > 0) {
            body.append(buf, static_cast<std::size_t>(n));
        }
    }
    sd_bus_message_exit_container(m);
    int p[2];
    if (::pipe2(p, O_CLOEXEC) != 0) {
        return -errno;
    }
    UniqueFd read_end(p[0]);
    {
        std::lock_guard lock(stub->mutex);
        stub->provider = provider;
        stub->method = method;
        stub->path = path;
        stub->headers = headers;
        stub->body = body;
        stub->body_fds = fds;
        stub->writer = UniqueFd(p[1]);
    }
    // Each event goes out only once the test has released it: the client can only have it if
    // the proxy relayed it while the rest did not exist yet.
    stub->writer_thread = std::thread([] {
        std::unique_lock lock(stub->mutex);
        for (std::size_t i = 0; i < stub->events.size(); ++i) {
            stub->changed.wait(lock, [&] { return stub->released > static_cast<int>(i) || stub->stop; });
            if (stub->stop) {
                break;
            }
            const std::string& e = stub->events[i];
            (void)!::write(stub->writer.get(), e.data(), e.size());
        }
        stub->writer.reset();
    });
    return sd_bus_reply_method_return(m, "tqa(ss)h", std::uint64_t{42}, std::uint16_t{200}, 2, "Content-Type",
                                      "text/event-stream", "Content-Length", "999", read_end.get());
}

int on_outcome(sd_bus_message* m, void* /*userdata*/, sd_bus_error* /*error*/)
{
    std::uint64_t id = 0;
    sd_bus_message_read(m, "t", &id);
    const bool cut = stub->cut;
    return sd_bus_reply_method_return(m, "sstt", cut ? "truncated" : "complete", cut ? "vault locked" : "",
                                      std::uint64_t{0}, std::uint64_t{0});
}

const sd_bus_vtable kVtable[] = {
    SD_BUS_VTABLE_START(0),
    SD_BUS_METHOD("Request", "sssa(ss)ah", "tqa(ss)h", on_request, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD("RequestOutcome", "t", "sstt", on_outcome, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_VTABLE_END,
};

std::thread service;

void start_stub()
{
    stub = new Stub();
    char dir[] = "/tmp/proxy-stub-XXXXXX";
    cr_assert_not_null(::mkdtemp(dir));
    stub->bus_address = std::string("unix:path=") + dir + "/bus";
    int address_pipe[2];
    cr_assert_eq(::pipe(address_pipe), 0);
    stub->bus_pid = ::fork();
    if (stub->bus_pid == 0) {
        ::prctl(PR_SET_PDEATHSIG, SIGKILL);
        ::dup2(address_pipe[1], 3);
        // Its warnings (it cannot raise its descriptor limit in a container) are not the test's.
        const int null = ::open("/dev/null", O_WRONLY);
        ::dup2(null, 2);
        const std::string address = "--address=" + stub->bus_address;
        ::execlp("dbus-daemon", "dbus-daemon", "--session", address.c_str(), "--nofork", "--nopidfile",
                 "--print-address=3", static_cast<char*>(nullptr));
        _exit(127);
    }
    ::close(address_pipe[1]);
    pollfd pfd{address_pipe[0], POLLIN, 0};
    if (::poll(&pfd, 1, 10000) != 1) {
        cr_skip_test("dbus-daemon did not start (is the dbus-daemon package installed?)");
    }
    char line[512];
    if (::read(address_pipe[0], line, sizeof line) <= 0) {
        cr_skip_test("dbus-daemon did not start (is the dbus-daemon package installed?)");
    }
    ::close(address_pipe[0]);

    std::atomic<bool> ready{false};
    service = std::thread([&ready] {
        sd_bus* bus = nullptr;
        sd_bus_new(&bus);
        sd_bus_set_address(bus, stub->bus_address.c_str());
        sd_bus_set_bus_client(bus, 1);
        sd_bus_negotiate_fds(bus, 1);
        if (sd_bus_start(bus) < 0 ||
            sd_bus_add_object_vtable(bus, nullptr, "/org/codexvault/Vault1", "org.codexvault.Vault1", kVtable,
                                     nullptr) < 0 ||
            sd_bus_request_name(bus, "org.codexvault.Vault1", 0) < 0) {
            ready = true;
            return;
        }
        ready = true;
        while (!stub->stop) {
            while (sd_bus_process(bus, nullptr) > 0) {
            }
            sd_bus_wait(bus, 100000);
        }
        sd_bus_flush_close_unref(bus);
    });
    while (!ready) {
        std::this_thread::yield();
    }
}

void stop_stub()
{
    if (stub == nullptr) {
        return;
    }
    {
        std::lock_guard lock(stub->mutex);
        stub->stop = true;
    }
    stub->changed.notify_all();
    if (stub->writer_thread.joinable()) {
        stub->writer_thread.join();
    }
    if (service.joinable()) {
        service.join();
    }
    if (stub->bus_pid > 0) {
        ::kill(stub->bus_pid, SIGTERM);
        ::waitpid(stub->bus_pid, nullptr, 0);
    }
}

void release_event()
{
    {
        std::lock_guard lock(stub->mutex);
        ++stub->released;
    }
    stub->changed.notify_all();
}

ProxyConfig config()
{
    ProxyConfig c;
    c.listen.host = "127.0.0.1";
    c.token = kToken;
    c.bus_address = stub->bus_address;
    return c;
}

UniqueFd connect_to(std::uint16_t port)
{
    UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(::connect(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
    return fd;
}

// Reads until `needle` is in `buffer` or the connection ends; whether it was found.
bool read_until(int fd, std::string& buffer, const std::string& needle)
{
    char buf[4096];
    while (buffer.find(needle) == std::string::npos) {
        const ssize_t n = ::read(fd, buf, sizeof buf);
        if (n <= 0) {
            return false;
        }
        buffer.append(buf, static_cast<std::size_t>(n));
    }
    return true;
}

std::string read_all(int fd, std::string buffer)
{
    char buf[4096];
    ssize_t n = 0;
    while ((n = ::read(fd, buf, sizeof buf)) > 0) {
        buffer.append(buf, static_cast<std::size_t>(n));
    }
    return buffer;
}

void post_stream(int fd)
{
    const std::string body = R"({"model":"m","stream":true})";
    const std::string request =
        "POST /openai/v1/chat/completions?x=1 HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        "Authorization: Bearer " +
        kToken + "\r\nx-api-key: " + kToken +
        "\r\nContent-Type: application/json\r\nOpenAI-Beta: a\r\nConnection: close\r\n"
        "Content-Length: " +
        std::to_string(body.size()) + "\r\n\r\n" + body;
    cr_assert_eq(::write(fd, request.data(), request.size()), static_cast<ssize_t>(request.size()));
}

}  // namespace

TestSuite(proxy_stream, .init = start_stub, .fini = stop_stub);

Test(proxy_stream, events_are_relayed_in_order_as_they_arrive_and_a_complete_body_ends_with_the_last_chunk)
{
    stub->events = {"data: one\n\n", "data: two\n\n", "data: [DONE]\n\n"};
    ProxyServer server(config());
    UniqueFd client = connect_to(server.port());
    post_stream(client.get());
    std::string got;
    release_event();
    cr_assert(read_until(client.get(), got, "data: one\n\n"), "first event not relayed before the second existed");
    cr_assert(got.find("two") == std::string::npos);
    release_event();
    cr_assert(read_until(client.get(), got, "data: two\n\n"));
    release_event();
    got = read_all(client.get(), got);
    cr_assert(got.rfind("HTTP/1.1 200", 0) == 0, "%s", got.c_str());
    cr_assert(got.find("Transfer-Encoding: chunked") != std::string::npos);
    cr_assert(got.find("Content-Length") == std::string::npos, "the upstream's length was passed on");
    cr_assert(got.find("text/event-stream") != std::string::npos);
    const auto one = got.find("data: one");
    const auto two = got.find("data: two");
    const auto done = got.find("data: [DONE]");
    cr_assert(one < two && two < done && done != std::string::npos);
    cr_assert(got.ends_with("\r\n0\r\n\r\n"), "a complete body lacks its final chunk");

    std::lock_guard lock(stub->mutex);
    cr_assert_eq(stub->provider, "openai");
    cr_assert_eq(stub->method, "POST");
    cr_assert_eq(stub->path, "/v1/chat/completions?x=1");
    cr_assert_eq(stub->body_fds, 1);
    cr_assert_eq(stub->body, R"({"model":"m","stream":true})");
    bool content_type = false;
    for (const auto& [name, value] : stub->headers) {
        cr_assert(strcasecmp(name.c_str(), "authorization") != 0, "Authorization reached Request");
        cr_assert(strcasecmp(name.c_str(), "x-api-key") != 0, "x-api-key reached Request");
        cr_assert(strcasecmp(name.c_str(), "host") != 0 && strcasecmp(name.c_str(), "connection") != 0 &&
                  strcasecmp(name.c_str(), "content-length") != 0);
        cr_assert(value.find(kToken) == std::string::npos, "the token reached Request in %s", name.c_str());
        content_type = content_type || strcasecmp(name.c_str(), "content-type") == 0;
    }
    cr_assert(content_type);
    stub->writer.reset();
}

Test(proxy_stream, a_body_the_daemon_calls_truncated_reaches_the_client_without_its_final_chunk)
{
    stub->events = {"data: one\n\n", "data: two\n\n"};
    stub->cut = true;
    ProxyServer server(config());
    UniqueFd client = connect_to(server.port());
    post_stream(client.get());
    release_event();
    release_event();
    const std::string got = read_all(client.get(), "");
    cr_assert(got.rfind("HTTP/1.1 200", 0) == 0, "%s", got.c_str());
    cr_assert(got.find("data: two") != std::string::npos);
    cr_assert_not(got.ends_with("\r\n0\r\n\r\n"), "a truncated body was framed as complete");
    cr_assert(got.find("\r\n0\r\n\r\n") == std::string::npos);
}

Test(proxy_stream, a_get_sends_no_body_descriptor)
{
    stub->events = {"{}"};
    ProxyServer server(config());
    UniqueFd client = connect_to(server.port());
    const std::string request =
        "GET /openai/v1/models HTTP/1.1\r\nHost: x\r\nx-api-key: " + kToken + "\r\nConnection: close\r\n\r\n";
    cr_assert_eq(::write(client.get(), request.data(), request.size()), static_cast<ssize_t>(request.size()));
    release_event();
    const std::string got = read_all(client.get(), "");
    cr_assert(got.ends_with("\r\n0\r\n\r\n"), "%s", got.c_str());
    std::lock_guard lock(stub->mutex);
    cr_assert_eq(stub->body_fds, 0);
    cr_assert_eq(stub->method, "GET");
}

Test(proxy_stream, a_client_that_hangs_up_during_a_silent_stream_closes_the_daemons_stream)
{
    stub->events = {"data: one\n\n", "data: never\n\n"};
    ProxyServer server(config());
    UniqueFd client = connect_to(server.port());
    post_stream(client.get());
    std::string got;
    release_event();
    cr_assert(read_until(client.get(), got, "data: one\n\n"));
    int writer = -1;
    {
        std::lock_guard lock(stub->mutex);
        writer = stub->writer.get();
    }
    client.reset();
    // The upstream says nothing more; the proxy must notice the hang-up by itself and close its
    // end, which the daemon takes as "reader gone" and cuts the upstream exchange.
    pollfd pfd{writer, 0, 0};
    cr_assert_eq(::poll(&pfd, 1, 10000), 1, "the proxy kept the stream of a client that left");
    cr_assert(pfd.revents & POLLERR);
}
