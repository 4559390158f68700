#include "daemon/audit/audit_hook.hpp"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <system_error>

namespace codexvault::audit {
namespace {

void write_line(const std::string& line)
{
    // One fwrite on unbuffered stderr is one write(2): lines from this process never interleave.
    if (std::fwrite(line.data(), 1, line.size(), stderr) != line.size()) {
        // Nothing better to do from here; the tamper-evident log (issue 4) fails the request instead.
        std::clearerr(stderr);
    }
}

std::string format_prefix(const AuditRecord& record)
{
    std::string line = "audit event=";
    line += record.event;
    line += " action=" + logfmt_quote(record.action);
    line += " object=" + logfmt_quote(record.object);
    line += " sender=" + logfmt_quote(record.sender);
    if (record.subject != nullptr) {
        const auto& s = *record.subject;
        line += " uid=" + std::to_string(s.uid);
        line += " pid=" + std::to_string(s.pid);
        line += " exe=" + logfmt_quote(s.exe_known ? s.exe : "?");
        line += " unit=" + logfmt_quote(s.unit);
    } else {
        line += " uid=? pid=?";
    }
    line += record.decision == Decision::Allow ? " decision=allow" : " decision=deny";
    line += " reason=" + logfmt_quote(record.reason);
    if (!record.grant.empty()) {
        line += " grant=" + logfmt_quote(record.grant);
    }
    return line;
}

}  // namespace

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

std::string format_record(const AuditRecord& record)
{
    return format_prefix(record) + "\n";
}

StderrAuditHook::StderrAuditHook(sd_event* event) : event_(event)
{
}

StderrAuditHook::~StderrAuditHook()
{
    flush_repeats();
}

void StderrAuditHook::record(const AuditRecord& record)
{
    const bool foldable = record.informational || record.decision == Decision::Deny;
    if (!foldable) {
        write_line(format_record(record));
        return;
    }
    Key key{std::string(record.sender), std::string(record.action), record.decision == Decision::Allow ? 1 : 0,
            std::string(record.reason)};
    auto [it, first] = window_.try_emplace(std::move(key));
    if (first) {
        it->second.line_prefix = format_prefix(record);
        write_line(it->second.line_prefix + "\n");
        arm_window();
        return;
    }
    ++it->second.count;
}

void StderrAuditHook::flush_repeats()
{
    for (const auto& [key, repeat] : window_) {
        if (repeat.count > 0) {
            write_line(repeat.line_prefix + " repeated=" + std::to_string(repeat.count) + "\n");
        }
    }
    window_.clear();
}

void StderrAuditHook::arm_window()
{
    if (timer_ || event_ == nullptr) {
        return;
    }
    sd_event_source* source = nullptr;
    const int r = sd_event_add_time_relative(event_, &source, CLOCK_MONOTONIC, kFoldWindowUsec, 0,
                                             &StderrAuditHook::on_window_end, this);
    if (r < 0) {
        throw std::system_error(-r, std::generic_category(), "arm audit fold timer");
    }
    timer_.reset(source);
}

int StderrAuditHook::on_window_end(sd_event_source* /*source*/, std::uint64_t /*usec*/, void* userdata) noexcept
{
    auto* self = static_cast<StderrAuditHook*>(userdata);
    try {
        self->flush_repeats();
    } catch (...) {
        self->window_.clear();
    }
    self->timer_.reset();
    return 0;
}

}  // namespace codexvault::audit
