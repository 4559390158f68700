// What unit tests of file-handling code share: a private scratch folder per test (Criterion runs
// each test in its own process, so one global is enough), whole-file reads and writes, and checks
// on what a call threw. Header-only, no project includes, so any unit-test folder may use it.
#pragma once

#include <sys/stat.h>
#include <sys/types.h>

#include <criterion/criterion.h>

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

namespace codexvault::scratch {

using Bytes = std::vector<std::uint8_t>;

// This test's scratch folder, made by make_root() (a Criterion .init) and removed by remove_root().
inline std::filesystem::path g_root;

inline void make_root()
{
    char pattern[] = "/tmp/cv-unit-XXXXXX";
    cr_assert_not_null(::mkdtemp(pattern), "mkdtemp: %s", std::strerror(errno));
    g_root = pattern;
}

inline void remove_root()
{
    std::error_code ignored;
    std::filesystem::remove_all(g_root, ignored);
}

inline Bytes bytes_of(const std::string& text)
{
    return Bytes(text.begin(), text.end());
}

inline Bytes read_file(const std::filesystem::path& path)
{
    std::ifstream in(path, std::ios::binary);
    return Bytes(std::istreambuf_iterator<char>(in), {});
}

inline void write_file(const std::filesystem::path& path, const Bytes& content, mode_t mode = 0600)
{
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(content.data()), static_cast<std::streamsize>(content.size()));
    out.close();
    cr_assert(!out.fail(), "cannot write %s", path.c_str());
    cr_assert_eq(::chmod(path.c_str(), mode), 0);
}

// The message of the std::runtime_error (or subclass) a call threw; empty if none.
inline std::string runtime_error_of(const std::function<void()>& call)
{
    try {
        call();
    } catch (const std::runtime_error& error) {
        return error.what();
    }
    return {};
}

// cr_assert_str_eq() keeps the pointer past the temporary that owns it; compare std::strings.
inline void expect_text(const std::string& actual, const std::string& expected)
{
    cr_assert(actual == expected, "expected '%s', got '%s'", expected.c_str(), actual.c_str());
}

inline bool contains(const std::string& text, const std::string& part)
{
    return text.find(part) != std::string::npos;
}

// The names of the atomic writer's temporary files left in `dir`.
inline std::vector<std::string> temp_files_in(const std::filesystem::path& dir)
{
    std::vector<std::string> names;
    for (const auto& entry : std::filesystem::directory_iterator(dir)) {
        const std::string name = entry.path().filename().string();
        if (name.rfind(".tmp.", 0) == 0) {
            names.push_back(name);
        }
    }
    return names;
}

}  // namespace codexvault::scratch
