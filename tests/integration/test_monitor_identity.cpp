// The eBPF monitor as the daemon uses it: exe identity from its exec records for callers whose
// /proc/PID/exe the capability-less daemon may not read, the rule that a caller is judged by the
// exe its process had when its connection appeared, and a daemon without a monitor.
//
// The daemon starts as root here and drops every capability after loading the monitor, so it
// cannot read the exe of a uid-65534 process (ptrace access needs a matching uid or
// CAP_SYS_PTRACE): exactly the packaged daemon's position towards every other user's process.
// Tests that need the monitor skip, with the daemon's reason, where it is unavailable.
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <nlohmann/json.hpp>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <thread>

#include "cli/cli_support.hpp"
#include "common/bus_contract.hpp"
#include "common/vault_error.hpp"
#include "lib/fileio/unique_fd.hpp"
#include "tests/integration/borrowed_connection.hpp"
#include "tests/support/harness.hpp"

using namespace codexvault;
using namespace codexvault::test;

namespace {

const int kDenied = error_info(ErrorCode::PermissionDenied).exit_code;

nlohmann::json status_json()
{
    const auto r = env->vaultctl({"--json", "status"});
    cr_assert_eq(r.exit_code, 0, "%s%s", r.out.c_str(), r.err.c_str());
    return nlohmann::json::parse(r.out);
}

std::string monitor_line()
{
    return status_json().value("monitor", std::string());
}

void require_root()
{
    if (::geteuid() != 0) {
        cr_skip_test("needs root: the daemon loads its eBPF monitor before dropping capabilities");
    }
}

// Skips (with the daemon's own reason) unless the daemon's monitor records.
void require_recording_monitor()
{
    require_root();
    const std::string line = monitor_line();
    if (line.rfind("recording", 0) != 0) {
        cr_skip_test("the eBPF monitor is not recording here: %s", line.c_str());
    }
}

void write_policy_and_restart(const std::string& content)
{
    const std::string path = env->policy_dir() + "/50-test.toml";
    std::ofstream(path, std::ios::trunc) << content;
    cr_assert_eq(::chmod(path.c_str(), 0644), 0);
    env->stop_daemon();
    env->start_daemon();
}

// A copy of vaultctl under its own name and inode, executable by uid 65534.
std::string copy_vaultctl(const std::string& name)
{
    const std::string to = env->root() + "/bin/" + name;
    std::filesystem::copy_file(env->root() + "/bin/vaultctl", to, std::filesystem::copy_options::overwrite_existing);
    cr_assert_eq(::chmod(to.c_str(), 0755), 0);
    return to;
}

std::string policy_for(const std::string& principal_lines)
{
    return "version = 1\n[principals.tool]\n" + principal_lines +
           "\n[grants.tool-audit]\nprincipal = \"tool\"\ncapability = \"audit:read\"\n";
}

CommandResult as_nobody(const std::vector<std::string>& argv)
{
    return run_command(argv, {.stdin_data = "", .passphrase = std::nullopt, .as_uid = kNobody});
}

// Root without any capability: the daemon (capability-less root here) may read its exe in /proc.
CommandResult as_capless_root(const std::vector<std::string>& argv)
{
    return run_command(argv, {.stdin_data = "", .passphrase = std::nullopt, .as_uid = 0});
}

bool become_nobody()
{
    return ::setgroups(0, nullptr) == 0 && ::setresgid(kNobody, kNobody, kNobody) == 0 &&
           ::setresuid(kNobody, kNobody, kNobody) == 0;
}

CallResult use_audit_read(sd_bus* bus)
{
    return call(bus, bus::method::kUse, [](sd_bus_message* m) {
        cr_assert(sd_bus_message_append(m, "s", "audit:read") >= 0);
        cr_assert(sd_bus_message_append(m, "a{sv}", 0) >= 0);
    });
}

// Connect as the connector, exec `trusted` in it after the daemon has seen the connection
// appear, and make the first call (which pins the caller) only afterwards, from the test process
// that kept the socket.
struct HandedOver {
    CallResult use;
    CallResult who;
    bool exec_done = false;
};

// `daemon_late`: the daemon is stopped (SIGSTOP) from before the Hello until after the exec, so it
// reads NameOwnerChanged only when the trusted program already runs on the connector's pid (the
// race of a loaded daemon: exec between connecting and the daemon seeing the connection).
HandedOver hand_over_then_exec(const std::string& trusted, const std::function<bool()>& become,
                               bool daemon_late = false)
{
    int value[2];
    cr_assert(::pipe2(value, O_CLOEXEC) == 0);
    UniqueFd value_read(value[0]), value_write(value[1]);
    UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    cr_assert(fd.valid());
    const std::string address = env->bus_address();
    const int stdin_source = value_read.get();
    Connector connector = fork_connector(fd.get(), become, [&] {
        // Blocks reading a value from a pipe that is never written: the trusted program stays
        // alive on the connector's pid without calling anything itself.
        ::dup2(stdin_source, STDIN_FILENO);
        ::execl(trusted.c_str(), "vaultctl", "--bus", address.c_str(), "secret", "put", "borrowed",
                static_cast<char*>(nullptr));
    });
    if (daemon_late) {
        cr_assert_eq(::kill(env->daemon_pid(), SIGSTOP), 0);
    }
    bus::BusPtr bus = open_bus_on(std::move(fd));
    if (!daemon_late) {
        // The bus signals a new name to the daemon before it forwards any later message, so once
        // another client's call has been answered the daemon has recorded when this one appeared.
        (void)monitor_line();
    }
    connector.proceed();
    const std::string proc_exe = "/proc/" + std::to_string(connector.pid) + "/exe";
    HandedOver out;
    for (int i = 0; i < 250 && !(out.exec_done = read_link(proc_exe) == trusted); ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    if (daemon_late) {
        // The exec record is in the ring (the hooks run in the exec'ing task); the daemon now
        // reads the name's appearance after it.
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        cr_assert_eq(::kill(env->daemon_pid(), SIGCONT), 0);
        (void)monitor_line();
    }
    out.use = use_audit_read(bus.get());
    out.who = call(bus.get(), bus::method::kWhoAmI);
    connector.kill();
    return out;
}

}  // namespace

TestSuite(monitor_identity, .init = start_env, .fini = stop_env, .timeout = 120);

Test(monitor_identity, status_shows_the_monitor_recording_when_bpf_works)
{
    require_root();
    const std::string line = monitor_line();
    if (line.rfind("unavailable", 0) == 0) {
        cr_skip_test("BPF is refused here: %s", line.c_str());
    }
    cr_expect(line.rfind("recording (", 0) == 0, "%s", line.c_str());
    cr_expect(line.find("sched_process_exec=") != std::string::npos, "%s", line.c_str());
    // The connect-time check walks the bus daemon's descriptors (the test bus reports its pid).
    cr_expect(line.find("task_file=iter") != std::string::npos, "%s", line.c_str());
}

Test(monitor_identity, an_exec_as_another_uid_is_identified_by_the_monitor_and_only_that_binary_matches)
{
    require_recording_monitor();
    const std::string trusted = copy_vaultctl("trusted-tool");
    write_policy_and_restart(policy_for("uid = 65534\nexe = \"" + trusted + "\""));

    const auto who = as_nobody({trusted, "--bus", env->bus_address(), "--json", "whoami"});
    cr_assert_eq(who.exit_code, 0, "%s%s", who.out.c_str(), who.err.c_str());
    const auto subject = nlohmann::json::parse(who.out);
    cr_expect(subject.value("exe", "") == trusted, "%s", who.out.c_str());
    cr_expect(subject.value("exe_known", false), "%s", who.out.c_str());
    cr_expect(subject.value("exe_source", "") == "monitor", "%s", who.out.c_str());

    const auto allowed = as_nobody({trusted, "--bus", env->bus_address(), "use", "audit:read"});
    cr_expect_eq(allowed.exit_code, 0, "the exe principal must match: %s%s", allowed.out.c_str(), allowed.err.c_str());
    // Same uid, another binary.
    const auto other = as_nobody({env->root() + "/bin/vaultctl", "--bus", env->bus_address(), "use", "audit:read"});
    cr_expect_eq(other.exit_code, kDenied, "%s%s", other.out.c_str(), other.err.c_str());
}

Test(monitor_identity, an_exe_sha256_principal_matches_the_file_the_record_names_for_another_uid)
{
    require_recording_monitor();
    const std::string trusted = copy_vaultctl("hashed-tool");
    const auto sum = run_command({"sha256sum", trusted});
    cr_assert_eq(sum.exit_code, 0, "%s", sum.err.c_str());
    const std::string digest = sum.out.substr(0, 64);
    write_policy_and_restart(policy_for("uid = 65534\nexe_sha256 = \"" + digest + "\""));

    const auto allowed = as_nobody({trusted, "--bus", env->bus_address(), "use", "audit:read"});
    cr_expect_eq(allowed.exit_code, 0, "%s%s", allowed.out.c_str(), allowed.err.c_str());
    // Another file with other bytes, same uid.
    const std::string shell_copy = env->root() + "/bin/other-tool";
    std::filesystem::copy_file(env->root() + "/bin/vaultctl", shell_copy);
    {
        std::ofstream(shell_copy, std::ios::app) << "different bytes";
    }
    cr_assert_eq(::chmod(shell_copy.c_str(), 0755), 0);
    const auto denied = as_nobody({shell_copy, "--bus", env->bus_address(), "use", "audit:read"});
    cr_expect_eq(denied.exit_code, kDenied, "%s%s", denied.out.c_str(), denied.err.c_str());
}

Test(monitor_identity, a_capless_root_connector_that_execs_a_trusted_binary_after_connecting_is_refused)
{
    require_recording_monitor();
    const std::string trusted = copy_vaultctl("trusted-root-tool");
    write_policy_and_restart(policy_for("uid = 0\nexe = \"" + trusted + "\""));
    // Control: the trusted binary itself, as capability-less root (its exe is readable in /proc).
    const auto genuine = run_command({trusted, "--bus", env->bus_address(), "use", "audit:read"},
                                     {.stdin_data = "", .passphrase = std::nullopt, .as_uid = 0});
    cr_assert_eq(genuine.exit_code, 0, "%s%s", genuine.out.c_str(), genuine.err.c_str());

    const HandedOver handed = hand_over_then_exec(trusted, drop_all_capabilities);
    cr_assert(handed.exec_done, "the connector did not exec %s", trusted.c_str());
    cr_expect(!handed.use.ok(), "the handed-over connection was judged by the exe exec'd after connecting");
    cr_expect(handed.use.message.find("after its connection appeared") != std::string::npos, "%s",
              handed.use.message.c_str());
    cr_expect(!handed.who.ok(), "the connection is refused for good: %s", handed.who.message.c_str());
}

Test(monitor_identity, a_connector_of_another_uid_that_execs_a_trusted_binary_after_connecting_is_refused)
{
    require_recording_monitor();
    const std::string trusted = copy_vaultctl("trusted-tool");
    write_policy_and_restart(policy_for("uid = 65534\nexe = \"" + trusted + "\""));
    const HandedOver handed = hand_over_then_exec(trusted, become_nobody);
    cr_assert(handed.exec_done, "the connector did not exec %s", trusted.c_str());
    cr_expect(!handed.use.ok(), "the handed-over connection was judged by the exe exec'd after connecting");
    cr_expect(handed.use.message.find("after its connection appeared") != std::string::npos, "%s",
              handed.use.message.c_str());
}

// The same hand-over, but the daemon sees the connection appear only after the exec (a busy
// daemon). The moment it records for the appearance is when it reads NameOwnerChanged, which is
// then after the exec, so the exec records alone cannot place the exec after the connection. The
// kernel can: the socket the bus accepted still holds the credentials the connector had at
// connect(), and the exec gave the connector new ones (docs/architecture.md, "Exe identity from
// the monitor"). Fails with the connect-time check left out of the first pin.
Test(monitor_identity, a_connector_that_execs_a_trusted_binary_before_the_daemon_sees_its_connection_is_refused)
{
    require_recording_monitor();
    const std::string trusted = copy_vaultctl("trusted-tool");
    write_policy_and_restart(policy_for("uid = 65534\nexe = \"" + trusted + "\""));
    const HandedOver handed = hand_over_then_exec(trusted, become_nobody, true);
    cr_assert(handed.exec_done, "the connector did not exec %s", trusted.c_str());
    cr_expect(!handed.use.ok(), "the handed-over connection was judged by the exe exec'd before the daemon saw it");
    cr_expect(handed.use.message.find("other credentials than when it connected") != std::string::npos, "%s",
              handed.use.message.c_str());
    cr_expect(!handed.who.ok(), "the connection is refused for good: %s", handed.who.message.c_str());
}

// The same, for a connector whose exe the daemon may read in /proc (capability-less root): the
// exe /proc shows at the first pin is the trusted one, and only the connect-time check knows it
// is not the one the connection was made with.
Test(monitor_identity, a_readable_connector_that_execs_before_the_daemon_sees_its_connection_is_refused)
{
    require_recording_monitor();
    const std::string trusted = copy_vaultctl("trusted-root-tool");
    write_policy_and_restart(policy_for("uid = 0\nexe = \"" + trusted + "\""));
    const HandedOver handed = hand_over_then_exec(trusted, drop_all_capabilities, true);
    cr_assert(handed.exec_done, "the connector did not exec %s", trusted.c_str());
    cr_expect(!handed.use.ok(), "the handed-over connection was judged by the exe exec'd before the daemon saw it");
    cr_expect(handed.use.message.find("other credentials than when it connected") != std::string::npos, "%s",
              handed.use.message.c_str());
}

// The ordinary client: fork, exec the trusted binary, connect, call. The kernel vouches that it
// holds the credentials it connected with, and its exe principal matches.
Test(monitor_identity, a_client_that_execs_and_then_connects_is_verified_and_its_exe_principal_matches)
{
    require_recording_monitor();
    const std::string trusted = copy_vaultctl("trusted-tool");
    write_policy_and_restart(policy_for("uid = 65534\nexe = \"" + trusted + "\""));
    const auto who = as_nobody({trusted, "--bus", env->bus_address(), "--json", "whoami"});
    cr_assert_eq(who.exit_code, 0, "%s%s", who.out.c_str(), who.err.c_str());
    const auto subject = nlohmann::json::parse(who.out);
    cr_expect(subject.value("connect_check", "") == "verified", "%s", who.out.c_str());
    cr_expect(subject.value("exe", "") == trusted, "%s", who.out.c_str());
    const auto allowed = as_nobody({trusted, "--bus", env->bus_address(), "use", "audit:read"});
    cr_expect_eq(allowed.exit_code, 0, "%s%s", allowed.out.c_str(), allowed.err.c_str());

    // The same for a caller whose exe comes from /proc (capability-less root).
    const std::string root_tool = copy_vaultctl("trusted-root-tool");
    write_policy_and_restart(policy_for("uid = 0\nexe = \"" + root_tool + "\""));
    const auto genuine = as_capless_root({root_tool, "--bus", env->bus_address(), "--json", "whoami"});
    cr_assert_eq(genuine.exit_code, 0, "%s%s", genuine.out.c_str(), genuine.err.c_str());
    const auto root_subject = nlohmann::json::parse(genuine.out);
    cr_expect(root_subject.value("connect_check", "") == "verified", "%s", genuine.out.c_str());
    cr_expect(root_subject.value("exe_source", "") == "proc", "%s", genuine.out.c_str());
    const auto root_use = as_capless_root({root_tool, "--bus", env->bus_address(), "use", "audit:read"});
    cr_expect_eq(root_use.exit_code, 0, "%s%s", root_use.out.c_str(), root_use.err.c_str());
}

Test(monitor_identity, a_fresh_process_on_the_pid_of_a_trusted_one_never_inherits_its_exe)
{
    require_recording_monitor();
    const std::string trusted = copy_vaultctl("trusted-tool");
    write_policy_and_restart(policy_for("uid = 65534\nexe = \"" + trusted + "\""));
    // The trusted binary runs (its exec is recorded under its pid and start time) and exits.
    int value[2];
    cr_assert(::pipe2(value, O_CLOEXEC) == 0);
    UniqueFd value_read(value[0]), value_write(value[1]);
    const pid_t first = ::fork();
    cr_assert(first >= 0);
    if (first == 0) {
        ::dup2(value_read.get(), STDIN_FILENO);
        if (!become_nobody()) {
            _exit(20);
        }
        ::execl(trusted.c_str(), "vaultctl", "--bus", env->bus_address().c_str(), "secret", "put", "x",
                static_cast<char*>(nullptr));
        _exit(21);
    }
    const std::string proc_exe = "/proc/" + std::to_string(first) + "/exe";
    for (int i = 0; i < 250 && read_link(proc_exe) != trusted; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    cr_assert_eq(read_link(proc_exe), trusted);
    ::kill(first, SIGKILL);
    cr_assert_eq(::waitpid(first, nullptr, 0), first);
    // Start times count 10 ms ticks: two processes started on one pid within one tick would share
    // the key. Only root can place a process on a chosen pid (ns_last_pid, clone3 set_tid in the
    // host's pid namespace); anyone else would have to cycle through pid_max pids within a tick
    // (bpf/README.md, Limits). This test is root, so it waits out the tick.
    std::this_thread::sleep_for(std::chrono::milliseconds(30));

    // A new process on the same pid (ns_last_pid), uid 65534, never exec'd: its own start time.
    int out[2];
    cr_assert(::pipe2(out, O_CLOEXEC) == 0);
    UniqueFd out_read(out[0]), out_write(out[1]);
    const std::string address = env->bus_address();
    pid_t second = -1;
    for (int attempt = 0; attempt < 2000 && second != first; ++attempt) {
        {
            UniqueFd last(::open("/proc/sys/kernel/ns_last_pid", O_WRONLY | O_CLOEXEC));
            cr_assert(last.valid(), "open ns_last_pid: %s", std::strerror(errno));
            const std::string text = std::to_string(first - 1);
            cr_assert_eq(::write(last.get(), text.data(), text.size()), static_cast<ssize_t>(text.size()));
        }
        second = ::fork();
        cr_assert(second >= 0);
        if (second == 0) {
            if (::getpid() != first) {
                _exit(0);
            }
            nlohmann::json report;
            if (!become_nobody()) {
                _exit(30);
            }
            try {
                cli::VaultClient client(address);
                report["subject"] = cli::read_dictionary(client.call(bus::method::kWhoAmI).get());
                report["use"] = exit_code_of([&] {
                    (void)client.call(bus::method::kUse, [](sd_bus_message* m) {
                        (void)sd_bus_message_append(m, "s", "audit:read");
                        (void)sd_bus_message_append(m, "a{sv}", 0);
                    });
                });
            } catch (const std::exception& e) {
                report["error"] = e.what();
            }
            const std::string text = report.dump();
            _exit(::write(out[1], text.data(), text.size()) == static_cast<ssize_t>(text.size()) ? 0 : 31);
        }
        if (second != first) {
            ::waitpid(second, nullptr, 0);
        }
    }
    cr_assert_eq(second, first, "could not place a process on pid %d", first);
    out_write.reset();
    std::string text;
    char buffer[4096];
    ssize_t n = 0;
    while ((n = ::read(out_read.get(), buffer, sizeof buffer)) > 0) {
        text.append(buffer, static_cast<std::size_t>(n));
    }
    int status = 0;
    ::waitpid(second, &status, 0);
    cr_assert(!text.empty(), "the second process reported nothing (status %d)", status);
    const auto report = nlohmann::json::parse(text);
    cr_assert(!report.contains("error"), "%s", text.c_str());
    cr_expect(report["subject"]["pid"].get<pid_t>() == first, "%s", text.c_str());
    cr_expect(report["subject"]["exe"] != trusted, "the reused pid inherited the old exe: %s", text.c_str());
    cr_expect(report["use"].get<int>() == kDenied, "%s", text.c_str());
}

Test(monitor_identity, with_the_monitor_off_status_says_so_and_identity_still_works)
{
    require_root();
    std::ofstream(env->root() + "/codex-vaultd.toml", std::ios::app) << "monitor = false\n";
    write_policy_and_restart(policy_for("uid = 65534"));
    const std::string line = monitor_line();
    cr_expect(line.rfind("off:", 0) == 0, "%s", line.c_str());
    const auto who = as_nobody({env->root() + "/bin/vaultctl", "--bus", env->bus_address(), "--json", "whoami"});
    cr_assert_eq(who.exit_code, 0, "%s%s", who.out.c_str(), who.err.c_str());
    const auto subject = nlohmann::json::parse(who.out);
    cr_expect(!subject.value("exe_known", true), "without the monitor another uid's exe is unknown: %s",
              who.out.c_str());
    cr_expect(subject.value("exe_source", "") == "none", "%s", who.out.c_str());
    const auto allowed = as_nobody({env->root() + "/bin/vaultctl", "--bus", env->bus_address(), "use", "audit:read"});
    cr_expect_eq(allowed.exit_code, 0, "a uid principal needs no monitor: %s%s", allowed.out.c_str(),
                 allowed.err.c_str());
}

// Without the monitor the connect-time check cannot run, so nobody's exe can be vouched for: not
// even one the daemon may read in /proc (capability-less root), which might have been exec'd
// after connecting. Exe principals fail closed; uid principals still work.
Test(monitor_identity, without_the_connect_time_check_exe_principals_fail_closed_even_for_a_readable_exe)
{
    require_root();
    std::ofstream(env->root() + "/codex-vaultd.toml", std::ios::app) << "monitor = false\n";
    const std::string trusted = copy_vaultctl("trusted-root-tool");
    write_policy_and_restart(policy_for("uid = 0\nexe = \"" + trusted + "\""));
    const auto who = as_capless_root({trusted, "--bus", env->bus_address(), "--json", "whoami"});
    cr_assert_eq(who.exit_code, 0, "%s%s", who.out.c_str(), who.err.c_str());
    const auto subject = nlohmann::json::parse(who.out);
    cr_expect(!subject.value("exe_known", true), "%s", who.out.c_str());
    cr_expect(subject.value("connect_check", "").rfind("unverified: ", 0) == 0, "%s", who.out.c_str());
    const auto denied = as_capless_root({trusted, "--bus", env->bus_address(), "use", "audit:read"});
    cr_expect_eq(denied.exit_code, kDenied, "%s%s", denied.out.c_str(), denied.err.c_str());
}
