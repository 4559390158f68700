// The egress engine against a real HTTPS server on 127.0.0.1 with a CA made for the test: the key
// is injected and never comes back, streams flow before they end, and every guard (private
// address, pin, CA, size, idle, encoding, redirect) holds.
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "exchange_harness.hpp"
#include "tests/tls/encodings.hpp"

using namespace codexvault;
using namespace egress_test;
using egress::End;

namespace {

std::string header_value(const egress::ResponseHead& head, const std::string& name)
{
    for (const auto& header : head.headers) {
        if (egress::lower_ascii(header.name) == name) {
            return header.value;
        }
    }
    return "<absent>";
}

}  // namespace

Test(egress_exchange, the_key_is_injected_and_never_comes_back_in_any_encoding)
{
    Harness h;
    auto request = h.request("GET", "/v1/echo?x=1");
    request.headers = {{"Authorization", "Bearer caller-token"}, {"Cookie", "a=b"}, {"X-Trace", "t1"}};
    Exchange e;
    h.run(e, std::move(request));
    cr_assert_eq(e.outcome.end, End::Complete, "%s", e.outcome.reason.c_str());

    const auto seen = h.server->last_headers();
    cr_assert(seen.at("authorization") == "Bearer " + h.secret, "the vault's credential replaced the caller's");
    cr_assert_eq(seen.count("cookie"), 0U);
    cr_assert_eq(seen.at("x-trace"), "t1");
    cr_assert_eq(seen.at("accept-encoding"), "identity");

    for (const std::string& fragment : forbidden_fragments(h.secret)) {
        cr_assert(e.body.find(fragment) == std::string::npos, "an encoded form of the key reached the caller");
    }
    cr_assert(e.body.find("<redacted:local-key>") != std::string::npos);
    cr_assert_geq(e.outcome.redactions, echo_forms(h.secret).size());
    cr_assert_eq(header_value(e.response, "x-echo"), "<redacted:local-key>");
    cr_assert_eq(header_value(e.response, "set-cookie"), "<absent>");
    cr_assert_eq(e.outcome.dropped_headers.size(), 2U);
}

Test(egress_exchange, a_stream_reaches_the_caller_before_it_ends)
{
    Harness h;
    Exchange e;
    // The server sends its second part only once the first has reached this reader, so the
    // exchange can only complete if bytes are relayed as they arrive.
    e.on_data = [&h](Exchange& x) {
        if (x.body.find("first-part") != std::string::npos) {
            h.server->open_gate();
        }
    };
    h.run(e, h.request("GET", "/v1/stream"));
    cr_assert_eq(e.outcome.end, End::Complete, "%s", e.outcome.reason.c_str());
    cr_assert_eq(e.body, "first-part\nsecond-part\n");
}

Test(egress_exchange, a_private_address_is_refused_unless_the_provider_allows_it)
{
    Harness h;
    Exchange by_address;
    h.run(by_address, h.request("GET", "/v1/ok", false));
    cr_assert_eq(by_address.outcome.end, End::Refused, "%s", by_address.outcome.reason.c_str());
    cr_assert_not(by_address.head);
    cr_assert(by_address.outcome.reason.find("loopback") != std::string::npos, "%s", by_address.outcome.reason.c_str());

    // A name is judged by the address it resolves to.
    auto by_name = h.request("GET", "/v1/ok", false);
    by_name.provider.origin = policy::parse_origin("https://localhost:" + std::to_string(h.server->port())).value();
    Exchange named;
    h.run(named, std::move(by_name));
    cr_assert_eq(named.outcome.end, End::Refused, "%s", named.outcome.reason.c_str());
    cr_assert_eq(h.server->connections(), 0, "no connection reached the server");

    Exchange allowed;
    h.run(allowed, h.request("GET", "/v1/ok", true));
    cr_assert_eq(allowed.outcome.end, End::Complete, "%s", allowed.outcome.reason.c_str());
}

Test(egress_exchange, a_wrong_pin_is_refused_and_the_right_one_accepted)
{
    Harness h;
    auto wrong = h.request("GET", "/v1/ok");
    wrong.provider.transport.pins = {"sha256//AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="};
    Exchange refused;
    h.run(refused, std::move(wrong));
    cr_assert_eq(refused.outcome.end, End::PinMismatch, "%s", refused.outcome.reason.c_str());
    cr_assert_not(refused.head);
    cr_assert_eq(h.server->requests(), 0);

    auto right = h.request("GET", "/v1/ok");
    right.provider.transport.pins = {"sha256//AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", h.tls.pin};
    Exchange accepted;
    h.run(accepted, std::move(right));
    cr_assert_eq(accepted.outcome.end, End::Complete, "%s", accepted.outcome.reason.c_str());
    cr_assert_eq(accepted.body, "ok\n");
}

Test(egress_exchange, a_server_the_ca_does_not_vouch_for_is_refused)
{
    Harness h;
    auto request = h.request("GET", "/v1/ok");
    request.provider.transport.ca_file.clear();  // the system store knows nothing of the test CA
    Exchange e;
    h.run(e, std::move(request));
    cr_assert_eq(e.outcome.end, End::TlsFailed, "%s", e.outcome.reason.c_str());
    cr_assert_eq(h.server->requests(), 0);
}

Test(egress_exchange, an_oversized_response_is_cut_at_the_limit_and_reported)
{
    Harness h;
    auto request = h.request("GET", "/v1/big");
    request.provider.transport.max_response_bytes = 1000;
    Exchange e;
    h.run(e, std::move(request));
    cr_assert(e.head);
    cr_assert_eq(e.outcome.end, End::ResponseTooLarge, "%s", e.outcome.reason.c_str());
    cr_assert_leq(e.body.size(), 1000U);
    cr_assert_eq(e.outcome.delivered_bytes, e.body.size());
}

Test(egress_exchange, a_silent_upstream_hits_the_idle_timeout)
{
    Harness h;
    auto request = h.request("GET", "/v1/hang");
    request.provider.transport.timeouts.idle_usec = 1'000'000;
    Exchange e;
    h.run(e, std::move(request));
    cr_assert(e.head);
    cr_assert_eq(e.outcome.end, End::IdleTimeout, "%s", e.outcome.reason.c_str());
    cr_assert(e.eof, "the caller's stream is closed");
}

Test(egress_exchange, a_cancelled_stream_is_cut_and_reported_as_cancelled)
{
    Harness h;
    Exchange e;
    e.on_head = [&h](Exchange& x) {
        h.engine->cancel(x.id, "vault locked");
    };
    h.run(e, h.request("GET", "/v1/hang"));
    cr_assert_eq(e.outcome.end, End::Cancelled);
    cr_assert_eq(e.outcome.reason, "vault locked");
    cr_assert(e.eof);
}

Test(egress_exchange, upstream_connections_are_kept_alive_across_requests)
{
    Harness h;
    Exchange first;
    h.run(first, h.request("GET", "/v1/ok"));
    Exchange second;
    h.run(second, h.request("GET", "/v1/ok"));
    cr_assert_eq(second.outcome.end, End::Complete, "%s", second.outcome.reason.c_str());
    cr_assert_eq(first.outcome.new_connections, 1U);
    cr_assert_eq(second.outcome.new_connections, 0U, "the second request reused the connection");
    cr_assert_eq(h.server->connections(), 1);
}

Test(egress_exchange, a_redirect_comes_back_unfollowed)
{
    Harness h;
    Exchange e;
    h.run(e, h.request("GET", "/v1/redirect"));
    cr_assert_eq(e.outcome.end, End::Complete, "%s", e.outcome.reason.c_str());
    cr_assert_eq(e.response.status, 302L);
    cr_assert_eq(header_value(e.response, "location"), "https://elsewhere.invalid/steal");
    cr_assert_eq(h.server->requests(), 1);
}

Test(egress_exchange, an_encoded_response_is_refused_not_passed_on_unredacted)
{
    Harness h;
    Exchange e;
    h.run(e, h.request("GET", "/v1/gzip"));
    cr_assert_eq(e.outcome.end, End::EncodedBody, "%s", e.outcome.reason.c_str());
    cr_assert_not(e.head);
}

Test(egress_exchange, a_body_streams_from_a_pipe_or_a_memfd)
{
    Harness h;
    int pipe_fds[2];
    cr_assert_eq(::pipe(pipe_fds), 0);
    const std::string payload(10'000, 'p');
    cr_assert_eq(::write(pipe_fds[1], payload.data(), payload.size()), static_cast<ssize_t>(payload.size()));
    ::close(pipe_fds[1]);
    auto piped = h.request("POST", "/v1/upload");
    piped.body = UniqueFd(pipe_fds[0]);
    Exchange a;
    h.run(a, std::move(piped));
    cr_assert_eq(a.outcome.end, End::Complete, "%s", a.outcome.reason.c_str());
    cr_assert_eq(a.body, "received 10000\n");
    cr_assert_eq(a.outcome.request_bytes, 10'000U);

    UniqueFd memfd(::memfd_create("body", MFD_CLOEXEC));
    cr_assert_eq(::write(memfd.get(), payload.data(), 777), 777);
    auto from_memfd = h.request("POST", "/v1/upload");
    from_memfd.body = std::move(memfd);
    Exchange b;
    h.run(b, std::move(from_memfd));
    cr_assert_eq(b.outcome.end, End::Complete, "%s", b.outcome.reason.c_str());
    cr_assert_eq(b.body, "received 777\n");
}

Test(egress_exchange, bad_requests_are_refused_before_any_connection)
{
    Harness h;
    int pair[2];
    cr_assert_eq(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair), 0);
    ::close(pair[1]);
    auto socket_body = h.request("POST", "/v1/upload");
    socket_body.body = UniqueFd(pair[0]);
    Exchange a;
    h.start(a, std::move(socket_body));
    cr_assert(a.start_error.find("pipe, a memfd or a regular file") != std::string::npos, "%s", a.start_error.c_str());

    UniqueFd memfd(::memfd_create("body", MFD_CLOEXEC));
    cr_assert_eq(::ftruncate(memfd.get(), 4096), 0);
    auto too_big = h.request("POST", "/v1/upload");
    too_big.provider.transport.max_request_bytes = 1000;
    too_big.body = std::move(memfd);
    Exchange b;
    h.start(b, std::move(too_big));
    cr_assert(b.start_error.find("at most 1000") != std::string::npos, "%s", b.start_error.c_str());

    Exchange c;
    h.start(c, h.request("DELETE", "/v1/ok"));
    cr_assert(c.start_error.find("does not allow") != std::string::npos, "%s", c.start_error.c_str());

    Exchange d;
    h.start(d, h.request("GET", "/v1/../admin"));
    cr_assert(d.start_error.find("not clean") != std::string::npos, "%s", d.start_error.c_str());

    auto smuggle = h.request("GET", "/v1/ok");
    smuggle.headers = {{"X-A", "1\r\nHost: evil"}};
    Exchange f;
    h.start(f, std::move(smuggle));
    cr_assert(f.start_error.find("control character") != std::string::npos, "%s", f.start_error.c_str());

    h.loop_until([] { return true; });
    cr_assert_eq(h.server->connections(), 0, "nothing reached the server");
}
