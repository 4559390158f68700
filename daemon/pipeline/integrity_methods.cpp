// Lock, Unlock, Incident (founder) and reading the audit log (founder or audit:read).
#include <array>
#include <string_view>

#include "common/vault_error.hpp"
#include "daemon/integrity/integrity_control.hpp"
#include "daemon/pipeline/message_io.hpp"
#include "daemon/pipeline/methods.hpp"
#include "daemon/vault_service.hpp"
#include "lib/auditcore/log_reader.hpp"

namespace codexvault::daemon::methods {
namespace {

constexpr std::size_t kMaxReasonBytes = 256;
constexpr std::uint32_t kMaxTailRecords = 1000;
// What one call may read of the log: a filter that matches nothing costs this much and no more,
// however large the log has grown (about 16,000 records; ~10 ms here). A caller may ask for less.
constexpr std::uint32_t kMaxTailScanBytes = 4U << 20;
constexpr std::array<std::string_view, 7> kTailKeys{"limit",    "after_seq", "uid",       "action",
                                                    "decision", "event",     "scan_bytes"};

std::string read_reason(sd_bus_message* message)
{
    std::string reason = io::read_string(message);
    if (reason.empty() || reason.size() > kMaxReasonBytes) {
        throw VaultError(ErrorCode::InvalidArgument, "a reason of 1 to 256 characters is required");
    }
    return reason;
}

template <typename Act>
PreparedCall decode_reasoned(sd_bus_message* message, Act act)
{
    PreparedCall call;
    std::string reason = read_reason(message);
    call.proof = io::read_founder_proof(message);
    call.signed_arguments = {reason};
    call.object = "vault";
    call.act = [reason = std::move(reason), act](RequestContext& context, sd_bus_message* reply) {
        act(*context.integrity, reason, reply);
    };
    return call;
}

}  // namespace

PreparedCall decode_lock(sd_bus_message* message)
{
    return decode_reasoned(message, [](IntegrityControl& integrity, const std::string& reason, sd_bus_message*) {
        integrity.lock(reason, "founder");
    });
}

PreparedCall decode_unlock(sd_bus_message* message)
{
    return decode_reasoned(message, [](IntegrityControl& integrity, const std::string& reason, sd_bus_message*) {
        integrity.unlock(reason, "founder");
    });
}

PreparedCall decode_incident(sd_bus_message* message)
{
    return decode_reasoned(message, [](IntegrityControl& integrity, const std::string& reason, sd_bus_message* reply) {
        const std::size_t revoked = integrity.incident(reason, "founder");
        io::check(sd_bus_message_append(reply, "u", static_cast<std::uint32_t>(revoked)), "append revoked count");
    });
}

PreparedCall decode_audit_tail(sd_bus_message* message)
{
    PreparedCall call;
    const io::ArgumentDict dict = io::read_argument_dict(message, kTailKeys);
    call.proof = io::read_founder_proof(message);
    audit::TailQuery query;
    query.limit = std::min(io::dict_uint32(dict, "limit").value_or(20), kMaxTailRecords);
    if (query.limit == 0) {
        query.limit = kMaxTailRecords;
    }
    // after_seq travels as a decimal string: the dictionary holds strings and uint32s.
    if (const std::string after = io::dict_string(dict, "after_seq"); !after.empty()) {
        std::uint64_t value = 0;
        for (const char c : after) {
            if (c < '0' || c > '9' || value > (UINT64_MAX - 9) / 10) {
                throw VaultError(ErrorCode::InvalidArgument, "after_seq must be a decimal sequence number");
            }
            value = value * 10 + static_cast<std::uint64_t>(c - '0');
        }
        query.after_seq = value;
    }
    query.max_scan_bytes = std::min(io::dict_uint32(dict, "scan_bytes").value_or(kMaxTailScanBytes), kMaxTailScanBytes);
    if (query.max_scan_bytes == 0) {
        query.max_scan_bytes = kMaxTailScanBytes;
    }
    query.filter.uid = io::dict_uint32(dict, "uid");
    if (std::string action = io::dict_string(dict, "action"); !action.empty()) {
        query.filter.action = std::move(action);
    }
    if (const std::string decision = io::dict_string(dict, "decision"); !decision.empty()) {
        query.filter.decision = audit::decision_from_name(decision);
        if (!query.filter.decision) {
            throw VaultError(ErrorCode::InvalidArgument, "decision must be allow, deny or none");
        }
    }
    if (const std::string event = io::dict_string(dict, "event"); !event.empty()) {
        query.filter.type = audit::event_type_from_name(event);
        if (!query.filter.type) {
            throw VaultError(ErrorCode::InvalidArgument, "unknown event type");
        }
    }
    call.signed_arguments = io::signed_entries(dict);
    call.object = "audit";
    // Without a founder proof, the caller needs a grant for audit:read (the pipeline decides).
    GrantUse use;
    use.capability = policy::Capability::of(policy::CapabilityKind::AuditRead);
    call.grant_use = std::move(use);
    call.act = [query](RequestContext& context, sd_bus_message* reply) {
        // What this call itself recorded is written first, so a reader sees up to now.
        (void)context.audit->write_pending();
        const audit::TailResult result = audit::read_tail(context.audit->log().directory(), query);
        io::check(sd_bus_message_open_container(reply, 'a', "s"), "open records");
        for (const auto& line : audit::tail_json_lines(result)) {
            io::check(sd_bus_message_append(reply, "s", line.c_str()), "append record");
        }
        io::check(sd_bus_message_close_container(reply), "close records");
        io::check(sd_bus_message_append(reply, "t", result.last_seq), "append last seq");
        // false: the scan budget ended the search before the log did (see kMaxTailScanBytes).
        io::check(sd_bus_message_append(reply, "b", static_cast<int>(result.complete)), "append complete");
    };
    return call;
}

PreparedCall decode_audit_public_key(sd_bus_message* /*message*/)
{
    PreparedCall call;
    call.act = [](RequestContext& context, sd_bus_message* reply) {
        const std::string key = audit::format_public_key(context.audit->log().open_report().public_key);
        io::check(sd_bus_message_append(reply, "s", key.c_str()), "append public key");
    };
    return call;
}

}  // namespace codexvault::daemon::methods
