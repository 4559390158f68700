// The small grammars of the policy library: capabilities, durations, rates, request patterns,
// origins, header injection, principal conditions and their matching rules.
#include <criterion/criterion.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "policy/capability.hpp"
#include "policy/principal.hpp"
#include "policy/provider.hpp"
#include "policy/rate.hpp"
#include "policy/request_pattern.hpp"
#include "policy/text.hpp"
#include "policy/time_units.hpp"

using namespace codexvault::policy;

namespace {

constexpr std::uint64_t kSec = kUsecPerSecond;

std::string str(std::string_view view)
{
    return std::string(view);
}

}  // namespace

// ---- capabilities ------------------------------------------------------------------------------

Test(policy_capability, parses_every_kind_and_formats_back)
{
    const std::vector<std::pair<std::string, CapabilityKind>> good{
        {"secret:openai:inject", CapabilityKind::SecretInject},
        {"secret:a:inject", CapabilityKind::SecretInject},
        {"secret:A.b_c-9:inject", CapabilityKind::SecretInject},
        {"secret:" + std::string(64, 'x') + ":inject", CapabilityKind::SecretInject},
        {"provider:openai:request", CapabilityKind::ProviderRequest},
        {"provider:9gh.api:request", CapabilityKind::ProviderRequest},
        {"ingest:scan", CapabilityKind::IngestScan},
        {"audit:read", CapabilityKind::AuditRead},
        {"status:read", CapabilityKind::StatusRead},
    };
    for (const auto& [text, kind] : good) {
        const auto parsed = parse_capability(text);
        cr_assert(parsed.ok(), "%s: %s", text.c_str(), parsed.ok() ? "" : parsed.message().c_str());
        cr_assert_eq(parsed.value().kind, kind, "%s", text.c_str());
        cr_assert_eq(parsed.value().to_string(), text, "%s round trip", text.c_str());
    }
    cr_assert_eq(Capability::secret_inject("k").to_string(), "secret:k:inject");
    cr_assert_eq(Capability::provider_request("p").to_string(), "provider:p:request");
    cr_assert_eq(Capability::of(CapabilityKind::AuditRead).to_string(), "audit:read");
}

Test(policy_capability, rejects_everything_else_with_a_message)
{
    const std::vector<std::string> bad{
        "",
        "secret",
        "secret:",
        "secret::inject",
        "secret:openai",
        "secret:openai:request",
        "secret:openai:inject:x",
        "secret:.hidden:inject",
        "secret:-x:inject",
        "secret:a/b:inject",
        "secret:a b:inject",
        "secret:a:b:inject",
        "secret:" + std::string(65, 'x') + ":inject",
        "provider:openai:inject",
        "provider:*:request",
        "Provider:openai:request",
        "ingest:scan ",
        " ingest:scan",
        "ingest",
        "audit:write",
        "status:read:x",
        "secret:\xff:inject",
        std::string("status:read\0", 12),
    };
    for (const auto& text : bad) {
        const auto parsed = parse_capability(text);
        cr_assert_not(parsed.ok(), "%s should be rejected", quote(text).c_str());
        cr_assert(parsed.message().find("capability") != std::string::npos, "message: %s", parsed.message().c_str());
    }
    cr_assert(parse_capability("frobnicate").message().find("expected one of secret:NAME:inject") != std::string::npos);
}

// ---- durations and rates -----------------------------------------------------------------------

Test(policy_duration, parses_units)
{
    cr_assert_eq(parse_duration("30s").value(), 30 * kSec);
    cr_assert_eq(parse_duration("15m").value(), 15 * kUsecPerMinute);
    cr_assert_eq(parse_duration("2h").value(), 2 * kUsecPerHour);
    cr_assert_eq(parse_duration("7d").value(), 7 * kUsecPerDay);
    cr_assert_eq(parse_duration("3650d").value(), kMaxDurationUsec);
    cr_assert_eq(parse_duration("1s").value(), kSec);
    for (const char* bad : {"", "s", "0s", "-1s", "+1s", "1", "1w", "1ms", "1.5h", "01s", "1 s", " 1s", "3651d",
                            "87601h", "99999999999999999999s", "1S", "1hh"}) {
        cr_assert_not(parse_duration(bad).ok(), "%s", bad);
    }
}

Test(policy_duration, formats_timestamps)
{
    cr_assert_eq(format_timestamp(0), "1970-01-01T00:00:00Z");
    cr_assert_eq(format_timestamp(1'700'000'000ULL * kSec), "2023-11-14T22:13:20Z");
    cr_assert_eq(format_timestamp(1'700'000'000ULL * kSec + 5), "2023-11-14T22:13:20.000005Z");
    CivilTime t;
    t.year = 2024;
    t.month = 2;
    t.day = 29;
    t.hour = 12;
    t.offset_minutes = 60;
    cr_assert_eq(format_timestamp(civil_to_usec(t).value()), "2024-02-29T11:00:00Z");
    t.year = 2023;
    cr_assert_not(civil_to_usec(t).has_value(), "2023-02-29 does not exist");
    t.year = 1969;
    cr_assert_not(civil_to_usec(t).has_value());
}

Test(policy_rate, parses_and_formats)
{
    const Rate per_minute = parse_rate("60/min").value();
    cr_assert_eq(per_minute.count, 60U);
    cr_assert_eq(per_minute.period_usec, kUsecPerMinute);
    cr_assert_eq(format_rate(per_minute), "60/min");
    cr_assert_eq(format_rate(parse_rate("5/s").value()), "5/s");
    cr_assert_eq(format_rate(parse_rate("5/sec").value()), "5/s");
    cr_assert_eq(format_rate(parse_rate("100/h").value()), "100/h");
    cr_assert_eq(format_rate(parse_rate("3/day").value()), "3/d");
    cr_assert_eq(parse_rate("1000000/s").value().count, 1'000'000U);
    for (const char* bad : {"", "60", "/min", "0/min", "-1/s", "60/", "60/m", "60/minutes", "1000001/s", "6 0/s",
                            "60/min ", "060/s", "1.5/s"}) {
        cr_assert_not(parse_rate(bad).ok(), "%s", bad);
    }
    cr_assert(parse_rate("60/m").message().find("ambiguous") != std::string::npos);
}

Test(policy_rate, gcra_allows_a_burst_of_count_then_the_sustained_rate)
{
    const Rate rate = parse_rate("3/min").value();
    const std::uint64_t t0 = 1'000'000 * kSec;
    std::uint64_t tat = 0;
    for (int i = 0; i < 3; ++i) {
        cr_assert(rate_allows(rate, tat, t0), "use %d of the burst", i);
        tat = rate_after_use(rate, tat, t0);
    }
    cr_assert_not(rate_allows(rate, tat, t0), "the fourth use in the same instant");
    cr_assert_not(rate_allows(rate, tat, t0 + 19 * kSec));
    cr_assert(rate_allows(rate, tat, t0 + 20 * kSec), "one interval (60 s / 3) later");
    cr_assert(rate_allows(rate, tat, t0 + 3600 * kSec), "an hour later");
    // Sustained: over 10 minutes at most 3 + 30 uses.
    tat = 0;
    int allowed = 0;
    for (std::uint64_t t = t0; t < t0 + 600 * kSec; t += kSec) {
        if (rate_allows(rate, tat, t)) {
            tat = rate_after_use(rate, tat, t);
            ++allowed;
        }
    }
    cr_assert_leq(allowed, 33);
    cr_assert_geq(allowed, 30);
}

// ---- request patterns and paths ----------------------------------------------------------------

Test(policy_request_pattern, parses_matches_and_covers)
{
    const RequestPattern exact = parse_request_pattern("POST /v1/chat/completions").value();
    cr_assert_not(exact.wildcard);
    cr_assert(exact.matches(HttpMethod::Post, "/v1/chat/completions"));
    cr_assert_not(exact.matches(HttpMethod::Get, "/v1/chat/completions"));
    cr_assert_not(exact.matches(HttpMethod::Post, "/v1/chat/completions/x"));
    cr_assert_not(exact.matches(HttpMethod::Post, "/v1/chat"));
    cr_assert_eq(exact.to_string(), "POST /v1/chat/completions");

    const RequestPattern prefix = parse_request_pattern("GET /v1/models/*").value();
    cr_assert(prefix.wildcard);
    cr_assert_eq(prefix.to_string(), "GET /v1/models/*");
    cr_assert(prefix.matches(HttpMethod::Get, "/v1/models/"));
    cr_assert(prefix.matches(HttpMethod::Get, "/v1/models/gpt-4o"));
    cr_assert(prefix.matches(HttpMethod::Get, "/v1/models/a/b/c"));
    cr_assert_not(prefix.matches(HttpMethod::Get, "/v1/models"));
    cr_assert_not(prefix.matches(HttpMethod::Get, "/v1/modelsx/a"));

    const RequestPattern all = parse_request_pattern("DELETE /*").value();
    cr_assert(all.matches(HttpMethod::Delete, "/anything/at/all"));

    cr_assert(prefix.covers(parse_request_pattern("GET /v1/models/x").value()));
    cr_assert(prefix.covers(parse_request_pattern("GET /v1/models/x/*").value()));
    cr_assert(prefix.covers(prefix));
    cr_assert_not(prefix.covers(parse_request_pattern("GET /v1/*").value()));
    cr_assert_not(prefix.covers(parse_request_pattern("POST /v1/models/x").value()));
    cr_assert(exact.covers(exact));
    cr_assert_not(exact.covers(parse_request_pattern("POST /v1/chat/completions/*").value()));

    for (const char* bad :
         {"",           "POST",      "POST ",    "post /x",   "CONNECT /x",   "GET x",    "GET /a/../b",   "GET /a/./b",
          "GET /a//b",  "GET /a*",   "GET /*/a", "GET /a/*/", "GET /a?b",     "GET /a#b", "GET /%2e%2e/x", "GET /a%2Fb",
          "GET /a%5cb", "GET /a%zz", "GET  /a",  "GET /a b",  "GET /\xc3\xa9"}) {
        cr_assert_not(parse_request_pattern(bad).ok(), "%s", quote(bad).c_str());
    }
}

Test(policy_request_pattern, clean_request_paths)
{
    cr_assert_eq(str(clean_request_path("/v1/chat/completions").value()), "/v1/chat/completions");
    cr_assert_eq(str(clean_request_path("/v1/x?limit=10&after=a%20b").value()), "/v1/x");
    cr_assert_eq(str(clean_request_path("/v1/x/").value()), "/v1/x/");
    cr_assert_eq(str(clean_request_path("/").value()), "/");
    for (const char* bad :
         {"", "v1/x", "/v1/../admin", "/v1/./x", "/v1//x", "/v1/%2e%2e/admin", "/v1/%2F/x", "/v1/x#frag", "/v1/x y",
          "/v1/\x01", "/v1/%", "/v1/%4", "/v1/x?a=%zz", "/v1/%00", "/v1/..", "/.."}) {
        cr_assert_not(clean_request_path(bad).has_value(), "%s", quote(bad).c_str());
    }
    cr_assert_not(clean_request_path("/" + std::string(2048, 'a')).has_value());
}

// ---- providers ---------------------------------------------------------------------------------

Test(policy_provider, origins)
{
    cr_assert_eq(parse_origin("https://api.openai.com").value().to_string(), "https://api.openai.com");
    cr_assert_eq(parse_origin("https://API.OpenAI.com/").value().to_string(), "https://api.openai.com");
    cr_assert_eq(parse_origin("https://api.github.com:443").value().to_string(), "https://api.github.com");
    cr_assert_eq(parse_origin("https://example.com:8443").value().port, 8443);
    cr_assert_eq(parse_origin("https://10.0.0.1:8443").value().to_string(), "https://10.0.0.1:8443");
    cr_assert_eq(parse_origin("https://[::1]:8443").value().to_string(), "https://[::1]:8443");
    cr_assert_eq(parse_origin("https://[fe80::1]").value().host, "[fe80::1]");
    const std::vector<std::pair<std::string, std::string>> bad{
        {"http://api.openai.com", "https"},
        {"api.openai.com", "https"},
        {"ftp://x.com", "https"},
        {"https://", "no host"},
        {"https://:443", "no host"},
        {"https://user@api.openai.com", "userinfo"},
        {"https://user:pw@api.openai.com", "userinfo"},
        {"https://api.openai.com/v1", "path"},
        {"https://api.openai.com?x", "path"},
        {"https://api.openai.com#x", "path"},
        {"https://api.openai.com:0", "port"},
        {"https://api.openai.com:65536", "port"},
        {"https://api.openai.com:x", "port"},
        {"https://api.openai.com:", "port"},
        {"https://-bad.com", "host"},
        {"https://bad_host.com", "host"},
        {"https://a..b", "host"},
        {"https://1.2.3.256", "host"},
        {"https://[zz::1]", "host"},
        {"https://[::1]x", "IPv6"},
        {"https://exa mple.com", "host"},
    };
    for (const auto& [text, fragment] : bad) {
        const auto origin = parse_origin(text);
        cr_assert_not(origin.ok(), "%s", text.c_str());
        cr_assert(origin.message().find(fragment) != std::string::npos, "%s: %s", text.c_str(),
                  origin.message().c_str());
    }
}

Test(policy_provider, injection)
{
    const Injection bearer = parse_injection("Authorization", "Bearer {secret}").value();
    cr_assert_eq(bearer.prefix, "Bearer ");
    cr_assert_eq(bearer.suffix, "");
    cr_assert_eq(bearer.template_text(), "Bearer {secret}");
    cr_assert(parse_injection("x-api-key", "{secret}").ok());
    cr_assert(parse_injection("X-Token", "tok={secret};v=1").ok());
    for (const auto& [header, templ] : std::vector<std::pair<std::string, std::string>>{
             {"", "{secret}"},
             {"Bad Header", "{secret}"},
             {"Bad:Header", "{secret}"},
             {"Host", "{secret}"},
             {"content-length", "{secret}"},
             {"Transfer-Encoding", "{secret}"},
             {"Authorization", "Bearer"},
             {"Authorization", "{secret}{secret}"},
             {"Authorization", "Bearer {secret}\r\nX: y"},
             {"Authorization", "Bearer {SECRET}"},
             {"Authorization", "{secret} {other}"},
             {"Authorization", std::string(300, 'a') + "{secret}"},
         }) {
        cr_assert_not(parse_injection(header, templ).ok(), "%s / %s", quote(header).c_str(), quote(templ).c_str());
    }
}

// ---- principals --------------------------------------------------------------------------------

Test(policy_principal, inline_specs)
{
    const auto c = parse_inline_conditions("uid=1000,unit=agent.service,exe=/usr/bin/python3").value();
    cr_assert_eq(c.uid.value(), 1000U);
    cr_assert_eq(c.unit.value(), "agent.service");
    cr_assert_eq(c.exe.value(), "/usr/bin/python3");
    cr_assert_not(c.gid.has_value());
    cr_assert_eq(c.to_spec(), "uid=1000,unit=agent.service,exe=/usr/bin/python3");

    const auto all =
        parse_inline_conditions(
            "exe_sha256=9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08,cgroup=/system.slice/"
            "x.service,gid=0,uid=0,unit=a@b.service,exe=/bin/sh")
            .value();
    cr_assert_eq(all.exe_sha256.value(), "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08");
    cr_assert_eq(parse_inline_conditions(all.to_spec()).value(), all, "to_spec round trip");

    const std::vector<std::pair<std::string, std::string>> bad{
        {"", "empty"},
        {"uid", "key=value"},
        {"uid=", "whole number"},
        {"uid=-1", "whole number"},
        {"uid=4294967295", "whole number"},
        {"uid=1000,", "key=value"},
        {",uid=1000", "key=value"},
        {"uid=1000,,gid=1", "key=value"},
        {"uid=1000,uid=1001", "twice"},
        {"user=1000", "unknown principal condition"},
        {"UID=1000", "unknown principal condition"},
        {"uid=1000 ", "whole number"},
        {"unit=agent", "systemd unit"},
        {"unit=a b.service", "systemd unit"},
        {"exe=python3", "absolute path"},
        {"exe=/usr/bin/../bin/sh", "absolute path"},
        {"exe=/usr/bin/", "absolute path"},
        {"exe=/", "absolute path"},
        {"cgroup=/", "cgroup"},
        {"cgroup=system.slice", "cgroup"},
        {"cgroup=/system.slice/", "cgroup"},
        {"exe_sha256=abc", "64 hexadecimal"},
        {"exe_sha256=" + std::string(64, 'g'), "64 hexadecimal"},
        {"uid=1," + std::string(9000, 'a'), "8192"},
    };
    for (const auto& [spec, fragment] : bad) {
        const auto parsed = parse_inline_conditions(spec);
        cr_assert_not(parsed.ok(), "%s", quote(spec).c_str());
        cr_assert(parsed.message().find(fragment) != std::string::npos, "%s: %s", quote(spec).c_str(),
                  parsed.message().c_str());
    }
}

Test(policy_principal, matching_rules)
{
    const std::uint32_t groups[] = {27, 1500};
    SubjectView s;
    s.uid = 1000;
    s.gid = 100;
    s.groups = groups;
    s.unit = "agent.service";
    s.cgroup = "/system.slice/agent.service/worker";
    s.exe = "/usr/bin/python3";
    s.exe_sha256 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

    auto status = [&s](const char* spec) {
        return match(parse_inline_conditions(spec).value(), s).status;
    };
    cr_assert_eq(status("uid=1000"), MatchStatus::Match);
    cr_assert_eq(status("uid=1001"), MatchStatus::Mismatch);
    cr_assert_eq(status("gid=100"), MatchStatus::Match, "effective gid");
    cr_assert_eq(status("gid=1500"), MatchStatus::Match, "supplementary group");
    cr_assert_eq(status("gid=101"), MatchStatus::Mismatch);
    cr_assert_eq(status("unit=agent.service"), MatchStatus::Match);
    cr_assert_eq(status("unit=agent2.service"), MatchStatus::Mismatch);
    cr_assert_eq(status("cgroup=/system.slice/agent.service/worker"), MatchStatus::Match, "exact");
    cr_assert_eq(status("cgroup=/system.slice/agent.service"), MatchStatus::Match, "prefix at a '/'");
    cr_assert_eq(status("cgroup=/system.slice"), MatchStatus::Match, "prefix at a '/'");
    cr_assert_eq(status("cgroup=/system.slice/agent.serv"), MatchStatus::Mismatch, "prefix not at a '/'");
    cr_assert_eq(status("cgroup=/system.slice/agent.service/worker/sub"), MatchStatus::Mismatch, "longer");
    cr_assert_eq(status("exe=/usr/bin/python3"), MatchStatus::Match);
    cr_assert_eq(status("exe=/usr/bin/python"), MatchStatus::Mismatch);
    cr_assert_eq(status("exe_sha256=9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"),
                 MatchStatus::Match);
    cr_assert_eq(status("exe_sha256=0000000000000000000000000000000000000000000000000000000000000000"),
                 MatchStatus::Mismatch);
    cr_assert_eq(status("uid=1000,gid=1500,unit=agent.service,exe=/usr/bin/python3"), MatchStatus::Match);
    cr_assert_eq(status("uid=1000,gid=1500,unit=agent.service,exe=/usr/bin/perl"), MatchStatus::Mismatch);

    // Unknown exe: exe conditions fail closed; a mismatch elsewhere still reads as a mismatch.
    s.exe.reset();
    s.exe_sha256.reset();
    cr_assert_eq(status("exe=/usr/bin/python3"), MatchStatus::ExeUnknown);
    cr_assert_eq(status("exe_sha256=9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"),
                 MatchStatus::ExeUnknown);
    cr_assert_eq(status("uid=1000,exe=/usr/bin/python3"), MatchStatus::ExeUnknown);
    cr_assert_eq(status("uid=1001,exe=/usr/bin/python3"), MatchStatus::Mismatch);
    cr_assert_eq(status("uid=1000"), MatchStatus::Match, "no exe condition, exe irrelevant");
    const auto why = describe_mismatches(parse_inline_conditions("uid=1001,exe=/x").value(), s);
    cr_assert_eq(why.size(), 2U);
    cr_assert_eq(why[0], "uid 1000 != 1001");
    cr_assert_eq(why[1], "exe unknown");

    // Exe known but its hash not computed: an exe_sha256 condition does not hold.
    s.exe = "/usr/bin/python3";
    cr_assert_eq(status("exe_sha256=9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"),
                 MatchStatus::Mismatch);

    // A subject outside any unit or with an unknown cgroup never matches those conditions.
    s.unit = "";
    s.cgroup = "";
    cr_assert_eq(status("unit=agent.service"), MatchStatus::Mismatch);
    cr_assert_eq(status("cgroup=/system.slice"), MatchStatus::Mismatch);
}

Test(policy_text, utf8_validation)
{
    cr_assert_not(find_invalid_utf8("plain ascii").has_value());
    cr_assert_not(find_invalid_utf8("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x94\x91").has_value());
    cr_assert_eq(find_invalid_utf8("ab\xff").value(), 2U);
    cr_assert_eq(find_invalid_utf8("\xc0\xaf").value(), 0U, "overlong");
    cr_assert_eq(find_invalid_utf8("\xed\xa0\x80").value(), 0U, "surrogate");
    cr_assert_eq(find_invalid_utf8("\xf4\x90\x80\x80").value(), 0U, "above U+10FFFF");
    cr_assert_eq(find_invalid_utf8("x\xe2\x82").value(), 1U, "truncated");
    cr_assert_eq(quote("a\"b\\c\n\xff"), "\"a\\\"b\\\\c\\x0a\\xff\"");
}
