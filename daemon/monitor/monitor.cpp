// The monitor at run time: map updates, the gate, draining, the exe cache. Nothing here needs a
// capability; loading is monitor_load.cpp.
#include "daemon/monitor/monitor.hpp"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include <cstring>
#include <vector>

#include "bpf/monitor_events.h"

namespace codexvault::monitor {

namespace {

std::error_code errno_code(int err)
{
    return {err, std::system_category()};
}

// stat(2)'s st_dev in the kernel's internal encoding (what i_sb->s_dev holds).
std::uint32_t kernel_dev(std::uint64_t dev)
{
    return static_cast<std::uint32_t>((major(dev) << 20U) | minor(dev));
}

}  // namespace

Monitor::Monitor(std::size_t exec_cache_entries) : cache_(exec_cache_entries)
{
}

Monitor::~Monitor() = default;

void Monitor::RingDeleter::operator()(ring_buffer* ring) const noexcept
{
    ring_buffer__free(ring);
}

// The kernel adds to the same counter (fork inherits, exit removes) with atomic instructions
// on the mmapped .bss, so every change here is atomic too.
void Monitor::add_gate(std::int64_t delta) noexcept
{
    __atomic_fetch_add(&globals_->gate_count, static_cast<std::uint64_t>(delta), __ATOMIC_SEQ_CST);
}

std::uint64_t Monitor::gate_count() const noexcept
{
    return __atomic_load_n(&globals_->gate_count, __ATOMIC_SEQ_CST);
}

void Monitor::set_gate(Gate gate) noexcept
{
    __atomic_store_n(&globals_->gate_mode, static_cast<std::uint32_t>(gate), __ATOMIC_SEQ_CST);
}

// Both hooks or neither. BPF_RAW_TRACEPOINT_OPEN on a program this object loaded needs no
// capability (measured on 6.18: uid 65534 with every capability set empty attaches tp_btf and
// raw_tp programs), so this works after the daemon's drop; its syscall filter allows exactly
// that bpf(2) command. When it returns, the tracepoints are registered and every task is on the
// traced syscall path: a descriptor handed out after it is seen from its first use.
std::error_code Monitor::attach_syscall_hooks() noexcept
{
    if (sys_links_[0].valid() || sys_prog_fds_[0] < 0) {
        return {};
    }
    UniqueFd links[2];
    for (std::size_t k = 0; k < 2; ++k) {
        // tp_btf programs name their tracepoint at load (the name must be NULL); raw_tp ones here.
        const int fd = bpf_raw_tracepoint_open(sys_raw_names_[k], sys_prog_fds_[k]);
        if (fd < 0) {
            return errno_code(-fd);
        }
        links[k].reset(fd);
    }
    sys_links_[0] = std::move(links[0]);
    sys_links_[1] = std::move(links[1]);
    ++sys_attaches_;
    return {};
}

// Closing a raw tracepoint link unregisters it at once (and with the last syscall tracepoint
// gone, the kernel puts every task back on the fast syscall path).
void Monitor::detach_syscall_hooks() noexcept
{
    sys_links_[0].reset();
    sys_links_[1].reset();
}

// Only user space adds entries to an empty monitor (fork copies an existing mark), and user space
// is this one thread: a count of 0 read here stays 0 until the next track_inode/mark_process.
void Monitor::settle_syscall_hooks() noexcept
{
    if (on_demand_ && sys_links_[0].valid() && gate_count() == 0) {
        detach_syscall_hooks();
    }
}

// The slots hold every device with a tracked inode, or the overflow flag says any device may
// hold one. Stores are single aligned words; the hooks read them without a lock.
void Monitor::publish_devices() noexcept
{
    const bool fits = device_refs_.size() <= MON_TRACKED_DEV_SLOTS;
    if (!fits) {
        __atomic_store_n(&globals_->tracked_devs_overflow, 1U, __ATOMIC_SEQ_CST);
    }
    for (std::size_t i = 0; i < MON_TRACKED_DEV_SLOTS; ++i) {
        const std::uint32_t value = i < device_refs_.size() ? device_refs_[i].first : 0;
        __atomic_store_n(&globals_->tracked_devs[i], value, __ATOMIC_SEQ_CST);
    }
    if (fits) {
        __atomic_store_n(&globals_->tracked_devs_overflow, 0U, __ATOMIC_SEQ_CST);
    }
}

bool Monitor::ref_device(std::uint32_t kdev) noexcept
{
    for (auto& [dev, count] : device_refs_) {
        if (dev == kdev) {
            ++count;
            return true;
        }
    }
    try {
        device_refs_.emplace_back(kdev, 1U);
    } catch (...) {
        return false;
    }
    // A new device only adds a slot (or sets the overflow flag): the ones in use stay put.
    if (device_refs_.size() <= MON_TRACKED_DEV_SLOTS) {
        __atomic_store_n(&globals_->tracked_devs[device_refs_.size() - 1], kdev, __ATOMIC_SEQ_CST);
    } else {
        __atomic_store_n(&globals_->tracked_devs_overflow, 1U, __ATOMIC_SEQ_CST);
    }
    return true;
}

void Monitor::unref_device(std::uint32_t kdev) noexcept
{
    for (auto it = device_refs_.begin(); it != device_refs_.end(); ++it) {
        if (it->first == kdev) {
            if (--it->second == 0) {
                device_refs_.erase(it);
                publish_devices();
            }
            return;
        }
    }
}

// The hooks are attached before the entry exists (a failure changes nothing), and the gate
// opens before the entry exists and closes after it is gone, so a hook that finds an entry
// never finds the gate closed.
std::error_code Monitor::track_inode(std::uint64_t dev, std::uint64_t ino, std::uint64_t id, OnTouch on_touch) noexcept
{
    if (id == 0) {
        return errno_code(EINVAL);
    }
    if (const auto ec = attach_syscall_hooks()) {
        return ec;
    }
    const mon_inode_key key{dev, ino};
    const mon_tracked value{id, static_cast<std::uint32_t>(on_touch), 0};
    if (!ref_device(kernel_dev(dev))) {
        settle_syscall_hooks();
        return errno_code(ENOMEM);
    }
    add_gate(1);
    if (bpf_map_update_elem(tracked_fd_, &key, &value, BPF_NOEXIST) == 0) {
        return {};
    }
    const int err = errno;
    add_gate(-1);
    unref_device(kernel_dev(dev));  // failed, or already tracked (and counted) before
    if (err != EEXIST) {
        settle_syscall_hooks();
        return errno_code(err);
    }
    return bpf_map_update_elem(tracked_fd_, &key, &value, BPF_EXIST) == 0 ? std::error_code{} : errno_code(errno);
}

std::error_code Monitor::untrack_inode(std::uint64_t dev, std::uint64_t ino) noexcept
{
    const mon_inode_key key{dev, ino};
    if (bpf_map_delete_elem(tracked_fd_, &key) != 0) {
        return errno_code(errno);
    }
    add_gate(-1);
    unref_device(kernel_dev(dev));
    settle_syscall_hooks();
    return {};
}

std::error_code Monitor::mark_process(pid_t tgid, std::uint64_t id, OnTouch on_touch) noexcept
{
    if (id == 0 || tgid <= 0) {
        return errno_code(EINVAL);
    }
    if (const auto ec = attach_syscall_hooks()) {
        return ec;
    }
    const auto key = static_cast<std::uint32_t>(tgid);
    const mon_mark value{id, static_cast<std::uint32_t>(on_touch), 0};
    // The kernel deletes a mark when its process exits, between any two of these steps.
    for (int attempt = 0; attempt < 3; ++attempt) {
        add_gate(1);
        if (bpf_map_update_elem(marks_fd_, &key, &value, BPF_NOEXIST) == 0) {
            return {};
        }
        const int err = errno;
        add_gate(-1);
        if (err != EEXIST) {
            settle_syscall_hooks();
            return errno_code(err);
        }
        if (bpf_map_update_elem(marks_fd_, &key, &value, BPF_EXIST) == 0) {
            return {};
        }
        if (errno != ENOENT) {
            const int update_err = errno;
            settle_syscall_hooks();
            return errno_code(update_err);
        }
    }
    settle_syscall_hooks();
    return errno_code(EAGAIN);
}

std::error_code Monitor::unmark(pid_t tgid) noexcept
{
    const auto key = static_cast<std::uint32_t>(tgid);
    if (bpf_map_delete_elem(marks_fd_, &key) != 0) {
        return errno_code(errno);
    }
    add_gate(-1);
    settle_syscall_hooks();
    return {};
}

std::optional<Monitor::Mark> Monitor::mark_of(pid_t tgid) const noexcept
{
    const auto key = static_cast<std::uint32_t>(tgid);
    mon_mark value{};
    if (bpf_map_lookup_elem(marks_fd_, &key, &value) != 0) {
        return std::nullopt;
    }
    return Mark{value.id, static_cast<OnTouch>(value.on_touch)};
}

int Monitor::ring_fd() const noexcept
{
    return ring_buffer__epoll_fd(ring_.get());
}

std::uint64_t Monitor::lost_events() const noexcept
{
    return __atomic_load_n(&globals_->lost_count, __ATOMIC_RELAXED);
}

void Monitor::consume_record(const void* data, std::size_t size, bool deliver) noexcept
{
    try {
        const auto event = decode_event({static_cast<const std::byte*>(data), size});
        if (!event) {
            ++undecodable_;
            return;
        }
        if (const auto* exec = std::get_if<ExecEvent>(&*event)) {
            cache_.record(*exec);
        }
        if (deliver && sink_fn_ != nullptr) {
            sink_fn_(sink_ctx_, *event);
        }
    } catch (...) {
        ++undecodable_;  // std::bad_alloc: the record is dropped, never thrown into libbpf
    }
}

int Monitor::on_record(void* ctx, void* data, std::size_t size) noexcept
{
    static_cast<Monitor*>(ctx)->consume_record(data, size, true);
    return 0;
}

std::size_t Monitor::drain_into(void* ctx, SinkFn fn) noexcept
{
    sink_ctx_ = ctx;
    sink_fn_ = fn;
    const int n = ring_buffer__consume(ring_.get());
    sink_ctx_ = nullptr;
    sink_fn_ = nullptr;
    // Read after the records: a loss counted now happened before this moment, so every exe
    // record older than it may have missed an exec (ExecCache::note_loss).
    const std::uint64_t lost = lost_events();
    if (lost != lost_seen_) {
        lost_seen_ = lost;
        struct timespec now {};
        ::clock_gettime(CLOCK_BOOTTIME, &now);
        cache_.note_loss(static_cast<std::uint64_t>(now.tv_sec) * 1'000'000'000ULL +
                         static_cast<std::uint64_t>(now.tv_nsec));
    }
    // A marked process's exit removes its mark in the kernel; the last one gone detaches.
    settle_syscall_hooks();
    return n > 0 ? static_cast<std::size_t>(n) : 0;
}

// The iterator's output is a stream of whole exec records (bpf_seq_write never splits one).
void Monitor::read_existing(int iter_link_fd) noexcept
{
    const int fd = bpf_iter_create(iter_link_fd);
    if (fd < 0) {
        return;
    }
    try {
        std::vector<std::byte> buf;
        std::size_t used = 0;
        for (;;) {
            if (buf.size() - used < 64 * 1024) {
                buf.resize(buf.size() + 256 * 1024);
            }
            const ssize_t n = ::read(fd, buf.data() + used, buf.size() - used);
            if (n < 0 && errno == EINTR) {
                continue;
            }
            if (n <= 0) {
                break;
            }
            used += static_cast<std::size_t>(n);
        }
        std::size_t off = 0;
        while (used - off >= sizeof(mon_event_header)) {
            mon_event_header hdr;
            std::memcpy(&hdr, buf.data() + off, sizeof(hdr));
            if (hdr.size < sizeof(hdr) || hdr.size > used - off) {
                break;
            }
            consume_record(buf.data() + off, hdr.size, false);
            ++status_.existing_processes;
            off += hdr.size;
        }
    } catch (...) {
        ++undecodable_;
    }
    ::close(fd);
}

std::optional<ExeRecord> Monitor::exe_of(pid_t tgid, std::uint64_t start_ticks)
{
    return cache_.exe_of(static_cast<std::uint32_t>(tgid), start_ticks);
}

std::optional<ExeRecord> Monitor::exe_at(pid_t tgid, std::uint64_t start_ticks, std::uint64_t at_ns)
{
    return cache_.exe_at(static_cast<std::uint32_t>(tgid), start_ticks, at_ns);
}

ExeHistory Monitor::exe_history(pid_t tgid, std::uint64_t start_ticks, std::uint64_t at_ns)
{
    return cache_.history(static_cast<std::uint32_t>(tgid), start_ticks, at_ns);
}

std::string Status::describe() const
{
    if (state == State::unavailable) {
        return "unavailable: " + reason;
    }
    std::string out = state == State::enforcing ? "enforcing (" : "recording (";
    for (std::size_t i = 0; i < programs.size(); ++i) {
        out += (i == 0 ? "" : ", ") + programs[i].hook + "=" + programs[i].type;
    }
    out += "; BPF LSM " + lsm + "; existing processes " + std::to_string(existing_processes);
    if (!connection_check.empty()) {
        out += "; connection check " + connection_check;
    }
    out += ")";
    return out;
}

}  // namespace codexvault::monitor
