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
    // crypto_kdf sub-key for the store manifest's MAC (id 3, context "CVmanfst"), 32 bytes.
    [[nodiscard]] std::span<const std::uint8_t> store_manifest_key() const noexcept { return manifest_key_.span(); }

    // Any other sub-key. context is exactly 8 characters. Sub-keys in use, each (id, context)
    // pair unique and, to keep them easy to tell apart, each id too:
    //   1 "CVsecret"  secret sealing key (above)
    //   1 "CVaudsig"  audit checkpoint signing seed (daemon/audit/checkpoint.hpp)
    //   3 "CVmanfst"  store manifest MAC key (above)
    //   4 "CVgrants"  grant state (policy-state.json) MAC key (daemon/store/sealed_state.hpp)
    //   5 "CVfoundr"  founder key (founder.pub) MAC key (daemon/store/sealed_state.hpp)
    //   6 "CVtrnsp0"  transport key seed: values are sealed to it in transit (daemon/store/transport_key.hpp)
    //   7 "CVfinger"  ingest finding fingerprint key (derived in daemon/main.cpp for daemon/ingest/scan_client.hpp)
    // (2 and 42 with "CVprobe0" are used by tests only.) Add new ones to this list.
    [[nodiscard]] SecureBuffer derive(std::uint64_t subkey_id, const char (&context)[9], std::size_t bytes) const;

private:
    Keyring(SecureBuffer master, std::string source);

    SecureBuffer master_;
    SecureBuffer secret_key_;
    SecureBuffer manifest_key_;
    std::string source_;
};

}  // namespace codexvault::store
