// Whole-string encoders written for the tests, independently of lib/redact/encodings.hpp, in the
// plainest way: the redactor must find what these produce, so they must not share its bugs.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>

namespace codexvault::redact::testing {

inline std::string base64(std::string_view bytes, bool url, bool pad)
{
    const std::string alphabet =
        std::string("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789") + (url ? "-_" : "+/");
    std::string out;
    std::size_t i = 0;
    for (; i + 3 <= bytes.size(); i += 3) {
        const std::uint32_t group = (std::uint32_t{static_cast<std::uint8_t>(bytes[i])} << 16) |
                                    (std::uint32_t{static_cast<std::uint8_t>(bytes[i + 1])} << 8) |
                                    static_cast<std::uint8_t>(bytes[i + 2]);
        out += alphabet[(group >> 18) & 63];
        out += alphabet[(group >> 12) & 63];
        out += alphabet[(group >> 6) & 63];
        out += alphabet[group & 63];
    }
    const std::size_t rest = bytes.size() - i;
    if (rest != 0) {
        std::uint32_t group = std::uint32_t{static_cast<std::uint8_t>(bytes[i])} << 16;
        if (rest == 2) {
            group |= std::uint32_t{static_cast<std::uint8_t>(bytes[i + 1])} << 8;
        }
        out += alphabet[(group >> 18) & 63];
        out += alphabet[(group >> 12) & 63];
        if (rest == 2) {
            out += alphabet[(group >> 6) & 63];
        }
        if (pad) {
            out += rest == 1 ? "==" : "=";
        }
    }
    return out;
}

// Every byte but A-Z a-z 0-9 - . _ ~ as %XX; a space as '+' when asked.
inline std::string percent_encode(std::string_view bytes, bool upper, bool plus_for_space)
{
    std::string out;
    for (const char c : bytes) {
        const auto b = static_cast<std::uint8_t>(c);
        const bool unreserved = (b >= 'A' && b <= 'Z') || (b >= 'a' && b <= 'z') || (b >= '0' && b <= '9') ||
                                b == '-' || b == '.' || b == '_' || b == '~';
        if (b == ' ' && plus_for_space) {
            out += '+';
        } else if (unreserved) {
            out += c;
        } else {
            char escaped[4];
            std::snprintf(escaped, sizeof escaped, upper ? "%%%02X" : "%%%02x", b);
            out += escaped;
        }
    }
    return out;
}

// JSON string body as Python's json.dumps writes it: ensure_ascii decides whether non-ASCII
// (given as valid UTF-8) is written as \u escapes; PHP's "\/" on request.
inline std::string json_escape(std::string_view text, bool ensure_ascii, bool escape_slash)
{
    std::string out;
    for (std::size_t i = 0; i < text.size(); ++i) {
        const auto b = static_cast<std::uint8_t>(text[i]);
        char escaped[16];
        if (b == '"') {
            out += "\\\"";
        } else if (b == '\\') {
            out += "\\\\";
        } else if (b == '/' && escape_slash) {
            out += "\\/";
        } else if (b == '\n') {
            out += "\\n";
        } else if (b == '\r') {
            out += "\\r";
        } else if (b == '\t') {
            out += "\\t";
        } else if (b == '\b') {
            out += "\\b";
        } else if (b == '\f') {
            out += "\\f";
        } else if (b < 0x20) {
            std::snprintf(escaped, sizeof escaped, "\\u%04x", b);
            out += escaped;
        } else if (b >= 0x80 && ensure_ascii) {
            // Two- and three-byte sequences are all the tests use.
            std::uint32_t code_point = 0;
            if (b < 0xE0) {
                code_point = ((b & 0x1Fu) << 6) | (static_cast<std::uint8_t>(text[i + 1]) & 0x3Fu);
                i += 1;
            } else {
                code_point = ((b & 0x0Fu) << 12) | ((static_cast<std::uint8_t>(text[i + 1]) & 0x3Fu) << 6) |
                             (static_cast<std::uint8_t>(text[i + 2]) & 0x3Fu);
                i += 2;
            }
            std::snprintf(escaped, sizeof escaped, "\\u%04x", static_cast<unsigned>(code_point));
            out += escaped;
        } else {
            out += static_cast<char>(b);
        }
    }
    return out;
}

inline std::string hex_encode(std::string_view bytes, bool upper)
{
    std::string out;
    for (const char c : bytes) {
        char escaped[3];
        std::snprintf(escaped, sizeof escaped, upper ? "%02X" : "%02x", static_cast<std::uint8_t>(c));
        out += escaped;
    }
    return out;
}

}  // namespace codexvault::redact::testing
