#include "daemon/monitor/events.hpp"

#include <unistd.h>

#include <cstddef>
#include <cstring>
#include <vector>

#include "bpf/monitor_events.h"

namespace codexvault::monitor {

// The layout the BPF programs write (clang -target bpf) must be the one this compiler reads.
static_assert(sizeof(mon_event_header) == 24);
static_assert(offsetof(mon_event_header, time_ns) == 16);
static_assert(sizeof(mon_task) == 80);
static_assert(offsetof(mon_task, start_time_ns) == 32);
static_assert(offsetof(mon_task, exe_ino) == 56);
static_assert(offsetof(mon_task, comm) == 64);
static_assert(sizeof(mon_exec_event) == 112 + MON_PATH_MAX);
static_assert(offsetof(mon_exec_event, task) == 24);
static_assert(offsetof(mon_exec_event, path_len) == 104);
static_assert(offsetof(mon_exec_event, path) == 112);
static_assert(sizeof(mon_mark_event) == 120);
static_assert(offsetof(mon_mark_event, mark_id) == 104);
static_assert(offsetof(mon_mark_event, parent_tgid) == 116);
static_assert(sizeof(mon_access_event) == 160);
static_assert(offsetof(mon_access_event, id) == 104);
static_assert(offsetof(mon_access_event, access) == 136);
static_assert(offsetof(mon_access_event, fd) == 144);
static_assert(offsetof(mon_access_event, pad) == 156);
static_assert(sizeof(mon_mark) == 16 && sizeof(mon_tracked) == 16 && sizeof(mon_inode_key) == 16);
static_assert(MON_PATH_MAX % 2 == 0 && (MON_PATH_MAX & (MON_PATH_MAX - 1)) == 0, "masked in the kernel");

namespace {

template <class T>
T read_struct(std::span<const std::byte> record)
{
    T out;
    std::memcpy(&out, record.data(), sizeof(T));
    return out;
}

Task decode_task(const mon_task& t, std::uint32_t flags)
{
    Task task;
    task.pid = t.pid;
    task.tgid = t.tgid;
    task.ns_pid = t.ns_pid;
    task.ns_tgid = t.ns_tgid;
    task.pidns_inum = t.pidns_inum;
    task.ppid = t.ppid;
    task.uid = t.uid;
    task.euid = t.euid;
    task.start_time_ns = t.start_time_ns;
    task.start_boottime_ns = t.start_boottime_ns;
    task.exe_dev = t.exe_dev;
    task.exe_ino = t.exe_ino;
    task.has_exe = (flags & MON_F_NO_EXE) == 0;
    task.comm.assign(t.comm, ::strnlen(t.comm, sizeof(t.comm)));
    return task;
}

std::optional<Event> decode_exec(std::span<const std::byte> record, const mon_event_header& hdr)
{
    constexpr std::size_t head = offsetof(mon_exec_event, path);
    if (record.size() < head || hdr.size < head) {
        return std::nullopt;
    }
    // The record is sent cut after its path, so only the fixed part is copied as a struct.
    mon_exec_event fixed;
    std::memcpy(&fixed, record.data(), head);
    if (fixed.path_len > MON_PATH_MAX || head + fixed.path_len > record.size()) {
        return std::nullopt;
    }
    ExecEvent ev;
    ev.task = decode_task(fixed.task, hdr.flags);
    ev.existing = hdr.kind == MON_EV_EXISTING;
    ev.path_truncated = (hdr.flags & MON_F_PATH_TRUNCATED) != 0;
    ev.time_ns = ev.existing ? 0 : hdr.time_ns;
    if (ev.task.has_exe) {
        const auto* path = reinterpret_cast<const char*>(record.data() + head);
        ev.exe_path = assemble_path(std::string_view(path, fixed.path_len));
    }
    return ev;
}

std::optional<Event> decode_mark(std::span<const std::byte> record, const mon_event_header& hdr)
{
    if (record.size() < sizeof(mon_mark_event)) {
        return std::nullopt;
    }
    const auto raw = read_struct<mon_mark_event>(record);
    MarkEvent ev;
    switch (raw.change) {
    case MON_MARK_INHERITED:
        ev.change = MarkEvent::Change::inherited;
        break;
    case MON_MARK_REMOVED:
        ev.change = MarkEvent::Change::removed;
        break;
    case MON_MARK_OVERFLOW:
        ev.change = MarkEvent::Change::overflow;
        break;
    default:
        return std::nullopt;
    }
    ev.task = decode_task(raw.task, hdr.flags);
    ev.mark_id = raw.mark_id;
    ev.parent_tgid = raw.parent_tgid;
    ev.alert = (hdr.flags & MON_F_ALERT) != 0;
    ev.time_ns = hdr.time_ns;
    return ev;
}

std::optional<AccessEvent::Kind> access_kind(std::uint32_t raw)
{
    using K = AccessEvent::Kind;
    switch (raw) {
    case MON_ACC_READ:
        return K::read;
    case MON_ACC_MMAP:
        return K::mmap;
    case MON_ACC_SEND:
        return K::send;
    case MON_ACC_OPEN:
        return K::open;
    case MON_ACC_RECEIVE:
        return K::receive;
    case MON_ACC_PIDFD_GETFD:
        return K::pidfd_getfd;
    case MON_ACC_PTRACE:
        return K::ptrace;
    case MON_ACC_VM_READ:
        return K::vm_read;
    case MON_ACC_VM_WRITE:
        return K::vm_write;
    case MON_ACC_PROC_OPEN:
        return K::proc_open;
    default:
        return std::nullopt;
    }
}

std::optional<Event> decode_access(std::span<const std::byte> record, const mon_event_header& hdr)
{
    if (record.size() < sizeof(mon_access_event)) {
        return std::nullopt;
    }
    const auto raw = read_struct<mon_access_event>(record);
    const auto kind = access_kind(raw.access);
    if (!kind) {
        return std::nullopt;
    }
    AccessEvent ev;
    ev.kind = *kind;
    ev.actor = decode_task(raw.actor, hdr.flags);
    ev.alert = (hdr.flags & MON_F_ALERT) != 0;
    ev.killed = (hdr.flags & MON_F_KILLED) != 0;
    ev.compat = (hdr.flags & MON_F_COMPAT) != 0;
    ev.id = raw.id;
    ev.actor_mark = raw.actor_mark;
    ev.dev = raw.dev;
    ev.ino = raw.ino;
    ev.target_tgid = raw.target_tgid;
    ev.syscall_nr = raw.syscall_nr;
    ev.fd = raw.fd;
    ev.detail = raw.detail;
    ev.time_ns = hdr.time_ns;
    return ev;
}

}  // namespace

std::uint64_t Task::start_ticks() const
{
    return boottime_ns_to_ticks(start_boottime_ns);
}

std::uint64_t boottime_ns_to_ticks(std::uint64_t ns)
{
    // The kernel's nsec_to_clock_t: USER_HZ is 100 on every Linux architecture that matters,
    // but ask rather than assume.
    static const std::uint64_t ns_per_tick = [] {
        const long hz = ::sysconf(_SC_CLK_TCK);
        return hz > 0 ? 1'000'000'000ULL / static_cast<std::uint64_t>(hz) : 10'000'000ULL;
    }();
    return ns / ns_per_tick;
}

std::string assemble_path(std::string_view leaf_first)
{
    std::vector<std::string_view> names;
    while (!leaf_first.empty()) {
        const auto end = leaf_first.find('\0');
        names.push_back(leaf_first.substr(0, end));
        if (end == std::string_view::npos) {
            break;
        }
        leaf_first.remove_prefix(end + 1);
    }
    std::string path;
    for (auto it = names.rbegin(); it != names.rend(); ++it) {
        path += '/';
        path += *it;
    }
    return path.empty() ? std::string("/") : path;
}

std::optional<Event> decode_event(std::span<const std::byte> record)
{
    if (record.size() < sizeof(mon_event_header)) {
        return std::nullopt;
    }
    const auto hdr = read_struct<mon_event_header>(record);
    if (hdr.size > record.size()) {
        return std::nullopt;
    }
    record = record.first(hdr.size);
    switch (hdr.kind) {
    case MON_EV_EXEC:
    case MON_EV_EXISTING:
        return decode_exec(record, hdr);
    case MON_EV_MARK:
        return decode_mark(record, hdr);
    case MON_EV_ACCESS:
        return decode_access(record, hdr);
    default:
        return std::nullopt;
    }
}

std::string_view to_string(AccessEvent::Kind kind)
{
    using K = AccessEvent::Kind;
    switch (kind) {
    case K::read:
        return "read";
    case K::mmap:
        return "mmap";
    case K::send:
        return "send";
    case K::open:
        return "open";
    case K::receive:
        return "receive";
    case K::pidfd_getfd:
        return "pidfd_getfd";
    case K::ptrace:
        return "ptrace";
    case K::vm_read:
        return "process_vm_readv";
    case K::vm_write:
        return "process_vm_writev";
    case K::proc_open:
        return "proc_open";
    }
    return "unknown";
}

std::string_view to_string(MarkEvent::Change change)
{
    switch (change) {
    case MarkEvent::Change::inherited:
        return "inherited";
    case MarkEvent::Change::removed:
        return "removed";
    case MarkEvent::Change::overflow:
        return "overflow";
    }
    return "unknown";
}

}  // namespace codexvault::monitor
