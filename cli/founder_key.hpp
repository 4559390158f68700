// The founder's Ed25519 key pair on disk: the private half sealed under a key derived from a
// passphrase with Argon2id (crypto_pwhash), the file 0600. Used only by vaultctl.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

namespace codexvault::cli {

// Passphrase or private key bytes in sodium_malloc'd memory, zeroed on release.
class SensitiveBytes {
public:
    explicit SensitiveBytes(std::size_t capacity);
    SensitiveBytes(SensitiveBytes&& other) noexcept;
    SensitiveBytes& operator=(SensitiveBytes&& other) noexcept;
    SensitiveBytes(const SensitiveBytes&) = delete;
    SensitiveBytes& operator=(const SensitiveBytes&) = delete;
    ~SensitiveBytes();

    [[nodiscard]] std::uint8_t* data() noexcept { return data_; }
    [[nodiscard]] const std::uint8_t* data() const noexcept { return data_; }
    [[nodiscard]] std::size_t size() const noexcept { return size_; }
    [[nodiscard]] std::size_t capacity() const noexcept { return capacity_; }
    void resize(std::size_t size);  // within capacity
    [[nodiscard]] std::span<const std::uint8_t> span() const noexcept { return {data_, size_}; }

private:
    std::uint8_t* data_ = nullptr;
    std::size_t size_ = 0;
    std::size_t capacity_ = 0;
};

class FounderKeyError : public std::runtime_error {
public:
    enum class Kind { WrongPassphrase, Corrupt, Io, AlreadyExists, WeakPassphrase };
    FounderKeyError(Kind kind, const std::string& message) : std::runtime_error(message), kind_(kind) {}
    [[nodiscard]] Kind kind() const noexcept { return kind_; }

private:
    Kind kind_;
};

struct FounderKeyPair {
    std::array<std::uint8_t, 32> public_key{};
    SensitiveBytes secret_key{64};  // crypto_sign_SECRETKEYBYTES
};

// Creates a new key pair and writes it to `path` (O_EXCL, 0600; missing parent folders are
// created 0700). Refuses an existing file (AlreadyExists) and a passphrase under 8 bytes.
FounderKeyPair create_founder_key_file(const std::filesystem::path& path, std::span<const std::uint8_t> passphrase);

// WrongPassphrase when authentication of the sealed key fails; Corrupt for a malformed file.
FounderKeyPair load_founder_key_file(const std::filesystem::path& path, std::span<const std::uint8_t> passphrase);

std::vector<std::uint8_t> sign_detached(const FounderKeyPair& key, std::span<const std::uint8_t> message);

// The daemon's transport key (X25519), which vaultctl seals secret values to. `init` pins the key
// the daemon shows; `secret put`/`rotate` refuse to send a value when the daemon shows another.
using TransportPublicKey = std::array<std::uint8_t, 32>;

// The pin lives next to the founder key: "<founder key file>.transport", 0600, 104 bytes:
// magic "CVTPIN01", the key, and an Ed25519 signature by the founder key over a domain tag and the
// key, so a pin swapped by someone who can write the folder but not use the founder key is refused.
std::filesystem::path transport_pin_path(const std::filesystem::path& founder_key_path);
// Replaces the pin atomically (temp file, fsync, rename, fsync of the folder).
void write_transport_pin(const std::filesystem::path& founder_key_path, const FounderKeyPair& key,
                         const TransportPublicKey& transport_key);
// Io when there is no pin; Corrupt when it is malformed or not signed by `key`.
TransportPublicKey load_transport_pin(const std::filesystem::path& founder_key_path, const FounderKeyPair& key);

// Reads one line (without its newline) from fd; at most 1024 bytes.
SensitiveBytes read_passphrase_from_fd(int fd);
// Prompts on /dev/tty with echo off; `confirm` asks twice and requires both to match.
SensitiveBytes read_passphrase_from_terminal(const char* prompt, bool confirm);

}  // namespace codexvault::cli
