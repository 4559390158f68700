// JSON string escaping as real encoders do it. Encoders disagree on a handful of characters, but
// each is consistent within one string, so every rendering is one combination of five choices;
// a choice is only varied when the value holds a character it affects, so a plain ASCII token
// has exactly one rendering.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "lib/redact/encodings.hpp"
#include "lib/redact/wipe.hpp"

namespace codexvault::redact {

namespace {

struct JsonStyle {
    bool escape_slash = false;      // PHP: "\/"
    bool escape_non_ascii = false;  // Python ensure_ascii, PHP: \uXXXX (surrogate pairs above the BMP)
    bool html_safe = false;         // Go: < > & U+2028 U+2029 as \u escapes
    bool upper_hex = false;         // Jackson and others: \u001F rather than \u001f
    bool short_bf = true;           // \b \f (most) or \u0008 \u000c (Go)
};

// Length of the valid UTF-8 sequence starting at value[i] and its code point, or 0 if the bytes
// there are not valid UTF-8 (overlong forms, surrogates and values above U+10FFFF included).
std::size_t utf8_sequence(std::span<const std::uint8_t> value, std::size_t i, std::uint32_t& code_point)
{
    const std::uint8_t lead = value[i];
    std::size_t length = 0;
    std::uint32_t minimum = 0;
    if (lead >= 0xC2 && lead <= 0xDF) {
        length = 2;
        minimum = 0x80;
        code_point = lead & 0x1Fu;
    } else if (lead >= 0xE0 && lead <= 0xEF) {
        length = 3;
        minimum = 0x800;
        code_point = lead & 0x0Fu;
    } else if (lead >= 0xF0 && lead <= 0xF4) {
        length = 4;
        minimum = 0x10000;
        code_point = lead & 0x07u;
    } else {
        return 0;
    }
    if (i + length > value.size()) {
        return 0;
    }
    for (std::size_t k = 1; k < length; ++k) {
        const std::uint8_t next = value[i + k];
        if ((next & 0xC0u) != 0x80u) {
            return 0;
        }
        code_point = (code_point << 6) | (next & 0x3Fu);
    }
    if (code_point < minimum || code_point > 0x10FFFF || (code_point >= 0xD800 && code_point <= 0xDFFF)) {
        return 0;
    }
    return length;
}

bool is_valid_utf8(std::span<const std::uint8_t> value)
{
    for (std::size_t i = 0; i < value.size();) {
        if (value[i] < 0x80) {
            ++i;
            continue;
        }
        std::uint32_t code_point = 0;
        const std::size_t length = utf8_sequence(value, i, code_point);
        if (length == 0) {
            return false;
        }
        i += length;
    }
    return true;
}

void append_unit(std::string& out, std::uint32_t unit, bool upper)
{
    const char* digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
    out += "\\u";
    for (int shift = 12; shift >= 0; shift -= 4) {
        out += digits[(unit >> shift) & 0xFu];
    }
}

void append_code_point(std::string& out, std::uint32_t code_point, bool upper)
{
    if (code_point > 0xFFFF) {
        const std::uint32_t offset = code_point - 0x10000;
        append_unit(out, 0xD800 + (offset >> 10), upper);
        append_unit(out, 0xDC00 + (offset & 0x3FFu), upper);
        return;
    }
    append_unit(out, code_point, upper);
}

void append_ascii(std::string& out, std::uint8_t byte, const JsonStyle& style)
{
    switch (byte) {
    case '"':
        out += "\\\"";
        return;
    case '\\':
        out += "\\\\";
        return;
    case '\n':
        out += "\\n";
        return;
    case '\r':
        out += "\\r";
        return;
    case '\t':
        out += "\\t";
        return;
    case '/':
        out += style.escape_slash ? "\\/" : "/";
        return;
    case '\b':
        if (style.short_bf) {
            out += "\\b";
            return;
        }
        break;
    case '\f':
        if (style.short_bf) {
            out += "\\f";
            return;
        }
        break;
    case '<':
    case '>':
    case '&':
        if (style.html_safe) {
            append_unit(out, byte, style.upper_hex);
            return;
        }
        break;
    default:
        break;
    }
    if (byte < 0x20) {
        append_unit(out, byte, style.upper_hex);
        return;
    }
    out += static_cast<char>(byte);
}

std::string render(std::span<const std::uint8_t> value, const JsonStyle& style, bool valid_utf8)
{
    std::string out;
    // The longest escape (\u00XX) is 6 bytes per byte: sized once, so appending never
    // reallocates and leaves a partial copy of the value in freed memory.
    out.reserve(6 * value.size());
    for (std::size_t i = 0; i < value.size();) {
        const std::uint8_t byte = value[i];
        if (byte < 0x80) {
            append_ascii(out, byte, style);
            ++i;
            continue;
        }
        std::uint32_t code_point = 0;
        const std::size_t length = valid_utf8 ? utf8_sequence(value, i, code_point) : 0;
        if (length == 0) {
            out += static_cast<char>(byte);
            ++i;
            continue;
        }
        if (style.escape_non_ascii || (style.html_safe && (code_point == 0x2028 || code_point == 0x2029))) {
            append_code_point(out, code_point, style.upper_hex);
        } else {
            out.append(reinterpret_cast<const char*>(value.data() + i), length);
        }
        i += length;
    }
    return out;
}

}  // namespace

std::vector<std::string> json_renderings(std::span<const std::uint8_t> value)
{
    const bool valid_utf8 = is_valid_utf8(value);
    const auto has = [&](auto predicate) {
        return std::any_of(value.begin(), value.end(), predicate);
    };
    const bool has_slash = has([](std::uint8_t b) { return b == '/'; });
    const bool has_non_ascii = valid_utf8 && has([](std::uint8_t b) { return b >= 0x80; });
    const bool has_html = has([](std::uint8_t b) { return b == '<' || b == '>' || b == '&'; }) ||
                          (valid_utf8 && has([](std::uint8_t b) { return b == 0xE2; }));
    const bool has_bf = has([](std::uint8_t b) { return b == '\b' || b == '\f'; });
    const bool has_control = has([](std::uint8_t b) { return b < 0x20 && b != '\n' && b != '\r' && b != '\t'; });
    const bool has_hex_escape = has_control || has_non_ascii || has_html;

    std::vector<std::string> out;
    out.reserve(32);  // one per choice at most: no reallocation moves (and leaves) a rendering
    // Bit k of `choice` flips choice k away from the minimal escaping; choice 0 comes first.
    for (unsigned choice = 0; choice < 32; ++choice) {
        const auto flips = [&](unsigned bit, bool relevant) {
            return (choice & (1u << bit)) != 0 && relevant;
        };
        const auto skipped = [&](unsigned bit, bool relevant) {
            return (choice & (1u << bit)) != 0 && !relevant;
        };
        if (skipped(0, has_slash) || skipped(1, has_non_ascii) || skipped(2, has_html) || skipped(3, has_hex_escape) ||
            skipped(4, has_bf)) {
            continue;
        }
        JsonStyle style;
        style.escape_slash = flips(0, has_slash);
        style.escape_non_ascii = flips(1, has_non_ascii);
        style.html_safe = flips(2, has_html);
        style.upper_hex = flips(3, has_hex_escape);
        style.short_bf = !flips(4, has_bf);
        std::string rendering = render(value, style, valid_utf8);
        if (std::find(out.begin(), out.end(), rendering) == out.end()) {
            out.push_back(std::move(rendering));
        }
        wipe(rendering);  // a duplicate, or the bytes a move leaves in a short string
    }
    return out;
}

}  // namespace codexvault::redact
