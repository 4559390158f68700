// The pure part of `vaultctl proxy` and `vaultctl run` (cli/proxy_core.hpp): listen addresses,
// routing, the token check, which headers cross, and the environment a client gets.
#include <criterion/criterion.h>

#include <string>
#include <vector>

#include "cli/proxy_core.hpp"

using namespace codexvault::cli::proxy;
using codexvault::ErrorCode;

namespace {

const std::string kToken = "sk-cv-0123456789abcdef0123456789abcdef0123456789abcdef";

std::optional<Route> route(std::string_view target, const std::vector<std::string>& allowed = {})
{
    RouteError error;
    return route_request(target, allowed, error);
}

unsigned route_status(std::string_view target, const std::vector<std::string>& allowed = {})
{
    RouteError error;
    const auto r = route_request(target, allowed, error);
    return r ? 0 : error.status;
}

}  // namespace

Test(proxy_listen, loopback_addresses_and_unix_paths_are_accepted)
{
    std::string error;
    auto a = parse_listen("127.0.0.1:8080", error);
    cr_assert(a.has_value());
    cr_assert_eq(a->port, 8080);
    cr_assert_eq(a->host, "127.0.0.1");
    a = parse_listen("[::1]:0", error);
    cr_assert(a.has_value());
    cr_assert_eq(a->host, "::1");
    a = parse_listen("localhost:9", error);
    cr_assert(a.has_value() && a->host == "127.0.0.1");
    a = parse_listen("127.5.6.7:1", error);
    cr_assert(a.has_value());
    a = parse_listen("unix:/run/user/1000/vault.sock", error);
    cr_assert(a.has_value());
    cr_assert(a->kind == ListenAddress::Kind::Unix);
    cr_assert_eq(a->path, "/run/user/1000/vault.sock");
}

Test(proxy_listen, other_hosts_bad_ports_and_relative_unix_paths_are_refused)
{
    std::string error;
    for (const char* text :
         {"0.0.0.0:80", "192.168.1.2:80", "[::]:80", "example.com:80", "128.0.0.1:1", "127.0.0:1", "127.0.0.1",
          "127.0.0.1:65536", "127.0.0.1:-1", "127.0.0.1:08", "unix:relative", "unix:", "127.0.0.01:80", "[::1]80"}) {
        error.clear();
        cr_assert_not(parse_listen(text, error).has_value(), "%s accepted", text);
        cr_assert_not(error.empty(), "%s: no reason given", text);
    }
}

Test(proxy_route, the_first_segment_names_the_provider_and_the_rest_goes_upstream_as_sent)
{
    auto r = route("/openai/v1/chat/completions");
    cr_assert(r.has_value());
    cr_assert_eq(r->provider, "openai");
    cr_assert_eq(r->path_and_query, "/v1/chat/completions");
    r = route("/github/repos/a/b/issues?state=open&per_page=100");
    cr_assert(r.has_value());
    cr_assert_eq(r->path_and_query, "/repos/a/b/issues?state=open&per_page=100");
    r = route("/anthropic");
    cr_assert(r.has_value());
    cr_assert_eq(r->path_and_query, "/");
    r = route("/x/a%2Fb/%7Euser");  // percent-encoding is kept, never decoded here
    cr_assert(r.has_value());
    cr_assert_eq(r->path_and_query, "/a%2Fb/%7Euser");
}

Test(proxy_route, a_provider_outside_the_allowed_list_is_not_found)
{
    cr_assert_eq(route_status("/openai/v1/models", {"anthropic"}), 404);
    cr_assert_eq(route_status("/anthropic/v1/models", {"anthropic", "openai"}), 0);
}

Test(proxy_route, dot_segments_in_any_spelling_are_refused)
{
    for (const char* target : {"/openai/../admin", "/openai/v1/../../x", "/openai/./v1", "/openai/%2e%2e/x",
                               "/openai/%2E./x", "/openai/.%2e", "/openai/v1/%2e"}) {
        cr_assert_eq(route_status(target), 400, "%s not refused", target);
    }
    // Dots inside a segment are ordinary.
    cr_assert_eq(route_status("/openai/v1/file.json"), 0);
    cr_assert_eq(route_status("/openai/v1/.../x"), 0);
}

Test(proxy_route, malformed_targets_and_provider_names_are_refused)
{
    cr_assert_eq(route_status("http://evil/openai/v1"), 400);
    cr_assert_eq(route_status("*"), 400);
    cr_assert_eq(route_status(""), 400);
    cr_assert_eq(route_status("/"), 404);
    cr_assert_eq(route_status("//v1/models"), 404);
    cr_assert_eq(route_status("/-bad/v1"), 404);
    cr_assert_eq(route_status("/open%61i/v1"), 404);
    cr_assert_eq(route_status("/openai/v1 x"), 400);
    cr_assert_eq(route_status("/openai/v1#frag"), 400);
    cr_assert_eq(route_status("/openai/v1\\x"), 400);
    cr_assert_eq(route_status(std::string_view("/openai/v1\0x", 12)), 400);
    cr_assert_eq(route_status("/openai/v1\r\nHost: x"), 400);
}

Test(proxy_method, only_the_methods_a_provider_can_allow_pass)
{
    for (const char* m : {"GET", "POST", "PUT", "PATCH", "DELETE"}) {
        cr_assert(is_supported_method(m));
    }
    for (const char* m : {"HEAD", "OPTIONS", "CONNECT", "TRACE", "get", ""}) {
        cr_assert_not(is_supported_method(m), "%s", m);
    }
}

Test(proxy_token, generated_tokens_look_like_api_keys)
{
    std::uint8_t random[kTokenRandomBytes];
    for (std::size_t i = 0; i < kTokenRandomBytes; ++i) {
        random[i] = static_cast<std::uint8_t>(i * 37);
    }
    const std::string token = format_token(random);
    cr_assert(token.starts_with("sk-"));
    cr_assert_eq(token.size(), kTokenPrefix.size() + 2 * kTokenRandomBytes);
    cr_assert(is_acceptable_token(token));
}

Test(proxy_token, token_files_must_hold_a_long_visible_token)
{
    cr_assert(is_acceptable_token(kToken));
    cr_assert_not(is_acceptable_token("short"));
    cr_assert_not(is_acceptable_token(std::string(31, 'a')));
    cr_assert_not(is_acceptable_token(std::string(257, 'a')));
    cr_assert_not(is_acceptable_token(std::string(40, 'a') + " b"));
    cr_assert_not(is_acceptable_token(std::string(40, 'a') + "\n"));
}

Test(proxy_token, bearer_or_x_api_key_carries_the_token)
{
    cr_assert(token_accepted({"Bearer " + kToken, std::nullopt}, kToken));
    cr_assert(token_accepted({"bearer  " + kToken + " ", std::nullopt}, kToken));
    cr_assert(token_accepted({std::nullopt, kToken}, kToken));
    cr_assert(token_accepted({"Bearer " + kToken, kToken}, kToken));
}

Test(proxy_token, a_missing_wrong_or_mixed_token_is_refused)
{
    cr_assert_not(token_accepted({std::nullopt, std::nullopt}, kToken));
    std::string wrong = kToken;
    wrong.back() = wrong.back() == 'f' ? 'e' : 'f';
    cr_assert_not(token_accepted({"Bearer " + wrong, std::nullopt}, kToken));
    cr_assert_not(token_accepted({std::nullopt, wrong}, kToken));
    cr_assert_not(token_accepted({kToken, std::nullopt}, kToken));  // no scheme
    cr_assert_not(token_accepted({"Basic " + kToken, std::nullopt}, kToken));
    cr_assert_not(token_accepted({"Bearer" + kToken, std::nullopt}, kToken));
    cr_assert_not(token_accepted({"Bearer " + kToken.substr(1), std::nullopt}, kToken));
    cr_assert_not(token_accepted({"Bearer " + kToken + "x", std::nullopt}, kToken));
    cr_assert_not(token_accepted({"Bearer ", std::nullopt}, kToken));
    // Both headers present: both must be right.
    cr_assert_not(token_accepted({"Bearer " + wrong, kToken}, kToken));
    cr_assert_not(token_accepted({"Bearer " + kToken, wrong}, kToken));
    // An empty expected token never matches anything.
    cr_assert_not(token_accepted({"Bearer ", ""}, ""));
}

Test(proxy_token, the_key_headers_sdks_use_are_known)
{
    for (const char* name : {"x-api-key", "X-API-KEY", "x-goog-api-key", "X-Goog-Api-Key", "api-key", "Api-Key"}) {
        cr_assert(is_key_header(name), "%s", name);
    }
    for (const char* name : {"authorization", "x-api-keys", "api-key2", "x-goog-api", "", "key"}) {
        cr_assert_not(is_key_header(name), "%s", name);
    }
}

Test(proxy_headers, token_framing_and_hop_by_hop_request_headers_stay_behind)
{
    const std::vector<std::string> none;
    for (const char* name :
         {"Authorization", "authorization", "X-Api-Key", "x-api-key", "x-goog-api-key", "X-Goog-Api-Key", "api-key",
          "Host", "Content-Length", "Transfer-Encoding", "Connection", "Keep-Alive", "TE", "Trailer", "Upgrade",
          "Expect", "Proxy-Authorization", "Proxy-Connection", ""}) {
        cr_assert_not(forward_request_header(name, none), "%s forwarded", name);
    }
    for (const char* name : {"Content-Type", "Accept", "anthropic-version", "OpenAI-Beta", "User-Agent",
                             "X-Stainless-Lang", "Idempotency-Key"}) {
        cr_assert(forward_request_header(name, none), "%s dropped", name);
    }
}

Test(proxy_headers, headers_the_connection_header_names_stay_behind)
{
    const auto tokens = connection_tokens(" keep-alive , X-Private-Hop,, ");
    cr_assert_eq(tokens.size(), 2);
    cr_assert_eq(tokens[1], "x-private-hop");
    cr_assert_not(forward_request_header("X-Private-Hop", tokens));
    cr_assert(forward_request_header("X-Other", tokens));
}

Test(proxy_headers, the_proxy_frames_responses_itself)
{
    for (const char* name : {"Content-Length", "Transfer-Encoding", "Connection", "Keep-Alive", "Trailer", "Upgrade"}) {
        cr_assert_not(forward_response_header(name), "%s forwarded", name);
    }
    for (const char* name :
         {"Content-Type", "x-request-id", "anthropic-ratelimit-requests-remaining", "Cache-Control"}) {
        cr_assert(forward_response_header(name), "%s dropped", name);
    }
}

Test(proxy_env, each_provider_gets_its_base_url_and_the_token_as_its_key)
{
    std::string error;
    const auto env = client_environment({{"openai", "OPENAI_BASE_URL", "/v1", "OPENAI_API_KEY"},
                                         {"anthropic", "ANTHROPIC_BASE_URL", "", "ANTHROPIC_API_KEY"}},
                                        "http://127.0.0.1:4242", kToken, error);
    cr_assert(env.has_value(), "%s", error.c_str());
    cr_assert_eq(env->size(), 4);
    cr_assert_eq((*env)[0].first, "OPENAI_BASE_URL");
    cr_assert_eq((*env)[0].second, "http://127.0.0.1:4242/openai/v1");
    cr_assert_eq((*env)[1].second, kToken);
    cr_assert_eq((*env)[2].second, "http://127.0.0.1:4242/anthropic");
    cr_assert_eq((*env)[3].first, "ANTHROPIC_API_KEY");
}

Test(proxy_env, two_providers_setting_one_variable_are_refused)
{
    std::string error;
    const auto env = client_environment({{"openai", "OPENAI_BASE_URL", "/v1", "OPENAI_API_KEY"},
                                         {"groq-compat", "OPENAI_BASE_URL", "/openai/v1", "GROQ_API_KEY"}},
                                        "http://127.0.0.1:1", kToken, error);
    cr_assert_not(env.has_value());
    cr_assert(error.find("OPENAI_BASE_URL") != std::string::npos);
}

Test(proxy_env, origins_bracket_ipv6_hosts)
{
    ListenAddress v4;
    v4.host = "127.0.0.1";
    cr_assert_eq(proxy_origin(v4, 80), "http://127.0.0.1:80");
    ListenAddress v6;
    v6.host = "::1";
    cr_assert_eq(proxy_origin(v6, 8080), "http://[::1]:8080");
}

Test(proxy_env, provider_lists_split_on_commas_without_duplicates)
{
    const auto names = split_provider_list({"openai,anthropic", " openai ", "GitHub,,"});
    cr_assert_eq(names.size(), 3);
    cr_assert_eq(names[0], "openai");
    cr_assert_eq(names[1], "anthropic");
    cr_assert_eq(names[2], "GitHub");
}

Test(proxy_errors, vault_refusals_become_http_statuses_and_sdk_shaped_bodies)
{
    cr_assert_eq(status_for_vault_error(ErrorCode::PermissionDenied), 403);
    cr_assert_eq(status_for_vault_error(ErrorCode::ApprovalRequired), 403);
    cr_assert_eq(status_for_vault_error(ErrorCode::Locked), 503);
    cr_assert_eq(status_for_vault_error(ErrorCode::InvalidArgument), 400);
    cr_assert_eq(status_for_vault_error(ErrorCode::Unavailable), 502);
    cr_assert_eq(status_for_vault_error(std::nullopt), 502);
    cr_assert_eq(error_type_for(ErrorCode::Locked), "vault_locked");
    cr_assert_eq(error_body("t", "say \"hi\"\n\x01"),
                 R"({"type":"error","error":{"type":"t","message":"say \"hi\"\u000a\u0001"}})");
}
