// Grants through the real daemon and bus: principals matched by uid, exe and exe digest; runtime
// grants issued, used up, rate-limited, expired and revoked (also across a restart); approvals
// bound to one process and one request, single-use; Check consumes nothing.
#include <grp.h>
#include <nlohmann/json.hpp>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include <chrono>
#include <fstream>
#include <regex>
#include <sstream>
#include <thread>

#include "common/bus_contract.hpp"
#include "common/vault_error.hpp"
#include "tests/support/harness.hpp"

using namespace codexvault;
using namespace codexvault::test;

namespace {

const int kDenied = error_info(ErrorCode::PermissionDenied).exit_code;
const int kApproval = error_info(ErrorCode::ApprovalRequired).exit_code;
const int kExpired = error_info(ErrorCode::Expired).exit_code;
// A second unprivileged account that exists on every Debian system ("daemon").
constexpr uid_t kOtherUid = 1;

void require_root()
{
    if (::geteuid() != 0) {
        cr_skip_test("needs root: policy files must be root-owned and callers run as other uids");
    }
}

// Writes the policy and restarts the daemon so it loads it.
void start_with_policy(const std::string& content)
{
    env->write_test_policy(content);
    env->restart_daemon();
}

CommandResult founder(const std::vector<std::string>& args)
{
    return env->as_founder(args);
}

std::string issue(const std::vector<std::string>& options)
{
    std::vector<std::string> args{"grant", "issue"};
    args.insert(args.end(), options.begin(), options.end());
    const auto r = founder(args);
    cr_assert_eq(r.exit_code, 0, "grant issue: %s", r.err.c_str());
    std::string id = r.out;
    while (!id.empty() && id.back() == '\n') {
        id.pop_back();
    }
    cr_assert(id.rfind("g-", 0) == 0, "grant id: %s", id.c_str());
    return id;
}

CommandResult as(uid_t uid, const std::vector<std::string>& args)
{
    return env->vaultctl(args, {.stdin_data = "", .passphrase = std::nullopt, .as_uid = uid});
}

std::string vaultctl_path()
{
    return env->root() + "/bin/vaultctl";
}

std::string sha256_of(const std::string& path)
{
    const auto r = run_command({"sha256sum", path});
    cr_assert_eq(r.exit_code, 0);
    return r.out.substr(0, 64);
}

// busctl: another executable under the same uid, calling Check directly.
CommandResult busctl_check(uid_t uid, const std::string& capability)
{
    return run_command({"busctl", "--address=" + env->bus_address(), "call", bus::kBusName, bus::kObjectPath,
                        bus::kInterface, "Check", "sa{sv}", capability, "0"},
                       {.stdin_data = "", .passphrase = std::nullopt, .as_uid = uid});
}

}  // namespace

TestSuite(grants, .init = start_env_with_founder, .fini = stop_env, .timeout = 120);

Test(grants, a_principal_matched_by_uid_is_allowed_and_another_uid_is_denied)
{
    require_root();
    start_with_policy(R"(version = 1
[principals.nobody]
uid = 65534
[grants.nobody-audit]
principal = "nobody"
capability = "audit:read"
)");
    const auto allowed = as(kNobody, {"check", "audit:read"});
    cr_expect_eq(allowed.exit_code, 0, "%s%s", allowed.out.c_str(), allowed.err.c_str());
    cr_expect(allowed.out.find("allow") != std::string::npos, "%s", allowed.out.c_str());
    const auto other = as(kOtherUid, {"check", "audit:read"});
    cr_expect_eq(other.exit_code, kDenied, "%s%s", other.out.c_str(), other.err.c_str());
    // A caller learns "no grant", never that a grant exists for someone else.
    cr_expect(other.out.find("no grant") != std::string::npos, "%s", other.out.c_str());
    cr_expect(other.out.find("nobody-audit") == std::string::npos, "%s", other.out.c_str());
    // Another capability is not covered by the grant.
    cr_expect_eq(as(kNobody, {"check", "ingest:scan"}).exit_code, kDenied);
}

Test(grants, a_principal_matched_by_exe_is_allowed_and_another_exe_under_the_same_uid_is_denied)
{
    require_root();
    start_with_policy(std::string(R"(version = 1
[principals.tool]
uid = 0
exe = ")") + vaultctl_path() +
                      R"("
[grants.tool-audit]
principal = "tool"
capability = "audit:read"
)");
    // uid 0 without capabilities: the daemon (no capabilities either) may read its exe.
    const auto allowed = as(0, {"check", "audit:read"});
    cr_expect_eq(allowed.exit_code, 0, "%s%s", allowed.out.c_str(), allowed.err.c_str());
    const auto other = busctl_check(0, "audit:read");
    cr_assert_eq(other.exit_code, 0, "%s", other.err.c_str());
    cr_expect(other.out.find("false \"deny\"") != std::string::npos, "busctl: %s", other.out.c_str());
    // A caller whose /proc/PID/exe the daemon cannot read (root with full capabilities): known
    // from the eBPF monitor's exec records when it records, else unknown and closed.
    const auto status = env->vaultctl({"status"});
    const bool recording = status.out.find("monitor: recording") != std::string::npos;
    const auto unreadable = env->vaultctl({"check", "audit:read"});
    if (recording) {
        cr_expect_eq(unreadable.exit_code, 0, "%s", unreadable.out.c_str());
    } else {
        cr_expect_eq(unreadable.exit_code, kDenied, "%s", unreadable.out.c_str());
        cr_expect(unreadable.out.find("exe unknown") != std::string::npos, "%s", unreadable.out.c_str());
    }
}

Test(grants, a_principal_matched_by_exe_digest_is_allowed)
{
    require_root();
    start_with_policy(std::string(R"(version = 1
[principals.tool]
exe_sha256 = ")") + sha256_of(vaultctl_path()) +
                      R"("
[grants.tool-audit]
principal = "tool"
capability = "audit:read"
)");
    const auto allowed = as(0, {"check", "audit:read"});
    cr_expect_eq(allowed.exit_code, 0, "%s%s", allowed.out.c_str(), allowed.err.c_str());
    const auto other = busctl_check(0, "audit:read");
    cr_expect(other.out.find("false \"deny\"") != std::string::npos, "busctl: %s", other.out.c_str());
}

Test(grants, a_revoked_grant_stays_revoked_after_a_restart)
{
    require_root();
    start_with_policy("version = 1\n");
    const std::string id = issue({"--principal", "uid=65534", "--cap", "audit:read", "--ttl", "1h"});
    cr_expect_eq(as(kNobody, {"use", "audit:read"}).exit_code, 0);
    const auto revoked = founder({"grant", "revoke", id});
    cr_assert_eq(revoked.exit_code, 0, "%s", revoked.err.c_str());
    cr_expect_eq(as(kNobody, {"use", "audit:read"}).exit_code, kDenied);
    env->stop_daemon();
    env->start_daemon();
    const auto after = as(kNobody, {"use", "audit:read"});
    cr_expect_eq(after.exit_code, kDenied, "%s%s", after.out.c_str(), after.err.c_str());
    const auto listed = founder({"grant", "ls", "--json"});
    cr_assert_eq(listed.exit_code, 0, "%s", listed.err.c_str());
    const auto grants = nlohmann::json::parse(listed.out);
    cr_assert_eq(grants.size(), 1u, "%s", listed.out.c_str());
    cr_expect_eq(grants[0]["id"], id);
    cr_expect_eq(grants[0]["state"], "revoked");
    cr_expect_eq(grants[0]["uses"], 1);
}

Test(grants, a_policy_grant_revoked_by_name_and_revoke_all_persist)
{
    require_root();
    start_with_policy(R"(version = 1
[principals.nobody]
uid = 65534
[grants.nobody-audit]
principal = "nobody"
capability = "audit:read"
[grants.nobody-scan]
principal = "nobody"
capability = "ingest:scan"
)");
    cr_assert_eq(founder({"grant", "revoke", "nobody-audit"}).exit_code, 0);
    cr_expect_eq(as(kNobody, {"use", "audit:read"}).exit_code, kDenied);
    cr_expect_eq(as(kNobody, {"use", "ingest:scan"}).exit_code, 0);
    const auto all = founder({"grant", "revoke-all"});
    cr_assert_eq(all.exit_code, 0, "%s", all.err.c_str());
    env->stop_daemon();
    env->start_daemon();
    cr_expect_eq(as(kNobody, {"use", "audit:read"}).exit_code, kDenied);
    cr_expect_eq(as(kNobody, {"use", "ingest:scan"}).exit_code, kDenied);
    // Unknown ids are NotFound, not silently accepted.
    cr_expect_eq(founder({"grant", "revoke", "g-0000000000000000"}).exit_code,
                 error_info(ErrorCode::NotFound).exit_code);
}

Test(grants, uses_past_max_uses_are_denied_also_after_a_restart_and_check_consumes_nothing)
{
    require_root();
    start_with_policy("version = 1\n");
    issue({"--principal", "uid=65534", "--cap", "audit:read", "--ttl", "1h", "--max-uses", "2"});
    for (int i = 0; i < 3; ++i) {
        cr_expect_eq(as(kNobody, {"check", "audit:read"}).exit_code, 0, "check %d", i);
    }
    cr_expect_eq(as(kNobody, {"use", "audit:read"}).exit_code, 0);
    env->stop_daemon();
    env->start_daemon();
    cr_expect_eq(as(kNobody, {"use", "audit:read"}).exit_code, 0);
    const auto third = as(kNobody, {"use", "audit:read"});
    cr_expect_eq(third.exit_code, kDenied, "%s", third.err.c_str());
    cr_expect(third.err.find("used up") != std::string::npos, "%s", third.err.c_str());
    cr_expect_eq(as(kNobody, {"check", "audit:read"}).exit_code, kDenied);
}

Test(grants, uses_over_the_rate_are_denied)
{
    require_root();
    start_with_policy("version = 1\n");
    issue({"--principal", "uid=65534", "--cap", "audit:read", "--ttl", "1h", "--rate", "2/min"});
    cr_expect_eq(as(kNobody, {"use", "audit:read"}).exit_code, 0);
    cr_expect_eq(as(kNobody, {"use", "audit:read"}).exit_code, 0);
    const auto third = as(kNobody, {"use", "audit:read"});
    cr_expect_eq(third.exit_code, kDenied, "%s", third.err.c_str());
    cr_expect(third.err.find("rate") != std::string::npos, "%s", third.err.c_str());
}

Test(grants, an_expired_grant_is_denied_at_the_moment_of_use)
{
    require_root();
    start_with_policy("version = 1\n");
    issue({"--principal", "uid=65534", "--cap", "audit:read", "--ttl", "1s"});
    std::this_thread::sleep_for(std::chrono::milliseconds(1300));
    const auto late = as(kNobody, {"use", "audit:read"});
    cr_expect_eq(late.exit_code, kExpired, "%s", late.err.c_str());
}

Test(grants, explain_names_the_matching_principal_and_the_failing_condition)
{
    require_root();
    start_with_policy(R"(version = 1
[principals.nobody]
uid = 65534
[grants.nobody-audit]
principal = "nobody"
capability = "audit:read"
)");
    const auto yes = founder({"policy", "explain", "--uid", "65534", "--cap", "audit:read"});
    cr_expect_eq(yes.exit_code, 0, "%s%s", yes.out.c_str(), yes.err.c_str());
    cr_expect(yes.out.find("nobody-audit") != std::string::npos, "%s", yes.out.c_str());
    const auto no = founder({"policy", "explain", "--uid", "1", "--cap", "audit:read"});
    cr_expect_eq(no.exit_code, kDenied, "%s", no.out.c_str());
    cr_expect(no.out.find("uid") != std::string::npos, "%s", no.out.c_str());
}

// A gid principal matches the caller's effective gid or any of its supplementary groups, as they
// are at the call: the daemon skips re-reading the groups only while no grant has a gid
// condition, so once one does, a caller that dropped the group since its pin no longer matches.
Test(grants, a_gid_grant_follows_the_supplementary_groups_the_caller_has_at_each_call)
{
    require_root();
    start_with_policy("version = 1\n");
    constexpr gid_t kGroup = 4242;  // in no account's groups: only the child below holds it
    issue({"--principal", "gid=" + std::to_string(kGroup), "--cap", "audit:read", "--ttl", "1h"});
    const pid_t child = ::fork();
    cr_assert(child >= 0);
    if (child == 0) {
        const gid_t groups[] = {kGroup};
        if (::setgroups(1, groups) != 0) {
            _exit(120);
        }
        cli::VaultClient client(env->bus_address());  // connects as root (egid 0) holding the group
        auto use = [&] {
            return exit_code_of([&] {
                (void)client.call(bus::method::kUse, [](sd_bus_message* m) {
                    cli::check_local(sd_bus_message_append(m, "s", "audit:read"), "cap");
                    cli::check_local(sd_bus_message_append(m, "a{sv}", 0), "args");
                });
            });
        };
        if (use() != 0) {
            _exit(121);  // pinned with the group: the grant applies
        }
        // Same uid and gid, same connection: only the supplementary groups changed.
        if (::setgroups(0, nullptr) != 0) {
            _exit(122);
        }
        if (use() != kDenied) {
            _exit(123);
        }
        if (::setgroups(1, groups) != 0) {
            _exit(124);
        }
        _exit(use() == 0 ? 0 : 125);
    }
    int status = 0;
    ::waitpid(child, &status, 0);
    cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %d (exit %d)", status,
              WIFEXITED(status) ? WEXITSTATUS(status) : -1);
}

// ---- approvals ----------------------------------------------------------------------------------

namespace {

// uid 65534 may have secret "demo" injected, with the founder's approval each time.
const char* const kApproveEachPolicy = R"(version = 1
[principals.nobody]
uid = 65534
[grants.demo-inject]
principal = "nobody"
capability = "secret:demo:inject"
approval = "each"
)";

struct UseResult {
    int code = -1;
    std::string approval;  // from an ApprovalRequired message
};

// One process asks several times, as an agent would: the first Use creates the approval, the
// later ones present it. Results travel back to the test through a pipe.
struct Caller {
    pid_t pid = -1;
    int commands = -1;  // test -> caller: one line per Use ("target approval")
    int results = -1;   // caller -> test: "code approval"
};

Caller start_caller(uid_t uid)
{
    int to_child[2];
    int from_child[2];
    cr_assert(::pipe(to_child) == 0 && ::pipe(from_child) == 0);
    const pid_t pid = ::fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        ::close(to_child[1]);
        ::close(from_child[0]);
        ::prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (::setgroups(0, nullptr) != 0 || ::setresgid(uid, uid, uid) != 0 || ::setresuid(uid, uid, uid) != 0) {
            _exit(126);
        }
        FILE* in = ::fdopen(to_child[0], "r");
        cli::VaultClient client(env->bus_address());
        char line[512];
        while (std::fgets(line, sizeof line, in) != nullptr) {
            std::string target;
            std::string approval;
            std::istringstream(line) >> target >> approval;
            if (approval == "-") {
                approval.clear();
            }
            std::string out;
            try {
                client.call(bus::method::kUse, [&](sd_bus_message* m) {
                    cli::check_local(sd_bus_message_append(m, "s", "secret:demo:inject"), "cap");
                    cli::check_local(sd_bus_message_open_container(m, 'a', "{sv}"), "open");
                    cli::check_local(sd_bus_message_append(m, "{sv}", "target", "s", target.c_str()), "target");
                    if (!approval.empty()) {
                        cli::check_local(sd_bus_message_append(m, "{sv}", "approval_id", "s", approval.c_str()),
                                         "approval");
                    }
                    cli::check_local(sd_bus_message_close_container(m), "close");
                });
                out = "0 -\n";
            } catch (const cli::CallError& e) {
                std::smatch match;
                const std::string message = e.what();
                const std::regex id("a-[0-9a-f]{16}");
                const std::string found = std::regex_search(message, match, id) ? match.str() : "-";
                out = std::to_string(e.exit_code()) + " " + found + "\n";
            }
            if (::write(from_child[1], out.data(), out.size()) < 0) {
                _exit(125);
            }
        }
        _exit(0);
    }
    ::close(to_child[0]);
    ::close(from_child[1]);
    return {pid, to_child[1], from_child[0]};
}

UseResult ask(const Caller& caller, const std::string& target, const std::string& approval = "-")
{
    const std::string line = target + " " + approval + "\n";
    cr_assert(::write(caller.commands, line.data(), line.size()) == static_cast<ssize_t>(line.size()));
    std::string reply;
    char c = 0;
    while (::read(caller.results, &c, 1) == 1 && c != '\n') {
        reply.push_back(c);
    }
    UseResult result;
    std::istringstream(reply) >> result.code >> result.approval;
    return result;
}

void stop_caller(Caller& caller)
{
    ::close(caller.commands);
    ::close(caller.results);
    int status = 0;
    ::waitpid(caller.pid, &status, 0);
}

// Waits for one ApprovalRequested signal on the bus and returns its approval id.
struct SignalWatch {
    cli::VaultClient client{env->bus_address()};
    sd_bus_slot* slot = nullptr;
    std::string last_id;

    SignalWatch()
    {
        cr_assert(sd_bus_match_signal(client.bus(), &slot, bus::kBusName, bus::kObjectPath, bus::kInterface,
                                      bus::signal::kApprovalRequested, &SignalWatch::on_signal, this) >= 0);
    }
    ~SignalWatch() { sd_bus_slot_unref(slot); }
    SignalWatch(const SignalWatch&) = delete;
    SignalWatch& operator=(const SignalWatch&) = delete;

    static int on_signal(sd_bus_message* m, void* userdata, sd_bus_error* /*error*/)
    {
        const char* id = nullptr;
        const char* capability = nullptr;
        std::uint64_t expires = 0;
        if (sd_bus_message_read(m, "sst", &id, &capability, &expires) >= 0) {
            static_cast<SignalWatch*>(userdata)->last_id = id;
        }
        return 0;
    }
    std::string wait()
    {
        for (int i = 0; i < 100 && last_id.empty(); ++i) {
            while (sd_bus_process(client.bus(), nullptr) > 0) {
            }
            if (last_id.empty()) {
                (void)sd_bus_wait(client.bus(), 50'000);
            }
        }
        return last_id;
    }
};

}  // namespace

Test(grants, an_approval_is_single_use_and_bound_to_its_process_and_request)
{
    require_root();
    start_with_policy(kApproveEachPolicy);
    SignalWatch watch;
    Caller caller = start_caller(kNobody);
    const UseResult first = ask(caller, "pid=1");
    cr_assert_eq(first.code, kApproval, "first use: %d", first.code);
    cr_assert(first.approval.rfind("a-", 0) == 0, "no approval id in the error");
    cr_expect_eq(watch.wait(), first.approval, "ApprovalRequested signal");

    const auto pending = founder({"approvals", "ls", "--json"});
    cr_assert_eq(pending.exit_code, 0, "%s", pending.err.c_str());
    cr_expect(pending.out.find(first.approval) != std::string::npos, "%s", pending.out.c_str());

    // Before approval: presenting the id is still not enough.
    cr_expect_neq(ask(caller, "pid=1", first.approval).code, 0);
    cr_assert_eq(founder({"approve", first.approval}).exit_code, 0);

    // Another process of the same uid cannot use it.
    Caller other = start_caller(kNobody);
    cr_expect_eq(ask(other, "pid=1", first.approval).code, kDenied, "other process");
    stop_caller(other);
    // Nor can the same process for a different request.
    cr_expect_eq(ask(caller, "pid=2", first.approval).code, kDenied, "other request");
    // The approved request from the approved process: allowed, once.
    cr_expect_eq(ask(caller, "pid=1", first.approval).code, 0, "approved use");
    cr_expect_eq(ask(caller, "pid=1", first.approval).code, kDenied, "reused approval");
    stop_caller(caller);
}

Test(grants, a_denied_approval_cannot_be_used)
{
    require_root();
    start_with_policy(kApproveEachPolicy);
    Caller caller = start_caller(kNobody);
    const UseResult first = ask(caller, "pid=1");
    cr_assert_eq(first.code, kApproval);
    cr_assert_eq(founder({"deny", first.approval}).exit_code, 0);
    cr_expect_eq(ask(caller, "pid=1", first.approval).code, kDenied);
    // Deciding twice is refused.
    cr_expect_neq(founder({"approve", first.approval}).exit_code, 0);
    stop_caller(caller);
}

Test(grants, approvals_watch_prints_each_new_request)
{
    require_root();
    start_with_policy(kApproveEachPolicy);
    // The watcher: vaultctl approvals watch --json, its output on a pipe, the passphrase on fd 3.
    int out[2];
    int err[2];
    int pass[2];
    cr_assert(::pipe(out) == 0 && ::pipe(err) == 0 && ::pipe(pass) == 0);
    const pid_t watcher = ::fork();
    cr_assert(watcher >= 0);
    if (watcher == 0) {
        ::prctl(PR_SET_PDEATHSIG, SIGKILL);
        ::dup2(out[1], 1);
        ::dup2(err[1], 2);
        ::dup2(pass[0], 3);
        const std::string bin = vaultctl_path();
        ::execl(bin.c_str(), bin.c_str(), "--bus", env->bus_address().c_str(), "approvals", "watch", "--json",
                "--founder-key", env->founder_key().c_str(), "--passphrase-fd", "3", static_cast<char*>(nullptr));
        _exit(127);
    }
    ::close(out[1]);
    ::close(err[1]);
    ::close(pass[0]);
    const std::string passphrase = std::string(kPassphrase) + "\n";
    cr_assert(::write(pass[1], passphrase.data(), passphrase.size()) == static_cast<ssize_t>(passphrase.size()));
    ::close(pass[1]);
    // The watcher says on stderr when its match is in place (after proving the key with a signed
    // call, an Argon2 derivation first): wait for that line rather than for a guessed time.
    std::string status;
    struct pollfd status_poll {
        err[0], POLLIN, 0
    };
    for (int i = 0; i < 600 && status.find("watching") == std::string::npos; ++i) {
        if (::poll(&status_poll, 1, 100) > 0) {
            char buffer[512];
            const ssize_t n = ::read(err[0], buffer, sizeof buffer);
            if (n <= 0) {
                break;
            }
            status.append(buffer, static_cast<std::size_t>(n));
        }
    }
    cr_assert(status.find("watching") != std::string::npos, "the watcher never subscribed: %s", status.c_str());

    Caller caller = start_caller(kNobody);
    const UseResult first = ask(caller, "pid=1");
    cr_assert_eq(first.code, kApproval);

    std::string seen;
    struct pollfd p {
        out[0], POLLIN, 0
    };
    for (int i = 0; i < 50 && seen.find(first.approval) == std::string::npos; ++i) {
        if (::poll(&p, 1, 100) > 0) {
            char buffer[4096];
            const ssize_t n = ::read(out[0], buffer, sizeof buffer);
            if (n <= 0) {
                break;
            }
            seen.append(buffer, static_cast<std::size_t>(n));
        }
    }
    ::kill(watcher, SIGTERM);
    ::waitpid(watcher, nullptr, 0);
    ::close(out[0]);
    ::close(err[0]);
    stop_caller(caller);
    cr_expect(seen.find(first.approval) != std::string::npos, "watch printed: %s", seen.c_str());
    cr_expect(seen.find("secret:demo:inject") != std::string::npos, "watch printed: %s", seen.c_str());
}
