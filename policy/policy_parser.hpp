// Loading the policy files. The caller reads /etc/codex-vault/policy.d/*.toml and hands over
// (name, content) pairs; this library does no I/O. All or nothing: one error anywhere and there
// is no PolicySet, only diagnostics that name the file, line and column. Never throws for bad
// input (huge, deeply nested, malformed or non-UTF-8 documents are all diagnostics).
#pragma once

#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "policy/diagnostic.hpp"
#include "policy/policy_set.hpp"

namespace codexvault::policy {

struct PolicyDocument {
    std::string_view name;  // shown in diagnostics, e.g. "policy.d/10-agents.toml"
    std::string_view content;
};

struct LoadResult {
    std::shared_ptr<const PolicySet> policy;  // null when there were errors
    std::vector<Diagnostic> errors;           // at most limits::kMaxErrors, then a final "too many errors"
    [[nodiscard]] bool ok() const noexcept { return policy != nullptr; }
    [[nodiscard]] std::string error_text() const;  // one diagnostic per line
};

// Documents are processed in the order given (the daemon sorts file names); that order decides
// which of two equally good grants is used first.
LoadResult load_policy(std::span<const PolicyDocument> documents);

}  // namespace codexvault::policy
