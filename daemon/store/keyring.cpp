#include "daemon/store/keyring.hpp"

#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <stdexcept>
#include <system_error>
#include <utility>

#include "lib/fileio/files.hpp"
#include "lib/fileio/unique_fd.hpp"

namespace codexvault::store {
namespace {

static_assert(kMasterKeyBytes == crypto_kdf_KEYBYTES);
static_assert(crypto_kdf_CONTEXTBYTES == 8);

constexpr const char* kKeysDir = "keys";
constexpr const char* kMasterKeyFile = "master.key";
constexpr std::uint64_t kSecretSealingKeyId = 1;
constexpr char kSecretSealingContext[9] = "CVsecret";
constexpr std::uint64_t kManifestKeyId = 3;
constexpr char kManifestContext[9] = "CVmanfst";

[[noreturn]] void throw_errno(int error, const std::string& what)
{
    throw std::system_error(error, std::generic_category(), what);
}

// Reads exactly kMasterKeyBytes from `fd` into secure memory; the size was checked with fstat,
// a short read means the file changed under us.
SecureBuffer read_key(int fd, const std::filesystem::path& path)
{
    SecureBuffer key = SecureBuffer::allocate(kMasterKeyBytes);
    std::size_t got = 0;
    while (got < key.size()) {
        const ssize_t n = ::read(fd, key.data() + got, key.size() - got);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            throw_errno(errno, "cannot read master key from " + path.string());
        }
        if (n == 0) {
            throw std::runtime_error("master key " + path.string() + " ended early; expected " +
                                     std::to_string(kMasterKeyBytes) + " bytes");
        }
        got += static_cast<std::size_t>(n);
    }
    return key;
}

void require_key_size(const struct stat& st, const std::filesystem::path& path)
{
    if (st.st_size != static_cast<off_t>(kMasterKeyBytes)) {
        throw std::runtime_error("master key " + path.string() + " holds " + std::to_string(st.st_size) +
                                 " bytes; expected exactly " + std::to_string(kMasterKeyBytes));
    }
}

// systemd owns the credential file's mode and owner (LoadCredential= makes it read-only, maybe
// group-readable for the service's group), so only what systemd cannot vouch for is checked:
// that it is a plain file we did not reach through a symlink, of the right size.
std::optional<SecureBuffer> load_credential(const std::filesystem::path& credentials_dir)
{
    const auto path = credentials_dir / kCredentialName;
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0) {
        if (errno == ENOENT) {
            return std::nullopt;
        }
        throw_errno(errno, "cannot inspect credential " + path.string());
    }
    if (S_ISLNK(st.st_mode)) {
        throw std::runtime_error("credential " + path.string() + " is a symbolic link; refusing to follow it");
    }
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY));
    if (!fd) {
        throw_errno(errno, "cannot open credential " + path.string());
    }
    if (::fstat(fd.get(), &st) != 0) {
        throw_errno(errno, "cannot inspect credential " + path.string());
    }
    if (!S_ISREG(st.st_mode)) {
        throw std::runtime_error("credential " + path.string() + " is not a regular file");
    }
    require_key_size(st, path);
    return read_key(fd.get(), path);
}

// Opens keys/master.key, or returns an invalid descriptor when it does not exist yet.
UniqueFd open_key_file(int keys_dir, const std::filesystem::path& path)
{
    UniqueFd fd(::openat(keys_dir, kMasterKeyFile, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY));
    if (!fd) {
        if (errno == ENOENT) {
            return fd;
        }
        if (errno == ELOOP) {
            throw std::runtime_error("state file " + path.string() + " is a symbolic link; refusing to follow it");
        }
        throw_errno(errno, "cannot open master key " + path.string());
    }
    return fd;
}

SecureBuffer read_key_file(int fd, const std::filesystem::path& path)
{
    // Checked by path first (names the problem precisely), then on the descriptor we actually
    // read, so the file cannot be swapped between the check and the read.
    fileio::require_private_file(path);
    fileio::require_private_file(fd, path);
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
        throw_errno(errno, "cannot inspect master key " + path.string());
    }
    require_key_size(st, path);
    return read_key(fd, path);
}

// First start: a fresh random key, written atomically and never over an existing file (two
// racing first starts must not end with secrets sealed under a key that was then replaced).
std::optional<SecureBuffer> create_key_file(int keys_dir, const std::filesystem::path& path)
{
    ensure_sodium_initialized();
    SecureBuffer key = SecureBuffer::allocate(kMasterKeyBytes);
    ::randombytes_buf(key.data(), key.size());
    const std::string temp_name = fileio::write_temp_file(keys_dir, kMasterKeyFile, key.span(), 0600);
    try {
        fileio::commit_temp_file(keys_dir, temp_name, kMasterKeyFile, /*replace=*/false);
    } catch (const std::system_error& error) {
        (void)::unlinkat(keys_dir, temp_name.c_str(), 0);
        if (error.code() == std::errc::file_exists) {
            return std::nullopt;  // someone else created it first: use theirs
        }
        throw std::system_error(error.code(), "cannot create master key " + path.string());
    }
    return key;
}

SecureBuffer derive_key(std::span<const std::uint8_t> master, std::uint64_t subkey_id, const char* context,
                        std::size_t bytes)
{
    if (bytes < crypto_kdf_BYTES_MIN || bytes > crypto_kdf_BYTES_MAX) {
        throw std::invalid_argument("derived key length must be between " + std::to_string(crypto_kdf_BYTES_MIN) +
                                    " and " + std::to_string(crypto_kdf_BYTES_MAX) + " bytes");
    }
    ensure_sodium_initialized();
    SecureBuffer key = SecureBuffer::allocate(bytes);
    if (::crypto_kdf_derive_from_key(key.data(), key.size(), subkey_id, context, master.data()) != 0) {
        throw std::runtime_error("crypto_kdf_derive_from_key failed");
    }
    return key;
}

}  // namespace

Keyring Keyring::load(const std::filesystem::path& state_dir,
                      const std::optional<std::filesystem::path>& credentials_dir)
{
    if (credentials_dir) {
        if (auto key = load_credential(*credentials_dir)) {
            return Keyring(std::move(*key), "credential");
        }
    }

    const auto keys_path = state_dir / kKeysDir;
    fileio::ensure_private_directory(keys_path);
    const UniqueFd keys_dir = fileio::open_directory(keys_path);
    // A crash while creating the key leaves a temp file holding key material: remove it.
    fileio::remove_stale_temp_files(keys_dir.get());

    const auto key_path = keys_path / kMasterKeyFile;
    for (int attempt = 0; attempt < 2; ++attempt) {
        if (UniqueFd fd = open_key_file(keys_dir.get(), key_path)) {
            return Keyring(read_key_file(fd.get(), key_path), "key-file");
        }
        if (auto key = create_key_file(keys_dir.get(), key_path)) {
            return Keyring(std::move(*key), "key-file");
        }
    }
    throw std::runtime_error("master key " + key_path.string() + " keeps appearing and disappearing");
}

Keyring::Keyring(SecureBuffer master, std::string source)
    : master_(std::move(master)),
      secret_key_(derive_key(master_.span(), kSecretSealingKeyId, kSecretSealingContext, 32)),
      manifest_key_(derive_key(master_.span(), kManifestKeyId, kManifestContext, 32)),
      source_(std::move(source))
{
}

SecureBuffer Keyring::derive(std::uint64_t subkey_id, const char (&context)[9], std::size_t bytes) const
{
    return derive_key(master_.span(), subkey_id, context, bytes);
}

}  // namespace codexvault::store
