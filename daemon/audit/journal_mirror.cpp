#include "daemon/audit/journal_mirror.hpp"

#include <syslog.h>
#include <systemd/sd-journal.h>

#include <cerrno>

namespace codexvault::audit {
namespace {

constexpr char kHexDigits[] = "0123456789abcdef";
constexpr std::string_view kCutMarker = "...[cut]";

void escape_into(std::string& out, std::string_view value, bool quote_marks, std::size_t limit)
{
    const std::size_t start = out.size();
    for (const char c : value) {
        const auto byte = static_cast<unsigned char>(c);
        const bool escaped = c == '\\' || (quote_marks && c == '"');
        const bool control = byte < 0x20 || byte == 0x7f;
        const std::size_t piece = control ? 4 : (escaped ? 2 : 1);
        if (out.size() - start + piece > limit) {
            if ((byte & 0xc0) == 0x80) {  // inside a UTF-8 character: drop its first half too
                while (out.size() > start && (static_cast<unsigned char>(out.back()) & 0xc0) == 0x80) {
                    out.pop_back();
                }
                if (out.size() > start && static_cast<unsigned char>(out.back()) >= 0xc0) {
                    out.pop_back();
                }
            }
            out += kCutMarker;
            return;
        }
        if (escaped) {
            out += '\\';
            out += c;
        } else if (control) {
            out += "\\x";
            out += kHexDigits[byte >> 4];
            out += kHexDigits[byte & 0xf];
        } else {
            out += c;
        }
    }
}

void add(std::vector<std::string>& out, std::size_t& used, std::string_view name, std::string_view value, bool escape)
{
    if (used == out.size()) {
        out.emplace_back();
    }
    std::string& field = out[used++];
    field.clear();
    field += name;
    field += '=';
    if (escape) {
        escape_into(field, value, false, kJournalValueMaxBytes);
    } else {
        field += value;
    }
}

void add_text(std::vector<std::string>& out, std::size_t& used, std::string_view name, std::string_view value)
{
    if (!value.empty()) {
        add(out, used, name, value, true);
    }
}

void add_number(std::vector<std::string>& out, std::size_t& used, std::string_view name, std::uint64_t value)
{
    add(out, used, name, std::to_string(value), false);
}

}  // namespace

std::string journal_quote(std::string_view value, std::size_t limit)
{
    std::string out = "\"";
    escape_into(out, value, true, limit);
    out += '"';
    return out;
}

std::string journal_escape(std::string_view value, std::size_t limit)
{
    std::string out;
    escape_into(out, value, false, limit);
    return out;
}

int journal_priority(const RecordView& r) noexcept
{
    switch (r.type) {
    case EventType::Integrity:
    case EventType::Incident:
        return LOG_CRIT;
    case EventType::TornTailRecovered:
    case EventType::Lock:
        return LOG_WARNING;
    default:
        return r.decision == Decision::Deny ? LOG_NOTICE : LOG_INFO;
    }
}

std::string journal_message(const RecordView& r)
{
    std::string m = "codex-vault audit seq=" + std::to_string(r.seq);
    m += " event=";
    m += event_type_name(r.type);
    if (!r.action.empty()) {
        m += " action=" + journal_quote(r.action);
    }
    if (!r.object.empty()) {
        m += " object=" + journal_quote(r.object);
    }
    if (!r.sender.empty()) {
        m += " sender=" + journal_quote(r.sender);
    }
    m += " decision=";
    m += decision_name(r.decision);
    if (r.subject_known) {
        m += " uid=" + std::to_string(r.uid) + " pid=" + std::to_string(r.pid);
    }
    if (!r.reason.empty()) {
        m += " reason=" + journal_quote(r.reason);
    }
    if (r.type == EventType::FoldedRepeats) {
        m += " repeat_count=" + std::to_string(r.repeat_count);
    }
    if (r.type == EventType::Checkpoint) {
        m += " segment=" + std::to_string(r.checkpoint.segment);
        m += r.checkpoint.sealed ? " sealed=yes" : " sealed=no";
    }
    return m;
}

void journal_fields(const RecordView& r, const Hash& record_hash, std::vector<std::string>& out)
{
    std::size_t used = 0;
    add(out, used, "MESSAGE_ID", record_message_id(r.type, r.action), false);
    add_number(out, used, "PRIORITY", static_cast<std::uint64_t>(journal_priority(r)));
    add(out, used, "SYSLOG_IDENTIFIER", "codex-vaultd", false);
    add(out, used, "MESSAGE", journal_message(r), false);  // already escaped and quoted
    add_number(out, used, "CODEX_VAULT_SEQ", r.seq);
    add(out, used, "CODEX_VAULT_EVENT", event_type_name(r.type), false);
    add(out, used, "CODEX_VAULT_DECISION", decision_name(r.decision), false);
    add_text(out, used, "CODEX_VAULT_ACTION", r.action);
    add_text(out, used, "CODEX_VAULT_REASON", r.reason);
    add_text(out, used, "CODEX_VAULT_OBJECT", r.object);
    add_text(out, used, "CODEX_VAULT_GRANT", r.grant);
    add_text(out, used, "CODEX_VAULT_SENDER", r.sender);
    if (r.subject_known) {
        add_number(out, used, "CODEX_VAULT_UID", r.uid);
        add(out, used, "CODEX_VAULT_PID", std::to_string(r.pid), false);
    }
    add_text(out, used, "CODEX_VAULT_EXE", r.exe);
    add_text(out, used, "CODEX_VAULT_UNIT", r.unit);
    if (r.type == EventType::FoldedRepeats) {
        add_number(out, used, "CODEX_VAULT_REPEAT_COUNT", r.repeat_count);
    }
    add(out, used, "CODEX_VAULT_HASH", to_hex(record_hash), false);
    if (r.type == EventType::Checkpoint) {
        add_number(out, used, "CODEX_VAULT_SEGMENT", r.checkpoint.segment);
        add(out, used, "CODEX_VAULT_CHECKPOINT_SEALED", r.checkpoint.sealed ? "1" : "0", false);
        add(out, used, "CODEX_VAULT_KEY_ID", to_hex(r.checkpoint.key_id), false);
    }
    if (r.type == EventType::TornTailRecovered) {
        add_number(out, used, "CODEX_VAULT_TORN_SEGMENT", r.torn.segment);
        add_number(out, used, "CODEX_VAULT_TORN_OFFSET", r.torn.offset);
        add_number(out, used, "CODEX_VAULT_TORN_BYTES", r.torn.bytes);
    }
    out.resize(used);
}

JournalMirror::JournalMirror(bool enabled, SendFn send, FlushFn flush)
    : enabled_(enabled), send_(send != nullptr ? send : &sd_journal_sendv), flush_(flush)
{
}

void JournalMirror::end_batch() noexcept
{
    if (flush_ == nullptr || batched_ == 0) {
        return;
    }
    const int r = flush_();
    if (r < 0) {
        failures_ += batched_;
        last_error_ = -r;
    } else {
        sent_ += batched_;
    }
    batched_ = 0;
}

void JournalMirror::mirror(const RecordView& r, const Hash& record_hash) noexcept
{
    if (!enabled_) {
        return;
    }
    try {
        journal_fields(r, record_hash, fields_);
        iov_.clear();
        for (std::string& field : fields_) {
            iov_.push_back(iovec{field.data(), field.size()});
        }
        const int r_send = send_(iov_.data(), static_cast<int>(iov_.size()));
        if (r_send < 0) {
            ++failures_;
            last_error_ = -r_send;
            return;
        }
        if (flush_ != nullptr) {
            ++batched_;
        } else {
            ++sent_;
        }
    } catch (...) {  // only allocation can fail here
        ++failures_;
        last_error_ = ENOMEM;
    }
}

}  // namespace codexvault::audit
