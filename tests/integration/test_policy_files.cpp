// Policy files through the real daemon: fail closed on bad or untrusted files, name the file,
// line and column, reload on SIGHUP and on the founder's request, and audit every reload.
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include <chrono>
#include <fstream>
#include <thread>

#include "common/vault_error.hpp"
#include "tests/support/harness.hpp"

using namespace codexvault;
using namespace codexvault::test;

namespace {

const char* const kGoodPolicy = R"(version = 1
[principals.agent]
uid = 1001
)";
// Line 3 has no value: a TOML syntax error at a known place.
const char* const kBadPolicy = "version = 1\n[principals.agent]\nuid =\n";

void require_root()
{
    if (::geteuid() != 0) {
        cr_skip_test("needs root: the daemon accepts only root-owned policy files");
    }
}

void write_policy(const std::string& name, const std::string& content, mode_t mode = 0644)
{
    const std::string path = env->policy_dir() + "/" + name;
    std::ofstream(path, std::ios::trunc) << content;
    cr_assert_eq(::chmod(path.c_str(), mode), 0);
}

std::string policy_status()
{
    const auto r = env->vaultctl({"status", "--json"});
    cr_assert_eq(r.exit_code, 0, "%s", r.err.c_str());
    return r.out;
}

bool contains(const std::string& haystack, const std::string& needle)
{
    return haystack.find(needle) != std::string::npos;
}

// SIGHUP is handled on the daemon's loop; wait until Status reflects it.
void reload_by_signal_and_wait_for(const std::string& expected)
{
    cr_assert_eq(::kill(env->daemon_pid(), SIGHUP), 0);
    for (int i = 0; i < 200 && !contains(policy_status(), expected); ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(25));
    }
}

CommandResult founder_cmd(const std::vector<std::string>& args)
{
    std::vector<std::string> full = args;
    full.insert(full.end(), {"--founder-key", env->founder_key(), "--passphrase-fd", "3"});
    return env->vaultctl(full, {.stdin_data = "", .passphrase = kPassphrase, .as_uid = std::nullopt});
}

}  // namespace

TestSuite(policy_files, .init = start_env, .fini = stop_env, .timeout = 60);

Test(policy_files, a_good_policy_loads_at_start)
{
    require_root();
    write_policy("10-agents.toml", kGoodPolicy);
    env->stop_daemon();
    env->start_daemon();
    cr_expect(contains(policy_status(), "loaded: 1 file(s)"), "%s", policy_status().c_str());
}

Test(policy_files, an_unparsable_policy_at_start_disables_grants_but_not_the_founder)
{
    require_root();
    write_policy("10-agents.toml", kBadPolicy);
    env->stop_daemon();
    env->start_daemon();
    const std::string status = policy_status();
    cr_expect(contains(status, "not loaded: " + env->policy_dir() + "/10-agents.toml:3:"), "%s", status.c_str());
    env->init_founder();
    const auto put =
        env->vaultctl({"secret", "put", "still-works", "--founder-key", env->founder_key(), "--passphrase-fd", "3"},
                      {.stdin_data = "v", .passphrase = kPassphrase, .as_uid = std::nullopt});
    cr_expect_eq(put.exit_code, 0, "founder operations must keep working: %s", put.err.c_str());
}

Test(policy_files, a_policy_file_others_can_write_is_refused_naming_it)
{
    require_root();
    write_policy("10-agents.toml", kGoodPolicy, 0664);
    reload_by_signal_and_wait_for("writable by group or others");
    const std::string status = policy_status();
    cr_expect(contains(status, env->policy_dir() + "/10-agents.toml is writable by group or others"), "%s",
              status.c_str());
}

Test(policy_files, sighup_reloads_fails_closed_and_is_audited)
{
    require_root();
    write_policy("10-agents.toml", kGoodPolicy);
    reload_by_signal_and_wait_for("loaded: 1 file(s)");
    cr_assert(contains(policy_status(), "loaded: 1 file(s)"));

    // A broken reload does not keep the old policy: nothing is loaded until a good one is.
    write_policy("10-agents.toml", kBadPolicy);
    reload_by_signal_and_wait_for("not loaded");
    cr_expect(contains(policy_status(), "not loaded: " + env->policy_dir() + "/10-agents.toml:3:"), "%s",
              policy_status().c_str());

    write_policy("10-agents.toml", kGoodPolicy);
    reload_by_signal_and_wait_for("loaded: 1 file(s)");
    cr_expect(contains(policy_status(), "loaded: 1 file(s)"));

    const std::string log = env->daemon_log();
    cr_expect(contains(log, "event=reload action=\"policy.reload\""), "%s", log.c_str());
    cr_expect(contains(log, "sender=\"signal:SIGHUP\""), "%s", log.c_str());
    cr_expect(contains(log, "decision=deny"), "the failed reload is recorded: %s", log.c_str());
}

Test(policy_files, vaultctl_policy_reload_names_file_line_and_column)
{
    require_root();
    env->init_founder();
    write_policy("10-agents.toml", kGoodPolicy);
    auto r = founder_cmd({"policy", "reload"});
    cr_expect_eq(r.exit_code, 0, "%s", r.err.c_str());
    cr_expect(contains(r.out, "loaded: 1 file(s)"), "%s", r.out.c_str());

    write_policy("20-broken.toml", kBadPolicy);
    r = founder_cmd({"policy", "reload"});
    cr_expect_eq(r.exit_code, error_info(ErrorCode::InvalidArgument).exit_code, "%s", r.err.c_str());
    cr_expect(contains(r.err, env->policy_dir() + "/20-broken.toml:3:"), "%s", r.err.c_str());
    cr_expect(contains(policy_status(), "not loaded"));
}

Test(policy_files, vaultctl_policy_check_validates_offline)
{
    const std::string dir = env->root() + "/check";
    std::filesystem::create_directory(dir);
    std::ofstream(dir + "/10-good.toml") << kGoodPolicy;
    auto r = env->vaultctl({"policy", "check", dir + "/10-good.toml"});
    cr_expect_eq(r.exit_code, 0, "%s", r.err.c_str());
    std::ofstream(dir + "/20-bad.toml") << kBadPolicy;
    r = env->vaultctl({"policy", "check", dir});
    cr_expect_eq(r.exit_code, error_info(ErrorCode::InvalidArgument).exit_code);
    cr_expect(contains(r.err, dir + "/20-bad.toml:3:"), "%s", r.err.c_str());
    // The example policy shipped with the project is valid.
    const std::string examples = source_dir() + "/policy/examples";
    r = env->vaultctl({"policy", "check", examples});
    cr_expect_eq(r.exit_code, 0, "%s", r.err.c_str());
}
