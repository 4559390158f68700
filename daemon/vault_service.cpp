#include "daemon/vault_service.hpp"

#include <stdexcept>

#include "common/vault_error.hpp"
#include "daemon/audit/audit_trail.hpp"
#include "daemon/integrity/lock_file.hpp"
#include "daemon/integrity/state_ledger.hpp"
#include "daemon/monotonic_clock.hpp"
#include "daemon/policy_files.hpp"
#include "daemon/store/state_file.hpp"
#include "lib/auditcore/checkpoint.hpp"
#include "lib/fileio/files.hpp"
#include "policy/persistence.hpp"

namespace codexvault::daemon {
namespace {

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

std::size_t index(store::StateKind kind) noexcept
{
    return kind == store::StateKind::Founder ? 1 : 0;
}

std::optional<founder::PublicKey> parse_founder_key(std::string text)
{
    while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) {
        text.pop_back();
    }
    const auto bytes = from_hex(text);
    founder::PublicKey key{};
    if (!bytes || bytes->size() != key.size()) {
        return std::nullopt;
    }
    std::copy(bytes->begin(), bytes->end(), key.begin());
    return key;
}

StateFileFinding bad(std::string detail)
{
    StateFileFinding finding;
    finding.form = StateFileFinding::Form::Bad;
    finding.detail = std::move(detail);
    return finding;
}

}  // namespace

std::string founder_key_id(const founder::PublicKey& key)
{
    audit::PublicKey as_audit_key{};
    static_assert(sizeof(as_audit_key) == sizeof(key));
    std::copy(key.begin(), key.end(), as_audit_key.begin());
    return to_hex(audit::key_id_of(as_audit_key));
}

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
    service->load_founder_key();
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
      engine_(engine_options(config)),
      grant_state_mac_key_(
          keyring_.derive(store::kGrantStateMacSubkeyId, store::kGrantStateMacContext, store::kStateMacKeyBytes)),
      founder_key_mac_key_(
          keyring_.derive(store::kFounderKeyMacSubkeyId, store::kFounderKeyMacContext, store::kStateMacKeyBytes)),
      transport_key_(store::TransportKey::derive(keyring_))
{
}

std::span<const std::uint8_t> VaultService::state_key(store::StateKind kind) const noexcept
{
    return kind == store::StateKind::Founder ? founder_key_mac_key_.span() : grant_state_mac_key_.span();
}

// Reads founder.pub; only an authentic key is enrolled now. A legacy one waits for the start-up
// check (adopt or refuse), a bad one is never enrolled: whoever can replace this file would
// otherwise become the founder.
void VaultService::load_founder_key()
{
    const auto kind = store::StateKind::Founder;
    const store::StateFileRead file = store::read_state_file(state_dir_.get(), kind, state_key(kind));
    StateFileFinding& finding = state_files_[index(kind)];
    if (!file.present) {
        return;
    }
    if (file.decoded.fault == store::StateFault::Legacy && !file.decoded.state) {
        finding.form = StateFileFinding::Form::Legacy;
        legacy_bodies_[index(kind)] = file.decoded.legacy_body;
        return;
    }
    if (!file.decoded.state) {
        finding = bad(std::string(store::to_string(file.decoded.fault)) + ": " + file.decoded.detail);
        return;
    }
    const auto key = parse_founder_key(file.decoded.state->body);
    if (!key) {
        finding = bad("authentic, but does not hold a founder public key (64 hex digits)");
        return;
    }
    finding.form = StateFileFinding::Form::Authentic;
    finding.generation = file.decoded.state->generation;
    finding.stamp = file.decoded.state->audit;
    generations_[index(kind)] = finding.generation;
    founder_.enroll(*key);
}

void VaultService::load_policy_state()
{
    const auto kind = store::StateKind::PolicyState;
    const store::StateFileRead file = store::read_state_file(state_dir_.get(), kind, state_key(kind));
    StateFileFinding& finding = state_files_[index(kind)];
    if (!file.present) {
        return;  // first start, or no runtime grants yet (the start-up check asks the log which)
    }
    if (file.decoded.fault == store::StateFault::Legacy && !file.decoded.state) {
        // Serves no grants until the start-up check adopts it.
        finding.form = StateFileFinding::Form::Legacy;
        legacy_bodies_[index(kind)] = file.decoded.legacy_body;
        grant_state_error_ = "grant state file " + std::string(store::file_name(kind)) +
                             " is not authenticated and has not been adopted";
        engine_.set_policy(nullptr);
        policy_status_ = "not loaded: " + grant_state_error_;
        return;
    }
    if (!file.decoded.state) {
        finding = bad(std::string(store::to_string(file.decoded.fault)) + ": " + file.decoded.detail);
        refuse_state(
            kind, "grant state file " + std::string(store::file_name(kind)) + " is unusable (" + finding.detail + ")");
        return;
    }
    auto decoded = policy::decode_state(file.decoded.state->body, engine_.approvals().options());
    if (!decoded) {
        finding = bad("authentic, but its grant state does not decode: " + decoded.message());
        refuse_state(kind, "grant state file " + std::string(store::file_name(kind)) + " is unreadable (" +
                               decoded.message() + ")");
        return;
    }
    finding.form = StateFileFinding::Form::Authentic;
    finding.generation = file.decoded.state->generation;
    finding.stamp = file.decoded.state->audit;
    generations_[index(kind)] = finding.generation;
    auto state = std::move(decoded).value();
    engine_.replace_state(std::move(state.grants), std::move(state.approvals));
}

const StateFileFinding& VaultService::state_file(store::StateKind kind) const noexcept
{
    return state_files_[index(kind)];
}

std::uint64_t VaultService::state_generation(store::StateKind kind) const noexcept
{
    return generations_[index(kind)];
}

void VaultService::set_recorded_generation(store::StateKind kind, std::uint64_t generation) noexcept
{
    recorded_generations_[index(kind)] = generation;
}

void VaultService::adopt_legacy_state(store::StateKind kind)
{
    const std::string& body = legacy_bodies_[index(kind)];
    if (kind == store::StateKind::Founder) {
        const auto key = parse_founder_key(body);
        if (!key) {
            throw std::runtime_error("founder.pub does not hold a founder public key (64 hex digits)");
        }
        founder_.enroll(*key);
    } else {
        auto decoded = policy::decode_state(body, engine_.approvals().options());
        if (!decoded) {
            throw std::runtime_error("grant state file policy-state.json is unreadable (" + decoded.message() + ")");
        }
        auto state = std::move(decoded).value();
        engine_.replace_state(std::move(state.grants), std::move(state.approvals));
        grant_state_error_.clear();
        reload_policy();
    }
    state_files_[index(kind)].form = StateFileFinding::Form::Authentic;
}

void VaultService::refuse_state(store::StateKind kind, const std::string& reason)
{
    if (kind == store::StateKind::Founder) {
        // Nothing to undo: an unauthenticated key is never enrolled (load_founder_key).
        return;
    }
    // Serving grants from a state we cannot trust could bring revoked grants back, and
    // overwriting it would forget them for good: serve no grants, never write it.
    grant_state_error_ = reason + "; restore it or move it aside, then restart";
    engine_.set_policy(nullptr);
    policy_status_ = "not loaded: " + grant_state_error_;
}

bool VaultService::rewrite_state_file(store::StateKind kind, std::string_view why)
{
    if (kind == store::StateKind::Founder) {
        if (!founder_.enrolled()) {
            return false;
        }
        write_state(kind, to_hex(*founder_.public_key()) + "\n", why);
        return true;
    }
    if (!grant_state_error_.empty()) {
        return false;
    }
    write_state(kind, policy::encode_state(engine_.grants(), engine_.approvals()), why);
    return true;
}

void VaultService::flag_state_for_acceptance(store::StateKind kind) noexcept
{
    needs_acceptance_[index(kind)] = true;
}

void VaultService::accept_state_files(std::string_view why)
{
    for (const store::StateKind kind : {store::StateKind::Founder, store::StateKind::PolicyState}) {
        if (kind == store::StateKind::PolicyState || needs_acceptance_[index(kind)]) {
            (void)rewrite_state_file(kind, why);
            needs_acceptance_[index(kind)] = false;
        }
    }
}

// Every write: the next generation (above what the audit log has seen), stamped with the log's
// last durable checkpoint, then one record of the generation. The record follows the file: a crash between the two
// leaves the file newer than the log says, which is accepted; the reverse would lock a vault nobody attacked.
void VaultService::write_state(store::StateKind kind, std::string body, std::string_view why)
{
    if (kind == store::StateKind::PolicyState && audit_ != nullptr) {
        // A grant-state save handed to the flusher lands first (or is withdrawn: this write holds
        // the newer state), so an older copy never replaces this one.
        audit_->settle_state_write();
    }
    const PreparedState prepared = prepare_state(kind, std::move(body));
    fileio::write_file_atomically(
        state_dir_.get(), store::file_name(kind),
        std::span(reinterpret_cast<const std::uint8_t*>(prepared.bytes.data()), prepared.bytes.size()), 0600);
    state_written(prepared, why);
}

VaultService::PreparedState VaultService::prepare_state(store::StateKind kind, std::string body)
{
    store::SealedState sealed;
    sealed.kind = kind;
    sealed.generation = std::max(generations_[index(kind)], recorded_generations_[index(kind)]) + 1;
    // A checkpoint whose flush is still out is not in the log yet as far as a crash is concerned:
    // then the previous stamp (an older record the log surely holds) is kept.
    sealed.audit = state_files_[index(kind)].stamp;
    if (audit_ != nullptr) {
        const auto& log = audit_->log();
        const auto& chain = log.chain_state();
        if (chain.last_checkpoint_seq != 0 && chain.last_checkpoint_seq <= log.durable_seq()) {
            sealed.audit.seq = chain.last_checkpoint_seq;
            std::copy(chain.last_checkpoint_hash.begin(), chain.last_checkpoint_hash.end(), sealed.audit.hash.begin());
        }
    }
    sealed.body = std::move(body);
    PreparedState prepared{.kind = kind,
                           .generation = sealed.generation,
                           .stamp = sealed.audit,
                           .bytes = store::encode_sealed_state(sealed, state_key(kind))};
    // Taken now: a write prepared later goes above it even if this one is still on its way.
    generations_[index(kind)] = sealed.generation;
    return prepared;
}

void VaultService::state_written(const PreparedState& prepared, std::string_view why)
{
    StateFileFinding& finding = state_files_[index(prepared.kind)];
    finding.form = StateFileFinding::Form::Authentic;
    finding.generation = prepared.generation;
    finding.stamp = prepared.stamp;
    if (audit_ == nullptr) {
        return;
    }
    std::string reason = generation_reason(prepared.generation, why, prepared.stamp.seq);
    if (prepared.kind == store::StateKind::Founder) {
        reason += "; founder key " + founder_key_id();
    }
    // A failed log fails every later call; the file is written, so nothing more to do here.
    (void)audit_->record(audit::AuditRecord{.type = audit::EventType::Integrity,
                                            .action = "state.generation",
                                            .object = store::file_name(prepared.kind),
                                            .subject = nullptr,
                                            .sender = "daemon",
                                            .decision = audit::Decision::None,
                                            .reason = reason,
                                            .grant = {},
                                            .informational = false});
}

std::string VaultService::policy_state_body()
{
    const auto now = clock::realtime_usec();
    // Pruning rebuilds the grant index, so it runs at most once a minute, not on every use.
    if (now - last_prune_usec_ >= kPruneIntervalUsec) {
        engine_.grants().prune(engine_.policy().get(), now, kKeepFinishedGrantsUsec);
        engine_.approvals().prune(now);
        last_prune_usec_ = now;
    }
    return policy::encode_state(engine_.grants(), engine_.approvals());
}

void VaultService::save_policy_state_if_dirty()
{
    if (!policy_state_dirty_) {
        return;
    }
    if (!grant_state_error_.empty()) {
        throw std::runtime_error(grant_state_error_);
    }
    write_state(store::StateKind::PolicyState, policy_state_body(), "grant state changed");
    policy_state_dirty_ = false;
    policy_usage_dirty_ = false;
}

bool VaultService::save_policy_state_after_flush(std::function<void(const std::string& failure)> failed)
{
    if (!policy_state_dirty_ && !policy_usage_dirty_) {
        return false;
    }
    if (!grant_state_error_.empty()) {
        throw std::runtime_error(grant_state_error_);
    }
    if (audit_ == nullptr) {
        flush_policy_state();
        return true;
    }
    auto prepared = std::make_shared<PreparedState>(prepare_state(store::StateKind::PolicyState, policy_state_body()));
    const bool enforced = policy_state_dirty_;
    policy_state_dirty_ = false;
    policy_usage_dirty_ = false;
    audit::StateFileWrite write{
        .dir_fd = state_dir_.get(), .name = store::file_name(store::StateKind::PolicyState), .bytes = prepared->bytes};
    audit_->write_state_after_flush(
        std::move(write), [this, prepared, enforced, failed = std::move(failed)](audit::StateWriteOutcome outcome,
                                                                                 const std::string& failure) {
            switch (outcome) {
            case audit::StateWriteOutcome::Written:
                state_written(*prepared, "grant state changed");
                break;
            case audit::StateWriteOutcome::Skipped:
                // Withdrawn for a synchronous write of the newer state, or the log failed: what
                // it held is saved by the next save (and none is saved after a failed log).
                policy_usage_dirty_ = true;
                policy_state_dirty_ = policy_state_dirty_ || enforced;
                break;
            case audit::StateWriteOutcome::Failed:
                failed(failure);
                break;
            }
        });
    return true;
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
// Inspects only: a recovery or a created manifest is written by apply_store_check(), once the
// audit log holds the record of it.
void VaultService::check_store()
{
    store_inspection_ = secrets_->inspect_integrity(store::MissingManifest::CreateFromFiles);
    const store::IntegrityReport& report = store_inspection_.report;
    if (report.ok()) {
        return;
    }
    std::string reason = "store integrity check failed: ";
    for (std::size_t i = 0; i < report.problems.size() && i < 4; ++i) {
        reason += (i == 0 ? "" : "; ") + store::describe(report.problems[i]);
    }
    if (report.problems.size() > 4) {
        reason += "; and " + std::to_string(report.problems.size() - 4) + " more";
    }
    lock(reason);
}

void VaultService::apply_store_check()
{
    secrets_->apply_integrity(store_inspection_);
    store_inspection_.write = false;
}

void VaultService::save_lock(const store::LockState& state)
{
    lock_ = state;
    lock_->reason = store::sanitize_lock_reason(state.reason);
    notify_locked();  // in force in memory from here, whether or not the file is written
    store::lock_file::save(state_dir_.get(), *lock_);
}

void VaultService::notify_locked() noexcept
{
    if (on_lock_ && lock_) {
        try {
            on_lock_(lock_->reason);
        } catch (const std::exception&) {
            // cancel_all only queues cancellations; nothing it throws may stop a lock
        }
    }
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
        notify_locked();
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
    if (founder_.enrolled() || state() != VaultState::Uninitialized) {
        throw VaultError(ErrorCode::PermissionDenied, "a founder is already enrolled");
    }
    founder_.enroll(key);
    try {
        write_state(store::StateKind::Founder, to_hex(key) + "\n", "enrolled");
    } catch (...) {
        founder_ = founder::FounderAuthority();  // not persisted: not enrolled
        throw;
    }
}

std::string VaultService::founder_key_id() const
{
    const auto& key = founder_.public_key();
    return key ? daemon::founder_key_id(*key) : std::string();
}

}  // namespace codexvault::daemon
