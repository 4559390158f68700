// The output never depends on how the stream is cut: every split into two chunks, every split
// of a short stream into three, one byte at a time and empty chunks all give the one-chunk
// output, and no canary survives any of them.
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

struct Case {
    std::shared_ptr<const NeedleSet> needles;
    std::string stream;
    std::string expected;
};

// A stream holding the canary in several encodings between plain text.
Case canary_case(std::uint64_t seed)
{
    std::mt19937_64 rng(seed);
    const std::string canary = random_canary(rng, true);
    Case c;
    c.needles = needles_for({{"canary", canary, {}}});
    c.stream = "data: " + canary + " | " + json_escape(canary, true, false) + " | " +
               percent_encode(canary, false, true) + " | " + base64(random_bytes(rng, 2) + canary, true, false) +
               " | " + hex_encode(canary, true) + " end";
    c.expected = redact_whole(c.needles, c.stream).output;
    cr_assert(!contains_any_needle(c.expected, *c.needles), "one chunk leaks: %s", printable(c.expected).c_str());
    cr_assert(c.expected == reference_redact(c.stream, *c.needles).output);
    return c;
}

void expect_same(const Case& c, const std::vector<std::size_t>& cuts)
{
    const Redacted redacted = redact_in_chunks(c.needles, c.stream, cuts);
    if (redacted.output != c.expected) {
        std::string where;
        for (const std::size_t cut : cuts) {
            where += std::to_string(cut) + " ";
        }
        cr_assert_fail("cut at %s: got %s", where.c_str(), printable(redacted.output).c_str());
    }
    cr_assert(redacted.most_held <= redacted.max_held);
}

}  // namespace

Test(redact_chunking, every_split_into_two_chunks_gives_the_one_chunk_output)
{
    for (std::uint64_t seed = 1; seed <= 5; ++seed) {
        const Case c = canary_case(seed);
        for (std::size_t cut = 0; cut <= c.stream.size(); ++cut) {
            expect_same(c, {cut});
        }
    }
}

Test(redact_chunking, every_split_of_a_short_stream_into_three_chunks_gives_the_one_chunk_output)
{
    Case c;
    c.needles = needles_for({{"key", "s3cr3t/k\"y", {}}});
    c.stream = "<s3cr3t/k\"y>\"s3cr3t\\/k\\\"y\"s3cr3t%2fk%22y|czNjcjN0L2sieQ==|s3cr3t/k";
    c.expected = redact_whole(c.needles, c.stream).output;
    cr_assert(c.expected == "<<redacted:key>>\"<redacted:key>\"<redacted:key>|<redacted:key>Q==|s3cr3t/k", "got %s",
              c.expected.c_str());
    for (std::size_t first = 0; first <= c.stream.size(); ++first) {
        for (std::size_t second = first; second <= c.stream.size(); ++second) {
            expect_same(c, {first, second});
        }
    }
}

Test(redact_chunking, one_byte_at_a_time_gives_the_one_chunk_output)
{
    for (std::uint64_t seed = 10; seed < 20; ++seed) {
        const Case c = canary_case(seed);
        std::vector<std::size_t> cuts;
        for (std::size_t cut = 1; cut < c.stream.size(); ++cut) {
            cuts.push_back(cut);
        }
        expect_same(c, cuts);
    }
}

Test(redact_chunking, empty_chunks_change_nothing)
{
    const Case c = canary_case(30);
    expect_same(c, {0, 0, 5, 5, 5, c.stream.size() / 2, c.stream.size() / 2, c.stream.size()});
}

Test(redact_chunking, finish_readies_the_redactor_for_a_new_stream)
{
    const auto needles = needles_for({{"key", "sk-live-4242424242", {}}});
    StreamRedactor redactor(needles);
    std::vector<std::uint8_t> out;
    redactor.feed(bytes_of("one sk-live-42424"), out);
    redactor.finish(out);
    cr_assert(redactor.held_back() == 0);
    redactor.feed(bytes_of("24242 two sk-live-4242424242"), out);
    redactor.finish(out);
    const std::string text(out.begin(), out.end());
    cr_assert(text == "one sk-live-4242424242 two <redacted:key>", "got %s", text.c_str());
    cr_assert(redactor.replacements() == 1);
}
