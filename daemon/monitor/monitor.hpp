// The eBPF monitor's loader (bpf/README.md): loads and attaches the programs, owns their maps and
// ring buffer, and answers the daemon's questions. Single-threaded like the daemon's sd-event
// loop; nothing here throws across libbpf's C callbacks.
//
// Everything that needs a capability happens in open_and_load (map creation, program load and
// attach). After that the daemon may drop every capability: map updates, the ring buffer and the
// gate (mmapped .bss) keep working on the descriptors and mappings this object holds.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <type_traits>
#include <vector>

#include "daemon/monitor/events.hpp"
#include "daemon/monitor/exec_cache.hpp"
#include "lib/fileio/unique_fd.hpp"

struct monitor_bpf;
struct ring_buffer;

namespace codexvault::monitor {

// What a mark or a tracked inode asks for when another process touches it.
enum class OnTouch : std::uint32_t { record = 0, kill = 1 };

enum class Gate : std::uint32_t {
    automatic = 0,  // the syscall/fork/exit hooks run while anything is marked or tracked
    open = 1,       // they always run
    closed = 2,     // they never run (exec records still flow)
};

struct Options {
    std::uint32_t ring_bytes = 2U << 20;  // power of two, at least a page (see README: fork cost)
    std::uint32_t max_marks = 16'384;
    std::uint32_t max_tracked_inodes = 1'024;
    std::size_t exec_cache_entries = ExecCache::default_capacity;
    bool exempt_self = true;    // this process's own touches are neither alerts nor records
    bool walk_existing = true;  // iter/task at start: exec records for processes already running
    bool force_raw_tp = false;  // skip tp_btf (exercises the raw_tp fallback)
    // The sys_enter/sys_exit hooks (touches of tracked inodes, attempts on marked processes).
    // While attached, every syscall on the machine takes the tracepoint slow path, gate or no
    // gate (bpf/README.md, Cost); a loader with nothing to track or mark leaves them out, and
    // then track_inode and mark_process record nothing.
    bool syscall_hooks = true;
    // Attach those hooks only while something is tracked or marked: the first track_inode or
    // mark_process attaches them before it returns (and fails, changing nothing, if the kernel
    // refuses), and they are detached once nothing is left (untrack, unmark, or a marked
    // process's exit seen by drain). Attaching needs no capability, only bpf(2) with
    // BPF_RAW_TRACEPOINT_OPEN on the programs loaded here. false: attached at load for the
    // monitor's whole life (what the bench compares against).
    bool attach_on_demand = true;
    // The connect-time credential check (check_peer_credentials). Its iterator links are made at
    // load: BPF_LINK_CREATE needs what the daemon drops, BPF_ITER_CREATE on a link does not.
    bool connection_check = true;
    // The bus daemon's pid (as this process's pid namespace numbers it), 0 when unknown. Known,
    // the check walks that process's descriptors (iter/task_file: every bus connection, from any
    // network namespace, in proportion to the bus's connections); unknown, every unix socket of
    // this network namespace (iter/unix), which misses connections made from other namespaces.
    pid_t bus_pid = 0;
};

// Why the monitor cannot run.
enum class Unavailable {
    none,
    no_kernel_btf,
    not_permitted,  // no CAP_BPF + CAP_PERFMON, bpf(2) filtered, or a policy refused the load
    load_failed,    // the verifier or libbpf refused the programs
    attach_failed,
    ring_buffer_failed,
};

struct Status {
    enum class State {
        recording,    // records and can kill; cannot deny (no BPF LSM)
        enforcing,    // could deny: never here, BPF LSM is refused
        unavailable,  // see `why` and `reason`
    };
    struct Program {
        std::string hook;  // "sys_enter", "sched_process_exec", "task"
        std::string type;  // "tp_btf", "raw_tp", "iter"
    };

    State state = State::unavailable;
    Unavailable why = Unavailable::none;
    std::string reason;  // unavailable: what failed, with errno and libbpf's last words
    std::vector<Program> programs;
    std::string lsm;                     // "refused (Operation not permitted)" / "available (unused)"
    std::size_t existing_processes = 0;  // exec records from the walk at start
    // The connect-time credential check: "" when loaded (`task_file=iter` for the bus daemon's
    // descriptors, else `unix=iter`) or not asked for, else "refused (REASON)", or what it fell
    // back from.
    std::string connection_check;

    // "recording (sched_process_exec=tp_btf, ...; BPF LSM refused (...))" or "unavailable: REASON".
    [[nodiscard]] std::string describe() const;
};

class Monitor;

// What the kernel says about the credentials of the process behind a bus connection
// (Monitor::check_peer_credentials).
enum class PeerCredentials {
    same,         // each of its bus connections was made under the credentials it holds now
    changed,      // one was made under credentials it no longer has (exec, set*id, capset, ...)
    gone,         // one was made by a process that has been reaped: the pid is another's now
    not_found,    // it has no bus connection the walk can see (another network namespace)
    unavailable,  // the check could not run; `detail` says why
};
const char* to_string(PeerCredentials verdict) noexcept;

struct PeerCheck {
    PeerCredentials verdict = PeerCredentials::unavailable;
    std::size_t connections = 0;  // bus connections of that pid the walk saw
    std::string detail;           // unavailable: why
};

struct LoadResult {
    std::unique_ptr<Monitor> monitor;  // null unless status.state is recording
    Status status;
};

class Monitor {
public:
    struct Mark {
        std::uint64_t id = 0;
        OnTouch on_touch = OnTouch::record;
    };

    // Probes what this kernel allows (tp_btf per hook, else raw_tp; BPF LSM), creates every map,
    // loads, attaches, and walks the processes that already run. Never throws.
    static LoadResult open_and_load(const Options& options = {}) noexcept;

    Monitor(const Monitor&) = delete;
    Monitor& operator=(const Monitor&) = delete;
    ~Monitor();

    [[nodiscard]] const Status& status() const { return status_; }

    // A secret's inode (st_dev, st_ino of the memfd or file injected) and its injection id
    // (non-zero). Touches by a process marked with the same id are routine; by any other
    // process, alerts (and with OnTouch::kill, SIGKILL in that syscall).
    std::error_code track_inode(std::uint64_t dev, std::uint64_t ino, std::uint64_t id, OnTouch on_touch) noexcept;
    std::error_code untrack_inode(std::uint64_t dev, std::uint64_t ino) noexcept;

    // Marks a process (host tgid; the daemon keeps it pinned with a pidfd) with an injection id
    // (non-zero); its children inherit the mark, which ends when the process exits. Attempts by
    // other processes on it (ptrace, process_vm_*, pidfd_getfd, /proc/PID/{mem,environ,fd})
    // are alerts, and with OnTouch::kill the attempt's caller is killed. Also the test hook:
    // tests mark their children with it, no daemon needed.
    std::error_code mark_process(pid_t tgid, std::uint64_t id, OnTouch on_touch) noexcept;
    std::error_code unmark(pid_t tgid) noexcept;
    [[nodiscard]] std::optional<Mark> mark_of(pid_t tgid) const noexcept;

    // Whether the sys_enter/sys_exit hooks are attached now (always true without
    // Options::attach_on_demand, once loaded with Options::syscall_hooks).
    [[nodiscard]] bool syscall_hooks_attached() const noexcept { return sys_links_[0].valid(); }
    // How often they were attached since load (the probe at load counts as one).
    [[nodiscard]] std::uint64_t syscall_hook_attaches() const noexcept { return sys_attaches_; }
    // Detaches the hooks when nothing is tracked or marked any more (a marked process's exit
    // removes its mark in the kernel); drain() calls it, and so may the owner.
    void settle_syscall_hooks() noexcept;

    void set_gate(Gate gate) noexcept;
    // Live marks + tracked inodes, as the kernel sees them.
    [[nodiscard]] std::uint64_t gate_count() const noexcept;

    // Readable when records wait (alerts wake it at once; routine records do not, so drain on a
    // short timer as well). For sd_event_add_io.
    [[nodiscard]] int ring_fd() const noexcept;

    // Hands every waiting record to `sink` (a noexcept callable taking const Event&), after
    // feeding exec records to the exe cache. Returns how many records were read.
    template <class Sink>
    requires std::is_nothrow_invocable_v<Sink&, const Event&> std::size_t drain(Sink&& sink)
    noexcept
    {
        // The sink may be a const lambda; it is only ever called through its own type.
        void* self = const_cast<void*>(static_cast<const void*>(std::addressof(sink)));
        return drain_into(self, [](void* ctx, const Event& event) noexcept {
            (*static_cast<std::remove_reference_t<Sink>*>(ctx))(event);
        });
    }
    std::size_t drain() noexcept { return drain_into(nullptr, nullptr); }

    // Records the kernel could not reserve ring space for, since load (a load from the mmapped
    // .bss: no system call, so it works under the daemon's syscall filter).
    [[nodiscard]] std::uint64_t lost_events() const noexcept;
    // Connect-time credentials: finds the unix sockets accepted from the bus's listening socket
    // (stat(2)'s st_dev and st_ino of it) whose connecting process is `pid` (as this process's pid
    // namespace numbers it), and asks the kernel whether that process still holds the struct cred
    // it connected with. Every connection of the pid counts: one made before an exec cannot be
    // told from one made after, and a process cannot hide one it made. Costs one BPF_ITER_CREATE
    // and a read that walks the bus daemon's descriptors (Options::bus_pid), or every unix socket
    // in this network namespace.
    PeerCheck check_peer_credentials(pid_t pid, std::uint64_t listener_dev, std::uint64_t listener_ino) noexcept;
    [[nodiscard]] bool connection_check_loaded() const noexcept { return peer_link_fd_ >= 0 || bus_link_fd_ >= 0; }
    // Whether it walks the bus daemon's descriptors (every network namespace) rather than this
    // namespace's unix sockets.
    [[nodiscard]] bool connection_check_sees_every_namespace() const noexcept { return bus_link_fd_ >= 0; }

    // Records this side could not decode (or ran out of memory decoding).
    [[nodiscard]] std::uint64_t undecodable_events() const noexcept { return undecodable_; }

    // The exe of the process (host tgid, /proc/PID/stat start time in ticks) from the exec
    // records, now or at CLOCK_BOOTTIME `at_ns`.
    std::optional<ExeRecord> exe_of(pid_t tgid, std::uint64_t start_ticks);
    std::optional<ExeRecord> exe_at(pid_t tgid, std::uint64_t start_ticks, std::uint64_t at_ns);
    // Both, whether it exec'd since `at_ns`, and whether lost records leave it uncertain.
    ExeHistory exe_history(pid_t tgid, std::uint64_t start_ticks, std::uint64_t at_ns);
    [[nodiscard]] const ExecCache& exec_cache() const { return cache_; }

private:
    // Layout of the programs' .bss (checked against the skeleton in monitor_load.cpp).
    struct Globals {
        std::uint64_t gate_count;
        std::uint32_t gate_mode;
        std::uint32_t exempt_tgid;
        std::uint64_t lost_count;
        std::uint32_t tracked_devs[8];  // MON_TRACKED_DEV_SLOTS
        std::uint32_t tracked_devs_overflow;
        std::int32_t peer_pid;  // bpf/monitor_peer.bpf.h: the check's inputs
        std::uint32_t peer_sock_kdev;
        std::uint64_t peer_sock_ino;
    };
    struct SkeletonDeleter {
        void operator()(monitor_bpf* skel) const noexcept;
    };
    struct RingDeleter {
        void operator()(ring_buffer* ring) const noexcept;
    };
    using SinkFn = void (*)(void*, const Event&) noexcept;

    explicit Monitor(std::size_t exec_cache_entries);
    static int on_record(void* ctx, void* data, std::size_t size) noexcept;
    std::size_t drain_into(void* ctx, SinkFn fn) noexcept;
    void add_gate(std::int64_t delta) noexcept;
    void read_existing(int iter_link_fd) noexcept;
    void consume_record(const void* data, std::size_t size, bool deliver) noexcept;
    std::error_code attach_syscall_hooks() noexcept;
    // The device filter in .bss (bpf/monitor_maps.bpf.h): published before the first inode on a
    // device is inserted, withdrawn after the last one is deleted.
    bool ref_device(std::uint32_t kdev) noexcept;
    void unref_device(std::uint32_t kdev) noexcept;
    void publish_devices() noexcept;
    void detach_syscall_hooks() noexcept;

    // Declaration order is teardown order in reverse: the ring buffer goes before the maps.
    std::unique_ptr<monitor_bpf, SkeletonDeleter> skel_;
    std::unique_ptr<ring_buffer, RingDeleter> ring_;
    Globals* globals_ = nullptr;
    int marks_fd_ = -1;
    int tracked_fd_ = -1;
    int peer_link_fd_ = -1;  // the iter/unix link (owned by the skeleton); -1 when not loaded
    int bus_link_fd_ = -1;   // the iter/task_file link bound to the bus daemon; -1 when not made
    Status status_;
    ExecCache cache_;
    std::uint64_t undecodable_ = 0;
    std::uint64_t lost_seen_ = 0;  // lost_count when the exe cache last heard of a loss
    // sys_enter, sys_exit: the loaded programs (owned by the skeleton), whether each is the
    // raw_tp flavour (attached by tracepoint name), and the links while attached.
    int sys_prog_fds_[2] = {-1, -1};
    const char* sys_raw_names_[2] = {nullptr, nullptr};
    bool on_demand_ = false;
    std::uint64_t sys_attaches_ = 0;
    UniqueFd sys_links_[2];
    // Tracked inodes per device (kernel encoding); a few entries at most.
    std::vector<std::pair<std::uint32_t, std::uint32_t>> device_refs_;
    void* sink_ctx_ = nullptr;
    SinkFn sink_fn_ = nullptr;
};

}  // namespace codexvault::monitor
