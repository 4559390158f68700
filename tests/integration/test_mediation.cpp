// Provider mediation end to end: the real daemon and dbus-daemon, a real HTTPS server on
// 127.0.0.1 with a per-run CA, vaultctl request and the client library (cli/request_call.hpp).
#include <netdb.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <fstream>
#include <functional>
#include <memory>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "cli/request_call.hpp"
#include "common/bus_contract.hpp"
#include "common/vault_error.hpp"
#include "tests/support/harness.hpp"
#include "tests/tls/encodings.hpp"
#include "tests/tls/https_server.hpp"
#include "tests/tls/tls_fixture.hpp"

using namespace codexvault;
using namespace codexvault::test;

namespace {

constexpr int kExitHttpStatus = 11;
constexpr int kExitTruncated = 12;
const int kDenied = error_info(ErrorCode::PermissionDenied).exit_code;
const int kApproval = error_info(ErrorCode::ApprovalRequired).exit_code;
const int kInvalid = error_info(ErrorCode::InvalidArgument).exit_code;
const int kUnavailable = error_info(ErrorCode::Unavailable).exit_code;

struct Upstream {
    egress_test::TlsFixture tls;
    std::unique_ptr<egress_test::TestServer> server;
    std::string canary;
};
std::unique_ptr<Upstream> upstream;

void require_upstream()
{
    if (::geteuid() != 0) {
        cr_skip_test("needs root: policy and CA files must be root-owned");
    }
    upstream = std::make_unique<Upstream>();
    upstream->tls = egress_test::make_tls_fixture();
    if (!upstream->tls.error.empty()) {
        cr_skip_test("no test CA: %s", upstream->tls.error.c_str());
    }
    upstream->server = std::make_unique<egress_test::TestServer>(upstream->tls.server_cert, upstream->tls.server_key,
                                                                 "authorization", "Bearer ");
    if (!upstream->server->running()) {
        cr_skip_test("libmicrohttpd cannot serve TLS here");
    }
    upstream->canary = random_canary();
}

void setup()
{
    start_env_with_founder();
}

void teardown()
{
    if (upstream) {
        upstream->server.reset();
        egress_test::remove_tls_fixture(upstream->tls);
        upstream.reset();
    }
    stop_env();
}

CommandResult founder(const std::vector<std::string>& args, const std::string& stdin_data = "")
{
    std::vector<std::string> full = args;
    full.insert(full.end(), {"--founder-key", env->founder_key(), "--passphrase-fd", "3"});
    return env->vaultctl(full, {.stdin_data = stdin_data, .passphrase = kPassphrase, .as_uid = std::nullopt});
}

struct ProviderOptions {
    std::string ca_file;  // empty: the fixture's CA
    std::string extra;    // more provider keys
    bool allow_private = true;
    std::string approval = "none";
    std::string requests = R"(["GET /v1/*", "POST /v1/*"])";
    std::string host = "127.0.0.1";
};

// Stores the canary as the provider's key, writes the provider and a grant for uid 0, and restarts
// the daemon so it loads them.
void configure(const ProviderOptions& o = {})
{
    static bool stored = false;  // once per test (each test runs in its own process)
    if (!stored) {
        const auto put = founder({"secret", "put", "local-key"}, upstream->canary);
        cr_assert_eq(put.exit_code, 0, "secret put: %s", put.err.c_str());
        stored = true;
    }
    const std::string policy =
        "version = 1\n"
        "[providers.local]\n"
        "origin = \"https://" +
        o.host + ":" + std::to_string(upstream->server->port()) +
        "\"\n"
        "allow = [\"GET /v1/*\", \"POST /v1/*\"]\n"
        "secret = \"local-key\"\n"
        "inject = { header = \"Authorization\", template = \"Bearer {secret}\" }\n"
        "ca_file = \"" +
        (o.ca_file.empty() ? upstream->tls.ca_file : o.ca_file) + "\"\n" +
        "allow_private_address = " + (o.allow_private ? "true" : "false") + "\n" + o.extra +
        "\n[principals.root]\nuid = 0\n"
        "[grants.root-local]\nprincipal = \"root\"\ncapability = \"provider:local:request\"\n"
        "requests = " +
        o.requests + "\napproval = \"" + o.approval + "\"\n";
    const std::string path = env->policy_dir() + "/50-mediation.toml";
    std::ofstream(path, std::ios::trunc) << policy;
    cr_assert_eq(::chmod(path.c_str(), 0644), 0);
    env->stop_daemon();
    env->start_daemon();
}

ProviderOptions with_option(const std::function<void(ProviderOptions&)>& set)
{
    ProviderOptions o;
    set(o);
    return o;
}

CommandResult request(const std::vector<std::string>& args)
{
    std::vector<std::string> full{"request", "local"};
    full.insert(full.end(), args.begin(), args.end());
    return env->vaultctl(full);
}

struct Fetched {
    cli::ProviderResponse response;
    std::string body;
    cli::ProviderOutcome outcome;
};

Fetched fetch(cli::VaultClient& client, const std::string& method, const std::string& path,
              cli::HeaderList headers = {})
{
    cli::ProviderRequest r;
    r.provider = "local";
    r.method = method;
    r.path_and_query = path;
    r.headers = std::move(headers);
    Fetched f;
    f.response = cli::send_request(client.bus(), r);
    f.outcome = cli::relay_response(client, f.response, [&](std::span<const char> chunk) {
        f.body.append(chunk.data(), chunk.size());
        return true;
    });
    return f;
}

// Starts /v1/stream (which waits at its gate after the first part), runs the founder command
// `args` once the first bytes arrived, then reads the rest and asks the outcome.
struct CutStream {
    std::string rest;
    cli::ProviderOutcome outcome;
};
CutStream stream_cut_by(const std::vector<std::string>& args)
{
    cli::VaultClient client(env->bus_address());
    cli::ProviderRequest r;
    r.provider = "local";
    r.method = "GET";
    r.path_and_query = "/v1/stream";
    cli::ProviderResponse head = cli::send_request(client.bus(), r);
    char first[32] = {};
    cr_assert_gt(::read(head.stream.get(), first, sizeof first), 0);
    const auto done = founder(args);
    cr_assert_eq(done.exit_code, 0, "%s", done.err.c_str());
    CutStream cut;
    cut.outcome = cli::relay_response(client, head, [&](std::span<const char> chunk) {
        cut.rest.append(chunk.data(), chunk.size());
        return true;
    });
    upstream->server->open_gate();
    return cut;
}

void expect_no_canary(const std::string& text, const char* where)
{
    cr_expect(text.find(upstream->canary) == std::string::npos, "the key appears in %s", where);
    for (const auto& fragment : egress_test::forbidden_fragments(upstream->canary)) {
        cr_expect(text.find(fragment) == std::string::npos, "an encoded form of the key appears in %s", where);
    }
}

}  // namespace

TestSuite(mediation, .init = setup, .fini = teardown, .timeout = 180);

Test(mediation, the_key_is_injected_the_callers_authorization_dropped_and_the_key_never_comes_back)
{
    require_upstream();
    configure();
    cli::VaultClient client(env->bus_address());
    const Fetched f = fetch(client, "GET", "/v1/echo?user=alice&token=xyz", {{"Authorization", "Bearer caller-token"}});
    cr_expect_eq(f.response.status, 200);
    cr_expect(f.outcome.complete(), "%s: %s", f.outcome.end.c_str(), f.outcome.reason.c_str());
    // The upstream saw the vault's key, not the caller's token.
    const auto seen = upstream->server->last_headers();
    cr_expect(seen.at("authorization") == "Bearer " + upstream->canary, "the key was not injected");
    cr_expect(seen.at("accept-encoding") == "identity");
    // Every echoed form came back as the marker, and no header carries the key or a cookie.
    cr_expect(f.body.find("<redacted:") != std::string::npos, "%s", f.body.c_str());
    cr_expect_gt(f.outcome.redactions, 0u);
    expect_no_canary(f.body, "the stream");
    std::string headers;
    for (const auto& [name, value] : f.response.headers) {
        headers += name + ": " + value + "\n";
        cr_expect(name != "Set-Cookie" && name != "set-cookie", "Set-Cookie reached the caller");
    }
    expect_no_canary(headers, "the response headers");
    // Nor in the daemon's log, the audit log, the state files; and the query's values are not audited.
    env->stop_daemon();
    expect_no_canary(env->daemon_log(), "the daemon's log");
    const std::string state = read_tree(env->state_dir());
    expect_no_canary(state, "the state folder");
    cr_expect(env->daemon_log().find("xyz") == std::string::npos, "a query value was logged");
    cr_expect(env->daemon_log().find("caller-token") == std::string::npos, "a header value was logged");
    cr_expect(env->daemon_log().find("/v1/echo?user&token") != std::string::npos, "the audit keeps the query keys");
}

Test(mediation, vaultctl_request_relays_server_sent_events_in_order)
{
    require_upstream();
    configure();
    const auto r = request({"GET", "/v1/sse"});
    cr_assert_eq(r.exit_code, 0, "%s", r.err.c_str());
    std::string expected;
    for (int i = 0; i < egress_test::kSseEvents; ++i) {
        expected += "data: " + std::to_string(i) + "\n\n";
    }
    cr_expect(r.out == expected, "events out of order or missing: %s", r.out.c_str());
    const auto with_head = request({"-i", "GET", "/v1/sse"});
    cr_expect_eq(with_head.exit_code, 0);
    cr_expect(with_head.out.rfind("HTTP/1.1 200\r\n", 0) == 0, "%s", with_head.out.substr(0, 40).c_str());
    cr_expect(with_head.out.find("text/event-stream") != std::string::npos);
}

Test(mediation, a_non_2xx_status_has_its_own_exit_code_and_its_body_is_printed)
{
    require_upstream();
    configure();
    const auto r = request({"GET", "/v1/missing"});
    cr_expect_eq(r.exit_code, kExitHttpStatus, "%d %s", r.exit_code, r.err.c_str());
    cr_expect(r.out == "no such thing\n");
}

Test(mediation, a_redirect_comes_back_unfollowed)
{
    require_upstream();
    configure();
    cli::VaultClient client(env->bus_address());
    const Fetched f = fetch(client, "GET", "/v1/redirect");
    cr_expect_eq(f.response.status, 302);
    bool location = false;
    for (const auto& [name, value] : f.response.headers) {
        location = location || value == "https://elsewhere.invalid/steal";
    }
    cr_expect(location, "the Location header is missing");
    cr_expect_eq(upstream->server->requests(), 1);
}

Test(mediation, a_disallowed_method_or_path_is_denied_before_any_connection)
{
    require_upstream();
    configure(with_option([&](ProviderOptions& o) { o.requests = R"(["GET /v1/echo"])"; }));
    cr_expect_eq(request({"GET", "/v1/sse"}).exit_code, kDenied);
    cr_expect_eq(request({"DELETE", "/v1/echo"}).exit_code, kDenied);
    cr_expect_eq(request({"GET", "/other"}).exit_code, kDenied);
    cr_expect_eq(upstream->server->connections(), 0, "a connection was made for a denied request");
}

Test(mediation, an_unknown_ca_and_a_pin_mismatch_are_refused)
{
    require_upstream();
    const egress_test::TlsFixture other = egress_test::make_tls_fixture();
    cr_assert(other.error.empty());
    configure(with_option([&](ProviderOptions& o) { o.ca_file = other.ca_file; }));
    const auto wrong_ca = request({"GET", "/v1/echo"});
    cr_expect_eq(wrong_ca.exit_code, kUnavailable, "%s", wrong_ca.err.c_str());
    cr_expect_eq(upstream->server->requests(), 0);
    configure(with_option([&](ProviderOptions& o) { o.extra = "pins = [\"" + other.pin + "\"]"; }));
    const auto wrong_pin = request({"GET", "/v1/echo"});
    cr_expect_eq(wrong_pin.exit_code, kUnavailable, "%s", wrong_pin.err.c_str());
    cr_expect_eq(upstream->server->requests(), 0);
    egress_test::remove_tls_fixture(other);
}

Test(mediation, a_private_address_is_refused_without_allow_private_address)
{
    require_upstream();
    configure(with_option([&](ProviderOptions& o) { o.allow_private = false; }));
    const auto r = request({"GET", "/v1/echo"});
    cr_expect_eq(r.exit_code, kUnavailable, "%s", r.err.c_str());
    cr_expect_eq(upstream->server->requests(), 0);
}

Test(mediation, an_oversize_body_gets_a_clear_error)
{
    require_upstream();
    configure(with_option([&](ProviderOptions& o) { o.extra = "max_request_bytes = \"1KiB\""; }));
    const auto r = request({"POST", "/v1/upload", "-d", std::string(2048, 'x')});
    cr_expect_eq(r.exit_code, kInvalid, "%s", r.err.c_str());
    cr_expect(r.err.find("max_request_bytes") != std::string::npos, "%s", r.err.c_str());
    cr_expect_eq(upstream->server->connections(), 0);
    const auto small = request({"POST", "/v1/upload", "-d", std::string(1000, 'x')});
    cr_expect_eq(small.exit_code, 0, "%s", small.err.c_str());
    cr_expect(small.out == "received 1000\n", "%s", small.out.c_str());
}

Test(mediation, a_hanging_upstream_times_out_while_other_requests_are_served)
{
    require_upstream();
    configure(with_option([](ProviderOptions& o) { o.extra = "timeouts = { idle = \"2s\" }"; }));
    cli::VaultClient hanging(env->bus_address());
    cli::ProviderRequest r;
    r.provider = "local";
    r.method = "GET";
    r.path_and_query = "/v1/hang";
    cli::ProviderResponse head = cli::send_request(hanging.bus(), r);
    cr_expect_eq(head.status, 200);
    cr_expect_eq(cli::request_outcome(hanging.bus(), head.request_id).end, "pending");
    // Served while the other one hangs.
    cli::VaultClient other(env->bus_address());
    const Fetched f = fetch(other, "GET", "/v1/sse");
    cr_expect(f.outcome.complete());
    const auto outcome = cli::relay_response(hanging, head, [](std::span<const char>) { return true; });
    cr_expect_eq(outcome.end, "truncated");
    cr_expect(outcome.reason.find("idle") != std::string::npos, "%s", outcome.reason.c_str());
}

Test(mediation, a_lock_during_a_stream_cuts_it_and_the_outcome_says_truncated)
{
    require_upstream();
    configure();
    const auto [rest, outcome] = stream_cut_by({"lock", "--reason", "testing a cut stream"});
    cr_expect(rest.find("second-part") == std::string::npos, "the stream went on after the lock");
    cr_expect_eq(outcome.end, "truncated");
    cr_expect(outcome.reason.find("locked") != std::string::npos, "%s", outcome.reason.c_str());
    // New requests are refused while locked.
    cr_expect_eq(request({"GET", "/v1/echo"}).exit_code, error_info(ErrorCode::Locked).exit_code);
    env->stop_daemon();
    cr_expect(env->daemon_log().find("end cancelled") != std::string::npos, "the cut is not recorded");
}

// An incident cuts every stream in flight as a lock does, and marks the provider's key for
// rotation: after the unlock, requests are refused until the founder rotates the key.
Test(mediation, an_incident_cuts_a_stream_and_the_key_is_refused_until_it_is_rotated)
{
    require_upstream();
    configure();
    const auto [rest, outcome] = stream_cut_by({"incident", "--reason", "testing an incident mid-stream"});
    cr_expect(rest.find("second-part") == std::string::npos, "the stream went on after the incident");
    cr_expect_eq(outcome.end, "truncated");
    cr_expect_eq(request({"GET", "/v1/echo"}).exit_code, error_info(ErrorCode::Locked).exit_code);

    const auto unlock = founder({"unlock", "--reason", "investigated"});
    cr_assert_eq(unlock.exit_code, 0, "%s", unlock.err.c_str());
    // The incident revoked every grant, the policy file's too: a new one, issued after the unlock.
    cr_expect_eq(request({"GET", "/v1/echo"}).exit_code, error_info(ErrorCode::PermissionDenied).exit_code);
    const auto grant =
        founder({"grant", "issue", "--principal", "uid=0", "--cap", "provider:local:request", "--ttl", "1h"});
    cr_assert_eq(grant.exit_code, 0, "%s", grant.err.c_str());
    const auto refused = request({"GET", "/v1/echo"});
    cr_expect_neq(refused.exit_code, 0, "a key marked for rotation was used: %s", refused.out.c_str());
    cr_expect(refused.err.find("rotat") != std::string::npos, "the refusal names the rotation: %s",
              refused.err.c_str());
    const auto rotate = founder({"secret", "rotate", "local-key"}, upstream->canary);
    cr_assert_eq(rotate.exit_code, 0, "%s", rotate.err.c_str());
    const auto after = request({"GET", "/v1/echo"});
    cr_expect_eq(after.exit_code, 0, "after the rotation: %s", after.err.c_str());
}

// Backpressure: while the caller reads nothing, the daemon holds a bounded amount of a 64 MiB
// response (curl's buffer, one redacted chunk, the socket buffers: docs/egress.md), not the body;
// read later, the whole body arrives.
Test(mediation, a_slow_reader_does_not_grow_the_daemons_memory_with_the_response)
{
    require_upstream();
    configure();
    const auto rss_kib = [] {
        std::ifstream in("/proc/" + std::to_string(env->daemon_pid()) + "/status");
        for (std::string line; std::getline(in, line);) {
            if (line.rfind("VmRSS:", 0) == 0) {
                return std::stoull(line.substr(6));
            }
        }
        return 0ULL;
    };
    cli::VaultClient client(env->bus_address());
    cli::ProviderRequest r;
    r.provider = "local";
    r.method = "GET";
    r.path_and_query = "/v1/large";
    const auto before = rss_kib();
    cli::ProviderResponse head = cli::send_request(client.bus(), r);
    std::this_thread::sleep_for(std::chrono::seconds(2));  // upstream sends as fast as it may
    const auto stalled = rss_kib();
    std::uint64_t received = 0;
    const auto outcome = cli::relay_response(client, head, [&](std::span<const char> chunk) {
        received += chunk.size();
        return true;
    });
    cr_log_info("daemon RSS %llu KiB before, %llu KiB with the reader stalled", before, stalled);
    cr_expect_lt(stalled, before + 16 * 1024, "the daemon grew from %llu to %llu KiB holding an unread response",
                 before, stalled);
    cr_expect_eq(received, egress_test::kLargeBytes);
    cr_expect_eq(outcome.end, "complete", "%s", outcome.reason.c_str());
}

Test(mediation, a_hundred_concurrent_streams_complete)
{
    require_upstream();
    configure();
    constexpr int kStreams = 100;
    cli::VaultClient client(env->bus_address());
    // Watched before the bus is read, so the streams' RequestEnded signals that arrive while the
    // replies are awaited are kept for their relay.
    (void)client.request_ends();
    // All sent before any is read: one connection, asynchronous calls.
    struct Slot {
        cli::ProviderResponse response;
        std::string error;
        bool done = false;
    };
    std::vector<Slot> slots(kStreams);
    std::vector<bus::SlotPtr> pending;
    for (int i = 0; i < kStreams; ++i) {
        cli::ProviderRequest r;
        r.provider = "local";
        r.method = "GET";
        r.path_and_query = "/v1/sse";
        bus::MessagePtr m = cli::new_request_message(client.bus(), r);
        sd_bus_slot* slot = nullptr;
        const int rc = sd_bus_call_async(
            client.bus(), &slot, m.get(),
            [](sd_bus_message* reply, void* userdata, sd_bus_error*) -> int {
                auto* s = static_cast<Slot*>(userdata);
                s->done = true;
                if (sd_bus_message_is_method_error(reply, nullptr)) {
                    s->error = sd_bus_message_get_error(reply)->message;
                } else {
                    s->response = cli::read_request_reply(reply);
                }
                return 0;
            },
            &slots[static_cast<std::size_t>(i)], cli::kRequestCallTimeoutUsec);
        cr_assert_geq(rc, 0);
        pending.emplace_back(slot);
    }
    for (;;) {
        bool all = true;
        for (const auto& s : slots) {
            all = all && s.done;
        }
        if (all) {
            break;
        }
        cr_assert_geq(sd_bus_process(client.bus(), nullptr), 0);
        (void)sd_bus_wait(client.bus(), 1'000'000);
    }
    std::string expected;
    for (int i = 0; i < egress_test::kSseEvents; ++i) {
        expected += "data: " + std::to_string(i) + "\n\n";
    }
    int complete = 0;
    for (auto& s : slots) {
        cr_assert(s.error.empty(), "%s", s.error.c_str());
        std::string body;
        const auto outcome = cli::relay_response(client, s.response, [&](std::span<const char> chunk) {
            body.append(chunk.data(), chunk.size());
            return true;
        });
        complete += outcome.complete() && body == expected ? 1 : 0;
    }
    cr_expect_eq(complete, kStreams);
}

Test(mediation, an_approval_is_bound_to_the_body_it_was_asked_for)
{
    require_upstream();
    configure(with_option([&](ProviderOptions& o) { o.approval = "each"; }));
    // Approvals belong to the process that asked: this one, through the client library.
    cli::VaultClient client(env->bus_address());
    const auto post = [&](const std::string& body, const std::string& approval) {
        cli::ProviderRequest r;
        r.provider = "local";
        r.method = "POST";
        r.path_and_query = "/v1/upload";
        const auto* bytes = reinterpret_cast<const std::uint8_t*>(body.data());
        r.body = cli::body_memfd(std::span(bytes, body.size()));
        r.approval_id = approval;
        return cli::send_request(client.bus(), r);
    };
    std::string message;
    const int first = exit_code_of([&] {
        try {
            (void)post("body one", "");
        } catch (const cli::CallError& e) {
            message = e.what();
            throw;
        }
    });
    cr_assert_eq(first, kApproval, "%d %s", first, message.c_str());
    std::smatch m;
    cr_assert(std::regex_search(message, m, std::regex("a-[0-9a-f]+")), "%s", message.c_str());
    const std::string id = m.str();
    const auto approved = founder({"approve", id});
    cr_assert_eq(approved.exit_code, 0, "%s", approved.err.c_str());
    // Another body under the same approval is refused, and nothing is sent.
    cr_expect_eq(exit_code_of([&] { (void)post("body two", id); }), kDenied);
    cr_expect_eq(upstream->server->requests(), 0);
    cli::ProviderResponse same = post("body one", id);
    std::string body;
    const auto outcome = cli::relay_response(client, same, [&](std::span<const char> chunk) {
        body.append(chunk.data(), chunk.size());
        return true;
    });
    cr_expect(outcome.complete());
    cr_expect(body == "received 8\n", "%s", body.c_str());
    // Used once.
    cr_expect_eq(exit_code_of([&] { (void)post("body one", id); }), kDenied);
}

Test(mediation, another_connection_cannot_read_a_requests_outcome)
{
    require_upstream();
    configure();
    cli::VaultClient client(env->bus_address());
    const Fetched f = fetch(client, "GET", "/v1/sse");
    cr_expect(f.outcome.complete());
    cli::VaultClient other(env->bus_address());
    const int code = exit_code_of([&] { (void)cli::request_outcome(other.bus(), f.response.request_id); });
    cr_expect_eq(code, error_info(ErrorCode::NotFound).exit_code);
}

namespace {

int count_request_ended(sd_bus_message* message, void* userdata, sd_bus_error* /*error*/)
{
    if (sd_bus_message_is_signal(message, bus::kInterface, bus::signal::kRequestEnded) > 0) {
        ++*static_cast<int*>(userdata);
    }
    return 0;
}

}  // namespace

Test(mediation, a_streams_end_reaches_only_the_connection_that_made_the_request_before_its_eof)
{
    require_upstream();
    configure();
    // Another connection that asks the bus for every RequestEnded signal.
    cli::VaultClient other(env->bus_address());
    int seen_by_other = 0;
    sd_bus_slot* raw = nullptr;
    cr_assert_geq(
        sd_bus_add_match(other.bus(), &raw, "type='signal',interface='org.codexvault.Vault1',member='RequestEnded'",
                         &count_request_ended, &seen_by_other),
        0);
    const bus::SlotPtr match(raw);

    cli::VaultClient client(env->bus_address());
    cli::RequestEnds& ends = client.request_ends();
    cli::ProviderRequest r;
    r.provider = "local";
    r.method = "GET";
    r.path_and_query = "/v1/sse";
    cli::ProviderResponse response = cli::send_request(client.bus(), r);
    cr_assert_not(response.vault.empty(), "the reply names the vault's connection");
    std::string body;
    char buffer[4096];
    for (ssize_t n = 0; (n = ::read(response.stream.get(), buffer, sizeof buffer)) != 0;) {
        cr_assert_gt(n, 0);
        body.append(buffer, static_cast<std::size_t>(n));
    }
    // The signal, not RequestOutcome (no fallback here), says the body is whole.
    const auto ended = ends.wait_for(response.request_id, response.vault, 10'000'000);
    cr_assert(ended.has_value(), "RequestEnded came to the requesting connection");
    cr_expect_eq(ended->end, "complete");
    cr_expect_eq(ended->bytes_delivered, body.size());
    // A signal from anyone else, or for another request, is not believed.
    cr_expect_not(ends.wait_for(response.request_id, response.vault, 0).has_value(), "each end is taken once");

    // The other connection: a round trip to the vault after the signal was sent, so anything
    // addressed to it would have arrived first; nothing did.
    (void)other.call(bus::method::kStatus);
    while (sd_bus_process(other.bus(), nullptr) > 0) {
    }
    cr_expect_eq(seen_by_other, 0, "RequestEnded is unicast, never broadcast");
}

Test(mediation, a_request_ended_signal_forged_by_another_connection_is_not_believed)
{
    require_upstream();
    configure();
    cli::VaultClient client(env->bus_address());
    cli::RequestEnds& ends = client.request_ends();
    cli::ProviderRequest r;
    r.provider = "local";
    r.method = "GET";
    r.path_and_query = "/v1/stream";  // waits at its gate after the first part: not ended yet
    cli::ProviderResponse response = cli::send_request(client.bus(), r);
    const char* me = nullptr;
    cr_assert_geq(sd_bus_get_unique_name(client.bus(), &me), 0);

    // Another process on the bus claims, to this connection, that the stream ended complete.
    cli::VaultClient forger(env->bus_address());
    sd_bus_message* raw = nullptr;
    cr_assert_geq(
        sd_bus_message_new_signal(forger.bus(), &raw, bus::kObjectPath, bus::kInterface, bus::signal::kRequestEnded),
        0);
    const bus::MessagePtr forged(raw);
    cr_assert_geq(sd_bus_message_set_destination(forged.get(), me), 0);
    cr_assert_geq(sd_bus_message_append(forged.get(), bus::signal::kRequestEndedSignature, response.request_id,
                                        "complete", "", std::uint64_t{1}, std::uint64_t{0}),
                  0);
    cr_assert_geq(sd_bus_send(forger.bus(), forged.get(), nullptr), 0);
    cr_assert_geq(sd_bus_flush(forger.bus()), 0);
    // Delivered (a round trip through the bus after it), and not taken as this request's end.
    (void)forger.call(bus::method::kStatus);
    cr_expect_not(ends.wait_for(response.request_id, response.vault, 300'000).has_value(),
                  "only the vault that answered the Request may end it");
    response.stream.reset();  // cuts the exchange
    upstream->server->open_gate();
}

Test(mediation, a_socket_as_the_body_is_refused)
{
    require_upstream();
    configure();
    cli::VaultClient client(env->bus_address());
    int pair[2];
    cr_assert_eq(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair), 0);
    UniqueFd a(pair[0]);
    UniqueFd b(pair[1]);
    cli::ProviderRequest r;
    r.provider = "local";
    r.method = "POST";
    r.path_and_query = "/v1/upload";
    r.body = std::move(a);
    const int code = exit_code_of([&] { (void)cli::send_request(client.bus(), r); });
    cr_expect_eq(code, kInvalid);
    cr_expect_eq(upstream->server->connections(), 0);
}

Test(mediation, a_stream_open_when_the_daemon_stops_is_recorded_as_cut)
{
    require_upstream();
    configure();
    cli::VaultClient client(env->bus_address());
    cli::ProviderRequest r;
    r.provider = "local";
    r.method = "GET";
    r.path_and_query = "/v1/stream";
    cli::ProviderResponse head = cli::send_request(client.bus(), r);
    env->stop_daemon();
    upstream->server->open_gate();
    std::string rest;
    char buffer[256];
    for (ssize_t n = 0; (n = ::read(head.stream.get(), buffer, sizeof buffer)) > 0;) {
        rest.append(buffer, static_cast<std::size_t>(n));
    }
    cr_expect(rest.find("second-part") == std::string::npos, "the stream outlived the daemon");
    const std::string log = env->daemon_log();
    cr_expect(log.find("end cancelled") != std::string::npos && log.find("daemon stopping") != std::string::npos,
              "the cut at stop is not recorded");
}

// A name (not an address, not "localhost", which libcurl answers itself) goes through libcurl's
// threaded resolver: a thread started under the daemon's seccomp filter. The host name resolves
// to loopback through /etc/hosts here; the certificate does not name it, so TLS refuses it, but
// only after the lookup and the connection: the daemon must come through both alive.
Test(mediation, a_provider_named_by_a_host_name_is_resolved_under_the_filter)
{
    require_upstream();
    char name[256] = {};
    cr_assert_eq(::gethostname(name, sizeof name - 1), 0);
    addrinfo hints{};
    hints.ai_family = AF_INET;
    addrinfo* found = nullptr;
    if (::getaddrinfo(name, nullptr, &hints, &found) != 0 || found == nullptr) {
        cr_skip_test("the host name %s does not resolve here", name);
    }
    const auto* address = reinterpret_cast<const sockaddr_in*>(found->ai_addr);
    const bool loopback = (ntohl(address->sin_addr.s_addr) >> 24) == 127;
    ::freeaddrinfo(found);
    if (!loopback || std::string(name) == "localhost") {
        cr_skip_test("the host name %s does not resolve to loopback", name);
    }
    configure(with_option([&](ProviderOptions& o) { o.host = name; }));
    const auto r = request({"GET", "/v1/echo"});
    cr_expect_eq(r.exit_code, kUnavailable, "%d %s", r.exit_code, r.err.c_str());
    cr_expect_eq(upstream->server->requests(), 0);
    // Still serving after the resolver thread; the harness's stop checks it exits cleanly.
    cr_expect_eq(env->vaultctl({"status"}).exit_code, 0);
}
