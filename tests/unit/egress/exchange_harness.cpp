#include "exchange_harness.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include <chrono>
#include <random>

namespace egress_test {

using namespace codexvault;

namespace {

int on_readable(sd_event_source* /*source*/, int fd, uint32_t /*events*/, void* data)
{
    auto* exchange = static_cast<Exchange*>(data);
    char buffer[4096];
    for (;;) {
        const ssize_t n = ::recv(fd, buffer, sizeof(buffer), MSG_DONTWAIT);
        if (n > 0) {
            exchange->body.append(buffer, static_cast<std::size_t>(n));
            continue;
        }
        if (n == 0) {
            exchange->eof = true;
            exchange->reader_watch.reset();
        }
        break;
    }
    if (exchange->on_data) {
        exchange->on_data(*exchange);
    }
    return 0;
}

std::string canary()
{
    // Generated per run; '/', '+', '=' and '"' make its JSON-escaped and URL-encoded forms differ
    // from the raw value.
    static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    std::random_device seed;
    std::mt19937_64 random(seed());
    std::string value = "sk-cv-";
    for (int i = 0; i < 28; ++i) {
        value += kAlphabet[random() % (sizeof(kAlphabet) - 1)];
    }
    return value + "/+=\"q";
}

}  // namespace

Harness::Harness(const std::string& credential_header, const std::string& prefix) : secret(canary())
{
    if (::geteuid() != 0) {
        cr_skip_test("needs root: the provider's ca_file must be owned by root, as in production");
    }
    tls = make_tls_fixture();
    if (!tls.error.empty()) {
        cr_skip_test("%s", tls.error.c_str());
    }
    server = std::make_unique<TestServer>(tls.server_cert, tls.server_key, credential_header, prefix);
    if (!server->running() || server->port() == 0) {
        cr_skip_test("libmicrohttpd could not start an HTTPS server (TLS support missing?)");
    }
    cr_assert_geq(sd_event_new(&event), 0);
    engine = std::make_unique<egress::Engine>(event);
}

Harness::~Harness()
{
    engine.reset();
    server.reset();
    if (event != nullptr) {
        sd_event_unref(event);
    }
    remove_tls_fixture(tls);
}

policy::Provider Harness::provider(bool allow_private) const
{
    policy::Provider p;
    p.name = "local";
    p.origin = policy::parse_origin("https://127.0.0.1:" + std::to_string(server->port())).value();
    p.allow = {policy::parse_request_pattern("GET /v1/*").value(), policy::parse_request_pattern("POST /v1/*").value()};
    p.secret = "local-key";
    p.inject = policy::parse_injection("Authorization", "Bearer {secret}").value();
    p.transport.ca_file = tls.ca_file;
    p.transport.allow_private_address = allow_private;
    return p;
}

egress::ExchangeRequest Harness::request(const std::string& method, const std::string& path, bool allow_private) const
{
    egress::ExchangeRequest r;
    r.provider = provider(allow_private);
    r.method = method;
    r.path = path;
    return r;
}

void Harness::start(Exchange& exchange, egress::ExchangeRequest request)
{
    egress::ExchangeCallbacks callbacks;
    callbacks.on_head = [this, &exchange](egress::ResponseHead head, UniqueFd reader) {
        exchange.head = true;
        exchange.response = std::move(head);
        exchange.reader = std::move(reader);
        sd_event_source* source = nullptr;
        cr_assert_geq(sd_event_add_io(event, &source, exchange.reader.get(), EPOLLIN, &on_readable, &exchange), 0);
        exchange.reader_watch.reset(source);
        if (exchange.on_head) {
            exchange.on_head(exchange);
        }
    };
    callbacks.on_end = [&exchange](const egress::Outcome& outcome) {
        exchange.ended = true;
        exchange.outcome = outcome;
    };
    auto started = engine->start(std::move(request),
                                 std::span(reinterpret_cast<const std::uint8_t*>(secret.data()), secret.size()),
                                 std::move(callbacks));
    if (!started) {
        exchange.start_error = started.message();
        exchange.ended = true;
        return;
    }
    exchange.id = started.value();
}

void Harness::run(Exchange& exchange, egress::ExchangeRequest request)
{
    start(exchange, std::move(request));
    loop_until([&exchange] { return exchange.ended && (!exchange.head || exchange.eof); });
}

void Harness::loop_until(const std::function<bool()>& done)
{
    // A bound so that a broken engine fails instead of hanging the suite; nothing is timed.
    const auto limit = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (!done()) {
        cr_assert_geq(sd_event_run(event, 200'000), 0);
        cr_assert(std::chrono::steady_clock::now() < limit, "the exchange did not finish");
    }
}

}  // namespace egress_test
