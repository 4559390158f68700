// The daemon's per-syscall monitor hooks (sys_enter/sys_exit, a cost on every syscall of the
// host) are attached only while a secret is injected: detached at start, attached by Inject
// before the descriptor is handed out (the recipient's first touch, vaultctl's mmap a moment
// after the reply, is recorded), detached again once the injection has ended. Checked in the
// kernel (the daemon's raw tracepoint links) as well as in Status.
#include <dirent.h>
#include <linux/bpf.h>
#include <nlohmann/json.hpp>
#include <sys/syscall.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include <chrono>
#include <cstring>
#include <fstream>
#include <functional>
#include <set>
#include <string>
#include <thread>

#include "common/vault_error.hpp"
#include "tests/support/harness.hpp"

using namespace codexvault;
using namespace codexvault::test;

namespace {

bool contains(const std::string& text, const std::string& needle)
{
    return text.find(needle) != std::string::npos;
}

std::string monitor_line()
{
    const auto status = env->vaultctl({"status", "--json"});
    cr_assert_eq(status.exit_code, 0, "status: %s", status.err.c_str());
    return nlohmann::json::parse(status.out).value("monitor", std::string());
}

void require_recording_monitor()
{
    if (::geteuid() != 0) {
        cr_skip_test("needs root: the daemon loads its eBPF monitor before dropping capabilities");
    }
    const std::string line = monitor_line();
    if (line.rfind("recording", 0) != 0) {
        cr_skip_test("the eBPF monitor is not recording here: %s", line.c_str());
    }
}

long sys_bpf(int cmd, bpf_attr& attr)
{
    return ::syscall(SYS_bpf, cmd, &attr, sizeof attr);
}

// Raw tracepoint links in the kernel whose program the daemon holds, by tracepoint name
// (the daemon's programs are found in /proc/PID/fdinfo, so other monitors on the host do not
// count).
std::multiset<std::string> daemon_tracepoint_links()
{
    std::set<std::uint32_t> programs;
    const std::string fdinfo = "/proc/" + std::to_string(env->daemon_pid()) + "/fdinfo";
    DIR* dir = ::opendir(fdinfo.c_str());
    cr_assert(dir != nullptr, "cannot list %s", fdinfo.c_str());
    while (const dirent* entry = ::readdir(dir)) {
        std::ifstream info(fdinfo + "/" + entry->d_name);
        for (std::string line; std::getline(info, line);) {
            if (line.rfind("prog_id:", 0) == 0) {
                programs.insert(static_cast<std::uint32_t>(std::stoul(line.substr(8))));
            }
        }
    }
    ::closedir(dir);
    cr_assert(!programs.empty(), "the daemon holds no BPF program");
    std::multiset<std::string> names;
    std::uint32_t id = 0;
    for (;;) {
        bpf_attr next{};
        next.start_id = id;
        if (sys_bpf(BPF_LINK_GET_NEXT_ID, next) != 0) {
            break;
        }
        id = next.next_id;
        bpf_attr by_id{};
        by_id.link_id = id;
        const int fd = static_cast<int>(sys_bpf(BPF_LINK_GET_FD_BY_ID, by_id));
        if (fd < 0) {
            continue;  // gone meanwhile
        }
        char name[64] = {};
        bpf_link_info info{};
        info.raw_tracepoint.tp_name = reinterpret_cast<std::uint64_t>(name);
        info.raw_tracepoint.tp_name_len = sizeof(name);
        bpf_attr get{};
        get.info.bpf_fd = static_cast<std::uint32_t>(fd);
        get.info.info_len = sizeof(info);
        get.info.info = reinterpret_cast<std::uint64_t>(&info);
        if (sys_bpf(BPF_OBJ_GET_INFO_BY_FD, get) == 0 && info.type == BPF_LINK_TYPE_RAW_TRACEPOINT &&
            programs.count(info.prog_id) != 0) {
            names.emplace(name);
        }
        ::close(fd);
    }
    return names;
}

bool syscall_hooks_in_kernel()
{
    const auto links = daemon_tracepoint_links();
    cr_expect(links.count("sched_process_exec") == 1, "the exec hook is always attached");
    cr_expect_eq(links.count("sys_enter"), links.count("sys_exit"), "sys_enter and sys_exit go together");
    return links.count("sys_enter") != 0;
}

bool eventually(const std::function<bool()>& condition)
{
    for (int i = 0; i < 150; ++i) {
        if (condition()) {
            return true;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return false;
}

void put_secret(const std::string& name)
{
    const auto r = env->vaultctl({"secret", "put", name, "--founder-key", env->founder_key(), "--passphrase-fd", "3"},
                                 {.stdin_data = random_canary(), .passphrase = kPassphrase, .as_uid = std::nullopt});
    cr_assert_eq(r.exit_code, 0, "secret put: %s", r.err.c_str());
}

void issue_inject_grant(const std::string& name)
{
    const auto r = env->vaultctl({"grant", "issue", "--principal", "uid=0", "--cap", "secret:" + name + ":inject",
                                  "--ttl", "1h", "--founder-key", env->founder_key(), "--passphrase-fd", "3"},
                                 {.stdin_data = "", .passphrase = kPassphrase, .as_uid = std::nullopt});
    cr_assert_eq(r.exit_code, 0, "grant issue: %s", r.err.c_str());
}

std::string audit_text()
{
    return env->vaultctl({"audit", "tail", "--dir", env->state_dir() + "/audit", "--json", "-n", "5000"}).out;
}

}  // namespace

TestSuite(daemon_monitor_hooks, .init = start_env_with_founder, .fini = stop_env, .timeout = 120);

Test(daemon_monitor_hooks, are_attached_only_while_a_secret_is_injected_and_its_first_touch_is_recorded)
{
    require_recording_monitor();
    cr_expect(contains(monitor_line(), "syscall hooks detached"), "%s", monitor_line().c_str());
    cr_expect(!syscall_hooks_in_kernel(), "hooks attached with nothing injected");

    put_secret("demo");
    issue_inject_grant("demo");
    const std::string pid_file = env->root() + "/command.pid";
    const std::string go_file = env->root() + "/go";
    CommandResult result;
    std::thread exec([&] {
        result = env->vaultctl({"exec", "--secret", "demo=TOKEN", "--", "sh", "-c",
                                "echo $$ > " + pid_file + "; while [ ! -e " + go_file + " ]; do sleep 0.1; done"});
    });
    const bool started = eventually([&] {
        std::ifstream in(pid_file);
        pid_t pid = 0;
        return static_cast<bool>(in >> pid) && pid > 0;
    });
    if (started) {
        cr_expect(contains(monitor_line(), "syscall hooks attached"), "%s", monitor_line().c_str());
        cr_expect(syscall_hooks_in_kernel(), "no hooks in the kernel while a secret is injected");
    }
    std::ofstream(go_file) << "1";
    exec.join();
    cr_assert(started, "the command never started: %s", result.err.c_str());
    cr_assert_eq(result.exit_code, 0, "exec: %s", result.err.c_str());
    const auto at = result.err.find("injection inj-");
    cr_assert_neq(at, std::string::npos, "no injection id in: %s", result.err.c_str());
    const std::string id = result.err.substr(at + 10, 20);

    // The first touches come a moment after Inject answers: vaultctl's recvmsg of the reply that
    // carries the descriptor (SCM_RIGHTS), then its mmap (folded as a repeat). The first is in
    // the log with the injection id.
    const bool touched = eventually([&] {
        const std::string log = audit_text();
        std::size_t from = 0;
        while ((from = log.find("inject.touch", from)) != std::string::npos) {
            const auto end = log.find('\n', from);
            const std::string line = log.substr(from, end == std::string::npos ? std::string::npos : end - from);
            if (contains(line, id) && (contains(line, "\"receive by") || contains(line, "\"mmap by"))) {
                return true;
            }
            from += 12;
        }
        return false;
    });
    if (!touched) {
        std::string relevant;
        const std::string log = audit_text();
        std::size_t from = 0;
        while ((from = log.find("inject.", from)) != std::string::npos) {
            const auto end = log.find('\n', from);
            {
                const auto r = log.find("\"reason\"", from);
                relevant += log.substr(from, 14) + (r < end ? log.substr(r, 200) : std::string("-")) + "\n";
            }
            from = end == std::string::npos ? log.size() : end;
        }
        cr_expect(touched, "no inject.touch (receive or mmap) record for %s; injection records:\n%s", id.c_str(),
                  relevant.c_str());
    }

    // The injection ends with its command; the last one gone detaches the hooks.
    cr_expect(eventually([] { return contains(monitor_line(), "syscall hooks detached"); }), "%s",
              monitor_line().c_str());
    cr_expect(!syscall_hooks_in_kernel(), "hooks left attached after the injection ended");
}

Test(daemon_monitor_hooks, are_not_loaded_when_injections_are_off)
{
    require_recording_monitor();
    std::ofstream(env->root() + "/codex-vaultd.toml", std::ios::app) << "inject = false\n";
    env->restart_daemon();
    const std::string line = monitor_line();
    cr_expect(!contains(line, "syscall hooks"), "%s", line.c_str());
    cr_expect(!syscall_hooks_in_kernel());
}
