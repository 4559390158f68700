// Building a needle set: the length policy, what needles a secret yields, and sharing.
#include <criterion/criterion.h>

#include <algorithm>
#include <cstddef>
#include <string>
#include <vector>

#include "lib/redact/needle_set.hpp"
#include "tests/unit/redact/redact_harness.hpp"
#include "tests/unit/redact/redact_test_support.hpp"

using namespace codexvault::redact;
using namespace codexvault::redact::testing;

Test(needle_set, a_secret_shorter_than_eight_bytes_is_refused_and_the_error_names_it_but_not_its_value)
{
    const BuildResult built = build({{"good", "long-enough-value", {}}, {"pin", "1234567", {}}});
    cr_assert(built.needles == nullptr);
    cr_assert(built.error.find("'pin'") != std::string::npos, "error: %s", built.error.c_str());
    cr_assert(built.error.find("1234567") == std::string::npos, "error: %s", built.error.c_str());
}

Test(needle_set, a_short_extra_rendering_is_refused_too)
{
    const BuildResult built = build({{"key", "long-enough-value", {"short"}}});
    cr_assert(built.needles == nullptr);
    cr_assert(built.error.find("rendering 1") != std::string::npos, "error: %s", built.error.c_str());
}

Test(needle_set, a_secret_longer_than_the_maximum_is_refused)
{
    cr_assert(build({{"huge", std::string(kMaxSecretLength + 1, 'x'), {}}}).needles == nullptr);
    cr_assert(build({{"large", std::string(kMaxSecretLength, 'x'), {}}}).needles != nullptr);
}

Test(needle_set, eight_bytes_is_enough_and_every_needle_is_at_least_eight_bytes)
{
    const auto needles = needles_for({{"short", "\x01\xff/ a\"\\\xe2", {}}, {"plain", "abcdefgh", {}}});
    for (const auto& needle : needles->needles()) {
        cr_assert(needle.bytes.size() >= kMinSecretLength, "needle %s", printable(needle.bytes).c_str());
    }
}

Test(needle_set, a_plain_token_yields_raw_base64_at_three_alignments_and_hex)
{
    const auto needles = needles_for({{"token", "sk-proj-0123456789abcdef", {}}});
    std::vector<Encoding> encodings;
    for (const auto& needle : needles->needles()) {
        encodings.push_back(needle.encoding);
    }
    const auto count = [&](Encoding e) {
        return std::count(encodings.begin(), encodings.end(), e);
    };
    cr_assert(count(Encoding::Raw) == 1);
    cr_assert(count(Encoding::Json) == 0, "JSON and URL forms equal the raw bytes and are kept once");
    cr_assert(count(Encoding::Url) == 0);
    cr_assert(count(Encoding::Base64) + count(Encoding::Base64Url) == 3, "the alphabets agree here");
    cr_assert(count(Encoding::HexLower) == 1);
    cr_assert(count(Encoding::HexUpper) == 1);
    cr_assert(needles->longest() == 48);
}

Test(needle_set, a_needle_shared_by_two_secrets_is_kept_once_for_the_first)
{
    const auto needles = needles_for({{"first", "same-value-123", {}}, {"second", "same-value-123", {}}});
    for (const auto& needle : needles->needles()) {
        cr_assert(needle.secret == 0);
    }
    const Redacted redacted = redact_whole(needles, "x same-value-123 y");
    cr_assert(redacted.output == "x <redacted:first> y");
}

Test(needle_set, a_set_without_secrets_passes_everything_through)
{
    const auto needles = needles_for({});
    cr_assert(needles->longest() == 0);
    const Redacted redacted = redact_in_chunks(needles, "anything at all", std::vector<std::size_t>{3, 7});
    cr_assert(redacted.output == "anything at all");
    cr_assert(redacted.most_held == 0);
}
