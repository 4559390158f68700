// One ingest scan: the walker (walker.hpp) hands each file to the scanner (lib/scan) and the
// env helpers; the report holds findings (never a secret: offsets, redacted previews, keyed
// fingerprints), env files with their variable names only, the environment variables the code
// reads, and everything the walk skipped or stopped at. This is what the worker computes; how it
// leaves the worker (the result pipe, the bus reply) is not decided here.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "daemon/ingest/walker.hpp"
#include "lib/scan/env_files.hpp"
#include "lib/scan/finding.hpp"
#include "lib/scan/matcher.hpp"

namespace codexvault::ingest {

struct IngestOptions {
    WalkLimits limits;
    scan::ScanOptions scan;
    bool include_low = false;    // keep findings of low-confidence rules
    bool list_env_reads = true;  // run env_var_reads over every file
};

struct FileReport {
    std::string path;
    std::vector<scan::Finding> findings;
    scan::Truncation truncation = scan::Truncation::None;  // the scan of this file stopped early
    bool file_truncated = false;                           // only a prefix of the file was read
};

struct EnvFileReport {
    std::string path;
    scan::EnvFileKind kind = scan::EnvFileKind::Env;
    std::vector<std::string> names;  // variable names only; values never leave the scanner
};

struct IngestReport {
    WalkSummary walk;
    std::vector<FileReport> files;  // files with findings, or whose scan stopped early, in walk order
    std::vector<EnvFileReport> env_files;
    std::vector<std::string> env_reads;  // variable names the code reads, sorted, unique
    std::uint64_t findings = 0;
    std::uint64_t incomplete_files = 0;  // scan truncated or file read only in part
    [[nodiscard]] bool complete() const noexcept { return walk.complete() && incomplete_files == 0; }
};

// Walks beneath root_fd and scans every file read with `scanner` (one per thread) under the
// fingerprint key. Exceptions as walk().
IngestReport scan_tree(int root_fd, scan::Scanner& scanner,
                       std::span<const std::uint8_t, scan::kFingerprintKeyBytes> key, const IngestOptions& options);

}  // namespace codexvault::ingest
