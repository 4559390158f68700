#include "daemon/pipeline/request_body.hpp"

#include <fcntl.h>
#include <sodium.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <optional>
#include <system_error>
#include <vector>

#include "common/bytes.hpp"
#include "common/vault_error.hpp"
#include "daemon/pipeline/value_input.hpp"

namespace codexvault::daemon {
namespace {

constexpr std::size_t kChunk = 64 * 1024;
constexpr unsigned kFullSeals = F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK;

[[noreturn]] void refuse(const std::string& why)
{
    throw VaultError(ErrorCode::InvalidArgument, "request body: " + why);
}

[[noreturn]] void refuse_errno(const std::string& why, int error)
{
    refuse(why + ": " + std::strerror(error));
}

std::string hex_of(crypto_hash_sha256_state& state)
{
    std::array<std::uint8_t, crypto_hash_sha256_BYTES> digest{};
    crypto_hash_sha256_final(&state, digest.data());
    return bytes::to_hex(digest);
}

// Puts the caller's file status flags back (a pipe's are shared with the caller's copy).
struct RestoreFlags {
    int fd;
    int flags;
    ~RestoreFlags() { (void)::fcntl(fd, F_SETFL, flags); }
};

void write_all(int fd, const std::uint8_t* data, std::size_t size)
{
    while (size > 0) {
        const ssize_t n = ::write(fd, data, size);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            throw std::system_error(errno, std::generic_category(), "write the request body copy");
        }
        data += n;
        size -= static_cast<std::size_t>(n);
    }
}

}  // namespace

RequestBody no_request_body()
{
    RequestBody body;
    crypto_hash_sha256_state state;
    crypto_hash_sha256_init(&state);
    body.sha256_hex = hex_of(state);
    return body;
}

RequestBody take_request_body(int fd)
{
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
        refuse_errno("cannot inspect the descriptor", errno);
    }
    std::int64_t filesystem_type = 0;
    if (S_ISREG(st.st_mode)) {
        struct statfs fs {};
        if (::fstatfs(fd, &fs) != 0) {
            refuse_errno("cannot inspect the descriptor's file system", errno);
        }
        filesystem_type = static_cast<std::int64_t>(fs.f_type);
    }
    if (const auto refusal = value_descriptor_refusal(st.st_mode, filesystem_type)) {
        refuse(*refusal);
    }
    const int flags = ::fcntl(fd, F_GETFL);
    if (flags < 0) {
        refuse_errno("cannot inspect the descriptor", errno);
    }
    if ((flags & O_PATH) != 0 || (flags & O_ACCMODE) == O_WRONLY) {
        refuse("the descriptor is not readable");
    }

    RequestBody body;
    crypto_hash_sha256_state state;
    crypto_hash_sha256_init(&state);
    std::vector<std::uint8_t> buffer(kChunk);

    // A memfd sealed against every change is hashed in place and sent as it is.
    if (S_ISREG(st.st_mode)) {
        const int seals = ::fcntl(fd, F_GET_SEALS);
        if (seals >= 0 && (static_cast<unsigned>(seals) & kFullSeals) == kFullSeals) {
            if (static_cast<std::uint64_t>(st.st_size) > kMaxRequestBodyBytes) {
                refuse("larger than " + std::to_string(kMaxRequestBodyBytes) + " bytes");
            }
            std::uint64_t offset = 0;
            while (offset < static_cast<std::uint64_t>(st.st_size)) {
                const ssize_t n = ::pread(fd, buffer.data(), buffer.size(), static_cast<off_t>(offset));
                if (n < 0) {
                    if (errno == EINTR) {
                        continue;
                    }
                    refuse_errno("cannot read", errno);
                }
                if (n == 0) {
                    break;
                }
                crypto_hash_sha256_update(&state, buffer.data(), static_cast<std::size_t>(n));
                offset += static_cast<std::uint64_t>(n);
            }
            const int own = ::fcntl(fd, F_DUPFD_CLOEXEC, 3);
            if (own < 0) {
                throw std::system_error(errno, std::generic_category(), "duplicate the request body");
            }
            body.fd.reset(own);
            body.size = offset;
            body.sha256_hex = hex_of(state);
            return body;
        }
    }

    std::optional<RestoreFlags> restore;
    if (S_ISFIFO(st.st_mode) && (flags & O_NONBLOCK) == 0) {
        if (::fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0) {
            refuse_errno("cannot make the pipe non-blocking", errno);
        }
        restore.emplace(RestoreFlags{fd, flags});
    }
    UniqueFd copy(::memfd_create("codex-vault-request-body", MFD_CLOEXEC | MFD_ALLOW_SEALING));
    if (!copy) {
        throw std::system_error(errno, std::generic_category(), "create the request body copy");
    }
    std::uint64_t offset = 0;
    for (;;) {
        // A file is read from offset 0 without moving the caller's offset; a pipe from where it is.
        const ssize_t n = S_ISREG(st.st_mode) ? ::pread(fd, buffer.data(), buffer.size(), static_cast<off_t>(offset))
                                              : ::read(fd, buffer.data(), buffer.size());
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                refuse(
                    "pipe still open for writing; write the whole body and close the write end before the call "
                    "(or pass a memfd)");
            }
            refuse_errno("cannot read", errno);
        }
        if (n == 0) {
            break;
        }
        offset += static_cast<std::uint64_t>(n);
        if (offset > kMaxRequestBodyBytes) {
            refuse("larger than " + std::to_string(kMaxRequestBodyBytes) + " bytes");
        }
        crypto_hash_sha256_update(&state, buffer.data(), static_cast<std::size_t>(n));
        write_all(copy.get(), buffer.data(), static_cast<std::size_t>(n));
    }
    if (::fcntl(copy.get(), F_ADD_SEALS, F_SEAL_SEAL | kFullSeals) != 0) {
        throw std::system_error(errno, std::generic_category(), "seal the request body copy");
    }
    body.fd = std::move(copy);
    body.size = offset;
    body.sha256_hex = hex_of(state);
    return body;
}

}  // namespace codexvault::daemon
