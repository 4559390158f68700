// The pipeline's audit step. For now each decision and outcome is one structured line on
// stderr (journald under systemd); the tamper-evident log replaces this sink (issue 4).
#pragma once

#include <string>
#include <string_view>

#include "daemon/identity/subject.hpp"

namespace codexvault::audit {

enum class Decision { Allow, Deny };

struct AuditRecord {
    std::string_view event;   // "decision" or "outcome" or a lifecycle event
    std::string_view action;  // the dispatch table's action
    std::string_view object;  // e.g. a secret name; never a value
    const identity::Subject* subject = nullptr;  // null when the caller could not be identified
    std::string_view sender;                     // unique bus name, always known
    Decision decision = Decision::Deny;
    std::string_view reason;
};

class AuditHook {
public:
    virtual ~AuditHook() = default;
    virtual void record(const AuditRecord& record) = 0;
};

// logfmt on stderr; values are quoted and control characters escaped so a caller-chosen
// string cannot forge a second record.
class StderrAuditHook final : public AuditHook {
public:
    void record(const AuditRecord& record) override;
};

std::string logfmt_quote(std::string_view value);

}  // namespace codexvault::audit
