// The vault's state and the operations the bus methods perform, without any bus code: the
// state machine, the keyring, the secret store and the founder authority live here.
#pragma once

#include <sys/types.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/bytes.hpp"
#include "daemon/daemon_config.hpp"
#include "daemon/founder/founder_authority.hpp"
#include "daemon/integrity/lock_state.hpp"
#include "daemon/store/keyring.hpp"
#include "daemon/store/secret_store.hpp"
#include "lib/fileio/unique_fd.hpp"
#include "policy/engine.hpp"

namespace codexvault::daemon {

enum class VaultState { Uninitialized, Ready, Locked };
const char* to_string(VaultState state) noexcept;

class VaultService {
public:
    // Opens (creating on first start) the state folder, loads the master key and the store,
    // and the enrolled founder key if there is one. Throws with the offending path named.
    static std::unique_ptr<VaultService> open(const DaemonConfig& config);

    [[nodiscard]] VaultState state() const noexcept;
    [[nodiscard]] std::string lock_reason() const { return lock_ ? lock_->reason : std::string(); }
    [[nodiscard]] uid_t founder_uid() const noexcept { return founder_uid_; }
    [[nodiscard]] const store::Keyring& keyring() const noexcept { return keyring_; }
    [[nodiscard]] founder::FounderAuthority& founder() noexcept { return founder_; }
    [[nodiscard]] store::SecretStore& secrets() noexcept { return *secrets_; }

    // Persists the founder's public key (atomically) and moves the vault to `ready`.
    void enroll_founder(const founder::PublicKey& key);

    // Re-reads the policy folder. On failure the engine gets no policy, so every grant-based
    // use is denied until a good policy loads; it never keeps serving the previous one.
    // Returns whether a policy is now loaded.
    bool reload_policy();
    [[nodiscard]] const std::string& policy_status() const noexcept { return policy_status_; }
    [[nodiscard]] policy::Engine& engine() noexcept { return engine_; }

    // Grant state (runtime grants, uses, revocations, approvals) persists in STATE/policy-state.json.
    // Operations that change it mark it dirty; the pipeline saves it once before replying, so a
    // reply never reports a change that a crash could undo. Throws when it cannot be written.
    void mark_policy_state_dirty() noexcept { policy_state_dirty_ = true; }
    // A change a crash may lose without weakening any check: a use of a grant with no max_uses,
    // no rate and no approval (its count and last-use time are shown, never enforced; the audit
    // log holds every use). Saved with the next urgent save or by flush_policy_state(), which
    // the pipeline runs within a second.
    void mark_policy_usage_dirty() noexcept { policy_usage_dirty_ = true; }
    [[nodiscard]] bool policy_usage_unsaved() const noexcept { return policy_usage_dirty_; }
    [[nodiscard]] bool policy_state_unsaved() const noexcept { return policy_state_dirty_; }
    void flush_policy_state();
    // Whether a use of this grant changes state that a later decision depends on (max_uses,
    // rate, approval = once) and so must be on disk before the reply.
    [[nodiscard]] bool grant_use_is_enforced(std::string_view grant_id) const noexcept;
    // Revokes every grant and denies every outstanding approval (incident response); also the
    // grants of the last policy that loaded when none is loaded now. Returns how many changed.
    std::size_t revoke_all_grants(std::uint64_t now_usec);
    void save_policy_state_if_dirty();

    // The persistent lock (STATE/lock): while there is one, every call but the recovery set is
    // refused, across restarts, until the founder unlocks. save_lock() writes before it takes
    // effect; if the write fails the vault is locked in memory anyway and the error is thrown.
    [[nodiscard]] const std::optional<store::LockState>& lock_state() const noexcept { return lock_; }
    void save_lock(const store::LockState& state);
    void clear_lock();
    // Locks for `reason` (keeping an existing lock's incident record); never throws: a lock that
    // cannot be written still holds in memory, and the reason says so.
    void lock(const std::string& reason) noexcept;
    // The lock record `reason` leads to: a new one, or the current one (incident steps kept)
    // with the reason appended.
    [[nodiscard]] store::LockState lock_state_for(std::string_view reason) const;

    // What the start-up integrity check of the store found (audited at start-up).
    [[nodiscard]] const store::IntegrityReport& store_report() const noexcept { return store_report_; }
    // Whether the store had a manifest before this start (so the vault has run before with an
    // audit log, and a missing log is not a first start).
    [[nodiscard]] bool had_store_manifest() const noexcept { return had_store_manifest_; }
    [[nodiscard]] int state_dir_fd() const noexcept { return state_dir_.get(); }
    [[nodiscard]] const std::filesystem::path& state_path() const noexcept { return state_path_; }

private:
    VaultService(const DaemonConfig& config, UniqueFd state_dir, store::Keyring keyring);
    void load_policy_state();
    void check_store();

    uid_t founder_uid_;
    UniqueFd state_dir_;
    store::Keyring keyring_;
    std::unique_ptr<store::SecretStore> secrets_;
    founder::FounderAuthority founder_;
    std::filesystem::path policy_dir_;
    std::filesystem::path state_path_;
    policy::Engine engine_;
    std::string policy_status_;
    bool policy_state_dirty_ = false;
    bool policy_usage_dirty_ = false;
    std::string grant_state_error_;  // set when policy-state.json could not be read at start-up
    std::shared_ptr<const policy::PolicySet> last_good_policy_;
    std::uint64_t last_prune_usec_ = 0;
    std::optional<store::LockState> lock_;
    store::IntegrityReport store_report_;
    bool had_store_manifest_ = false;
};

using bytes::from_hex;
using bytes::to_hex;

}  // namespace codexvault::daemon
