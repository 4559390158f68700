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

// The first byte of an unquoted value: not a quote, a blank, a sigil or bracket that starts an
// expression, interpolation, YAML alias, tag or block ($x, ${x}, f(x), [x], <x>, *x, &x, !x, |, >,
// %(x)s, @x), nor a separator.
bool starts_bare_value(char c)
{
    return !is_space(c) && std::string_view("\"'`\\$(){}[]<>;,*&!|%@#=").find(c) == std::string_view::npos;
}

// A byte inside an unquoted value: & and | end it too (a query string's next parameter,
// `true|false` alternatives in a comment).
bool in_bare_value(char c)
{
    return !is_space(c) && std::string_view("\"'`\\$(){}[]<>;,&|").find(c) == std::string_view::npos;
}

// `NAME = "`, `NAME: '`, `"NAME": "`, `NAME := "`, `NAME => '`, `NAME ||= "`: after the keyword
// the rest of a name ([\w.-], at most 32: the pattern allows 24 after its longest keyword
// spelling), an optional closing quote of a quoted key, at most 3 blanks, an operator that
// starts with = : or | (then at most 2 more of = > | :), then either at most 3 blanks and an
// opening quote, or (`password: hX8...`, `export TOKEN=hX8...`) at most 3 spaces or tabs and an
// unquoted value of 8 to 200 bytes that ends the line, before blanks or a ` #` comment.
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
    const std::size_t operator_end = at;
    at = skip(input, at, 3, is_space);
    if (at < input.size() && (input[at] == '"' || input[at] == '\'')) {
        return true;
    }
    at = skip(input, operator_end, 3, [](char c) { return c == ' ' || c == '\t'; });
    if (at >= input.size() || !starts_bare_value(input[at])) {
        return false;
    }
    const std::size_t value_end = skip(input, at, 201, in_bare_value);
    if (value_end - at < 8 || value_end - at > 200) {
        return false;
    }
    at = skip(input, value_end, input.size() - value_end, [](char c) { return c == ' ' || c == '\t'; });
    return at >= input.size() || input[at] == '\n' || input[at] == '\r' || (input[at] == '#' && at > value_end);
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
