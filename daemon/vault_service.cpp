#include "daemon/vault_service.hpp"

#include <stdexcept>

#include "daemon/integrity/lock_file.hpp"
#include "daemon/monotonic_clock.hpp"
#include "daemon/policy_files.hpp"
#include "lib/fileio/files.hpp"
#include "policy/persistence.hpp"

namespace codexvault::daemon {
namespace {

constexpr const char* kFounderKeyFile = "founder.pub";
constexpr const char* kPolicyStateFile = "policy-state.json";
constexpr std::size_t kMaxPolicyStateBytes = 64ULL * 1024 * 1024;
// Finished runtime grants (revoked, expired, used up) are listed for a day, then forgotten;
// revocations of policy grants are kept for ever.
constexpr std::uint64_t kKeepFinishedGrantsUsec = 24ULL * 3600 * 1000 * 1000;
constexpr std::uint64_t kPruneIntervalUsec = 60ULL * 1000 * 1000;

policy::EngineOptions engine_options(const DaemonConfig& config)
{
    policy::EngineOptions options;
    options.approvals.ttl_usec = config.approval_ttl_usec;
    return options;
}

std::optional<founder::PublicKey> load_founder_key(int state_dir, const std::filesystem::path& state_path)
{
    const auto path = state_path / kFounderKeyFile;
    std::error_code ec;
    if (!std::filesystem::exists(std::filesystem::symlink_status(path, ec))) {
        return std::nullopt;
    }
    // Whoever can replace this file becomes the founder: it gets the same checks as the key.
    fileio::require_private_file(path);
    std::string text = fileio::read_small_file(state_dir, kFounderKeyFile, 256);
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
    fileio::ensure_private_directory(config.state_dir);
    UniqueFd state_dir = fileio::open_directory(config.state_dir);
    std::optional<std::filesystem::path> credentials;
    if (const char* dir = std::getenv("CREDENTIALS_DIRECTORY"); dir != nullptr && dir[0] != '\0') {
        credentials = std::filesystem::path(dir);
    }
    store::Keyring keyring = store::Keyring::load(config.state_dir, credentials);
    // Before the store creates an empty manifest on a first start: a manifest already there means
    // this vault ran a build that keeps an audit log (the two came together).
    std::error_code ec;
    const bool had_manifest =
        std::filesystem::exists(config.state_dir / "secrets" / store::kManifestFileName, ec) && !ec;
    std::unique_ptr<VaultService> service(new VaultService(config, std::move(state_dir), std::move(keyring)));
    service->had_store_manifest_ = had_manifest;
    if (auto key = load_founder_key(service->state_dir_.get(), config.state_dir)) {
        service->founder_.enroll(*key);
    }
    // An unusable policy does not stop start-up: founder operations still work, grant-based use
    // is denied, and Status says why.
    service->lock_ = store::lock_file::load(service->state_dir_.get());
    service->reload_policy();
    service->load_policy_state();
    service->check_store();
    return service;
}

VaultService::VaultService(const DaemonConfig& config, UniqueFd state_dir, store::Keyring keyring)
    : founder_uid_(config.founder_uid),
      state_dir_(std::move(state_dir)),
      keyring_(std::move(keyring)),
      secrets_(std::make_unique<store::SecretStore>(config.state_dir / "secrets", keyring_.secret_sealing_key(),
                                                    keyring_.store_manifest_key())),
      policy_dir_(config.policy_dir),
      state_path_(config.state_dir),
      engine_(engine_options(config))
{
}

void VaultService::load_policy_state()
{
    std::string text;
    try {
        text = fileio::read_small_file(state_dir_.get(), kPolicyStateFile, kMaxPolicyStateBytes);
    } catch (const std::system_error& e) {
        if (e.code() == std::errc::no_such_file_or_directory) {
            return;  // first start: no runtime grants yet
        }
        throw;
    }
    auto decoded = policy::decode_state(text, engine_.approvals().options());
    if (!decoded) {
        // Serving grants from a state we cannot read could bring revoked grants back, and
        // overwriting it would forget them for good: lock, serve no grants, never write it.
        grant_state_error_ = "grant state file " + std::string(kPolicyStateFile) + " is unreadable (" +
                             decoded.message() + "); restore it or move it aside, then restart";
        engine_.set_policy(nullptr);
        policy_status_ = "not loaded: " + grant_state_error_;
        lock(grant_state_error_);
        return;
    }
    auto state = std::move(decoded).value();
    engine_.replace_state(std::move(state.grants), std::move(state.approvals));
}

void VaultService::save_policy_state_if_dirty()
{
    if (!policy_state_dirty_) {
        return;
    }
    if (!grant_state_error_.empty()) {
        throw std::runtime_error(grant_state_error_);
    }
    const auto now = clock::realtime_usec();
    // Pruning rebuilds the grant index, so it runs at most once a minute, not on every use.
    if (now - last_prune_usec_ >= kPruneIntervalUsec) {
        engine_.grants().prune(engine_.policy().get(), now, kKeepFinishedGrantsUsec);
        engine_.approvals().prune(now);
        last_prune_usec_ = now;
    }
    const std::string text = policy::encode_state(engine_.grants(), engine_.approvals());
    fileio::write_file_atomically(state_dir_.get(), kPolicyStateFile,
                                  std::span(reinterpret_cast<const std::uint8_t*>(text.data()), text.size()));
    policy_state_dirty_ = false;
    policy_usage_dirty_ = false;
}

void VaultService::flush_policy_state()
{
    if (policy_usage_dirty_) {
        policy_state_dirty_ = true;
    }
    save_policy_state_if_dirty();
}

bool VaultService::grant_use_is_enforced(std::string_view grant_id) const noexcept
{
    const policy::GrantDefinition* grant = nullptr;
    if (const policy::RuntimeGrant* runtime = engine_.grants().find(grant_id)) {
        grant = &runtime->definition;
    } else if (engine_.policy()) {
        grant = engine_.policy()->find_grant(grant_id);
    }
    // Unknown: treat as enforced (save now) rather than risk losing a counted use.
    return grant == nullptr || grant->max_uses.has_value() || grant->rate.has_value() ||
           grant->approval != policy::ApprovalMode::None;
}

// Every secret file must authenticate and match the signed manifest; anything else locks the
// vault until the founder has looked. A build without a manifest is upgraded from the files.
void VaultService::check_store()
{
    store_report_ = secrets_->verify_integrity(store::MissingManifest::CreateFromFiles);
    if (store_report_.ok()) {
        return;
    }
    std::string reason = "store integrity check failed: ";
    for (std::size_t i = 0; i < store_report_.problems.size() && i < 4; ++i) {
        reason += (i == 0 ? "" : "; ") + store::describe(store_report_.problems[i]);
    }
    if (store_report_.problems.size() > 4) {
        reason += "; and " + std::to_string(store_report_.problems.size() - 4) + " more";
    }
    lock(reason);
}

void VaultService::save_lock(const store::LockState& state)
{
    lock_ = state;
    lock_->reason = store::sanitize_lock_reason(state.reason);
    store::lock_file::save(state_dir_.get(), *lock_);
}

void VaultService::clear_lock()
{
    store::lock_file::clear(state_dir_.get());
    lock_.reset();
}

store::LockState VaultService::lock_state_for(std::string_view reason) const
{
    store::LockState state = lock_.value_or(store::LockState{});
    if (!lock_) {
        state.locked_since_usec = clock::realtime_usec();
        state.reason = std::string(reason);
    } else if (state.reason.find(reason) == std::string::npos) {
        state.reason += "; then: ";
        state.reason += reason;
    }
    state.mark_done(store::IncidentStep::Locked);
    return state;
}

void VaultService::lock(const std::string& reason) noexcept
{
    try {
        save_lock(lock_state_for(reason));
    } catch (const std::exception& e) {
        // Locked in memory all the same; Status shows why it may not survive a restart.
        if (!lock_) {
            lock_ = store::LockState{};
        }
        lock_->reason = store::sanitize_lock_reason(reason + " (lock not persisted: " + e.what() + ")");
    }
}

bool VaultService::reload_policy()
{
    PolicyLoad load = load_policy_directory(policy_dir_);
    policy_status_ = std::move(load.summary);
    if (!grant_state_error_.empty()) {
        // Grants cannot be served without knowing which were revoked or used up.
        engine_.set_policy(nullptr);
        policy_status_ = "not loaded: " + grant_state_error_;
        return false;
    }
    engine_.set_policy(load.result.policy);
    if (load.result.policy) {
        last_good_policy_ = load.result.policy;
    }
    return load.result.ok();
}

std::size_t VaultService::revoke_all_grants(std::uint64_t now_usec)
{
    std::size_t revoked = engine_.revoke_all(now_usec);
    // With no policy loaded the engine cannot name the policy files' grants; the last policy that
    // loaded can, so an incident never leaves them to come back with the next good reload.
    if (!engine_.policy() && last_good_policy_) {
        revoked += engine_.grants().revoke_all(last_good_policy_.get(), now_usec);
    }
    mark_policy_state_dirty();
    return revoked;
}

VaultState VaultService::state() const noexcept
{
    if (lock_) {
        return VaultState::Locked;
    }
    return founder_.enrolled() ? VaultState::Ready : VaultState::Uninitialized;
}

void VaultService::enroll_founder(const founder::PublicKey& key)
{
    const std::string text = to_hex(key) + "\n";
    fileio::write_file_atomically(state_dir_.get(), kFounderKeyFile,
                                  std::span(reinterpret_cast<const std::uint8_t*>(text.data()), text.size()));
    founder_.enroll(key);
}

}  // namespace codexvault::daemon
