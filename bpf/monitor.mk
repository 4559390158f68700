# The eBPF monitor's build, for `include bpf/monitor.mk` from the top-level Makefile (run from the
# repository root). Same steps as bpf/build.sh.
#
# Input:  BUILD (the build directory).
# Output: $(MONITOR_VMLINUX)  $(BUILD)/bpf/vmlinux.h      the running kernel's types (never committed)
#         $(MONITOR_BPF_OBJ)  $(BUILD)/bpf/monitor.bpf.o  the CO-RE programs
#         $(MONITOR_SKEL)     $(BUILD)/bpf/monitor.skel.h the skeleton daemon/monitor/ includes
# For the user side: MONITOR_USER_SRCS (the loader library), MONITOR_TEST_SRCS, MONITOR_BENCH_SRC,
# MONITOR_CPPFLAGS (finds "monitor.skel.h") and MONITOR_LIBS (libbpf). Objects of the user side
# depend on the skeleton and get MONITOR_CPPFLAGS; MONITOR_OBJ maps a source to its object and
# defaults to this repository's $(BUILD)/obj/%.o layout.

BPFTOOL ?= bpftool
BPF_CLANG ?= clang
LLVM_STRIP ?= llvm-strip
VMLINUX_BTF ?= /sys/kernel/btf/vmlinux
# -mcpu=v3: 32-bit sub-registers and atomics, so the verifier keeps the bounds clang computes.
BPF_CFLAGS ?= -g -O2 -target bpf -mcpu=v3 -D__TARGET_ARCH_x86 -Wall -Werror
# Where "bpf/monitor_events.h" is found: the repository root by default; the top-level Makefile
# passes bpf/'s include tree (layers.conf: bpf includes nothing else) and its stamp.
MONITOR_BPF_INCLUDE ?= -I.
MONITOR_BPF_INCLUDE_DEPS ?=

MONITOR_BPF_DIR := $(BUILD)/bpf
MONITOR_VMLINUX := $(MONITOR_BPF_DIR)/vmlinux.h
MONITOR_BPF_OBJ := $(MONITOR_BPF_DIR)/monitor.bpf.o
MONITOR_SKEL := $(MONITOR_BPF_DIR)/monitor.skel.h
MONITOR_BPF_SRCS := bpf/monitor.bpf.c $(wildcard bpf/*.bpf.h) bpf/monitor_events.h

MONITOR_USER_SRCS := $(wildcard daemon/monitor/*.cpp)
MONITOR_TEST_SRCS := $(wildcard tests/monitor/*.cpp)
MONITOR_BENCH_SRC := bench/monitor_bench.cpp
MONITOR_CPPFLAGS := -I$(MONITOR_BPF_DIR) $(shell pkg-config --cflags libbpf 2>/dev/null)
MONITOR_LIBS := $(shell pkg-config --libs libbpf 2>/dev/null || echo -lbpf)

MONITOR_OBJ ?= $(patsubst %.cpp,$(BUILD)/obj/%.o,$(1))
MONITOR_OBJS := $(call MONITOR_OBJ,$(MONITOR_USER_SRCS) $(MONITOR_TEST_SRCS) $(MONITOR_BENCH_SRC))

# Regenerated only when missing: CO-RE relocates the programs to whatever kernel loads them.
$(MONITOR_VMLINUX):
	@mkdir -p $(dir $@)
	$(BPFTOOL) btf dump file $(VMLINUX_BTF) format c > $@.tmp && mv $@.tmp $@

$(MONITOR_BPF_OBJ): $(MONITOR_BPF_SRCS) $(MONITOR_VMLINUX) | $(MONITOR_BPF_INCLUDE_DEPS)
	$(BPF_CLANG) $(BPF_CFLAGS) -I$(MONITOR_BPF_DIR) $(MONITOR_BPF_INCLUDE) -c $< -o $@
	$(LLVM_STRIP) -g $@

$(MONITOR_SKEL): $(MONITOR_BPF_OBJ)
	$(BPFTOOL) gen skeleton $< name monitor_bpf > $@.tmp && mv $@.tmp $@

$(MONITOR_OBJS): $(MONITOR_SKEL)
$(MONITOR_OBJS): ALL_CXXFLAGS += $(MONITOR_CPPFLAGS)
