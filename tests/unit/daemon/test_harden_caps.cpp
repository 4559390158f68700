// The capability drop (daemon/harden/capabilities.cpp), run for real in forked children as root:
// every set ends empty, a second drop makes no privileged call (as under the unit, where capset
// is denied), and a process that cannot empty its bounding set refuses to go on.
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <seccomp.h>
#include <sys/capability.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include <cstring>
#include <exception>
#include <fstream>
#include <functional>
#include <string>

#include "daemon/harden/capabilities.hpp"
#include "daemon/harden/process_limits.hpp"

using codexvault::harden::apply_process_limits;
using codexvault::harden::drop_all_capabilities;
using codexvault::harden::read_capabilities;

namespace {

void require_root()
{
    if (::geteuid() != 0) {
        cr_skip_test("needs root: only a privileged process has capabilities to drop");
    }
}

// Runs `body` in a forked child; returns what it reported ("" = success) and its wait status.
struct ChildResult {
    int status = 0;
    std::string message;
};

ChildResult in_child(const std::function<std::string()>& body)
{
    int fds[2];
    cr_assert_eq(::pipe2(fds, O_CLOEXEC), 0);
    const pid_t child = ::fork();
    cr_assert(child >= 0, "fork: %s", std::strerror(errno));
    if (child == 0) {
        ::close(fds[0]);
        std::string message;
        try {
            message = body();
        } catch (const std::exception& e) {
            message = std::string("threw: ") + e.what();
        }
        (void)!::write(fds[1], message.data(), message.size());
        _exit(message.empty() ? 0 : 1);
    }
    ::close(fds[1]);
    ChildResult result;
    char buffer[512];
    ssize_t n = 0;
    while ((n = ::read(fds[0], buffer, sizeof buffer)) > 0) {
        result.message.append(buffer, static_cast<std::size_t>(n));
    }
    ::close(fds[0]);
    ::waitpid(child, &result.status, 0);
    return result;
}

// "" when /proc/self/status shows no capability in any set and NoNewPrivs 1.
std::string status_problems()
{
    std::ifstream status("/proc/self/status");
    std::string line;
    std::string problems;
    int seen = 0;
    while (std::getline(status, line)) {
        for (const char* key : {"CapInh:", "CapPrm:", "CapEff:", "CapBnd:", "CapAmb:"}) {
            if (line.rfind(key, 0) == 0) {
                ++seen;
                if (line.find_first_not_of("0", line.find_first_not_of(" \t", std::strlen(key))) != std::string::npos) {
                    problems += line + "; ";
                }
            }
        }
        if (line.rfind("NoNewPrivs:", 0) == 0) {
            ++seen;
            if (line.find('1') == std::string::npos) {
                problems += line + "; ";
            }
        }
    }
    if (seen != 6) {
        problems += "expected 6 lines in /proc/self/status, saw " + std::to_string(seen);
    }
    return problems;
}

// Puts CAP_NET_BIND_SERVICE into the ambient set (it must be permitted and inheritable first).
std::string raise_an_ambient_capability()
{
    cap_t caps = ::cap_get_proc();
    const cap_value_t cap[] = {CAP_NET_BIND_SERVICE};
    const bool ok = caps != nullptr && ::cap_set_flag(caps, CAP_INHERITABLE, 1, cap, CAP_SET) == 0 &&
                    ::cap_set_proc(caps) == 0 &&
                    ::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_NET_BIND_SERVICE, 0, 0) == 0;
    ::cap_free(caps);
    return ok && !read_capabilities().ambient.empty() ? "" : std::string("raise ambient: ") + std::strerror(errno);
}

}  // namespace

Test(harden_caps, drop_empties_every_set)
{
    require_root();
    const ChildResult result = in_child([] {
        if (read_capabilities().empty()) {
            return std::string("this root process holds no capability: nothing to prove");
        }
        if (std::string error = raise_an_ambient_capability(); !error.empty()) {
            return error;
        }
        drop_all_capabilities();
        apply_process_limits();
        return status_problems();
    });
    if (result.message == "this root process holds no capability: nothing to prove") {
        cr_skip_test("%s", result.message.c_str());
    }
    cr_expect(WIFEXITED(result.status) && WEXITSTATUS(result.status) == 0, "%s", result.message.c_str());
    cr_expect_eq(result.message, "", "%s", result.message.c_str());
}

// Under the unit the daemon holds nothing and capset/PR_CAPBSET_DROP are denied: the drop must
// then only read and verify. Emulated with a filter that kills on exactly those calls.
Test(harden_caps, nothing_held_means_no_privileged_call)
{
    require_root();
    const ChildResult result = in_child([]() -> std::string {
        drop_all_capabilities();
        if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
            return std::string("PR_SET_NO_NEW_PRIVS: ") + std::strerror(errno);
        }
        scmp_filter_ctx ctx = ::seccomp_init(SCMP_ACT_ALLOW);
        if (ctx == nullptr || ::seccomp_rule_add(ctx, SCMP_ACT_KILL_PROCESS, SCMP_SYS(capset), 0) != 0 ||
            ::seccomp_rule_add(ctx, SCMP_ACT_KILL_PROCESS, SCMP_SYS(prctl), 1,
                               SCMP_CMP(0, SCMP_CMP_EQ, PR_CAPBSET_DROP)) != 0 ||
            ::seccomp_load(ctx) != 0) {
            return "could not install the emulated unit filter";
        }
        ::seccomp_release(ctx);
        drop_all_capabilities();  // reads and verifies only
        return status_problems().find("Cap") == std::string::npos ? "" : status_problems();
    });
    cr_expect(!WIFSIGNALED(result.status), "the second drop made a privileged call (killed by signal %d)",
              WTERMSIG(result.status));
    cr_expect_eq(result.message, "", "%s", result.message.c_str());
}

// A process that still has a bounding set but no CAP_SETPCAP (here: root turned into nobody)
// cannot finish the drop; it must fail, naming the step, and not carry on half-dropped.
Test(harden_caps, an_undroppable_bounding_set_fails_closed)
{
    require_root();
    const ChildResult result = in_child([]() -> std::string {
        if (::setgroups(0, nullptr) != 0 || ::setresgid(65534, 65534, 65534) != 0 ||
            ::setresuid(65534, 65534, 65534) != 0) {
            return std::string("become nobody: ") + std::strerror(errno);
        }
        if (read_capabilities().bounding.empty()) {
            return "";  // nothing to prove: the bounding set is already empty
        }
        try {
            drop_all_capabilities();
        } catch (const std::exception& e) {
            const std::string what = e.what();
            return what.rfind("hardening: drop bounding set", 0) == 0 ? "" : "wrong message: " + what;
        }
        return "the drop succeeded although the bounding set could not be emptied";
    });
    cr_expect_eq(result.message, "", "%s", result.message.c_str());
}

Test(harden_caps, describe_names_the_sets)
{
    codexvault::harden::CapabilityState state;
    cr_expect_eq(state.describe(), "none");
    state.bounding = "cap_setpcap";
    state.effective = "cap_chown";
    cr_expect_eq(state.describe(), "effective=cap_chown bounding=cap_setpcap");
    cr_expect(!state.empty());
    cr_expect(!state.process_sets_empty());
}
