#include "cli/audit_query.hpp"

#include <filesystem>

#include "common/bus_contract.hpp"
#include "lib/sdbus/string_array.hpp"

namespace codexvault::cli {

std::optional<FounderKeyPair> optional_founder_key(const GlobalOptions& options)
{
    std::error_code ec;
    if (options.passphrase_fd >= 0 || std::filesystem::exists(options.founder_key, ec)) {
        return load_founder_key(options);
    }
    return std::nullopt;
}

AuditPage fetch_audit_page(VaultClient& client, const std::optional<FounderKeyPair>& key, const AuditTailQuery& query)
{
    std::vector<std::string> signed_arguments;
    const auto add = [&signed_arguments](const std::string& k, const std::string& v) {
        std::string entry = k;
        entry += '=';
        entry += v;
        signed_arguments.push_back(std::move(entry));
    };
    // In key order, as the daemon signs them.
    if (!query.action.empty()) {
        add("action", query.action);
    }
    if (query.after_seq) {
        add("after_seq", std::to_string(*query.after_seq));
    }
    if (!query.decision.empty()) {
        add("decision", query.decision);
    }
    if (!query.event.empty()) {
        add("event", query.event);
    }
    add("limit", std::to_string(query.limit));
    if (query.uid) {
        add("uid", std::to_string(*query.uid));
    }
    FounderProof proof;
    if (key) {
        proof = client.prove(*key, bus::method::kAuditTail, signed_arguments);
    }
    Message reply = client.call(bus::method::kAuditTail, [&](sd_bus_message* m) {
        check_local(sd_bus_message_open_container(m, 'a', "{sv}"), "open query");
        if (!query.action.empty()) {
            check_local(sd_bus_message_append(m, "{sv}", "action", "s", query.action.c_str()), "append");
        }
        if (query.after_seq) {
            const std::string text = std::to_string(*query.after_seq);
            check_local(sd_bus_message_append(m, "{sv}", "after_seq", "s", text.c_str()), "append");
        }
        if (!query.decision.empty()) {
            check_local(sd_bus_message_append(m, "{sv}", "decision", "s", query.decision.c_str()), "append");
        }
        if (!query.event.empty()) {
            check_local(sd_bus_message_append(m, "{sv}", "event", "s", query.event.c_str()), "append");
        }
        check_local(sd_bus_message_append(m, "{sv}", "limit", "u", query.limit), "append");
        if (query.uid) {
            check_local(sd_bus_message_append(m, "{sv}", "uid", "u", *query.uid), "append");
        }
        check_local(sd_bus_message_close_container(m), "close query");
        append_proof(m, proof);
    });
    AuditPage page;
    check_local(bus::read_string_array(reply.get(), page.records), "read records");
    check_local(sd_bus_message_read(reply.get(), "t", &page.last_seq), "read last seq");
    int complete = 1;
    check_local(sd_bus_message_read(reply.get(), "b", &complete), "read complete");
    page.complete = complete != 0;
    return page;
}

}  // namespace codexvault::cli
