// Criterion-side helpers for the redactor tests: needle sets that must build, random canaries
// with the characters that stress each encoding, filler text, and printable diffs.
#pragma once

#include <criterion/criterion.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "lib/redact/needle_set.hpp"
#include "tests/unit/redact/redact_harness.hpp"

namespace codexvault::redact::testing {

inline std::shared_ptr<const NeedleSet> needles_for(const std::vector<PlainSecret>& secrets)
{
    BuildResult built = build(secrets);
    cr_assert(built.needles != nullptr, "needle set refused: %s", built.error.c_str());
    return built.needles;
}

// Escapes everything outside printable ASCII, for failure messages.
inline std::string printable(std::string_view bytes)
{
    std::string out;
    for (const char c : bytes) {
        const auto b = static_cast<std::uint8_t>(c);
        if (b >= 0x20 && b < 0x7F && b != '\\') {
            out += c;
        } else {
            char escaped[5];
            std::snprintf(escaped, sizeof escaped, "\\x%02x", b);
            out += escaped;
        }
    }
    return out;
}

// A unique-looking token with, when asked, one of each character some encoding treats
// specially: space, '/', '"', '\', newline, a control byte, '+', '&', '~', '*', two- and
// three-byte UTF-8.
inline std::string random_canary(std::mt19937_64& rng, bool with_specials)
{
    static constexpr std::string_view kAlnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    static const std::vector<std::string> kSpecials = {" ", "/", "\"", "\\", "\n",       "\x01",
                                                       "+", "&", "~",  "*",  "\xc3\xa9", "\xe2\x82\xac"};
    // Whole tokens, so a special is never inserted inside a UTF-8 sequence.
    std::vector<std::string> tokens;
    const std::size_t length = 12 + rng() % 24;
    for (std::size_t i = 0; i < length; ++i) {
        tokens.emplace_back(1, kAlnum[rng() % kAlnum.size()]);
    }
    if (with_specials) {
        for (const auto& special : kSpecials) {
            tokens.insert(tokens.begin() + static_cast<std::ptrdiff_t>(1 + rng() % tokens.size()), special);
        }
    }
    std::string canary = "cv-";
    for (const auto& token : tokens) {
        canary += token;
    }
    return canary;
}

inline std::string random_bytes(std::mt19937_64& rng, std::size_t length)
{
    std::string out;
    for (std::size_t i = 0; i < length; ++i) {
        out += static_cast<char>(rng() & 0xFF);
    }
    return out;
}

// Prose-like filler: words of lower-case letters with spaces and JSON punctuation.
inline std::string random_text(std::mt19937_64& rng, std::size_t length)
{
    static constexpr std::string_view kCharacters = "abcdefghijklmnopqrstuvwxyz     ,.\":{}";
    std::string out;
    for (std::size_t i = 0; i < length; ++i) {
        out += kCharacters[rng() % kCharacters.size()];
    }
    return out;
}

}  // namespace codexvault::redact::testing
