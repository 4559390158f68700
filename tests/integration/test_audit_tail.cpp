// AuditTail's cost is bounded per call: a filter that matches nothing reads at most the scan
// budget of the log and says the answer is incomplete, and follow-mode paging still reaches every
// record. The budget is lowered through the query (a caller may only lower it) so a small log
// shows what a large one would.
#include <systemd/sd-bus.h>

#include <criterion/criterion.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "cli/cli_support.hpp"
#include "cli/vault_client.hpp"
#include "common/bus_contract.hpp"
#include "lib/sdbus/string_array.hpp"
#include "tests/support/harness.hpp"

using namespace codexvault;
using namespace codexvault::test;

namespace {

struct TailPage {
    std::vector<std::string> records;
    std::uint64_t last_seq = 0;
    bool complete = false;
};

struct TailArguments {
    std::uint32_t limit = 20;
    std::optional<std::uint64_t> after_seq = std::nullopt;
    std::string action = {};
    std::uint32_t scan_bytes = 0;  // 0: the daemon's budget
};

// One AuditTail call with a founder proof, built as vaultctl builds it (keys in order, decimal).
TailPage tail(const TailArguments& args)
{
    const cli::FounderKeyPair key = env->load_founder();
    cli::VaultClient client(env->bus_address());
    std::vector<std::string> signed_arguments;
    if (!args.action.empty()) {
        signed_arguments.push_back("action=" + args.action);
    }
    if (args.after_seq) {
        signed_arguments.push_back("after_seq=" + std::to_string(*args.after_seq));
    }
    signed_arguments.push_back("limit=" + std::to_string(args.limit));
    if (args.scan_bytes != 0) {
        signed_arguments.push_back("scan_bytes=" + std::to_string(args.scan_bytes));
    }
    const FounderProof proof = client.prove(key, bus::method::kAuditTail, signed_arguments);
    cli::Message reply = client.call(bus::method::kAuditTail, [&](sd_bus_message* m) {
        cli::check_local(sd_bus_message_open_container(m, 'a', "{sv}"), "open query");
        if (!args.action.empty()) {
            cli::check_local(sd_bus_message_append(m, "{sv}", "action", "s", args.action.c_str()), "action");
        }
        if (args.after_seq) {
            const std::string text = std::to_string(*args.after_seq);
            cli::check_local(sd_bus_message_append(m, "{sv}", "after_seq", "s", text.c_str()), "after_seq");
        }
        cli::check_local(sd_bus_message_append(m, "{sv}", "limit", "u", args.limit), "limit");
        if (args.scan_bytes != 0) {
            cli::check_local(sd_bus_message_append(m, "{sv}", "scan_bytes", "u", args.scan_bytes), "scan_bytes");
        }
        cli::check_local(sd_bus_message_close_container(m), "close query");
        cli::append_proof(m, proof);
    });
    TailPage page;
    cli::check_local(bus::read_string_array(reply.get(), page.records), "records");
    int complete = 0;
    cli::check_local(sd_bus_message_read(reply.get(), "tb", &page.last_seq, &complete), "last_seq, complete");
    page.complete = complete != 0;
    return page;
}

// A log of a few hundred records: founder calls (each a decision and an outcome) are never folded.
void write_records(int calls)
{
    const cli::FounderKeyPair key = env->load_founder();
    cli::VaultClient client(env->bus_address());
    for (int i = 0; i < calls; ++i) {
        const FounderProof proof = client.prove(key, bus::method::kListGrants, {});
        (void)client.call(bus::method::kListGrants, [&](sd_bus_message* m) { cli::append_proof(m, proof); });
    }
}

}  // namespace

TestSuite(audit_tail, .init = start_env_with_founder, .fini = stop_env, .timeout = 120);

Test(audit_tail, a_filter_that_matches_nothing_reads_no_more_than_the_budget_and_says_so)
{
    write_records(150);
    // The whole log, unfiltered, is far larger than 16 KiB.
    const TailPage everything = tail({.limit = 1000});
    cr_assert(everything.complete, "1,000 newest records fit in the default budget");
    cr_assert_geq(everything.records.size(), 300U, "a log of %zu records", everything.records.size());

    const TailPage none = tail({.limit = 20, .action = "secret.put", .scan_bytes = 16 * 1024});
    cr_expect(none.records.empty(), "nothing matches, yet %zu records came back", none.records.size());
    cr_expect_not(none.complete, "a search the budget cut short must say it is incomplete");

    // The same query with the daemon's own budget reads the whole (small) log and is complete.
    const TailPage whole = tail({.limit = 20, .action = "secret.put"});
    cr_expect(whole.records.empty());
    cr_expect(whole.complete, "the default budget covers this log");
}

Test(audit_tail, follow_mode_pages_through_every_record_under_a_small_budget)
{
    // Each page reads at least two of the largest frames (so every call makes progress), about
    // 80 KiB here: the log must be several times that for the budget to cut pages.
    write_records(500);
    const TailPage newest = tail({.limit = 1});
    cr_assert_eq(newest.records.size(), 1U);
    const std::uint64_t head = newest.last_seq;

    std::uint64_t after = 0;
    std::size_t seen = 0;
    int incomplete_pages = 0;
    for (int page_number = 0; page_number < 10000 && after < head; ++page_number) {
        const TailPage page = tail({.limit = 1000, .after_seq = after, .scan_bytes = 8 * 1024});
        cr_assert_gt(page.last_seq, after, "paging must advance: after %llu", static_cast<unsigned long long>(after));
        seen += page.records.size();
        incomplete_pages += page.complete ? 0 : 1;
        after = page.last_seq;
    }
    cr_expect_geq(after, head, "paging reached the head");
    cr_expect_geq(incomplete_pages, 1, "an 8 KiB budget cuts the pages of this log");
    cr_expect_geq(seen, static_cast<std::size_t>(head - 1),
                  "every record before the head was returned once: %zu of %llu", seen,
                  static_cast<unsigned long long>(head));
}

Test(audit_tail, a_budget_above_the_daemons_is_cut_to_it)
{
    write_records(5);
    const TailPage page = tail({.limit = 5, .scan_bytes = 0xFFFFFFFFU});
    cr_expect_eq(page.records.size(), 5U);
    cr_expect(page.complete);
}
