// Monitor::open_and_load: the only part that needs CAP_BPF + CAP_PERFMON, and the only file that
// includes the generated skeleton (it embeds the BPF object, so one copy per program).
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <unistd.h>

#include <cstdarg>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <new>
#include <string>
#include <string_view>
#include <vector>

#include "daemon/monitor/monitor.hpp"
#include "daemon/monitor/probe.hpp"

// Generated C; its style is not ours to warn about.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wconversion"
#pragma GCC diagnostic ignored "-Wpedantic"
#pragma GCC diagnostic ignored "-Wshadow"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#include "monitor.skel.h"
#pragma GCC diagnostic pop

namespace codexvault::monitor {

namespace {

// libbpf reports through one process-wide printer. While loading, its warnings (the verifier's
// log among them) are kept, the last 4 KiB, to explain a failure; the previous printer comes back
// afterwards, and debug chatter is never kept.
std::string* capture_target = nullptr;

int capture_print(enum libbpf_print_level level, const char* format, va_list args)
{
    if (level == LIBBPF_DEBUG || capture_target == nullptr) {
        return 0;
    }
    char line[512];
    const int n = std::vsnprintf(line, sizeof(line), format, args);
    if (n > 0) {
        try {
            capture_target->append(line);
            if (capture_target->size() > 4096) {
                capture_target->erase(0, capture_target->size() - 4096);
            }
        } catch (...) {
        }
    }
    return 0;
}

class LibbpfLog {
public:
    LibbpfLog() : previous_(libbpf_set_print(capture_print)) { capture_target = &text_; }
    LibbpfLog(const LibbpfLog&) = delete;
    LibbpfLog& operator=(const LibbpfLog&) = delete;
    ~LibbpfLog()
    {
        capture_target = nullptr;
        libbpf_set_print(previous_);
    }
    // The last non-empty lines, joined by " | ".
    [[nodiscard]] std::string tail(int lines) const
    {
        std::vector<std::string_view> last;  // newest first
        const std::string_view text(text_);
        std::size_t end = text.size();
        while (static_cast<int>(last.size()) < lines && end > 0) {
            const std::size_t start = text.rfind('\n', end - 1);
            const std::size_t from = start == std::string_view::npos ? 0 : start + 1;
            if (end > from) {
                last.push_back(text.substr(from, end - from));
            }
            end = from == 0 ? 0 : from - 1;
        }
        std::string out;
        for (auto it = last.rbegin(); it != last.rend(); ++it) {
            out.append(out.empty() ? "" : " | ").append(*it);
        }
        return out;
    }

private:
    libbpf_print_fn_t previous_;
    std::string text_;
};

struct Hook {
    const char* tracepoint;
    bpf_program* btf;
    bpf_program* raw;
    bpf_link** btf_link;
    bpf_link** raw_link;
    bool wanted = true;
    bool use_raw = false;
};

// hooks[] below: the per-syscall hooks come last.
constexpr std::size_t kFirstSyscallHook = 3;

std::string errno_text(int err)
{
    return std::string(std::strerror(err < 0 ? -err : err));
}

}  // namespace

void Monitor::SkeletonDeleter::operator()(monitor_bpf* skel) const noexcept
{
    monitor_bpf__destroy(skel);
}

LoadResult Monitor::open_and_load(const Options& options) noexcept
{
    static_assert(sizeof(Globals) == sizeof(monitor_bpf::monitor_bpf__bss));
    static_assert(offsetof(Globals, gate_count) == offsetof(monitor_bpf::monitor_bpf__bss, gate_count));
    static_assert(offsetof(Globals, gate_mode) == offsetof(monitor_bpf::monitor_bpf__bss, gate_mode));
    static_assert(offsetof(Globals, exempt_tgid) == offsetof(monitor_bpf::monitor_bpf__bss, exempt_tgid));
    static_assert(offsetof(Globals, lost_count) == offsetof(monitor_bpf::monitor_bpf__bss, lost_count));
    static_assert(offsetof(Globals, tracked_devs) == offsetof(monitor_bpf::monitor_bpf__bss, tracked_devs));
    static_assert(sizeof(Globals::tracked_devs) == sizeof(monitor_bpf::monitor_bpf__bss::tracked_devs));
    static_assert(offsetof(Globals, tracked_devs_overflow) ==
                  offsetof(monitor_bpf::monitor_bpf__bss, tracked_devs_overflow));
    static_assert(offsetof(Globals, peer_pid) == offsetof(monitor_bpf::monitor_bpf__bss, peer_pid));
    static_assert(offsetof(Globals, peer_sock_kdev) == offsetof(monitor_bpf::monitor_bpf__bss, peer_sock_kdev));
    static_assert(offsetof(Globals, peer_sock_ino) == offsetof(monitor_bpf::monitor_bpf__bss, peer_sock_ino));

    LoadResult result;
    Status& status = result.status;
    const auto fail = [&](Unavailable why, const std::string& reason) {
        status.state = Status::State::unavailable;
        status.why = why;
        status.reason = reason;
        result.monitor.reset();
        return std::move(result);
    };
    try {
        if (auto no_btf = probe::kernel_btf(); !no_btf.empty()) {
            return fail(Unavailable::no_kernel_btf, no_btf);
        }
        // Asked before any bpf(2) call: the answer is certain without one, and a filtered bpf(2)
        // would kill this process rather than fail.
        if (auto no_caps = probe::capabilities(); !no_caps.empty()) {
            return fail(Unavailable::not_permitted, no_caps);
        }
        if (auto filtered = probe::bpf_filtered(); !filtered.empty()) {
            return fail(Unavailable::not_permitted, filtered);
        }
        LibbpfLog log;
        std::unique_ptr<Monitor> mon(new Monitor(options.exec_cache_entries));
        mon->skel_.reset(monitor_bpf::open());
        monitor_bpf* skel = mon->skel_.get();
        if (skel == nullptr) {
            return fail(Unavailable::load_failed, "open: " + errno_text(errno) + " " + log.tail(2));
        }
        bpf_map__set_max_entries(skel->maps.events, options.ring_bytes);
        bpf_map__set_max_entries(skel->maps.marks, options.max_marks);
        bpf_map__set_max_entries(skel->maps.tracked_inodes, options.max_tracked_inodes);

        // tp_btf where the kernel allows it, hook by hook; the same body as raw_tp elsewhere.
        Hook hooks[] = {
            {"sched_process_exec", skel->progs.on_exec, skel->progs.raw_exec, &skel->links.on_exec,
             &skel->links.raw_exec},
            {"sched_process_fork", skel->progs.on_fork, skel->progs.raw_fork, &skel->links.on_fork,
             &skel->links.raw_fork},
            {"sched_process_exit", skel->progs.on_exit, skel->progs.raw_exit, &skel->links.on_exit,
             &skel->links.raw_exit},
            {"sys_enter", skel->progs.on_sys_enter, skel->progs.raw_sys_enter, &skel->links.on_sys_enter,
             &skel->links.raw_sys_enter},
            {"sys_exit", skel->progs.on_sys_exit, skel->progs.raw_sys_exit, &skel->links.on_sys_exit,
             &skel->links.raw_sys_exit},
        };
        for (auto& hook : hooks) {
            hook.wanted = options.syscall_hooks || std::string_view(hook.tracepoint).substr(0, 4) != "sys_";
            hook.use_raw = hook.wanted && (options.force_raw_tp || probe::tp_btf(hook.tracepoint) != 0);
            bpf_program__set_autoload(hook.btf, hook.wanted && !hook.use_raw);
            bpf_program__set_autoload(hook.raw, hook.wanted && hook.use_raw);
        }
        bpf_program__set_autoload(skel->progs.existing_tasks, options.walk_existing);
        bpf_program__set_autoload(skel->progs.peer_credentials, options.connection_check);
        bpf_program__set_autoload(skel->progs.bus_peer_credentials, options.connection_check && options.bus_pid > 0);

        if (const int err = monitor_bpf::load(skel); err != 0) {
            return fail(err == -EPERM || err == -EACCES ? Unavailable::not_permitted : Unavailable::load_failed,
                        "load: " + errno_text(err) + " (" + log.tail(3) + ")");
        }
        mon->globals_ = reinterpret_cast<Globals*>(skel->bss);
        mon->marks_fd_ = bpf_map__fd(skel->maps.marks);
        mon->tracked_fd_ = bpf_map__fd(skel->maps.tracked_inodes);
        if (options.exempt_self) {
            mon->globals_->exempt_tgid = static_cast<std::uint32_t>(::getpid());
        }
        mon->ring_.reset(ring_buffer__new(bpf_map__fd(skel->maps.events), on_record, mon.get(), nullptr));
        if (!mon->ring_) {
            return fail(Unavailable::ring_buffer_failed, "ring buffer: " + errno_text(errno));
        }

        mon->on_demand_ = options.attach_on_demand;
        for (std::size_t i = 0; i < std::size(hooks); ++i) {
            Hook& hook = hooks[i];
            if (!hook.wanted) {
                continue;
            }
            bpf_program* prog = hook.use_raw ? hook.raw : hook.btf;
            if (i >= kFirstSyscallHook) {
                // Attached by Monitor::attach_syscall_hooks, here and whenever something is
                // tracked or marked again; the skeleton holds only the programs.
                const std::size_t k = i - kFirstSyscallHook;
                mon->sys_prog_fds_[k] = bpf_program__fd(prog);
                mon->sys_raw_names_[k] = hook.use_raw ? hook.tracepoint : nullptr;
                mon->status_.programs.push_back({hook.tracepoint, hook.use_raw ? "raw_tp" : "tp_btf"});
                continue;
            }
            bpf_link** slot = hook.use_raw ? hook.raw_link : hook.btf_link;
            *slot = bpf_program__attach(prog);
            if (*slot == nullptr) {
                const int err = errno;
                return fail(err == EPERM ? Unavailable::not_permitted : Unavailable::attach_failed,
                            std::string("attach ") + hook.tracepoint + ": " + errno_text(err));
            }
            mon->status_.programs.push_back({hook.tracepoint, hook.use_raw ? "raw_tp" : "tp_btf"});
            // Exec records flow before the walk starts, so a process that execs meanwhile is
            // seen by one or the other (or both; the cache orders them by time).
            if (i == 0 && options.walk_existing) {
                skel->links.existing_tasks = bpf_program__attach_iter(skel->progs.existing_tasks, nullptr);
                if (skel->links.existing_tasks != nullptr) {
                    mon->read_existing(bpf_link__fd(skel->links.existing_tasks));
                    mon->status_.programs.push_back({"task", "iter"});
                }
            }
        }

        if (options.connection_check) {
            // The link now, while BPF_LINK_CREATE is allowed; each check makes an iterator from it.
            // A kernel that refuses it leaves the check unavailable, and what needs it fails closed.
            if (options.bus_pid > 0) {
                bpf_iter_link_info info{};
                info.task.pid = static_cast<std::uint32_t>(options.bus_pid);
                DECLARE_LIBBPF_OPTS(bpf_iter_attach_opts, iter_options);
                iter_options.link_info = &info;
                iter_options.link_info_len = sizeof(info);
                skel->links.bus_peer_credentials =
                    bpf_program__attach_iter(skel->progs.bus_peer_credentials, &iter_options);
                if (skel->links.bus_peer_credentials != nullptr) {
                    mon->bus_link_fd_ = bpf_link__fd(skel->links.bus_peer_credentials);
                    mon->status_.programs.push_back({"task_file", "iter"});
                } else {
                    mon->status_.connection_check = "on the bus daemon's descriptors refused (" + errno_text(errno) +
                                                    "), this network namespace's unix sockets instead";
                }
            }
            if (mon->bus_link_fd_ < 0) {
                skel->links.peer_credentials = bpf_program__attach_iter(skel->progs.peer_credentials, nullptr);
                if (skel->links.peer_credentials != nullptr) {
                    mon->peer_link_fd_ = bpf_link__fd(skel->links.peer_credentials);
                    mon->status_.programs.push_back({"unix", "iter"});
                } else {
                    mon->status_.connection_check = "refused (" + errno_text(errno) + ")";
                }
            }
        }

        if (options.syscall_hooks) {
            // Attached once now, so that a kernel refusing them says so at load rather than at
            // the first injection; with attach_on_demand, detached again at once.
            if (const auto ec = mon->attach_syscall_hooks()) {
                return fail(ec.value() == EPERM ? Unavailable::not_permitted : Unavailable::attach_failed,
                            "attach sys_enter/sys_exit: " + ec.message());
            }
            mon->settle_syscall_hooks();
        }

        const int lsm = probe::lsm("file_open");
        mon->status_.lsm = lsm == 0 ? "available (unused)" : "refused (" + errno_text(lsm) + ")";
        mon->status_.state = Status::State::recording;
        result.status = mon->status_;
        result.monitor = std::move(mon);
        return result;
    } catch (const std::bad_alloc&) {
        return fail(Unavailable::load_failed, "out of memory");
    }
}

}  // namespace codexvault::monitor
