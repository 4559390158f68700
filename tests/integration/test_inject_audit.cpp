// vaultctl audit injections through the real daemon and the real eBPF monitor: the tree of the
// processes that received an injection is exactly the processes that ran, each with the exes it
// ran, built from the records' process fields; the same from the daemon (AuditTail) and from the
// folder, in JSON and for people.
#include <nlohmann/json.hpp>
#include <sys/stat.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include <filesystem>
#include <string>
#include <vector>

#include "tests/integration/inject_support.hpp"
#include "tests/support/harness.hpp"

using namespace codexvault;
using namespace codexvault::test;
using namespace codexvault::test::inject;

namespace {

// Two programs with names of their own (copies of true), so each process of the tree is told
// apart by its exe.
struct Programs {
    std::string dir;
    std::string child;
    std::string grandchild;
};

Programs make_programs()
{
    char templ[] = "/tmp/cv-inject-tree-XXXXXX";
    cr_assert_not_null(::mkdtemp(templ));
    Programs p;
    p.dir = templ;
    p.child = p.dir + "/inject-child";
    p.grandchild = p.dir + "/inject-grandchild";
    for (const auto& path : {p.child, p.grandchild}) {
        std::filesystem::copy_file("/usr/bin/true", path);
        std::filesystem::permissions(path, std::filesystem::perms::owner_all);
    }
    return p;
}

std::string dash()
{
    return std::filesystem::canonical("/bin/sh").string();
}

nlohmann::json injections_json(const std::string& id, bool offline)
{
    std::vector<std::string> args{"audit", "injections", id, "--json"};
    if (offline) {
        args.insert(args.end(), {"--dir", env->state_dir() + "/audit"});
    }
    const CommandResult r = offline ? env->vaultctl(args) : founder(args);
    cr_assert_eq(r.exit_code, 0, "audit injections: %s", r.err.c_str());
    const auto j = nlohmann::json::parse(r.out, nullptr, false);
    cr_assert(!j.is_discarded(), "not JSON: %s", r.out.c_str());
    return j;
}

std::vector<std::string> exes_of(const nlohmann::json& node)
{
    return node["exes"].get<std::vector<std::string>>();
}

std::string joined(const std::vector<std::string>& list)
{
    std::string out;
    for (const auto& s : list) {
        out += (out.empty() ? "" : " -> ") + s;
    }
    return out;
}

void expect_exes(const nlohmann::json& node, const std::vector<std::string>& expected, const char* who)
{
    const auto got = exes_of(node);
    cr_expect(got == expected, "%s ran %s, expected %s", who, joined(got).c_str(), joined(expected).c_str());
}

// The tree of `vaultctl exec -- sh -c 'child; (grandchild &); wait'`:
//   vaultctl (the recipient)
//   `-- sh: vaultctl -> dash
//       |-- child: dash -> inject-child
//       `-- the subshell: dash
//           `-- grandchild: dash -> inject-grandchild
void expect_the_tree(const nlohmann::json& report, const Programs& p, pid_t* sh_pid)
{
    const auto& roots = report["processes"];
    cr_assert_eq(roots.size(), 1U, "one root, the recipient: %s", report.dump().c_str());
    const auto& recipient = roots[0];
    cr_expect(recipient["recipient"].get<bool>());
    cr_expect_eq(recipient["uid"], 0);
    const auto vaultctl = exes_of(recipient);
    cr_assert_eq(vaultctl.size(), 1U, "%s", recipient.dump().c_str());
    cr_expect(vaultctl[0].ends_with("/vaultctl"), "the recipient runs vaultctl: %s", vaultctl[0].c_str());
    cr_assert_eq(recipient["children"].size(), 1U, "vaultctl forked only the command: %s", recipient.dump().c_str());
    const auto& sh = recipient["children"][0];
    expect_exes(sh, {vaultctl[0], dash()}, "the command");
    *sh_pid = sh["pid"].get<pid_t>();
    cr_assert_eq(sh["children"].size(), 2U, "sh forked the child and the subshell: %s", sh.dump().c_str());
    const auto& child = sh["children"][0];
    const auto& subshell = sh["children"][1];
    expect_exes(child, {dash(), p.child}, "the child");
    cr_expect_eq(child["children"].size(), 0U);
    expect_exes(subshell, {dash()}, "the subshell");
    cr_assert_eq(subshell["children"].size(), 1U, "the subshell forked the grandchild: %s", subshell.dump().c_str());
    const auto& grandchild = subshell["children"][0];
    expect_exes(grandchild, {dash(), p.grandchild}, "the grandchild");
    cr_expect_eq(grandchild["children"].size(), 0U);
    for (const auto* node : {&sh, &child, &subshell, &grandchild}) {
        cr_expect_eq((*node)["uid"], 0);
        cr_expect_neq((*node)["start_ticks"], 0, "start time recorded: %s", node->dump().c_str());
        cr_expect(!(*node)["start"].is_null());
        // Each of them exited while marked (vaultctl waits for the grandchild: it holds the pipes).
        cr_expect(!(*node)["end"].is_null(), "end recorded: %s", node->dump().c_str());
    }
}

}  // namespace

TestSuite(inject_audit, .init = start_env_with_founder, .fini = stop_env, .timeout = 120);

Test(inject_audit, the_recorded_tree_is_exactly_the_processes_that_received_the_secret_with_their_exes)
{
    require_root();
    require_monitor();
    const std::string canary = put_secret("demo");
    issue_inject_grant("demo");
    const Programs p = make_programs();
    const auto r = env->vaultctl(
        {"exec", "--secret", "demo=TOKEN", "--", "sh", "-c", p.child + "; (" + p.grandchild + " &); wait"});
    cr_assert_eq(r.exit_code, 0, "%s", r.err.c_str());
    const std::string id = injection_id_of(r);
    wait_for_audit([&](const std::string& t) { return contains(t, "inject.close") && contains(t, id); },
                   "the injection's close");

    for (const bool offline : {true, false}) {
        const auto j = injections_json(id, offline);
        cr_assert_eq(j["injections"].size(), 1U, "%s", j.dump().c_str());
        const auto& report = j["injections"][0];
        cr_expect_eq(report["id"], id);
        cr_expect(!report["closed"].is_null(), "the close is in the report");
        pid_t sh_pid = 0;
        expect_the_tree(report, p, &sh_pid);
    }

    // For people: one line per process, indented under its parent, with its exes.
    const auto human = founder({"audit", "injections", id});
    cr_assert_eq(human.exit_code, 0, "%s", human.err.c_str());
    const std::string& out = human.out;
    cr_expect(contains(out, "injection " + id), "%s", out.c_str());
    cr_expect(contains(out, "/vaultctl  start "), "the recipient's line: %s", out.c_str());
    cr_expect(contains(out, "      `-- pid "), "the command one level down: %s", out.c_str());
    cr_expect(contains(out, "/vaultctl -> " + dash() + "  start"), "the command's exes: %s", out.c_str());
    cr_expect(contains(out, "          `-- pid "), "two levels down: %s", out.c_str());
    cr_expect(contains(out, dash() + " -> " + p.child + "  start"), "the child: %s", out.c_str());
    cr_expect(contains(out, "              `-- pid "), "three levels down: %s", out.c_str());
    cr_expect(contains(out, dash() + " -> " + p.grandchild + "  start"), "the grandchild: %s", out.c_str());
    expect_canary_contained(canary);
    std::filesystem::remove_all(p.dir);
}

Test(inject_audit, an_unknown_injection_id_is_not_found)
{
    require_root();
    const auto r = env->vaultctl({"audit", "injections", "inj-0000000000000000", "--dir", env->state_dir() + "/audit"});
    cr_expect_neq(r.exit_code, 0);
    cr_expect(contains(r.err, "no record of injection inj-0000000000000000"), "%s", r.err.c_str());
}
