#include "daemon/audit/audit_hook.hpp"

#include <cstdio>
#include <sstream>

namespace codexvault::audit {

std::string logfmt_quote(std::string_view value)
{
    static constexpr char kHex[] = "0123456789abcdef";
    std::string out = "\"";
    for (const char c : value) {
        const auto byte = static_cast<unsigned char>(c);
        if (c == '"' || c == '\\') {
            out += '\\';
            out += c;
        } else if (byte < 0x20 || byte == 0x7f) {
            out += "\\x";
            out += kHex[byte >> 4];
            out += kHex[byte & 0xf];
        } else {
            out += c;
        }
    }
    out += '"';
    return out;
}

void StderrAuditHook::record(const AuditRecord& record)
{
    std::ostringstream line;
    line << "audit event=" << record.event << " action=" << logfmt_quote(record.action)
         << " object=" << logfmt_quote(record.object) << " sender=" << logfmt_quote(record.sender);
    if (record.subject != nullptr) {
        const auto& s = *record.subject;
        line << " uid=" << s.uid << " pid=" << s.pid << " exe=" << logfmt_quote(s.exe_known ? s.exe : "?")
             << " unit=" << logfmt_quote(s.unit);
    } else {
        line << " uid=? pid=?";
    }
    line << " decision=" << (record.decision == Decision::Allow ? "allow" : "deny")
         << " reason=" << logfmt_quote(record.reason) << '\n';
    const std::string text = line.str();
    std::fwrite(text.data(), 1, text.size(), stderr);
}

}  // namespace codexvault::audit
