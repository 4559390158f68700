// Byte encodings both sides of the bus agree on: lowercase hex (the enrolled key is signed in
// this form) and little-endian u16/u32/u64 (every on-disk and signed format: audit frames,
// segment headers and the head file, sealed secrets, the founder key file, founder proofs).
#pragma once

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace codexvault::bytes {

inline std::string to_hex(std::span<const std::uint8_t> data)
{
    static constexpr char kDigits[] = "0123456789abcdef";
    std::string out;
    out.reserve(data.size() * 2);
    for (const std::uint8_t byte : data) {
        out += kDigits[byte >> 4];
        out += kDigits[byte & 0xf];
    }
    return out;
}

// Accepts either case; nullopt for an odd length or a non-hex character.
inline std::optional<std::vector<std::uint8_t>> from_hex(std::string_view text)
{
    if (text.size() % 2 != 0) {
        return std::nullopt;
    }
    const auto nibble = [](char c) -> int {
        if (c >= '0' && c <= '9') {
            return c - '0';
        }
        if (c >= 'a' && c <= 'f') {
            return c - 'a' + 10;
        }
        if (c >= 'A' && c <= 'F') {
            return c - 'A' + 10;
        }
        return -1;
    };
    std::vector<std::uint8_t> out;
    out.reserve(text.size() / 2);
    for (std::size_t i = 0; i < text.size(); i += 2) {
        const int high = nibble(text[i]);
        const int low = nibble(text[i + 1]);
        if (high < 0 || low < 0) {
            return std::nullopt;
        }
        out.push_back(static_cast<std::uint8_t>((high << 4) | low));
    }
    return out;
}

// ---- little-endian integers ----------------------------------------------------------------------
// The one set of helpers for fixed-width little-endian fields. Only u16, u32 and u64 are
// accepted, so every call states the field's width (append_le<std::uint64_t>(out, s.size())).

template <typename T>
concept LeWord = std::same_as<T, std::uint16_t> || std::same_as<T, std::uint32_t> || std::same_as<T, std::uint64_t>;

// Writes sizeof(T) bytes at out.
template <LeWord T>
constexpr void put_le(std::uint8_t* out, T value) noexcept
{
    for (std::size_t i = 0; i < sizeof(T); ++i) {
        out[i] = static_cast<std::uint8_t>(value >> (8 * i));
    }
}

// Reads sizeof(T) bytes at in; the caller has checked that they are there.
template <LeWord T>
constexpr T get_le(const std::uint8_t* in) noexcept
{
    T value = 0;
    for (std::size_t i = 0; i < sizeof(T); ++i) {
        value = static_cast<T>(value | static_cast<T>(static_cast<T>(in[i]) << (8 * i)));
    }
    return value;
}

// Appends sizeof(T) bytes to out.
template <LeWord T>
constexpr void append_le(std::vector<std::uint8_t>& out, T value)
{
    std::uint8_t encoded[sizeof(T)] = {};
    put_le(encoded, value);
    out.insert(out.end(), encoded, encoded + sizeof(T));
}

// The byte order, pinned at compile time for every file that includes this header.
static_assert([] {
    std::uint8_t b[8] = {};
    put_le<std::uint64_t>(b, 0x0807060504030201ULL);
    return b[0] == 0x01 && b[1] == 0x02 && b[7] == 0x08 && get_le<std::uint64_t>(b) == 0x0807060504030201ULL &&
           get_le<std::uint32_t>(b) == 0x04030201U && get_le<std::uint16_t>(b) == 0x0201U;
}());
static_assert([] {
    std::uint8_t b[4] = {};
    put_le<std::uint32_t>(b, 0xfffffffeU);
    put_le<std::uint16_t>(b, 0xabcdU);
    return b[0] == 0xcd && b[1] == 0xab && b[2] == 0xff && b[3] == 0xff;
}());
static_assert([] {
    std::vector<std::uint8_t> out{0x99};
    append_le<std::uint32_t>(out, 0x11223344U);
    append_le<std::uint16_t>(out, 0x5566U);
    return out == std::vector<std::uint8_t>{0x99, 0x44, 0x33, 0x22, 0x11, 0x66, 0x55};
}());

}  // namespace codexvault::bytes
