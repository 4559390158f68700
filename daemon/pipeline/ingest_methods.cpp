// Ingest: scan a directory the caller opened and passed (the daemon never opens a path for a
// caller), in a sandboxed worker (daemon/ingest/), under the founder's proof or an ingest:scan
// grant. The reply comes when the worker is done, without the loop ever waiting on it; it holds
// redacted previews, lengths and keyed fingerprints, never a value. docs/bus-api.md, "Ingest".
#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <memory>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <system_error>

#include "common/vault_error.hpp"
#include "daemon/ingest/protocol.hpp"
#include "daemon/ingest/scan_client.hpp"
#include "daemon/ingest/walker.hpp"
#include "daemon/pipeline/message_io.hpp"
#include "daemon/pipeline/methods.hpp"
#include "daemon/vault_service.hpp"
#include "lib/fileio/files.hpp"

namespace codexvault::daemon::methods {
namespace {

using ingest::ScanLimits;

// Findings in the reply itself; the rest go through the overflow descriptor.
constexpr std::size_t kInlineFindings = 1000;

constexpr std::array<std::string_view, 9> kOptionKeys{"include_low",    "read_hardlinked", "max_files",
                                                      "max_file_bytes", "max_total_mib",   "max_depth",
                                                      "cpu_seconds",    "memory_mib",      "timeout_seconds"};

std::uint64_t clamped(const io::ArgumentDict& dict, std::string_view key, std::uint64_t fallback, std::uint64_t low,
                      std::uint64_t high)
{
    const auto value = io::dict_uint32(dict, key);
    if (!value) {
        return fallback;
    }
    if (*value < low || *value > high) {
        throw VaultError(ErrorCode::InvalidArgument,
                         std::string(key) + " must be between " + std::to_string(low) + " and " + std::to_string(high));
    }
    return *value;
}

bool flag(const io::ArgumentDict& dict, std::string_view key)
{
    const auto value = io::dict_uint32(dict, key);
    if (value && *value > 1) {
        throw VaultError(ErrorCode::InvalidArgument, std::string(key) + " must be 0 or 1");
    }
    return value.value_or(0) == 1;
}

struct Options {
    ScanLimits limits;
    bool include_low = false;
    bool read_hardlinked = false;
};

Options read_options(const io::ArgumentDict& dict)
{
    Options o;
    o.include_low = flag(dict, "include_low");
    o.read_hardlinked = flag(dict, "read_hardlinked");
    ScanLimits& l = o.limits;
    l.max_files = clamped(dict, "max_files", l.max_files, 1, 1000000);
    l.max_file_bytes = clamped(dict, "max_file_bytes", l.max_file_bytes, 1, 64ULL << 20);
    l.max_total_bytes = clamped(dict, "max_total_mib", l.max_total_bytes >> 20, 1, 16384) << 20;
    l.max_depth = static_cast<std::uint32_t>(clamped(dict, "max_depth", l.max_depth, 1, ingest::kMaxDepthLimit));
    l.cpu_seconds = static_cast<std::uint32_t>(clamped(dict, "cpu_seconds", l.cpu_seconds, 1, 600));
    l.memory_bytes = clamped(dict, "memory_mib", l.memory_bytes >> 20, 64, 4096) << 20;
    l.wall_seconds = static_cast<std::uint32_t>(clamped(dict, "timeout_seconds", l.wall_seconds, 1, 1800));
    return o;
}

// D-Bus strings are UTF-8; file names are bytes. Bytes that are not valid UTF-8, control
// characters and the backslash itself are written \xNN (so "\" is "\x5c"): the mapping is
// one-to-one, and a name cannot put escape sequences on a terminal.
std::string display_path(std::string_view path)
{
    std::string out;
    out.reserve(path.size());
    const auto escape = [&out](unsigned char c) {
        char buf[5];
        std::snprintf(buf, sizeof buf, "\\x%02x", c);
        out += buf;
    };
    for (std::size_t i = 0; i < path.size();) {
        const auto c = static_cast<unsigned char>(path[i]);
        if (c < 0x80) {
            if (c < 0x20 || c == 0x7f || c == '\\') {
                escape(c);
            } else {
                out.push_back(static_cast<char>(c));
            }
            ++i;
            continue;
        }
        std::size_t n = c >= 0xf0 && c <= 0xf4 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 && c <= 0xdf ? 2 : 0;
        bool ok = n != 0 && i + n <= path.size();
        for (std::size_t k = 1; ok && k < n; ++k) {
            ok = (static_cast<unsigned char>(path[i + k]) & 0xc0) == 0x80;
        }
        if (ok && n == 3) {
            const auto c1 = static_cast<unsigned char>(path[i + 1]);
            ok = !(c == 0xe0 && c1 < 0xa0) && !(c == 0xed && c1 >= 0xa0);  // overlong, surrogates
        }
        if (ok && n == 4) {
            const auto c1 = static_cast<unsigned char>(path[i + 1]);
            ok = !(c == 0xf0 && c1 < 0x90) && !(c == 0xf4 && c1 >= 0x90);
        }
        if (!ok) {
            escape(c);
            ++i;
            continue;
        }
        out.append(path.substr(i, n));
        i += n;
    }
    return out;
}

const char* confidence_name(std::uint8_t c)
{
    return c == 2 ? "high" : c == 1 ? "medium" : "low";
}

std::string incomplete_reason(const ingest::ScanOutcome& o)
{
    if (!o.helper_failure.empty()) {
        return "the scan was lost: " + o.helper_failure;
    }
    // Checked first: closing the pipe is what then ended the worker.
    if (o.result_too_large) {
        return "the result was larger than the daemon keeps";
    }
    if (o.end != ingest::WorkerEnd::Completed) {
        return std::string("the worker ") + std::string(ingest::to_string(o.end));
    }
    if (!o.result.error.empty()) {
        return "the worker's result was malformed (" + o.result.error + ")";
    }
    if (!o.result.summary) {
        return "the worker ended without a summary";
    }
    const ingest::WireSummary& s = *o.result.summary;
    if (s.stopped != 0) {
        return "the walk stopped at its " + std::string(ingest::to_string(static_cast<ingest::StopReason>(s.stopped)));
    }
    if (s.findings_dropped != 0) {
        return "more findings than the findings limit";
    }
    if (s.incomplete_files != 0) {
        return std::to_string(s.incomplete_files) + " file(s) only partly scanned (size limit or scan budget)";
    }
    return {};
}

void append_overflow(sd_bus_message* reply, ingest::ScanOutcome& o, std::size_t& overflow_count)
{
    io::check(sd_bus_message_open_container(reply, 'a', "h"), "open overflow");
    const auto& findings = o.result.findings;
    if (findings.size() > kInlineFindings && o.overflow) {
        // One finding a line, tab-separated, in the order of the reply's findings struct.
        std::string text;
        for (std::size_t i = kInlineFindings; i < findings.size(); ++i) {
            const auto& f = findings[i];
            char entropy[32];
            std::snprintf(entropy, sizeof entropy, "%.3f", f.entropy);
            text += display_path(f.path) + '\t' + f.rule_id + '\t' + f.family + '\t' + f.provider + '\t' +
                    confidence_name(f.confidence) + '\t' + std::to_string(f.line) + '\t' + std::to_string(f.column) +
                    '\t' + std::to_string(f.length) + '\t' + f.preview + '\t' + entropy + '\t' + f.fingerprint + '\n';
        }
        try {
            fileio::write_all(o.overflow.get(),
                              std::span(reinterpret_cast<const std::uint8_t*>(text.data()), text.size()),
                              "the overflow findings");
        } catch (const std::system_error& e) {
            throw VaultError(ErrorCode::Unavailable, std::string("could not write the overflow findings: ") + e.what());
        }
        // Sealed: the caller's copy can only be read (from offset 0).
        if (::fcntl(o.overflow.get(), F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) != 0) {
            throw VaultError(ErrorCode::Unavailable, "could not seal the overflow findings");
        }
        io::check(sd_bus_message_append(reply, "h", o.overflow.get()), "append overflow");
        overflow_count = findings.size() - kInlineFindings;
    }
    io::check(sd_bus_message_close_container(reply), "close overflow");
}

std::string fill_reply(sd_bus_message* reply, ingest::ScanOutcome& o)
{
    const std::string incomplete = incomplete_reason(o);
    const ingest::WireSummary s = o.result.summary.value_or(ingest::WireSummary{});
    std::set<std::string> files_with_findings;
    for (const auto& f : o.result.findings) {
        files_with_findings.insert(f.path);
    }

    std::size_t overflow_count = 0;
    io::Dictionary summary(reply);
    summary.add("complete", incomplete.empty());
    summary.add("incomplete_reason", incomplete);
    summary.add("worker", std::string(ingest::to_string(o.end)));
    summary.add("files", s.files);
    summary.add("directories", s.directories);
    summary.add("entries", s.entries);
    summary.add("bytes", s.bytes_read);
    summary.add("truncated_files", s.truncated_files);
    summary.add("incomplete_files", s.incomplete_files);
    summary.add("skipped", s.skipped);
    summary.add("findings", static_cast<std::uint64_t>(o.result.findings.size()));
    summary.add("findings_dropped", s.findings_dropped);
    summary.add("files_with_findings", static_cast<std::uint64_t>(files_with_findings.size()));
    summary.add("stopped", std::string(ingest::to_string(static_cast<ingest::StopReason>(s.stopped))));
    summary.add("landlock", s.landlock_abi > 0 ? "abi " + std::to_string(s.landlock_abi)
                            : o.result.summary ? std::string("unavailable (openat2 RESOLVE_BENEATH only)")
                                               : std::string("unknown"));
    summary.add("peak_rss_kib", o.peak_rss_kib);
    summary.add("cpu_usec", o.cpu_usec);
    summary.add("inline_findings", static_cast<std::uint64_t>(std::min(o.result.findings.size(), kInlineFindings)));
    std::vector<std::string> reads = o.result.env_reads;
    summary.add_string_array("env_reads", reads);
    summary.close();

    io::check(sd_bus_message_open_container(reply, 'a', "(sssssuuusds)"), "open findings");
    for (std::size_t i = 0; i < o.result.findings.size() && i < kInlineFindings; ++i) {
        const auto& f = o.result.findings[i];
        const std::string path = display_path(f.path);
        io::check(sd_bus_message_append(reply, "(sssssuuusds)", path.c_str(), f.rule_id.c_str(), f.family.c_str(),
                                        f.provider.c_str(), confidence_name(f.confidence), f.line, f.column, f.length,
                                        f.preview.c_str(), f.entropy, f.fingerprint.c_str()),
                  "append finding");
    }
    io::check(sd_bus_message_close_container(reply), "close findings");

    io::check(sd_bus_message_open_container(reply, 'a', "(ssas)"), "open env files");
    for (const auto& e : o.result.env_files) {
        const std::string path = display_path(e.path);
        io::check(sd_bus_message_open_container(reply, 'r', "ssas"), "open env file");
        io::check(sd_bus_message_append(reply, "ss", path.c_str(), e.kind == 2 ? "template" : "env"), "env file");
        io::check(sd_bus_message_open_container(reply, 'a', "s"), "open names");
        for (const auto& name : e.names) {
            io::check(sd_bus_message_append(reply, "s", name.c_str()), "append name");
        }
        io::check(sd_bus_message_close_container(reply), "close names");
        io::check(sd_bus_message_close_container(reply), "close env file");
    }
    io::check(sd_bus_message_close_container(reply), "close env files");

    io::check(sd_bus_message_open_container(reply, 'a', "(ssi)"), "open skips");
    for (const auto& k : o.result.skips) {
        const std::string path = display_path(k.path);
        const std::string reason(ingest::to_string(static_cast<ingest::SkipReason>(k.reason)));
        io::check(sd_bus_message_append(reply, "(ssi)", path.c_str(), reason.c_str(), k.error), "append skip");
    }
    io::check(sd_bus_message_close_container(reply), "close skips");

    append_overflow(reply, o, overflow_count);

    // The outcome record: the scan's size and result counts, never a value or a path.
    std::string reason = std::to_string(s.files) + " files, " + std::to_string(s.bytes_read) + " bytes, " +
                         std::to_string(s.directories) + " directories; " + std::to_string(o.result.findings.size()) +
                         " findings in " + std::to_string(files_with_findings.size()) + " files, " +
                         std::to_string(o.result.env_files.size()) + " env files, " + std::to_string(s.skipped) +
                         " skipped; " + (incomplete.empty() ? std::string("complete") : "incomplete: " + incomplete);
    return reason;
}

}  // namespace

PreparedCall decode_ingest(sd_bus_message* message)
{
    PreparedCall call;
    auto directory = std::make_shared<UniqueFd>(io::read_fd(message));
    const io::ArgumentDict dict = io::read_argument_dict(message, kOptionKeys);
    call.proof = io::read_founder_proof(message);
    call.signed_arguments = io::signed_entries(dict);
    const Options options = read_options(dict);
    // Only the descriptor's type is looked at here; nothing beneath it is read before the call
    // is authorized and its decision durable.
    struct stat st {};
    if (::fstat(directory->get(), &st) != 0 || !S_ISDIR(st.st_mode)) {
        throw VaultError(ErrorCode::InvalidArgument, "the descriptor is not a directory");
    }
    call.object = "directory " + std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino);
    GrantUse use;
    use.capability = policy::Capability::of(policy::CapabilityKind::IngestScan);
    call.grant_use = std::move(use);
    call.start = [directory, options](RequestContext& context, const CompleteCall& complete) {
        if (context.ingest == nullptr || !context.ingest->available()) {
            throw VaultError(ErrorCode::Unavailable, "the ingest helper is not running; see the daemon's log");
        }
        ingest::ScanRequest request{};
        request.magic = ingest::kRequestMagic;
        request.limits = options.limits;
        request.include_low = options.include_low ? 1 : 0;
        request.read_hardlinked = options.read_hardlinked ? 1 : 0;
        try {
            context.ingest->start(directory->get(), request, [complete](ingest::ScanOutcome outcome) {
                auto shared = std::make_shared<ingest::ScanOutcome>(std::move(outcome));
                complete([shared](sd_bus_message* reply) { return fill_reply(reply, *shared); });
            });
        } catch (const std::runtime_error& e) {
            throw VaultError(ErrorCode::Unavailable, e.what());
        }
        directory->reset();  // the helper has its own copy
    };
    return call;
}

}  // namespace codexvault::daemon::methods
