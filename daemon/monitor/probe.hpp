// What the running kernel lets this process do, found by trying it with a two-instruction
// program rather than by reading the kernel version or config: fentry, BPF LSM and even tp_btf
// are refused on some kernels that have them compiled in.
#pragma once

#include <string>

namespace codexvault::monitor::probe {

// 0 when a tp_btf program can be loaded and attached to `tracepoint` ("sys_enter",
// "sched_process_exec"), else -errno.
int tp_btf(const char* tracepoint) noexcept;

// 0 when a BPF LSM program can be loaded and attached to `hook` ("file_open"), else -errno.
int lsm(const char* hook) noexcept;

// "" when /sys/kernel/btf/vmlinux is readable, else why not (CO-RE needs it).
std::string kernel_btf();

// "" when this process's effective capabilities allow loading tracing programs (CAP_BPF and
// CAP_PERFMON, or CAP_SYS_ADMIN), else what is missing. Read from /proc/self/status, so a
// process that would be refused learns it without calling bpf(2).
std::string capabilities();

// "" unless a seccomp filter on this process kills it for calling bpf(2) (a unit's
// SystemCallFilter=~@privileged does). Found by making the call in a forked child, and only
// when /proc/self/status says a filter is installed; a filter that returns an error instead is
// left to the load itself to report.
std::string bpf_filtered();

}  // namespace codexvault::monitor::probe
