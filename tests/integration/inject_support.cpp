#include "tests/integration/inject_support.hpp"

#include <unistd.h>

#include <criterion/criterion.h>

#include <chrono>
#include <sstream>
#include <thread>

namespace codexvault::test::inject {

void require_root()
{
    if (::geteuid() != 0) {
        cr_skip_test("needs root: the daemon loads the eBPF monitor, which needs CAP_BPF and CAP_PERFMON");
    }
}

CommandResult founder(const std::vector<std::string>& args)
{
    std::vector<std::string> full = args;
    full.insert(full.end(), {"--founder-key", env->founder_key(), "--passphrase-fd", "3"});
    return env->vaultctl(full, {.stdin_data = "", .passphrase = kPassphrase, .as_uid = std::nullopt});
}

void require_monitor()
{
    const auto status = env->vaultctl({"status", "--json"});
    if (status.out.find("recording") == std::string::npos) {
        cr_skip_test("the eBPF monitor is not recording here: %s", status.out.c_str());
    }
}

std::string put_secret(const std::string& name)
{
    const std::string canary = random_canary();
    const auto r = env->vaultctl({"secret", "put", name, "--founder-key", env->founder_key(), "--passphrase-fd", "3"},
                                 {.stdin_data = canary, .passphrase = kPassphrase, .as_uid = std::nullopt});
    cr_assert_eq(r.exit_code, 0, "secret put: %s", r.err.c_str());
    return canary;
}

std::string issue_inject_grant(const std::string& name, const std::vector<std::string>& extra)
{
    std::vector<std::string> args{"grant", "issue", "--principal", "uid=0", "--cap", "secret:" + name + ":inject",
                                  "--ttl", "1h"};
    args.insert(args.end(), extra.begin(), extra.end());
    const auto r = founder(args);
    cr_assert_eq(r.exit_code, 0, "grant issue: %s", r.err.c_str());
    std::string id = r.out;
    while (!id.empty() && id.back() == '\n') {
        id.pop_back();
    }
    return id;
}

std::string audit_text()
{
    return env->vaultctl({"audit", "tail", "--dir", env->state_dir() + "/audit", "--json", "-n", "5000"}).out;
}

bool contains(const std::string& text, const std::string& needle)
{
    return text.find(needle) != std::string::npos;
}

std::string wait_for_audit(const std::function<bool(const std::string&)>& found, const char* what)
{
    std::string text;
    for (int i = 0; i < 150; ++i) {
        text = audit_text();
        if (found(text)) {
            return text;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    std::string relevant;
    std::istringstream lines(text);
    for (std::string line; std::getline(lines, line);) {
        if (contains(line, "inject.") || contains(line, "ALERT")) {
            const auto at = line.find("\"reason\"");
            relevant += line.substr(0, 60) + " " + (at != std::string::npos ? line.substr(at, 200) : "") + "\n";
        }
    }
    cr_assert_fail("no audit record of %s; injection records:\n%s", what, relevant.c_str());
    return text;
}

std::string injection_id_of(const CommandResult& r)
{
    const auto at = r.err.find("injection inj-");
    cr_assert_neq(at, std::string::npos, "no injection id in: %s", r.err.c_str());
    return r.err.substr(at + 10, 20);
}

void expect_canary_contained(const std::string& canary)
{
    cr_expect(!contains(audit_text(), canary), "the canary reached the audit log");
    cr_expect(!contains(env->daemon_log(), canary), "the canary reached the daemon's log (the journal copy)");
    cr_expect(!contains(read_tree(env->state_dir()), canary), "the canary is in the state folder in clear");
}

}  // namespace codexvault::test::inject
