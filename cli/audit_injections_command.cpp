// vaultctl audit injections [ID] [--json] [--dir DIR]: each injection as the tree of the processes
// that received it, then its touches and alerts (cli/injection_tree.*). Reads the log as `audit
// tail` does: from the daemon through AuditTail (founder, or an audit:read grant), or a folder.
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cli/audit_query.hpp"
#include "cli/injection_tree.hpp"
#include "common/vault_error.hpp"
#include "lib/auditcore/log_reader.hpp"

namespace codexvault::cli {
namespace {

struct InjectionsOptions {
    std::string id;
    std::string dir;
};

void keep_injection_records(const std::vector<std::string>& lines, std::vector<nlohmann::json>& out)
{
    for (const std::string& line : lines) {
        auto record = nlohmann::json::parse(line, nullptr, false);
        if (record.is_discarded() || !record.is_object()) {
            continue;
        }
        const auto action = record.find("action");
        if (action != record.end() && action->is_string() && action->get<std::string>().rfind("inject.", 0) == 0) {
            out.push_back(std::move(record));
        }
    }
}

// Every injection record of the log, oldest first: the monitor's records, paged forward.
std::vector<nlohmann::json> read_from_daemon(const GlobalOptions& options)
{
    VaultClient client(options.bus);
    const std::optional<FounderKeyPair> key = optional_founder_key(options);
    AuditTailQuery query;
    query.event = "monitor";
    query.after_seq = 0;
    query.limit = 1000;
    std::vector<nlohmann::json> records;
    for (;;) {
        const AuditPage page = fetch_audit_page(client, key, query);
        keep_injection_records(page.records, records);
        const bool full = page.records.size() >= query.limit;
        if ((!full && page.complete) || page.last_seq <= query.after_seq.value_or(0)) {
            return records;
        }
        query.after_seq = page.last_seq;
    }
}

std::vector<nlohmann::json> read_from_folder(const std::string& dir)
{
    audit::TailQuery query;
    query.filter.type = audit::EventType::Monitor;
    query.limit = 0;
    query.after_seq = 0;
    std::vector<nlohmann::json> records;
    keep_injection_records(audit::tail_json_lines(audit::read_tail(dir, query)), records);
    return records;
}

int cmd_audit_injections(const GlobalOptions& options, const InjectionsOptions& injections)
{
    const std::vector<nlohmann::json> records =
        injections.dir.empty() ? read_from_daemon(options) : read_from_folder(injections.dir);
    std::optional<std::string> only;
    if (!injections.id.empty()) {
        only = injections.id;
    }
    const auto reports = build_injection_reports(records, only);
    if (only && reports.empty()) {
        std::cerr << "vaultctl: no record of injection " << *only << " in the audit log\n";
        return error_info(ErrorCode::NotFound).exit_code;
    }
    if (options.json) {
        std::cout << injection_reports_json(reports).dump(2) << '\n';
    } else {
        std::cout << render_injection_reports(reports);
    }
    return 0;
}

}  // namespace

void add_audit_injections_command(CLI::App& audit, const GlobalOptions& options, SelectedCommand& selected)
{
    auto injections = std::make_shared<InjectionsOptions>();
    auto* cmd = audit.add_subcommand(
        "injections", "Each injection as the tree of processes that received it, then its touches and alerts");
    cmd->add_option("ID", injections->id, "Only this injection (inj-...)");
    cmd->add_option("--dir", injections->dir, "Read this audit folder directly instead of asking the daemon");
    on_selected(cmd, selected, [&options, injections] { return cmd_audit_injections(options, *injections); });
}

}  // namespace codexvault::cli
