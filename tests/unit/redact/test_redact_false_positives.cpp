// Text that comes close to a needle without containing one passes through unchanged, byte for
// byte: the redactor only ever replaces whole occurrences.
#include <criterion/criterion.h>

#include <cstddef>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "tests/unit/redact/redact_harness.hpp"
#include "tests/unit/redact/redact_test_support.hpp"

using namespace codexvault::redact;
using namespace codexvault::redact::testing;

namespace {

void expect_unchanged(const std::shared_ptr<const NeedleSet>& needles, const std::string& text, std::uint64_t seed)
{
    cr_assert(!contains_any_needle(text, *needles), "the test text itself holds a needle");
    std::mt19937_64 rng(seed);
    std::vector<std::size_t> cuts;
    for (std::size_t cut = rng() % 7; cut < text.size(); cut += 1 + rng() % 13) {
        cuts.push_back(cut);
    }
    for (const auto& redacted : {redact_whole(needles, text), redact_in_chunks(needles, text, cuts)}) {
        cr_assert(redacted.output == text, "changed: %s", printable(redacted.output).c_str());
        cr_assert(redacted.replacements == 0);
    }
}

}  // namespace

Test(redact_false_positives, text_holding_every_proper_prefix_of_every_needle_passes_unchanged)
{
    std::mt19937_64 rng(7);
    for (int round = 0; round < 10; ++round) {
        const auto needles = needles_for({{"canary", random_canary(rng, round % 2 == 0), {}}});
        for (const auto& needle : needles->needles()) {
            std::string text;
            for (std::size_t k = 1; k < needle.bytes.size(); ++k) {
                // The prefix is followed by the wrong next byte, then a byte no needle holds.
                text += needle.bytes.substr(0, k);
                text += static_cast<char>(needle.bytes[k] ^ 0x20);
                text += '\0';
            }
            // And every prefix directly followed by the next one, whose first byte cannot
            // continue the previous prefix into the needle unless the needle repeats itself.
            for (std::size_t k = 1; k < needle.bytes.size(); ++k) {
                text += needle.bytes.substr(0, k);
            }
            if (!contains_any_needle(text, *needles)) {
                expect_unchanged(needles, text, rng());
            }
        }
    }
}

Test(redact_false_positives, a_needle_with_any_one_byte_changed_passes_unchanged)
{
    std::mt19937_64 rng(8);
    const auto needles = needles_for({{"canary", random_canary(rng, true), {}}});
    for (const auto& needle : needles->needles()) {
        for (std::size_t at = 0; at < needle.bytes.size(); ++at) {
            std::string text = "<" + needle.bytes + ">";
            text[at + 1] = static_cast<char>(text[at + 1] ^ 0x01);
            expect_unchanged(needles, text, at);
        }
    }
}

Test(redact_false_positives, long_random_text_and_random_bytes_pass_unchanged)
{
    std::mt19937_64 rng(9);
    const auto needles = needles_for({{"one", random_canary(rng, false), {}}, {"two", random_canary(rng, true), {}}});
    expect_unchanged(needles, random_text(rng, 1 << 20), 1);
    expect_unchanged(needles, random_bytes(rng, 1 << 20), 2);
}
