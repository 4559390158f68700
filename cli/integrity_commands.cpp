// vaultctl's integrity commands: lock, unlock, incident (founder), and the audit log: verify
// (offline), tail (founder or audit:read, or offline with --dir), pubkey.
#include <chrono>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "cli/audit_query.hpp"
#include "cli/cli_support.hpp"
#include "common/bus_contract.hpp"
#include "common/vault_error.hpp"
#include "lib/auditcore/log_reader.hpp"
#include "lib/auditcore/offline_verify.hpp"

namespace codexvault::cli {
namespace {

int cmd_reasoned(const GlobalOptions& options, const char* method, const std::string& reason, const char* done)
{
    VaultClient client(options.bus);
    const FounderKeyPair key = load_founder_key(options);
    const FounderProof proof = client.prove(key, method, {reason});
    Message reply = client.call(method, [&](sd_bus_message* m) {
        check_local(sd_bus_message_append(m, "s", reason.c_str()), "append reason");
        append_proof(m, proof);
    });
    if (std::string(method) == bus::method::kIncident) {
        std::uint32_t revoked = 0;
        check_local(sd_bus_message_read(reply.get(), "u", &revoked), "read revoked count");
        if (options.json) {
            std::cout << nlohmann::json{{"locked", true}, {"revoked", revoked}}.dump(2) << '\n';
        } else {
            std::cout << "incident recorded: vault locked, " << revoked
                      << " grant(s) revoked, pending approvals denied, every secret marked for rotation, "
                         "audit segment sealed\n";
        }
        return 0;
    }
    if (!options.json) {
        std::cout << done << '\n';
    }
    return 0;
}

struct TailOptions {
    std::size_t lines = 20;
    bool follow = false;
    std::optional<std::uint32_t> uid;
    std::string action;
    std::string decision;
    std::string event;
    std::string dir;  // offline: read this folder directly
};

void print_tail_line(const std::string& json_line, bool json)
{
    if (json) {
        std::cout << json_line << '\n';
        return;
    }
    const auto r = nlohmann::json::parse(json_line, nullptr, false);
    if (r.is_discarded()) {
        std::cout << json_line << '\n';
        return;
    }
    const auto text = [&r](const char* key) {
        return r.contains(key) && r[key].is_string() ? r[key].get<std::string>() : std::string();
    };
    std::string line =
        "#" + std::to_string(r.value("seq", std::uint64_t{0})) + " " + text("time") + " " + text("event");
    for (const char* key : {"action", "object", "decision", "reason", "grant"}) {
        const std::string value = text(key);
        if (!value.empty()) {
            line += std::string(" ") + key + "=" + nlohmann::json(value).dump();
        }
    }
    if (r.contains("subject") && r["subject"].is_object()) {
        const auto& subject = r["subject"];
        if (subject.contains("uid") && subject["uid"].is_number()) {
            line += " uid=" + subject["uid"].dump() + " pid=" + subject.value("pid", nlohmann::json(0)).dump();
        }
        if (subject.contains("sender") && subject["sender"].is_string() &&
            !subject["sender"].get<std::string>().empty()) {
            line += " sender=" + subject["sender"].dump();
        }
    }
    if (r.contains("repeat_count")) {
        line += " repeated=" + r["repeat_count"].dump();
    }
    std::cout << line << '\n';
}

// Offline, from the folder (root, or whoever can read it): no daemon needed.
int tail_offline(const GlobalOptions& options, const TailOptions& tail)
{
    audit::TailQuery query;
    query.limit = tail.lines;
    query.filter.uid = tail.uid;
    if (!tail.action.empty()) {
        query.filter.action = tail.action;
    }
    if (!tail.decision.empty()) {
        query.filter.decision = audit::decision_from_name(tail.decision);
    }
    if (!tail.event.empty()) {
        query.filter.type = audit::event_type_from_name(tail.event);
        if (!query.filter.type) {
            throw CallError(ErrorCode::InvalidArgument, error_info(ErrorCode::InvalidArgument).exit_code,
                            "unknown event type '" + tail.event + "'");
        }
    }
    for (;;) {
        const audit::TailResult result = audit::read_tail(tail.dir, query);
        for (const auto& line : audit::tail_json_lines(result)) {
            print_tail_line(line, options.json);
        }
        std::cout.flush();
        if (!tail.follow) {
            return 0;
        }
        query.after_seq = result.last_seq;
        query.limit = 0;
        std::this_thread::sleep_for(std::chrono::seconds(1));
    }
}

int cmd_audit_tail(const GlobalOptions& options, const TailOptions& tail)
{
    if (!tail.dir.empty()) {
        return tail_offline(options, tail);
    }
    VaultClient client(options.bus);
    // The founder signs; anyone else reads under an audit:read grant (no key needed).
    const std::optional<FounderKeyPair> key = optional_founder_key(options);
    AuditTailQuery query;
    query.action = tail.action;
    query.decision = tail.decision;
    query.event = tail.event;
    query.uid = tail.uid;
    query.limit = static_cast<std::uint32_t>(tail.lines);
    for (;;) {
        const AuditPage page = fetch_audit_page(client, key, query);
        for (const std::string& line : page.records) {
            print_tail_line(line, options.json);
        }
        std::cout.flush();
        if (!tail.follow) {
            if (!page.complete) {
                std::cerr << "vaultctl: the daemon reads at most 4 MiB of the log per call, and stopped before "
                             "finding "
                          << query.limit
                          << " matching records; older records may match too: narrow the query, or verify "
                             "and read a copy of the audit folder offline ('vaultctl audit verify')\n";
            }
            return 0;
        }
        query.after_seq = page.last_seq;
        query.limit = 1000;
        // A page cut by the scan budget is followed at once: the rest of the log is already there.
        if (page.complete) {
            std::this_thread::sleep_for(std::chrono::seconds(1));
        }
    }
}

int cmd_audit_pubkey(const GlobalOptions& options, const std::string& output)
{
    VaultClient client(options.bus);
    Message reply = client.call(bus::method::kAuditPublicKey);
    const char* key = nullptr;
    check_local(sd_bus_message_read(reply.get(), "s", &key), "read public key");
    if (output.empty()) {
        std::cout << key << '\n';
        return 0;
    }
    std::ofstream file(output, std::ios::trunc);
    file << key << '\n';
    if (!file.good()) {
        throw CallError(std::nullopt, kExitLocalError, "could not write " + output);
    }
    return 0;
}

}  // namespace

void add_integrity_commands(CLI::App& app, const GlobalOptions& options, SelectedCommand& selected)
{
    auto reason = std::make_shared<std::string>();
    auto* lock = app.add_subcommand("lock", "Lock the vault: every use is refused until unlock (founder)");
    lock->add_option("--reason", *reason, "Why (recorded in the audit log)")->required();
    on_selected(lock, selected,
                [&options, reason] { return cmd_reasoned(options, bus::method::kLock, *reason, "vault locked"); });
    auto* unlock = app.add_subcommand("unlock", "Unlock the vault after investigation (founder)");
    unlock->add_option("--reason", *reason, "Why it is safe again (recorded)")->required();
    on_selected(unlock, selected,
                [&options, reason] { return cmd_reasoned(options, bus::method::kUnlock, *reason, "vault unlocked"); });
    auto* incident = app.add_subcommand(
        "incident", "Incident response in one step: lock, revoke all grants, mark secrets for rotation, seal audit");
    incident->add_option("--reason", *reason, "What happened (recorded)")->required();
    on_selected(incident, selected,
                [&options, reason] { return cmd_reasoned(options, bus::method::kIncident, *reason, ""); });

    auto* audit = app.add_subcommand("audit", "Verify and read the audit log");
    audit->require_subcommand(1);
    auto verify_dir = std::make_shared<std::string>();
    auto pubkey = std::make_shared<std::string>();
    auto* verify = audit->add_subcommand("verify", "Verify the audit log offline (no daemon needed)");
    verify->add_option("--dir", *verify_dir, std::string("Audit folder (default ") + audit::kDefaultAuditDir + ")");
    verify->add_option("--pubkey", *pubkey, "Audit public key file (from 'vaultctl audit pubkey')");
    on_selected(verify, selected, [&options, verify_dir, pubkey] {
        return audit::run_audit_verify(*verify_dir, *pubkey, options.json, std::cout);
    });

    auto tail = std::make_shared<TailOptions>();
    auto* tail_cmd = audit->add_subcommand("tail", "Show the newest records (founder, or an audit:read grant)");
    tail_cmd->add_option("-n,--lines", tail->lines, "How many records")->capture_default_str();
    tail_cmd->add_flag("-f,--follow", tail->follow, "Keep printing new records");
    tail_cmd->add_option("--uid", tail->uid, "Only records of this uid");
    tail_cmd->add_option("--action", tail->action, "Only this action, e.g. secret.put");
    tail_cmd->add_option("--decision", tail->decision, "allow, deny or none")
        ->check(CLI::IsMember({"allow", "deny", "none"}));
    tail_cmd->add_option("--event", tail->event, "Only this event type, e.g. decision, lock, incident");
    tail_cmd->add_option("--dir", tail->dir, "Read this audit folder directly instead of asking the daemon");
    on_selected(tail_cmd, selected, [&options, tail] { return cmd_audit_tail(options, *tail); });

    auto output = std::make_shared<std::string>();
    auto* pubkey_cmd = audit->add_subcommand("pubkey", "Print the audit public key (for offline verification)");
    pubkey_cmd->add_option("-o,--output", *output, "Write it to this file");
    on_selected(pubkey_cmd, selected, [&options, output] { return cmd_audit_pubkey(options, *output); });

    add_audit_injections_command(*audit, options, selected);
}

}  // namespace codexvault::cli
