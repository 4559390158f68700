#include "lib/scan/env_files.hpp"

#include <algorithm>
#include <array>
#include <cstddef>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

namespace codexvault::scan {

namespace {

constexpr std::size_t kMaxNameBytes = 256;

std::string lower_copy(std::string_view text)
{
    std::string out(text);
    for (char& c : out) {
        if (c >= 'A' && c <= 'Z') {
            c = static_cast<char>(c + 32);
        }
    }
    return out;
}

bool is_template_word(std::string_view word)
{
    constexpr std::array<std::string_view, 7> kWords = {"example", "sample", "template", "tmpl",
                                                        "tpl",     "dist",   "defaults"};
    return std::find(kWords.begin(), kWords.end(), word) != kWords.end();
}

bool is_name_start(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
}

bool is_name_char(char c)
{
    return is_name_start(c) || (c >= '0' && c <= '9') || c == '.';
}

bool is_blank(char c)
{
    return c == ' ' || c == '\t';
}

}  // namespace

EnvFileKind env_file_kind(std::string_view file_name) noexcept
{
    const auto slash = file_name.rfind('/');
    const std::string name = lower_copy(slash == std::string_view::npos ? file_name : file_name.substr(slash + 1));
    const std::string_view view = name;
    if (view == ".env" || view == ".envrc" || view == ".flaskenv" || view == ".dev.vars") {
        return EnvFileKind::Env;
    }
    if (view.starts_with(".env.") || view.starts_with(".env-")) {
        const std::string_view rest = view.substr(5);
        // ".env.example", ".env.local.example", ".env-sample"
        const auto dot = rest.rfind('.');
        const std::string_view last = dot == std::string_view::npos ? rest : rest.substr(dot + 1);
        return is_template_word(last) || is_template_word(rest) ? EnvFileKind::Template : EnvFileKind::Env;
    }
    if (view.size() > 4 && view.ends_with(".env")) {
        const std::string_view stem = view.substr(0, view.size() - 4);
        const auto dot = stem.rfind('.');
        const std::string_view last = dot == std::string_view::npos ? stem : stem.substr(dot + 1);
        return is_template_word(last) ? EnvFileKind::Template : EnvFileKind::Env;
    }
    // "config.env.example": an env file's template under another stem.
    const auto env_at = view.find(".env.");
    if (env_at != std::string_view::npos && is_template_word(view.substr(env_at + 5))) {
        return EnvFileKind::Template;
    }
    return EnvFileKind::NotEnv;
}

std::vector<std::string> env_file_variable_names(std::string_view content)
{
    std::vector<std::string> names;
    std::unordered_set<std::string_view> seen;
    std::size_t i = 0;
    const std::size_t size = content.size();
    const auto skip_to_line_end = [&] {
        while (i < size && content[i] != '\n') {
            ++i;
        }
    };
    while (i < size) {
        // Start of a line.
        while (i < size && is_blank(content[i])) {
            ++i;
        }
        if (content.substr(i, 7) == "export " || content.substr(i, 7) == "export\t") {
            i += 7;
            while (i < size && is_blank(content[i])) {
                ++i;
            }
        }
        if (i >= size || !is_name_start(content[i])) {
            skip_to_line_end();
            ++i;
            continue;
        }
        const std::size_t name_begin = i;
        while (i < size && is_name_char(content[i])) {
            ++i;
        }
        const std::string_view name = content.substr(name_begin, i - name_begin);
        while (i < size && is_blank(content[i])) {
            ++i;
        }
        if (i >= size || content[i] != '=') {
            skip_to_line_end();
            ++i;
            continue;
        }
        ++i;  // '='
        if (name.size() <= kMaxNameBytes && seen.insert(name).second) {
            names.emplace_back(name);
        }
        while (i < size && is_blank(content[i])) {
            ++i;
        }
        // Skip the value without looking at it beyond finding where it ends.
        if (i < size && (content[i] == '"' || content[i] == '\'' || content[i] == '`')) {
            const char quote = content[i++];
            bool closed = false;
            while (i < size) {
                if (quote == '"' && content[i] == '\\' && i + 1 < size) {
                    i += 2;
                    continue;
                }
                if (content[i++] == quote) {
                    closed = true;
                    break;
                }
            }
            if (!closed) {
                break;
            }
        }
        skip_to_line_end();
        ++i;
    }
    return names;
}

}  // namespace codexvault::scan
