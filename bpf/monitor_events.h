/* The records the eBPF monitor hands to user space, and the map keys/values user space writes.
 * Shared verbatim by bpf/monitor.bpf.c (compiled against vmlinux.h) and the C++ loader
 * (daemon/monitor/), so every field is fixed-width and every struct is padded by hand: the
 * layout must not depend on which compiler reads it. daemon/monitor/events.cpp pins each
 * size and offset with static_assert.
 *
 * Times are CLOCK_BOOTTIME nanoseconds (bpf_ktime_get_boot_ns), the clock /proc/PID/stat's
 * field 22 (starttime) counts in clock ticks: starttime = start_boottime_ns / (1e9 / USER_HZ),
 * USER_HZ = sysconf(_SC_CLK_TCK) = 100 on Linux. */
#ifndef CODEX_VAULT_BPF_MONITOR_EVENTS_H
#define CODEX_VAULT_BPF_MONITOR_EVENTS_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

/* Exe paths are copied component by component, at most this many bytes (NUL separators
 * included) and MON_PATH_DEPTH components; a longer or deeper path is cut and flagged. */
#define MON_PATH_MAX 1024
#define MON_PATH_DEPTH 32
#define MON_NAME_MAX 256 /* one component: NAME_MAX (255) + NUL */
#define MON_COMM_LEN 16
#define MON_TRACKED_DEV_SLOTS 8 /* devices of tracked inodes the hooks filter on (.bss) */

enum mon_event_kind {
    MON_EV_EXEC = 1,     /* a process called execve (routine, no wakeup) */
    MON_EV_EXISTING = 2, /* iter/task at start: a process that already ran (same shape as EXEC) */
    MON_EV_MARK = 3,     /* a mark was inherited by a child, or removed when its process exited */
    MON_EV_ACCESS = 4,   /* a tracked inode was touched, or a marked process was approached */
};

/* The connect-time credential check (iter/unix, bpf/monitor_peer.bpf.h) writes one of these, as
 * a __u32, for every bus connection whose connecting process is the pid asked about. */
enum mon_peer_verdict {
    MON_PEER_SAME = 1,    /* its real_cred is still the cred it connected with */
    MON_PEER_CHANGED = 2, /* it has other credentials now: exec, set*id, setgroups, capset... */
    MON_PEER_GONE = 3,    /* the process that connected has been reaped */
};

/* struct mon_event_header.flags */
enum mon_event_flag {
    MON_F_ALERT = 1u << 0,          /* by a process that is not marked with the same id */
    MON_F_KILLED = 1u << 1,         /* the policy said kill: SIGKILL was sent in this syscall */
    MON_F_PATH_TRUNCATED = 1u << 2, /* exe path longer than MON_PATH_MAX or deeper than MON_PATH_DEPTH */
    MON_F_NO_EXE = 1u << 3,         /* no exe (kernel thread, exiting mm) */
    MON_F_COMPAT = 1u << 4,         /* the syscall came through the ia32 entry */
};

/* Every record starts with this; `size` is the whole record in bytes (exec records are cut
 * after their path). */
struct mon_event_header {
    __u32 kind;  /* enum mon_event_kind */
    __u32 size;  /* bytes of the whole record */
    __u32 flags; /* enum mon_event_flag */
    __u32 cpu;
    __u64 time_ns; /* CLOCK_BOOTTIME when the kernel recorded it */
};

/* Who did it: a thread of a process, seen from the host and from its own pid namespace. */
struct mon_task {
    __u32 pid;      /* host thread id */
    __u32 tgid;     /* host process id: the key of marks and of the exec cache */
    __u32 ns_pid;   /* thread_pid->numbers[thread_pid->level].nr */
    __u32 ns_tgid;  /* the same for the group leader */
    __u32 pidns_inum; /* inode number of that pid namespace (ls -L /proc/PID/ns/pid) */
    __u32 ppid;     /* host tgid of real_parent */
    __u32 uid;      /* real_cred->uid */
    __u32 euid;     /* real_cred->euid */
    __u64 start_time_ns;     /* task->start_time: CLOCK_MONOTONIC at fork */
    __u64 start_boottime_ns; /* task->start_boottime: CLOCK_BOOTTIME at fork (stat field 22) */
    __u64 exe_dev;           /* mm->exe_file's device, user-space encoding (stat st_dev) */
    __u64 exe_ino;
    char comm[MON_COMM_LEN];
};

/* MON_EV_EXEC and MON_EV_EXISTING. path holds path_len bytes: the components leaf first, each
 * ending in a NUL ("true\0bin\0usr\0" for /usr/bin/true); user space reverses them. The record
 * is sent cut after path_len bytes. */
struct mon_exec_event {
    struct mon_event_header hdr;
    struct mon_task task;
    __u32 path_len;
    __u32 depth; /* components in path */
    char path[MON_PATH_MAX];
};

enum mon_mark_change {
    MON_MARK_INHERITED = 1, /* task (the child) got parent_tgid's mark at fork */
    MON_MARK_REMOVED = 2,   /* task's process exited; its mark is gone */
    MON_MARK_OVERFLOW = 3,  /* task (the child) could NOT be marked: marks map full (alert) */
};

struct mon_mark_event {
    struct mon_event_header hdr;
    struct mon_task task;
    __u64 mark_id;
    __u32 change; /* enum mon_mark_change */
    __u32 parent_tgid;
};

enum mon_access_kind {
    MON_ACC_READ = 1,        /* read, pread64, readv, preadv, preadv2 */
    MON_ACC_MMAP = 2,        /* mmap / mmap2 / old_mmap of the fd */
    MON_ACC_SEND = 3,        /* sendfile, splice, copy_file_range out of the fd */
    MON_ACC_OPEN = 4,        /* open, openat, openat2 returned an fd of the inode */
    MON_ACC_RECEIVE = 5,     /* recvmsg/recvmmsg installed an fd of the inode (SCM_RIGHTS) */
    MON_ACC_PIDFD_GETFD = 6, /* pidfd_getfd: attempt on a marked target, or got an fd of the inode */
    MON_ACC_PTRACE = 7,      /* ptrace on a marked process */
    MON_ACC_VM_READ = 8,     /* process_vm_readv on a marked process */
    MON_ACC_VM_WRITE = 9,    /* process_vm_writev on a marked process */
    MON_ACC_PROC_OPEN = 10,  /* opened /proc/PID/{mem,environ,fd,fdinfo,map_files,...} of a marked process */
};

/* MON_EV_ACCESS. Either an inode touch (dev/ino set, id = the inode's id) or an attempt on a
 * marked process (target_tgid set, id = the target's mark id). */
struct mon_access_event {
    struct mon_event_header hdr;
    struct mon_task actor;
    __u64 id;        /* tracked inode's id, or target's mark id */
    __u64 actor_mark; /* the actor's own mark id, 0 when unmarked */
    __u64 dev;       /* touched inode (user-space st_dev encoding), 0 for attempts */
    __u64 ino;
    __u32 access;      /* enum mon_access_kind */
    __u32 syscall_nr;  /* as the entry saw it (ia32 numbers when MON_F_COMPAT) */
    __s32 fd;          /* the fd read/mapped/returned; -1 when none */
    __u32 target_tgid; /* attempts: host tgid of the marked target; touches: 0 */
    __u32 detail;      /* ptrace request; open flags */
    __u32 pad;
};

/* What a mark or a tracked inode asks for when someone else touches it. */
enum mon_on_touch {
    MON_ON_TOUCH_RECORD = 0,
    MON_ON_TOUCH_KILL = 1, /* bpf_send_signal(SIGKILL) to the offender in the same syscall */
};

/* marks: host tgid -> this. */
struct mon_mark {
    __u64 id;       /* mark / injection id, never 0 */
    __u32 on_touch; /* enum mon_on_touch for attempts on this process */
    __u32 pad;
};

/* tracked_inodes: this -> struct mon_tracked. dev is stat's st_dev (user-space encoding). */
struct mon_inode_key {
    __u64 dev;
    __u64 ino;
};

struct mon_tracked {
    __u64 id;       /* the injection id this inode belongs to, never 0 */
    __u32 on_touch; /* enum mon_on_touch for touches by other processes */
    __u32 pad;
};

/* .bss gate_mode */
enum mon_gate_mode {
    MON_GATE_AUTO = 0,   /* hooks run while gate_count (marks + tracked inodes) > 0 */
    MON_GATE_OPEN = 1,   /* hooks always run */
    MON_GATE_CLOSED = 2, /* hooks never run (exec records still do) */
};

#endif /* CODEX_VAULT_BPF_MONITOR_EVENTS_H */
