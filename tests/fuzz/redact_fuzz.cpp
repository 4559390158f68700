// libFuzzer target: the bytes make one or two secrets, a stream (with shortcuts that plant the
// secrets' needles, whole or cut short, so the fuzzer need not guess an encoding) and a chunking.
// Aborts if any needle survives in the output, if the output or the count depends on the
// chunking, if more than longest - 1 bytes are held back, or (for short streams) if the output
// differs from the naive reference redactor.
//
//   clang++ -std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -I. lib/redact/*.cpp
//           tests/fuzz/redact_fuzz.cpp -o build/fuzz/redact_fuzz
//   build/fuzz/redact_fuzz -max_total_time=60 -max_len=4096 tests/fuzz/corpus/redact
//
// With g++ and no libFuzzer, tests/fuzz/replay_main.cpp replays the corpus through this target.
//
// Input: [flags] [length] [secret bytes...] ([length] [secret bytes...] if flags & 1) [cut seed]
// [stream...], where in the stream 0xFE k plants needle k and 0xFD k plants all but the last
// byte of needle k. The marker is the single byte 0x01, which no needle holds (0x01 in a secret
// becomes 0x02), so any needle found in the output is one that escaped redaction.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "lib/redact/needle_set.hpp"
#include "lib/redact/stream_redactor.hpp"
#include "tests/unit/redact/redact_harness.hpp"

namespace {

using namespace codexvault::redact;
using namespace codexvault::redact::testing;

// The naive reference is quadratic-ish; longer streams are only checked for leaks and chunking.
constexpr std::size_t kReferenceLimit = 2048;
// Planting needles could otherwise blow a 4 KiB input up a hundredfold and slow every run.
constexpr std::size_t kStreamLimit = 16 * 1024;

void require(bool condition)
{
    if (!condition) {
        std::abort();
    }
}

class Input {
public:
    explicit Input(std::span<const std::uint8_t> bytes) : bytes_(bytes) {}
    bool empty() const { return at_ >= bytes_.size(); }
    std::uint8_t next() { return empty() ? 0 : bytes_[at_++]; }

private:
    std::span<const std::uint8_t> bytes_;
    std::size_t at_ = 0;
};

std::string take_secret(Input& input)
{
    const std::size_t length = kMinSecretLength + input.next() % 32;
    std::string secret;
    for (std::size_t i = 0; i < length; ++i) {
        const std::uint8_t byte = input.next();
        secret += static_cast<char>(byte == 0x01 ? 0x02 : byte);
    }
    return secret;
}

std::string take_stream(Input& input, const NeedleSet& needles)
{
    const auto all = needles.needles();
    std::string stream;
    while (!input.empty() && stream.size() < kStreamLimit) {
        const std::uint8_t byte = input.next();
        if ((byte == 0xFE || byte == 0xFD) && !input.empty()) {
            const std::string& needle = all[input.next() % all.size()].bytes;
            stream += byte == 0xFE ? needle : needle.substr(0, needle.size() - 1);
            continue;
        }
        stream += static_cast<char>(byte);
    }
    return stream;
}

std::vector<std::size_t> cuts_for(std::uint8_t seed, std::size_t size)
{
    std::vector<std::size_t> cuts;
    std::uint32_t x = 0x9E3779B9u ^ seed;
    for (std::size_t cut = 0; cut <= size;) {
        cuts.push_back(cut);
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        cut += seed == 0 ? 1 : x % (std::size_t{seed} + 1);
    }
    return cuts;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    Input input({data, size});
    const std::uint8_t flags = input.next();
    std::vector<PlainSecret> secrets{{"a", take_secret(input), {}}};
    if ((flags & 1) != 0) {
        secrets.push_back({"b", take_secret(input), {}});
    }
    const BuildResult built = build(secrets);
    require(built.needles != nullptr);
    const NeedleSet& needles = *built.needles;
    const std::uint8_t cut_seed = input.next();
    const std::string stream = take_stream(input, needles);

    const MarkerBuilder marker = fixed_marker("\x01");
    const Redacted whole = redact_whole(built.needles, stream, marker);
    const Redacted chunked = redact_in_chunks(built.needles, stream, cuts_for(cut_seed, stream.size()), marker);
    require(!contains_any_needle(whole.output, needles));
    require(chunked.output == whole.output);
    require(chunked.replacements == whole.replacements);
    require(whole.most_held <= whole.max_held && chunked.most_held <= chunked.max_held);
    if (stream.size() <= kReferenceLimit) {
        const Reference reference = reference_redact(stream, needles, marker);
        require(whole.output == reference.output);
        require(whole.replacements == reference.replacements);
    }
    return 0;
}
