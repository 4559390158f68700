#include "tests/tls/encodings.hpp"

#include <cstdint>

namespace egress_test {

std::string base64(std::string_view bytes, bool url)
{
    const char* alphabet = url ? "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
                               : "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    std::size_t i = 0;
    for (; i + 2 < bytes.size(); i += 3) {
        const std::uint32_t v = (std::uint32_t(std::uint8_t(bytes[i])) << 16) |
                                (std::uint32_t(std::uint8_t(bytes[i + 1])) << 8) | std::uint8_t(bytes[i + 2]);
        out += alphabet[(v >> 18) & 63];
        out += alphabet[(v >> 12) & 63];
        out += alphabet[(v >> 6) & 63];
        out += alphabet[v & 63];
    }
    const std::size_t left = bytes.size() - i;
    if (left > 0) {
        std::uint32_t v = std::uint32_t(std::uint8_t(bytes[i])) << 16;
        if (left == 2) {
            v |= std::uint32_t(std::uint8_t(bytes[i + 1])) << 8;
        }
        out += alphabet[(v >> 18) & 63];
        out += alphabet[(v >> 12) & 63];
        out += left == 2 ? alphabet[(v >> 6) & 63] : '=';
        out += '=';
    }
    return out;
}

std::string json_escape(std::string_view text)
{
    std::string out;
    for (char c : text) {
        switch (c) {
        case '"':
            out += "\\\"";
            break;
        case '\\':
            out += "\\\\";
            break;
        case '/':
            out += "\\/";
            break;
        default:
            out += c;
        }
    }
    return out;
}

std::string percent_encode(std::string_view text, bool lower_hex)
{
    const char* hex = lower_hex ? "0123456789abcdef" : "0123456789ABCDEF";
    std::string out;
    for (char c : text) {
        const auto b = static_cast<unsigned char>(c);
        if ((b >= 'A' && b <= 'Z') || (b >= 'a' && b <= 'z') || (b >= '0' && b <= '9') || b == '-' || b == '.' ||
            b == '_' || b == '~') {
            out += c;
        } else {
            out += '%';
            out += hex[b >> 4];
            out += hex[b & 15];
        }
    }
    return out;
}

std::vector<std::string> echo_forms(std::string_view secret)
{
    std::vector<std::string> forms{std::string(secret), json_escape(secret), percent_encode(secret, false),
                                   percent_encode(secret, true)};
    for (const bool url : {false, true}) {
        for (const std::string_view lead : {"", "x", "xy"}) {
            forms.push_back(base64(std::string(lead) + std::string(secret) + "tail", url));
        }
    }
    return forms;
}

std::vector<std::string> forbidden_fragments(std::string_view secret)
{
    std::vector<std::string> out{std::string(secret), json_escape(secret), percent_encode(secret, false),
                                 percent_encode(secret, true)};
    for (const bool url : {false, true}) {
        for (std::size_t lead = 0; lead < 3; ++lead) {
            const std::string encoded = base64(std::string(lead, 'x') + std::string(secret) + "tail", url);
            // Drop the characters that mix the lead and tail bytes in: 2 at each end is safe.
            out.push_back(encoded.substr(4, encoded.size() - 8 - 4));
        }
    }
    return out;
}

}  // namespace egress_test
