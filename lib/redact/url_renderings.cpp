// Percent-encoding as real URL encoders do it. They differ in which characters they leave
// literal, in hex case and in how a space is written, each consistently within one string, so
// every rendering is one combination of those three choices.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "lib/redact/encodings.hpp"
#include "lib/redact/wipe.hpp"

namespace codexvault::redact {

namespace {

bool is_alnum(std::uint8_t byte)
{
    return (byte >= '0' && byte <= '9') || (byte >= 'A' && byte <= 'Z') || (byte >= 'a' && byte <= 'z');
}

// Punctuation each encoder leaves literal on top of letters and digits.
constexpr std::string_view kLiteralSets[] = {
    "-._~",       // RFC 3986 unreserved (Go url.QueryEscape aside from space, Rust, curl)
    "-._~/",      // Python urllib.parse.quote (safe='/')
    "-._~!'()*",  // JavaScript encodeURIComponent
    "-._*",       // HTML form encoding (WHATWG, Java URLEncoder): '~' is escaped
};

std::string render(std::span<const std::uint8_t> value, std::string_view literal, bool upper, bool plus_for_space)
{
    const char* digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
    std::string out;
    out.reserve(value.size() * 3);
    for (const std::uint8_t byte : value) {
        if (byte == ' ' && plus_for_space) {
            out += '+';
        } else if (is_alnum(byte) || literal.find(static_cast<char>(byte)) != std::string_view::npos) {
            out += static_cast<char>(byte);
        } else {
            out += '%';
            out += digits[byte >> 4];
            out += digits[byte & 0xFu];
        }
    }
    return out;
}

}  // namespace

std::vector<std::string> url_renderings(std::span<const std::uint8_t> value)
{
    const bool has_space = std::find(value.begin(), value.end(), std::uint8_t{' '}) != value.end();
    std::vector<std::string> out;
    out.reserve(std::size(kLiteralSets) * 4);  // every combination at most: never reallocated
    for (const std::string_view literal : kLiteralSets) {
        for (const bool upper : {true, false}) {
            for (const bool plus_for_space : {false, true}) {
                if (plus_for_space && !has_space) {
                    continue;
                }
                std::string rendering = render(value, literal, upper, plus_for_space);
                if (std::find(out.begin(), out.end(), rendering) == out.end()) {
                    out.push_back(std::move(rendering));
                }
                wipe(rendering);  // a duplicate, or the bytes a move leaves in a short string
            }
        }
    }
    return out;
}

}  // namespace codexvault::redact
