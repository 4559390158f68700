// The authenticated state files (policy-state.json, founder.pub): the sealed envelope refuses
// every edit, a file sealed as the other kind or under another key, and tells an earlier
// version's bare file apart; and the start-up judgement of a file against what the audit log
// recorded (deleted, rolled back, replaced, an older or missing log, migration once).
#include <sodium.h>

#include <criterion/criterion.h>

#include <string>
#include <vector>

#include "daemon/integrity/state_ledger.hpp"
#include "daemon/store/sealed_state.hpp"

using namespace codexvault;
using codexvault::daemon::FileForm;
using codexvault::daemon::FileView;
using codexvault::daemon::Judgement;
using codexvault::daemon::LogView;
using codexvault::daemon::StampInLog;
using codexvault::daemon::Verdict;
using store::DecodedState;
using store::SealedState;
using store::StateFault;
using store::StateKind;

namespace {

std::vector<std::uint8_t> key_of(std::uint8_t fill)
{
    return std::vector<std::uint8_t>(store::kStateMacKeyBytes, fill);
}

SealedState sample()
{
    SealedState s;
    s.kind = StateKind::PolicyState;
    s.generation = 7;
    s.audit.seq = 1234;
    s.audit.hash.fill(0xab);
    s.body = "{\"format\": \"codex-vault-policy-state\"}\nsecond line\n";
    return s;
}

void init()
{
    cr_assert_geq(sodium_init(), 0);
}

}  // namespace

TestSuite(sealed_state, .init = init);

Test(sealed_state, a_sealed_file_decodes_to_what_was_written)
{
    const auto key = key_of(1);
    const std::string text = store::encode_sealed_state(sample(), key);
    const DecodedState decoded = store::decode_sealed_state(text, StateKind::PolicyState, key);
    cr_assert(decoded.state.has_value(), "%s", decoded.detail.c_str());
    cr_expect(*decoded.state == sample());
}

Test(sealed_state, every_single_byte_edit_is_refused)
{
    const auto key = key_of(1);
    const std::string text = store::encode_sealed_state(sample(), key);
    // Byte 0 would turn the file into "no header" (Legacy), which is refused by the start-up
    // judgement, not here; every other byte must fail authentication or shape.
    for (std::size_t i = 1; i < text.size(); ++i) {
        std::string edited = text;
        edited[i] = static_cast<char>(edited[i] ^ 0x01);
        const DecodedState decoded = store::decode_sealed_state(edited, StateKind::PolicyState, key);
        cr_assert(!decoded.state.has_value(), "an edit at byte %zu was accepted", i);
    }
}

Test(sealed_state, another_key_or_the_other_kind_is_refused)
{
    const std::string text = store::encode_sealed_state(sample(), key_of(1));
    const DecodedState other_key = store::decode_sealed_state(text, StateKind::PolicyState, key_of(2));
    cr_expect(!other_key.state.has_value());
    cr_expect_eq(other_key.fault, StateFault::Unauthentic);
    // Same key on purpose (the daemon uses one key per kind, so a copy fails the MAC first).
    const DecodedState other_kind = store::decode_sealed_state(text, StateKind::Founder, key_of(1));
    cr_expect(!other_kind.state.has_value());
    cr_expect_eq(other_kind.fault, StateFault::WrongKind);
}

Test(sealed_state, a_bare_file_is_legacy_and_a_cut_one_is_malformed)
{
    const auto key = key_of(1);
    const DecodedState bare = store::decode_sealed_state("00ff\n", StateKind::Founder, key);
    cr_expect(!bare.state.has_value());
    cr_expect_eq(bare.fault, StateFault::Legacy);
    cr_expect_eq(bare.legacy_body, "00ff\n");
    const std::string text = store::encode_sealed_state(sample(), key);
    for (const std::size_t cut : {text.size() - 1, text.size() - 70, std::size_t{25}}) {
        const DecodedState decoded = store::decode_sealed_state(text.substr(0, cut), StateKind::PolicyState, key);
        cr_expect(!decoded.state.has_value(), "cut at %zu accepted", cut);
        cr_expect_neq(decoded.fault, StateFault::Legacy);
    }
    cr_expect(!store::decode_sealed_state(text + "x", StateKind::PolicyState, key).state.has_value());
}

Test(sealed_state, generation_zero_and_a_short_key_are_never_written)
{
    SealedState s = sample();
    s.generation = 0;
    bool threw = false;
    try {
        (void)store::encode_sealed_state(s, key_of(1));
    } catch (const std::invalid_argument&) {
        threw = true;
    }
    cr_expect(threw);
    threw = false;
    try {
        (void)store::encode_sealed_state(sample(), std::vector<std::uint8_t>(16, 1));
    } catch (const std::invalid_argument&) {
        threw = true;
    }
    cr_expect(threw);
}

// ---- judging a file against the log -----------------------------------------------------------

namespace {

FileView authentic(std::uint64_t generation, std::uint64_t seq = 10)
{
    FileView f;
    f.form = FileForm::Authentic;
    f.generation = generation;
    f.stamp.seq = seq;
    return f;
}

LogView log_with(std::optional<std::uint64_t> recorded, StampInLog stamp = StampInLog::Found)
{
    LogView l;
    l.previous_log = true;
    l.recorded_generation = recorded;
    l.stamp = stamp;
    return l;
}

Judgement judge(const FileView& f, const LogView& l)
{
    return daemon::judge_state_file(StateKind::PolicyState, f, l);
}

}  // namespace

TestSuite(state_ledger);

Test(state_ledger, a_file_at_or_above_the_recorded_generation_is_accepted)
{
    cr_expect_eq(judge(authentic(5), log_with(5)).verdict, Verdict::Accept);
    // Newer than the log: the record of the last write was lost in a crash.
    cr_expect_eq(judge(authentic(6), log_with(5)).verdict, Verdict::Accept);
    cr_expect_eq(judge(FileView{}, log_with(std::nullopt)).verdict, Verdict::Accept);  // never written
}

Test(state_ledger, a_rollback_a_deletion_and_a_forgery_lock)
{
    const Judgement rolled = judge(authentic(4), log_with(5));
    cr_expect_eq(rolled.verdict, Verdict::Lock);
    cr_expect_not(rolled.refuse_content);
    cr_expect(rolled.reason.find("rolled back") != std::string::npos, "%s", rolled.reason.c_str());

    const Judgement deleted = judge(FileView{}, log_with(5));
    cr_expect_eq(deleted.verdict, Verdict::Lock);
    cr_expect(deleted.reason.find("missing") != std::string::npos, "%s", deleted.reason.c_str());

    FileView bad;
    bad.form = FileForm::Bad;
    bad.detail = "not authentic";
    const Judgement forged = judge(bad, log_with(std::nullopt));
    cr_expect_eq(forged.verdict, Verdict::Lock);
    cr_expect(forged.refuse_content);
}

Test(state_ledger, a_log_that_is_missing_older_or_another_locks)
{
    LogView none;  // no log before this start
    cr_expect_eq(judge(authentic(3), none).verdict, Verdict::Lock);
    const Judgement older = judge(authentic(3), log_with(3, StampInLog::Missing));
    cr_expect_eq(older.verdict, Verdict::Lock);
    cr_expect(older.reason.find("older") != std::string::npos, "%s", older.reason.c_str());
    cr_expect_eq(judge(authentic(3), log_with(3, StampInLog::Differs)).verdict, Verdict::Lock);
    // Written before any log was open (seq 0): nothing to compare with.
    cr_expect_eq(judge(authentic(1, 0), log_with(std::nullopt, StampInLog::NotChecked)).verdict, Verdict::Accept);
}

Test(state_ledger, an_earlier_versions_file_is_adopted_only_once_and_only_with_a_log)
{
    FileView legacy;
    legacy.form = FileForm::Legacy;
    cr_expect_eq(judge(legacy, log_with(std::nullopt)).verdict, Verdict::Adopt);
    const Judgement replaced = judge(legacy, log_with(2));
    cr_expect_eq(replaced.verdict, Verdict::Lock);
    cr_expect(replaced.refuse_content);
    const Judgement unvouched = judge(legacy, LogView{});
    cr_expect_eq(unvouched.verdict, Verdict::Lock);
    cr_expect(unvouched.refuse_content);
}

Test(state_ledger, a_quarantined_log_is_not_asked)
{
    LogView untrusted;
    untrusted.untrusted = true;
    untrusted.recorded_generation = 9;
    cr_expect_eq(judge(authentic(3), untrusted).verdict, Verdict::Accept);  // the tamper lock covers it
    FileView legacy;
    legacy.form = FileForm::Legacy;
    cr_expect_eq(judge(legacy, untrusted).verdict, Verdict::Lock);
}

Test(state_ledger, the_generation_is_read_back_from_its_record)
{
    const std::string reason = daemon::generation_reason(42, "grant state changed", 17);
    cr_expect_eq(daemon::parse_generation_reason(reason), std::optional<std::uint64_t>(42));
    cr_expect(!daemon::parse_generation_reason("generation x").has_value());
    cr_expect(!daemon::parse_generation_reason("adopted").has_value());
    cr_expect(!daemon::parse_generation_reason("generation 0 (x)").has_value());
}
