/* Who a task is (struct mon_task) and where its exe lives (the dentry walk). */
#ifndef CODEX_VAULT_BPF_MONITOR_TASK_BPF_H
#define CODEX_VAULT_BPF_MONITOR_TASK_BPF_H

#define MON_MAX_PIDNS_LEVEL 32 /* the kernel's MAX_PID_NS_LEVEL */

/* The kernel keeps dev_t as major << 20 | minor; stat(2) reports glibc's makedev() encoding.
 * Records carry the latter so user space compares them with st_dev as they are. */
static __always_inline __u64 user_dev(__u32 kdev)
{
    __u64 major = kdev >> 20, minor = kdev & 0xfffff;
    return ((major & 0xfffff000ULL) << 32) | ((major & 0xfffULL) << 8) | ((minor & 0xffffff00ULL) << 12) |
           (minor & 0xffULL);
}

/* numbers[level] is the pid as the task's own (active) pid namespace sees it: level is the depth
 * of the namespace the pid was allocated in, numbers[0] the host's. numbers[] is a flexible
 * array, so its element is read at a computed address rather than through a CO-RE access
 * chain; struct upid ({int nr; struct pid_namespace *ns;}) has not changed since 2.6.24. */
static __always_inline struct upid pid_at_own_level(struct pid* pid)
{
    struct upid up = {};
    if (!pid)
        return up;
    __u32 level = BPF_CORE_READ(pid, level);
    if (level >= MON_MAX_PIDNS_LEVEL)
        return up;
    __u64 base = (__u64)pid + bpf_core_field_offset(struct pid, numbers);
    bpf_probe_read_kernel(&up, sizeof(up), (void*)(base + (__u64)level * sizeof(struct upid)));
    return up;
}

/* The exe's inode as stat(2) would name it. */
static __always_inline bool exe_identity(struct task_struct* task, __u64* dev, __u64* ino)
{
    struct file* exe = BPF_CORE_READ(task, mm, exe_file);
    if (!exe)
        return false;
    struct inode* inode = BPF_CORE_READ(exe, f_inode);
    *dev = user_dev(BPF_CORE_READ(inode, i_sb, s_dev));
    *ino = BPF_CORE_READ(inode, i_ino);
    return true;
}

/* Returns MON_F_NO_EXE when the task has no exe (kernel thread, mm already gone). */
static __always_inline __u32 fill_task(struct mon_task* t, struct task_struct* task)
{
    t->pid = BPF_CORE_READ(task, pid);
    t->tgid = BPF_CORE_READ(task, tgid);
    struct upid own = pid_at_own_level(BPF_CORE_READ(task, thread_pid));
    t->ns_pid = own.nr;
    t->pidns_inum = BPF_CORE_READ(own.ns, ns.inum);
    t->ns_tgid = pid_at_own_level(BPF_CORE_READ(task, group_leader, thread_pid)).nr;
    t->ppid = BPF_CORE_READ(task, real_parent, tgid);
    t->uid = BPF_CORE_READ(task, real_cred, uid.val);
    t->euid = BPF_CORE_READ(task, real_cred, euid.val);
    t->start_time_ns = BPF_CORE_READ(task, start_time);
    t->start_boottime_ns = BPF_CORE_READ(task, start_boottime);
    BPF_CORE_READ_STR_INTO(&t->comm, task, comm);
    t->exe_dev = 0;
    t->exe_ino = 0;
    return exe_identity(task, &t->exe_dev, &t->exe_ino) ? 0 : MON_F_NO_EXE;
}

/* Copies the names from `path` up to the root of its mount namespace, leaf first, each ending in
 * a NUL, crossing mount points through struct mount (mnt_parent / mnt_mountpoint). bpf_d_path is
 * refused to tracing programs here, so this is the walk d_path would do, bounded: at most
 * MON_PATH_DEPTH names and MON_PATH_MAX bytes (then MON_F_PATH_TRUNCATED), and as many mount
 * crossings again. The root is the mount namespace's, not a chroot's. One step per bpf_loop
 * call: the verifier checks the step once instead of every unrolled iteration (an open loop of
 * 64 steps exceeds its 1M-instruction budget). */
struct walk_state {
    struct exec_scratch* s;
    struct dentry* dentry;
    struct vfsmount* vfsmnt;
    struct mount* mnt;
    __u32 off;
    __u32 depth;
    __u32 flags;
    __u32 pad;
};

static long walk_step(__u32 i, struct walk_state* w)
{
    /* Copies, not w->x: BPF_CORE_READ would relocate the walk_state field too. */
    struct dentry* dentry = w->dentry;
    struct vfsmount* vfsmnt = w->vfsmnt;
    struct mount* mnt = w->mnt;
    struct dentry* parent = BPF_CORE_READ(dentry, d_parent);
    struct dentry* mnt_root = BPF_CORE_READ(vfsmnt, mnt_root);
    if (dentry == mnt_root || dentry == parent) {
        struct mount* up = BPF_CORE_READ(mnt, mnt_parent);
        if (dentry != mnt_root || up == mnt || !up)
            return 1; /* the namespace's root (or a detached tree) */
        w->dentry = BPF_CORE_READ(mnt, mnt_mountpoint);
        w->mnt = up;
        w->vfsmnt = (struct vfsmount*)((__u64)up + bpf_core_field_offset(struct mount, mnt));
        return 0;
    }
    __u32 off = w->off;
    if (w->depth >= MON_PATH_DEPTH || off >= MON_PATH_MAX) {
        w->flags |= MON_F_PATH_TRUNCATED;
        return 1;
    }
    const unsigned char* name = BPF_CORE_READ(dentry, d_name.name);
    long n = bpf_probe_read_kernel_str(&w->s->ev.path[off & (MON_PATH_MAX - 1)], MON_NAME_MAX, name);
    if (n <= 0 || off + n > MON_PATH_MAX) {
        w->flags |= MON_F_PATH_TRUNCATED;
        return 1;
    }
    w->off = off + (__u32)n;
    w->depth++;
    w->dentry = parent;
    return 0;
}

static __always_inline __u32 walk_path(struct exec_scratch* s, const struct path* path)
{
    struct walk_state w = {.s = s};
    w.dentry = BPF_CORE_READ(path, dentry);
    w.vfsmnt = BPF_CORE_READ(path, mnt);
    w.mnt = (struct mount*)((__u64)w.vfsmnt - bpf_core_field_offset(struct mount, mnt));
    bpf_loop(2 * MON_PATH_DEPTH, walk_step, &w, 0);
    s->ev.path_len = w.off;
    s->ev.depth = w.depth;
    return w.flags;
}

/* Fills the scratch exec record for `task`; returns its size in bytes. */
static __always_inline __u32 build_exec(struct exec_scratch* s, struct task_struct* task, __u32 kind)
{
    __u32 flags = fill_task(&s->ev.task, task);
    s->ev.path_len = 0;
    s->ev.depth = 0;
    struct file* exe = BPF_CORE_READ(task, mm, exe_file);
    if (exe)
        flags |= walk_path(s, &exe->f_path);
    __u32 len = s->ev.path_len;
    if (len > MON_PATH_MAX)
        len = MON_PATH_MAX;
    __u32 size = (__u32)__builtin_offsetof(struct mon_exec_event, path) + len;
    fill_header(&s->ev.hdr, kind, size, flags);
    return size;
}

#endif
