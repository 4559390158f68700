# The ingest scanner's build, for `include lib/scan/scan.mk` at the end of the top-level Makefile
# (run from the repository root; it uses that Makefile's macros and variables: library,
# unit_tests, obj, srcs, BUILD, LOG_LINK, FILEIO_LINK, TEST_LINK, ...).
#
#   lib/scan      -> $(scan_LIB)    the pure matcher (Vectorscan first stage, PCRE2 second stage)
#                                   and the built-in rules (lib/scan/rules.toml, embedded)
#   daemon/ingest -> $(ingest_LIB)  the worker's file walker (openat2 beneath a directory fd)
#   tests/unit/scan, tests/unit/ingest -> $(BUILD)/tests/unit-scan, unit-ingest (in UNIT_TESTS)
#   tests/fuzz/scan_fuzz.cpp -> $(BUILD)/tests/scan-fuzz-replay (run by `make fuzz-replay`) and,
#                               with clang and libFuzzer, $(BUILD)/fuzz/scan_fuzz (`make fuzz`,
#                               `make fuzz-scan`)
#   bench/scan_bench.cpp     -> $(BUILD)/bench/scan_bench (run by `make bench`)

SCAN_PKGS := libhs libpcre2-8 libsodium tomlplusplus
SCAN_CFLAGS := $(call pkg_cflags,$(SCAN_PKGS))

# The rules file is compiled in as a string, so the scanner needs no file to start.
SCAN_RULES_SRC := $(BUILD)/gen/lib/scan/builtin_rules.cpp
SCAN_RULES_OBJ := $(BUILD)/obj/lib/scan/builtin_rules.o

$(eval $(call library,scan,$(call srcs,lib/scan)))
$(scan_LIB): $(SCAN_RULES_OBJ)

$(SCAN_RULES_SRC): lib/scan/rules.toml lib/scan/embed_rules.sh
	@mkdir -p $(dir $@)
	$(Q)sh lib/scan/embed_rules.sh lib/scan/rules.toml >$@.tmp && mv $@.tmp $@

# Same recipe as the tree's pattern rule; the source just lives in the build folder.
$(SCAN_RULES_OBJ): $(SCAN_RULES_SRC) | $(INCLUDE_FARM)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CXX     $<")
	$(Q)$(CXX) $(ALL_CXXFLAGS) $(LAYER_INCLUDE) $(SYSTEM_CFLAGS) -c $< -o $@

$(eval $(call library,ingest,$(call srcs,daemon/ingest)))

SCAN_OBJS := $(call obj,$(call srcs,lib/scan daemon/ingest tests/unit/scan tests/unit/ingest) \
	tests/fuzz/scan_fuzz.cpp bench/scan_bench.cpp) $(SCAN_RULES_OBJ)
$(SCAN_OBJS): ALL_CXXFLAGS += $(SCAN_CFLAGS)

SCAN_LINK := $(scan_LIB) $(call pkg_libs,$(SCAN_PKGS))
INGEST_LINK := $(ingest_LIB) $(SCAN_LINK) $(LOG_LINK) $(FILEIO_LINK) $(call pkg_libs,libseccomp libsodium)

$(eval $(call unit_tests,scan,$(SCAN_LINK)))
$(eval $(call unit_tests,ingest,$(INGEST_LINK)))
# unit-test's prerequisites were expanded before this file was read; its recipe was not.
unit-test: $(BUILD)/tests/unit-scan $(BUILD)/tests/unit-ingest

# The fuzz target, with the tree's fuzz_target macro: its corpus replayed with g++ by
# `make fuzz-replay` (and so `make check`), libFuzzer with sanitizers by `make fuzz` (or this one
# alone: `make fuzz-scan`). The libFuzzer build also compiles the generated rules source.
$(eval $(call fuzz_target,scan,scan,$(SCAN_LINK),scan,$(SCAN_PKGS),))
$(BUILD)/fuzz/scan_fuzz: $(SCAN_RULES_SRC)
# fuzz-replay's and fuzz's prerequisites were expanded before this file was read; their recipes
# (FUZZ_REPLAY_RUNS, FUZZ_COMMANDS) were not.
fuzz-replay: $(BUILD)/tests/scan-fuzz-replay
fuzz: $(BUILD)/fuzz/scan_fuzz

.PHONY: fuzz-scan
fuzz-scan: deps $(BUILD)/fuzz/scan_fuzz
	UBSAN_OPTIONS=halt_on_error=1 $(BUILD)/fuzz/scan_fuzz -max_total_time=$(FUZZ_SECONDS) -max_len=65536 \
		-rss_limit_mb=2048 $(BUILD)/fuzz/corpus/scan tests/fuzz/corpus/scan

# `make bench` builds and runs every program in BENCH_BINS (its recipe reads the list late);
# this one walks a generated corpus through the ingest walker and the scanner.
BENCH_BINS += $(BUILD)/bench/scan_bench
$(BUILD)/bench/scan_bench: $(call archives,$(INGEST_LINK))
$(BUILD)/bench/scan_bench: BENCH_LINK := $(INGEST_LINK)
