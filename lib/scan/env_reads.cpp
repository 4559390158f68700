#include "lib/scan/env_reads.hpp"

#include <hs/hs.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <new>
#include <string>
#include <string_view>
#include <unordered_set>
#include <utility>
#include <vector>

#include "lib/scan/hs_handles.hpp"

namespace codexvault::scan {

namespace {

constexpr std::size_t kMaxNameBytes = 128;

enum class Form : std::uint8_t {
    Literal,       // marker, then a quoted name: getenv("X")
    UpperLiteral,  // the same, but only upper-case names count (generic spellings such as env('X'))
    Member,        // marker, then an identifier: process.env.X
};

struct Marker {
    std::string_view text;
    Form form;
};

constexpr std::array<Marker, 19> kMarkers = {{
    {"environ[", Form::Literal},
    {"environ.get(", Form::Literal},
    {"getenv(", Form::Literal},
    {"secure_getenv(", Form::Literal},
    {"Getenv(", Form::Literal},
    {"LookupEnv(", Form::Literal},
    {"env::var(", Form::Literal},
    {"env::var_os(", Form::Literal},
    {"ENV[", Form::Literal},
    {"ENV.fetch(", Form::Literal},
    {"process.env[", Form::Literal},
    {"env.get(", Form::Literal},  // Deno.env.get
    {"GetEnvironmentVariable(", Form::Literal},
    {"$_ENV[", Form::Literal},
    {"$_SERVER[", Form::UpperLiteral},
    {"env(", Form::UpperLiteral},
    {"process.env.", Form::Member},
    {"process.env?.", Form::Member},
    {"import.meta.env.", Form::Member},
}};

bool is_ident_start(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
}

bool is_ident(char c)
{
    return is_ident_start(c) || (c >= '0' && c <= '9');
}

// The marker must not continue an identifier ("my_getenv(", "MY_ENV["): the byte before it is
// not an identifier byte (nor '$', so "$ENV[" in shell-like text is not Ruby's ENV).
bool starts_token(std::string_view source, std::size_t at, std::string_view marker)
{
    if (at == 0 || !is_ident(marker.front())) {
        return true;
    }
    const char before = source[at - 1];
    return !is_ident(before) && before != '$';
}

std::string_view identifier_at(std::string_view source, std::size_t i)
{
    if (i >= source.size() || !is_ident_start(source[i])) {
        return {};
    }
    std::size_t end = i;
    while (end < source.size() && is_ident(source[end]) && end - i <= kMaxNameBytes) {
        ++end;
    }
    if (end - i > kMaxNameBytes) {
        return {};
    }
    return source.substr(i, end - i);
}

// A quoted name right after the marker (blanks allowed before it), closed by the same quote.
std::string_view literal_at(std::string_view source, std::size_t i)
{
    while (i < source.size() && (source[i] == ' ' || source[i] == '\t')) {
        ++i;
    }
    if (i >= source.size() || (source[i] != '"' && source[i] != '\'' && source[i] != '`')) {
        return {};
    }
    const char quote = source[i];
    const std::string_view name = identifier_at(source, i + 1);
    const std::size_t close = i + 1 + name.size();
    if (name.empty() || close >= source.size() || source[close] != quote) {
        return {};
    }
    return name;
}

bool is_upper_name(std::string_view name)
{
    return std::all_of(name.begin(), name.end(),
                       [](char c) { return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_'; });
}

// All markers in one Vectorscan literal database, so the source is read once instead of once
// per marker (find() per marker was most of an ingest scan's time). Built on first use; the
// database is immutable and shared, the scratch is per thread.
const hs_database_t* marker_database()
{
    static const HsDatabase database = [] {
        static constexpr char kHex[] = "0123456789abcdef";
        std::vector<std::string> escaped;
        std::vector<unsigned> flags(kMarkers.size(), 0);
        std::vector<unsigned> ids;
        for (std::size_t i = 0; i < kMarkers.size(); ++i) {
            std::string out;
            for (const char c : kMarkers[i].text) {
                const auto byte = static_cast<unsigned char>(c);
                out += "\\x";
                out.push_back(kHex[byte >> 4]);
                out.push_back(kHex[byte & 15]);
            }
            escaped.push_back(std::move(out));
            ids.push_back(static_cast<unsigned>(i));
        }
        std::vector<const char*> pointers;
        pointers.reserve(escaped.size());
        for (const auto& text : escaped) {
            pointers.push_back(text.c_str());
        }
        hs_database_t* raw = nullptr;
        hs_compile_error_t* error = nullptr;
        if (hs_compile_multi(pointers.data(), flags.data(), ids.data(), static_cast<unsigned>(pointers.size()),
                             HS_MODE_BLOCK, nullptr, &raw, &error) != HS_SUCCESS) {
            hs_free_compile_error(error);
            throw std::bad_alloc();  // fixed literals: only resources can make this fail
        }
        return HsDatabase(raw);
    }();
    return database.get();
}

struct Scan {
    std::string_view source;
    std::vector<std::pair<std::size_t, std::string_view>>* found;
};

int on_marker(unsigned int id, unsigned long long /*from*/, unsigned long long to, unsigned int /*flags*/,
              void* context)
{
    auto& scan = *static_cast<Scan*>(context);
    const auto after = static_cast<std::size_t>(to);
    const std::string_view name = env_read_at(scan.source, id, after);
    if (!name.empty()) {
        scan.found->emplace_back(after - kMarkers[id].text.size(), name);
    }
    return 0;
}

}  // namespace

std::size_t env_read_marker_count() noexcept
{
    return kMarkers.size();
}

std::string_view env_read_marker(std::size_t marker) noexcept
{
    return marker < kMarkers.size() ? kMarkers[marker].text : std::string_view();
}

std::string_view env_read_at(std::string_view source, std::size_t index, std::size_t end)
{
    if (index >= kMarkers.size() || end > source.size() || end < kMarkers[index].text.size()) {
        return {};
    }
    const Marker& marker = kMarkers[index];
    const std::size_t at = end - marker.text.size();
    if (!starts_token(source, at, marker.text)) {
        return {};
    }
    const std::string_view name = marker.form == Form::Member ? identifier_at(source, end) : literal_at(source, end);
    if (name.empty() || (marker.form == Form::UpperLiteral && !is_upper_name(name))) {
        return {};
    }
    return name;
}

std::vector<std::string> env_var_reads(std::string_view source)
{
    std::vector<std::pair<std::size_t, std::string_view>> found;
    const hs_database_t* database = marker_database();
    thread_local HsScratch scratch = [database] {
        hs_scratch_t* raw = nullptr;
        if (hs_alloc_scratch(database, &raw) != HS_SUCCESS) {
            throw std::bad_alloc();
        }
        return HsScratch(raw);
    }();
    Scan scan{source, &found};
    // Vectorscan takes at most 4 GiB - 1 bytes; the caller's files are far smaller.
    const auto length = static_cast<unsigned int>(std::min<std::size_t>(source.size(), 0xFFFFFFFFu));
    if (hs_scan(database, source.empty() ? "" : source.data(), length, 0, scratch.get(), on_marker, &scan) !=
        HS_SUCCESS) {
        throw std::bad_alloc();  // only a scratch or memory failure can stop a literal scan
    }
    std::sort(found.begin(), found.end());
    std::vector<std::string> names;
    std::unordered_set<std::string_view> seen;
    for (const auto& [at, name] : found) {
        if (seen.insert(name).second) {
            names.emplace_back(name);
        }
    }
    return names;
}

}  // namespace codexvault::scan
