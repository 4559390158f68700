// File and descriptor helpers of the state folder: permission checks that name the offending
// path, the atomic replace (exact mode, cleanup on failure, no-replace commit), stale temp files,
// and bounded reads that refuse symlinks.
#include <sys/stat.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

#include "lib/fileio/files.hpp"
#include "lib/fileio/unique_fd.hpp"
#include "tests/common/scratch_files.hpp"

namespace fs = std::filesystem;
namespace fileio = codexvault::fileio;
using codexvault::UniqueFd;

using namespace codexvault::scratch;

namespace {

}  // namespace

TestSuite(files, .init = make_root, .fini = remove_root);

Test(files, directory_checks_name_the_path)
{
    const fs::path dir = g_root / "state";
    cr_assert_eq(::mkdir(dir.c_str(), 0700), 0);
    fileio::require_private_directory(dir);  // passes

    cr_assert_eq(::chmod(dir.c_str(), 0750), 0);
    std::string message = runtime_error_of([&] { fileio::require_private_directory(dir); });
    expect_text(message.c_str(),
                ("state folder " + dir.string() + " is group- or world-accessible (mode 0750); expected 0700").c_str());

    const fs::path link = g_root / "link";
    fs::create_directory_symlink(dir, link);
    message = runtime_error_of([&] { fileio::require_private_directory(link); });
    cr_assert(contains(message, link.string()) && contains(message, "symbolic link"), "message was: %s",
              message.c_str());

    message = runtime_error_of([&] { fileio::require_private_directory(g_root / "missing"); });
    cr_assert(contains(message, (g_root / "missing").string()), "message was: %s", message.c_str());
}

Test(files, file_checks_name_the_path)
{
    const fs::path file = g_root / "f";
    write_file(file, bytes_of("x"), 0600);
    fileio::require_private_file(file);
    cr_assert_eq(::chmod(file.c_str(), 0604), 0);
    const std::string message = runtime_error_of([&] { fileio::require_private_file(file); });
    expect_text(message.c_str(),
                ("state file " + file.string() + " is group- or world-accessible (mode 0604); expected 0600").c_str());
    const std::string not_file = runtime_error_of([&] { fileio::require_private_file(g_root); });
    cr_assert(contains(not_file, "not a regular file"), "message was: %s", not_file.c_str());
}

Test(files, owner_must_be_the_effective_uid)
{
    if (::geteuid() != 0) {
        cr_skip_test("needs root: chown to another uid");
    }
    const fs::path dir = g_root / "owned";
    cr_assert_eq(::mkdir(dir.c_str(), 0700), 0);
    cr_assert_eq(::chown(dir.c_str(), 1000, 1000), 0);
    std::string message = runtime_error_of([&] { fileio::require_private_directory(dir); });
    expect_text(message.c_str(), ("state folder " + dir.string() + " is owned by uid 1000, expected 0").c_str());

    const fs::path file = g_root / "owned-file";
    write_file(file, bytes_of("x"), 0600);
    cr_assert_eq(::chown(file.c_str(), 1000, 1000), 0);
    message = runtime_error_of([&] { fileio::require_private_file(file); });
    expect_text(message.c_str(), ("state file " + file.string() + " is owned by uid 1000, expected 0").c_str());
}

Test(files, write_file_atomically_replaces_with_exact_mode)
{
    const UniqueFd dir = fileio::open_directory(g_root);
    fileio::write_file_atomically(dir.get(), "data", bytes_of("first"));
    const mode_t old_umask = ::umask(077);  // the mode must not depend on the caller's umask
    fileio::write_file_atomically(dir.get(), "data", bytes_of("second, longer"), 0640);
    ::umask(old_umask);
    cr_assert(read_file(g_root / "data") == bytes_of("second, longer"));
    struct stat st {};
    cr_assert_eq(::stat((g_root / "data").c_str(), &st), 0);
    cr_assert_eq(st.st_mode & 07777, 0640u);
    fileio::write_file_atomically(dir.get(), "data", bytes_of("third"));
    cr_assert_eq(::stat((g_root / "data").c_str(), &st), 0);
    cr_assert_eq(st.st_mode & 07777, 0600u);
    cr_assert(temp_files_in(g_root).empty());
    cr_assert_eq(fileio::read_small_file(dir.get(), "data", 64), "third");
}

Test(files, write_failure_cleans_up_and_names_the_file)
{
    const UniqueFd dir = fileio::open_directory(g_root);
    fs::create_directory(g_root / "target");  // rename over a directory fails with EISDIR
    const Bytes content = bytes_of("content-that-must-not-appear");
    std::string message;
    try {
        fileio::write_file_atomically(dir.get(), "target", content);
    } catch (const std::system_error& error) {
        message = error.what();
    }
    cr_assert(contains(message, "target"), "message was: %s", message.c_str());
    cr_assert_not(contains(message, "content-that"), "the message carries file content");
    cr_assert(temp_files_in(g_root).empty(), "the temp file was left behind");

    bool refused = false;
    try {
        fileio::write_file_atomically(dir.get(), "../escape", content);
    } catch (const std::invalid_argument&) {
        refused = true;
    }
    cr_assert(refused, "a name with a slash was accepted");
}

Test(files, no_replace_commit_keeps_the_existing_file)
{
    const UniqueFd dir = fileio::open_directory(g_root);
    fileio::write_file_atomically(dir.get(), "keep", bytes_of("original"));
    const std::string temp = fileio::write_temp_file(dir.get(), "keep", bytes_of("intruder"));
    bool exists = false;
    try {
        fileio::commit_temp_file(dir.get(), temp, "keep", /*replace=*/false);
    } catch (const std::system_error& error) {
        exists = error.code() == std::errc::file_exists;
    }
    cr_assert(exists);
    cr_assert(read_file(g_root / "keep") == bytes_of("original"));
}

Test(files, stale_temp_files_are_removed_and_nothing_else)
{
    const UniqueFd dir = fileio::open_directory(g_root);
    write_file(g_root / ".tmp.x.secret.0011223344556677", bytes_of("stale"));
    write_file(g_root / ".tmp.other", bytes_of("stale"));
    write_file(g_root / "x.secret", bytes_of("keep"));
    write_file(g_root / ".hidden", bytes_of("keep"));
    fs::create_directory(g_root / ".tmp.dir");
    fileio::remove_stale_temp_files(dir.get());
    cr_assert_not(fs::exists(g_root / ".tmp.x.secret.0011223344556677"));
    cr_assert_not(fs::exists(g_root / ".tmp.other"));
    cr_assert(fs::exists(g_root / "x.secret"));
    cr_assert(fs::exists(g_root / ".hidden"));
    cr_assert(fs::exists(g_root / ".tmp.dir"));
}

Test(files, read_small_file_enforces_its_limit_and_refuses_symlinks)
{
    const UniqueFd dir = fileio::open_directory(g_root);
    write_file(g_root / "small", bytes_of("12345"));
    cr_assert_eq(fileio::read_small_file(dir.get(), "small", 5), "12345");
    cr_assert(contains(runtime_error_of([&] { (void)fileio::read_small_file(dir.get(), "small", 4); }), "small"));
    fs::create_symlink(g_root / "small", g_root / "link");
    cr_assert_not(runtime_error_of([&] { (void)fileio::read_small_file(dir.get(), "link", 64); }).empty());
}
