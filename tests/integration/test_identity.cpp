// Caller identity: a caller that cannot be pinned is denied.
#include <grp.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include <chrono>
#include <memory>
#include <thread>

#include "common/bus_contract.hpp"
#include "common/vault_error.hpp"
#include "tests/support/harness.hpp"

using namespace codexvault;
using namespace codexvault::test;

TestSuite(identity, .init = start_env, .fini = stop_env, .timeout = 60);

Test(identity, a_caller_that_exited_before_dispatch_is_denied)
{
    // Freeze the daemon so the caller is gone by the time its message is dispatched.
    cr_assert_eq(::kill(env->daemon_pid(), SIGSTOP), 0);
    const pid_t child = ::fork();
    cr_assert(child >= 0);
    if (child == 0) {
        // Fire and forget, then exit: the bus keeps the message for the daemon.
        sd_bus_message* raw = nullptr;
        sd_bus* bus = nullptr;
        if (sd_bus_new(&bus) < 0 || sd_bus_set_address(bus, env->bus_address().c_str()) < 0 ||
            sd_bus_set_bus_client(bus, 1) < 0 || sd_bus_start(bus) < 0) {
            _exit(2);
        }
        if (sd_bus_message_new_method_call(bus, &raw, bus::kBusName, bus::kObjectPath, bus::kInterface,
                                           bus::method::kWhoAmI) < 0 ||
            sd_bus_send(bus, raw, nullptr) < 0 || sd_bus_flush(bus) < 0) {
            _exit(3);
        }
        _exit(0);
    }
    int status = 0;
    ::waitpid(child, &status, 0);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "caller failed to send (%d)", status);
    cr_assert_eq(::kill(env->daemon_pid(), SIGCONT), 0);

    std::string log;
    for (int i = 0; i < 200; ++i) {
        log = env->daemon_log();
        if (log.find("caller could not be identified") != std::string::npos) {
            break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(25));
    }
    cr_expect(log.find("action=\"identity.read\"") != std::string::npos, "%s", log.c_str());
    cr_expect(log.find("caller could not be identified") != std::string::npos, "%s", log.c_str());
    cr_expect(log.find("decision=deny") != std::string::npos, "%s", log.c_str());
    // And the daemon keeps serving.
    const auto r = env->vaultctl({"status"});
    cr_expect_eq(r.exit_code, 0, "%s", r.err.c_str());
}

Test(identity, a_process_that_changed_uid_since_it_connected_is_denied)
{
    if (::geteuid() != 0) {
        cr_skip_test("needs root to connect as root and then switch to uid 65534");
    }
    for (const bool pinned_before_drop : {true, false}) {
        const pid_t child = ::fork();
        cr_assert(child >= 0);
        if (child == 0) {
            cli::VaultClient client(env->bus_address());  // connects as root: the bus records uid 0
            if (pinned_before_drop && exit_code_of([&] { (void)client.call(bus::method::kStatus); }) != 0) {
                _exit(20);
            }
            if (::setgroups(0, nullptr) != 0 || ::setresgid(kNobody, kNobody, kNobody) != 0 ||
                ::setresuid(kNobody, kNobody, kNobody) != 0) {
                _exit(21);
            }
            // Root's connection, now driven by uid 65534: founder-level calls must be refused.
            _exit(exit_code_of([&] { (void)client.get_nonce(); }));
        }
        int status = 0;
        ::waitpid(child, &status, 0);
        cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == error_info(ErrorCode::PermissionDenied).exit_code,
                  "pinned before drop=%d: status %d", pinned_before_drop, status);
    }
    const std::string log = env->daemon_log();
    cr_expect(log.find("but connected as uid 0") != std::string::npos, "%s", log.c_str());
}
