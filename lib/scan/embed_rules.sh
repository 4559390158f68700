#!/bin/sh
# Writes a C++ source that embeds a rules file as a raw string literal, so the scanner needs no
# file I/O to get its rules:
#
#   lib/scan/embed_rules.sh lib/scan/rules.toml > build/gen/lib/scan/builtin_rules.cpp
#
# It defines codexvault::scan::builtin_rules_text() (lib/scan/builtin_rules.hpp). Fails if the
# rules file contains the literal's closing delimiter.
set -eu
if [ $# -ne 1 ] || [ ! -r "$1" ]; then
    echo "usage: $0 RULES_FILE" >&2
    exit 2
fi
delimiter=cv_rules_toml
if grep -q ")$delimiter\"" "$1"; then
    echo "$0: $1 contains the raw-string delimiter )$delimiter\"" >&2
    exit 1
fi
printf '// Generated from %s by lib/scan/embed_rules.sh; do not edit.\n' "$1"
printf '#include "lib/scan/builtin_rules.hpp"\n\nnamespace codexvault::scan {\n\n'
printf 'std::string_view builtin_rules_text() noexcept\n{\n'
printf '    static constexpr char kText[] = R"%s(' "$delimiter"
cat "$1"
printf ')%s";\n' "$delimiter"
printf '    return {kText, sizeof kText - 1};\n}\n\n}  // namespace codexvault::scan\n'
