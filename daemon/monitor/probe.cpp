#include "daemon/monitor/probe.hpp"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <linux/bpf.h>
#include <unistd.h>

#include <cstring>

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

std::string kernel_btf()
{
    if (::access("/sys/kernel/btf/vmlinux", R_OK) != 0) {
        return std::string("no kernel BTF (/sys/kernel/btf/vmlinux: ") + std::strerror(errno) + ")";
    }
    return {};
}

}  // namespace codexvault::monitor::probe
