// SHA-256 of a caller's running executable, for exe_sha256 principals. The file is read through
// /proc/PID/exe, so it is the inode the process runs, not whatever the path names now. Digests
// are cached by inode and change time, so each binary is hashed once, not on every call.
#pragma once

#include <sys/stat.h>
#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>

namespace codexvault::identity {

class ExeDigestCache {
public:
    static constexpr std::size_t kMaxEntries = 256;
    // Larger executables are not hashed (the event loop must not stall): their digest is unknown
    // and exe_sha256 conditions fail closed.
    static constexpr std::uint64_t kMaxExecutableBytes = 512ULL * 1024 * 1024;

    // `exe_fd`: the executable opened read-only through the caller's /proc entry. nullopt when it
    // cannot be read, is too large, or is not the inode (`device`, `inode`) the caller's exe path
    // was read from (the process exec'd in between).
    std::optional<std::string> digest(int exe_fd, std::uint64_t device, std::uint64_t inode);
    // The digest already known for the executable whose stat (through /proc/PID/exe) is `file`,
    // or nullopt: then open it and call digest(). Saves the open, fstat and close of every call
    // from a program already hashed; the key is the same whichever way the stat was taken.
    [[nodiscard]] std::optional<std::string> cached(const struct stat& file) const;

private:
    struct Key {
        dev_t device;
        ino_t inode;
        off_t size;
        std::int64_t mtime_nsec;
        std::int64_t ctime_nsec;
        bool operator==(const Key&) const = default;
    };
    // nullopt for what is never hashed (not a regular file, or too large).
    static std::optional<Key> key_of(const struct stat& file);
    struct KeyHash {
        std::size_t operator()(const Key& key) const noexcept;
    };
    std::unordered_map<Key, std::string, KeyHash> cache_;
};

// Streams `fd` through SHA-256 (libsodium); nullopt on a read error.
std::optional<std::string> sha256_hex_of_file(int fd);

}  // namespace codexvault::identity
