// The streaming redactor against the naive reference (redact_harness.hpp) on many random
// streams built to be hard: secrets over tiny alphabets that overlap themselves and each other,
// planted needles of every encoding, their prefixes, suffixes and near misses, cut at random.
#include <criterion/criterion.h>

#include <cstddef>
#include <random>
#include <string>
#include <vector>

#include "tests/unit/redact/redact_harness.hpp"
#include "tests/unit/redact/redact_test_support.hpp"

using namespace codexvault::redact;
using namespace codexvault::redact::testing;

namespace {

std::string random_secret(std::mt19937_64& rng)
{
    if (rng() % 3 == 0) {
        return random_canary(rng, rng() % 2 == 0);
    }
    static constexpr std::string_view kAlphabets[] = {"ab", "abc", "a/b\"", "xy z", "0123"};
    const std::string_view alphabet = kAlphabets[rng() % std::size(kAlphabets)];
    std::string secret;
    const std::size_t length = kMinSecretLength + rng() % 8;
    for (std::size_t i = 0; i < length; ++i) {
        secret += alphabet[rng() % alphabet.size()];
    }
    return secret;
}

std::string random_stream(std::mt19937_64& rng, const NeedleSet& needles)
{
    const auto all = needles.needles();
    std::string stream;
    const std::size_t target = rng() % 400;
    while (stream.size() < target) {
        const std::string& needle = all[rng() % all.size()].bytes;
        switch (rng() % 6) {
        case 0:
            stream += needle;
            break;
        case 1:
            stream += needle.substr(0, rng() % needle.size());
            break;
        case 2:
            stream += needle.substr(rng() % needle.size());
            break;
        case 3: {
            std::string near = needle;
            near[rng() % near.size()] ^= static_cast<char>(1 + rng() % 255);
            stream += near;
            break;
        }
        case 4:
            stream += needle[rng() % needle.size()];
            break;
        default:
            stream += random_bytes(rng, rng() % 8);
            break;
        }
    }
    return stream;
}

}  // namespace

Test(redact_differential, random_streams_match_the_reference_whatever_the_chunking)
{
    std::mt19937_64 rng(12345);
    for (int round = 0; round < 3000; ++round) {
        std::vector<PlainSecret> secrets;
        const std::size_t count = 1 + rng() % 3;
        for (std::size_t i = 0; i < count; ++i) {
            secrets.push_back({"s" + std::to_string(i), random_secret(rng), {}});
        }
        const auto needles = needles_for(secrets);
        const std::string stream = random_stream(rng, *needles);
        const Reference expected = reference_redact(stream, *needles);

        std::vector<std::size_t> cuts;
        for (std::size_t cut = 0; cut <= stream.size(); cut += rng() % (1 + rng() % 40)) {
            cuts.push_back(cut);
        }
        const Redacted redacted = redact_in_chunks(needles, stream, cuts);
        cr_assert(redacted.output == expected.output, "round %d: stream %s\n got %s\nwant %s", round,
                  printable(stream).c_str(), printable(redacted.output).c_str(), printable(expected.output).c_str());
        cr_assert(redacted.replacements == expected.replacements, "round %d", round);
        cr_assert(redacted.most_held <= redacted.max_held, "round %d", round);
    }
}
