#include "daemon/ingest/ingest_scan.hpp"

#include <algorithm>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "lib/scan/env_reads.hpp"
#include "lib/scan/finding_details.hpp"

namespace codexvault::ingest {

IngestReport scan_tree(int root_fd, scan::Scanner& scanner,
                       std::span<const std::uint8_t, scan::kFingerprintKeyBytes> key, const IngestOptions& options)
{
    IngestReport report;
    std::set<std::string, std::less<>> reads;
    const auto visit = [&](const FileVisit& file) {
        scan::ScanResult result = scanner.scan(file.content, file.path, key, options.scan);
        if (!options.include_low) {
            std::erase_if(result.findings,
                          [](const scan::Finding& f) { return f.confidence == scan::Confidence::Low; });
        }
        const scan::EnvFileKind kind = scan::env_file_kind(file.name);
        if (kind != scan::EnvFileKind::NotEnv) {
            for (scan::Finding& f : result.findings) {
                scan::withhold_value(f);  // the offset stays: where, not what
            }
        }
        const bool incomplete = result.truncated() || file.truncated;
        if (incomplete) {
            ++report.incomplete_files;
        }
        if (!result.findings.empty() || incomplete) {
            report.findings += result.findings.size();
            report.files.push_back(
                {std::string(file.path), std::move(result.findings), result.truncation, file.truncated});
        }
        if (kind != scan::EnvFileKind::NotEnv) {
            report.env_files.push_back({std::string(file.path), kind, scan::env_file_variable_names(file.content)});
        } else if (options.list_env_reads) {
            for (auto& name : scan::env_var_reads(file.content)) {
                reads.insert(std::move(name));
            }
        }
    };
    report.walk = walk(root_fd, options.limits, visit);
    report.env_reads.assign(reads.begin(), reads.end());
    return report;
}

}  // namespace codexvault::ingest
