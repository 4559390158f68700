/* Maps, globals and the emit helpers of the monitor. Included once, by monitor.bpf.c. */
#ifndef CODEX_VAULT_BPF_MONITOR_MAPS_BPF_H
#define CODEX_VAULT_BPF_MONITOR_MAPS_BPF_H

/* One ring for everything: routine records are submitted with BPF_RB_NO_WAKEUP (user space
 * drains on a timer), alerts with BPF_RB_FORCE_WAKEUP (the epoll fd fires at once). The loader
 * sets the size (Options::ring_bytes) before load. */
struct {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
    __uint(max_entries, 4 << 20);
} events SEC(".maps");

/* host tgid -> mark. Written by user space (mark/unmark) and by the kernel (fork inherits,
 * exit removes). */
struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 16384);
    __type(key, __u32);
    __type(value, struct mon_mark);
} marks SEC(".maps");

/* (dev, ino) -> injection id. Written by user space only. */
struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 1024);
    __type(key, struct mon_inode_key);
    __type(value, struct mon_tracked);
} tracked_inodes SEC(".maps");

/* An exec record is 1.1 KiB: too big for the 512-byte BPF stack, so it is built here and sent
 * cut after its path. The spill lets the last component be copied whole before it is measured. */
struct exec_scratch {
    struct mon_exec_event ev;
    char spill[MON_NAME_MAX];
};

struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, struct exec_scratch);
} exec_scratch SEC(".maps");

/* The gate (.bss, mmapped by the loader): the hot hooks return at once unless something is
 * tracked. gate_count = live marks + tracked inodes, added to atomically by user space and by the
 * fork/exit hooks; gate_mode is enum mon_gate_mode. */
__u64 gate_count = 0;
__u32 gate_mode = 0;
/* The loader's own tgid: the daemon writes and reads the secrets it injects, which is neither an
 * alert nor worth a record. 0 = nobody is exempt. */
__u32 exempt_tgid = 0;
/* Ring-buffer reservations that failed (records lost). In the mmapped .bss rather than a map, so
 * the daemon reads it with a plain load: its own syscall filter refuses bpf(2) once it runs, and
 * a loss is rare enough that one shared counter costs nothing. */
__u64 lost_count = 0;
/* The devices of the tracked inodes, in the kernel's encoding (i_sb->s_dev: major << 20 | minor),
 * 0 = a free slot, and whether more devices are tracked than fit (then any device may be). User
 * space publishes a device before it inserts the first inode on it and clears it after the last
 * one is deleted, so a hook that would find an entry always passes this filter. A read on any
 * other device (nearly every read on the machine: injected secrets live on secretmem or shmem)
 * then skips the hash lookup, about half of what the hook spends on such a read. */
__u32 tracked_devs[MON_TRACKED_DEV_SLOTS] = {};
__u32 tracked_devs_overflow = 0;

static __always_inline bool gate_closed(void)
{
    __u32 mode = gate_mode;
    if (mode == MON_GATE_OPEN)
        return false;
    if (mode == MON_GATE_CLOSED)
        return true;
    return gate_count == 0;
}

static __always_inline bool dev_may_be_tracked(__u32 kdev)
{
    if (tracked_devs_overflow)
        return true;
#pragma unroll
    for (int i = 0; i < MON_TRACKED_DEV_SLOTS; i++)
        if (tracked_devs[i] == kdev)
            return kdev != 0;
    return false;
}

static __always_inline void count_lost(void)
{
    __sync_fetch_and_add(&lost_count, 1);
}

static __always_inline void fill_header(struct mon_event_header* hdr, __u32 kind, __u32 size, __u32 flags)
{
    hdr->kind = kind;
    hdr->size = size;
    hdr->flags = flags;
    hdr->cpu = bpf_get_smp_processor_id();
    hdr->time_ns = bpf_ktime_get_boot_ns();
}

#endif
