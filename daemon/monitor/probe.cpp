#include "daemon/monitor/probe.hpp"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <linux/bpf.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <fstream>
#include <string_view>

namespace codexvault::monitor::probe {

namespace {

// r0 = 0; exit
constexpr bpf_insn return_zero[] = {
    {BPF_ALU64 | BPF_MOV | BPF_K, 0, 0, 0, 0},
    {BPF_JMP | BPF_EXIT, 0, 0, 0, 0},
};

// Loads the program against the vmlinux BTF function `name` and attaches it; -errno of the
// first step that fails.
int load_and_attach(bpf_prog_type type, bpf_attach_type attach, const char* name) noexcept
{
    const int btf_id = libbpf_find_vmlinux_btf_id(name, attach);
    if (btf_id < 0) {
        return btf_id;
    }
    bpf_prog_load_opts opts{};
    opts.sz = sizeof(opts);
    opts.expected_attach_type = attach;
    opts.attach_btf_id = static_cast<__u32>(btf_id);
    const int prog = bpf_prog_load(type, "cv_probe", "GPL", return_zero, 2, &opts);
    if (prog < 0) {
        return -errno;
    }
    const int link = bpf_raw_tracepoint_open(nullptr, prog);
    const int result = link < 0 ? -errno : 0;
    if (link >= 0) {
        ::close(link);
    }
    ::close(prog);
    return result;
}

}  // namespace

int tp_btf(const char* tracepoint) noexcept
{
    return load_and_attach(BPF_PROG_TYPE_TRACING, BPF_TRACE_RAW_TP, tracepoint);
}

int lsm(const char* hook) noexcept
{
    return load_and_attach(BPF_PROG_TYPE_LSM, BPF_LSM_MAC, hook);
}

namespace {

// The value of a "Name:\tvalue" line of /proc/self/status, "" when absent.
std::string status_field(std::string_view name)
{
    std::ifstream in("/proc/self/status");
    std::string line;
    while (std::getline(in, line)) {
        if (line.size() > name.size() && line.compare(0, name.size(), name) == 0 && line[name.size()] == ':') {
            const auto value = line.find_first_not_of(" \t", name.size() + 1);
            return value == std::string::npos ? std::string() : line.substr(value);
        }
    }
    return {};
}

}  // namespace

std::string capabilities()
{
    constexpr unsigned cap_sys_admin = 21;
    constexpr unsigned cap_perfmon = 38;
    constexpr unsigned cap_bpf = 39;
    const std::string field = status_field("CapEff");
    std::uint64_t effective = 0;
    try {
        effective = std::stoull(field, nullptr, 16);
    } catch (const std::exception&) {
        return "effective capabilities unreadable (/proc/self/status CapEff: '" + field + "')";
    }
    const auto has = [effective](unsigned cap) {
        return (effective >> cap) & 1U;
    };
    const bool admin = has(cap_sys_admin) != 0;
    std::string missing;
    if (!admin && has(cap_bpf) == 0) {
        missing = "CAP_BPF";
    }
    if (!admin && has(cap_perfmon) == 0) {
        missing += missing.empty() ? "CAP_PERFMON" : " and CAP_PERFMON";
    }
    if (missing.empty()) {
        return {};
    }
    return "no " + missing + " (effective capabilities " + field + ")";
}

std::string bpf_filtered()
{
    if (status_field("Seccomp") != "2") {
        return {};
    }
    const pid_t child = ::fork();
    if (child < 0) {
        return std::string("cannot probe bpf(2) under this process's seccomp filter: fork: ") + std::strerror(errno);
    }
    if (child == 0) {
        // An all-zero attribute is refused with EINVAL by the kernel: only the filter can do worse.
        bpf_attr attr{};
        (void)::syscall(SYS_bpf, BPF_PROG_LOAD, &attr, sizeof(attr));
        ::_exit(0);
    }
    int status = 0;
    while (::waitpid(child, &status, 0) < 0) {
        if (errno != EINTR) {
            return std::string("cannot probe bpf(2) under this process's seccomp filter: waitpid: ") +
                   std::strerror(errno);
        }
    }
    if (WIFSIGNALED(status)) {
        return "bpf(2) is refused by this process's seccomp filter (a probe child died of " +
               std::string(::strsignal(WTERMSIG(status))) + ")";
    }
    return {};
}

std::string kernel_btf()
{
    if (::access("/sys/kernel/btf/vmlinux", R_OK) != 0) {
        return std::string("no kernel BTF (/sys/kernel/btf/vmlinux: ") + std::strerror(errno) + ")";
    }
    return {};
}

}  // namespace codexvault::monitor::probe
