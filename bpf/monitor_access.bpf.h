/* The checks behind the syscall hooks: which file an fd is, whether its inode is tracked, whether
 * a pid / pidfd / /proc entry names a marked process, and the record (and kill) that follows. */
#ifndef CODEX_VAULT_BPF_MONITOR_ACCESS_BPF_H
#define CODEX_VAULT_BPF_MONITOR_ACCESS_BPF_H

#define MON_SIGKILL 9
#define MON_MAP_ANONYMOUS 0x20
#define MON_PTRACE_TRACEME 0
#define MON_PROC_SUPER_MAGIC 0x9fa0
#define MON_PIDFS_MAGIC 0x50494446
#define MON_SOL_SOCKET 1
#define MON_SCM_RIGHTS 1
#define MON_CMSG_MAX 4      /* control messages walked per received message */
#define MON_CMSG_FDS_MAX 8  /* fds checked per SCM_RIGHTS message */
#define MON_MMSG_MAX 2      /* messages walked per recvmmsg */

/* bpf_task_from_vpid (6.13+): the pid a syscall names is in the caller's pid namespace. */
extern struct task_struct* bpf_task_from_vpid(s32 vpid) __ksym __weak;
extern void bpf_task_release(struct task_struct* p) __ksym __weak;
/* bpf_rdonly_cast (6.2+): lets the tp_btf flavour load through a pointer read with a helper. */
extern void* bpf_rdonly_cast(const void* obj, __u32 btf_id) __ksym __weak;

/* What one record says; built on the stack, copied into the ring by emit_access. */
struct mon_acc {
    __u64 id;
    __u64 dev;
    __u64 ino;
    __u32 kind; /* enum mon_access_kind */
    __u32 flags;
    __u32 target_tgid;
    __u32 detail;
    __s32 fd;
    __u32 nr;
};

/* The file behind `fd` in task's table (task->files->fdt->fd[fd], bounded by max_fds), or NULL.
 * This runs for every read(2) on the machine while the gate is open, so the tp_btf flavour
 * (`btf`) walks typed pointers with plain loads (the verifier makes them fault-safe); helper
 * calls (BPF_CORE_READ) cost tens of ns each here and are left to the raw_tp flavour, whose
 * pointers are untyped. */
static __always_inline struct file* fd_file(struct task_struct* task, int fd, bool btf)
{
    if (fd < 0)
        return NULL;
    struct fdtable* fdt;
    unsigned int max_fds;
    struct file** table;
    if (btf) {
        struct files_struct* files = task->files;
        if (!files)
            return NULL;
        fdt = files->fdt;
        if (!fdt)
            return NULL;
        max_fds = fdt->max_fds;
        table = fdt->fd;
    } else {
        fdt = BPF_CORE_READ(task, files, fdt);
        if (!fdt)
            return NULL;
        max_fds = BPF_CORE_READ(fdt, max_fds);
        table = BPF_CORE_READ(fdt, fd);
    }
    if ((unsigned int)fd >= max_fds)
        return NULL;
    if (btf) {
        /* The slot is a bare `struct file *`, which the verifier cannot type; read it as the
         * first member of a struct that starts with one (struct kiocb's ki_filp, first since
         * 2.6) so it stays a plain load instead of a helper call. */
        struct kiocb* slot = bpf_rdonly_cast(&table[fd], bpf_core_type_id_kernel(struct kiocb));
        return slot->ki_filp;
    }
    struct file* file = NULL;
    bpf_probe_read_kernel(&file, sizeof(file), &table[fd]);
    return file;
}

/* The (st_dev, st_ino) of an open file, or false when its device holds no tracked inode. */
static __always_inline bool file_key(struct file* file, struct mon_inode_key* key, bool btf)
{
    struct inode* inode;
    __u32 kdev;
    if (btf) {
        struct file* f = bpf_rdonly_cast(file, bpf_core_type_id_kernel(struct file));
        inode = f->f_inode;
        kdev = inode->i_sb->s_dev;
    } else {
        inode = BPF_CORE_READ(file, f_inode);
        kdev = BPF_CORE_READ(inode, i_sb, s_dev);
    }
    if (!dev_may_be_tracked(kdev))
        return false;
    key->dev = user_dev(kdev);
    key->ino = btf ? inode->i_ino : BPF_CORE_READ(inode, i_ino);
    return true;
}

/* Decides, records and (by policy) kills. `own` is the actor's mark or NULL; `owner_id` and
 * `on_touch` belong to what was touched (the tracked inode, or the marked target). The same
 * id is routine: a process touching its own injection. */
static __always_inline void emit_access(struct task_struct* task, struct mon_acc* a, __u64 owner_id,
                                        __u32 on_touch, struct mon_mark* own)
{
    __u64 own_id = own ? own->id : 0;
    if (own_id != owner_id) {
        a->flags |= MON_F_ALERT;
        if (on_touch == MON_ON_TOUCH_KILL) {
            /* SIGKILL is pending before the syscall body runs: the process never returns to
             * user space (see bpf/README.md for what the syscall itself may still do). */
            bpf_send_signal(MON_SIGKILL);
            a->flags |= MON_F_KILLED;
        }
    }
    struct mon_access_event* e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
    if (!e) {
        count_lost();
        return;
    }
    __u32 flags = a->flags | fill_task(&e->actor, task);
    fill_header(&e->hdr, MON_EV_ACCESS, sizeof(*e), flags);
    e->id = owner_id;
    e->actor_mark = own_id;
    e->dev = a->dev;
    e->ino = a->ino;
    e->access = a->kind;
    e->syscall_nr = a->nr;
    e->fd = a->fd;
    e->target_tgid = a->target_tgid;
    e->detail = a->detail;
    e->pad = 0;
    bpf_ringbuf_submit(e, (flags & MON_F_ALERT) ? BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP);
}

/* An fd of the current task was read/mapped/opened/received: record it when its inode is
 * tracked. */
static __always_inline void check_file(struct task_struct* task, struct file* file, struct mon_acc* a, bool btf)
{
    if (!file)
        return;
    struct mon_inode_key key;
    if (!file_key(file, &key, btf))
        return;
    struct mon_tracked* tracked = bpf_map_lookup_elem(&tracked_inodes, &key);
    if (!tracked)
        return;
    __u32 tgid = bpf_get_current_pid_tgid() >> 32;
    if (tgid == exempt_tgid)
        return;
    a->dev = key.dev;
    a->ino = key.ino;
    emit_access(task, a, tracked->id, tracked->on_touch, bpf_map_lookup_elem(&marks, &tgid));
}

/* Another process approached target_tgid: record it when the target is marked. */
static __always_inline void check_target(struct task_struct* task, __u32 target_tgid, struct mon_acc* a)
{
    __u32 tgid = bpf_get_current_pid_tgid() >> 32;
    if (!target_tgid || target_tgid == tgid || tgid == exempt_tgid)
        return;
    struct mon_mark* target = bpf_map_lookup_elem(&marks, &target_tgid);
    if (!target)
        return;
    a->target_tgid = target_tgid;
    emit_access(task, a, target->id, target->on_touch, bpf_map_lookup_elem(&marks, &tgid));
}

/* Host tgid of a pid number as the caller's pid namespace sees it. Without bpf_task_from_vpid
 * (kernels before 6.13) only the initial namespace can be resolved, where vpid is the host pid. */
static __always_inline __u32 tgid_of_vpid(struct task_struct* task, __s32 vpid)
{
    if (vpid <= 0)
        return 0;
    if (bpf_task_from_vpid) {
        struct task_struct* found = bpf_task_from_vpid(vpid);
        if (!found)
            return 0;
        __u32 tgid = found->tgid;
        bpf_task_release(found);
        return tgid;
    }
    return BPF_CORE_READ(task, thread_pid, level) == 0 ? (__u32)vpid : 0;
}

/* Host tgid of the task a struct pid names (its first PIDTYPE_PID user). */
static __always_inline __u32 tgid_of_pid(struct pid* pid)
{
    if (!pid)
        return 0;
    struct hlist_node* first = BPF_CORE_READ(pid, tasks[PIDTYPE_PID].first);
    if (!first)
        return 0;
    struct task_struct* owner = (struct task_struct*)((__u64)first - bpf_core_field_offset(struct task_struct, pid_links));
    return BPF_CORE_READ(owner, tgid);
}

/* A pidfd is a pidfs file (6.9+) whose inode's i_private is the struct pid. */
static __always_inline __u32 tgid_of_pidfd(struct task_struct* task, int pidfd)
{
    struct file* file = fd_file(task, pidfd, false);
    if (!file)
        return 0;
    struct inode* inode = BPF_CORE_READ(file, f_inode);
    if (BPF_CORE_READ(inode, i_sb, s_magic) != MON_PIDFS_MAGIC)
        return 0;
    return tgid_of_pid((struct pid*)BPF_CORE_READ(inode, i_private));
}

static __always_inline bool name_is(const char* name, const char* want, int len)
{
#pragma unroll
    for (int i = 0; i < len; i++)
        if (name[i] != want[i])
            return false;
    return name[len] == 0;
}

/* The /proc/PID entries that hand out a process's memory, environment or files. */
static __always_inline bool secret_proc_name(const char* n)
{
    return name_is(n, "mem", 3) || name_is(n, "environ", 7) || name_is(n, "fd", 2) || name_is(n, "fdinfo", 6) ||
           name_is(n, "map_files", 9) || name_is(n, "pagemap", 7);
}

/* An fd just opened on procfs: every procfs inode is a struct proc_inode, and those of the
 * /proc/PID (and /proc/PID/task/TID) entries hold the struct pid they describe. That names the
 * process whatever the proc mount's pid namespace, the pid's digits, or the path (dirfd, "..")
 * were, so no path text is parsed. Returns the host tgid when the entry (or its folder, for
 * fd/N, fdinfo/N, map_files/X) is one of secret_proc_name. */
static __always_inline __u32 proc_target(struct file* file)
{
    struct inode* inode = BPF_CORE_READ(file, f_inode);
    if (BPF_CORE_READ(inode, i_sb, s_magic) != MON_PROC_SUPER_MAGIC)
        return 0;
    struct proc_inode* pi = (struct proc_inode*)((__u64)inode - bpf_core_field_offset(struct proc_inode, vfs_inode));
    struct pid* pid = BPF_CORE_READ(pi, pid);
    if (!pid)
        return 0;
    char name[16] = {};
    struct dentry* dentry = BPF_CORE_READ(file, f_path.dentry);
    bpf_probe_read_kernel_str(name, sizeof(name), BPF_CORE_READ(dentry, d_name.name));
    if (!secret_proc_name(name)) {
        __builtin_memset(name, 0, sizeof(name));
        bpf_probe_read_kernel_str(name, sizeof(name), BPF_CORE_READ(dentry, d_parent, d_name.name));
        if (!secret_proc_name(name))
            return 0;
    }
    return tgid_of_pid(pid);
}

/* Opening /proc/N/fd/M follows a magic link: the file that comes back is the target, not a
 * procfs entry, so that one is recognised by its text at entry ("/proc/<digits>/fd..." or
 * ".../map_files..."), with N in the caller's pid namespace. */
static __always_inline __s32 proc_fd_path_pid(const char* upath)
{
    char p[24] = {};
    if (bpf_probe_read_user_str(p, sizeof(p), upath) < 9)
        return 0;
    if (p[0] != '/' || p[1] != 'p' || p[2] != 'r' || p[3] != 'o' || p[4] != 'c' || p[5] != '/')
        return 0;
    __s32 pid = 0;
    int i = 6;
    for (; i < 16; i++) {
        char c = p[i];
        if (c < '0' || c > '9')
            break;
        pid = pid * 10 + (c - '0');
    }
    if (i == 6 || p[i & 15] != '/')
        return 0;
    char a = p[(i + 1) & 15], b = p[(i + 2) & 15], c = p[(i + 3) & 15];
    if ((a == 'f' && b == 'd') || (a == 'm' && b == 'a' && c == 'p'))
        return pid;
    return 0;
}

/* An fd that recvmsg/recvmmsg/pidfd_getfd just installed in the current task. A global function
 * so that the verifier checks it once, not once per fd of every message the caller unrolls. */
__noinline int mon_check_new_fd(int fd, __u32 kind, __u32 nr, __u32 flags)
{
    struct task_struct* task = bpf_get_current_task_btf();
    struct mon_acc a = {.kind = kind, .fd = fd, .nr = nr, .flags = flags};
    check_file(task, fd_file(task, fd, false), &a, false);
    return 0;
}

/* The SCM_RIGHTS fds of one received message. The kernel wrote back msg_controllen (the bytes
 * of control data it used), and the fds it installed are in those cmsgs, so reading them back
 * from user memory at exit names exactly the new fds. */
static __always_inline void scan_msghdr(__u64 umsg, __u32 nr)
{
    __u64 control = 0, controllen = 0;
    bpf_probe_read_user(&control, sizeof(control), (void*)(umsg + __builtin_offsetof(struct user_msghdr, msg_control)));
    bpf_probe_read_user(&controllen, sizeof(controllen),
                        (void*)(umsg + __builtin_offsetof(struct user_msghdr, msg_controllen)));
    __u64 off = 0;
    for (int c = 0; c < MON_CMSG_MAX; c++) {
        struct {
            __u64 len;
            __s32 level;
            __s32 type;
        } h = {};
        if (off + sizeof(h) > controllen || bpf_probe_read_user(&h, sizeof(h), (void*)(control + off)))
            break;
        if (h.len < sizeof(h) || off + h.len > controllen)
            break;
        if (h.level == MON_SOL_SOCKET && h.type == MON_SCM_RIGHTS) {
            __u64 count = (h.len - sizeof(h)) / sizeof(int);
            for (int k = 0; k < MON_CMSG_FDS_MAX && k < count; k++) {
                int fd = -1;
                if (bpf_probe_read_user(&fd, sizeof(fd), (void*)(control + off + sizeof(h) + k * sizeof(int))))
                    break;
                mon_check_new_fd(fd, MON_ACC_RECEIVE, nr, 0);
            }
        }
        off += (h.len + 7) & ~7ULL;
    }
}

#endif
