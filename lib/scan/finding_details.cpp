#include "lib/scan/finding_details.hpp"

#include <sodium.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace codexvault::scan {

namespace {

constexpr std::size_t kMaxPreviewBytes = 16;

// Newlines in [data, data + size), eight bytes at a time.
std::size_t count_newlines(const char* data, std::size_t size)
{
    constexpr std::uint64_t kOnes = 0x0101010101010101ULL;
    constexpr std::uint64_t kLow7 = 0x7F7F7F7F7F7F7F7FULL;
    std::size_t count = 0;
    std::size_t i = 0;
    for (; i + 8 <= size; i += 8) {
        std::uint64_t word = 0;
        std::memcpy(&word, data + i, sizeof word);
        const std::uint64_t x = word ^ (kOnes * '\n');  // zero bytes where there was a newline
        const std::uint64_t zero = ~(((x & kLow7) + kLow7) | x | kLow7);
        // One bit (the top one) per newline byte; summed by a multiply, since the baseline
        // x86-64 target has no popcnt instruction (__builtin_popcountll is a library call).
        count += static_cast<std::size_t>(((zero >> 7) * kOnes) >> 56);
    }
    for (; i < size; ++i) {
        count += data[i] == '\n' ? 1 : 0;
    }
    return count;
}

}  // namespace

std::string redacted_preview(std::string_view secret, std::size_t public_prefix)
{
    const std::size_t shown = std::min({public_prefix, kMaxPreviewBytes, secret.size() / 3});
    std::string out;
    for (std::size_t i = 0; i < shown; ++i) {
        const char c = secret[i];
        out.push_back(c >= 0x21 && c <= 0x7E ? c : '?');
    }
    out += "\xE2\x80\xA6(";  // U+2026 HORIZONTAL ELLIPSIS
    out += std::to_string(secret.size());
    out += ')';
    return out;
}

std::string keyed_fingerprint(std::string_view secret, std::span<const std::uint8_t, kFingerprintKeyBytes> key)
{
    static_assert(kFingerprintKeyBytes >= crypto_generichash_KEYBYTES_MIN &&
                  kFingerprintKeyBytes <= crypto_generichash_KEYBYTES_MAX);
    static_assert(kFingerprintBytes <= crypto_generichash_BYTES);
    std::array<unsigned char, crypto_generichash_BYTES> hash{};
    crypto_generichash(hash.data(), hash.size(), reinterpret_cast<const unsigned char*>(secret.data()), secret.size(),
                       key.data(), key.size());
    static constexpr char kHex[] = "0123456789abcdef";
    std::string out;
    out.reserve(2 * kFingerprintBytes);
    for (std::size_t i = 0; i < kFingerprintBytes; ++i) {
        out.push_back(kHex[hash[i] >> 4]);
        out.push_back(kHex[hash[i] & 15]);
    }
    return out;
}

void withhold_value(Finding& finding)
{
    finding.length = 0;
    finding.preview = std::string(kWithheldPreview);
    finding.entropy = 0.0;
    finding.fingerprint.clear();
}

std::pair<std::size_t, std::size_t> LinePositions::locate(std::size_t offset)
{
    offset = std::min(offset, text_.size());
    if (offset > pos_) {
        const std::string_view segment = text_.substr(pos_, offset - pos_);
        const std::size_t newlines = count_newlines(segment.data(), segment.size());
        if (newlines > 0) {
            line_ += newlines;
            line_start_ = pos_ + segment.rfind('\n') + 1;
        }
        pos_ = offset;
    }
    return {line_, offset - line_start_ + 1};
}

}  // namespace codexvault::scan
