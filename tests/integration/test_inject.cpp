// Inject through the real daemon, the real eBPF monitor and vaultctl exec: refused without the
// monitor and when locked; the command and its child get the secret, masked in their output; an
// unmarked process that reads the marked process's environment is recorded against the injection
// id (and, under on_touch = "kill", killed and the grant revoked); expiry closes the injection
// and on_expiry = "terminate" ends the command. The canary never reaches the audit log or a reply.
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include <chrono>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <thread>

#include "common/vault_error.hpp"
#include "tests/support/harness.hpp"

using namespace codexvault;
using namespace codexvault::test;

namespace {

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

// The daemon's monitor must record, or nothing here can run: skipped with the daemon's reason.
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

std::string issue_inject_grant(const std::string& name, const std::vector<std::string>& extra = {})
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

// Polls the audit log until `needle` shows up (records of the monitor are drained every 200 ms
// and written with the next write); fails after 15 s.
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
    cr_assert_fail("no audit record of %s; log:\n%s", what,
                   text.substr(text.size() > 6000 ? text.size() - 6000 : 0).c_str());
    return text;
}

bool contains(const std::string& text, const std::string& needle)
{
    return text.find(needle) != std::string::npos;
}

std::string injection_id_of(const CommandResult& r)
{
    const auto at = r.err.find("injection inj-");
    cr_assert_neq(at, std::string::npos, "no injection id in: %s", r.err.c_str());
    return r.err.substr(at + 10, 20);
}

// Waits for a file the command writes (its pid) and returns its content.
pid_t wait_for_pid_file(const std::string& path)
{
    for (int i = 0; i < 200; ++i) {
        std::ifstream in(path);
        pid_t pid = 0;
        if (in >> pid && pid > 0) {
            return pid;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    cr_assert_fail("the command never wrote %s", path.c_str());
    return -1;
}

// Reads /proc/PID/environ in a forked (unmarked) child; its wait status.
int read_environ_in_child(pid_t target)
{
    const pid_t child = ::fork();
    cr_assert(child >= 0);
    if (child == 0) {
        const std::string path = "/proc/" + std::to_string(target) + "/environ";
        const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
        char buffer[4096];
        const ssize_t n = fd >= 0 ? ::read(fd, buffer, sizeof buffer) : -1;
        _exit(n > 0 ? 0 : 3);
    }
    int status = 0;
    ::waitpid(child, &status, 0);
    return status;
}

// vaultctl exec in the background (so the test can act while the command runs).
struct Background {
    std::thread thread;
    CommandResult result;
    void start(std::vector<std::string> args)
    {
        thread = std::thread([this, args = std::move(args)] { result = env->vaultctl(args); });
    }
    CommandResult& join()
    {
        thread.join();
        return result;
    }
};

}  // namespace

TestSuite(inject, .init = start_env_with_founder, .fini = stop_env, .timeout = 120);

Test(inject, is_refused_with_the_reason_when_the_monitor_is_off)
{
    require_root();
    put_secret("demo");
    issue_inject_grant("demo");
    std::ofstream(env->root() + "/codex-vaultd.toml", std::ios::app) << "monitor = false\n";
    env->stop_daemon();
    env->start_daemon();
    const auto r = env->vaultctl({"exec", "--secret", "demo=TOKEN", "--", "true"});
    cr_expect_eq(r.exit_code, error_info(ErrorCode::Unavailable).exit_code, "exit %d: %s", r.exit_code, r.err.c_str());
    cr_expect(contains(r.err, "monitor"), "the reason names the monitor: %s", r.err.c_str());
}

Test(inject, is_refused_when_the_vault_is_locked)
{
    require_root();
    put_secret("demo");
    issue_inject_grant("demo");
    const auto lock = founder({"lock", "--reason", "test"});
    cr_assert_eq(lock.exit_code, 0, "%s", lock.err.c_str());
    const auto r = env->vaultctl({"exec", "--secret", "demo=TOKEN", "--", "true"});
    cr_expect_eq(r.exit_code, error_info(ErrorCode::Locked).exit_code, "exit %d: %s", r.exit_code, r.err.c_str());
}

Test(inject, is_denied_without_an_inject_grant)
{
    require_root();
    put_secret("demo");
    const auto r = env->vaultctl({"exec", "--secret", "demo=TOKEN", "--", "true"});
    cr_expect_eq(r.exit_code, error_info(ErrorCode::PermissionDenied).exit_code, "exit %d: %s", r.exit_code,
                 r.err.c_str());
}

Test(inject, the_command_and_its_child_get_the_secret_masked_in_their_output)
{
    require_root();
    require_monitor();
    const std::string canary = put_secret("demo");
    const std::string grant = issue_inject_grant("demo");
    const auto r = env->vaultctl({"exec", "--secret", "demo=TOKEN", "--", "sh", "-c",
                                  "echo \"out:$TOKEN\"; sh -c 'echo \"child:$TOKEN\" >&2'; "
                                  "test -n \"$TOKEN\" && exit 7"});
    cr_expect_eq(r.exit_code, 7, "the command's exit status passes through: %d (%s)", r.exit_code, r.err.c_str());
    cr_expect(contains(r.out, "out:<redacted:demo>"), "stdout: %s", r.out.c_str());
    cr_expect(contains(r.err, "child:<redacted:demo>"), "stderr: %s", r.err.c_str());
    cr_expect(!contains(r.out + r.err, canary), "the value was printed unmasked");
    const std::string id = injection_id_of(r);
    const std::string log = wait_for_audit(
        [&](const std::string& t) { return contains(t, "inject.open") && contains(t, "inject.mark.inherited"); },
        "the injection and its inherited marks");
    cr_expect(contains(log, id), "records name the injection id %s", id.c_str());
    cr_expect(contains(log, grant), "records name the grant");
    cr_expect(!contains(log, canary), "the canary reached the audit log");
    cr_expect(!contains(env->daemon_log(), canary), "the canary reached the daemon's log");
}

Test(inject, no_mask_passes_the_output_unchanged)
{
    require_root();
    require_monitor();
    const std::string canary = put_secret("demo");
    issue_inject_grant("demo");
    const auto r = env->vaultctl({"exec", "--no-mask", "--secret", "demo=TOKEN", "--", "sh", "-c", "echo \"$TOKEN\""});
    cr_expect_eq(r.exit_code, 0, "%s", r.err.c_str());
    cr_expect(contains(r.out, canary), "--no-mask printed the value as it is");
}

Test(inject, a_file_secret_is_readable_by_the_command_and_removed_after)
{
    require_root();
    require_monitor();
    const std::string canary = put_secret("demo");
    issue_inject_grant("demo");
    const auto r = env->vaultctl({"exec", "--file", "demo=token", "--", "sh", "-c",
                                  "cat \"$CODEX_VAULT_SECRETS_DIR/token\"; echo \"$CODEX_VAULT_SECRETS_DIR\" >&2"});
    cr_expect_eq(r.exit_code, 0, "%s", r.err.c_str());
    cr_expect(contains(r.out, "<redacted:demo>"), "stdout: %s", r.out.c_str());
    const auto at = r.err.find("/dev/shm/vaultctl-exec-");
    cr_assert_neq(at, std::string::npos, "%s", r.err.c_str());
    const std::string folder = r.err.substr(at, r.err.find('\n', at) - at);
    struct stat st {};
    cr_expect_neq(::stat(folder.c_str(), &st), 0, "the private folder %s is gone", folder.c_str());
}

Test(inject, an_unmarked_reader_of_the_marked_environment_is_recorded_with_the_injection_id)
{
    require_root();
    require_monitor();
    const std::string canary = put_secret("demo");
    issue_inject_grant("demo");
    const std::string pid_file = env->root() + "/command.pid";
    const std::string go_file = env->root() + "/go";
    Background exec;
    exec.start({"exec", "--secret", "demo=TOKEN", "--", "sh", "-c",
                "echo $$ > " + pid_file + "; while [ ! -e " + go_file + " ]; do sleep 0.1; done"});
    const pid_t marked = wait_for_pid_file(pid_file);
    const int status = read_environ_in_child(marked);
    cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the reader was not killed under on_touch = record");
    std::ofstream(go_file) << "1";
    const auto& r = exec.join();
    cr_assert_eq(r.exit_code, 0, "%s", r.err.c_str());
    const std::string id = injection_id_of(r);
    const std::string log = wait_for_audit(
        [&](const std::string& t) {
            const auto at = t.find("inject.alert");
            return at != std::string::npos && contains(t, id);
        },
        "the alert");
    cr_expect(contains(log, "proc_open"), "the alert says how: /proc/PID/environ");
    cr_expect(!contains(log, canary), "the canary reached the audit log");
}

Test(inject, on_touch_kill_kills_the_reader_and_revokes_the_grant)
{
    require_root();
    require_monitor();
    put_secret("demo");
    const std::string grant = issue_inject_grant("demo", {"--on-touch", "kill"});
    const std::string pid_file = env->root() + "/command.pid";
    const std::string go_file = env->root() + "/go";
    Background exec;
    exec.start({"exec", "--secret", "demo=TOKEN", "--", "sh", "-c",
                "echo $$ > " + pid_file + "; while [ ! -e " + go_file + " ]; do sleep 0.1; done"});
    const pid_t marked = wait_for_pid_file(pid_file);
    const int status = read_environ_in_child(marked);
    cr_expect(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "the reader was killed (status %d)", status);
    std::ofstream(go_file) << "1";
    (void)exec.join();
    wait_for_audit([&](const std::string& t) { return contains(t, "inject.revoke") && contains(t, "grant revoked"); },
                   "the revocation and the close");
    const auto list = founder({"grant", "ls", "--json"});
    const auto at = list.out.find(grant);
    cr_assert_neq(at, std::string::npos, "%s", list.out.c_str());
    cr_expect(contains(list.out.substr(at > 400 ? at - 400 : 0, 1200), "revoked"), "grant state: %s", list.out.c_str());
}

Test(inject, expiry_closes_the_injection_and_terminate_ends_the_command)
{
    require_root();
    require_monitor();
    put_secret("demo");
    issue_inject_grant("demo", {"--on-expiry", "terminate"});
    // sleep 60 would outlive the test's timeout: only the termination ends it in time.
    const auto r = env->vaultctl({"exec", "--ttl", "1", "--secret", "demo=TOKEN", "--", "sleep", "60"});
    cr_expect_eq(r.exit_code, 128 + SIGTERM, "ended by SIGTERM: exit %d (%s)", r.exit_code, r.err.c_str());
    const std::string id = injection_id_of(r);
    const std::string log = wait_for_audit(
        [&](const std::string& t) { return contains(t, "inject.close") && contains(t, "inject.terminate"); },
        "the close and the termination");
    cr_expect(contains(log, "expired"), "closed because it expired");
    cr_expect(contains(log, id));
}
