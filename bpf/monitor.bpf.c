/* The Codex Vault eBPF monitor: exec records, marks that follow fork, and the syscalls that
 * touch a tracked inode or approach a marked process. What each hook does and why is in
 * bpf/README.md; the records are bpf/monitor_events.h.
 *
 * Every hook exists twice: tp_btf (typed arguments) and, not loaded by default ("?raw_tp"), the
 * same body as a raw tracepoint, which the loader turns on for a hook whose tp_btf program the
 * kernel refuses. The bodies read kernel memory through BPF_CORE_READ only, so the raw_tp copies
 * (untyped u64 arguments) pass the verifier too; `btf` only says whether kfuncs may be called. */
#include "vmlinux.h"

#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "bpf/monitor_events.h"

/* Tracing programs that read kernel memory (bpf_probe_read_kernel) must be GPL-compatible. */
char LICENSE[] SEC("license") = "GPL";

#include "bpf/monitor_maps.bpf.h"
#include "bpf/monitor_task.bpf.h"
#include "bpf/monitor_syscalls.bpf.h"
#include "bpf/monitor_access.bpf.h"
#include "bpf/monitor_peer.bpf.h"

#define MON_PF_KTHREAD 0x00200000

/* ---- exec records ---------------------------------------------------------------------- */

static __always_inline int exec_body(struct task_struct* task)
{
    __u32 zero = 0;
    struct exec_scratch* s = bpf_map_lookup_elem(&exec_scratch, &zero);
    if (!s)
        return 0;
    __u32 size = build_exec(s, task, MON_EV_EXEC);
    if (size > sizeof(s->ev))
        return 0;
    if (bpf_ringbuf_output(&events, &s->ev, size, BPF_RB_NO_WAKEUP))
        count_lost();
    return 0;
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(on_exec, struct task_struct* task, pid_t old_pid, struct linux_binprm* bprm)
{
    return exec_body(task);
}

SEC("?raw_tp/sched_process_exec")
int BPF_PROG(raw_exec, struct task_struct* task, pid_t old_pid, struct linux_binprm* bprm)
{
    return exec_body(task);
}

/* Walked once at start (the loader reads the iterator's fd): the processes that already run, as
 * exec records without an exec time. Written to the iterator's seq file, not the ring, so that
 * thousands of processes never overflow it. */
SEC("iter/task")
int existing_tasks(struct bpf_iter__task* ctx)
{
    struct task_struct* task = ctx->task;
    if (!task || task->pid != task->tgid || (task->flags & MON_PF_KTHREAD))
        return 0;
    __u32 zero = 0;
    struct exec_scratch* s = bpf_map_lookup_elem(&exec_scratch, &zero);
    if (!s)
        return 0;
    __u32 size = build_exec(s, task, MON_EV_EXISTING);
    if (size > sizeof(s->ev))
        return 0;
    bpf_seq_write(ctx->meta->seq, &s->ev, size);
    return 0;
}

/* ---- marks follow fork, end at exit ----------------------------------------------------- */

static __always_inline void emit_mark(struct task_struct* task, __u64 id, __u32 change, __u32 parent_tgid)
{
    struct mon_mark_event* e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
    if (!e) {
        count_lost();
        return;
    }
    __u32 flags = fill_task(&e->task, task);
    if (change == MON_MARK_OVERFLOW)
        flags |= MON_F_ALERT;
    fill_header(&e->hdr, MON_EV_MARK, sizeof(*e), flags);
    e->mark_id = id;
    e->change = change;
    e->parent_tgid = parent_tgid;
    bpf_ringbuf_submit(e, (flags & MON_F_ALERT) ? BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP);
}

static __always_inline int fork_body(struct task_struct* parent, struct task_struct* child)
{
    if (gate_closed())
        return 0;
    __u32 parent_tgid = BPF_CORE_READ(parent, tgid);
    __u32 child_tgid = BPF_CORE_READ(child, tgid);
    if (parent_tgid == child_tgid)
        return 0; /* a new thread: the process's mark already covers it */
    struct mon_mark* mark = bpf_map_lookup_elem(&marks, &parent_tgid);
    if (!mark)
        return 0;
    /* The child is not running yet (the tracepoint fires before wake_up_new_task), so it is
     * marked before its first instruction. */
    struct mon_mark copy = *mark;
    long err = bpf_map_update_elem(&marks, &child_tgid, &copy, BPF_NOEXIST);
    if (err == 0)
        __sync_fetch_and_add(&gate_count, 1);
    emit_mark(child, copy.id, err == 0 || err == -17 /* EEXIST */ ? MON_MARK_INHERITED : MON_MARK_OVERFLOW,
              parent_tgid);
    return 0;
}

SEC("tp_btf/sched_process_fork")
int BPF_PROG(on_fork, struct task_struct* parent, struct task_struct* child)
{
    return fork_body(parent, child);
}

SEC("?raw_tp/sched_process_fork")
int BPF_PROG(raw_fork, struct task_struct* parent, struct task_struct* child)
{
    return fork_body(parent, child);
}

/* Fires for every exiting thread; the mark goes with the last one (signal->live reached 0: the
 * tracepoint follows the decrement in do_exit). Two last threads racing both see 0, and only
 * one delete succeeds, so the count and the record stay exact. */
static __always_inline int exit_body(struct task_struct* task)
{
    if (gate_closed())
        return 0;
    if (BPF_CORE_READ(task, signal, live.counter) != 0)
        return 0;
    __u32 tgid = BPF_CORE_READ(task, tgid);
    struct mon_mark* mark = bpf_map_lookup_elem(&marks, &tgid);
    if (!mark)
        return 0;
    __u64 id = mark->id;
    if (bpf_map_delete_elem(&marks, &tgid) != 0)
        return 0;
    __sync_fetch_and_add(&gate_count, (__u64)-1);
    emit_mark(task, id, MON_MARK_REMOVED, 0);
    return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(on_exit, struct task_struct* task)
{
    return exit_body(task);
}

SEC("?raw_tp/sched_process_exit")
int BPF_PROG(raw_exit, struct task_struct* task)
{
    return exit_body(task);
}

/* ---- syscalls --------------------------------------------------------------------------- */

static __always_inline __u32 target_of_vpid(struct task_struct* task, __u64 vpid, bool btf)
{
    if (btf)
        return tgid_of_vpid(task, (__s32)vpid);
    /* raw_tp programs may not call kfuncs: only the initial pid namespace resolves. */
    return BPF_CORE_READ(task, thread_pid, level) == 0 ? (__u32)vpid : 0;
}

/* At entry, so that a kill lands before the syscall body copies anything out. */
static __always_inline int sys_enter_body(struct pt_regs* regs, long nr, bool btf)
{
    if (gate_closed())
        return 0;
    struct task_struct* task = bpf_get_current_task_btf();
    bool compat = in_compat_syscall(task);
    enum mon_sc sc = compat ? classify_compat(nr) : classify_native(nr);
    if (sc == SC_NONE)
        return 0;
    struct mon_acc a = {.fd = -1, .nr = (__u32)nr, .flags = compat ? MON_F_COMPAT : 0};

    switch (sc) {
    case SC_READ:
    case SC_SPLICE:
    case SC_SENDFILE:
        a.kind = sc == SC_READ ? MON_ACC_READ : MON_ACC_SEND;
        a.fd = (int)sc_arg(regs, sc == SC_SENDFILE ? 1 : 0, compat, btf);
        check_file(task, fd_file(task, a.fd, btf), &a, btf);
        break;
    case SC_MMAP:
        if (sc_arg(regs, 3, compat, btf) & MON_MAP_ANONYMOUS)
            break;
        a.kind = MON_ACC_MMAP;
        a.fd = (int)sc_arg(regs, 4, compat, btf);
        check_file(task, fd_file(task, a.fd, btf), &a, btf);
        break;
    case SC_OLD_MMAP: {
        __u32 args[6] = {}; /* struct mmap_arg_struct: addr, len, prot, flags, fd, offset */
        if (bpf_probe_read_user(args, sizeof(args), (void*)sc_arg(regs, 0, compat, btf)) ||
            (args[3] & MON_MAP_ANONYMOUS))
            break;
        a.kind = MON_ACC_MMAP;
        a.fd = (int)args[4];
        check_file(task, fd_file(task, a.fd, btf), &a, btf);
        break;
    }
    case SC_PTRACE:
        a.detail = (__u32)sc_arg(regs, 0, compat, btf);
        if (a.detail == MON_PTRACE_TRACEME)
            break;
        a.kind = MON_ACC_PTRACE;
        check_target(task, target_of_vpid(task, sc_arg(regs, 1, compat, btf), btf), &a);
        break;
    case SC_VM_READ:
    case SC_VM_WRITE:
        a.kind = sc == SC_VM_READ ? MON_ACC_VM_READ : MON_ACC_VM_WRITE;
        check_target(task, target_of_vpid(task, sc_arg(regs, 0, compat, btf), btf), &a);
        break;
    case SC_PIDFD_GETFD:
        a.kind = MON_ACC_PIDFD_GETFD;
        a.detail = (__u32)sc_arg(regs, 1, compat, btf); /* the target's fd number */
        check_target(task, tgid_of_pidfd(task, (int)sc_arg(regs, 0, compat, btf)), &a);
        break;
    case SC_OPEN:
    case SC_OPENAT: {
        __s32 pid = proc_fd_path_pid((const char*)sc_arg(regs, sc == SC_OPEN ? 0 : 1, compat, btf));
        if (!pid)
            break;
        a.kind = MON_ACC_PROC_OPEN;
        check_target(task, target_of_vpid(task, (__u64)pid, btf), &a);
        break;
    }
    default:
        break;
    }
    return 0;
}

SEC("tp_btf/sys_enter")
int BPF_PROG(on_sys_enter, struct pt_regs* regs, long nr)
{
    return sys_enter_body(regs, nr, true);
}

SEC("?raw_tp/sys_enter")
int BPF_PROG(raw_sys_enter, struct pt_regs* regs, long nr)
{
    return sys_enter_body(regs, nr, false);
}

/* At exit, for what only exists then: the fd that open / pidfd_getfd / recvmsg installed. */
static __always_inline int sys_exit_body(struct pt_regs* regs, long ret, bool btf)
{
    if (gate_closed() || ret < 0)
        return 0;
    struct task_struct* task = bpf_get_current_task_btf();
    bool compat = in_compat_syscall(task);
    long nr = MON_REG(regs, orig_ax, btf);
    enum mon_sc sc = compat ? classify_compat(nr) : classify_native(nr);
    __u32 cflags = compat ? MON_F_COMPAT : 0;

    switch (sc) {
    case SC_OPEN:
    case SC_OPENAT: {
        struct file* file = fd_file(task, (int)ret, btf);
        if (!file)
            break;
        struct mon_acc a = {.kind = MON_ACC_OPEN, .fd = (int)ret, .nr = (__u32)nr, .flags = cflags};
        check_file(task, file, &a, btf);
        __u32 target = proc_target(file);
        if (target) {
            struct mon_acc p = {.kind = MON_ACC_PROC_OPEN, .fd = (int)ret, .nr = (__u32)nr, .flags = cflags};
            check_target(task, target, &p);
        }
        break;
    }
    case SC_PIDFD_GETFD:
        mon_check_new_fd((int)ret, MON_ACC_PIDFD_GETFD, (__u32)nr, cflags);
        break;
    case SC_RECVMSG:
        scan_msghdr(sc_arg(regs, 1, compat, btf), (__u32)nr);
        break;
    case SC_RECVMMSG: {
        __u64 vec = sc_arg(regs, 1, compat, btf);
        for (int i = 0; i < MON_MMSG_MAX && i < ret; i++)
            scan_msghdr(vec + (__u64)i * 64 /* sizeof(struct mmsghdr) */, (__u32)nr);
        break;
    }
    default:
        break;
    }
    return 0;
}

SEC("tp_btf/sys_exit")
int BPF_PROG(on_sys_exit, struct pt_regs* regs, long ret)
{
    return sys_exit_body(regs, ret, true);
}

SEC("?raw_tp/sys_exit")
int BPF_PROG(raw_sys_exit, struct pt_regs* regs, long ret)
{
    return sys_exit_body(regs, ret, false);
}
