/* The syscalls the monitor watches, as one small enum for both entries: the x86-64 table and the
 * ia32 one (CONFIG_IA32_EMULATION=y here, so a 32-bit process reads files with other numbers and
 * passes its arguments in other registers). Everything else returns SC_NONE at once. */
#ifndef CODEX_VAULT_BPF_MONITOR_SYSCALLS_BPF_H
#define CODEX_VAULT_BPF_MONITOR_SYSCALLS_BPF_H

enum mon_sc {
    SC_NONE = 0,
    SC_READ,       /* fd in arg 0: read, pread64, readv, preadv, preadv2 */
    SC_MMAP,       /* fd in arg 4, flags in arg 3 */
    SC_OLD_MMAP,   /* ia32 old_mmap: arg 0 points at {addr, len, prot, flags, fd, offset} */
    SC_SENDFILE,   /* in_fd in arg 1 */
    SC_SPLICE,     /* fd_in in arg 0: splice, copy_file_range */
    SC_OPEN,       /* path in arg 0 */
    SC_OPENAT,     /* path in arg 1: openat, openat2 */
    SC_PTRACE,     /* request in arg 0, pid in arg 1 */
    SC_VM_READ,    /* pid in arg 0 */
    SC_VM_WRITE,   /* pid in arg 0 */
    SC_PIDFD_GETFD, /* pidfd in arg 0 */
    SC_RECVMSG,    /* struct user_msghdr * in arg 1 */
    SC_RECVMMSG,   /* struct mmsghdr * in arg 1, count returned */
};

#define TS_COMPAT 0x0002 /* arch/x86/include/asm/thread_info.h: a 32-bit syscall is active */

static __always_inline bool in_compat_syscall(struct task_struct* task)
{
    return task->thread_info.status & TS_COMPAT;
}

static __always_inline enum mon_sc classify_native(long nr)
{
    switch (nr) {
    case 0:   /* read */
    case 17:  /* pread64 */
    case 19:  /* readv */
    case 295: /* preadv */
    case 327: /* preadv2 */
        return SC_READ;
    case 9:
        return SC_MMAP;
    case 40:
        return SC_SENDFILE;
    case 275: /* splice */
    case 326: /* copy_file_range */
        return SC_SPLICE;
    case 2:
        return SC_OPEN;
    case 257: /* openat */
    case 437: /* openat2 */
        return SC_OPENAT;
    case 101:
        return SC_PTRACE;
    case 310:
        return SC_VM_READ;
    case 311:
        return SC_VM_WRITE;
    case 438:
        return SC_PIDFD_GETFD;
    case 47:
        return SC_RECVMSG;
    case 299:
        return SC_RECVMMSG;
    }
    return SC_NONE;
}

/* ia32 numbers (arch/x86/entry/syscalls/syscall_32.tbl). recvmsg through socketcall(2) and the
 * compat msghdr layout are not decoded: a received fd is still caught when it is read. */
static __always_inline enum mon_sc classify_compat(long nr)
{
    switch (nr) {
    case 3:   /* read */
    case 145: /* readv */
    case 180: /* pread64 */
    case 333: /* preadv */
    case 378: /* preadv2 */
        return SC_READ;
    case 192: /* mmap2 */
        return SC_MMAP;
    case 90:
        return SC_OLD_MMAP;
    case 187: /* sendfile */
    case 239: /* sendfile64 */
        return SC_SENDFILE;
    case 313: /* splice */
    case 377: /* copy_file_range */
        return SC_SPLICE;
    case 5:
        return SC_OPEN;
    case 295: /* openat */
    case 437: /* openat2 */
        return SC_OPENAT;
    case 26:
        return SC_PTRACE;
    case 347:
        return SC_VM_READ;
    case 348:
        return SC_VM_WRITE;
    case 438:
        return SC_PIDFD_GETFD;
    }
    return SC_NONE;
}

/* Argument i of the syscall in progress, from the saved user registers: plain loads in the
 * tp_btf flavour (`btf`), BPF_CORE_READ in the raw_tp one (there regs is a plain number). */
#define MON_REG(regs, field, btf) ((btf) ? (regs)->field : BPF_CORE_READ(regs, field))

static __always_inline __u64 sc_arg(struct pt_regs* regs, int i, bool compat, bool btf)
{
    if (compat) {
        switch (i) {
        case 0: return (__u32)MON_REG(regs, bx, btf);
        case 1: return (__u32)MON_REG(regs, cx, btf);
        case 2: return (__u32)MON_REG(regs, dx, btf);
        case 3: return (__u32)MON_REG(regs, si, btf);
        case 4: return (__u32)MON_REG(regs, di, btf);
        default: return (__u32)MON_REG(regs, bp, btf);
        }
    }
    switch (i) {
    case 0: return MON_REG(regs, di, btf);
    case 1: return MON_REG(regs, si, btf);
    case 2: return MON_REG(regs, dx, btf);
    case 3: return MON_REG(regs, r10, btf);
    case 4: return MON_REG(regs, r8, btf);
    default: return MON_REG(regs, r9, btf);
    }
}

#endif
