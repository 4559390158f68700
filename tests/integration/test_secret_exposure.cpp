// A generated canary secret must never come back: not in any reply, not in the daemon's
// output, not in any state file in plaintext.
#include <criterion/criterion.h>

#include <memory>

#include "tests/support/harness.hpp"

using namespace codexvault;
using namespace codexvault::test;

TestSuite(secret_exposure, .init = start_env, .fini = stop_env, .timeout = 120);

Test(secret_exposure, canary_never_appears_in_replies_logs_or_state)
{
    const std::string canary = random_canary();
    const std::string rotated = random_canary();
    env->init_founder();
    std::string every_output;
    auto founder_cmd = [&](std::vector<std::string> args, const std::string& in) {
        args.insert(args.end(), {"--founder-key", env->founder_key(), "--passphrase-fd", "3"});
        const auto r = env->vaultctl(args, {.stdin_data = in, .passphrase = kPassphrase, .as_uid = std::nullopt});
        every_output += r.out + r.err;
        return r;
    };
    cr_assert_eq(founder_cmd({"secret", "put", "canary"}, canary).exit_code, 0);
    cr_assert_eq(founder_cmd({"secret", "ls"}, "").exit_code, 0);
    cr_assert_eq(founder_cmd({"secret", "ls", "--json"}, "").exit_code, 0);
    cr_assert_eq(founder_cmd({"secret", "rotate", "canary"}, rotated).exit_code, 0);
    // Failing calls too: their error messages must not echo the value.
    founder_cmd({"secret", "put", "canary"}, canary);
    founder_cmd({"secret", "put", "bad name"}, canary);
    for (const auto& args : {std::vector<std::string>{"status", "--json"}, {"whoami", "--json"}, {"status"}}) {
        const auto r = env->vaultctl(args);
        every_output += r.out + r.err;
    }
    env->stop_daemon();  // flush and close everything the daemon wrote

    const std::string log = env->daemon_log();
    const std::string state = read_tree(env->state_dir());
    cr_assert(!log.empty(), "the daemon's log should not be empty");
    cr_assert(!state.empty(), "the state folder should not be empty");
    for (const auto* value : {&canary, &rotated}) {
        cr_expect(every_output.find(*value) == std::string::npos, "canary in a vaultctl reply");
        cr_expect(log.find(*value) == std::string::npos, "canary in the daemon's stdout/stderr");
        cr_expect(state.find(*value) == std::string::npos, "canary in plaintext in the state folder");
    }
    // The check itself works: the canary name, which is not secret, is in the log.
    cr_expect(log.find("canary") != std::string::npos);
}
