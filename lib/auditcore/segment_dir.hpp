// The audit log's folder on disk: file names, listing and reading segments, and verifying a whole
// folder with the pure Verifier. Shared by the daemon's writer (start-up verification) and by
// vaultctl (`audit verify`, `audit tail`), so it depends on nothing but the audit core and the
// state-file helpers.
//
//   STATE/audit/                 0700
//     000000000001.seg ...       segments, twelve digits so that lexical order is numeric order
//     head                       signed head file (0600), replaced atomically after each checkpoint
//     audit.pub                  the audit public key, one line (0644)
//
// Errors: I/O failures (a folder or file that cannot be opened or read) throw std::system_error
// naming the file. Anything wrong with the CONTENT is a verification finding, never an exception.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "lib/auditcore/checkpoint.hpp"
#include "lib/auditcore/verifier.hpp"

namespace codexvault::audit {

inline constexpr std::string_view kSegmentSuffix = ".seg";
inline constexpr std::size_t kSegmentNameDigits = 12;
inline constexpr char kHeadFileName[] = "head";
inline constexpr char kPublicKeyFileName[] = "audit.pub";
// Readers refuse a segment file larger than this (the writer rotates at 64 MiB by default, plus
// at most one checkpoint interval of records): a bound on what one read can allocate.
inline constexpr std::uint64_t kMaxSegmentFileBytes = std::uint64_t{1} << 30;
// A head file is 144 bytes; a larger one is read up to this size and reported as a bad head.
inline constexpr std::size_t kMaxHeadFileBytes = 4096;

// "000000000001.seg"; parse_segment_file_name accepts exactly that shape (number may be 0, which
// the verifier then reports through the header).
std::string segment_file_name(std::uint64_t number);
std::optional<std::uint64_t> parse_segment_file_name(std::string_view name) noexcept;

struct SegmentFile {
    std::uint64_t number = 0;  // from the file name
    std::string name;
};

// The segment files of the folder, sorted by number. Other entries are ignored.
std::vector<SegmentFile> list_segments(int dir_fd);

enum class ReadStatus { Ok, NotRegular };
// Reads a whole segment into `out` (reusing its capacity). NotRegular: a symlink, folder or other
// non-regular entry carries a segment's name (that is a finding, not an I/O error). Throws
// std::system_error when it cannot be opened or read, or when it exceeds kMaxSegmentFileBytes.
ReadStatus read_segment(int dir_fd, const std::string& name, std::vector<std::uint8_t>& out);

// The head file's bytes, or nullopt when there is none.
std::optional<std::vector<std::uint8_t>> read_head_file(int dir_fd);

struct DirectoryVerification {
    VerifyReport report;
    std::vector<SegmentFile> segments;  // every segment file found, in order
    bool head_present = false;
};

// Lists, reads and verifies every segment in order, with the head file when present. Besides the
// Verifier's checks, a segment whose header number differs from its file name is reported as
// segment-out-of-order (the writer names new segments by number, so a renamed file would
// otherwise collide later), and a non-regular entry as bad-segment-header.
DirectoryVerification verify_directory(int dir_fd, const PublicKey& key, VerifyOptions options = {});

}  // namespace codexvault::audit
