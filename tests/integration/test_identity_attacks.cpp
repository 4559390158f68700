// Attacks on caller identity, each performed against the real daemon on a real private bus:
// a reused pid inheriting a dead caller's connection, a unit name chosen inside a user's own
// cgroup subtree, an executable borrowed by exec on a kept connection, a pinned caller that
// exited or moved to another cgroup, and descriptor exhaustion.
//
// Several attacks need a connection whose socket was connected by one process (the bus driver
// records that pid, via SO_PEERCRED) and is spoken on by another: the test process creates the
// socket, a forked "connector" calls connect(2) on it, and the test process then runs sd-bus on
// its own copy of the descriptor. That is exactly "connect, fork, keep the socket".
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <nlohmann/json.hpp>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <functional>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

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

void require_root()
{
    if (::geteuid() != 0) {
        cr_skip_test("needs root: places processes on chosen pids and cgroups, and writes root-owned policy");
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

void append_capability(sd_bus_message* message, const char* capability)
{
    cr_assert(sd_bus_message_append(message, "s", capability) >= 0);
    cr_assert(sd_bus_message_append(message, "a{sv}", 0) >= 0);
}

CallResult use_audit_read(sd_bus* bus)
{
    return call(bus, bus::method::kUse, [](sd_bus_message* m) { append_capability(m, "audit:read"); });
}

nlohmann::json who_am_i(const CallResult& result)
{
    return result.ok() ? cli::read_dictionary(result.reply.get()) : nlohmann::json{{"error", result.message}};
}

const char* denied_name()
{
    return error_info(ErrorCode::PermissionDenied).bus_name;
}

// Puts a new process on exactly `pid` (free, e.g. a reaped connector's) by setting the pid
// namespace's last pid, as a fork loop cycling through the pid space would, only faster. Other
// processes may fork in between: retried. The process runs `body`, which must not return.
pid_t fork_on_pid(pid_t pid, const std::function<void()>& body)
{
    for (int attempt = 0; attempt < 2000; ++attempt) {
        {
            UniqueFd last(::open("/proc/sys/kernel/ns_last_pid", O_WRONLY | O_CLOEXEC));
            cr_assert(last.valid(), "open ns_last_pid: %s", std::strerror(errno));
            const std::string value = std::to_string(pid - 1);
            cr_assert_eq(::write(last.get(), value.data(), value.size()), static_cast<ssize_t>(value.size()),
                         "write ns_last_pid: %s", std::strerror(errno));
        }
        const pid_t child = ::fork();
        cr_assert(child >= 0);
        if (child == 0) {
            if (::getpid() == pid) {
                body();
            }
            _exit(0);
        }
        if (child == pid) {
            return child;
        }
        ::waitpid(child, nullptr, 0);
    }
    return -1;
}

void run_victim()
{
    ::execl("/bin/sleep", "sleep", "60", static_cast<char*>(nullptr));
    _exit(127);
}

void end_process(pid_t pid)
{
    if (pid > 0) {
        ::kill(pid, SIGKILL);
        ::waitpid(pid, nullptr, 0);
    }
}

// The cgroup2 hierarchy's mount point, or empty (hybrid systems mount it at .../unified).
std::string cgroup2_mount()
{
    std::ifstream mountinfo("/proc/self/mountinfo");
    std::string line;
    while (std::getline(mountinfo, line)) {
        const auto separator = line.find(" - ");
        if (separator == std::string::npos || line.compare(separator + 3, 8, "cgroup2 ") != 0) {
            continue;
        }
        std::istringstream fields(line.substr(0, separator));
        std::string id, parent, device, root, mount_point;
        fields >> id >> parent >> device >> root >> mount_point;
        if (root == "/") {
            return mount_point;
        }
    }
    return {};
}

// Cgroup directories made for one test, removed (deepest first) by clean_up() or at the latest
// by the destructor; a cgroup can be removed once no process is left in it.
class CgroupDirs {
public:
    explicit CgroupDirs(std::string mount) : mount_(std::move(mount)) {}
    CgroupDirs(const CgroupDirs&) = delete;
    CgroupDirs& operator=(const CgroupDirs&) = delete;
    ~CgroupDirs() { clean_up(); }

    // mkdir -p below the mount; 0 or the errno of the first failure.
    int make(const std::string& relative)
    {
        std::string path = mount_;
        std::istringstream components(relative);
        std::string component;
        while (std::getline(components, component, '/')) {
            if (component.empty()) {
                continue;
            }
            path += "/" + component;
            if (::mkdir(path.c_str(), 0755) == 0) {
                created_.push_back(path);
            } else if (errno != EEXIST) {
                return errno;
            }
        }
        return 0;
    }
    [[nodiscard]] std::string path(const std::string& relative) const { return mount_ + relative; }
    void clean_up()
    {
        for (auto it = created_.rbegin(); it != created_.rend(); ++it) {
            ::rmdir(it->c_str());
        }
        created_.clear();
    }

private:
    std::string mount_;
    std::vector<std::string> created_;
};

struct CgroupCallerReport {
    int status = -1;
    nlohmann::json report;
};

// A caller that moves itself into `procs` (a cgroup.procs file), becomes uid 65534 and reports
// what WhoAmI said and how Use of audit:read ended.
CgroupCallerReport call_from_cgroup(const std::string& procs)
{
    int out[2];
    cr_assert(::pipe2(out, O_CLOEXEC) == 0);
    const pid_t child = ::fork();
    cr_assert(child >= 0);
    if (child == 0) {
        nlohmann::json report;
        {
            std::ofstream move(procs);
            move << ::getpid() << std::flush;
            if (!move) {
                _exit(30);
            }
        }
        if (::setgroups(0, nullptr) != 0 || ::setresgid(kNobody, kNobody, kNobody) != 0 ||
            ::setresuid(kNobody, kNobody, kNobody) != 0) {
            _exit(31);
        }
        try {
            cli::VaultClient client(env->bus_address());
            report["subject"] = cli::read_dictionary(client.call(bus::method::kWhoAmI).get());
            report["use"] = exit_code_of([&] {
                (void)client.call(bus::method::kUse, [](sd_bus_message* m) { append_capability(m, "audit:read"); });
            });
        } catch (const std::exception& e) {
            report["error"] = e.what();
        }
        const std::string text = report.dump();
        const bool sent = ::write(out[1], text.data(), text.size()) == static_cast<ssize_t>(text.size());
        _exit(sent ? 0 : 32);
    }
    UniqueFd read_end(out[0]);
    UniqueFd(out[1]).reset();
    std::string text;
    char buffer[4096];
    ssize_t n = 0;
    while ((n = ::read(read_end.get(), buffer, sizeof buffer)) > 0) {
        text.append(buffer, static_cast<std::size_t>(n));
    }
    CgroupCallerReport result;
    ::waitpid(child, &result.status, 0);
    result.report = text.empty() ? nlohmann::json::object() : nlohmann::json::parse(text);
    return result;
}

bool log_contains(const std::string& text)
{
    for (int i = 0; i < 100; ++i) {
        if (env->daemon_log().find(text) != std::string::npos) {
            return true;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return false;
}

}  // namespace

TestSuite(identity_attacks, .init = start_env, .fini = stop_env, .timeout = 120);

// Item: a reused pid inherits another process's identity. The connector is pinned, exits, and
// a victim process gets its pid; the connection, still open in this process, must stay refused.
Test(identity_attacks, a_reused_pid_never_inherits_the_connection_of_a_dead_caller)
{
    require_root();
    UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    cr_assert(fd.valid());
    Connector connector = fork_connector(fd.get(), {}, {});
    const pid_t pinned_pid = connector.pid;
    bus::BusPtr bus = open_bus_on(std::move(fd));

    const CallResult pinned = call(bus.get(), bus::method::kWhoAmI);
    cr_assert(pinned.ok(), "%s", pinned.message.c_str());
    cr_assert_eq(who_am_i(pinned)["pid"].get<pid_t>(), pinned_pid);

    end_connector(connector);
    const CallResult orphaned = call(bus.get(), bus::method::kWhoAmI);
    cr_expect(orphaned.error == denied_name(), "after the connector exited: %s", orphaned.message.c_str());

    const pid_t victim = fork_on_pid(pinned_pid, run_victim);
    cr_assert_eq(victim, pinned_pid, "could not place a process on pid %d", pinned_pid);
    // Let the victim exec, as a real victim would be running its own program.
    for (int i = 0; i < 100 && read_link("/proc/" + std::to_string(victim) + "/exe") != "/usr/bin/sleep"; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    const CallResult stolen = call(bus.get(), bus::method::kWhoAmI);
    end_process(victim);

    cr_expect(stolen.error == denied_name(), "the connection was answered as the victim: %s",
              who_am_i(stolen).dump().c_str());
    cr_expect(stolen.message.find("refused until it disconnects") != std::string::npos, "%s", stolen.message.c_str());
}

// Item: the same reuse, but the name is first used after its connector died: the process on
// the pid started after the name appeared on the bus, so it cannot be the one that connected.
Test(identity_attacks, a_process_younger_than_the_connection_is_refused_at_the_first_pin)
{
    require_root();
    UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    cr_assert(fd.valid());
    Connector connector = fork_connector(fd.get(), {}, {});
    const pid_t connector_pid = connector.pid;
    bus::BusPtr bus = open_bus_on(std::move(fd));
    // The name is on the bus now; the daemon records when it saw it. Start times count in clock
    // ticks (10 ms): the victim below must start in a later one.
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    end_connector(connector);

    const pid_t victim = fork_on_pid(connector_pid, run_victim);
    cr_assert_eq(victim, connector_pid, "could not place a process on pid %d", connector_pid);
    const CallResult first = call(bus.get(), bus::method::kWhoAmI);
    const CallResult again = call(bus.get(), bus::method::kWhoAmI);
    end_process(victim);

    cr_expect(first.error == denied_name(), "the first pin took the victim: %s", who_am_i(first).dump().c_str());
    cr_expect(first.message.find("started after the connection appeared on the bus") != std::string::npos, "%s",
              first.message.c_str());
    cr_expect(again.error == denied_name(), "a second call took the victim: %s", who_am_i(again).dump().c_str());
    // A fresh connection from a live process is still served.
    const auto status = env->vaultctl({"whoami"});
    cr_expect_eq(status.exit_code, 0, "%s", status.err.c_str());
}

// Item: the unit is the first unit below the slices, as systemd derives it. Any user owns the
// subtree of its user@UID.service and can create ".../user@65534.service/victim.service" and move
// itself in; that must not make it the system unit victim.service.
Test(identity_attacks, a_unit_named_inside_a_user_managers_subtree_is_not_that_system_unit)
{
    require_root();
    const std::string mount = cgroup2_mount();
    if (mount.empty()) {
        cr_skip_test("no cgroup2 hierarchy is mounted");
    }
    const std::string unit = "cv-victim-" + std::to_string(::getpid()) + ".service";
    const std::string user_path = "/user.slice/user-65534.slice/user@65534.service/" + unit;
    const std::string system_path = "/system.slice/" + unit;
    CgroupDirs dirs(mount);
    if (const int error = dirs.make(user_path); error != 0) {
        cr_skip_test("cgroup2 at %s is not writable: %s", mount.c_str(), std::strerror(error));
    }
    cr_assert_eq(dirs.make(system_path), 0);
    write_policy_and_restart(R"(version = 1
[principals.victim]
unit = ")" + unit + R"("
[grants.victim-audit]
principal = "victim"
capability = "audit:read"
)");

    const auto attacker = call_from_cgroup(dirs.path(user_path) + "/cgroup.procs");
    // Control: a process really in the system unit of that name is matched by the grant.
    const auto genuine = call_from_cgroup(dirs.path(system_path) + "/cgroup.procs");
    dirs.clean_up();

    cr_assert(WIFEXITED(attacker.status) && WEXITSTATUS(attacker.status) == 0, "attacker status %d", attacker.status);
    const auto& subject = attacker.report["subject"];
    cr_assert(subject.is_object(), "%s", attacker.report.dump().c_str());
    cr_expect(subject["cgroup"] == user_path, "%s", subject.dump().c_str());
    cr_expect(subject["unit"] != unit, "the attacker was reported as the system unit: %s", subject.dump().c_str());
    cr_expect(subject["unit"] == "user@65534.service", "%s", subject.dump().c_str());
    cr_expect_eq(attacker.report["use"].get<int>(), kDenied, "a grant for unit %s matched the attacker: %s",
                 unit.c_str(), attacker.report.dump().c_str());

    cr_assert(WIFEXITED(genuine.status) && WEXITSTATUS(genuine.status) == 0, "genuine status %d", genuine.status);
    cr_expect(genuine.report["subject"]["unit"] == unit, "%s", genuine.report.dump().c_str());
    cr_expect_eq(genuine.report["use"].get<int>(), 0, "%s", genuine.report.dump().c_str());
}

// Item: a process connects, is pinned, then execs the trusted binary while the connection lives
// on in another process. The connection is judged by the executable seen at its first pin.
Test(identity_attacks, a_connection_kept_across_exec_does_not_borrow_the_new_executable)
{
    require_root();
    const std::string trusted = env->root() + "/bin/vaultctl";
    write_policy_and_restart(R"(version = 1
[principals.tool]
uid = 0
exe = ")" + trusted + R"("
[grants.tool-audit]
principal = "tool"
capability = "audit:read"
)");
    // Control: the trusted binary itself (uid 0 without capabilities, so its exe is readable).
    const auto genuine = run_command({trusted, "--bus", env->bus_address(), "use", "audit:read"},
                                     {.stdin_data = "", .passphrase = std::nullopt, .as_uid = 0});
    cr_assert_eq(genuine.exit_code, 0, "%s%s", genuine.out.c_str(), genuine.err.c_str());

    // The exec'd vaultctl blocks reading a secret value from this pipe, which is never written.
    int value[2];
    cr_assert(::pipe2(value, O_CLOEXEC) == 0);
    UniqueFd value_read(value[0]), value_write(value[1]);
    UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    cr_assert(fd.valid());
    const std::string address = env->bus_address();
    const int stdin_source = value_read.get();
    Connector connector = fork_connector(fd.get(), drop_all_capabilities, [&] {
        ::dup2(stdin_source, STDIN_FILENO);
        ::execl(trusted.c_str(), "vaultctl", "--bus", address.c_str(), "secret", "put", "borrowed",
                static_cast<char*>(nullptr));
    });
    bus::BusPtr bus = open_bus_on(std::move(fd));

    const CallResult before = call(bus.get(), bus::method::kWhoAmI);
    cr_assert(before.ok(), "%s", before.message.c_str());
    const auto pinned = who_am_i(before);
    const std::string own_exe = read_link("/proc/self/exe");
    cr_assert_eq(pinned["pid"].get<pid_t>(), connector.pid);
    cr_assert(pinned["exe_known"].get<bool>(), "%s", pinned.dump().c_str());
    cr_assert(pinned["exe"] == own_exe, "%s", pinned.dump().c_str());
    const CallResult untrusted = use_audit_read(bus.get());
    cr_expect(untrusted.error == denied_name(), "%s", untrusted.message.c_str());

    connector.proceed();
    const std::string proc_exe = "/proc/" + std::to_string(connector.pid) + "/exe";
    for (int i = 0; i < 250 && read_link(proc_exe) != trusted; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    const bool exec_done = read_link(proc_exe) == trusted;
    const CallResult borrowed = use_audit_read(bus.get());
    const CallResult after = call(bus.get(), bus::method::kWhoAmI);
    ::kill(connector.pid, SIGKILL);
    end_connector(connector);

    cr_assert(exec_done, "the connector did not exec %s", trusted.c_str());
    cr_expect(borrowed.error == denied_name(), "the kept connection was judged by the new exe (%s)",
              borrowed.ok() ? "allowed" : borrowed.message.c_str());
    cr_expect(borrowed.message.find("runs another executable") != std::string::npos, "%s", borrowed.message.c_str());
    cr_assert(after.ok(), "WhoAmI grants nothing and still answers: %s", after.message.c_str());
    const auto shown = who_am_i(after);
    cr_expect(shown["exe"] == own_exe, "WhoAmI must keep showing the pinned exe: %s", shown.dump().c_str());
}

// Item: a pinned caller exits while its connection lives on in another process. Every
// authorizing call looks again: the caller is refused whether or not it has been reaped yet (a
// zombie's /proc entry still reads; only the pidfd says it is gone).
Test(identity_attacks, a_pinned_caller_that_exits_is_refused_on_its_next_authorizing_call)
{
    require_root();
    for (const bool reaped : {false, true}) {
        UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
        cr_assert(fd.valid());
        Connector connector = fork_connector(fd.get(), {}, {});
        bus::BusPtr bus = open_bus_on(std::move(fd));
        const auto check = [&] {
            return call(bus.get(), bus::method::kCheck, [](sd_bus_message* m) { append_capability(m, "audit:read"); });
        };
        const CallResult alive = check();
        cr_assert(alive.ok(), "reaped=%d: %s", reaped, alive.message.c_str());

        connector.go.reset();  // the connector exits
        if (reaped) {
            cr_assert_eq(::waitpid(connector.pid, nullptr, 0), connector.pid);
        } else {
            siginfo_t info{};  // WNOWAIT: it has exited, and stays a zombie
            cr_assert_eq(::waitid(P_PID, static_cast<id_t>(connector.pid), &info, WEXITED | WNOWAIT), 0);
        }
        const CallResult gone = check();
        const CallResult again = check();
        if (!reaped) {
            ::waitpid(connector.pid, nullptr, 0);
        }
        cr_expect(gone.error == denied_name(), "reaped=%d: answered after the caller exited", reaped);
        cr_expect(gone.message.find("has exited") != std::string::npos, "reaped=%d: %s", reaped, gone.message.c_str());
        cr_expect(again.error == denied_name(), "reaped=%d: answered on the second call", reaped);
    }
}

// Item: a pinned caller is moved out of the unit a grant names. Its next authorizing call is
// judged by the cgroup it is in now, not the one it was pinned in; and the other way round.
Test(identity_attacks, a_caller_moved_to_another_cgroup_after_its_pin_is_judged_by_the_new_one)
{
    require_root();
    const std::string mount = cgroup2_mount();
    if (mount.empty()) {
        cr_skip_test("no cgroup2 hierarchy is mounted");
    }
    const std::string unit = "cv-granted-" + std::to_string(::getpid()) + ".service";
    const std::string granted_path = "/system.slice/" + unit;
    const std::string other_path = "/system.slice/cv-other-" + std::to_string(::getpid()) + ".service";
    CgroupDirs dirs(mount);
    if (const int error = dirs.make(granted_path); error != 0) {
        cr_skip_test("cgroup2 at %s is not writable: %s", mount.c_str(), std::strerror(error));
    }
    cr_assert_eq(dirs.make(other_path), 0);
    write_policy_and_restart(R"(version = 1
[principals.granted]
unit = ")" + unit + R"("
[grants.granted-audit]
principal = "granted"
capability = "audit:read"
)");
    const auto move_to = [&](pid_t pid, const std::string& relative) {
        std::ofstream procs(dirs.path(relative) + "/cgroup.procs");
        procs << pid << std::flush;
        cr_assert(static_cast<bool>(procs), "could not move pid %d to %s", pid, relative.c_str());
    };

    UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    cr_assert(fd.valid());
    Connector connector = fork_connector(fd.get(), {}, {});
    move_to(connector.pid, granted_path);
    bus::BusPtr bus = open_bus_on(std::move(fd));
    const CallResult in_unit = use_audit_read(bus.get());
    move_to(connector.pid, other_path);
    const CallResult moved_out = use_audit_read(bus.get());
    move_to(connector.pid, granted_path);
    const CallResult moved_back = use_audit_read(bus.get());
    end_connector(connector);
    dirs.clean_up();

    cr_expect(in_unit.ok(), "control: a caller in %s is granted: %s", unit.c_str(), in_unit.message.c_str());
    cr_expect(moved_out.error == denied_name(), "moved out of %s and still granted", unit.c_str());
    cr_expect(moved_back.ok(), "moved back into %s: %s", unit.c_str(), moved_back.message.c_str());
}

TestSuite(identity_limits, .fini = stop_env, .timeout = 120);

namespace {

void check_status_read(cli::VaultClient& client)
{
    (void)client.call(bus::method::kCheck, [](sd_bus_message* m) { append_capability(m, "status:read"); });
}

}  // namespace

// Item: descriptor exhaustion. Each pinned caller holds four descriptors; the daemon bounds the
// pinned callers well below RLIMIT_NOFILE, refuses new callers clearly when the bound is reached,
// keeps answering Status, and serves again once connections close. The daemon is started with a
// low soft limit (192: 16 callers) so the test needs few connections.
Test(identity_limits, a_full_caller_cache_refuses_new_callers_clearly_and_status_still_answers)
{
    env = std::make_unique<VaultEnv>(false);
    struct rlimit saved {};
    cr_assert_eq(::getrlimit(RLIMIT_NOFILE, &saved), 0);
    struct rlimit low = saved;
    low.rlim_cur = 192;
    cr_assert_eq(::setrlimit(RLIMIT_NOFILE, &low), 0);
    env->start_daemon();
    cr_assert_eq(::setrlimit(RLIMIT_NOFILE, &saved), 0);

    std::vector<std::unique_ptr<cli::VaultClient>> callers;
    std::optional<cli::CallError> refusal;
    for (int i = 0; i < 400 && !refusal; ++i) {
        auto client = std::make_unique<cli::VaultClient>(env->bus_address());
        try {
            check_status_read(*client);
        } catch (const cli::CallError& e) {
            refusal = e;
        }
        callers.push_back(std::move(client));
    }
    cr_assert(refusal.has_value(), "%zu callers were all served", callers.size());
    cr_expect(refusal->code() == ErrorCode::Unavailable, "refused with %s", refusal->what());
    cr_expect(std::string(refusal->what()).find("too many callers") != std::string::npos, "%s", refusal->what());
    cr_expect_gt(callers.size(), 1u);

    // Status (and WhoAmI) still answer a new caller; the callers already pinned are still served.
    const auto status = env->vaultctl({"status"});
    cr_expect_eq(status.exit_code, 0, "Status while full: %s%s", status.out.c_str(), status.err.c_str());
    const auto whoami = env->vaultctl({"whoami"});
    cr_expect_eq(whoami.exit_code, 0, "WhoAmI while full: %s%s", whoami.out.c_str(), whoami.err.c_str());
    cr_expect_eq(exit_code_of([&] { check_status_read(*callers.front()); }), 0);
    const auto another = env->vaultctl({"check", "status:read"});
    cr_expect_eq(another.exit_code, error_info(ErrorCode::Unavailable).exit_code, "%s%s", another.out.c_str(),
                 another.err.c_str());

    // Once the connections close (NameOwnerChanged), new callers are served again.
    callers.clear();
    int code = -1;
    for (int i = 0; i < 100 && code != 0; ++i) {
        cli::VaultClient client(env->bus_address());
        code = exit_code_of([&] { check_status_read(client); });
        if (code != 0) {
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
    }
    cr_expect_eq(code, 0, "callers are not served again after the connections closed");
    cr_expect(log_contains("too many callers"), "%s", env->daemon_log().c_str());
}
