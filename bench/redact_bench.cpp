// Streaming redactor throughput: MiB/s (median of several runs) for a 256 MiB stream fed in
// 64 KiB chunks, with 1 and with 8 secrets, for a stream with no match and one with a match every
// 64 KiB (planted at varying offsets, so some straddle chunks). The stream is LLM-style SSE JSON
// text; a base64 stream (image data in a response: the worst case for the first-bytes filter,
// whose alphabet is the needles') and a worst case of secret prefixes back to back are measured
// too. Prints figures; never pass/fail (the goal
// for output masking is >= 1 GiB/s on one core with no match).
//
//   g++ -std=c++20 -O2 -DNDEBUG -I. lib/redact/*.cpp bench/redact_bench.cpp -o build/redact_bench
//   build/redact_bench [--mib N] [--runs R]   (defaults: 256 MiB, 5 runs)
#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "lib/redact/needle_set.hpp"
#include "lib/redact/stream_redactor.hpp"

using namespace codexvault::redact;

namespace {

constexpr std::size_t kChunk = 64 * 1024;

std::string random_key(std::mt19937_64& rng, std::string_view prefix, std::size_t length)
{
    static constexpr std::string_view kAlnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    std::string key(prefix);
    while (key.size() < length) {
        key += kAlnum[rng() % kAlnum.size()];
    }
    return key;
}

// Server-sent events of a chat completion, one word per event.
std::vector<std::uint8_t> sse_text(std::mt19937_64& rng, std::size_t size)
{
    static constexpr std::string_view kWords[] = {
        "the",   "model",  "returns", "a",     "token",  "stream", "with",   "words", "and",      "numbers",
        "like",  "42",     "or",      "3.14",  "code",   "{x}",    "return", "value", "function", "between",
        "quick", "brown",  "fox",     "jumps", "over",   "lazy",   "dog",    "\\n",   "secrets",  "are",
        "never", "echoed", "here",    "JSON",  "arrays", "[1,2]",  "key",    "sk",    "proj",     "Bearer"};
    std::vector<std::uint8_t> out;
    out.reserve(size + 128);
    while (out.size() < size) {
        std::string event = "data: {\"id\":\"chatcmpl-1\",\"choices\":[{\"delta\":{\"content\":\" ";
        event += kWords[rng() % std::size(kWords)];
        event += "\"},\"index\":0}]}\n\n";
        out.insert(out.end(), event.begin(), event.end());
    }
    out.resize(size);
    return out;
}

std::vector<std::uint8_t> base64_text(std::mt19937_64& rng, std::size_t size)
{
    static constexpr std::string_view kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::vector<std::uint8_t> out(size);
    for (auto& byte : out) {
        byte = static_cast<std::uint8_t>(kAlphabet[rng() % kAlphabet.size()]);
    }
    return out;
}

// Prefixes of the secrets (each one byte short), back to back: the automaton runs on nearly
// every byte. Not a realistic stream (it needs the secrets), but it bounds the cost.
std::vector<std::uint8_t> near_misses(const std::vector<std::string>& secrets, std::size_t size, std::mt19937_64& rng)
{
    std::vector<std::uint8_t> out;
    out.reserve(size + 64);
    while (out.size() < size) {
        const std::string& secret = secrets[rng() % secrets.size()];
        out.insert(out.end(), secret.begin(),
                   secret.begin() + static_cast<std::ptrdiff_t>(1 + rng() % (secret.size() - 1)));
    }
    out.resize(size);
    return out;
}

void plant_every_chunk(std::vector<std::uint8_t>& stream, const std::vector<std::string>& secrets, std::mt19937_64& rng)
{
    for (std::size_t base = 0; base + kChunk <= stream.size(); base += kChunk) {
        const std::string& secret = secrets[(base / kChunk) % secrets.size()];
        const std::size_t at = base + rng() % (kChunk - secret.size());
        std::memcpy(stream.data() + at, secret.data(), secret.size());
    }
}

// Wall-clock and CPU-time rates: on a shared machine the CPU-time figure is the one to trust.
struct Figure {
    double wall_mib_per_s = 0;
    double cpu_mib_per_s = 0;
    std::uint64_t replacements = 0;
};

double median(std::vector<double> values)
{
    std::sort(values.begin(), values.end());
    return values[values.size() / 2];
}

Figure measure(const std::shared_ptr<const NeedleSet>& needles, const std::vector<std::uint8_t>& stream, int runs)
{
    std::vector<double> wall_rates;
    std::vector<double> cpu_rates;
    std::uint64_t replacements = 0;
    std::vector<std::uint8_t> out;
    out.reserve(2 * kChunk);
    for (int run = 0; run < runs; ++run) {
        StreamRedactor redactor(needles);
        std::uint64_t released = 0;
        const auto start = std::chrono::steady_clock::now();
        const std::clock_t cpu_start = std::clock();
        for (std::size_t at = 0; at < stream.size(); at += kChunk) {
            out.clear();
            redactor.feed({stream.data() + at, std::min(kChunk, stream.size() - at)}, out);
            released += out.size();
        }
        out.clear();
        redactor.finish(out);
        const auto stop = std::chrono::steady_clock::now();
        const std::clock_t cpu_stop = std::clock();
        released += out.size();
        if (released == 0) {
            std::abort();  // keeps the work observable
        }
        const double mib = static_cast<double>(stream.size()) / (1024.0 * 1024.0);
        wall_rates.push_back(mib / std::chrono::duration<double>(stop - start).count());
        cpu_rates.push_back(mib * CLOCKS_PER_SEC / static_cast<double>(cpu_stop - cpu_start));
        replacements = redactor.replacements();
    }
    return {median(wall_rates), median(cpu_rates), replacements};
}

}  // namespace

int main(int argc, char** argv)
{
    std::size_t mib = 256;
    int runs = 5;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (std::strcmp(argv[i], "--mib") == 0) {
            mib = std::strtoull(argv[i + 1], nullptr, 10);
        } else if (std::strcmp(argv[i], "--runs") == 0) {
            runs = std::atoi(argv[i + 1]);
        }
    }
    if (mib == 0 || runs <= 0) {
        std::fprintf(stderr, "usage: %s [--mib N] [--runs R]\n", argv[0]);
        return 2;
    }
    std::mt19937_64 rng(2024);
    std::vector<std::string> keys;
    for (int i = 0; i < 8; ++i) {
        keys.push_back(random_key(rng, i % 2 == 0 ? "sk-proj-" : "ghp_", 56));
    }
    const std::size_t size = mib * 1024 * 1024;
    const std::vector<std::uint8_t> text = sse_text(rng, size);
    const std::vector<std::uint8_t> b64 = base64_text(rng, size);

    std::printf("redact_bench: %zu MiB in %zu KiB chunks, median of %d runs, MiB/s (wall clock / CPU time)\n", mib,
                kChunk / 1024, runs);
    for (const std::size_t count : {std::size_t{1}, std::size_t{8}}) {
        std::vector<Secret> secrets;
        const std::vector<std::string> used(keys.begin(), keys.begin() + static_cast<std::ptrdiff_t>(count));
        for (std::size_t i = 0; i < count; ++i) {
            secrets.push_back({"key" + std::to_string(i), bytes_of(used[i]), {}});
        }
        const BuildResult built = build_needle_set(secrets);
        if (!built.needles) {
            std::fprintf(stderr, "%s\n", built.error.c_str());
            return 1;
        }
        std::vector<std::uint8_t> matched = text;
        plant_every_chunk(matched, used, rng);
        const Figure none = measure(built.needles, text, runs);
        const Figure some = measure(built.needles, matched, runs);
        const Figure binary = measure(built.needles, b64, runs);
        const Figure worst = measure(built.needles, near_misses(used, size, rng), runs);
        std::printf("  %zu secret(s), %zu needles, %zu automaton states:\n", count, built.needles->needles().size(),
                    built.needles->automaton().state_count());
        const auto print = [](const char* what, const Figure& figure) {
            std::printf("    %-32s %6.0f / %6.0f MiB/s  (%llu replacements)\n", what, figure.wall_mib_per_s,
                        figure.cpu_mib_per_s, static_cast<unsigned long long>(figure.replacements));
        };
        print("SSE text, no match", none);
        print("SSE text, a match every 64 KiB", some);
        print("base64 text, no match", binary);
        print("secret prefixes back to back", worst);
    }
    return 0;
}
