// Inject through the real daemon, the real eBPF monitor and vaultctl exec: refused without the
// monitor and when locked; the command and its child get the secret, masked in their output; an
// unmarked process that reads the marked process's environment is recorded against the injection
// id (and, under on_touch = "kill", killed and the grant revoked); expiry closes the injection
// and on_expiry = "terminate" ends the command. The canary never reaches the audit log or a reply.
#include <fcntl.h>
#include <nlohmann/json.hpp>
#include <signal.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include <chrono>
#include <cstring>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <thread>

#include "cli/vault_client.hpp"
#include "common/bus_contract.hpp"
#include "common/vault_error.hpp"
#include "lib/fileio/unique_fd.hpp"
#include "tests/integration/inject_support.hpp"
#include "tests/support/harness.hpp"

using namespace codexvault;
using namespace codexvault::test;
using namespace codexvault::test::inject;

namespace {

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

void send_fd(int socket, int fd)
{
    char byte = 'x';
    iovec iov{&byte, 1};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    cmsghdr* cmsg = CMSG_FIRSTHDR(&msg);
    cmsg->cmsg_level = SOL_SOCKET;
    cmsg->cmsg_type = SCM_RIGHTS;
    cmsg->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(cmsg), &fd, sizeof(int));
    (void)::sendmsg(socket, &msg, MSG_NOSIGNAL);
}

int receive_fd(int socket)
{
    char data[64];
    iovec iov{data, sizeof data};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    if (::recvmsg(socket, &msg, 0) <= 0) {
        return -1;
    }
    const cmsghdr* cmsg = CMSG_FIRSTHDR(&msg);
    if (cmsg == nullptr || cmsg->cmsg_type != SCM_RIGHTS) {
        return -1;
    }
    int fd = -1;
    std::memcpy(&fd, CMSG_DATA(cmsg), sizeof fd);
    return fd;
}

// The attack: a recipient (a process that called Inject itself, so it is marked) passes the
// secret's descriptor over a unix socket to an unrelated, unmarked process, which maps it and
// writes what it read to `leak`. Returns the unrelated process's wait status and what reached
// `leak`; `recipient_id` gets the injection id.
struct Leak {
    int status = 0;
    pid_t pid = -1;
    std::string leaked;
    std::string injection_id;
};

Leak leak_through_a_socket(const std::string& name)
{
    int pass[2];
    int leak[2];
    int ids[2];
    cr_assert_eq(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pass), 0);
    cr_assert_eq(::pipe2(leak, O_CLOEXEC), 0);
    cr_assert_eq(::pipe2(ids, O_CLOEXEC), 0);
    // The unrelated process: forked from the test, never marked.
    const pid_t reader = ::fork();
    cr_assert(reader >= 0);
    if (reader == 0) {
        ::close(pass[0]);
        ::close(leak[0]);
        const int fd = receive_fd(pass[1]);
        struct stat st {};
        if (fd < 0 || ::fstat(fd, &st) != 0) {
            _exit(3);
        }
        void* map = ::mmap(nullptr, static_cast<std::size_t>(st.st_size), PROT_READ, MAP_SHARED, fd, 0);
        if (map == MAP_FAILED) {
            _exit(4);
        }
        (void)!::write(leak[1], map, static_cast<std::size_t>(st.st_size));
        _exit(0);
    }
    ::close(pass[1]);
    ::close(leak[1]);
    // The recipient: asks for the injection, hands the descriptor on, then waits to be told.
    const pid_t recipient = ::fork();
    cr_assert(recipient >= 0);
    if (recipient == 0) {
        try {
            cli::VaultClient client(env->bus_address());
            int channel[2];
            if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, channel) != 0) {
                _exit(5);
            }
            cli::Message reply = client.call(bus::method::kInject, [&](sd_bus_message* m) {
                sd_bus_message_append(m, "sa{sv}h", name.c_str(), 0, channel[1]);
            });
            const char* id = nullptr;
            sd_bus_message_read(reply.get(), "s", &id);
            (void)!::write(ids[1], id, std::strlen(id));
            ::close(ids[1]);
            const int fd = receive_fd(channel[0]);
            send_fd(pass[0], fd);
            char wait_byte;
            (void)!::read(pass[0], &wait_byte, 1);  // until the reader is gone
            _exit(0);
        } catch (const std::exception&) {
            _exit(6);
        }
    }
    ::close(ids[1]);
    Leak out;
    out.pid = reader;
    ::waitpid(reader, &out.status, 0);
    ::close(pass[0]);
    char buffer[256];
    ssize_t n = 0;
    while ((n = ::read(leak[0], buffer, sizeof buffer)) > 0) {
        out.leaked.append(buffer, static_cast<std::size_t>(n));
    }
    ::close(leak[0]);
    while ((n = ::read(ids[0], buffer, sizeof buffer)) > 0) {
        out.injection_id.append(buffer, static_cast<std::size_t>(n));
    }
    ::close(ids[0]);
    int recipient_status = 0;
    ::waitpid(recipient, &recipient_status, 0);
    cr_assert(WIFEXITED(recipient_status) && WEXITSTATUS(recipient_status) == 0, "the recipient failed: %d",
              recipient_status);
    return out;
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

// `inject = false`: the monitor records without the per-syscall hooks (which cost every syscall
// on the host), and Inject is refused with that reason rather than run without them.
Test(inject, is_refused_when_injections_are_off_in_the_configuration_and_no_syscall_hook_is_attached)
{
    require_root();
    require_monitor();
    const auto before = env->vaultctl({"status", "--json"});
    cr_assert(before.out.find("sys_enter=") != std::string::npos, "hooks attached by default: %s", before.out.c_str());
    put_secret("demo");
    issue_inject_grant("demo");
    std::ofstream(env->root() + "/codex-vaultd.toml", std::ios::app) << "inject = false\n";
    env->restart_daemon();
    const auto status = env->vaultctl({"status", "--json"});
    cr_expect(status.out.find("recording") != std::string::npos, "the monitor still records: %s", status.out.c_str());
    cr_expect(status.out.find("sys_enter=") == std::string::npos, "no syscall hook: %s", status.out.c_str());
    const auto r = env->vaultctl({"exec", "--secret", "demo=TOKEN", "--", "true"});
    cr_expect_eq(r.exit_code, error_info(ErrorCode::Unavailable).exit_code, "exit %d: %s", r.exit_code, r.err.c_str());
    cr_expect(contains(r.err, "inject = false"), "the reason names the setting: %s", r.err.c_str());
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
    cr_expect(!contains(read_tree(env->state_dir()), canary), "the canary is in the state folder in clear");
}

Test(inject, masking_covers_the_encoded_forms_of_the_secret)
{
    require_root();
    require_monitor();
    const std::string canary = put_secret("demo");
    issue_inject_grant("demo");
    // base64 (at an offset, so the encoding is not aligned with the value) and a JSON string.
    const auto r =
        env->vaultctl({"exec", "--secret", "demo=TOKEN", "--", "sh", "-c",
                       "printf 'xy%s' \"$TOKEN\" | base64 -w0; echo; printf '{\"k\":\"%s\"}\\n' \"$TOKEN\""});
    cr_expect_eq(r.exit_code, 0, "%s", r.err.c_str());
    cr_expect(!contains(r.out, canary), "raw value in: %s", r.out.c_str());
    const std::size_t markers = [&] {
        std::size_t n = 0;
        for (auto at = r.out.find("<redacted:demo>"); at != std::string::npos;
             at = r.out.find("<redacted:demo>", at + 1)) {
            ++n;
        }
        return n;
    }();
    cr_expect_eq(markers, 2U, "both the base64 and the JSON forms were masked: %s", r.out.c_str());
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

namespace {

// A record of `action` about injection `id` whose subject is `pid`, in the audit log's JSON lines.
bool has_record(const std::string& log, const std::string& action, const std::string& id, pid_t pid)
{
    std::istringstream lines(log);
    for (std::string line; std::getline(lines, line);) {
        const auto j = nlohmann::json::parse(line, nullptr, false);
        if (!j.is_discarded() && j.value("action", "") == action && j.value("object", "") == id &&
            j["subject"]["pid"].is_number() && j["subject"]["pid"].get<pid_t>() == pid) {
            return true;
        }
    }
    return false;
}

}  // namespace

Test(inject, a_file_secret_is_tracked_and_an_unmarked_reader_of_the_file_is_recorded)
{
    require_root();
    require_monitor();
    const std::string canary = put_secret("demo");
    issue_inject_grant("demo");
    const std::string folder_file = env->root() + "/secrets-folder";
    const std::string go_file = env->root() + "/go-file";
    Background exec;
    exec.start({"exec", "--file", "demo=token", "--", "sh", "-c",
                "cat \"$CODEX_VAULT_SECRETS_DIR/token\" > /dev/null; echo \"$CODEX_VAULT_SECRETS_DIR\" > " +
                    folder_file + "; while [ ! -e " + go_file + " ]; do sleep 0.1; done"});
    std::string folder;
    for (int i = 0; i < 200 && folder.empty(); ++i) {
        std::ifstream in(folder_file);
        std::getline(in, folder);
        if (folder.empty()) {
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
    }
    cr_assert(!folder.empty(), "the command never named its folder");
    // The attack: an unrelated process (forked from the test, never marked) reads the file.
    const pid_t reader = ::fork();
    cr_assert(reader >= 0);
    if (reader == 0) {
        const int fd = ::open((folder + "/token").c_str(), O_RDONLY | O_CLOEXEC);
        char buffer[256];
        _exit(fd >= 0 && ::read(fd, buffer, sizeof buffer) > 0 ? 0 : 3);
    }
    int status = 0;
    ::waitpid(reader, &status, 0);
    cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the reader could read the file (on_touch = record)");
    std::ofstream(go_file) << "1";
    const auto& r = exec.join();
    cr_assert_eq(r.exit_code, 0, "%s", r.err.c_str());
    const std::string id = injection_id_of(r);
    const std::string log =
        wait_for_audit([&](const std::string& t) { return has_record(t, "inject.alert", id, reader); },
                       "the unmarked reader of the file");
    cr_expect(contains(log, "file copy (inode "), "inject.open names the file's inode");
    cr_expect(contains(log, "\"inject.touch\""), "the command's own cat is a routine touch");
    expect_canary_contained(canary);
}

Test(inject, a_file_that_is_not_an_empty_tmpfs_file_of_the_caller_is_refused_and_left_alone)
{
    require_root();
    require_monitor();
    put_secret("demo");
    issue_inject_grant("demo");
    // The attack: have the daemon track (and under on_touch = "kill", kill the readers of) a file
    // others read, or write the value over one. A file with content, on tmpfs:
    const std::string path = "/dev/shm/cv-inject-not-empty-" + std::to_string(::getpid());
    std::ofstream(path) << "content others read\n";
    const int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
    cr_assert(fd >= 0);
    int channel[2];
    cr_assert_eq(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, channel), 0);
    cli::VaultClient client(env->bus_address());
    std::string error;
    try {
        client.call(bus::method::kInject, [&](sd_bus_message* m) {
            sd_bus_message_append(m, "sa{sv}h", "demo", 1, "file", "h", fd, channel[1]);
        });
    } catch (const std::exception& e) {
        error = e.what();
    }
    cr_expect(contains(error, "empty regular file"), "refused: %s", error.c_str());
    std::ifstream in(path);
    std::string content;
    std::getline(in, content);
    cr_expect_eq(content, "content others read", "the file was left alone");
    ::close(fd);
    ::close(channel[0]);
    ::close(channel[1]);
    ::unlink(path.c_str());
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
    expect_canary_contained(canary);
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

Test(inject, a_descriptor_passed_to_an_unrelated_process_is_recorded_as_an_alert_with_its_pid)
{
    require_root();
    require_monitor();
    const std::string canary = put_secret("demo");
    issue_inject_grant("demo");
    const Leak leak = leak_through_a_socket("demo");
    cr_expect(WIFEXITED(leak.status) && WEXITSTATUS(leak.status) == 0, "the reader ran (status %d)", leak.status);
    cr_expect_eq(leak.leaked, canary, "under on_touch = record the reader did read the secret");
    const std::string pid = "pid " + std::to_string(leak.pid);
    const std::string log = wait_for_audit(
        [&](const std::string& t) {
            const auto at = t.find("inject.alert");
            return at != std::string::npos && contains(t, pid + ",") && contains(t, leak.injection_id);
        },
        "the unrelated reader");
    cr_expect(!contains(log, canary), "the canary reached the audit log");
    expect_canary_contained(canary);
}

Test(inject, on_touch_kill_kills_the_unrelated_reader_before_it_can_pass_the_secret_on)
{
    require_root();
    require_monitor();
    put_secret("demo");
    const std::string grant = issue_inject_grant("demo", {"--on-touch", "kill"});
    const Leak leak = leak_through_a_socket("demo");
    cr_expect(WIFSIGNALED(leak.status) && WTERMSIG(leak.status) == SIGKILL, "the reader was killed (status %d)",
              leak.status);
    cr_expect(leak.leaked.empty(), "nothing reached the leak pipe");
    wait_for_audit([&](const std::string& t) { return contains(t, "inject.revoke") && contains(t, grant); },
                   "the revocation");
    // The grant is gone: the next Inject is refused.
    const auto r = env->vaultctl({"exec", "--secret", "demo=TOKEN", "--", "true"});
    cr_expect_eq(r.exit_code, error_info(ErrorCode::PermissionDenied).exit_code, "exit %d: %s", r.exit_code,
                 r.err.c_str());
}

Test(inject, ptrace_and_process_vm_readv_against_a_marked_process_are_recorded)
{
    require_root();
    require_monitor();
    put_secret("demo");
    issue_inject_grant("demo");
    const std::string pid_file = env->root() + "/command.pid";
    const std::string go_file = env->root() + "/go";
    Background exec;
    exec.start({"exec", "--secret", "demo=TOKEN", "--", "sh", "-c",
                "echo $$ > " + pid_file + "; while [ ! -e " + go_file + " ]; do sleep 0.1; done"});
    const pid_t marked = wait_for_pid_file(pid_file);
    const pid_t child = ::fork();
    cr_assert(child >= 0);
    if (child == 0) {
        char byte = 0;
        iovec local{&byte, 1};
        iovec remote{reinterpret_cast<void*>(0x400000), 1};
        (void)::process_vm_readv(marked, &local, 1, &remote, 1, 0);
        if (::ptrace(PTRACE_ATTACH, marked, nullptr, nullptr) == 0) {
            int status = 0;
            ::waitpid(marked, &status, 0);
            ::ptrace(PTRACE_DETACH, marked, nullptr, nullptr);
        }
        _exit(0);
    }
    int status = 0;
    ::waitpid(child, &status, 0);
    std::ofstream(go_file) << "1";
    const auto& r = exec.join();
    const std::string id = injection_id_of(r);
    wait_for_audit(
        [&](const std::string& t) {
            return contains(t, "ALERT ptrace") && contains(t, "ALERT process_vm_readv") && contains(t, id);
        },
        "ptrace and process_vm_readv");
}

Test(inject, a_secret_marked_for_rotation_is_not_injected)
{
    require_root();
    require_monitor();
    put_secret("demo");
    cr_assert_eq(founder({"incident", "--reason", "test"}).exit_code, 0);
    cr_assert_eq(founder({"unlock", "--reason", "test"}).exit_code, 0);
    issue_inject_grant("demo");
    const auto r = env->vaultctl({"exec", "--secret", "demo=TOKEN", "--", "true"});
    cr_expect_eq(r.exit_code, error_info(ErrorCode::IntegrityFailure).exit_code, "exit %d: %s", r.exit_code,
                 r.err.c_str());
    cr_expect(contains(r.err, "rotated"), "%s", r.err.c_str());
}
