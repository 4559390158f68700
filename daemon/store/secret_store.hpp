// Sealed secrets on disk: one file per secret, XChaCha20-Poly1305 with the secret's name,
// version and times as associated data, every write atomic (state_files.hpp).
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/unique_fd.hpp"
#include "daemon/store/secure_buffer.hpp"

namespace codexvault::store {

struct SecretMetadata {
    std::string name;
    std::uint32_t version = 0;
    std::uint64_t created_usec = 0;  // CLOCK_REALTIME
    std::uint64_t rotated_usec = 0;  // equals created_usec until the first rotation
    bool integrity_ok = true;        // false: the file failed authentication (list only)
};

// A sealed value written to a temp file and fsynced but not yet renamed into place. Must not
// outlive the SecretStore that prepared it (it borrows the store's directory descriptor).
class PendingWrite {
public:
    // A moved-from PendingWrite owns no temp file: only the object it was moved into unlinks it.
    PendingWrite(PendingWrite&& other) noexcept;
    PendingWrite& operator=(PendingWrite&& other) noexcept;
    PendingWrite(const PendingWrite&) = delete;
    PendingWrite& operator=(const PendingWrite&) = delete;
    ~PendingWrite();  // unlinks the temp file if never committed
    [[nodiscard]] const SecretMetadata& metadata() const noexcept { return metadata_; }

private:
    friend class SecretStore;
    PendingWrite(int dir_fd, std::string temp_name, std::string final_name, SecretMetadata metadata);
    void discard() noexcept;

    int dir_fd_ = -1;        // borrowed from the store
    std::string temp_name_;  // empty once committed, discarded or moved from
    std::string final_name_;
    SecretMetadata metadata_;
    bool replace_ = true;  // false for put(): commit must not replace a file that appeared meanwhile
};

// Errors: VaultError(InvalidArgument) for a bad name or value size, VaultError(NotFound),
// VaultError(InvalidArgument) when put() finds the name taken, VaultError(IntegrityFailure)
// when a file does not authenticate; std::system_error for I/O failures (never with secret
// bytes in the message).
class SecretStore {
public:
    // `directory` must be private (created 0700 if missing). Stale temp files are removed.
    SecretStore(const std::filesystem::path& directory, std::span<const std::uint8_t> sealing_key);

    SecretMetadata put(std::string_view name, std::span<const std::uint8_t> value, std::uint64_t now_usec);
    SecretMetadata rotate(std::string_view name, std::span<const std::uint8_t> value, std::uint64_t now_usec);
    void remove(std::string_view name);
    [[nodiscard]] std::vector<SecretMetadata> list() const;  // sorted by name
    [[nodiscard]] bool contains(std::string_view name) const;
    // Decrypts into guarded memory (for verification now, for egress later).
    [[nodiscard]] SecureBuffer open(std::string_view name) const;

    // Two-phase write, exposed so a crash between the phases can be tested.
    PendingWrite prepare(std::string_view name, std::span<const std::uint8_t> value, const SecretMetadata& metadata);
    SecretMetadata commit(PendingWrite&& pending);

private:
    UniqueFd dir_;
    std::span<const std::uint8_t> key_;  // borrowed from the Keyring, which outlives the store
};

// Reads a secret value handed over as a descriptor. Accepts a regular file or a pipe/FIFO
// whose writer has finished (read non-blocking: a pipe still open for writing is refused rather
// than block the daemon). Refuses directories, sockets, devices, write-only descriptors, empty
// values and values over limits::kMaxSecretBytes with VaultError(InvalidArgument).
SecureBuffer read_secret_value(int fd);

}  // namespace codexvault::store
