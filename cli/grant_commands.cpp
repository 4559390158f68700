// vaultctl's capability commands: check and use for callers; grants, approvals and explain for
// the founder.
#include <chrono>
#include <cstdio>
#include <iostream>
#include <memory>
#include <optional>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "cli/cli_support.hpp"
#include "common/bus_contract.hpp"
#include "common/vault_error.hpp"

namespace codexvault::cli {
namespace {

struct RequestOptions {
    std::string method;
    std::string path;
    std::string body_digest;
    std::string target;
    std::string approval_id;
};

void append_request(sd_bus_message* m, const RequestOptions& request)
{
    check_local(sd_bus_message_open_container(m, 'a', "{sv}"), "open request");
    const std::pair<const char*, const std::string*> entries[] = {{"method", &request.method},
                                                                  {"path", &request.path},
                                                                  {"body_digest", &request.body_digest},
                                                                  {"target", &request.target},
                                                                  {"approval_id", &request.approval_id}};
    for (const auto& [key, value] : entries) {
        if (!value->empty()) {
            check_local(sd_bus_message_append(m, "{sv}", key, "s", value->c_str()), "append request entry");
        }
    }
    check_local(sd_bus_message_close_container(m), "close request");
}

void add_request_options(CLI::App* command, RequestOptions& request)
{
    command->add_option("--method", request.method, "Provider request: HTTP method");
    command->add_option("--path", request.path, "Provider request: path (with query)");
    command->add_option("--body-digest", request.body_digest, "Provider request: digest of the body");
    command->add_option("--target", request.target, "Injection: the recipient, as the daemon describes it");
}

// Exit status of a Check: 0 allowed, 5 when an approval is needed, 3 for every denial (a real
// use may report some denials more precisely, e.g. 10 for an expired grant).
int check_exit_code(const std::string& verdict)
{
    if (verdict == "allow") {
        return 0;
    }
    return error_info(verdict == "approval-required" ? ErrorCode::ApprovalRequired : ErrorCode::PermissionDenied)
        .exit_code;
}

int cmd_check(const GlobalOptions& options, const std::string& capability, const RequestOptions& request)
{
    VaultClient client(options.bus);
    Message reply = client.call(bus::method::kCheck, [&](sd_bus_message* m) {
        check_local(sd_bus_message_append(m, "s", capability.c_str()), "append capability");
        append_request(m, request);
    });
    int allowed = 0;
    const char* verdict = nullptr;
    const char* reason = nullptr;
    const char* grant = nullptr;
    check_local(sd_bus_message_read(reply.get(), "bsss", &allowed, &verdict, &reason, &grant), "read check result");
    if (options.json) {
        std::cout << nlohmann::json{{"capability", capability},
                                    {"allowed", allowed != 0},
                                    {"verdict", verdict},
                                    {"reason", reason},
                                    {"grant_id", grant}}
                         .dump(2)
                  << '\n';
    } else {
        std::cout << capability << ": " << verdict << " (" << reason << ")";
        if (grant[0] != '\0') {
            std::cout << " grant " << grant;
        }
        std::cout << '\n';
    }
    return check_exit_code(verdict);
}

// An approval is bound to the process that asked, so waiting for it has to happen here, in the
// same process: ask, then present the approval id once a second until the founder decides.
Message use_waiting_for_approval(VaultClient& client, const std::string& capability, RequestOptions request, bool wait)
{
    const std::regex approval_pattern("a-[0-9a-f]{16}");
    for (;;) {
        try {
            return client.call(bus::method::kUse, [&](sd_bus_message* m) {
                check_local(sd_bus_message_append(m, "s", capability.c_str()), "append capability");
                append_request(m, request);
            });
        } catch (const CallError& e) {
            std::smatch match;
            const std::string message = e.what();
            if (!wait || e.code() != ErrorCode::ApprovalRequired ||
                !std::regex_search(message, match, approval_pattern)) {
                throw;
            }
            if (request.approval_id != match.str()) {
                request.approval_id = match.str();
                std::cerr << "waiting for the founder: vaultctl approve " << request.approval_id << '\n';
            }
            std::this_thread::sleep_for(std::chrono::seconds(1));
        }
    }
}

int cmd_use(const GlobalOptions& options, const std::string& capability, const RequestOptions& request, bool wait)
{
    VaultClient client(options.bus);
    Message reply = use_waiting_for_approval(client, capability, request, wait);
    const char* grant = nullptr;
    const char* approval = nullptr;
    check_local(sd_bus_message_read(reply.get(), "ss", &grant, &approval), "read use result");
    if (options.json) {
        std::cout << nlohmann::json{{"capability", capability}, {"grant_id", grant}, {"approval_id", approval}}.dump(2)
                  << '\n';
    } else {
        std::cout << "used " << capability << " under grant " << grant;
        if (approval[0] != '\0') {
            std::cout << " with approval " << approval;
        }
        std::cout << '\n';
    }
    return 0;
}

struct IssueOptions {
    std::string principal;
    std::string capability;
    std::string ttl;
    std::uint64_t max_uses = 0;
    std::string rate;
    std::string approval = "none";
    std::vector<std::string> requests;
    std::string on_touch;   // inject grants; carried in `requests` as on_touch=...
    std::string on_expiry;  // inject grants; carried in `requests` as on_expiry=...
    std::string description;
};

int cmd_grant_issue(const GlobalOptions& options, IssueOptions issue)
{
    // IssueGrant carries an inject grant's options in its requests list (docs/bus-api.md).
    if (!issue.on_touch.empty()) {
        issue.requests.push_back("on_touch=" + issue.on_touch);
    }
    if (!issue.on_expiry.empty()) {
        issue.requests.push_back("on_expiry=" + issue.on_expiry);
    }
    VaultClient client(options.bus);
    const FounderKeyPair key = load_founder_key(options);
    std::vector<std::string> signed_arguments{
        issue.principal, issue.capability, issue.ttl,        std::to_string(issue.max_uses),
        issue.rate,      issue.approval,   issue.description};
    signed_arguments.insert(signed_arguments.end(), issue.requests.begin(), issue.requests.end());
    const FounderProof proof = client.prove(key, bus::method::kIssueGrant, signed_arguments);
    Message reply = client.call(bus::method::kIssueGrant, [&](sd_bus_message* m) {
        check_local(
            sd_bus_message_append(m, "ssstss", issue.principal.c_str(), issue.capability.c_str(), issue.ttl.c_str(),
                                  issue.max_uses, issue.rate.c_str(), issue.approval.c_str()),
            "append grant");
        check_local(sd_bus_message_open_container(m, 'a', "s"), "open requests");
        for (const auto& request : issue.requests) {
            check_local(sd_bus_message_append(m, "s", request.c_str()), "append request");
        }
        check_local(sd_bus_message_close_container(m), "close requests");
        check_local(sd_bus_message_append(m, "s", issue.description.c_str()), "append description");
        append_proof(m, proof);
    });
    const char* id = nullptr;
    check_local(sd_bus_message_read(reply.get(), "s", &id), "read grant id");
    if (options.json) {
        std::cout << nlohmann::json{{"grant_id", id}}.dump(2) << '\n';
    } else {
        std::cout << id << '\n';
    }
    return 0;
}

std::string format_optional_time(const nlohmann::json& usec)
{
    const auto value = usec.get<std::uint64_t>();
    return value == 0 ? "-" : format_time(value);
}

int cmd_grant_ls(const GlobalOptions& options)
{
    VaultClient client(options.bus);
    const FounderKeyPair key = load_founder_key(options);
    const FounderProof proof = client.prove(key, bus::method::kListGrants, {});
    Message reply = client.call(bus::method::kListGrants, [&](sd_bus_message* m) { append_proof(m, proof); });
    const nlohmann::json grants = read_dictionary_array(reply.get());
    if (options.json) {
        std::cout << grants.dump(2) << '\n';
        return 0;
    }
    std::printf("%-20s %-28s %-28s %-8s %-9s %-20s %s\n", "ID", "CAPABILITY", "PRINCIPAL", "STATE", "USES", "EXPIRES",
                "APPROVAL");
    for (const auto& g : grants) {
        const auto max_uses = g.at("max_uses").get<std::uint64_t>();
        const std::string uses = std::to_string(g.at("uses").get<std::uint64_t>()) +
                                 (max_uses != 0 ? "/" + std::to_string(max_uses) : std::string());
        std::printf("%-20s %-28s %-28s %-8s %-9s %-20s %s\n", g.at("id").get<std::string>().c_str(),
                    g.at("capability").get<std::string>().c_str(), g.at("principal").get<std::string>().c_str(),
                    g.at("state").get<std::string>().c_str(), uses.c_str(),
                    format_optional_time(g.at("expires_usec")).c_str(), g.at("approval").get<std::string>().c_str());
    }
    return 0;
}

// RevokeGrant, Approve, Deny: one id, signed.
int cmd_signed_id(const GlobalOptions& options, const char* method, const std::string& id, const char* done)
{
    VaultClient client(options.bus);
    const FounderKeyPair key = load_founder_key(options);
    const FounderProof proof = client.prove(key, method, {id});
    client.call(method, [&](sd_bus_message* m) {
        check_local(sd_bus_message_append(m, "s", id.c_str()), "append id");
        append_proof(m, proof);
    });
    if (!options.json) {
        std::cout << done << ' ' << id << '\n';
    }
    return 0;
}

int cmd_grant_revoke_all(const GlobalOptions& options)
{
    VaultClient client(options.bus);
    const FounderKeyPair key = load_founder_key(options);
    const FounderProof proof = client.prove(key, bus::method::kRevokeAllGrants, {});
    Message reply = client.call(bus::method::kRevokeAllGrants, [&](sd_bus_message* m) { append_proof(m, proof); });
    std::uint32_t revoked = 0;
    check_local(sd_bus_message_read(reply.get(), "u", &revoked), "read count");
    if (options.json) {
        std::cout << nlohmann::json{{"revoked", revoked}}.dump(2) << '\n';
    } else {
        std::cout << "revoked " << revoked << " grant(s); pending approvals denied\n";
    }
    return 0;
}

nlohmann::json list_approvals(VaultClient& client, const FounderKeyPair& key)
{
    const FounderProof proof = client.prove(key, bus::method::kListApprovals, {});
    Message reply = client.call(bus::method::kListApprovals, [&](sd_bus_message* m) { append_proof(m, proof); });
    return read_dictionary_array(reply.get());
}

void print_approval(const nlohmann::json& a)
{
    std::printf(
        "%s  %-9s uid=%u pid=%u exe=%s  %s  expires %s\n", a.at("id").get<std::string>().c_str(),
        a.at("state").get<std::string>().c_str(), a.at("uid").get<std::uint32_t>(), a.at("pid").get<std::uint32_t>(),
        a.at("exe").get<std::string>().empty() ? "?" : a.at("exe").get<std::string>().c_str(),
        a.at("request").get<std::string>().c_str(), format_time(a.at("expires_usec").get<std::uint64_t>()).c_str());
}

int cmd_approvals_ls(const GlobalOptions& options)
{
    VaultClient client(options.bus);
    const FounderKeyPair key = load_founder_key(options);
    const nlohmann::json approvals = list_approvals(client, key);
    if (options.json) {
        std::cout << approvals.dump(2) << '\n';
        return 0;
    }
    if (approvals.empty()) {
        std::cout << "no outstanding approvals\n";
    }
    for (const auto& a : approvals) {
        print_approval(a);
    }
    return 0;
}

struct WatchState {
    VaultClient* client;
    const FounderKeyPair* key;
    bool json;
    std::optional<CallError> failure;
};

// The signal carries only the id and capability; the details come from ListApprovals (signed).
int on_approval_requested(sd_bus_message* message, void* userdata, sd_bus_error* /*error*/) noexcept
{
    auto* state = static_cast<WatchState*>(userdata);
    const char* id = nullptr;
    const char* capability = nullptr;
    std::uint64_t expires = 0;
    if (sd_bus_message_read(message, "sst", &id, &capability, &expires) < 0) {
        return 0;
    }
    try {
        nlohmann::json details;
        for (const auto& a : list_approvals(*state->client, *state->key)) {
            if (a.at("id") == id) {
                details = a;
            }
        }
        if (state->json) {
            std::cout << (details.is_null() ? nlohmann::json{{"id", id}, {"capability", capability}} : details).dump()
                      << std::endl;
        } else if (details.is_null()) {
            std::cout << id << "  " << capability << "  (already decided or expired)" << std::endl;
        } else {
            print_approval(details);
            std::cout.flush();
        }
    } catch (const CallError& e) {
        state->failure = e;
    } catch (const std::exception& e) {
        state->failure = CallError(std::nullopt, kExitLocalError, e.what());
    }
    return 0;
}

int cmd_approvals_watch(const GlobalOptions& options)
{
    VaultClient client(options.bus);
    const FounderKeyPair key = load_founder_key(options);
    // Prove we are the founder before waiting, so a wrong key fails now, not at the first request.
    (void)list_approvals(client, key);
    WatchState state{&client, &key, options.json, std::nullopt};
    sd_bus_slot* raw_slot = nullptr;
    check_local(sd_bus_match_signal(client.bus(), &raw_slot, bus::kBusName, bus::kObjectPath, bus::kInterface,
                                    bus::signal::kApprovalRequested, &on_approval_requested, &state),
                "watch ApprovalRequested");
    const bus::SlotPtr slot(raw_slot);
    // The match is in place once sd_bus_match_signal returns: say so, on stderr under --json so
    // stdout stays JSON lines, so whoever started the watcher knows no request can be missed now.
    (options.json ? std::cerr : std::cout) << "watching for approval requests (Ctrl-C to stop)" << std::endl;
    for (;;) {
        const int r = sd_bus_process(client.bus(), nullptr);
        check_local(r, "process bus");
        if (state.failure) {
            throw *state.failure;
        }
        if (r > 0) {
            continue;
        }
        check_local(sd_bus_wait(client.bus(), UINT64_MAX), "wait for bus");
    }
}

struct ExplainOptions {
    std::string capability;
    std::optional<std::uint32_t> pid;
    std::optional<std::uint32_t> uid;
    std::optional<std::uint32_t> gid;
    std::string unit;
    std::string cgroup;
    std::string exe;
};

int cmd_policy_explain(const GlobalOptions& options, const ExplainOptions& explain)
{
    // Sorted by key, the order the daemon signs them in.
    std::vector<std::pair<std::string, std::string>> text_entries;
    std::vector<std::pair<std::string, std::uint32_t>> number_entries;
    std::vector<std::string> signed_arguments{explain.capability};
    const auto add_number = [&](const char* key, const std::optional<std::uint32_t>& value) {
        if (value) {
            number_entries.emplace_back(key, *value);
        }
    };
    const auto add_text = [&](const char* key, const std::string& value) {
        if (!value.empty()) {
            text_entries.emplace_back(key, value);
        }
    };
    add_text("cgroup", explain.cgroup);
    add_text("exe", explain.exe);
    add_number("gid", explain.gid);
    add_number("pid", explain.pid);
    add_number("uid", explain.uid);
    add_text("unit", explain.unit);
    std::vector<std::string> keys;
    keys.reserve(text_entries.size() + number_entries.size());
    for (const auto& [k, v] : text_entries) {
        std::string entry = k;
        entry += '=';
        entry += v;
        keys.push_back(std::move(entry));
    }
    for (const auto& [k, v] : number_entries) {
        keys.push_back(k + '=' + std::to_string(v));
    }
    std::sort(keys.begin(), keys.end());
    signed_arguments.insert(signed_arguments.end(), keys.begin(), keys.end());

    VaultClient client(options.bus);
    const FounderKeyPair key = load_founder_key(options);
    const FounderProof proof = client.prove(key, bus::method::kExplain, signed_arguments);
    Message reply = client.call(bus::method::kExplain, [&](sd_bus_message* m) {
        check_local(sd_bus_message_append(m, "s", explain.capability.c_str()), "append capability");
        check_local(sd_bus_message_open_container(m, 'a', "{sv}"), "open subject");
        for (const auto& [k, v] : text_entries) {
            check_local(sd_bus_message_append(m, "{sv}", k.c_str(), "s", v.c_str()), "append subject");
        }
        for (const auto& [k, v] : number_entries) {
            check_local(sd_bus_message_append(m, "{sv}", k.c_str(), "u", v), "append subject");
        }
        check_local(sd_bus_message_close_container(m), "close subject");
        append_proof(m, proof);
    });
    const char* verdict = nullptr;
    const char* text = nullptr;
    check_local(sd_bus_message_read(reply.get(), "ss", &verdict, &text), "read explanation");
    if (options.json) {
        std::cout << nlohmann::json{{"verdict", verdict}, {"explanation", text}}.dump(2) << '\n';
    } else {
        std::cout << text;
    }
    return check_exit_code(verdict);
}

}  // namespace

void add_grant_commands(CLI::App& app, CLI::App& policy, const GlobalOptions& options, SelectedCommand& selected)
{
    auto request = std::make_shared<RequestOptions>();
    auto capability = std::make_shared<std::string>();
    auto* check = app.add_subcommand("check", "May this process use CAP now? Exit 0 if allowed, else 3 or 5");
    check->add_option("CAP", *capability, "Capability, e.g. provider:openai:request")->required();
    add_request_options(check, *request);
    on_selected(check, selected, [&options, capability, request] { return cmd_check(options, *capability, *request); });

    auto* use = app.add_subcommand("use", "Use CAP once under a grant (consumes a use; may need an approval)");
    use->add_option("CAP", *capability, "Capability")->required();
    add_request_options(use, *request);
    auto wait = std::make_shared<bool>(false);
    use->add_flag("--wait", *wait, "If the grant needs an approval, wait for the founder's decision and use it");
    on_selected(use, selected,
                [&options, capability, request, wait] { return cmd_use(options, *capability, *request, *wait); });

    auto* grant = app.add_subcommand("grant", "Issue, list and revoke grants (founder)");
    grant->require_subcommand(1);
    auto issue = std::make_shared<IssueOptions>();
    auto* issue_cmd = grant->add_subcommand("issue", "Issue a short-lived grant; prints its id");
    issue_cmd->add_option("--principal", issue->principal, "Principal name, or conditions: uid=1000,exe=/usr/bin/x")
        ->required();
    issue_cmd->add_option("--cap", issue->capability, "Capability")->required();
    issue_cmd->add_option("--ttl", issue->ttl, "Lifetime: 30s, 15m, 2h, 7d")->required();
    issue_cmd->add_option("--max-uses", issue->max_uses, "Uses allowed (default: no limit)");
    issue_cmd->add_option("--rate", issue->rate, "Rate limit, e.g. 60/min");
    issue_cmd->add_option("--approval", issue->approval, "none, each or once")
        ->check(CLI::IsMember({"none", "each", "once"}));
    issue_cmd->add_option("--request", issue->requests, "Provider grants: allowed 'METHOD /path' (repeatable)");
    issue_cmd
        ->add_option("--on-touch", issue->on_touch,
                     "Inject grants: record (default) or kill an unmarked process that touches the secret")
        ->check(CLI::IsMember({"record", "kill"}));
    issue_cmd
        ->add_option("--on-expiry", issue->on_expiry,
                     "Inject grants: close (default) or terminate the marked processes when it ends")
        ->check(CLI::IsMember({"close", "terminate"}));
    issue_cmd->add_option("--description", issue->description, "Why this grant exists");
    on_selected(issue_cmd, selected, [&options, issue] { return cmd_grant_issue(options, *issue); });

    auto id = std::make_shared<std::string>();
    auto* grant_ls = grant->add_subcommand("ls", "List grants with their state");
    on_selected(grant_ls, selected, [&options] { return cmd_grant_ls(options); });
    auto* revoke = grant->add_subcommand("revoke", "Revoke a grant (runtime id or policy grant name)");
    revoke->add_option("ID", *id, "Grant id")->required();
    on_selected(revoke, selected,
                [&options, id] { return cmd_signed_id(options, bus::method::kRevokeGrant, *id, "revoked"); });
    auto* revoke_all = grant->add_subcommand("revoke-all", "Revoke every grant and deny every pending approval");
    on_selected(revoke_all, selected, [&options] { return cmd_grant_revoke_all(options); });

    auto* approvals = app.add_subcommand("approvals", "Pending approval requests (founder)");
    approvals->require_subcommand(1);
    auto* approvals_ls = approvals->add_subcommand("ls", "List outstanding approval requests");
    on_selected(approvals_ls, selected, [&options] { return cmd_approvals_ls(options); });
    auto* watch = approvals->add_subcommand("watch", "Print each new approval request as it arrives");
    on_selected(watch, selected, [&options] { return cmd_approvals_watch(options); });
    auto* approve = app.add_subcommand("approve", "Approve one pending request (founder)");
    approve->add_option("ID", *id, "Approval id")->required();
    on_selected(approve, selected,
                [&options, id] { return cmd_signed_id(options, bus::method::kApprove, *id, "approved"); });
    auto* deny = app.add_subcommand("deny", "Deny one pending request (founder)");
    deny->add_option("ID", *id, "Approval id")->required();
    on_selected(deny, selected, [&options, id] { return cmd_signed_id(options, bus::method::kDeny, *id, "denied"); });

    auto explain = std::make_shared<ExplainOptions>();
    auto* explain_cmd = policy.add_subcommand("explain", "Show how the policy decides for a subject and why (founder)");
    explain_cmd->add_option("--cap", explain->capability, "Capability")->required();
    auto* pid = explain_cmd->add_option("--pid", explain->pid, "A running process");
    explain_cmd->add_option("--uid", explain->uid, "A uid")->excludes(pid);
    explain_cmd->add_option("--gid", explain->gid, "A gid")->excludes(pid);
    explain_cmd->add_option("--unit", explain->unit, "A systemd unit")->excludes(pid);
    explain_cmd->add_option("--cgroup", explain->cgroup, "A cgroup path")->excludes(pid);
    explain_cmd->add_option("--exe", explain->exe, "An executable path")->excludes(pid);
    on_selected(explain_cmd, selected, [&options, explain] { return cmd_policy_explain(options, *explain); });
}

}  // namespace codexvault::cli
