// Every encoding of a random canary, produced by the tests' own encoders, is replaced in a
// stream, and exactly the bytes that encode it are: the text around it passes unchanged.
#include <criterion/criterion.h>

#include <cstddef>
#include <random>
#include <string>
#include <vector>

#include "tests/unit/redact/independent_encoders.hpp"
#include "tests/unit/redact/redact_harness.hpp"
#include "tests/unit/redact/redact_test_support.hpp"

using namespace codexvault::redact;
using namespace codexvault::redact::testing;

namespace {

constexpr int kCanaries = 40;

void expect_replaced(const std::string& canary, const std::string& encoded, const char* what)
{
    const auto needles = needles_for({{"canary", canary, {}}});
    const std::string before = "{\"output\": \"text ";
    const std::string after = " more text\"}";
    const Redacted redacted = redact_whole(needles, before + encoded + after);
    cr_assert(redacted.output == before + "<redacted:canary>" + after, "%s of %s: got %s", what,
              printable(canary).c_str(), printable(redacted.output).c_str());
    cr_assert(redacted.replacements == 1);
}

// The canary sits `offset` bytes into a blob of random bytes that is then base64-encoded: the
// characters made only of canary bits must be replaced, and nothing else.
void expect_replaced_in_blob(const std::string& canary, const std::string& head, const std::string& tail, bool url,
                             bool pad)
{
    const auto needles = needles_for({{"canary", canary, {}}});
    const std::string encoded = base64(head + canary + tail, url, pad);
    const std::size_t first_bit = 8 * head.size();
    const std::size_t end_bit = first_bit + 8 * canary.size();
    const std::size_t first = (first_bit + 5) / 6;
    const std::size_t last = end_bit / 6;
    const Redacted redacted = redact_whole(needles, encoded);
    const std::string expected = encoded.substr(0, first) + "<redacted:canary>" + encoded.substr(last);
    cr_assert(redacted.output == expected, "base64%s of %zu+%zu+%zu bytes: got %s, want %s", url ? "url" : "",
              head.size(), canary.size(), tail.size(), redacted.output.c_str(), expected.c_str());
}

}  // namespace

Test(redact_encodings, the_raw_canary_is_replaced)
{
    std::mt19937_64 rng(1);
    for (int i = 0; i < kCanaries; ++i) {
        const std::string canary = random_canary(rng, i % 2 == 0);
        expect_replaced(canary, canary, "raw");
    }
}

Test(redact_encodings, the_json_escaped_canary_is_replaced_with_and_without_unicode_and_slash_escapes)
{
    std::mt19937_64 rng(2);
    for (int i = 0; i < kCanaries; ++i) {
        const std::string canary = random_canary(rng, true);
        expect_replaced(canary, json_escape(canary, false, false), "minimal JSON");
        expect_replaced(canary, json_escape(canary, false, true), "JSON with \\/");
        expect_replaced(canary, json_escape(canary, true, false), "ASCII-only JSON");
        expect_replaced(canary, json_escape(canary, true, true), "ASCII-only JSON with \\/ (PHP)");
    }
}

Test(redact_encodings, the_html_safe_json_of_go_is_replaced)
{
    expect_replaced("pa<ss>&word\b\x7f-2", "pa\\u003css\\u003e\\u0026word\\u0008\x7f-2", "Go JSON");
    expect_replaced("line-sep-\xe2\x80\xa8-end", "line-sep-\\u2028-end", "Go JSON");
}

Test(redact_encodings, the_url_encoded_canary_is_replaced_with_upper_and_lower_hex_and_plus_for_space)
{
    std::mt19937_64 rng(3);
    for (int i = 0; i < kCanaries; ++i) {
        const std::string canary = random_canary(rng, true);
        expect_replaced(canary, percent_encode(canary, true, false), "percent-encoded (upper)");
        expect_replaced(canary, percent_encode(canary, false, false), "percent-encoded (lower)");
        expect_replaced(canary, percent_encode(canary, true, true), "form-encoded (upper)");
        expect_replaced(canary, percent_encode(canary, false, true), "form-encoded (lower)");
    }
}

Test(redact_encodings, the_hex_canary_is_replaced_in_either_case)
{
    std::mt19937_64 rng(4);
    for (int i = 0; i < kCanaries; ++i) {
        const std::string canary = random_canary(rng, i % 2 == 0);
        expect_replaced(canary, hex_encode(canary, false), "lower-case hex");
        expect_replaced(canary, hex_encode(canary, true), "upper-case hex");
    }
}

Test(redact_encodings, the_base64_canary_is_replaced_at_each_alignment_padded_or_not)
{
    std::mt19937_64 rng(5);
    for (int i = 0; i < kCanaries; ++i) {
        const std::string canary = random_canary(rng, i % 2 == 0);
        for (std::size_t alignment = 0; alignment < 3; ++alignment) {
            const std::string head = random_bytes(rng, alignment);
            for (const bool url : {false, true}) {
                for (const bool pad : {false, true}) {
                    expect_replaced_in_blob(canary, head, "", url, pad);
                }
            }
        }
    }
}

Test(redact_encodings, the_canary_inside_a_longer_base64_blob_is_replaced)
{
    std::mt19937_64 rng(6);
    for (int i = 0; i < 4 * kCanaries; ++i) {
        const std::string canary = random_canary(rng, i % 2 == 0);
        const std::string head = random_bytes(rng, rng() % 40);
        const std::string tail = random_bytes(rng, rng() % 40);
        expect_replaced_in_blob(canary, head, tail, i % 4 < 2, i % 3 == 0);
    }
}

Test(redact_encodings, an_extra_rendering_masks_the_whole_credential_with_its_encodings)
{
    const std::string password = "correct-horse-battery";
    const std::string credential = "bob:" + password;
    const std::string header = "Authorization: Basic " + base64(credential, false, true) + "\r\n";

    // The password alone is found inside the credential's base64 (at alignment 1), but the
    // characters that encode "bob:" stay.
    const Redacted alone = redact_whole(needles_for({{"db", password, {}}}), header);
    cr_assert(alone.output.find("<redacted:db>") != std::string::npos);
    cr_assert(alone.output.rfind("Authorization: Basic Ym9iO", 0) == 0, "got %s", alone.output.c_str());

    // The last character mixes 2 credential bits with padding, so it is not part of a needle.
    const Redacted whole = redact_whole(needles_for({{"db", password, {credential}}}), header);
    cr_assert(whole.output == "Authorization: Basic <redacted:db>Q==\r\n", "got %s", whole.output.c_str());
}
