#include "cli/injection_tree.hpp"

#include <algorithm>
#include <map>
#include <string_view>

#include "lib/auditcore/record.hpp"

namespace codexvault::cli {
namespace {

std::string text_of(const nlohmann::json& j, const char* key)
{
    const auto it = j.find(key);
    return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

template <typename T>
std::optional<T> number_of(const nlohmann::json& j, const char* key)
{
    const auto it = j.find(key);
    if (it == j.end() || !it->is_number()) {
        return std::nullopt;
    }
    return it->get<T>();
}

struct Builder {
    InjectionReport report;
    // The live node of each process, by (pid, start ticks); a pid alone for a parent whose start
    // time a record could not give.
    std::map<std::pair<std::int32_t, std::uint64_t>, std::size_t> by_key;

    std::optional<std::size_t> find(std::int32_t pid, std::uint64_t start_ticks) const
    {
        if (start_ticks != 0) {
            const auto it = by_key.find({pid, start_ticks});
            return it != by_key.end() ? std::optional(it->second) : std::nullopt;
        }
        // Start unknown: the newest process with that pid.
        std::optional<std::size_t> found;
        for (const auto& [key, index] : by_key) {
            if (key.first == pid &&
                (!found || report.processes[index].start_ticks >= report.processes[*found].start_ticks)) {
                found = index;
            }
        }
        return found;
    }

    std::size_t add(InjectedProcess p)
    {
        const std::size_t index = report.processes.size();
        by_key[{p.pid, p.start_ticks}] = index;
        report.processes.push_back(std::move(p));
        return index;
    }
};

// Exes, reasons and process names are chosen by whoever ran the process: no control byte of
// theirs reaches the terminal.
std::string printable(std::string_view text)
{
    std::string out;
    out.reserve(text.size());
    for (const char c : text) {
        const auto u = static_cast<unsigned char>(c);
        if (u < 0x20 || u == 0x7f) {
            static constexpr char kHex[] = "0123456789abcdef";
            out += "\\x";
            out += kHex[u >> 4];
            out += kHex[u & 0xf];
        } else {
            out += c;
        }
    }
    return out;
}

std::string node_exe(const InjectedProcess& p)
{
    std::string out;
    for (const auto& exe : p.exes) {
        if (!out.empty()) {
            out += " -> ";
        }
        out += exe.empty() ? "(exe unknown)" : printable(exe);
    }
    return out.empty() ? "(exe unknown)" : out;
}

std::string time_text(std::uint64_t usec)
{
    return usec == 0 ? std::string("-") : audit::format_realtime_utc(usec);
}

nlohmann::json node_json(const InjectionReport& r, std::size_t index)
{
    const InjectedProcess& p = r.processes[index];
    nlohmann::json children = nlohmann::json::array();
    for (const std::size_t child : p.children) {
        children.push_back(node_json(r, child));
    }
    return nlohmann::json{
        {"pid", p.pid},
        {"start_ticks", p.start_ticks},
        {"uid", p.uid ? nlohmann::json(*p.uid) : nlohmann::json(nullptr)},
        {"exes", p.exes},
        {"exe", p.exes.empty() ? std::string() : p.exes.back()},
        {"start_usec", p.start_usec},
        {"end_usec", p.end_usec},
        {"start",
         p.start_usec == 0 ? nlohmann::json(nullptr) : nlohmann::json(audit::format_realtime_utc(p.start_usec))},
        {"end", p.end_usec == 0 ? nlohmann::json(nullptr) : nlohmann::json(audit::format_realtime_utc(p.end_usec))},
        {"recipient", p.recipient},
        {"children", std::move(children)},
    };
}

void render_node(const InjectionReport& r, std::size_t index, std::size_t depth, std::string& out)
{
    const InjectedProcess& p = r.processes[index];
    out += std::string(2 + depth * 4, ' ');
    out += depth == 0 ? "" : "`-- ";
    out += "pid " + std::to_string(p.pid) + " uid " + (p.uid ? std::to_string(*p.uid) : std::string("?")) + " " +
           node_exe(p) + "  start " + time_text(p.start_usec) + "  end " + time_text(p.end_usec) +
           (p.recipient ? "  (recipient)" : "") + "\n";
    for (const std::size_t child : p.children) {
        render_node(r, child, depth + 1, out);
    }
}

}  // namespace

std::vector<InjectionReport> build_injection_reports(const std::vector<nlohmann::json>& records,
                                                     const std::optional<std::string>& only)
{
    std::vector<Builder> builders;
    std::map<std::string, std::size_t> index_of;
    for (const nlohmann::json& r : records) {
        const std::string action = text_of(r, "action");
        if (action.rfind("inject.", 0) != 0) {
            continue;
        }
        const std::string id = text_of(r, "object");
        if (id.rfind("inj-", 0) != 0 || (only && id != *only)) {
            continue;
        }
        auto [slot, fresh] = index_of.try_emplace(id, builders.size());
        if (fresh) {
            builders.emplace_back();
            builders.back().report.id = id;
        }
        Builder& b = builders[slot->second];
        InjectionReport& report = b.report;
        const std::uint64_t seq = number_of<std::uint64_t>(r, "seq").value_or(0);
        const std::uint64_t recorded = number_of<std::uint64_t>(r, "realtime_usec").value_or(0);
        const nlohmann::json subject = r.contains("subject") ? r["subject"] : nlohmann::json::object();
        const auto pid = number_of<std::int32_t>(subject, "pid");
        const auto uid = number_of<std::uint32_t>(subject, "uid");
        const std::string exe = text_of(subject, "exe");
        const bool linked = r.contains("process") && r["process"].is_object();
        const nlohmann::json link = linked ? r["process"] : nlohmann::json::object();
        const std::uint64_t start_ticks = number_of<std::uint64_t>(link, "start_ticks").value_or(0);
        const std::uint64_t start_usec = number_of<std::uint64_t>(link, "start_usec").value_or(0);
        const std::int32_t parent_pid = number_of<std::int32_t>(link, "parent_pid").value_or(0);
        const std::uint64_t parent_start = number_of<std::uint64_t>(link, "parent_start_ticks").value_or(0);
        const std::uint64_t event_usec = number_of<std::uint64_t>(link, "event_usec").value_or(0);
        if (report.grant.empty()) {
            report.grant = text_of(r, "grant");
        }

        if (action == "inject.open") {
            report.open_usec = recorded;
            report.open_reason = text_of(r, "reason");
            if (pid && !b.find(*pid, start_ticks)) {
                InjectedProcess p;
                p.pid = *pid;
                p.start_ticks = start_ticks;
                p.uid = uid;
                p.exes.push_back(exe);
                p.start_usec = start_usec;
                p.recipient = true;
                b.add(std::move(p));
            }
        } else if (action == "inject.mark.inherited" && pid && linked) {
            InjectedProcess p;
            p.pid = *pid;
            p.start_ticks = start_ticks;
            p.uid = uid;
            p.parent_pid = parent_pid;
            p.parent_start_ticks = parent_start;
            p.exes.push_back(exe);
            p.start_usec = start_usec != 0 ? start_usec : event_usec;
            const auto parent = b.find(parent_pid, parent_start);
            const std::size_t index = b.add(std::move(p));
            if (parent) {
                report.processes[*parent].children.push_back(index);
            }
        } else if (action == "inject.exec" && pid && linked) {
            if (const auto node = b.find(*pid, start_ticks)) {
                report.processes[*node].exes.push_back(exe);
                if (uid) {
                    report.processes[*node].uid = uid;
                }
            }
        } else if (action == "inject.mark.removed" && pid && linked) {
            if (const auto node = b.find(*pid, start_ticks)) {
                report.processes[*node].end_usec = event_usec != 0 ? event_usec : recorded;
                b.by_key.erase({*pid, report.processes[*node].start_ticks});  // the pid may be reused
            }
        } else if (action == "inject.close") {
            report.close_usec = recorded;
            report.close_reason = text_of(r, "reason");
        } else if (action == "inject.touch" || action == "inject.alert" || action == "inject.revoke") {
            InjectionEvent e;
            e.seq = seq;
            e.time_usec = event_usec != 0 ? event_usec : recorded;
            e.action = action;
            e.pid = pid;
            e.uid = uid;
            e.exe = exe;
            e.reason = text_of(r, "reason");
            e.repeat_count = number_of<std::uint64_t>(r, "repeat_count").value_or(0);
            report.events.push_back(std::move(e));
        }
    }
    std::vector<InjectionReport> out;
    out.reserve(builders.size());
    for (auto& b : builders) {
        out.push_back(std::move(b.report));
    }
    return out;
}

nlohmann::json injection_reports_json(const std::vector<InjectionReport>& reports)
{
    nlohmann::json list = nlohmann::json::array();
    for (const InjectionReport& r : reports) {
        nlohmann::json roots = nlohmann::json::array();
        // Roots: the recipient, and any process whose parent was not among the records read.
        std::vector<bool> is_child(r.processes.size(), false);
        for (const auto& p : r.processes) {
            for (const std::size_t c : p.children) {
                is_child[c] = true;
            }
        }
        for (std::size_t i = 0; i < r.processes.size(); ++i) {
            if (!is_child[i]) {
                roots.push_back(node_json(r, i));
            }
        }
        nlohmann::json events = nlohmann::json::array();
        for (const InjectionEvent& e : r.events) {
            events.push_back(nlohmann::json{
                {"seq", e.seq},
                {"time", time_text(e.time_usec)},
                {"time_usec", e.time_usec},
                {"action", e.action},
                {"pid", e.pid ? nlohmann::json(*e.pid) : nlohmann::json(nullptr)},
                {"uid", e.uid ? nlohmann::json(*e.uid) : nlohmann::json(nullptr)},
                {"exe", e.exe},
                {"reason", e.reason},
                {"repeat_count", e.repeat_count},
            });
        }
        list.push_back(nlohmann::json{
            {"id", r.id},
            {"grant", r.grant},
            {"opened",
             r.open_usec == 0 ? nlohmann::json(nullptr) : nlohmann::json(audit::format_realtime_utc(r.open_usec))},
            {"open_reason", r.open_reason},
            {"closed",
             r.close_usec == 0 ? nlohmann::json(nullptr) : nlohmann::json(audit::format_realtime_utc(r.close_usec))},
            {"close_reason", r.close_reason},
            {"processes", std::move(roots)},
            {"events", std::move(events)},
        });
    }
    return nlohmann::json{{"injections", std::move(list)}};
}

std::string render_injection_reports(const std::vector<InjectionReport>& reports)
{
    std::string out;
    for (const InjectionReport& r : reports) {
        out += "injection " + r.id + "  grant " + (r.grant.empty() ? std::string("-") : r.grant) + "\n";
        out += "  opened " + time_text(r.open_usec) + (r.open_reason.empty() ? "" : ": " + printable(r.open_reason)) +
               "\n";
        out += "  closed " + time_text(r.close_usec) +
               (r.close_reason.empty() ? "" : ": " + printable(r.close_reason)) + "\n";
        out += "  processes:\n";
        std::vector<bool> is_child(r.processes.size(), false);
        for (const auto& p : r.processes) {
            for (const std::size_t c : p.children) {
                is_child[c] = true;
            }
        }
        for (std::size_t i = 0; i < r.processes.size(); ++i) {
            if (!is_child[i]) {
                render_node(r, i, 0, out);
            }
        }
        out += "  touches and alerts:" + std::string(r.events.empty() ? " none\n" : "\n");
        for (const InjectionEvent& e : r.events) {
            out += "    #" + std::to_string(e.seq) + " " + time_text(e.time_usec) + " " + e.action + " pid " +
                   (e.pid ? std::to_string(*e.pid) : std::string("?")) + " uid " +
                   (e.uid ? std::to_string(*e.uid) : std::string("?")) + " " +
                   (e.exe.empty() ? std::string("(exe unknown)") : printable(e.exe)) +
                   (e.repeat_count != 0 ? " (x" + std::to_string(e.repeat_count) + ")" : std::string()) + ": " +
                   printable(e.reason) + "\n";
        }
    }
    return out;
}

}  // namespace codexvault::cli
