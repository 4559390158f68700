# Codex Vault build. `make run` and `make check` are the two entry points (see README.md).
# Each module directory is globbed, so adding a file to a module needs no edit here.

PREFIX ?= /usr/local
DESTDIR ?=
BINDIR ?= $(PREFIX)/bin
SBINDIR ?= $(PREFIX)/sbin
BUILD ?= build
JOBS ?= $(shell nproc 2>/dev/null || echo 2)

CXX ?= g++
# Quiet by default so warnings stand out; `make V=1` shows the full commands.
V ?= 0
Q := $(if $(filter 1,$(V)),,@)
CXXSTD := -std=c++20
WARNINGS := -Wall -Wextra -Wpedantic -Wshadow -Wconversion -Wno-sign-conversion -Werror=return-type
HARDENING := -fstack-protector-strong -D_FORTIFY_SOURCE=2 -fPIE -fstack-clash-protection -fcf-protection
CXXFLAGS ?= -O2 -g
ALL_CXXFLAGS := $(CXXSTD) $(WARNINGS) $(HARDENING) $(CXXFLAGS) -I. -MMD -MP
LDHARDENING := -pie -Wl,-z,relro,-z,now -Wl,--as-needed

DAEMON_PKGS := libsystemd libsodium libseccomp libcap tomlplusplus
CLI_PKGS := libsystemd libsodium
TEST_PKGS := criterion

pkg_cflags = $(shell pkg-config --cflags $(1) 2>/dev/null)
pkg_libs = $(shell pkg-config --libs $(1) 2>/dev/null)

# Pure policy library (no syscalls), the daemon's modules, and the CLI's client library.
POLICY_SRCS := $(wildcard policy/*.cpp)
DAEMON_LIB_SRCS := $(filter-out daemon/main.cpp,$(wildcard daemon/*.cpp daemon/*/*.cpp))
CLI_LIB_SRCS := $(filter-out cli/vaultctl.cpp,$(wildcard cli/*.cpp))
# The audit log's pure core and folder reader: what `vaultctl audit verify/tail` (cli/audit_verify.cpp)
# needs without linking the daemon.
AUDIT_CORE_SRCS := $(addprefix daemon/audit/,record.cpp chain.cpp checkpoint.cpp verifier.cpp segment_dir.cpp \
	log_reader.cpp) daemon/store/state_files.cpp
UNIT_TEST_SRCS := $(wildcard tests/unit/*.cpp)
INTEGRATION_TEST_SRCS := $(wildcard tests/integration/*.cpp tests/support/*.cpp)
BENCH_SRCS := $(wildcard bench/*.cpp)

obj = $(patsubst %.cpp,$(BUILD)/obj/%.o,$(1))

DAEMON_BIN := $(BUILD)/codex-vaultd
CLI_BIN := $(BUILD)/vaultctl
UNIT_TESTS := $(BUILD)/tests/unit-tests
INTEGRATION_TESTS := $(BUILD)/tests/integration-tests
BENCH_BINS := $(patsubst bench/%.cpp,$(BUILD)/bench/%,$(BENCH_SRCS))

DAEMON_LIBS := $(call pkg_libs,$(DAEMON_PKGS))
CLI_LIBS := $(call pkg_libs,$(CLI_PKGS))
TEST_LIBS := $(call pkg_libs,$(TEST_PKGS))

.PHONY: all deps check test unit-test integration-test fuzz-replay fuzz run bench lint format install clean deb rpm unit-check e2e

all: $(DAEMON_BIN) $(CLI_BIN)

deps:
	@packaging/install-deps.sh --if-missing

$(BUILD)/obj/%.o: %.cpp
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CXX     $<")
	$(Q)$(CXX) $(ALL_CXXFLAGS) $(call pkg_cflags,$(DAEMON_PKGS) $(TEST_PKGS)) -c $< -o $@

$(DAEMON_BIN): $(call obj,daemon/main.cpp $(DAEMON_LIB_SRCS) $(POLICY_SRCS))
	@$(if $(Q),echo "  LINK    $@")
	$(Q)$(CXX) $(LDHARDENING) -o $@ $^ $(DAEMON_LIBS)

# vaultctl links the pure policy library for `policy check` (validation without the daemon) and
# the audit core for `audit verify` / `audit tail`.
$(CLI_BIN): $(call obj,cli/vaultctl.cpp $(CLI_LIB_SRCS) $(AUDIT_CORE_SRCS) $(POLICY_SRCS))
	@$(if $(Q),echo "  LINK    $@")
	$(Q)$(CXX) $(LDHARDENING) -o $@ $^ $(CLI_LIBS) $(call pkg_libs,tomlplusplus)

$(UNIT_TESTS): $(call obj,$(UNIT_TEST_SRCS) $(DAEMON_LIB_SRCS) $(POLICY_SRCS) $(CLI_LIB_SRCS))
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LINK    $@")
	$(Q)$(CXX) $(LDHARDENING) -o $@ $^ $(DAEMON_LIBS) $(CLI_LIBS) $(TEST_LIBS)

$(INTEGRATION_TESTS): $(call obj,$(INTEGRATION_TEST_SRCS) $(CLI_LIB_SRCS) $(AUDIT_CORE_SRCS))
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LINK    $@")
	$(Q)$(CXX) $(LDHARDENING) -o $@ $^ $(CLI_LIBS) $(TEST_LIBS)

$(BUILD)/bench/%: $(BUILD)/obj/bench/%.o
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LINK    $@")
	$(Q)$(CXX) $(LDHARDENING) -o $@ $^ $(CLI_LIBS) $(BENCH_LIBS) -lpthread

# Benchmarks of pure-core modules link those modules' objects.
$(BUILD)/bench/audit_verify_bench: $(call obj,daemon/audit/record.cpp daemon/audit/chain.cpp daemon/audit/checkpoint.cpp daemon/audit/verifier.cpp)
$(BUILD)/bench/policy_decision_bench: $(call obj,$(POLICY_SRCS))
$(BUILD)/bench/policy_decision_bench: BENCH_LIBS := $(call pkg_libs,tomlplusplus)

# The policy parser's fuzz corpus, replayed with g++ (no libFuzzer needed) by `make check`;
# `make fuzz` runs libFuzzer with sanitizers for FUZZ_SECONDS (new inputs go to build/fuzz/corpus).
FUZZ_REPLAY := $(BUILD)/tests/policy-fuzz-replay
FUZZ_CORPUS := tests/fuzz/corpus/policy_parser
$(FUZZ_REPLAY): $(call obj,tests/fuzz/policy_parser_fuzz.cpp tests/fuzz/replay_main.cpp $(POLICY_SRCS))
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LINK    $@")
	$(Q)$(CXX) $(LDHARDENING) -o $@ $^ $(call pkg_libs,tomlplusplus)

fuzz-replay: $(FUZZ_REPLAY)
	$(FUZZ_REPLAY) $(FUZZ_CORPUS)

FUZZ_CXX ?= clang++
FUZZ_SECONDS ?= 60
$(BUILD)/fuzz/policy_parser_fuzz: $(POLICY_SRCS) tests/fuzz/policy_parser_fuzz.cpp
	@mkdir -p $(dir $@) $(BUILD)/fuzz/corpus
	$(FUZZ_CXX) $(CXXSTD) -g -O1 -fsanitize=fuzzer,address,undefined -I. $(call pkg_cflags,tomlplusplus) $^ $(call pkg_libs,tomlplusplus) -o $@

fuzz: deps $(BUILD)/fuzz/policy_parser_fuzz
	UBSAN_OPTIONS=halt_on_error=1 $(BUILD)/fuzz/policy_parser_fuzz -max_total_time=$(FUZZ_SECONDS) -max_len=4096 \
		-rss_limit_mb=2048 $(BUILD)/fuzz/corpus $(FUZZ_CORPUS) policy/examples

# Criterion runs each test in its own process; --jobs=2 matches the CI machine's two cores.
# --verbose lists every test, and every skipped test with its reason, in the log.
CRITERION_FLAGS ?= --jobs=2 --verbose

# The end-to-end run in a real systemd comes last: it needs the .deb the earlier steps vouch for.
check: deps
	@$(MAKE) --no-print-directory -j$(JOBS) all $(UNIT_TESTS) $(INTEGRATION_TESTS) $(FUZZ_REPLAY)
	@$(MAKE) --no-print-directory test
	@scripts/e2e.sh

test: unit-test fuzz-replay integration-test

unit-test: $(UNIT_TESTS)
	$(UNIT_TESTS) $(CRITERION_FLAGS)

integration-test: $(INTEGRATION_TESTS) $(DAEMON_BIN) $(CLI_BIN)
	CODEX_VAULT_BUILD=$(abspath $(BUILD)) $(INTEGRATION_TESTS) $(CRITERION_FLAGS)

run: deps
	@$(MAKE) --no-print-directory -j$(JOBS) all
	@scripts/run-dev.sh "$(abspath $(BUILD))" $(RUN_ARGS)

bench: deps
	@$(MAKE) --no-print-directory -j$(JOBS) all $(BENCH_BINS)
	@scripts/run-bench.sh "$(abspath $(BUILD))"
	@for bench in $(filter-out %/bus_bench %/noop_server %/fdatasync_bench,$(BENCH_BINS)); do echo; "$$bench" || exit 1; done

LINT_SRCS = $(shell { git ls-files '*.cpp' '*.hpp'; git ls-files --others --exclude-standard '*.cpp' '*.hpp'; } 2>/dev/null | sort -u)

lint: deps
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
