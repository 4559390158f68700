// The founder key file and the locked-memory buffer that holds its secrets.
//
// File format (176 bytes, all integers little-endian):
//
//   offset  size  field
//        0     8  magic "CVFKEY01" (the trailing digits are the format version)
//        8     8  u64 Argon2id opslimit used to derive the KEK
//       16     8  u64 Argon2id memlimit (bytes)
//       24    16  salt (crypto_pwhash_SALTBYTES)
//       40    32  Ed25519 public key
//       72    24  XChaCha20-Poly1305 nonce
//       96    80  crypto_aead_xchacha20poly1305_ietf ciphertext + tag of the 64-byte
//                 Ed25519 secret key (seed || public key)
//
// KEK = crypto_pwhash(32 bytes, passphrase, salt, opslimit, memlimit, ARGON2ID13). The AEAD's
// additional data is bytes 0..71 (everything before the nonce), so the cost parameters and the
// public key cannot be altered without decryption failing. The public key is kept in clear so
// `vaultctl` can show or enroll it; on load it must equal the key derived from the decrypted
// secret half. Files are written with OPSLIMIT/MEMLIMIT_INTERACTIVE; the loader accepts costs
// from INTERACTIVE up to MODERATE and refuses anything else as corrupt, because the costs are
// read (and the derivation runs) before the AEAD can authenticate them.
#include "cli/founder_key.hpp"

#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <new>
#include <string_view>
#include <system_error>
#include <utility>

#include "common/bytes.hpp"
#include "lib/fileio/unique_fd.hpp"

namespace codexvault::cli {

namespace {

constexpr std::string_view kMagic = "CVFKEY01";
constexpr std::size_t kMagicOffset = 0;
constexpr std::size_t kOpsOffset = kMagicOffset + 8;
constexpr std::size_t kMemOffset = kOpsOffset + 8;
constexpr std::size_t kSaltOffset = kMemOffset + 8;
constexpr std::size_t kPublicKeyOffset = kSaltOffset + crypto_pwhash_SALTBYTES;
constexpr std::size_t kNonceOffset = kPublicKeyOffset + crypto_sign_PUBLICKEYBYTES;
constexpr std::size_t kCiphertextOffset = kNonceOffset + crypto_aead_xchacha20poly1305_ietf_NPUBBYTES;
constexpr std::size_t kCiphertextBytes = crypto_sign_SECRETKEYBYTES + crypto_aead_xchacha20poly1305_ietf_ABYTES;
constexpr std::size_t kFileBytes = kCiphertextOffset + kCiphertextBytes;
constexpr std::size_t kAadBytes = kNonceOffset;
constexpr std::size_t kKekBytes = crypto_aead_xchacha20poly1305_ietf_KEYBYTES;
// Reads stop here: a key file is 176 bytes, so anything this large is not one, and a huge or
// endless file cannot make vaultctl allocate without bound.
constexpr std::size_t kMaxReadBytes = 4096;
constexpr std::size_t kMinPassphraseBytes = 8;

// The transport key pin (founder_key.hpp).
constexpr std::string_view kPinMagic = "CVTPIN01";
constexpr std::string_view kPinDomain = "codex-vault/transport-pin/v1";
constexpr std::size_t kPinKeyOffset = kPinMagic.size();
constexpr std::size_t kPinSignatureOffset = kPinKeyOffset + std::tuple_size_v<TransportPublicKey>;
constexpr std::size_t kPinFileBytes = kPinSignatureOffset + crypto_sign_BYTES;
static_assert(kPinFileBytes == 104);

static_assert(kMagic.size() == 8);
static_assert(kFileBytes == 176);
static_assert(crypto_sign_PUBLICKEYBYTES == std::tuple_size_v<decltype(FounderKeyPair::public_key)>);

void ensure_sodium()
{
    // sodium_init() is idempotent and thread-safe; the static just avoids re-entering it.
    static const int status = sodium_init();
    if (status < 0) {
        throw std::runtime_error("libsodium failed to initialise");
    }
}

std::string quoted(const std::filesystem::path& path)
{
    return "'" + path.string() + "'";
}

std::string errno_text(int error)
{
    return std::error_code(error, std::generic_category()).message();
}

[[noreturn]] void throw_io(const std::string& what, int error)
{
    throw FounderKeyError(FounderKeyError::Kind::Io, what + ": " + errno_text(error));
}

SensitiveBytes derive_kek(std::span<const std::uint8_t> passphrase, const std::uint8_t* salt, std::uint64_t opslimit,
                          std::uint64_t memlimit)
{
    SensitiveBytes kek(kKekBytes);
    if (crypto_pwhash(kek.data(), kek.size(), reinterpret_cast<const char*>(passphrase.data()), passphrase.size(), salt,
                      opslimit, static_cast<std::size_t>(memlimit), crypto_pwhash_ALG_ARGON2ID13) != 0) {
        // The only runtime failure of crypto_pwhash is an allocation failure.
        throw FounderKeyError(FounderKeyError::Kind::Io,
                              "passphrase key derivation failed (not enough memory for Argon2id)");
    }
    return kek;
}

// Creates each missing folder on the way to `dir`, mode 0700 (the umask can only narrow it).
// Existing folders are left as they are: their permissions are the owner's decision.
void create_parent_dirs(const std::filesystem::path& dir)
{
    std::filesystem::path prefix;
    for (const auto& part : dir) {
        prefix /= part;
        if (part.empty() || part == "/" || part == "." || part == "..") {
            continue;
        }
        if (::mkdir(prefix.c_str(), 0700) != 0 && errno != EEXIST) {
            throw_io("cannot create folder " + quoted(prefix), errno);
        }
    }
}

void write_all(int fd, std::span<const std::uint8_t> bytes, const std::filesystem::path& path)
{
    while (!bytes.empty()) {
        const ssize_t written = ::write(fd, bytes.data(), bytes.size());
        if (written < 0) {
            if (errno == EINTR) {
                continue;
            }
            throw_io("cannot write founder key file " + quoted(path), errno);
        }
        bytes = bytes.subspan(static_cast<std::size_t>(written));
    }
}

// Removes the file create_founder_key_file() made unless the write completed, so a failure
// never leaves a half-written key file that a later `init` would refuse to replace.
class RemoveUnlessCommitted {
public:
    explicit RemoveUnlessCommitted(std::filesystem::path path) : path_(std::move(path)) {}
    RemoveUnlessCommitted(const RemoveUnlessCommitted&) = delete;
    RemoveUnlessCommitted& operator=(const RemoveUnlessCommitted&) = delete;
    ~RemoveUnlessCommitted()
    {
        if (!committed_) {
            (void)::unlink(path_.c_str());
        }
    }
    void commit() noexcept { committed_ = true; }

private:
    std::filesystem::path path_;
    bool committed_ = false;
};

void fsync_parent_dir(const std::filesystem::path& path)
{
    // The new directory entry is only durable once the folder itself is synced.
    std::filesystem::path dir = path.parent_path();
    if (dir.empty()) {
        dir = ".";
    }
    UniqueFd dir_fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!dir_fd) {
        throw_io("cannot open folder " + quoted(dir) + " to sync it", errno);
    }
    if (::fsync(dir_fd.get()) != 0) {
        throw_io("cannot sync folder " + quoted(dir), errno);
    }
}

// `missing` says how to create the file when it does not exist.
std::vector<std::uint8_t> read_private_file(const std::filesystem::path& path, const char* what, const char* missing)
{
    // O_NOFOLLOW: a symlink planted at the key path is refused rather than followed.
    // O_NONBLOCK: opening a FIFO planted there must not hang vaultctl (regular files ignore it).
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK));
    if (!fd) {
        const int error = errno;
        if (error == ENOENT) {
            throw FounderKeyError(FounderKeyError::Kind::Io,
                                  std::string(what) + " " + quoted(path) + " does not exist (" + missing + ")");
        }
        if (error == ELOOP) {
            throw FounderKeyError(FounderKeyError::Kind::Io, std::string(what) + " " + quoted(path) +
                                                                 " is a symbolic link; refusing to follow it");
        }
        throw_io(std::string("cannot open ") + what + " " + quoted(path), error);
    }
    struct stat info {};
    if (::fstat(fd.get(), &info) != 0) {
        throw_io(std::string("cannot stat ") + what + " " + quoted(path), errno);
    }
    if (!S_ISREG(info.st_mode)) {
        throw FounderKeyError(FounderKeyError::Kind::Io,
                              std::string(what) + " " + quoted(path) + " is not a regular file");
    }

    std::vector<std::uint8_t> bytes(kMaxReadBytes);
    std::size_t filled = 0;
    while (filled < bytes.size()) {
        const ssize_t got = ::read(fd.get(), bytes.data() + filled, bytes.size() - filled);
        if (got < 0) {
            if (errno == EINTR) {
                continue;
            }
            throw_io(std::string("cannot read ") + what + " " + quoted(path), errno);
        }
        if (got == 0) {
            break;
        }
        filled += static_cast<std::size_t>(got);
    }
    bytes.resize(filled);
    return bytes;
}

std::vector<std::uint8_t> pin_signed_bytes(const TransportPublicKey& transport_key)
{
    std::vector<std::uint8_t> message(kPinDomain.begin(), kPinDomain.end());
    message.insert(message.end(), transport_key.begin(), transport_key.end());
    return message;
}

}  // namespace

SensitiveBytes::SensitiveBytes(std::size_t capacity)
{
    ensure_sodium();  // sodium_malloc needs the page size sodium_init() records
    // Guard pages around the buffer, mlock'd where the limit allows, and wiped by sodium_free.
    data_ = static_cast<std::uint8_t*>(sodium_malloc(capacity));
    if (data_ == nullptr) {
        throw std::bad_alloc();
    }
    size_ = capacity;
    capacity_ = capacity;
}

SensitiveBytes::SensitiveBytes(SensitiveBytes&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)),
      size_(std::exchange(other.size_, 0)),
      capacity_(std::exchange(other.capacity_, 0))
{
}

SensitiveBytes& SensitiveBytes::operator=(SensitiveBytes&& other) noexcept
{
    if (this != &other) {
        sodium_free(data_);
        data_ = std::exchange(other.data_, nullptr);
        size_ = std::exchange(other.size_, 0);
        capacity_ = std::exchange(other.capacity_, 0);
    }
    return *this;
}

SensitiveBytes::~SensitiveBytes()
{
    sodium_free(data_);  // zeroes before unmapping; a null pointer is a no-op
}

void SensitiveBytes::resize(std::size_t size)
{
    if (size > capacity_) {
        throw std::length_error("SensitiveBytes::resize beyond capacity");
    }
    if (size < size_) {
        // Bytes past size() should not linger as a stale copy of a secret.
        sodium_memzero(data_ + size, size_ - size);
    }
    size_ = size;
}

FounderKeyPair create_founder_key_file(const std::filesystem::path& path, std::span<const std::uint8_t> passphrase)
{
    ensure_sodium();
    if (passphrase.size() < kMinPassphraseBytes) {
        throw FounderKeyError(FounderKeyError::Kind::WeakPassphrase,
                              "the founder passphrase must be at least 8 bytes long");
    }

    const std::filesystem::path parent = path.parent_path();
    if (!parent.empty()) {
        create_parent_dirs(parent);
    }

    // O_EXCL: never replace an existing key (and, with O_NOFOLLOW, never write through a
    // symlink: O_EXCL already fails on one, the flag states the intent).
    UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, 0600));
    if (!fd) {
        const int error = errno;
        if (error == EEXIST) {
            throw FounderKeyError(FounderKeyError::Kind::AlreadyExists,
                                  "founder key file " + quoted(path) + " already exists; refusing to overwrite it");
        }
        throw_io("cannot create founder key file " + quoted(path), error);
    }
    RemoveUnlessCommitted cleanup(path);
    // Exactly 0600 whatever the umask was (a umask can narrow the mode open() applied).
    if (::fchmod(fd.get(), 0600) != 0) {
        throw_io("cannot set the mode of founder key file " + quoted(path), errno);
    }

    FounderKeyPair pair;
    crypto_sign_keypair(pair.public_key.data(), pair.secret_key.data());

    std::vector<std::uint8_t> file(kFileBytes);
    std::copy(kMagic.begin(), kMagic.end(), file.begin() + kMagicOffset);
    bytes::put_le<std::uint64_t>(file.data() + kOpsOffset, crypto_pwhash_OPSLIMIT_INTERACTIVE);
    bytes::put_le<std::uint64_t>(file.data() + kMemOffset, crypto_pwhash_MEMLIMIT_INTERACTIVE);
    randombytes_buf(file.data() + kSaltOffset, crypto_pwhash_SALTBYTES);
    std::copy(pair.public_key.begin(), pair.public_key.end(), file.begin() + kPublicKeyOffset);
    randombytes_buf(file.data() + kNonceOffset, crypto_aead_xchacha20poly1305_ietf_NPUBBYTES);

    const SensitiveBytes kek = derive_kek(passphrase, file.data() + kSaltOffset, crypto_pwhash_OPSLIMIT_INTERACTIVE,
                                          crypto_pwhash_MEMLIMIT_INTERACTIVE);
    unsigned long long ciphertext_len = 0;
    crypto_aead_xchacha20poly1305_ietf_encrypt(file.data() + kCiphertextOffset, &ciphertext_len, pair.secret_key.data(),
                                               pair.secret_key.size(), file.data(), kAadBytes, nullptr,
                                               file.data() + kNonceOffset, kek.data());
    if (ciphertext_len != kCiphertextBytes) {
        throw FounderKeyError(FounderKeyError::Kind::Io, "sealing the founder key produced an unexpected length");
    }

    write_all(fd.get(), file, path);
    if (::fsync(fd.get()) != 0) {
        throw_io("cannot sync founder key file " + quoted(path), errno);
    }
    fsync_parent_dir(path);
    cleanup.commit();
    return pair;
}

FounderKeyPair load_founder_key_file(const std::filesystem::path& path, std::span<const std::uint8_t> passphrase)
{
    ensure_sodium();
    const std::vector<std::uint8_t> file = read_private_file(path, "founder key file", "create it with vaultctl init");

    if (file.size() < kMagic.size() || !std::equal(kMagic.begin(), kMagic.end(), file.begin())) {
        throw FounderKeyError(FounderKeyError::Kind::Corrupt,
                              quoted(path) + " is not a founder key file (unknown format or version)");
    }
    if (file.size() != kFileBytes) {
        throw FounderKeyError(FounderKeyError::Kind::Corrupt,
                              "founder key file " + quoted(path) + " is truncated or has trailing data");
    }

    // Bounded before use: the derivation runs before anything is authenticated, so these two
    // numbers are attacker-controlled input to an allocation and a CPU loop.
    const auto opslimit = bytes::get_le<std::uint64_t>(file.data() + kOpsOffset);
    const auto memlimit = bytes::get_le<std::uint64_t>(file.data() + kMemOffset);
    if (opslimit < crypto_pwhash_OPSLIMIT_INTERACTIVE || opslimit > crypto_pwhash_OPSLIMIT_MODERATE ||
        memlimit < crypto_pwhash_MEMLIMIT_INTERACTIVE || memlimit > crypto_pwhash_MEMLIMIT_MODERATE) {
        throw FounderKeyError(FounderKeyError::Kind::Corrupt,
                              "founder key file " + quoted(path) + " asks for key-derivation costs out of range");
    }

    const SensitiveBytes kek = derive_kek(passphrase, file.data() + kSaltOffset, opslimit, memlimit);
    FounderKeyPair pair;
    unsigned long long plaintext_len = 0;
    if (crypto_aead_xchacha20poly1305_ietf_decrypt(pair.secret_key.data(), &plaintext_len, nullptr,
                                                   file.data() + kCiphertextOffset, kCiphertextBytes, file.data(),
                                                   kAadBytes, file.data() + kNonceOffset, kek.data()) != 0 ||
        plaintext_len != crypto_sign_SECRETKEYBYTES) {
        throw FounderKeyError(FounderKeyError::Kind::WrongPassphrase,
                              "wrong passphrase, or the founder key file was modified (" + quoted(path) + ")");
    }

    // The secret key is seed || public key. Re-derive the pair from the seed so both halves,
    // and the public key stored in clear, are known to belong together before anything signs.
    SensitiveBytes seed(crypto_sign_SEEDBYTES);
    SensitiveBytes rederived_secret(crypto_sign_SECRETKEYBYTES);
    std::array<std::uint8_t, crypto_sign_PUBLICKEYBYTES> rederived_public{};
    std::array<std::uint8_t, crypto_sign_PUBLICKEYBYTES> embedded_half{};
    crypto_sign_ed25519_sk_to_seed(seed.data(), pair.secret_key.data());
    crypto_sign_seed_keypair(rederived_public.data(), rederived_secret.data(), seed.data());
    crypto_sign_ed25519_sk_to_pk(embedded_half.data(), pair.secret_key.data());
    const std::uint8_t* stored_public = file.data() + kPublicKeyOffset;
    if (sodium_memcmp(rederived_public.data(), stored_public, crypto_sign_PUBLICKEYBYTES) != 0 ||
        sodium_memcmp(embedded_half.data(), stored_public, crypto_sign_PUBLICKEYBYTES) != 0) {
        throw FounderKeyError(FounderKeyError::Kind::Corrupt, "founder key file " + quoted(path) +
                                                                  " holds a public key that does not match its "
                                                                  "private key");
    }
    std::copy(stored_public, stored_public + crypto_sign_PUBLICKEYBYTES, pair.public_key.begin());
    return pair;
}

std::vector<std::uint8_t> sign_detached(const FounderKeyPair& key, std::span<const std::uint8_t> message)
{
    if (key.secret_key.size() != crypto_sign_SECRETKEYBYTES) {
        throw std::invalid_argument("founder secret key has the wrong length");
    }
    std::vector<std::uint8_t> signature(crypto_sign_BYTES);
    crypto_sign_detached(signature.data(), nullptr, message.data(), message.size(), key.secret_key.data());
    return signature;
}

std::filesystem::path transport_pin_path(const std::filesystem::path& founder_key_path)
{
    std::filesystem::path pin = founder_key_path;
    pin += ".transport";
    return pin;
}

void write_transport_pin(const std::filesystem::path& founder_key_path, const FounderKeyPair& key,
                         const TransportPublicKey& transport_key)
{
    ensure_sodium();
    const std::filesystem::path path = transport_pin_path(founder_key_path);
    std::vector<std::uint8_t> file(kPinMagic.begin(), kPinMagic.end());
    file.insert(file.end(), transport_key.begin(), transport_key.end());
    const std::vector<std::uint8_t> signature = sign_detached(key, pin_signed_bytes(transport_key));
    file.insert(file.end(), signature.begin(), signature.end());

    std::filesystem::path temp = path;
    temp += ".tmp";
    (void)::unlink(temp.c_str());  // a leftover of an interrupted pin
    UniqueFd fd(::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, 0600));
    if (!fd) {
        throw_io("cannot create transport key pin " + quoted(temp), errno);
    }
    RemoveUnlessCommitted cleanup(temp);
    if (::fchmod(fd.get(), 0600) != 0) {
        throw_io("cannot set the mode of transport key pin " + quoted(temp), errno);
    }
    write_all(fd.get(), file, temp);
    if (::fsync(fd.get()) != 0) {
        throw_io("cannot sync transport key pin " + quoted(temp), errno);
    }
    if (::rename(temp.c_str(), path.c_str()) != 0) {
        throw_io("cannot put transport key pin in place at " + quoted(path), errno);
    }
    cleanup.commit();
    fsync_parent_dir(path);
}

TransportPublicKey load_transport_pin(const std::filesystem::path& founder_key_path, const FounderKeyPair& key)
{
    ensure_sodium();
    const std::filesystem::path path = transport_pin_path(founder_key_path);
    const std::vector<std::uint8_t> file = read_private_file(
        path, "transport key pin",
        "vaultctl init writes it; for a vault initialized before pins existed, compare the "
        "transport_key of `vaultctl status` with the daemon's, then run `vaultctl pin-transport-key`");
    if (file.size() != kPinFileBytes || !std::equal(kPinMagic.begin(), kPinMagic.end(), file.begin())) {
        throw FounderKeyError(FounderKeyError::Kind::Corrupt, quoted(path) + " is not a transport key pin");
    }
    TransportPublicKey transport_key{};
    std::copy(file.begin() + kPinKeyOffset, file.begin() + kPinSignatureOffset, transport_key.begin());
    const std::vector<std::uint8_t> message = pin_signed_bytes(transport_key);
    if (crypto_sign_verify_detached(file.data() + kPinSignatureOffset, message.data(), message.size(),
                                    key.public_key.data()) != 0) {
        throw FounderKeyError(FounderKeyError::Kind::Corrupt,
                              "transport key pin " + quoted(path) + " is not signed by this founder key");
    }
    return transport_key;
}

}  // namespace codexvault::cli
