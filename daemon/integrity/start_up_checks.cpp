#include "daemon/integrity/start_up_checks.hpp"

#include <stdexcept>
#include <string>
#include <vector>

#include "daemon/audit/audit_trail.hpp"
#include "daemon/integrity/integrity_control.hpp"
#include "daemon/integrity/state_ledger.hpp"
#include "daemon/vault_service.hpp"
#include "lib/auditcore/log_reader.hpp"

namespace codexvault::daemon {
namespace {

constexpr store::StateKind kStateKinds[] = {store::StateKind::Founder, store::StateKind::PolicyState};

class StartUpNotes {
public:
    explicit StartUpNotes(audit::AuditTrail& trail) : trail_(trail) {}

    void note(audit::EventType type, std::string_view action, std::string_view object, const std::string& reason,
              audit::Decision decision)
    {
        if (trail_.record(audit::AuditRecord{.type = type,
                                             .action = action,
                                             .object = object,
                                             .subject = nullptr,
                                             .sender = "start-up",
                                             .decision = decision,
                                             .reason = reason,
                                             .grant = {},
                                             .informational = false}) == audit::Appended::Failed) {
            throw std::runtime_error("writing the start-up audit records: " + trail_.failure_reason());
        }
    }
    void sync(const std::string& what)
    {
        if (!trail_.sync()) {
            throw std::runtime_error(what + ": " + trail_.failure_reason());
        }
    }

private:
    audit::AuditTrail& trail_;
};

FileView view_of(const StateFileFinding& finding)
{
    FileView view;
    switch (finding.form) {
    case StateFileFinding::Form::Absent:
        view.form = FileForm::Absent;
        break;
    case StateFileFinding::Form::Authentic:
        view.form = FileForm::Authentic;
        break;
    case StateFileFinding::Form::Legacy:
        view.form = FileForm::Legacy;
        break;
    case StateFileFinding::Form::Bad:
        view.form = FileForm::Bad;
        break;
    }
    view.generation = finding.generation;
    view.stamp = finding.stamp;
    view.detail = finding.detail;
    return view;
}

// The generation in the last "state.generation" record of the file (the log verified at open).
std::optional<std::uint64_t> recorded_generation(const std::filesystem::path& dir, store::StateKind kind)
{
    audit::TailQuery query;
    query.filter.action = "state.generation";
    query.filter.object = store::file_name(kind);
    query.limit = 1;
    const audit::TailResult result = audit::read_tail(dir, query);
    if (result.entries.empty()) {
        return std::nullopt;
    }
    return parse_generation_reason(result.entries.back().record.reason);
}

StampInLog find_stamp(const std::filesystem::path& dir, const store::AuditStamp& stamp)
{
    if (stamp.seq == 0) {
        return StampInLog::NotChecked;
    }
    audit::TailQuery query;
    query.after_seq = stamp.seq - 1;
    query.limit = 1;
    const audit::TailResult result = audit::read_tail(dir, query);
    if (result.entries.empty() || result.entries.front().record.seq != stamp.seq) {
        return StampInLog::Missing;
    }
    return result.entries.front().hash == stamp.hash ? StampInLog::Found : StampInLog::Differs;
}

// 1. Recorded, on disk, then rewritten: never the other way round.
void settle_store(VaultService& vault, StartUpNotes& notes)
{
    const store::IntegrityReport& store = vault.store_report();
    for (const auto& recovery : store.recoveries) {
        notes.note(audit::EventType::Integrity, "store.recover", "vault",
                   "secret " + recovery.name + (recovery.rolled_forward ? " rolled forward: " : " rolled back: ") +
                       recovery.detail,
                   audit::Decision::None);
    }
    if (store.manifest_created) {
        notes.note(audit::EventType::Integrity, "store.manifest", "vault",
                   "store manifest created from " + std::to_string(store.adopted.size()) + " authentic secret file(s)",
                   audit::Decision::None);
    }
    if (vault.store_check_writes()) {
        notes.sync("recording the store recovery in the audit log (the store manifest was not rewritten)");
    }
    vault.apply_store_check();
    for (const auto& problem : store.problems) {
        notes.note(audit::EventType::Integrity, "store.verify", "vault", store::describe(problem),
                   audit::Decision::Deny);
    }
}

struct StateOutcome {
    std::vector<std::string> lock_reasons;
    std::vector<store::StateKind> adopted;  // to rewrite in the sealed format
    bool grant_state_sound = true;          // not judged Lock: may be rewritten at start-up
};

// 2. Each state file against the log.
StateOutcome judge_state_files(VaultService& vault, audit::AuditTrail& trail, StartUpNotes& notes)
{
    const audit::OpenReport& report = trail.log().open_report();
    LogView base;
    base.previous_log = report.state == audit::OpenState::Ok || report.state == audit::OpenState::TornTailRecovered;
    base.untrusted = report.tampered();
    const auto& dir = trail.log().directory();
    StateOutcome outcome;
    for (const store::StateKind kind : kStateKinds) {
        const FileView file = view_of(vault.state_file(kind));
        LogView log = base;
        if (base.previous_log) {
            log.recorded_generation = recorded_generation(dir, kind);
            if (file.form == FileForm::Authentic) {
                log.stamp = find_stamp(dir, file.stamp);
            }
        }
        if (log.recorded_generation) {
            vault.set_recorded_generation(kind, *log.recorded_generation);
        }
        Judgement judgement = judge_state_file(kind, file, log);
        if (judgement.verdict == Verdict::Adopt) {
            try {
                vault.adopt_legacy_state(kind);
                notes.note(audit::EventType::Integrity, "state.adopt", store::file_name(kind), judgement.reason,
                           audit::Decision::Allow);
                outcome.adopted.push_back(kind);
            } catch (const std::exception& e) {
                judgement = Judgement{Verdict::Lock, true,
                                      std::string(store::file_name(kind)) + " cannot be adopted: " + e.what()};
            }
        }
        if (judgement.verdict == Verdict::Lock) {
            if (judgement.refuse_content) {
                vault.refuse_state(kind, judgement.reason);
            } else {
                vault.flag_state_for_acceptance(kind);
            }
            notes.note(audit::EventType::Integrity, "state.verify", store::file_name(kind), judgement.reason,
                       audit::Decision::Deny);
            outcome.lock_reasons.push_back(judgement.reason);
            outcome.grant_state_sound = outcome.grant_state_sound && kind != store::StateKind::PolicyState;
        }
    }
    return outcome;
}

bool ran_before(VaultService& vault)
{
    // founder.pub exists only once a founder enrolled, which the log records; a grant state only
    // after a grant changed. Either means a log existed.
    if (vault.had_store_manifest() && vault.founder().enrolled()) {
        return true;
    }
    for (const store::StateKind kind : kStateKinds) {
        if (vault.state_file(kind).form != StateFileFinding::Form::Absent) {
            return true;
        }
    }
    return false;
}

std::string summary(VaultService& vault)
{
    const std::string id = vault.founder_key_id();
    return "founder key " + (id.empty() ? std::string("none enrolled") : id) + " (founder.pub generation " +
           std::to_string(vault.state_generation(store::StateKind::Founder)) + "); grant state generation " +
           std::to_string(vault.state_generation(store::StateKind::PolicyState)) + "; store manifest generation " +
           std::to_string(vault.store_report().generation);
}

}  // namespace

void run_start_up_checks(VaultService& vault, audit::AuditTrail& trail, IntegrityControl& integrity)
{
    StartUpNotes notes(trail);
    const audit::OpenReport& report = trail.log().open_report();
    const bool ran = ran_before(vault);
    settle_store(vault, notes);
    const StateOutcome states = judge_state_files(vault, trail, notes);

    if (report.tampered()) {
        integrity.lock("audit log failed verification (" + report.finding + "); kept as " + report.quarantine,
                       "start-up");
    } else if (report.state == audit::OpenState::New && ran) {
        // A new log for a vault that has run before with a log: it was removed or moved away.
        notes.note(audit::EventType::Integrity, "audit.verify", "vault",
                   "no audit log found, but the vault has run before (its state files exist)", audit::Decision::Deny);
        integrity.lock("audit log missing: the vault has run before, so its log was removed or moved away", "start-up");
    } else if (!vault.store_report().ok()) {
        // Locked by the store check before the log was open: recorded now.
        notes.note(audit::EventType::Lock, "vault.lock", "vault", vault.lock_reason(), audit::Decision::Allow);
    }
    for (const std::string& reason : states.lock_reasons) {
        integrity.lock(reason, "start-up");
    }
    notes.note(audit::EventType::Integrity, "state.start", "vault", summary(vault), audit::Decision::None);
    notes.sync("writing the start-up audit records");

    // From here on every state write is stamped and recorded.
    vault.attach_audit(&trail);
    for (const store::StateKind kind : states.adopted) {
        (void)vault.rewrite_state_file(kind, "adopted");
    }
    // The grant state carries this start's checkpoint (created empty if need be, once a founder
    // is enrolled), so an audit folder restored from before this start is noticed at the next.
    // founder.pub keeps the stamp of its enrolment: it is rewritten only when it must be.
    if (vault.founder().enrolled() && states.grant_state_sound) {
        (void)vault.rewrite_state_file(store::StateKind::PolicyState, "start-up");
    }
    notes.sync("writing the start-up audit records");
}

}  // namespace codexvault::daemon
