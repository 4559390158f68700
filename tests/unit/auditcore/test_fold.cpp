// Folding repeated records: the first per key and window is written, repeats are counted; the key
// never holds text the caller chose, and no subject writes more than a fixed number of foldable
// records per window however it varies its calls, so a caller cannot fill the disk.
#include <criterion/criterion.h>

#include <cstdint>
#include <string>

#include "lib/auditcore/fold.hpp"
#include "lib/auditcore/record.hpp"

using namespace codexvault::audit;

namespace {

RecordView decision(std::uint32_t uid, std::string_view action, Decision d, std::string_view reason)
{
    RecordView r;
    r.type = EventType::Decision;
    r.decision = d;
    r.subject_known = true;
    r.uid = uid;
    r.pid = 4242;
    r.sender = ":1.77";
    r.action = action;
    r.object = "openai-key";
    r.reason = reason;
    return r;
}

}  // namespace

Test(audit_fold, first_per_window_is_written_repeats_are_counted)
{
    Folder folder;
    const RecordView status = decision(1000, "status", Decision::Allow, "informational");
    cr_assert(folder.offer(status, true, 100) == FoldVerdict::Write);
    cr_assert(folder.offer(status, true, 200) == FoldVerdict::Folded);
    cr_assert(folder.offer(status, true, 300) == FoldVerdict::Folded);
    cr_assert(folder.take_due(999'999).empty(), "window not over");
    cr_assert_eq(*folder.deadline(), 1'000'100U);
    const auto due = folder.take_due(1'000'100);
    cr_assert_eq(due.size(), 1U);
    cr_assert_eq(due[0].count, 2U);
    cr_assert(due[0].view().type == EventType::FoldedRepeats);
    cr_assert_eq(due[0].view().repeat_count, 2U);
    cr_assert_not(folder.deadline().has_value());
    // A new window: written again first.
    cr_assert(folder.offer(status, true, 2'000'000) == FoldVerdict::Write);
}

Test(audit_fold, allowed_state_changes_are_never_folded_and_keys_differ_by_subject_action_and_decision)
{
    Folder folder;
    const RecordView put = decision(1000, "put", Decision::Allow, "founder");
    for (int i = 0; i < 5; ++i) {
        cr_assert(folder.offer(put, false, 10) == FoldVerdict::Write);
    }
    cr_assert_eq(folder.key_count(), 0U);
    cr_assert(folder.offer(decision(1000, "put", Decision::Deny, "a"), false, 10) == FoldVerdict::Write);
    cr_assert(folder.offer(decision(1001, "put", Decision::Deny, "a"), false, 10) == FoldVerdict::Write);
    cr_assert(folder.offer(decision(1000, "rm", Decision::Deny, "a"), false, 10) == FoldVerdict::Write);
    cr_assert(folder.offer(decision(1000, "put", Decision::Deny, "a"), false, 10) == FoldVerdict::Folded);
    // A different reason is not a different key: reasons can quote what the caller sent.
    cr_assert(folder.offer(decision(1000, "put", Decision::Deny, "b"), false, 10) == FoldVerdict::Folded);
    // An unknown subject is keyed by its sender.
    RecordView anon = decision(0, "put", Decision::Deny, "unknown subject");
    anon.subject_known = false;
    anon.sender = ":1.5";
    cr_assert(folder.offer(anon, false, 10) == FoldVerdict::Write);
    anon.sender = ":1.6";
    cr_assert(folder.offer(anon, false, 10) == FoldVerdict::Write);
    cr_assert(folder.offer(anon, false, 10) == FoldVerdict::Folded);
    const auto all = folder.take_all();
    cr_assert_eq(all.size(), 2U);
    for (const auto& f : all) {
        if (f.subject_known) {
            cr_assert_eq(f.count, 2U);
            cr_assert_eq(f.reason, "a", "the folded record keeps the first reason");
        }
    }
}

Test(audit_fold, a_flood_of_distinct_caller_text_from_one_uid_writes_a_bounded_number_of_records)
{
    Folder folder;
    std::size_t written = 0;
    // 10,000 denials a second, each quoting a different capability string, over five windows.
    for (std::uint64_t window = 0; window < 5; ++window) {
        for (int i = 0; i < 10000; ++i) {
            const std::string reason = "invalid capability 'x" + std::to_string(window * 10000 + i) + "'";
            RecordView r = decision(65534, i % 2 == 0 ? "grant.check" : "grant.use", Decision::Deny, reason);
            r.object = reason;
            if (folder.offer(r, i % 2 == 0, window * 1'000'000 + static_cast<std::uint64_t>(i)) == FoldVerdict::Write) {
                ++written;
            }
        }
        written += folder.take_due((window + 1) * 1'000'000).size();
    }
    // Two actions: at most two written and two folded-repeats records per window.
    cr_assert_leq(written, 5U * 4U, "%zu records written for 50,000 calls", written);
}

Test(audit_fold, a_subject_writes_at_most_its_cap_per_window_whatever_it_varies)
{
    FoldLimits limits;
    limits.max_written_per_subject = 3;
    Folder folder(limits);
    std::size_t written = 0;
    for (int i = 0; i < 100; ++i) {
        // A new action each time (the table's actions are few; this stands for any key-varying field).
        if (folder.offer(decision(1000, "action-" + std::to_string(i), Decision::Deny, "r"), false, 10) ==
            FoldVerdict::Write) {
            ++written;
        }
    }
    cr_assert_eq(written, 3U);
    // Another subject has its own cap.
    cr_assert(folder.offer(decision(1001, "action-0", Decision::Deny, "r"), false, 10) == FoldVerdict::Write);
    // Unidentified callers share one cap, whatever their sender.
    for (int i = 0; i < 10; ++i) {
        RecordView anon = decision(0, "put", Decision::Deny, "unknown subject");
        anon.subject_known = false;
        anon.sender = ":1." + std::to_string(100 + i);
        const FoldVerdict verdict = folder.offer(anon, false, 10);
        cr_assert(i < 3 ? verdict == FoldVerdict::Write : verdict == FoldVerdict::Folded, "anonymous call %d", i);
    }
    std::uint64_t total = 0;
    for (const auto& f : folder.take_all()) {
        total += f.count;
    }
    cr_assert_eq(total, 97U + 7U, "every call beyond the cap is counted");
}

Test(audit_fold, the_key_table_is_bounded)
{
    FoldLimits limits;
    limits.max_keys = 4;
    limits.max_overflow_keys = 2;
    Folder folder(limits);
    for (int i = 0; i < 4; ++i) {
        cr_assert(folder.offer(decision(1000, "a" + std::to_string(i), Decision::Deny, "r"), false, 10) ==
                  FoldVerdict::Write);
    }
    // Table full: new keys are counted under a per-subject overflow key, then a catch-all.
    for (std::uint32_t uid = 2000; uid < 2100; ++uid) {
        for (int i = 0; i < 10; ++i) {
            cr_assert(folder.offer(decision(uid, "x" + std::to_string(i), Decision::Deny, "r"), false, 10) ==
                      FoldVerdict::Folded);
        }
    }
    cr_assert_leq(folder.key_count(), 4U + 2U + 1U);
    const auto due = folder.take_due(2'000'000);
    std::uint64_t total = 0;
    for (const auto& f : due) {
        cr_assert(f.overflow);
        cr_assert_eq(f.action, "*");
        total += f.count;
    }
    cr_assert_eq(total, 1000U, "every call is accounted for");
    cr_assert_eq(due.size(), 3U);

    // Key strings are cut, so one key cannot hold unbounded memory.
    limits.max_key_field_bytes = 8;
    Folder small(limits);
    const std::string long_reason(10000, 'x');
    cr_assert(small.offer(decision(1, "a", Decision::Deny, long_reason), false, 0) == FoldVerdict::Write);
    cr_assert(small.offer(decision(1, "a", Decision::Deny, long_reason), false, 0) == FoldVerdict::Folded);
    cr_assert_eq(small.take_all()[0].reason.size(), 8U);
}
