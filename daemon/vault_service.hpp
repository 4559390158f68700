// The vault's state and the operations the bus methods perform, without any bus code: the
// state machine, the keyring, the secret store and the founder authority live here.
#pragma once

#include <sys/types.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/bytes.hpp"
#include "daemon/daemon_config.hpp"
#include "daemon/founder/founder_authority.hpp"
#include "daemon/integrity/lock_state.hpp"
#include "daemon/store/keyring.hpp"
#include "daemon/store/sealed_state.hpp"
#include "daemon/store/secret_store.hpp"
#include "daemon/store/transport_key.hpp"
#include "lib/fileio/unique_fd.hpp"
#include "policy/engine.hpp"

namespace codexvault::audit {
class AuditTrail;
}

namespace codexvault::daemon {

// What start-up found in one authenticated state file (policy-state.json or founder.pub), before
// the audit log was open to compare it with. Nothing was written to find it.
struct StateFileFinding {
    enum class Form {
        Absent,     // no such file
        Authentic,  // sealed under the vault's key (generation and audit stamp below)
        Legacy,     // the unauthenticated format of an earlier version: held back until judged
        Bad,        // fails authentication, malformed, not private, or its body does not decode
    };
    Form form = Form::Absent;
    std::uint64_t generation = 0;  // Authentic only
    store::AuditStamp stamp;       // Authentic only
    std::string detail;            // Bad: why
};

// The founder key's id as Status and `vaultctl init` show it: the first 8 bytes of BLAKE2b-256
// of the Ed25519 public key, as 16 lowercase hex digits (the same fingerprint the audit key's id
// uses, lib/auditcore/checkpoint.hpp key_id_of).
std::string founder_key_id(const founder::PublicKey& key);

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
    // The key pair secret values are sealed to in transit (derived at start-up: its memory is
    // allocated before the seccomp filter forbids memfd_secret).
    [[nodiscard]] const store::TransportKey& transport_key() const noexcept { return transport_key_; }

    // Persists the founder's public key (atomically, sealed) and moves the vault to `ready`.
    // Refuses (PermissionDenied) when a founder is enrolled or the vault is not uninitialized
    // any more: checked when the enrolment is applied, not only when it was authorized, so two
    // enrolments in one commit round cannot both succeed.
    void enroll_founder(const founder::PublicKey& key);
    // "" when no founder is enrolled.
    [[nodiscard]] std::string founder_key_id() const;

    // ---- authenticated state files (sealed_state.hpp) ----
    // The audit trail state writes are recorded in ("state.generation" records) and whose last
    // checkpoint each write is stamped with. Attached once the log is open; before that nothing
    // is written.
    void attach_audit(audit::AuditTrail* trail) noexcept { audit_ = trail; }
    [[nodiscard]] const StateFileFinding& state_file(store::StateKind kind) const noexcept;
    // Generation of the file as last read or written; 0 when it was never written.
    [[nodiscard]] std::uint64_t state_generation(store::StateKind kind) const noexcept;
    // The highest generation the audit log records for the file: the next write goes above it,
    // so a file accepted after a rollback moves past what the log saw.
    void set_recorded_generation(store::StateKind kind, std::uint64_t generation) noexcept;
    // Takes a Legacy file as it is (the start-up check decided it may): decodes it and puts it in
    // force. Throws when its content does not decode (then it is refused instead).
    void adopt_legacy_state(store::StateKind kind);
    // Refuses the file's content: an unusable grant state serves no grants and is never
    // overwritten; an unusable founder key is not enrolled (so nobody can use or re-enrol it).
    void refuse_state(store::StateKind kind, const std::string& reason);
    // Rewrites the file (if there is one to write) with the next generation, stamped with the
    // audit log's last checkpoint, and records the write. Returns whether it wrote.
    bool rewrite_state_file(store::StateKind kind, std::string_view why);
    // A file the start-up check locked for (rolled back, or written against another log) is
    // rewritten when the founder unlocks, so the same finding does not return at the next start.
    void flag_state_for_acceptance(store::StateKind kind) noexcept;
    // Unlock: the grant state is rewritten (an empty one where it was deleted), and each flagged
    // file; founder.pub is otherwise left as enrolment wrote it.
    void accept_state_files(std::string_view why);

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
    // The same save off the loop: the sealed file is made now (from the state as it is, every
    // change of which was decided by a call whose decision record is already appended) and handed
    // to the audit trail, which writes it after the next flush made those records durable; the
    // write is recorded when it completes. `failed` runs on the loop when the write failed (the
    // caller locks the vault). False when there was nothing to save.
    bool save_policy_state_after_flush(std::function<void(const std::string& failure)> failed);
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
    // Called whenever the vault becomes locked, with the reason (the pipeline cuts every provider
    // stream in flight). Must not throw.
    void set_on_lock(std::function<void(const std::string&)> callback) { on_lock_ = std::move(callback); }
    // The lock record `reason` leads to: a new one, or the current one (incident steps kept)
    // with the reason appended.
    [[nodiscard]] store::LockState lock_state_for(std::string_view reason) const;

    // What the start-up integrity check of the store found (audited at start-up).
    [[nodiscard]] const store::IntegrityReport& store_report() const noexcept { return store_inspection_.report; }
    // Puts the store check's result in force: rewrites the manifest when it found an interrupted
    // write to settle, or none to create. Start-up calls it only once the recovery is recorded
    // durably in the audit log (no record, no action).
    void apply_store_check();
    [[nodiscard]] bool store_check_writes() const noexcept { return store_inspection_.write; }
    // Whether the store had a manifest before this start (so the vault has run before with an
    // audit log, and a missing log is not a first start).
    [[nodiscard]] bool had_store_manifest() const noexcept { return had_store_manifest_; }
    [[nodiscard]] int state_dir_fd() const noexcept { return state_dir_.get(); }
    [[nodiscard]] const std::filesystem::path& state_path() const noexcept { return state_path_; }

private:
    VaultService(const DaemonConfig& config, UniqueFd state_dir, store::Keyring keyring);
    void load_policy_state();
    void load_founder_key();
    void check_store();
    void write_state(store::StateKind kind, std::string body, std::string_view why);
    // write_state's halves: the sealed file (its generation taken now, so a later write goes
    // above it), and once it is on disk, the finding and the state.generation record.
    struct PreparedState {
        store::StateKind kind = store::StateKind::PolicyState;
        std::uint64_t generation = 0;
        store::AuditStamp stamp;
        std::string bytes;
    };
    PreparedState prepare_state(store::StateKind kind, std::string body);
    void state_written(const PreparedState& prepared, std::string_view why);
    // The grant state's body, pruned at most once a minute.
    std::string policy_state_body();
    [[nodiscard]] std::span<const std::uint8_t> state_key(store::StateKind kind) const noexcept;

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
    store::IntegrityInspection store_inspection_;
    bool had_store_manifest_ = false;
    store::SecureBuffer grant_state_mac_key_;
    store::SecureBuffer founder_key_mac_key_;
    store::TransportKey transport_key_;
    StateFileFinding state_files_[2];
    std::uint64_t generations_[2] = {0, 0};
    std::uint64_t recorded_generations_[2] = {0, 0};
    std::string legacy_bodies_[2];  // Legacy files, until adopted or refused
    bool needs_acceptance_[2] = {false, false};
    audit::AuditTrail* audit_ = nullptr;
    std::function<void(const std::string&)> on_lock_;
    void notify_locked() noexcept;
};

using bytes::from_hex;
using bytes::to_hex;

}  // namespace codexvault::daemon
