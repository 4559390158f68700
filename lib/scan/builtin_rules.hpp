// The rules file compiled into the binary: the text of lib/scan/rules.toml, defined in a source
// generated at build time by lib/scan/embed_rules.sh (see README.md, "Build"). Only programs that
// link the generated file may call this; the library proper takes rules as text.
#pragma once

#include <string_view>

namespace codexvault::scan {

std::string_view builtin_rules_text() noexcept;

}  // namespace codexvault::scan
