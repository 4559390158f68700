#!/usr/bin/env bash
# Static checks for Codex Vault; the body of `make lint`.
#
#   scripts/lint.sh BUILD_DIR
#
#   1. format    clang-format --dry-run --Werror on every tracked or new (untracked, not ignored)
#                *.cpp / *.hpp file (.clang-format); fix with `make format`
#   2. tidy      clang-tidy (.clang-tidy) on the .cpp files of common/ lib/ daemon/ cli/ policy/
#   3. cppcheck  cppcheck on the same folders
#   4. layers    every include stays within its layer (layers.conf, scripts/layers.sh check), and
#                the checker itself rejects the deliberate violation in tests/lint/layer-violation
#
# All three steps always run; one summary line each; exit 1 if any failed, 2 on bad usage.
# Logs and cppcheck's cache go to BUILD_DIR/lint/.
# Environment: LINT_JOBS  parallel clang-tidy/cppcheck jobs (default 2)
set -euo pipefail
export LC_ALL=C

[[ $# -eq 1 && -n $1 ]] || {
    echo "usage: $0 BUILD_DIR" >&2
    exit 2
}
BUILD_DIR=$1
[[ $BUILD_DIR == /* ]] || BUILD_DIR=$PWD/$BUILD_DIR
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
JOBS=${LINT_JOBS:-2}
[[ $JOBS =~ ^[1-9][0-9]*$ ]] || {
    echo "lint: LINT_JOBS must be a positive number, not '$JOBS'" >&2
    exit 2
}
LOG_DIR=$BUILD_DIR/lint
rm -rf "$LOG_DIR/tidy"
mkdir -p "$LOG_DIR/tidy" "$LOG_DIR/cppcheck-cache"

ANALYSED_DIRS=(common lib daemon cli policy)
SUMMARY=()
FAILED=0

pass() { SUMMARY+=("lint: $(printf '%-9s' "$1") OK   $2"); }
fail()
{
    SUMMARY+=("lint: $(printf '%-9s' "$1") FAIL $2")
    FAILED=1
}
have() { command -v "$1" >/dev/null 2>&1; }

# Tracked files plus new files not yet added (so lint works before a commit), minus deleted ones.
source_files()  # source_files PATHSPEC...
{
    {
        git ls-files -z -- "$@"
        git ls-files -z --others --exclude-standard -- "$@"
    } | sort -zu | while IFS= read -r -d '' f; do
        [[ -f $f ]] && printf '%s\n' "$f"
    done
}

if ! git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    echo "lint: $ROOT is not a git checkout; the file lists come from git" >&2
    exit 1
fi

mapfile -t FORMAT_FILES < <(source_files '*.cpp' '*.hpp')
analysed_specs=()
for d in "${ANALYSED_DIRS[@]}"; do
    analysed_specs+=("$d/*.cpp")
done
mapfile -t TIDY_FILES < <(source_files "${analysed_specs[@]}")
EXISTING_DIRS=()
for d in "${ANALYSED_DIRS[@]}"; do
    [[ -d $d ]] && EXISTING_DIRS+=("$d")
done

# ---- 1. clang-format --------------------------------------------------------------------------
echo "== lint 1/4: clang-format (${#FORMAT_FILES[@]} files)"
if ! have clang-format; then
    fail format "clang-format not found (run 'make deps')"
elif ((${#FORMAT_FILES[@]} == 0)); then
    pass format "no files"
else
    bad=()
    for f in "${FORMAT_FILES[@]}"; do
        if ! clang-format --dry-run --Werror "$f" >"$LOG_DIR/format.one" 2>&1; then
            bad+=("$f")
            cat "$LOG_DIR/format.one" >>"$LOG_DIR/format.log"
        fi
    done
    rm -f "$LOG_DIR/format.one"
    if ((${#bad[@]} == 0)); then
        rm -f "$LOG_DIR/format.log"
        pass format "${#FORMAT_FILES[@]} files formatted"
    else
        head -n 40 "$LOG_DIR/format.log"
        printf '  needs clang-format: %s\n' "${bad[@]}"
        rm -f "$LOG_DIR/format.log"
        fail format "${#bad[@]} of ${#FORMAT_FILES[@]} files not formatted (run 'make format' or clang-format -i FILE)"
    fi
fi

# ---- 2. clang-tidy ----------------------------------------------------------------------------
echo "== lint 2/4: clang-tidy (${#TIDY_FILES[@]} files, $JOBS jobs)"
if ! have clang-tidy; then
    fail tidy "clang-tidy not found (run 'make deps')"
elif ((${#TIDY_FILES[@]} == 0)); then
    pass tidy "no files"
else
    # The Makefile's DAEMON_PKGS: tomlplusplus adds -DTOML_HEADER_ONLY=0, as in the real build.
    # BUILD_DIR/bpf: the generated skeleton daemon/monitor/monitor_load.cpp includes (make lint
    # generates it first).
    TIDY_FLAGS="-std=c++20 -I. -I$BUILD_DIR/bpf $(pkg-config --cflags libsystemd libsodium libseccomp libcap tomlplusplus 2>/dev/null || true)"
    export TIDY_FLAGS TIDY_LOG_DIR="$LOG_DIR/tidy"
    # One log per file, so parallel output does not interleave; a clean file leaves no log.
    # shellcheck disable=SC2016  # the inner script expands its own variables
    printf '%s\0' "${TIDY_FILES[@]}" | xargs -0 -r -n 1 -P "$JOBS" bash -c '
        f=$1
        log=$TIDY_LOG_DIR/${f//\//__}.log
        # shellcheck disable=SC2086
        if clang-tidy --quiet "$f" -- $TIDY_FLAGS >"$log.raw" 2>&1; then
            rm -f "$log.raw"
        else
            grep -v -E "^[0-9]+ warnings? (and [0-9]+ errors? )?generated\.$|^Suppressed [0-9]+ warnings|^Use -header-filter|^Error while processing" \
                "$log.raw" >"$log" || true
            [[ -s $log ]] || echo "clang-tidy failed on $f with no diagnostics" >"$log"
            rm -f "$log.raw"
        fi
    ' _ || true
    mapfile -t tidy_logs < <(find "$LOG_DIR/tidy" -name '*.log' -type f | sort)
    if ((${#tidy_logs[@]} == 0)); then
        pass tidy "${#TIDY_FILES[@]} files clean"
    else
        cat "${tidy_logs[@]}"
        n=$(cat "${tidy_logs[@]}" | grep -c -E ': (warning|error): ' || true)
        fail tidy "$n diagnostic(s) in ${#tidy_logs[@]} of ${#TIDY_FILES[@]} files (logs: $LOG_DIR/tidy/)"
    fi
fi

# ---- 3. cppcheck ------------------------------------------------------------------------------
echo "== lint 3/4: cppcheck (${EXISTING_DIRS[*]:-no folders})"
if ! have cppcheck; then
    fail cppcheck "cppcheck not found (run 'make deps')"
elif ((${#TIDY_FILES[@]} == 0)); then
    pass cppcheck "no files"
else
    if cppcheck --enable=warning,performance,portability --std=c++20 --language=c++ --error-exitcode=1 \
        --inline-suppr --suppress=missingIncludeSystem -I . --quiet -j "$JOBS" \
        --cppcheck-build-dir="$LOG_DIR/cppcheck-cache" \
        --template='{file}:{line}:{column}: {severity}: {message} [{id}]' \
        "${TIDY_FILES[@]}" 2>"$LOG_DIR/cppcheck.log"; then
        pass cppcheck "${#TIDY_FILES[@]} files clean"
    else
        cat "$LOG_DIR/cppcheck.log"
        n=$(grep -c -E ': (error|warning|performance|portability|style|information): ' "$LOG_DIR/cppcheck.log" || true)
        fail cppcheck "$n finding(s) (log: $LOG_DIR/cppcheck.log)"
    fi
fi

# ---- 4. layers -------------------------------------------------------------------------------
echo "== lint 4/4: layers (layers.conf)"
if layer_report=$(scripts/layers.sh check 2>&1); then
    fixture_report=$(scripts/layers.sh check tests/lint/layer-violation 2>&1) && fixture_ok=1 || fixture_ok=0
    if ((fixture_ok)) || [[ $fixture_report != *'base/wrong_way.cpp: includes "top/service.hpp"'* ]]; then
        echo "$fixture_report"
        fail layers "the checker did not reject the deliberate violation in tests/lint/layer-violation"
    else
        pass layers "${layer_report#layers: }"
    fi
else
    echo "$layer_report"
    fail layers "includes that cross a layer the wrong way (see layers.conf)"
fi

echo
printf '%s\n' "${SUMMARY[@]}"
exit "$FAILED"
