// The master key and the sub-keys derived from it, all held in SecureBuffers.
#pragma once

#include <filesystem>
#include <optional>
#include <span>
#include <string>

#include "daemon/store/secure_buffer.hpp"

namespace codexvault::store {

inline constexpr std::size_t kMasterKeyBytes = 32;  // crypto_kdf_KEYBYTES
inline constexpr const char* kCredentialName = "codex-vault.key";

class Keyring {
public:
    // Master key source, in order: `credentials_dir`/codex-vault.key when that file exists
    // (systemd LoadCredential[Encrypted]=), else state_dir/keys/master.key, created (0600,
    // random) on first start. The key file and keys/ must be private (see state_files.hpp);
    // a key of the wrong size is refused. The bytes are read straight into secure memory.
    static Keyring load(const std::filesystem::path& state_dir,
                        const std::optional<std::filesystem::path>& credentials_dir);

    [[nodiscard]] SecureMemoryKind memory_kind() const noexcept { return master_.kind(); }
    [[nodiscard]] const std::string& source() const noexcept { return source_; }  // "credential" or "key-file"

    // crypto_kdf sub-key for sealing secrets (id 1, context "CVsecret"), 32 bytes.
    [[nodiscard]] std::span<const std::uint8_t> secret_sealing_key() const noexcept { return secret_key_.span(); }

    // Any other sub-key (later: audit signing seed). context is exactly 8 characters.
    [[nodiscard]] SecureBuffer derive(std::uint64_t subkey_id, const char (&context)[9], std::size_t bytes) const;

private:
    Keyring(SecureBuffer master, std::string source);

    SecureBuffer master_;
    SecureBuffer secret_key_;
    std::string source_;
};

}  // namespace codexvault::store
