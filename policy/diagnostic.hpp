// Where something came from in a policy file, and an error that says so:
// "policy.d/10-agents.toml:12:7: principal \"agents\": unknown key \"uidd\"".
#pragma once

#include <cstdint>
#include <string>

namespace codexvault::policy {

struct SourceLocation {
    std::string file;  // the document name the caller gave; empty for runtime grants
    std::uint32_t line = 0;
    std::uint32_t column = 0;
    [[nodiscard]] bool known() const noexcept { return !file.empty(); }
    [[nodiscard]] std::string to_string() const;  // "file:line:column"
};

struct Diagnostic {
    SourceLocation where;
    std::string message;
    [[nodiscard]] std::string to_string() const;  // "file:line:column: message"
};

}  // namespace codexvault::policy
