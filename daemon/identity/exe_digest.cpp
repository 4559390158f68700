#include "daemon/identity/exe_digest.hpp"

#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <functional>

#include "common/bytes.hpp"

namespace codexvault::identity {

std::size_t ExeDigestCache::KeyHash::operator()(const Key& key) const noexcept
{
    std::size_t h = std::hash<std::uint64_t>{}(static_cast<std::uint64_t>(key.inode));
    h ^= std::hash<std::uint64_t>{}(static_cast<std::uint64_t>(key.device)) + 0x9e3779b97f4a7c15ULL + (h << 6) +
         (h >> 2);
    h ^= std::hash<std::int64_t>{}(key.ctime_nsec) + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
    return h;
}

std::optional<std::string> sha256_hex_of_file(int fd)
{
    crypto_hash_sha256_state state;
    crypto_hash_sha256_init(&state);
    std::array<std::uint8_t, 64 * 1024> buffer{};
    off_t offset = 0;
    for (;;) {
        const ssize_t n = ::pread(fd, buffer.data(), buffer.size(), offset);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return std::nullopt;
        }
        if (n == 0) {
            break;
        }
        crypto_hash_sha256_update(&state, buffer.data(), static_cast<unsigned long long>(n));
        offset += n;
    }
    std::array<std::uint8_t, crypto_hash_sha256_BYTES> digest{};
    crypto_hash_sha256_final(&state, digest.data());
    return bytes::to_hex(digest);
}

std::optional<ExeDigestCache::Key> ExeDigestCache::key_of(const struct stat& file)
{
    if (!S_ISREG(file.st_mode) || static_cast<std::uint64_t>(file.st_size) > kMaxExecutableBytes) {
        return std::nullopt;
    }
    return Key{file.st_dev, file.st_ino, file.st_size,
               static_cast<std::int64_t>(file.st_mtim.tv_sec) * 1'000'000'000 + file.st_mtim.tv_nsec,
               static_cast<std::int64_t>(file.st_ctim.tv_sec) * 1'000'000'000 + file.st_ctim.tv_nsec};
}

std::optional<std::string> ExeDigestCache::cached(const struct stat& file) const
{
    const auto key = key_of(file);
    if (!key) {
        return std::nullopt;
    }
    const auto it = cache_.find(*key);
    if (it == cache_.end()) {
        return std::nullopt;
    }
    return it->second;
}

std::optional<std::string> ExeDigestCache::digest(int exe_fd, std::uint64_t device, std::uint64_t inode)
{
    struct stat st {};
    if (::fstat(exe_fd, &st) != 0 || st.st_dev != device || st.st_ino != inode) {
        return std::nullopt;
    }
    const auto key = key_of(st);
    if (!key) {
        return std::nullopt;
    }
    if (auto it = cache_.find(*key); it != cache_.end()) {
        return it->second;
    }
    auto digest = sha256_hex_of_file(exe_fd);
    if (!digest) {
        return std::nullopt;
    }
    if (cache_.size() >= kMaxEntries) {
        cache_.clear();  // simple bound; binaries are few and rehashing one is cheap enough
    }
    cache_.emplace(*key, *digest);
    return digest;
}

}  // namespace codexvault::identity
