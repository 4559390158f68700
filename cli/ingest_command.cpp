// vaultctl ingest PATH: opens PATH itself (the daemon never opens a path for a caller), passes
// the descriptor to Ingest, prints what the sandboxed worker found (never a value: previews,
// lengths, keyed fingerprints) grouped by file with the way into the vault, or JSON, or SARIF
// 2.1.0. Exit codes (docs/man/vaultctl.1): 0 clean (or findings without --fail-on-findings),
// 20 findings with --fail-on-findings, 21 the scan was incomplete.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "cli/cli_support.hpp"
#include "common/bus_contract.hpp"
#include "lib/sdbus/string_array.hpp"

namespace codexvault::cli {
namespace {

constexpr int kExitFindings = 20;
constexpr int kExitIncomplete = 21;
constexpr std::uint64_t kScanTimeoutUsec = 35ULL * 60 * 1000000;  // past the daemon's longest limit

struct Finding {
    std::string path, rule, family, provider, confidence;
    std::uint32_t line = 0, column = 0, length = 0;
    std::string preview;
    double entropy = 0;
    std::string fingerprint;
};

struct EnvFile {
    std::string path, kind;
    std::vector<std::string> names;
};

struct Skip {
    std::string path, reason;
    int error = 0;
};

// The providers the vault ships a provider file for (policy/providers/): the secret name the
// file expects and the variable its clients read through `vaultctl run`.
struct WayOut {
    const char* provider_file;
    const char* secret;
    const char* env;
};
const std::map<std::string, WayOut>& ways_out()
{
    static const std::map<std::string, WayOut> table{
        {"openai", {"openai", "openai", "OPENAI_API_KEY"}},
        {"anthropic", {"anthropic", "anthropic", "ANTHROPIC_API_KEY"}},
        {"github", {"github", "github-token", "GITHUB_TOKEN"}},
        {"groq", {"groq", "groq", "GROQ_API_KEY"}},
        {"huggingface", {"huggingface", "huggingface", "HF_TOKEN"}},
        {"mistral", {"mistral", "mistral", "MISTRAL_API_KEY"}},
        {"google", {"gemini", "gemini", "GEMINI_API_KEY"}},
    };
    return table;
}

std::string way_out(const std::string& provider)
{
    const auto& table = ways_out();
    const auto it = table.find(provider);
    if (it == table.end()) {
        return provider.empty() ? std::string()
                                : "store it: vaultctl secret put " + provider + " (no provider file ships for " +
                                      provider + "; the code must stop holding the value)";
    }
    const WayOut& w = it->second;
    return std::string("vaultctl secret put ") + w.secret + "; enable policy/providers/" + w.provider_file +
           ".toml in the policy folder; have the code read " + w.env + " through `vaultctl run --provider " +
           w.provider_file + "`";
}

std::vector<Finding> read_overflow(int fd)
{
    std::vector<Finding> out;
    if (::lseek(fd, 0, SEEK_SET) < 0) {
        throw CallError(std::nullopt, kExitLocalError, "cannot read the overflow findings");
    }
    std::string text;
    char buffer[65536];
    for (;;) {
        const ssize_t n = ::read(fd, buffer, sizeof buffer);
        if (n < 0) {
            throw CallError(std::nullopt, kExitLocalError, "cannot read the overflow findings");
        }
        if (n == 0) {
            break;
        }
        text.append(buffer, static_cast<std::size_t>(n));
    }
    std::istringstream lines(text);
    std::string line;
    while (std::getline(lines, line)) {
        std::vector<std::string> f;
        std::size_t at = 0;
        for (;;) {
            const auto tab = line.find('\t', at);
            f.push_back(line.substr(at, tab == std::string::npos ? std::string::npos : tab - at));
            if (tab == std::string::npos) {
                break;
            }
            at = tab + 1;
        }
        if (f.size() != 11) {
            throw CallError(std::nullopt, kExitLocalError, "malformed overflow finding");
        }
        out.push_back({f[0], f[1], f[2], f[3], f[4], static_cast<std::uint32_t>(std::stoul(f[5])),
                       static_cast<std::uint32_t>(std::stoul(f[6])), static_cast<std::uint32_t>(std::stoul(f[7])), f[8],
                       std::stod(f[9]), f[10]});
    }
    return out;
}

std::string uri_of(const std::string& path)
{
    std::string out;
    for (const char c : path) {
        const auto u = static_cast<unsigned char>(c);
        if ((u >= 'a' && u <= 'z') || (u >= 'A' && u <= 'Z') || (u >= '0' && u <= '9') || c == '/' || c == '-' ||
            c == '_' || c == '.' || c == '~') {
            out.push_back(c);
        } else {
            char buf[4];
            std::snprintf(buf, sizeof buf, "%%%02X", u);
            out += buf;
        }
    }
    return out;
}

nlohmann::json finding_json(const Finding& f)
{
    return {{"path", f.path},
            {"rule", f.rule},
            {"family", f.family},
            {"provider", f.provider},
            {"confidence", f.confidence},
            {"line", f.line},
            {"column", f.column},
            {"length", f.length},
            {"preview", f.preview},
            {"entropy", f.entropy},
            {"fingerprint", f.fingerprint},
            {"way_out", way_out(f.provider)}};
}

nlohmann::json sarif(const nlohmann::json& summary, const std::vector<Finding>& findings)
{
    nlohmann::json rules = nlohmann::json::array();
    std::map<std::string, std::size_t> rule_index;
    nlohmann::json results = nlohmann::json::array();
    for (const Finding& f : findings) {
        if (rule_index.emplace(f.rule, rule_index.size()).second) {
            rules.push_back(
                {{"id", f.rule},
                 {"name", f.family},
                 {"shortDescription", {{"text", "credential: " + f.family}}},
                 {"help",
                  {{"text", way_out(f.provider).empty() ? "Move the value into the vault." : way_out(f.provider)}}}});
        }
        nlohmann::json result{
            {"ruleId", f.rule},
            {"ruleIndex", rule_index[f.rule]},
            {"level", f.confidence == "high"     ? "error"
                      : f.confidence == "medium" ? "warning"
                                                 : "note"},
            {"message", {{"text", f.family + " credential " + f.preview + " (value not shown)"}}},
            {"locations",
             {{{"physicalLocation",
                {{"artifactLocation", {{"uri", uri_of(f.path)}, {"uriBaseId", "%SRCROOT%"}}},
                 {"region",
                  {{"startLine", std::max<std::uint32_t>(1, f.line)},
                   {"startColumn", std::max<std::uint32_t>(1, f.column)}}}}}}}},
        };
        // An env file's findings carry no fingerprint (their values stay unrepresented).
        if (!f.fingerprint.empty()) {
            result["partialFingerprints"] = {{"secretFingerprint/v1", f.fingerprint}};
        }
        results.push_back(std::move(result));
    }
    return {
        {"$schema", "https://json.schemastore.org/sarif-2.1.0.json"},
        {"version", "2.1.0"},
        {"runs",
         {{{"tool", {{"driver", {{"name", "codex-vault ingest"}, {"rules", rules}}}}},
           {"invocations",
            {{{"executionSuccessful", summary.value("complete", false)},
              {"toolExecutionNotifications",
               summary.value("complete", false)
                   ? nlohmann::json::array()
                   : nlohmann::json::array(
                         {{{"level", "warning"},
                           {"message", {{"text", "scan incomplete: " + summary.value("incomplete_reason", "")}}}}})}}}},
           {"results", results}}}}};
}

int cmd_ingest(const GlobalOptions& options, const std::string& path, bool as_sarif, bool fail_on_findings,
               bool include_low)
{
    UniqueFd directory(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!directory) {
        throw CallError(std::nullopt, kExitLocalError,
                        "cannot open " + path + " as a directory: " + std::strerror(errno));
    }
    VaultClient client(options.bus);
    // The founder signs; anyone else scans under an ingest:scan grant (no key needed).
    std::optional<FounderKeyPair> key;
    std::error_code ec;
    if (options.passphrase_fd >= 0 || std::filesystem::exists(options.founder_key, ec)) {
        key = load_founder_key(options);
    }
    std::vector<std::string> signed_arguments;
    if (include_low) {
        signed_arguments.emplace_back("include_low=1");
    }
    FounderProof proof;
    if (key) {
        proof = client.prove(*key, bus::method::kIngest, signed_arguments);
    }
    const bool progress = ::isatty(STDERR_FILENO) == 1 && !options.json && !as_sarif;
    if (progress) {
        std::cerr << "scanning " << path << " in the vault's sandboxed worker..." << std::flush;
    }
    Message reply = client.call(
        bus::method::kIngest,
        [&](sd_bus_message* m) {
            check_local(sd_bus_message_append(m, "h", directory.get()), "append directory");
            check_local(sd_bus_message_open_container(m, 'a', "{sv}"), "open options");
            if (include_low) {
                check_local(sd_bus_message_append(m, "{sv}", "include_low", "u", 1U), "append option");
            }
            check_local(sd_bus_message_close_container(m), "close options");
            append_proof(m, proof);
        },
        kScanTimeoutUsec);
    if (progress) {
        std::cerr << "\r\033[K" << std::flush;
    }
    const nlohmann::json summary = read_dictionary(reply.get());
    std::vector<Finding> findings;
    sd_bus_message* m = reply.get();
    check_local(sd_bus_message_enter_container(m, 'a', "(sssssuuusds)"), "read findings");
    for (;;) {
        const char *p = nullptr, *rule = nullptr, *family = nullptr, *provider = nullptr, *confidence = nullptr,
                   *preview = nullptr, *fp = nullptr;
        std::uint32_t line = 0, column = 0, length = 0;
        double entropy = 0;
        const int r = sd_bus_message_read(m, "(sssssuuusds)", &p, &rule, &family, &provider, &confidence, &line,
                                          &column, &length, &preview, &entropy, &fp);
        check_local(r, "read finding");
        if (r == 0) {
            break;
        }
        findings.push_back({p, rule, family, provider, confidence, line, column, length, preview, entropy, fp});
    }
    check_local(sd_bus_message_exit_container(m), "read findings");
    std::vector<EnvFile> env_files;
    check_local(sd_bus_message_enter_container(m, 'a', "(ssas)"), "read env files");
    while (true) {
        const int r = sd_bus_message_enter_container(m, 'r', "ssas");
        check_local(r, "read env file");
        if (r == 0) {
            break;
        }
        const char *p = nullptr, *kind = nullptr;
        check_local(sd_bus_message_read(m, "ss", &p, &kind), "read env file");
        EnvFile e{p, kind, {}};
        check_local(bus::read_string_array(m, e.names), "read env names");
        check_local(sd_bus_message_exit_container(m), "read env file");
        env_files.push_back(std::move(e));
    }
    check_local(sd_bus_message_exit_container(m), "read env files");
    std::vector<Skip> skips;
    check_local(sd_bus_message_enter_container(m, 'a', "(ssi)"), "read skips");
    for (;;) {
        const char *p = nullptr, *reason = nullptr;
        int error = 0;
        const int r = sd_bus_message_read(m, "(ssi)", &p, &reason, &error);
        check_local(r, "read skip");
        if (r == 0) {
            break;
        }
        skips.push_back({p, reason, error});
    }
    check_local(sd_bus_message_exit_container(m), "read skips");
    check_local(sd_bus_message_enter_container(m, 'a', "h"), "read overflow");
    for (;;) {
        int fd = -1;
        const int r = sd_bus_message_read(m, "h", &fd);
        check_local(r, "read overflow");
        if (r == 0) {
            break;
        }
        for (auto& f : read_overflow(fd)) {
            findings.push_back(std::move(f));
        }
    }
    check_local(sd_bus_message_exit_container(m), "read overflow");

    const bool complete = summary.value("complete", false);
    if (as_sarif) {
        std::cout << sarif(summary, findings).dump(2) << '\n';
    } else if (options.json) {
        nlohmann::json out{{"summary", summary}};
        out["findings"] = nlohmann::json::array();
        for (const Finding& f : findings) {
            out["findings"].push_back(finding_json(f));
        }
        out["env_files"] = nlohmann::json::array();
        for (const EnvFile& e : env_files) {
            out["env_files"].push_back({{"path", e.path}, {"kind", e.kind}, {"names", e.names}});
        }
        out["skips"] = nlohmann::json::array();
        for (const Skip& s : skips) {
            out["skips"].push_back({{"path", s.path}, {"reason", s.reason}, {"errno", s.error}});
        }
        std::cout << out.dump(2) << '\n';
    } else {
        std::string current;
        for (const Finding& f : findings) {
            if (f.path != current) {
                current = f.path;
                std::cout << current << '\n';
            }
            std::cout << "  " << f.line << ':' << f.column << "  " << f.confidence << "  " << f.rule << "  "
                      << f.preview
                      << (f.fingerprint.empty() ? std::string("  (env file: value withheld)")
                                                : "  fingerprint " + f.fingerprint.substr(0, 12))
                      << '\n';
            if (const std::string w = way_out(f.provider); !w.empty()) {
                std::cout << "      way out: " << w << '\n';
            }
        }
        for (const EnvFile& e : env_files) {
            std::cout << e.path << "  untrusted " << (e.kind == "template" ? "env template" : "env file")
                      << " (values never read into any result): ";
            for (std::size_t i = 0; i < e.names.size(); ++i) {
                std::cout << (i != 0 ? ", " : "") << e.names[i];
            }
            std::cout << '\n';
        }
        if (summary.contains("env_reads") && !summary["env_reads"].empty()) {
            std::cout << "environment variables the code reads:";
            for (const auto& name : summary["env_reads"]) {
                std::cout << ' ' << name.get<std::string>();
            }
            std::cout << '\n';
        }
        for (const Skip& s : skips) {
            std::cout << "skipped " << s.path << ": " << s.reason << '\n';
        }
        std::cout << summary.value("files", std::uint64_t{0}) << " files, " << summary.value("bytes", std::uint64_t{0})
                  << " bytes scanned; " << findings.size() << " finding(s), " << env_files.size() << " env file(s), "
                  << summary.value("skipped", std::uint64_t{0}) << " skipped; "
                  << (complete ? std::string("complete")
                               : "INCOMPLETE: " + summary.value("incomplete_reason", std::string()))
                  << '\n';
    }
    if (fail_on_findings && !findings.empty()) {
        return kExitFindings;
    }
    return complete ? 0 : kExitIncomplete;
}

}  // namespace

void add_ingest_command(CLI::App& app, const GlobalOptions& options, SelectedCommand& selected)
{
    struct State {
        std::string path;
        bool sarif = false;
        bool fail_on_findings = false;
        bool include_low = false;
    };
    auto state = std::make_shared<State>();
    auto* ingest = app.add_subcommand("ingest", "Scan a project folder for credentials in the vault's sandbox");
    ingest->add_option("PATH", state->path, "The folder to scan (opened by vaultctl, passed as a descriptor)")
        ->required();
    ingest->add_flag("--sarif", state->sarif, "SARIF 2.1.0 output for code-scanning tools");
    ingest->add_flag("--fail-on-findings", state->fail_on_findings, "Exit 20 when anything was found");
    ingest->add_flag("--include-low", state->include_low, "Include low-confidence rules (heuristics)");
    on_selected(ingest, selected, [&options, state] {
        return cmd_ingest(options, state->path, state->sarif, state->fail_on_findings, state->include_low);
    });
}

}  // namespace codexvault::cli
