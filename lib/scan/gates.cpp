#include "lib/scan/gates.hpp"

#include <array>
#include <cstddef>
#include <string_view>

namespace codexvault::scan {

namespace {

// PCRE2's \s without UCP.
bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

bool is_name_byte(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '.' ||
           c == '-';
}

// Skips at most `max` bytes for which keep(c) holds; returns where it stopped.
template <typename Keep>
std::size_t skip(std::string_view input, std::size_t at, std::size_t max, Keep keep)
{
    const std::size_t end = at + max < input.size() ? at + max : input.size();
    while (at < end && keep(input[at])) {
        ++at;
    }
    return at;
}

// `NAME = "`, `NAME: '`, `"NAME": "`, `NAME := "`, `NAME => '`, `NAME ||= "`: after the keyword
// the rest of a name ([\w.-], at most 32: the pattern allows 24 after its longest keyword
// spelling), an optional closing quote of a quoted key, at most 3 blanks, an operator that
// starts with = : or | (then at most 2 more of = > | :), at most 3 blanks, an opening quote.
bool gate_assignment(std::string_view input, std::size_t at)
{
    at = skip(input, at, 32, is_name_byte);
    if (at < input.size() && (input[at] == '"' || input[at] == '\'')) {
        ++at;
    }
    at = skip(input, at, 3, is_space);
    if (at >= input.size() || (input[at] != '=' && input[at] != ':' && input[at] != '|')) {
        return false;
    }
    at = skip(input, at + 1, 2, [](char c) { return c == '=' || c == '>' || c == '|' || c == ':'; });
    at = skip(input, at, 3, is_space);
    return at < input.size() && (input[at] == '"' || input[at] == '\'');
}

// `scheme://user:password@`: after "scheme://", at most 128 bytes of a user name, a colon, at
// most 256 bytes of a password, an at sign; neither part holds a blank, quote, slash, colon or
// at sign.
bool gate_userinfo(std::string_view input, std::size_t at)
{
    const auto part = [](char c) {
        return !is_space(c) && c != ':' && c != '@' && c != '/' && c != '"' && c != '\'';
    };
    at = skip(input, at, 128, part);
    if (at >= input.size() || input[at] != ':') {
        return false;
    }
    at = skip(input, at + 1, 256, part);
    return at < input.size() && input[at] == '@';
}

struct Named {
    std::string_view name;
    Gate gate;
};

constexpr std::array<Named, 2> kGates = {{
    {"assignment", gate_assignment},
    {"userinfo", gate_userinfo},
}};

constexpr std::array<std::string_view, kGates.size()> kNames = {"assignment", "userinfo"};

}  // namespace

Gate find_gate(std::string_view name) noexcept
{
    for (const auto& named : kGates) {
        if (named.name == name) {
            return named.gate;
        }
    }
    return nullptr;
}

std::span<const std::string_view> gate_names() noexcept
{
    return kNames;
}

}  // namespace codexvault::scan
