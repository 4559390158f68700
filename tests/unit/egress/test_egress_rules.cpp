// The pure rules of egress: which request headers go upstream, which response headers come back,
// which addresses the SSRF guard refuses, and how the URL is built from a clean path.
#include <arpa/inet.h>
#include <netinet/in.h>

#include <criterion/criterion.h>

#include <algorithm>
#include <string>
#include <vector>

#include "daemon/egress/address_guard.hpp"
#include "daemon/egress/header_rules.hpp"
#include "daemon/egress/request_target.hpp"

using namespace codexvault;
using namespace codexvault::egress;

namespace {

policy::Injection inject(const std::string& header)
{
    return policy::parse_injection(header, "{secret}").value();
}

bool has(const std::vector<Header>& headers, const std::string& name)
{
    return std::any_of(headers.begin(), headers.end(),
                       [&name](const Header& h) { return lower_ascii(h.name) == lower_ascii(name); });
}

}  // namespace

Test(egress_rules, caller_credentials_routing_and_hop_by_hop_headers_are_dropped)
{
    const std::vector<Header> caller{
        {"Authorization", "Bearer proxy-token"},
        {"proxy-authorization", "x"},
        {"Cookie", "a=b"},
        {"Host", "evil.example"},
        {"Content-Length", "5"},
        {"Transfer-Encoding", "chunked"},
        {"Connection", "keep-alive, X-Secret-Hop"},
        {"X-Secret-Hop", "1"},
        {"Keep-Alive", "300"},
        {"TE", "trailers"},
        {"Upgrade", "h2c"},
        {"Expect", "100-continue"},
        {"X-API-Key", "caller-supplied"},
        {"Accept-Encoding", "gzip"},
        {"Content-Type", "application/json"},
        {"anthropic-version", "2023-06-01"},
    };
    const auto filtered = filter_request_headers(caller, inject("x-api-key"));
    cr_assert(filtered.ok(), "%s", filtered.ok() ? "" : filtered.message().c_str());
    const auto& out = filtered.value().headers;
    for (const char* gone :
         {"authorization", "proxy-authorization", "cookie", "host", "content-length", "transfer-encoding", "connection",
          "x-secret-hop", "keep-alive", "te", "upgrade", "expect", "x-api-key"}) {
        cr_assert_not(has(out, gone), "%s went upstream", gone);
    }
    cr_assert(has(out, "content-type"));
    cr_assert(has(out, "anthropic-version"));
    const auto encoding =
        std::find_if(out.begin(), out.end(), [](const Header& h) { return h.name == "Accept-Encoding"; });
    cr_assert(encoding != out.end() && encoding->value == "identity", "Accept-Encoding is forced to identity");
    cr_assert_eq(std::count_if(out.begin(), out.end(), [](const Header& h) { return h.name == "Accept-Encoding"; }), 1);
    cr_assert_eq(filtered.value().dropped.size(), 14U);
}

Test(egress_rules, malformed_or_oversized_request_headers_are_refused_not_repaired)
{
    const auto i = inject("Authorization");
    cr_assert_not(filter_request_headers({{"X-A", "1\r\nHost: evil"}}, i).ok());
    cr_assert_not(filter_request_headers({{"X-A", std::string("a\0b", 3)}}, i).ok());
    cr_assert_not(filter_request_headers({{"Bad Name", "1"}}, i).ok());
    cr_assert_not(filter_request_headers({{"", "1"}}, i).ok());
    cr_assert_not(filter_request_headers({{"X-A", std::string(8193, 'a')}}, i).ok());
    cr_assert_not(filter_request_headers(std::vector<Header>(65, Header{"X-A", "1"}), i).ok());
    cr_assert_not(filter_request_headers(std::vector<Header>(5, Header{"X-A", std::string(8000, 'a')}), i).ok());
    cr_assert(filter_request_headers({{"X-A", "tab\tand obs-text \xc3\xa9"}}, i).ok());
}

Test(egress_rules, response_headers_that_set_state_or_frame_the_body_do_not_come_back)
{
    for (const char* dropped : {"Set-Cookie", "set-cookie", "WWW-Authenticate", "Proxy-Authenticate", "Content-Length",
                                "Transfer-Encoding", "Connection", "Keep-Alive"}) {
        cr_assert_not(keep_response_header(dropped), "%s came back", dropped);
    }
    for (const char* kept : {"Content-Type", "Location", "x-request-id", "retry-after", "openai-processing-ms"}) {
        cr_assert(keep_response_header(kept), "%s was dropped", kept);
    }
}

Test(egress_rules, header_lines_split_into_name_and_trimmed_value)
{
    Header h;
    cr_assert(split_header_line("Content-Type:  text/plain \r\n", h));
    cr_assert_eq(h.name, "Content-Type");
    cr_assert_eq(h.value, "text/plain");
    cr_assert_not(split_header_line("HTTP/1.1 200 OK\r\n", h));
    cr_assert_not(split_header_line("\r\n", h));
    cr_assert_not(split_header_line(": x\r\n", h));
}

Test(egress_rules, the_ssrf_guard_refuses_every_non_public_address)
{
    for (const char* address : {"127.0.0.1",
                                "127.255.0.9",
                                "10.1.2.3",
                                "172.16.0.1",
                                "172.31.255.255",
                                "192.168.1.1",
                                "169.254.169.254",
                                "100.64.0.1",
                                "0.0.0.0",
                                "224.0.0.1",
                                "255.255.255.255",
                                "::1",
                                "::",
                                "fc00::1",
                                "fd12:3456::1",
                                "fe80::1",
                                "ff02::1",
                                "::ffff:127.0.0.1",
                                "::ffff:10.0.0.1",
                                "64:ff9b::a9fe:a9fe",
                                "2002:7f00:1::1",
                                "::127.0.0.1"}) {
        cr_assert(non_public_address_text(address).has_value(), "%s was taken for public", address);
    }
    for (const char* address :
         {"1.1.1.1", "8.8.8.8", "172.32.0.1", "192.169.0.1", "2606:4700::1111", "::ffff:8.8.8.8"}) {
        cr_assert_not(non_public_address_text(address).has_value(), "%s was refused", address);
    }
    cr_assert_eq(non_public_address_text("localhost").value_or(""), std::string("unparsable"));

    sockaddr_in in{};
    in.sin_family = AF_INET;
    in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(non_public_address(reinterpret_cast<sockaddr*>(&in), sizeof(in)).value_or(""),
                 std::string("loopback"));
    sockaddr_in6 in6{};
    in6.sin6_family = AF_INET6;
    cr_assert(inet_pton(AF_INET6, "2606:4700::1111", &in6.sin6_addr) == 1);
    cr_assert_not(non_public_address(reinterpret_cast<sockaddr*>(&in6), sizeof(in6)).has_value());
    sockaddr unix_address{};
    unix_address.sa_family = AF_UNIX;
    cr_assert(non_public_address(&unix_address, sizeof(unix_address)).has_value());
}

Test(egress_rules, the_url_is_the_origin_and_the_clean_path_the_provider_allows)
{
    policy::Provider p;
    p.name = "p";
    p.origin = policy::parse_origin("https://API.example.com:8443").value();
    p.allow = {policy::parse_request_pattern("POST /v1/*").value()};
    const auto target = make_target(p, "POST", "/v1/chat?stream=true");
    cr_assert(target.ok());
    cr_assert_eq(target.value().url, "https://api.example.com:8443/v1/chat?stream=true");
    cr_assert_eq(target.value().path_only, "/v1/chat");
    cr_assert_not(make_target(p, "GET", "/v1/chat").ok());
    cr_assert_not(make_target(p, "post", "/v1/chat").ok());
    cr_assert_not(make_target(p, "POST", "/v1/../admin").ok());
    cr_assert_not(make_target(p, "POST", "/v1/%2e%2e/admin").ok());
    cr_assert_not(make_target(p, "POST", "/v1/x#frag").ok());
    cr_assert_not(make_target(p, "POST", "https://evil.example/v1/x").ok());
    cr_assert_not(make_target(p, "POST", "//evil.example/v1/x").ok());
}
