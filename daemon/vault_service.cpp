#include "daemon/vault_service.hpp"

#include <stdexcept>

#include "daemon/policy_files.hpp"
#include "daemon/store/state_files.hpp"

namespace codexvault::daemon {
namespace {

constexpr const char* kFounderKeyFile = "founder.pub";

std::optional<founder::PublicKey> load_founder_key(int state_dir, const std::filesystem::path& state_path)
{
    const auto path = state_path / kFounderKeyFile;
    std::error_code ec;
    if (!std::filesystem::exists(std::filesystem::symlink_status(path, ec))) {
        return std::nullopt;
    }
    // Whoever can replace this file becomes the founder: it gets the same checks as the key.
    store::require_private_file(path);
    std::string text = store::read_small_file(state_dir, kFounderKeyFile, 256);
    while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) {
        text.pop_back();
    }
    const auto bytes = from_hex(text);
    founder::PublicKey key{};
    if (!bytes || bytes->size() != key.size()) {
        throw std::runtime_error(path.string() + " does not hold a founder public key (64 hex digits)");
    }
    std::copy(bytes->begin(), bytes->end(), key.begin());
    return key;
}

}  // namespace

const char* to_string(VaultState state) noexcept
{
    switch (state) {
    case VaultState::Uninitialized:
        return "uninitialized";
    case VaultState::Ready:
        return "ready";
    case VaultState::Locked:
        return "locked";
    }
    return "locked";
}

std::unique_ptr<VaultService> VaultService::open(const DaemonConfig& config)
{
    store::ensure_private_directory(config.state_dir);
    UniqueFd state_dir = store::open_directory(config.state_dir);
    std::optional<std::filesystem::path> credentials;
    if (const char* dir = std::getenv("CREDENTIALS_DIRECTORY"); dir != nullptr && dir[0] != '\0') {
        credentials = std::filesystem::path(dir);
    }
    store::Keyring keyring = store::Keyring::load(config.state_dir, credentials);
    std::unique_ptr<VaultService> service(new VaultService(config, std::move(state_dir), std::move(keyring)));
    if (auto key = load_founder_key(service->state_dir_.get(), config.state_dir)) {
        service->founder_.enroll(*key);
    }
    // An unusable policy does not stop start-up: founder operations still work, grant-based use
    // is denied, and Status says why.
    service->reload_policy();
    return service;
}

VaultService::VaultService(const DaemonConfig& config, UniqueFd state_dir, store::Keyring keyring)
    : founder_uid_(config.founder_uid),
      state_dir_(std::move(state_dir)),
      keyring_(std::move(keyring)),
      secrets_(std::make_unique<store::SecretStore>(config.state_dir / "secrets", keyring_.secret_sealing_key())),
      policy_dir_(config.policy_dir)
{
}

bool VaultService::reload_policy()
{
    PolicyLoad load = load_policy_directory(policy_dir_);
    policy_status_ = std::move(load.summary);
    engine_.set_policy(load.result.policy);
    return load.result.ok();
}

VaultState VaultService::state() const noexcept
{
    if (locked_) {
        return VaultState::Locked;
    }
    return founder_.enrolled() ? VaultState::Ready : VaultState::Uninitialized;
}

void VaultService::enroll_founder(const founder::PublicKey& key)
{
    const std::string text = to_hex(key) + "\n";
    store::write_file_atomically(state_dir_.get(), kFounderKeyFile,
                                 std::span(reinterpret_cast<const std::uint8_t*>(text.data()), text.size()));
    founder_.enroll(key);
}

}  // namespace codexvault::daemon
