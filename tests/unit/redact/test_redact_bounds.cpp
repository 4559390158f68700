// Memory per stream: between calls the redactor holds back at most the longest needle minus one
// byte, and only bytes that may still begin a needle.
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

Test(redact_bounds, the_bound_is_the_longest_needle_minus_one)
{
    const auto needles = needles_for({{"key", "0123456789", {}}, {"other", "abcdefghijklmnop", {}}});
    StreamRedactor redactor(needles);
    cr_assert(needles->longest() == 32, "hex of the 16-byte value");
    cr_assert(redactor.max_held_back() == 31);
}

Test(redact_bounds, held_back_bytes_never_exceed_the_bound_on_random_streams_and_chunkings)
{
    std::mt19937_64 rng(11);
    for (int round = 0; round < 300; ++round) {
        const std::string canary = random_canary(rng, round % 2 == 0);
        const auto needles = needles_for({{"canary", canary, {}}});
        std::string stream;
        while (stream.size() < 2000) {
            switch (rng() % 4) {
            case 0:
                stream += random_text(rng, rng() % 50);
                break;
            case 1:
                stream += canary.substr(0, rng() % canary.size());
                break;
            case 2:
                stream += hex_encode(canary, true).substr(0, 2 * canary.size() - 1 - rng() % 3);
                break;
            default:
                stream += canary;
                break;
            }
        }
        std::vector<std::size_t> cuts;
        for (std::size_t cut = 0; cut < stream.size(); cut += rng() % 64) {
            cuts.push_back(cut);
        }
        const Redacted redacted = redact_in_chunks(needles, stream, cuts);
        cr_assert(redacted.most_held <= needles->longest() - 1, "held %zu, longest needle %zu", redacted.most_held,
                  needles->longest());
    }
}

Test(redact_bounds, an_unfinished_needle_is_held_exactly_and_plain_text_not_at_all)
{
    const auto needles = needles_for({{"key", "sk-live-4242424242", {}}});
    StreamRedactor redactor(needles);
    std::vector<std::uint8_t> out;
    redactor.feed(bytes_of("nothing to hold here."), out);
    cr_assert(redactor.held_back() == 0);
    redactor.feed(bytes_of("now sk-live-42"), out);
    cr_assert(redactor.held_back() == 10);
    cr_assert(std::string(out.begin(), out.end()) == "nothing to hold here.now ");
}

Test(redact_bounds, a_long_run_of_a_self_overlapping_secret_stays_within_the_bound_and_is_masked_whole)
{
    const std::string secret(12, 'a');
    const auto needles = needles_for({{"aaa", secret, {}}});
    const std::string stream = "x" + std::string(5000, 'a') + "y";
    std::vector<std::size_t> cuts;
    for (std::size_t cut = 1; cut < stream.size(); ++cut) {
        cuts.push_back(cut);
    }
    const Redacted redacted = redact_in_chunks(needles, stream, cuts);
    cr_assert(redacted.output == "x<redacted:aaa>y", "got %s", redacted.output.c_str());
    cr_assert(redacted.most_held <= needles->longest() - 1);
}
