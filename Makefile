# Codex Vault build. `make run` and `make check` are the two entry points (see README.md).
# Each module directory is globbed, so adding a file to a module needs no edit here.

PREFIX ?= /usr/local
DESTDIR ?=
BINDIR ?= $(PREFIX)/bin
SBINDIR ?= $(PREFIX)/sbin
BUILD ?= build
JOBS ?= $(shell nproc 2>/dev/null || echo 2)

CXX ?= g++
# `make` alone builds the binaries (dh_auto_build runs it with -jN; `make install` alone is serial).
.DEFAULT_GOAL := all
# Quiet by default so warnings stand out; `make V=1` shows the full commands.
V ?= 0
Q := $(if $(filter 1,$(V)),,@)
CXXSTD := -std=c++20
WARNINGS := -Wall -Wextra -Wpedantic -Wshadow -Wconversion -Wno-sign-conversion -Werror=return-type
HARDENING := -fstack-protector-strong -D_FORTIFY_SOURCE=2 -fPIE -fstack-clash-protection -fcf-protection
CXXFLAGS ?= -O2 -g
# No -I. here: each folder compiles against the include tree of its layer (below).
ALL_CXXFLAGS := $(CXXSTD) $(WARNINGS) $(HARDENING) $(CXXFLAGS) -MMD -MP
LDHARDENING := -pie -Wl,-z,relro,-z,now -Wl,--as-needed

pkg_cflags = $(shell pkg-config --cflags $(1) 2>/dev/null)
pkg_libs = $(shell pkg-config --libs $(1) 2>/dev/null)
# System headers are not layers; every object sees the same ones.
SYSTEM_CFLAGS := $(call pkg_cflags,libsystemd libsodium libseccomp libcap tomlplusplus criterion)

obj = $(patsubst %.cpp,$(BUILD)/obj/%.o,$(1))
srcs = $(wildcard $(addsuffix /*.cpp,$(1)))

# ---- layers -------------------------------------------------------------------------------------
# layers.conf says which folders each folder may include. scripts/layers.sh farm builds, per layer,
# an include tree of symlinks to exactly those folders (transitively); an object is compiled with
# -I of its own layer's tree and no other project path, so a wrong-way include does not compile.
LAYER_NAMES := $(shell scripts/layers.sh names)
INCLUDE_FARM := $(BUILD)/inc/.stamp
$(INCLUDE_FARM): layers.conf scripts/layers.sh
	@mkdir -p $(BUILD)
	$(Q)scripts/layers.sh farm $(BUILD)
	@touch $@
# Pattern-specific variables: make picks the most specific pattern (daemon/store over daemon).
$(foreach layer,$(LAYER_NAMES),$(eval $(BUILD)/obj/$(layer)/%.o: LAYER_INCLUDE := -I$(BUILD)/inc/$(subst /,__,$(layer))))

$(BUILD)/obj/%.o: %.cpp | $(INCLUDE_FARM)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CXX     $<")
	$(Q)$(CXX) $(ALL_CXXFLAGS) $(LAYER_INCLUDE) $(SYSTEM_CFLAGS) -c $< -o $@

# ---- the eBPF monitor: vmlinux.h, the BPF object and its skeleton (bpf/monitor.mk) -------------
# The programs compile against bpf/'s include tree, like every other layer.
MONITOR_BPF_INCLUDE := -I$(BUILD)/inc/bpf
MONITOR_BPF_INCLUDE_DEPS := $(INCLUDE_FARM)
include bpf/monitor.mk

# ---- libraries, bottom up (a static library per layer; link order is top first) ---------------
define library
$(1)_SRCS := $(2)
$(1)_LIB := $(BUILD)/lib/lib$(1).a
$$($(1)_LIB): $$(call obj,$(2))
	@mkdir -p $$(dir $$@)
	@$$(if $$(Q),echo "  AR      $$@")
	$$(Q)rm -f $$@ && ar rcs $$@ $$^
endef

$(eval $(call library,fileio,$(call srcs,lib/fileio)))
$(eval $(call library,log,$(call srcs,lib/log)))
$(eval $(call library,auditcore,$(call srcs,lib/auditcore)))
$(eval $(call library,policy,$(call srcs,policy)))
$(eval $(call library,redact,$(call srcs,lib/redact)))
# The eBPF monitor's loader is a library of its own (bpf/monitor.mk: its objects need the
# generated skeleton, and it links libbpf); the daemon's archive comes before it on link lines.
$(eval $(call library,monitor,$(MONITOR_USER_SRCS)))
$(eval $(call library,daemon,$(filter-out daemon/main.cpp daemon/monitor/%,$(call srcs,daemon daemon/*))))
$(eval $(call library,cli,$(filter-out cli/vaultctl.cpp,$(call srcs,cli))))

FILEIO_LINK := $(fileio_LIB)
LOG_LINK := $(log_LIB) $(call pkg_libs,libsystemd)
AUDITCORE_LINK := $(auditcore_LIB) $(LOG_LINK) $(FILEIO_LINK) $(call pkg_libs,libsodium)
POLICY_LINK := $(policy_LIB) $(call pkg_libs,tomlplusplus)
REDACT_LINK := $(redact_LIB)
MONITOR_LINK := $(monitor_LIB) $(LOG_LINK) $(FILEIO_LINK) $(MONITOR_LIBS)
DAEMON_LINK := $(daemon_LIB) $(MONITOR_LINK) $(redact_LIB) $(AUDITCORE_LINK) $(POLICY_LINK) \
	$(call pkg_libs,libsystemd libsodium libseccomp libcap tomlplusplus libcurl openssl) \
	$(BUILD)/lib/libscan.a $(call pkg_libs,libhs libpcre2-8 libsodium)
CLI_LINK := $(cli_LIB) $(redact_LIB) $(AUDITCORE_LINK) $(POLICY_LINK) $(call pkg_libs,libsystemd libsodium libmicrohttpd)
# Link lines keep only the archives as prerequisites.
archives = $(filter %.a,$(1))

DAEMON_BIN := $(BUILD)/codex-vaultd
CLI_BIN := $(BUILD)/vaultctl

.PHONY: all deps check test unit-test integration-test monitor-test fuzz-replay fuzz run bench lint format install clean deb rpm unit-check e2e
.PHONY: slow-test

all: $(DAEMON_BIN) $(CLI_BIN)

deps:
	@packaging/install-deps.sh --if-missing

$(DAEMON_BIN): $(call obj,daemon/main.cpp) $(call archives,$(DAEMON_LINK))
	@$(if $(Q),echo "  LINK    $@")
	$(Q)$(CXX) $(LDHARDENING) -o $@ $(call obj,daemon/main.cpp) $(DAEMON_LINK)

# vaultctl links the pure policy library for `policy check` (validation without the daemon) and
# the audit core for `audit verify` / `audit tail`; never the daemon.
$(CLI_BIN): $(call obj,cli/vaultctl.cpp) $(call archives,$(CLI_LINK))
	@$(if $(Q),echo "  LINK    $@")
	$(Q)$(CXX) $(LDHARDENING) -o $@ $(call obj,cli/vaultctl.cpp) $(CLI_LINK)

# ---- tests: one unit-test binary per library, linking only that library and what is below ------
TEST_LINK := $(call pkg_libs,criterion)
define unit_tests
UNIT_TESTS += $(BUILD)/tests/unit-$(1)
$(BUILD)/tests/unit-$(1): $$(call obj,$$(call srcs,tests/unit/$(1))) $$(call archives,$(2))
	@mkdir -p $$(dir $$@)
	@$$(if $$(Q),echo "  LINK    $$@")
	$$(Q)$$(CXX) $$(LDHARDENING) -o $$@ $$(call obj,$$(call srcs,tests/unit/$(1))) $(2) $$(TEST_LINK)
endef
$(eval $(call unit_tests,fileio,$(FILEIO_LINK)))
$(eval $(call unit_tests,sdbus,$(call pkg_libs,libsystemd)))
$(eval $(call unit_tests,auditcore,$(AUDITCORE_LINK)))
$(eval $(call unit_tests,policy,$(POLICY_LINK)))
$(eval $(call unit_tests,redact,$(REDACT_LINK)))
$(eval $(call unit_tests,daemon,$(DAEMON_LINK)))
$(eval $(call unit_tests,cli,$(CLI_LINK)))
$(eval $(call unit_tests,egress,$(call obj,$(call srcs,tests/tls)) $(DAEMON_LINK) $(call pkg_libs,libmicrohttpd)))
$(BUILD)/tests/unit-egress: $(call obj,$(call srcs,tests/tls))

INTEGRATION_TESTS := $(BUILD)/tests/integration-tests
INTEGRATION_OBJS := $(call obj,$(call srcs,tests/integration tests/support tests/tls))
$(INTEGRATION_TESTS): $(INTEGRATION_OBJS) $(call archives,$(CLI_LINK))
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LINK    $@")
	$(Q)$(CXX) $(LDHARDENING) -o $@ $(INTEGRATION_OBJS) $(CLI_LINK) $(TEST_LINK) $(call pkg_libs,libmicrohttpd)

# The monitor's tests load the real programs into the running kernel: as root they run, otherwise
# (or where the kernel refuses BPF) every test that needs the kernel skips with the reason.
MONITOR_TESTS := $(BUILD)/tests/monitor-tests
$(MONITOR_TESTS): $(call obj,$(MONITOR_TEST_SRCS)) $(call archives,$(MONITOR_LINK))
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LINK    $@")
	$(Q)$(CXX) $(LDHARDENING) -o $@ $(call obj,$(MONITOR_TEST_SRCS)) $(MONITOR_LINK) $(call pkg_libs,libseccomp) \
		$(TEST_LINK)

# ---- benchmarks -----------------------------------------------------------------------------------
# scan_bench waits for lib/scan to become a library.
BENCH_SRCS := $(filter-out bench/scan_bench.cpp,$(wildcard bench/*.cpp))
BENCH_BINS := $(patsubst bench/%.cpp,$(BUILD)/bench/%,$(BENCH_SRCS))
$(BUILD)/bench/%: $(BUILD)/obj/bench/%.o
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LINK    $@")
	$(Q)$(CXX) $(LDHARDENING) -o $@ $< $(BENCH_LINK) $(call pkg_libs,libsystemd) -lpthread

# Benchmarks of pure-core modules link those libraries.
$(BUILD)/bench/audit_verify_bench: $(auditcore_LIB)
$(BUILD)/bench/audit_verify_bench: BENCH_LINK := $(AUDITCORE_LINK)
$(BUILD)/bench/policy_decision_bench: $(policy_LIB)
$(BUILD)/bench/policy_decision_bench: BENCH_LINK := $(POLICY_LINK)
$(BUILD)/bench/redact_bench: $(redact_LIB)
$(BUILD)/bench/redact_bench: BENCH_LINK := $(REDACT_LINK)
$(BUILD)/bench/monitor_bench: $(call archives,$(MONITOR_LINK))
$(BUILD)/bench/monitor_bench: BENCH_LINK := $(MONITOR_LINK)
# The proxy against direct (scripts/mediation-bench.sh's set-up): the CLI library, libcurl clients.
$(BUILD)/bench/proxy_bench: $(call archives,$(CLI_LINK))
$(BUILD)/bench/proxy_bench: BENCH_LINK := $(CLI_LINK) $(call pkg_libs,libcurl libmicrohttpd)
$(BUILD)/bench/mediation_bench: $(call archives,$(CLI_LINK))
$(BUILD)/bench/mediation_bench: BENCH_LINK := $(CLI_LINK) $(call pkg_libs,libcurl libmicrohttpd)
$(BUILD)/bench/inject_bench: $(call archives,$(CLI_LINK))
$(BUILD)/bench/inject_bench: BENCH_LINK := $(CLI_LINK)

# Each fuzz target's corpus, replayed with g++ (no libFuzzer needed) by `make check`; `make fuzz`
# runs libFuzzer with sanitizers for FUZZ_SECONDS per target (new inputs go to build/fuzz/corpus/NAME).
# A target is tests/fuzz/NAME_fuzz.cpp, its seeds tests/fuzz/corpus/CORPUS; one replay binary each,
# since every target defines LLVMFuzzerTestOneInput.
#   fuzz_target NAME,CORPUS,REPLAY-LINK,LIBRARY,PKG-CONFIG-PACKAGES,MORE-SEEDS
define fuzz_target
FUZZ_REPLAYS += $(BUILD)/tests/$(1)-fuzz-replay
FUZZ_REPLAY_RUNS += $(BUILD)/tests/$(1)-fuzz-replay tests/fuzz/corpus/$(2);
$(BUILD)/tests/$(1)-fuzz-replay: $$(call obj,tests/fuzz/$(1)_fuzz.cpp tests/fuzz/replay_main.cpp) $$(call archives,$(3))
	@mkdir -p $$(dir $$@)
	@$$(if $$(Q),echo "  LINK    $$@")
	$$(Q)$$(CXX) $$(LDHARDENING) -o $$@ $$(call obj,tests/fuzz/$(1)_fuzz.cpp tests/fuzz/replay_main.cpp) $(3)

FUZZ_RUNS += $(BUILD)/fuzz/$(1)_fuzz
$(BUILD)/fuzz/$(1)_fuzz: $$($(4)_SRCS) tests/fuzz/$(1)_fuzz.cpp | $$(INCLUDE_FARM)
	@mkdir -p $$(dir $$@) $(BUILD)/fuzz/corpus/$(1)
	$$(FUZZ_CXX) $$(CXXSTD) -g -O1 -fsanitize=fuzzer,address,undefined -I$(BUILD)/inc/tests__fuzz $$(call pkg_cflags,$(5)) $$^ $$(call pkg_libs,$(5)) -o $$@
FUZZ_COMMANDS += UBSAN_OPTIONS=halt_on_error=1 $(BUILD)/fuzz/$(1)_fuzz -max_total_time=$$(FUZZ_SECONDS) -max_len=4096 -rss_limit_mb=2048 $(BUILD)/fuzz/corpus/$(1) tests/fuzz/corpus/$(2) $(6) &&
endef

FUZZ_CXX ?= clang++
FUZZ_SECONDS ?= 60
#                          NAME          CORPUS         REPLAY LINK     LIBRARY PKG-CONFIG    MORE SEEDS
$(eval $(call fuzz_target,policy_parser,policy_parser,$(POLICY_LINK),policy,tomlplusplus,policy/examples))
$(eval $(call fuzz_target,redact,redact,$(REDACT_LINK),redact,,))

fuzz-replay: $(FUZZ_REPLAYS)
	@set -e; $(FUZZ_REPLAY_RUNS)

fuzz: deps $(FUZZ_RUNS)
	$(FUZZ_COMMANDS) true

# Criterion runs each test in its own process; --jobs=2 matches the CI machine's two cores.
# --verbose lists every test, and every skipped test with its reason, in the log.
CRITERION_FLAGS ?= --jobs=2 --verbose

# The end-to-end run in a real systemd comes last: it needs the .deb the earlier steps vouch for.
check: deps
	@$(MAKE) --no-print-directory -j$(JOBS) all $(UNIT_TESTS) $(INTEGRATION_TESTS) $(FUZZ_REPLAYS) $(MONITOR_TESTS)
	@$(MAKE) --no-print-directory test
	@$(MAKE) --no-print-directory slow-test
	@E2E_PREBUILT=$(abspath $(BUILD)) scripts/e2e.sh

test: unit-test fuzz-replay monitor-test integration-test

unit-test: $(UNIT_TESTS)
	@set -e; for tests in $(UNIT_TESTS); do echo "== $$tests"; $$tests $(CRITERION_FLAGS); done

monitor-test: $(MONITOR_TESTS)
	$(MONITOR_TESTS) $(CRITERION_FLAGS)

integration-test: $(INTEGRATION_TESTS) $(DAEMON_BIN) $(CLI_BIN)
	CODEX_VAULT_BUILD=$(abspath $(BUILD)) CODEX_VAULT_SOURCE=$(CURDIR) $(INTEGRATION_TESTS) $(CRITERION_FLAGS)

# The slow tier (still part of `make check`): integration suites named *_slow, which skip
# themselves unless CODEX_VAULT_SLOW_TESTS=1 (one million files through an ingest scan: ~1 min).
# --verbose lists every suite and test the filter leaves out ("Test is disabled"): those lines are
# dropped from the log shown (a skip of a slow test itself, with its reason, stays).
slow-test: $(INTEGRATION_TESTS) $(DAEMON_BIN) $(CLI_BIN)
	@CODEX_VAULT_SLOW_TESTS=1 CODEX_VAULT_BUILD=$(abspath $(BUILD)) CODEX_VAULT_SOURCE=$(CURDIR) \
		$(INTEGRATION_TESTS) $(CRITERION_FLAGS) --filter '*_slow/*' >$(BUILD)/slow-test.log 2>&1; \
		status=$$?; awk '!/: Test is disabled$$/ && !(/^\[====\] Running / && !/_slow:$$/)' $(BUILD)/slow-test.log; \
		exit $$status

run: deps
	@$(MAKE) --no-print-directory -j$(JOBS) all
	@scripts/run-dev.sh "$(abspath $(BUILD))" $(RUN_ARGS)

bench: deps
	@$(MAKE) --no-print-directory -j$(JOBS) all $(BENCH_BINS)
	@scripts/run-bench.sh "$(abspath $(BUILD))"
	@for bench in $(filter-out %/bus_bench %/noop_server %/fdatasync_bench %/redact_bench %/monitor_bench %/mediation_bench %/proxy_bench %/inject_bench,$(BENCH_BINS)); do echo; "$$bench" || exit 1; done
	@echo; scripts/mediation-bench.sh "$(abspath $(BUILD))"
	@echo; scripts/inject-bench.sh "$(abspath $(BUILD))"

LINT_SRCS = $(shell { git ls-files '*.cpp' '*.hpp'; git ls-files --others --exclude-standard '*.cpp' '*.hpp'; } 2>/dev/null | sort -u)

lint: deps $(MONITOR_SKEL)
	@scripts/lint.sh $(BUILD)

format:
	clang-format -i $(LINT_SRCS)

# Packages are built from a copy of the tree, so the working tree stays clean.
deb: deps
	@scripts/package-deb.sh "$(abspath $(BUILD))/packages"

rpm: deps
	@scripts/package-rpm.sh "$(abspath $(BUILD))/packages"

# systemd-analyze verify and the unit's exposure score (target: 1.5 or lower).
unit-check: all
	@scripts/unit-check.sh "$(abspath $(BUILD))"

# The built .deb in a real systemd with a real system bus (systemd-nspawn; needs root).
e2e: deps
	@scripts/e2e.sh

install: all
	install -D -m 0755 $(DAEMON_BIN) $(DESTDIR)$(SBINDIR)/codex-vaultd
	install -D -m 0755 $(CLI_BIN) $(DESTDIR)$(BINDIR)/vaultctl

clean:
	rm -rf $(BUILD)

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)

# lib/scan and daemon/ingest: the ingest scanner, its walker, tests, fuzz target and benchmark.
include lib/scan/scan.mk
