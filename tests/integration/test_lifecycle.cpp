// The founder's path through vaultctl, against the real daemon on a private bus.
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include <memory>

#include "common/vault_error.hpp"
#include "tests/support/founder_calls.hpp"
#include "tests/support/harness.hpp"

using namespace codexvault;
using namespace codexvault::test;

namespace {

CommandResult founder_cmd(const std::vector<std::string>& args, const std::string& stdin_data = "")
{
    std::vector<std::string> full = args;
    full.insert(full.end(), {"--founder-key", env->founder_key(), "--passphrase-fd", "3"});
    return env->vaultctl(full, {.stdin_data = stdin_data, .passphrase = kPassphrase, .as_uid = std::nullopt});
}

bool contains(const std::string& haystack, const std::string& needle)
{
    return haystack.find(needle) != std::string::npos;
}

}  // namespace

TestSuite(lifecycle, .init = start_env, .fini = stop_env, .timeout = 120);

Test(lifecycle, init_put_ls_rotate_rm)
{
    auto status = env->vaultctl({"status"});
    cr_assert_eq(status.exit_code, 0, "%s", status.err.c_str());
    cr_expect(contains(status.out, "state: uninitialized"), "%s", status.out.c_str());

    // Before init, founder methods are Unavailable whatever key signs them.
    {
        const cli::FounderKeyPair stranger = stranger_key();
        cli::VaultClient client(env->bus_address());
        const int code = exit_code_of([&] { (void)client.list_secrets(stranger); });
        cr_expect_eq(code, error_info(ErrorCode::Unavailable).exit_code, "ls before init");
    }
    auto r = founder_cmd({"secret", "ls"});
    cr_expect_neq(r.exit_code, 0, "vaultctl without a founder key must fail");

    env->init_founder();
    status = env->vaultctl({"status", "--json"});
    cr_expect(contains(status.out, "\"state\": \"ready\""), "%s", status.out.c_str());

    r = founder_cmd({"secret", "put", "openai"}, "value-one");
    cr_assert_eq(r.exit_code, 0, "put: %s", r.err.c_str());
    cr_expect(contains(r.out, "version 1"), "%s", r.out.c_str());

    r = founder_cmd({"secret", "ls"});
    cr_assert_eq(r.exit_code, 0, "ls: %s", r.err.c_str());
    cr_expect(contains(r.out, "openai"), "%s", r.out.c_str());

    r = founder_cmd({"secret", "put", "openai"}, "again");
    cr_expect_eq(r.exit_code, error_info(ErrorCode::InvalidArgument).exit_code, "put existing: %s", r.err.c_str());

    r = founder_cmd({"secret", "rotate", "openai"}, "value-two");
    cr_assert_eq(r.exit_code, 0, "rotate: %s", r.err.c_str());
    cr_expect(contains(r.out, "version 2"), "%s", r.out.c_str());

    // Global options after the subcommand are accepted too.
    r = env->vaultctl({"secret", "ls", "--json", "--founder-key", env->founder_key(), "--passphrase-fd", "3"},
                      {.stdin_data = "", .passphrase = kPassphrase, .as_uid = std::nullopt});
    cr_assert_eq(r.exit_code, 0, "ls --json: %s", r.err.c_str());
    cr_expect(contains(r.out, "\"version\": 2"), "%s", r.out.c_str());
    cr_expect(contains(r.out, "\"integrity\": \"ok\""), "%s", r.out.c_str());

    r = founder_cmd({"secret", "rm", "openai"});
    cr_assert_eq(r.exit_code, 0, "rm: %s", r.err.c_str());
    r = founder_cmd({"secret", "rm", "openai"});
    cr_expect_eq(r.exit_code, error_info(ErrorCode::NotFound).exit_code, "rm missing: %s", r.err.c_str());
    r = founder_cmd({"secret", "rotate", "openai"}, "x");
    cr_expect_eq(r.exit_code, error_info(ErrorCode::NotFound).exit_code, "rotate missing: %s", r.err.c_str());

    r = founder_cmd({"secret", "ls", "--json"});
    cr_expect(contains(r.out, "[]"), "%s", r.out.c_str());
}

Test(lifecycle, state_survives_a_restart)
{
    env->init_founder();
    auto r = founder_cmd({"secret", "put", "github"}, "ghp-value");
    cr_assert_eq(r.exit_code, 0, "%s", r.err.c_str());
    env->stop_daemon();
    env->start_daemon();
    const auto status = env->vaultctl({"status"});
    cr_expect(contains(status.out, "state: ready"), "%s", status.out.c_str());
    r = founder_cmd({"secret", "ls"});
    cr_assert_eq(r.exit_code, 0, "%s", r.err.c_str());
    cr_expect(contains(r.out, "github"), "%s", r.out.c_str());
}

Test(lifecycle, whoami_reports_the_subject_the_daemon_resolved)
{
    const auto r = env->vaultctl({"whoami", "--json"});
    cr_assert_eq(r.exit_code, 0, "%s", r.err.c_str());
    cr_expect(contains(r.out, "\"uid\": " + std::to_string(::geteuid())), "%s", r.out.c_str());
    // The daemon holds no capabilities, so the kernel lets it read /proc/PID/exe only of callers
    // that hold none it lacks. For others (root with capabilities) the exe is reported unknown,
    // never guessed, and exe-based rules fail closed.
    if (contains(r.out, "\"exe_known\": true")) {
        cr_expect(contains(r.out, env->root() + "/bin/vaultctl"), "exe should be the staged vaultctl: %s",
                  r.out.c_str());
    } else {
        cr_expect(contains(r.out, "\"exe\": \"\""), "an unknown exe must be empty: %s", r.out.c_str());
    }
    if (::geteuid() == 0) {
        // Another user's process: its exe needs ptrace access the daemon does not keep. Unknown.
        const auto nobody =
            env->vaultctl({"whoami", "--json"}, {.stdin_data = "", .passphrase = std::nullopt, .as_uid = kNobody});
        cr_assert_eq(nobody.exit_code, 0, "%s", nobody.err.c_str());
        cr_expect(contains(nobody.out, "\"uid\": 65534"), "%s", nobody.out.c_str());
        cr_expect(contains(nobody.out, "\"is_founder_uid\": false"), "%s", nobody.out.c_str());
        // Root with every capability: the capability-less daemon may not read its exe either.
        // Both are known only through the eBPF monitor's exec records, and then exactly.
        for (const auto* out : {&nobody.out, &r.out}) {
            if (contains(*out, "\"exe_known\": true")) {
                cr_expect(contains(*out, "\"exe_source\": \"monitor\""), "%s", out->c_str());
                cr_expect(contains(*out, "\"exe\": \"" + env->root() + "/bin/vaultctl\""), "%s", out->c_str());
            } else {
                cr_expect(contains(*out, "\"exe_source\": \"none\""), "%s", out->c_str());
            }
        }
        // The daemon's own uid holding no capabilities: readable, and it must be exact.
        const auto bare = run_command({"setpriv", "--inh-caps=-all", "--bounding-set=-all", "--",
                                       env->root() + "/bin/vaultctl", "--bus", env->bus_address(), "whoami", "--json"});
        cr_assert_eq(bare.exit_code, 0, "%s", bare.err.c_str());
        cr_expect(contains(bare.out, "\"exe_known\": true"), "%s", bare.out.c_str());
        cr_expect(contains(bare.out, "\"exe\": \"" + env->root() + "/bin/vaultctl\""), "%s", bare.out.c_str());
        cr_expect(contains(bare.out, "\"exe_source\": \"proc\""), "%s", bare.out.c_str());
    }
}

Test(lifecycle, wrong_passphrase_is_refused_and_changes_nothing)
{
    env->init_founder();
    auto r = founder_cmd({"secret", "put", "kept"}, "v");
    cr_assert_eq(r.exit_code, 0, "%s", r.err.c_str());
    r = env->vaultctl({"secret", "rm", "kept", "--founder-key", env->founder_key(), "--passphrase-fd", "3"},
                      {.stdin_data = "", .passphrase = "not the passphrase", .as_uid = std::nullopt});
    cr_expect_eq(r.exit_code, error_info(ErrorCode::PermissionDenied).exit_code, "%s", r.err.c_str());
    cr_expect(contains(r.err, "passphrase"), "%s", r.err.c_str());
    r = founder_cmd({"secret", "ls"});
    cr_expect(contains(r.out, "kept"), "%s", r.out.c_str());
}

Test(lifecycle, daemon_refuses_a_group_readable_state_folder_naming_it)
{
    env->stop_daemon();
    const std::string state = env->state_dir();
    cr_assert_eq(::chmod(state.c_str(), 0750), 0);
    const auto r = run_command({env->root() + "/bin/codex-vaultd", "--bus", env->bus_address(), "--state-dir", state,
                                "--config", env->root() + "/codex-vaultd.toml"});
    cr_expect_neq(r.exit_code, 0);
    cr_expect(contains(r.err, state), "error should name the folder: %s", r.err.c_str());
    cr_assert_eq(::chmod(state.c_str(), 0700), 0);
    const std::string key = state + "/keys/master.key";
    cr_assert_eq(::chmod(key.c_str(), 0644), 0);
    const auto k = run_command({env->root() + "/bin/codex-vaultd", "--bus", env->bus_address(), "--state-dir", state,
                                "--config", env->root() + "/codex-vaultd.toml"});
    cr_expect_neq(k.exit_code, 0);
    cr_expect(contains(k.err, key), "error should name the key file: %s", k.err.c_str());
}
