// Overlapping, nested and adjacent occurrences, several secrets, and the counts an audit record
// reads: each run of overlapping occurrences is one marker, named by its leftmost-longest needle.
#include <criterion/criterion.h>

#include <cstdint>
#include <string>
#include <vector>

#include "lib/redact/stream_redactor.hpp"
#include "tests/unit/redact/redact_harness.hpp"
#include "tests/unit/redact/redact_test_support.hpp"

using namespace codexvault::redact;
using namespace codexvault::redact::testing;

namespace {

void expect_output(const std::shared_ptr<const NeedleSet>& needles, const std::string& stream,
                   const std::string& expected, std::uint64_t replacements)
{
    const Redacted redacted = redact_whole(needles, stream);
    cr_assert(redacted.output == expected, "got %s, want %s", redacted.output.c_str(), expected.c_str());
    cr_assert(redacted.replacements == replacements, "%llu replacements",
              static_cast<unsigned long long>(redacted.replacements));
    cr_assert(redacted.output == reference_redact(stream, *needles).output);
}

}  // namespace

Test(redact_overlaps, overlapping_occurrences_of_two_secrets_are_one_marker_named_by_the_leftmost)
{
    const auto needles = needles_for({{"one", "abcdefgh12", {}}, {"two", "gh12345678", {}}});
    expect_output(needles, "<abcdefgh12345678>", "<<redacted:one>>", 1);
    expect_output(needles, "<xxcdefgh12345678>", "<xxcdef<redacted:two>>", 1);
}

Test(redact_overlaps, a_run_of_chained_overlaps_is_masked_to_its_last_byte)
{
    const auto needles =
        needles_for({{"one", "abcdefgh12", {}}, {"two", "gh12345678", {}}, {"three", "5678wxyz!!", {}}});
    expect_output(needles, "[abcdefgh12345678wxyz!!]", "[<redacted:one>]", 1);
}

Test(redact_overlaps, a_self_overlapping_secret_is_masked_entirely)
{
    const auto needles = needles_for({{"rep", "abcabcab", {}}});
    expect_output(needles, "-abcabcabcab-", "-<redacted:rep>-", 1);
}

Test(redact_overlaps, adjacent_occurrences_get_a_marker_each)
{
    const auto needles = needles_for({{"one", "first-secret", {}}, {"two", "second-secret", {}}});
    expect_output(needles, "first-secretsecond-secretfirst-secret", "<redacted:one><redacted:two><redacted:one>", 3);
}

Test(redact_overlaps, the_longest_needle_at_the_leftmost_start_names_the_marker)
{
    const auto needles = needles_for({{"short", "prefix-value", {}}, {"long", "prefix-value-and-more", {}}});
    expect_output(needles, "(prefix-value-and-more)", "(<redacted:long>)", 1);
    expect_output(needles, "(prefix-value-and-mor)", "(<redacted:short>-and-mor)", 1);
}

Test(redact_overlaps, a_needle_inside_a_longer_one_is_part_of_its_marker)
{
    const auto needles = needles_for({{"inner", "value-inner", {}}, {"outer", "the-value-inner-x", {}}});
    expect_output(needles, "the-value-inner-x value-inner", "<redacted:outer> <redacted:inner>", 2);
}

Test(redact_overlaps, two_secrets_are_each_replaced_and_counted_by_secret)
{
    const auto needles = needles_for({{"openai", "sk-0123456789abcdef", {}}, {"github", "ghp_ABCDEFGHIJ", {}}});
    StreamRedactor redactor(needles);
    std::vector<std::uint8_t> out;
    redactor.feed(bytes_of("a sk-0123456789abcdef b ghp_ABCDEFGHIJ c "), out);
    redactor.feed(bytes_of("736b2d30313233343536373839616263646566 d"), out);
    redactor.finish(out);
    const std::string text(out.begin(), out.end());
    cr_assert(text == "a <redacted:openai> b <redacted:github> c <redacted:openai> d", "got %s", text.c_str());
    cr_assert(redactor.replacements() == 3);
    cr_assert(redactor.replacements_by_secret()[0] == 2);
    cr_assert(redactor.replacements_by_secret()[1] == 1);
}

Test(redact_overlaps, a_fixed_marker_is_used_for_every_secret)
{
    const auto needles = needles_for({{"openai", "sk-0123456789abcdef", {}}, {"github", "ghp_ABCDEFGHIJ", {}}});
    const Redacted redacted = redact_whole(needles, "sk-0123456789abcdef ghp_ABCDEFGHIJ", fixed_marker("[REDACTED]"));
    cr_assert(redacted.output == "[REDACTED] [REDACTED]");
}
