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
        const scan::EnvFileKind kind = scan::env_file_kind(file.name);
        scan::ScanOptions scan_options = options.scan;
        scan_options.env_reads = options.list_env_reads && kind == scan::EnvFileKind::NotEnv;
        scan::ScanResult result = scanner.scan(file.content, file.path, key, scan_options);
        if (!options.include_low) {
            std::erase_if(result.findings,
                          [](const scan::Finding& f) { return f.confidence == scan::Confidence::Low; });
        }
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
        } else {
            for (auto& name : result.env_reads) {
                reads.insert(std::move(name));
            }
        }
    };
    report.walk = walk(root_fd, options.limits, visit);
    report.env_reads.assign(reads.begin(), reads.end());
    return report;
}

}  // namespace codexvault::ingest
