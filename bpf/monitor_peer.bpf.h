/* The connect-time credential check: has the process that made a bus connection kept the
 * credentials it connected with? Included once, by monitor.bpf.c.
 *
 * unix_stream_connect gives the server side of a new connection (the socket the bus daemon
 * accepts) the connecting task's tgid as sk_peer_pid and a counted reference to its credentials
 * (current->cred) as sk_peer_cred. Every execve installs a fresh struct cred
 * (prepare_exec_creds), and so does every set*id, setgroups, capset or keyring change
 * (commit_creds). The reference keeps the connect-time cred alive, so no later cred can be
 * allocated at its address: if the process's real_cred now is a different pointer, its
 * credentials changed after it connected. Only the comparison leaves the kernel: one verdict per
 * matching socket, never a pointer.
 *
 * User space writes the three inputs below, then creates an iterator from a link it made at start
 * (BPF_ITER_CREATE) and reads it. Two walks, one program each: the bus daemon's descriptors
 * (iter/task_file bound to its pid: every connection, from any network namespace, at a cost in
 * proportion to the bus's connections), or, when the bus daemon's pid is unknown, every unix
 * socket of the reader's network namespace (iter/unix; the accepted socket lives in the
 * connecting socket's namespace, so a connection made from another one is not found, which the
 * daemon treats as "cannot verify"). */
#ifndef CODEX_VAULT_BPF_MONITOR_PEER_BPF_H
#define CODEX_VAULT_BPF_MONITOR_PEER_BPF_H

#define MON_TCP_LISTEN 10 /* sk_state of a listening socket */

/* The caller's pid as the reader's pid namespace numbers it (the pid the bus reported); 0 = no
 * check wanted. */
__s32 peer_pid = 0;
/* The bus's listening socket inode (st_dev in the kernel's encoding, st_ino). Every socket
 * accepted from that listener shares its path (unix_stream_connect copies it), so this picks the
 * bus connections out of every unix socket and leaves out whatever else the caller connected to. */
__u32 peer_sock_kdev = 0;
__u64 peer_sock_ino = 0;

/* pid_nr_ns(pid, ns): the pid's number in `ns` (at depth `ns_level`), 0 when it has none there. */
static __always_inline __s32 pid_nr_in(struct pid* pid, struct pid_namespace* ns, __u32 ns_level)
{
    if (!pid || !ns || ns_level >= MON_MAX_PIDNS_LEVEL || BPF_CORE_READ(pid, level) < ns_level)
        return 0;
    struct upid up = {};
    __u64 base = (__u64)pid + bpf_core_field_offset(struct pid, numbers);
    bpf_probe_read_kernel(&up, sizeof(up), (void*)(base + (__u64)ns_level * sizeof(struct upid)));
    return up.ns == ns ? up.nr : 0;
}

/* The process a tgid struct pid stands for now: the leader on its PIDTYPE_TGID list, or none
 * once the process that connected has been reaped (its number may then belong to another
 * process, with another struct pid). struct hlist_node has been two pointers forever. */
static __always_inline struct task_struct* leader_of(struct pid* pid)
{
    struct hlist_node* first = NULL;
    __u64 head = (__u64)pid + bpf_core_field_offset(struct pid, tasks) + PIDTYPE_TGID * sizeof(struct hlist_head);
    bpf_probe_read_kernel(&first, sizeof(first), (void*)head);
    if (!first)
        return NULL;
    __u64 link = bpf_core_field_offset(struct task_struct, pid_links) + PIDTYPE_TGID * sizeof(struct hlist_node);
    return (struct task_struct*)((__u64)first - link);
}

/* One verdict for `u` if it is a bus connection of the asked pid. */
static __always_inline void judge(struct unix_sock* u, struct seq_file* seq)
{
    __s32 want = peer_pid;
    if (!u || want <= 0)
        return;
    if (BPF_CORE_READ(u, sk.__sk_common.skc_state) == MON_TCP_LISTEN)
        return; /* the listener's peer is whoever called listen() */
    struct dentry* dentry = BPF_CORE_READ(u, path.dentry);
    if (!dentry)
        return;
    struct inode* inode = BPF_CORE_READ(dentry, d_inode);
    if (BPF_CORE_READ(inode, i_ino) != peer_sock_ino || BPF_CORE_READ(inode, i_sb, s_dev) != peer_sock_kdev)
        return;
    struct pid* pid = BPF_CORE_READ(u, sk.sk_peer_pid);
    struct upid me = pid_at_own_level(BPF_CORE_READ(bpf_get_current_task_btf(), thread_pid));
    if (pid_nr_in(pid, me.ns, BPF_CORE_READ(me.ns, level)) != want)
        return;

    __u32 verdict = MON_PEER_GONE;
    struct task_struct* task = leader_of(pid);
    if (task) {
        const struct cred* then = BPF_CORE_READ(u, sk.sk_peer_cred);
        const struct cred* now = BPF_CORE_READ(task, real_cred);
        verdict = then && then == now ? MON_PEER_SAME : MON_PEER_CHANGED;
    }
    bpf_seq_write(seq, &verdict, sizeof(verdict));
}

/* Every unix socket of the reader's network namespace. */
SEC("iter/unix")
int peer_credentials(struct bpf_iter__unix* ctx)
{
    judge(ctx->unix_sk, ctx->meta->seq);
    return 0;
}

#define MON_SOCKFS_MAGIC 0x534F434B
#define MON_AF_UNIX 1

/* The descriptors of one process, the bus daemon's (the link is bound to its pid): it holds the
 * socket it accepted for every connection, from whatever network namespace. A file on sockfs is a
 * socket whose private_data is its struct socket (an O_PATH descriptor of a socket's path is on
 * the path's file system, not sockfs). */
SEC("iter/task_file")
int bus_peer_credentials(struct bpf_iter__task_file* ctx)
{
    struct file* file = ctx->file;
    if (!file || BPF_CORE_READ(file, f_inode, i_sb, s_magic) != MON_SOCKFS_MAGIC)
        return 0;
    struct socket* sock = (struct socket*)BPF_CORE_READ(file, private_data);
    struct sock* sk = BPF_CORE_READ(sock, sk);
    if (!sk || BPF_CORE_READ(sk, __sk_common.skc_family) != MON_AF_UNIX)
        return 0;
    /* struct unix_sock begins with its struct sock. */
    judge((struct unix_sock*)sk, ctx->meta->seq);
    return 0;
}

#endif
