// File-system primitives for the state folder: permission checks that name the offending path,
// and the one atomic-replace routine every persistent write goes through.
#pragma once

#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

#include "lib/fileio/unique_fd.hpp"

namespace codexvault::fileio {

// Throws std::runtime_error naming `path` unless it is a directory (resp. regular file, not a
// symlink) owned by the effective uid with no group or other permission bits.
void require_private_directory(const std::filesystem::path& path);
void require_private_file(const std::filesystem::path& path);
// The same checks as require_private_file() on an open descriptor: run after opening a path
// that passed require_private_file(), it closes the window in which the path could be swapped.
// `path` is only used in the message.
void require_private_file(int fd, const std::filesystem::path& path);

// Creates `path` (mode 0700) if missing, then require_private_directory(). Parents must exist.
void ensure_private_directory(const std::filesystem::path& path);

UniqueFd open_directory(const std::filesystem::path& path);

// temp file (O_EXCL, `mode`) in dir -> write -> fsync -> renameat over `name` -> fsync(dir).
// A crash at any point leaves either the old or the new content under `name`, never a mix.
// Temp files are named ".tmp.<name>.<random>"; remove_stale_temp_files() deletes leftovers.
// The file gets exactly `mode` (fchmod, so the umask cannot widen or narrow it). Failures throw
// std::system_error naming `name` (never the content), after unlinking the temp file.
void write_file_atomically(int dir_fd, const std::string& name, std::span<const std::uint8_t> bytes,
                           unsigned mode = 0600);
void remove_stale_temp_files(int dir_fd);

// The two halves of write_file_atomically(), for callers that must act between them.
// write_temp_file() returns the temp file's name once its content is durable (fsynced); on
// failure nothing is left behind. commit_temp_file() renames it over `name` and fsyncs the
// folder; with replace=false an existing `name` is kept and std::system_error(EEXIST) thrown
// (renameat2 RENAME_NOREPLACE). On failure the caller still owns (and must unlink) the temp file.
std::string write_temp_file(int dir_fd, const std::string& name, std::span<const std::uint8_t> bytes,
                            unsigned mode = 0600);
void commit_temp_file(int dir_fd, const std::string& temp_name, const std::string& name, bool replace = true);
// fsync() of a directory so that a rename or unlink in it survives a crash. `what` names the
// operation in the exception message.
void sync_directory(int dir_fd, const std::string& what);

// Names of the entries of the directory (without "." and ".."), unsorted.
std::vector<std::string> list_directory(int dir_fd);

// Writes all of `bytes` to fd, retrying on EINTR and short writes. Throws std::system_error
// naming `name` on an error or a write that makes no progress.
void write_all(int fd, std::span<const std::uint8_t> bytes, const std::string& name);

// Reads from fd until end of file or until `capacity` bytes are in `data`, retrying on EINTR;
// returns the byte count. Throws std::system_error naming `what` on a read error.
std::size_t read_until_eof(int fd, void* data, std::size_t capacity, const std::string& what);

// Reads a whole regular file relative to dir_fd (O_NOFOLLOW), at most max_bytes.
std::string read_small_file(int dir_fd, const std::string& name, std::size_t max_bytes);

}  // namespace codexvault::fileio
