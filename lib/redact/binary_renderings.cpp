// Base64 fragments and hex: the encodings of arbitrary bytes, as opposed to the escaping of text.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "lib/redact/encodings.hpp"

namespace codexvault::redact {

std::string base64_fragment(std::span<const std::uint8_t> value, unsigned alignment, bool url)
{
    const char* alphabet = url ? "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
                               : "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    // Bit positions are counted from the start of the 3-byte group the value starts in; the
    // encoding's character c covers bits [6c, 6c + 6), and only characters whose six bits all
    // belong to the value are independent of the neighbouring bytes (and of padding).
    const std::size_t first_bit = 8 * std::size_t{alignment % 3};
    const std::size_t end_bit = first_bit + 8 * value.size();
    std::string out;
    out.reserve(value.size() * 4 / 3 + 1);
    for (std::size_t c = (first_bit + 5) / 6; 6 * c + 6 <= end_bit; ++c) {
        unsigned sextet = 0;
        for (std::size_t k = 0; k < 6; ++k) {
            const std::size_t bit = 6 * c + k - first_bit;
            sextet = (sextet << 1) | ((value[bit / 8] >> (7 - bit % 8)) & 1u);
        }
        out += alphabet[sextet];
    }
    return out;
}

std::string hex(std::span<const std::uint8_t> value, bool upper)
{
    const char* digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
    std::string out;
    out.reserve(value.size() * 2);
    for (const std::uint8_t byte : value) {
        out += digits[byte >> 4];
        out += digits[byte & 0xFu];
    }
    return out;
}

}  // namespace codexvault::redact
