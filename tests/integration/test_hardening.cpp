// The running daemon after start-up (docs/hardening.md): no capability in any
// set, no_new_privs, the seccomp filter in place, no core dumps -- read from /proc/<pid>, then
// the daemon still answers (the filter let it through its own work).
#include <unistd.h>

#include <criterion/criterion.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>

#include "tests/support/harness.hpp"

using namespace codexvault::test;

namespace {

std::map<std::string, std::string> status_fields(const std::string& path)
{
    std::ifstream file(path);
    cr_assert(file.is_open(), "cannot read %s", path.c_str());
    std::map<std::string, std::string> fields;
    std::string line;
    while (std::getline(file, line)) {
        const auto colon = line.find(':');
        if (colon == std::string::npos) {
            continue;
        }
        const auto value = line.find_first_not_of(" \t", colon + 1);
        fields[line.substr(0, colon)] = value == std::string::npos ? "" : line.substr(value);
    }
    return fields;
}

std::map<std::string, std::string> daemon_status()
{
    return status_fields("/proc/" + std::to_string(env->daemon_pid()) + "/status");
}

// Each thread's status, by thread id: capabilities, no_new_privs and seccomp belong to a thread,
// so the process's own status line proves nothing about the others (the audit flusher thread).
std::map<std::string, std::map<std::string, std::string>> thread_statuses()
{
    std::map<std::string, std::map<std::string, std::string>> threads;
    const std::filesystem::path tasks = "/proc/" + std::to_string(env->daemon_pid()) + "/task";
    for (const auto& task : std::filesystem::directory_iterator(tasks)) {
        threads[task.path().filename().string()] = status_fields((task.path() / "status").string());
    }
    return threads;
}

}  // namespace

TestSuite(hardening, .init = start_env, .fini = stop_env, .timeout = 60);

Test(hardening, daemon_holds_no_capability_and_runs_under_seccomp)
{
    auto fields = daemon_status();
    for (const char* set : {"CapEff", "CapPrm", "CapInh", "CapBnd", "CapAmb"}) {
        cr_expect_eq(fields[set], "0000000000000000", "%s of codex-vaultd is %s", set, fields[set].c_str());
    }
    cr_expect_eq(fields["NoNewPrivs"], "1");
    cr_expect_eq(fields["Seccomp"], "2", "Seccomp (2 = filter) is %s", fields["Seccomp"].c_str());
    cr_expect_neq(fields["Seccomp_filters"], "0");

    // Still serving: the filter let the daemon answer, and it is still there afterwards.
    const auto status = env->vaultctl({"status"});
    cr_expect_eq(status.exit_code, 0, "%s", status.err.c_str());
    cr_expect_eq(daemon_status()["Seccomp"], "2");
}

Test(hardening, daemon_never_dumps_core)
{
    std::ifstream limits("/proc/" + std::to_string(env->daemon_pid()) + "/limits");
    std::string line;
    bool found = false;
    while (std::getline(limits, line)) {
        if (line.rfind("Max core file size", 0) == 0) {
            found = true;
            std::istringstream fields(line.substr(std::string("Max core file size").size()));
            std::string soft;
            std::string hard;
            fields >> soft >> hard;
            cr_expect(soft == "0" && hard == "0", "%s", line.c_str());
        }
    }
    cr_expect(found, "no core limit in /proc/%d/limits", env->daemon_pid());
}

Test(hardening, every_thread_holds_no_capability_and_runs_under_the_filter)
{
    // Some durable calls first, so the flusher thread has worked under the filter.
    env->init_founder();
    for (int i = 0; i < 3; ++i) {
        const auto status = env->vaultctl({"status"});
        cr_expect_eq(status.exit_code, 0, "%s", status.err.c_str());
    }
    const auto threads = thread_statuses();
    bool flusher = false;
    for (const auto& [tid, fields] : threads) {
        const std::string name = fields.count("Name") != 0 ? fields.at("Name") : "?";
        flusher = flusher || name == "audit-flush";
        for (const char* set : {"CapEff", "CapPrm", "CapInh", "CapBnd", "CapAmb"}) {
            cr_expect_eq(fields.at(set), "0000000000000000", "thread %s (%s): %s is %s", tid.c_str(), name.c_str(), set,
                         fields.at(set).c_str());
        }
        cr_expect_eq(fields.at("NoNewPrivs"), "1", "thread %s (%s): NoNewPrivs is %s", tid.c_str(), name.c_str(),
                     fields.at("NoNewPrivs").c_str());
        cr_expect_eq(fields.at("Seccomp"), "2", "thread %s (%s): Seccomp (2 = filter) is %s", tid.c_str(), name.c_str(),
                     fields.at("Seccomp").c_str());
        cr_expect_neq(fields.at("Seccomp_filters"), "0", "thread %s (%s) has no filter", tid.c_str(), name.c_str());
    }
    cr_expect(flusher, "no thread named audit-flush among the daemon's %zu thread(s)", threads.size());
    cr_expect_geq(threads.size(), 2u);
}

// SIGHUP (reload) and a clean stop both happen under the filter.
Test(hardening, reload_and_stop_work_under_the_filter)
{
    cr_assert_eq(::kill(env->daemon_pid(), SIGHUP), 0);
    const auto status = env->vaultctl({"status"});
    cr_expect_eq(status.exit_code, 0, "after SIGHUP: %s\n%s", status.err.c_str(), env->daemon_log().c_str());
    env->stop_daemon();  // asserts exit status 0 after SIGTERM
}
