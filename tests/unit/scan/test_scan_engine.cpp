// The second-stage parts on their own: the PCRE2 wrapper (dialect, captures, leftmost-first
// order, windows, limits and budget), the run finders, file globs, verifiers and entropy.
#include <criterion/criterion.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "lib/scan/entropy.hpp"
#include "lib/scan/file_glob.hpp"
#include "lib/scan/gates.hpp"
#include "lib/scan/runs.hpp"
#include "lib/scan/second_stage.hpp"
#include "lib/scan/verifiers.hpp"

using namespace codexvault::scan;
using namespace codexvault::scan::re;

namespace {

Regex compiled(const char* pattern)
{
    auto result = Regex::compile(pattern);
    if (const auto* error = std::get_if<std::string>(&result)) {
        cr_assert_fail("pattern %s: %s", pattern, error->c_str());
    }
    return std::get<Regex>(std::move(result));
}

// The whole match and group 1 ("-" when unset), or "no".
std::string first_match(const char* pattern, std::string_view text)
{
    const Regex regex = compiled(pattern);
    Budget budget{1'000'000};
    Scratch scratch;
    std::vector<Span> spans;
    if (regex.search(text, 0, text.size(), text.size(), spans, budget, scratch) != Outcome::Found) {
        return "no";
    }
    std::string out(text.substr(spans[0].begin, spans[0].size()));
    if (regex.groups() > 0) {
        out += "|";
        out += spans[1].begin == kUnset ? std::string("-") : std::string(text.substr(spans[1].begin, spans[1].size()));
    }
    return out;
}

void expect_match(const char* pattern, std::string_view text, const char* want)
{
    const std::string got = first_match(pattern, text);
    cr_expect_str_eq(got.c_str(), want, "/%s/ on '%.*s'", pattern, static_cast<int>(text.size()), text.data());
}

}  // namespace

Test(scan_engine, the_pcre2_dialect_matches_bytes_with_multiline_anchors)
{
    expect_match("a+b", "xxaaab", "aaab");
    expect_match("a+?b", "aaab", "aaab");
    expect_match("(a|ab)(?:c|bcd)", "abcd", "abcd|a");
    expect_match("(?i)hello", "say HeLLo", "HeLLo");
    expect_match("x(?i:ab)c", "xABC xABc", "xABc");
    expect_match("\\bfoo\\b", "afoo foo", "foo");
    expect_match("foo(?!bar)", "foobar foobaz", "foo");
    expect_match("^b", "a\nb", "b");
    expect_match("a$", "ab\na", "a");
    expect_match("\\Aa", "ba", "no");
    expect_match("a\\z", "a\nb a", "a");
    expect_match("(?:ab){2,3}", "abababab", "ababab");
    expect_match("(?:ab){2,3}?", "abababab", "abab");
    expect_match("(a)|b", "b", "b|-");
    expect_match("[]a]+", "x]a]", "]a]");
    expect_match("[a-c\\d-]+", "zab-9z", "ab-9");
    expect_match("(?<name>x)y", "xy", "xy|x");
    expect_match("(?P<name>x)y", "xy", "xy|x");
    expect_match(".+", "ab\ncd", "ab");
    expect_match("[\\x00-\\x08]+", std::string_view("a\x01\x02z", 4), "\x01\x02");
    // Bytes, not characters: \w is ASCII only and invalid UTF-8 is just bytes.
    expect_match("\\w+", "\xc3\xa9t\xff\xfez", "t");
    expect_match("[\\x80-\\xff]+", "ab\xc3\x28\xff", "\xc3");
}

Test(scan_engine, patterns_that_would_change_the_dialect_are_refused)
{
    for (const char* pattern : {"(a", "a)", "*a", "a**", "[z-a]", "\\x{4", "[", "(*UTF)a", "(*UCP)\\w", "a\\Cb"}) {
        auto result = Regex::compile(pattern);
        cr_expect(std::holds_alternative<std::string>(result), "accepted /%s/", pattern);
    }
}

Test(scan_engine, a_window_limits_where_a_match_starts_and_what_it_sees)
{
    const Regex regex = compiled("ghp_[a-z]{4,}");
    const std::string text = "xx ghp_abcdefgh yy";
    Budget budget{100000};
    Scratch scratch;
    std::vector<Span> spans;
    // Starts only in [3, 4); the text from byte 11 on is not seen.
    cr_assert(regex.search(text, 3, 4, 11, spans, budget, scratch) == Outcome::Found);
    cr_expect_eq(spans[0].begin, 3u);
    cr_expect_eq(spans[0].end, 11u);
    // Starts only in [4, 10): none.
    cr_expect(regex.search(text, 4, 10, text.size(), spans, budget, scratch) == Outcome::NotFound);
    // The window ends before the minimum length: none.
    cr_expect(regex.search(text, 3, 4, 9, spans, budget, scratch) == Outcome::NotFound);
    // $ does not match where the window cuts a line, only where the line really ends.
    const Regex line_end = compiled("ghp_[a-z]{4}$");
    cr_expect(line_end.search(text, 3, 4, 11, spans, budget, scratch) == Outcome::NotFound);
    const std::string line = "ghp_abcd\nnext";
    cr_expect(line_end.search(line, 0, 1, 9, spans, budget, scratch) == Outcome::Found);
    // Text before the window's start is seen by \b: "xghp_" has no boundary before g.
    const Regex bounded = compiled("\\bghp_[a-z]+");
    const std::string glued = "xghp_abcd";
    cr_expect(bounded.search(glued, 1, 2, glued.size(), spans, budget, scratch) == Outcome::NotFound);
    cr_expect(budget.left < 100000u, "searches are charged to the budget");
}

Test(scan_engine, a_backtracking_pattern_stops_at_its_search_limit)
{
    const Regex regex = compiled("(?:(?:a+)+)+b");
    // The b is there (so PCRE2's required-byte check does not end the search at once), but not
    // after the a's: the nested repeats backtrack exponentially.
    const std::string text = std::string(64, 'a') + "cb";
    Budget budget{UINT64_MAX / 2};
    const std::uint64_t before = budget.left;
    Scratch scratch;
    std::vector<Span> spans;
    cr_expect(regex.search(text, 0, text.size(), text.size(), spans, budget, scratch) == Outcome::LimitHit);
    cr_expect_eq(before - budget.left, kSearchFloor + kSearchPerByte * text.size(), "charged exactly its limit");
}

Test(scan_engine, a_spent_budget_stops_a_search_before_it_starts)
{
    const Regex regex = compiled("(?:(?:a+)+)+b");
    const std::string text = std::string(64, 'a') + "cb";
    Budget budget{5000};
    Scratch scratch;
    std::vector<Span> spans;
    cr_expect(regex.search(text, 0, text.size(), text.size(), spans, budget, scratch) == Outcome::OutOfBudget);
    cr_expect_eq(budget.left, 0u);
    cr_expect(regex.search(text, 0, text.size(), text.size(), spans, budget, scratch) == Outcome::OutOfBudget);
}

Test(scan_engine, single_byte_classes_and_first_bytes)
{
    const auto base64 = single_byte_class("[A-Za-z0-9+/]");
    cr_assert(base64.has_value());
    cr_expect((*base64)['+'] && (*base64)['z'] && !(*base64)['-'] && !(*base64)['\n']);
    cr_expect(single_byte_class("x").has_value());
    cr_expect(single_byte_class("\\w").has_value());
    cr_expect(!single_byte_class("[a-z]+").has_value());
    cr_expect(!single_byte_class("a|bb").has_value());
    cr_expect(!single_byte_class("(").has_value());
    const Regex regex = compiled("\\b(?:ghp|gho)_x");
    cr_expect(regex.can_start_with('g'));
    cr_expect(!regex.can_start_with('x'));
    const Regex caseless = compiled("(?i)token");
    cr_expect(caseless.can_start_with('t') && caseless.can_start_with('T'));
    cr_expect(compiled("^x").can_start_with('x'));
}

Test(scan_engine, run_finders)
{
    ByteTable table{};
    for (const char c : std::string_view("abcdefghijklmnopqrstuvwxyz")) {
        table[static_cast<unsigned char>(c)] = true;
    }
    const std::string text = "ab " + std::string(10, 'q') + " " + std::string(4, 'r') + "!" + std::string(12, 's');
    std::vector<std::pair<std::size_t, std::size_t>> runs;
    for_each_run(text, table, 8, [&](std::size_t b, std::size_t e) {
        runs.emplace_back(b, e);
        return true;
    });
    cr_assert_eq(runs.size(), 2u);
    cr_expect(runs[0] == std::make_pair(std::size_t{3}, std::size_t{13}));
    cr_expect(runs[1] == std::make_pair(text.size() - 12, text.size()));

    // Runs right after a quote, capped at max + 1 bytes.
    const std::string quoted =
        "x = \"" + std::string(40, 'k') + "\" + '" + std::string(5, 'k') + "' `" + std::string(300, 'k') + "`";
    runs.clear();
    for_each_run_after(quoted, "\"'`", table, 32, 128, [&](std::size_t b, std::size_t e) {
        runs.emplace_back(b, e);
        return true;
    });
    cr_assert_eq(runs.size(), 2u);
    cr_expect_eq(runs[0].first, 5u);
    cr_expect_eq(runs[0].second - runs[0].first, 40u);
    cr_expect_eq(runs[1].second - runs[1].first, 129u);
}

// The reference: every anchor, its run measured byte by byte.
std::vector<std::pair<std::size_t, std::size_t>> runs_after_reference(std::string_view text, std::string_view after,
                                                                      const ByteTable& in_class, std::size_t min,
                                                                      std::size_t max)
{
    std::vector<std::pair<std::size_t, std::size_t>> out;
    const std::size_t cap = max == 0 ? text.size() : max + 1;
    for (std::size_t p = 0; p < text.size(); ++p) {
        if (after.find(text[p]) == std::string_view::npos) {
            continue;
        }
        std::size_t end = p + 1;
        while (end < text.size() && end - (p + 1) < cap && in_class[static_cast<unsigned char>(text[end])]) {
            ++end;
        }
        if (end - (p + 1) >= min) {
            out.emplace_back(p + 1, end);
        }
    }
    return out;
}

Test(scan_engine, the_run_finder_that_skips_ruled_out_quotes_reports_exactly_the_runs_of_the_plain_one)
{
    ByteTable table{};
    for (const char c : std::string_view("ab+=")) {
        table[static_cast<unsigned char>(c)] = true;
    }
    // Small alphabets make every case common: quotes inside runs, runs just short of or at min
    // and max, anchors that are class bytes ('=' is both), runs touching the end of the text.
    std::uint64_t state = 0x9E3779B97F4A7C15ULL;
    const auto next = [&] {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        return state;
    };
    const std::string_view alphabet = "ab+= \"'";
    for (int round = 0; round < 3000; ++round) {
        std::string text(next() % 300, ' ');
        const std::size_t bias = next() % 4;  // some texts are mostly class bytes
        for (auto& c : text) {
            const std::uint64_t r = next();
            c = (r % 8 < 4 + bias) ? "ab+="[r % 4] : alphabet[(r >> 8) % alphabet.size()];
        }
        const std::size_t min = 1 + next() % 12;
        const std::size_t max = next() % 3 == 0 ? 0 : min + next() % 20;
        const std::string_view after = round % 2 == 0 ? std::string_view("\"'") : std::string_view("=\"");
        std::vector<std::pair<std::size_t, std::size_t>> got;
        for_each_run_after(text, after, table, min, max, [&](std::size_t b, std::size_t e) {
            got.emplace_back(b, e);
            return true;
        });
        cr_assert(got == runs_after_reference(text, after, table, min, max), "round %d: %s (min %zu, max %zu)", round,
                  text.c_str(), min, max);
    }
}

Test(scan_engine, the_vector_run_finder_reports_exactly_the_runs_of_the_plain_one_across_word_boundaries)
{
    // Long texts with long runs: runs that cross the finder's 64-byte words, start on the last
    // byte of one, reach past the second, end at the text's end, and mins up to 64 (the vector
    // finder's limit) and past it (the portable finder again). Where the CPU has no AVX2 this
    // checks the portable finder only.
    ByteTable table{};
    for (const char c : std::string_view("ab+=")) {
        table[static_cast<unsigned char>(c)] = true;
    }
    std::uint64_t state = 0xD1B54A32D192ED03ULL;
    const auto next = [&] {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        return state;
    };
    for (int round = 0; round < 2000; ++round) {
        std::string text(next() % 1500, ' ');
        // Runs of random length between quotes and other bytes.
        std::size_t i = 0;
        while (i < text.size()) {
            const std::uint64_t r = next();
            const std::size_t run = r % 4 == 0 ? r % 300 : r % 70;
            for (std::size_t k = 0; k < run && i < text.size(); ++k, ++i) {
                text[i] = "ab+="[(r >> (k % 48)) % 4];
            }
            if (i < text.size()) {
                text[i++] = " \"'`x\n"[(r >> 20) % 6];
            }
        }
        const std::size_t min = 1 + next() % 70;
        const std::size_t max = next() % 3 == 0 ? 0 : min + next() % 200;
        const std::string_view after = round % 3 == 0 ? std::string_view("\"") : std::string_view("\"'`");
        std::vector<std::pair<std::size_t, std::size_t>> got;
        for_each_run_after(text, after, table, min, max, [&](std::size_t b, std::size_t e) {
            got.emplace_back(b, e);
            return true;
        });
        cr_assert(got == runs_after_reference(text, after, table, min, max), "round %d (min %zu, max %zu)", round, min,
                  max);
    }
    // Stopping early stops at once.
    const std::string text = "\"" + std::string(40, 'a') + "\" '" + std::string(40, 'b') + "'";
    std::size_t calls = 0;
    for_each_run_after(text, "\"'", table, 32, 0, [&](std::size_t, std::size_t) {
        ++calls;
        return false;
    });
    cr_expect_eq(calls, 1u);
}

Test(scan_engine, gates_pass_every_assignment_and_userinfo_form_and_turn_the_rest_away)
{
    const Gate assignment = find_gate("assignment");
    const Gate userinfo = find_gate("userinfo");
    cr_assert_not_null(assignment);
    cr_assert_not_null(userinfo);
    cr_expect_null(find_gate("nope"));
    cr_expect_eq(gate_names().size(), 2u);
    // The keyword is "token"; the gate looks from just past it.
    const auto at_token = [](Gate gate, std::string_view text) {
        return gate(text, text.find("token") + 5);
    };
    for (const std::string_view yes :
         {"token = \"x", "token='x", "token_value: \"x", "\"token\": \"x", "TOKEN := \"x", "token => 'x",
          "token ||= \"x", "token\t=\t\"x", "auth.token-v2   =   'x", "'token':'x",
          // unquoted values that end the line, before blanks or a comment
          "token = request.token", "token: hX8qLmT2vZ9r", "TOKEN=hX8qLmT2vZ9r  \n", "token=hX8q#LmT2 # note",
          "token: hX8qLmT2vZ9r\r\n", "token = hX8qLmT2vZ9r#part-of-it"}) {
        cr_expect(at_token(assignment, yes), "%s", std::string(yes).c_str());
    }
    for (const std::string_view no :
         {"token = request.token()", "token", "token =", "tokens = [\"x", "token(\"x\")", "token    = \"x",
          "token = +\"x", "token: *alias_name", "token = short", "token = $VALUE_OF_IT", "token = hX8qLmT2vZ9r more",
          "token =\n  hX8qLmT2vZ9r", "token = hX8qLmT2vZ9r;"}) {
        cr_expect(!at_token(assignment, no), "%s", std::string(no).c_str());
    }
    const auto after_scheme = [](Gate gate, std::string_view text) {
        return gate(text, text.find("://") + 3);
    };
    cr_expect(after_scheme(userinfo, "https://user:pa55@host"));
    cr_expect(after_scheme(userinfo, "redis://:pa55@host"));
    cr_expect(!after_scheme(userinfo, "https://host:8443/path"));
    cr_expect(!after_scheme(userinfo, "https://host/a:b@c"));
    cr_expect(!after_scheme(userinfo, "https://example.com/docs"));
}

Test(scan_engine, globs)
{
    cr_expect(glob_matches("*.yml", "config.YML"));
    cr_expect(glob_matches("docker-compose*.y?ml", "docker-compose.prod.yaml"));
    cr_expect(!glob_matches("*.yml", "config.yaml"));
    cr_expect(glob_matches("*", ""));
    cr_expect(!glob_matches("a*b*c*d", std::string(5000, 'a')));
    cr_expect(file_filter_matches({}, "anything"));
    cr_expect(file_filter_matches({"@env"}, "srv/.env.local"));
    cr_expect(!file_filter_matches({"@env"}, "srv/env.py"));
    cr_expect_str_eq(std::string(base_name("a/b/c.txt")).c_str(), "c.txt");
}

Test(scan_engine, verifiers)
{
    cr_expect_not_null(find_verifier("pem"));
    cr_expect_null(find_verifier("nope"));
    cr_expect_eq(verifier_names().size(), 6u);

    const Verifier jwt = find_verifier("jwt");
    // {"alg":"HS256"} . {"sub":"1"} . signature
    const std::string good = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJlc2lnbmF0dXJl";
    cr_expect(jwt(good, Span{0, good.size()}).has_value());
    const std::string no_alg = "eyJ0eXAiOiJKV1QifQ.eyJzdWIiOiIxIn0.c2lnbmF0dXJlc2lnbmF0dXJl";
    cr_expect(!jwt(no_alg, Span{0, no_alg.size()}).has_value());

    const Verifier pem = find_verifier("pem");
    std::string block = "-----BEGIN EC PRIVATE KEY-----\n";
    for (int i = 0; i < 3; ++i) {
        block += "MHcCAQEEIBkg4LVWM9nuwNSk3yByxZpYRTBnVJk5dAS0wpu8y7lEoAoGCCqGSM49\n";
    }
    block += "-----END EC PRIVATE KEY-----\ntrailer";
    const auto span = pem(block, Span{0, 30});
    cr_assert(span.has_value());
    cr_expect_eq(span->end, block.find("trailer") - 1);
    const std::string truncated = block.substr(0, 100);
    cr_expect(!pem(truncated, Span{0, 30}).has_value());

    const Verifier url = find_verifier("url-password");
    const std::string same = "postgres://admin:admin@db/x";
    cr_expect(!url(same, Span{17, 22}).has_value());
    const std::string docs = "postgres://admin:Zx81kq@db.example.com/x";
    cr_expect(!url(docs, Span{17, 23}).has_value());
    const std::string real = "postgres://admin:Zx81kq@db.internal/x";
    cr_expect(url(real, Span{17, 23}).has_value());
}

Test(scan_engine, entropy)
{
    cr_expect_float_eq(shannon_entropy(""), 0.0, 1e-9);
    cr_expect_float_eq(shannon_entropy("aaaa"), 0.0, 1e-9);
    cr_expect_float_eq(shannon_entropy("ab"), 1.0, 1e-9);
    cr_expect_float_eq(shannon_entropy("abcd"), 2.0, 1e-9);
    std::string all;
    for (int i = 0; i < 256; ++i) {
        all.push_back(static_cast<char>(i));
    }
    cr_expect_float_eq(shannon_entropy(all), 8.0, 1e-9);
    cr_expect_float_eq(shannon_entropy(all + all), 8.0, 1e-9);  // the long-value path
}
