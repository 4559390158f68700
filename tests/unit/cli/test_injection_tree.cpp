// The tree of `vaultctl audit injections`, from hand-made records: built from the process fields
// (pid and start time, parent's pid and start time), so a reused pid or a reason that lies about
// the parent changes nothing; control bytes never reach the terminal.
#include <criterion/criterion.h>

#include <string>
#include <vector>

#include "cli/injection_tree.hpp"

using namespace codexvault::cli;
using nlohmann::json;

namespace {

json rec(std::uint64_t seq, const std::string& action, int pid, std::uint64_t start, int parent,
         std::uint64_t parent_start, const std::string& exe, const std::string& reason = "")
{
    return json{{"seq", seq},
                {"realtime_usec", 1'700'000'000'000'000ULL + seq},
                {"action", action},
                {"object", "inj-0000000000000001"},
                {"grant", "g-1"},
                {"reason", reason},
                {"subject", {{"uid", 1000}, {"pid", pid}, {"exe", exe}}},
                {"process",
                 {{"start_ticks", start},
                  {"start_usec", 1'600'000'000'000'000ULL + start},
                  {"parent_pid", parent},
                  {"parent_start_ticks", parent_start},
                  {"event_usec", 1'700'000'000'000'500ULL + seq}}}};
}

}  // namespace

Test(injection_tree, children_hang_under_the_process_their_parent_pid_and_start_name)
{
    const std::vector<json> records{
        rec(1, "inject.open", 100, 10, 0, 0, "/usr/bin/vaultctl"),
        rec(2, "inject.mark.inherited", 101, 11, 100, 10, "/usr/bin/vaultctl"),
        rec(3, "inject.exec", 101, 11, 100, 10, "/usr/bin/dash"),
        rec(4, "inject.mark.inherited", 102, 12, 101, 11, "/usr/bin/dash", "parent 100 (a lie in the text)"),
        rec(5, "inject.mark.removed", 102, 12, 101, 11, "/usr/bin/dash"),
        // pid 102 reused by a second child of 101: another process, not the first one again
        rec(6, "inject.mark.inherited", 102, 13, 101, 11, "/usr/bin/dash"),
        rec(7, "inject.alert", 555, 50, 1, 0, "/usr/bin/cat", "read by pid 555\x1b[2J"),
        rec(8, "inject.close", 0, 0, 0, 0, "", "the recipient exited"),
    };
    const auto reports = build_injection_reports(records, std::nullopt);
    cr_assert_eq(reports.size(), 1U);
    const auto j = injection_reports_json(reports)["injections"][0];
    cr_assert_eq(j["processes"].size(), 1U);
    const auto& root = j["processes"][0];
    cr_expect_eq(root["pid"], 100);
    cr_expect(root["recipient"].get<bool>());
    cr_assert_eq(root["children"].size(), 1U);
    const auto& sh = root["children"][0];
    cr_expect_eq(sh["exes"], json::array({"/usr/bin/vaultctl", "/usr/bin/dash"}));
    cr_assert_eq(sh["children"].size(), 2U, "%s", sh.dump().c_str());
    cr_expect_eq(sh["children"][0]["start_ticks"], 12);
    cr_expect(!sh["children"][0]["end"].is_null(), "the first 102 ended");
    cr_expect_eq(sh["children"][1]["start_ticks"], 13);
    cr_expect(sh["children"][1]["end"].is_null(), "the second 102 did not");
    cr_assert_eq(j["events"].size(), 1U);
    cr_expect_eq(j["events"][0]["pid"], 555);
    cr_expect_eq(j["close_reason"], "the recipient exited");
    const std::string text = render_injection_reports(reports);
    cr_expect_eq(text.find('\x1b'), std::string::npos, "no control byte reaches the terminal");
    cr_expect_neq(text.find("\\x1b[2J"), std::string::npos, "it is shown escaped");
}

Test(injection_tree, one_id_selects_one_injection_and_other_records_are_ignored)
{
    std::vector<json> records{rec(1, "inject.open", 100, 10, 0, 0, "/usr/bin/vaultctl")};
    json other = rec(2, "inject.open", 200, 20, 0, 0, "/usr/bin/vaultctl");
    other["object"] = "inj-0000000000000002";
    records.push_back(other);
    json unrelated = rec(3, "secret.put", 1, 1, 0, 0, "");
    records.push_back(unrelated);
    cr_expect_eq(build_injection_reports(records, std::nullopt).size(), 2U);
    const auto one = build_injection_reports(records, std::string("inj-0000000000000002"));
    cr_assert_eq(one.size(), 1U);
    cr_expect_eq(one[0].processes.at(0).pid, 200);
}
