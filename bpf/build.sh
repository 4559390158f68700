#!/bin/sh
# Builds the monitor's BPF side without the main Makefile: BUILD_DIR/bpf/{vmlinux.h,
# monitor.bpf.o, monitor.skel.h}. Same steps as bpf/monitor.mk; run from anywhere.
#   bpf/build.sh BUILD_DIR
set -eu

[ $# -eq 1 ] || { echo "usage: $0 BUILD_DIR" >&2; exit 2; }
root=$(cd "$(dirname "$0")/.." && pwd)
out="$1/bpf"
mkdir -p "$out"

BPFTOOL=${BPFTOOL:-bpftool}
CLANG=${CLANG:-clang}
LLVM_STRIP=${LLVM_STRIP:-llvm-strip}
VMLINUX_BTF=${VMLINUX_BTF:-/sys/kernel/btf/vmlinux}

# vmlinux.h describes the running kernel's types; CO-RE relocates the program to whichever
# kernel loads it, so it is regenerated only when missing.
if [ ! -s "$out/vmlinux.h" ]; then
    "$BPFTOOL" btf dump file "$VMLINUX_BTF" format c >"$out/vmlinux.h.tmp"
    mv "$out/vmlinux.h.tmp" "$out/vmlinux.h"
fi

"$CLANG" -g -O2 -target bpf -mcpu=v3 -D__TARGET_ARCH_x86 -Wall -Werror -I"$out" -I"$root" \
    -c "$root/bpf/monitor.bpf.c" -o "$out/monitor.bpf.o"
# DWARF only makes the embedded object bigger; BTF (kept by -g strip) is what CO-RE needs.
"$LLVM_STRIP" -g "$out/monitor.bpf.o"
"$BPFTOOL" gen skeleton "$out/monitor.bpf.o" name monitor_bpf >"$out/monitor.skel.h.tmp"
mv "$out/monitor.skel.h.tmp" "$out/monitor.skel.h"
