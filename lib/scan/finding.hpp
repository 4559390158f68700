// What a scan returns. A Finding never holds the secret: it locates it (offset and length into
// the caller's buffer, line and column) and describes it (preview of the public prefix only,
// entropy, keyed fingerprint).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "lib/scan/rules.hpp"

namespace codexvault::scan {

inline constexpr std::size_t kFingerprintKeyBytes = 32;
inline constexpr std::size_t kFingerprintBytes = 16;  // hex-encoded: 32 digits

// Findings kept per file by default, and the most a caller may ask for.
inline constexpr std::size_t kDefaultMaxFindings = 1000;
inline constexpr std::size_t kMaxFindingsLimit = 100000;

struct Finding {
    std::string rule_id;
    std::string family;
    std::string provider;  // the vault's provider name, for the "store it in the vault" hint; may be empty
    Confidence confidence = Confidence::Low;
    std::size_t line = 0;    // 1-based
    std::size_t column = 0;  // 1-based, in bytes from the start of the line (not characters)
    std::size_t offset = 0;  // of the secret, in bytes from the start of the scanned content
    std::size_t length = 0;  // of the secret, in bytes
    // The rule's public prefix (at most 16 bytes and at most a third of the value; nothing for
    // rules without one), then "…" and the length: "ghp_…(40)", "…(23)".
    std::string preview;
    double entropy = 0.0;  // Shannon entropy of the secret, bits per byte
    // Keyed BLAKE2b-256 of the secret (libsodium crypto_generichash, caller's 32-byte key),
    // first 16 bytes as 32 lowercase hex digits. Equal secrets under one key match.
    std::string fingerprint;
};

// A finding in an env file keeps only where it is and which rule found it: no length, no
// preview bytes, no entropy, no fingerprint. Its preview is this, its length and entropy 0, its
// fingerprint empty (withhold_value, finding_details.hpp).
inline constexpr std::string_view kWithheldPreview = "\xE2\x80\xA6(withheld)";

struct ScanStats {
    std::uint64_t hits = 0;          // first-stage match reports
    std::uint64_t gated = 0;         // keyword reports a rule's gate turned away (gates.hpp)
    std::uint64_t candidates = 0;    // second-stage matches examined
    std::uint64_t placeholders = 0;  // dropped by the placeholder policy
    std::uint64_t low_entropy = 0;   // dropped below the rule's entropy floor
    std::uint64_t rejected = 0;      // dropped by a verifier or an ignore pattern
    std::uint64_t overlapped = 0;    // dropped for an overlapping, more confident finding
    std::uint64_t budget_spent = 0;  // second-stage budget charged (second_stage.hpp)
    std::uint64_t limit_hits = 0;    // second-stage searches that gave up at their own limit
};

enum class Truncation : std::uint8_t {
    None,
    FindingCap,   // more findings than max_findings (or 4x that many candidates before overlap removal)
    Budget,       // the scan's second-stage budget ran out; later parts of the input were not verified
    SearchLimit,  // a search gave up at its own PCRE2 limit; that window may hold a missed secret
    InputSize,    // only the first 4 GiB - 1 bytes were scanned (Vectorscan's length limit)
};

struct ScanResult {
    std::vector<Finding> findings;  // in input order
    // With ScanOptions::env_reads: the environment variable names the content reads
    // (env_reads.hpp), each once, in order; found by the same first-stage pass.
    std::vector<std::string> env_reads;
    Truncation truncation = Truncation::None;
    ScanStats stats;
    [[nodiscard]] bool truncated() const noexcept { return truncation != Truncation::None; }
};

struct ScanOptions {
    std::size_t max_findings = kDefaultMaxFindings;  // clamped to [1, kMaxFindingsLimit]
    // Second-stage budget per input byte, plus a fixed floor, in PCRE2 match-limit units
    // (second_stage.hpp); bounds the time a hostile file (millions of near-miss candidates or
    // a pattern that backtracks) can cost.
    std::uint64_t budget_per_byte = 16;
    std::uint64_t budget_floor = std::uint64_t{1} << 24;
    bool env_reads = false;  // list the environment variable names read (ScanResult::env_reads)
};

}  // namespace codexvault::scan
