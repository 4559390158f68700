#include "lib/auditcore/segment_dir.hpp"

#include <fcntl.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <span>
#include <system_error>

#include "lib/auditcore/chain.hpp"
#include "lib/fileio/files.hpp"
#include "lib/fileio/unique_fd.hpp"

namespace codexvault::audit {
namespace {

[[noreturn]] void throw_errno(int error, const std::string& what)
{
    throw std::system_error(error, std::generic_category(), what);
}

// A report for a problem the Verifier cannot see (it is given bytes, not names): what it found
// so far, then this finding in place of the rest.
VerifyReport fail_report(Verifier& verifier, Problem problem, const Position& at, std::string detail)
{
    VerifyReport report = verifier.finish();
    report.ok = false;
    report.problem = Finding{problem, at, std::move(detail)};
    report.resumable = false;
    report.torn_tail.reset();
    report.resume.pending_torn.reset();
    return report;
}

}  // namespace

std::string segment_file_name(std::uint64_t number)
{
    char text[32];
    std::snprintf(text, sizeof text, "%012llu", static_cast<unsigned long long>(number));
    return std::string(text) + std::string(kSegmentSuffix);
}

std::optional<std::uint64_t> parse_segment_file_name(std::string_view name) noexcept
{
    if (name.size() != kSegmentNameDigits + kSegmentSuffix.size() || !name.ends_with(kSegmentSuffix)) {
        return std::nullopt;
    }
    std::uint64_t number = 0;
    for (const char c : name.substr(0, kSegmentNameDigits)) {
        if (c < '0' || c > '9') {
            return std::nullopt;
        }
        number = number * 10 + static_cast<std::uint64_t>(c - '0');  // 12 digits cannot overflow
    }
    return number;
}

std::vector<SegmentFile> list_segments(int dir_fd)
{
    std::vector<SegmentFile> segments;
    for (auto& name : fileio::list_directory(dir_fd)) {
        if (const auto number = parse_segment_file_name(name)) {
            segments.push_back(SegmentFile{*number, std::move(name)});
        }
    }
    std::sort(segments.begin(), segments.end(),
              [](const SegmentFile& a, const SegmentFile& b) { return a.number < b.number; });
    return segments;
}

ReadStatus read_segment(int dir_fd, const std::string& name, std::vector<std::uint8_t>& out)
{
    out.clear();
    UniqueFd fd(::openat(dir_fd, name.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK));
    if (!fd) {
        if (errno == ELOOP) {
            return ReadStatus::NotRegular;
        }
        throw_errno(errno, "cannot open audit segment " + name);
    }
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) {
        throw_errno(errno, "cannot inspect audit segment " + name);
    }
    if (!S_ISREG(st.st_mode)) {
        return ReadStatus::NotRegular;
    }
    if (static_cast<std::uint64_t>(st.st_size) > kMaxSegmentFileBytes) {
        throw_errno(EFBIG, "audit segment " + name + " is larger than " + std::to_string(kMaxSegmentFileBytes) +
                               " bytes; refusing to read it");
    }
    // The file may grow while we read (the daemon appends): read what fstat saw, which ends at a
    // frame boundary or inside a frame still being written, a torn tail to a reader.
    out.resize(static_cast<std::size_t>(st.st_size));
    const std::size_t got = fileio::read_until_eof(fd.get(), out.data(), out.size(), "audit segment " + name);
    out.resize(got);
    return ReadStatus::Ok;
}

std::optional<std::vector<std::uint8_t>> read_head_file(int dir_fd)
{
    struct stat st {};
    if (::fstatat(dir_fd, kHeadFileName, &st, AT_SYMLINK_NOFOLLOW) != 0) {
        if (errno == ENOENT) {
            return std::nullopt;
        }
        throw_errno(errno, "cannot inspect the audit head file");
    }
    if (!S_ISREG(st.st_mode)) {
        // Present but not a file: hand the verifier something that is not a head (bad-head).
        return std::vector<std::uint8_t>{};
    }
    UniqueFd fd(::openat(dir_fd, kHeadFileName, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY));
    if (!fd) {
        throw_errno(errno, "cannot open the audit head file");
    }
    std::vector<std::uint8_t> bytes(kMaxHeadFileBytes);
    bytes.resize(fileio::read_until_eof(fd.get(), bytes.data(), bytes.size(), "the audit head file"));
    return bytes;
}

DirectoryVerification verify_directory(int dir_fd, const PublicKey& key, VerifyOptions options)
{
    DirectoryVerification result;
    result.segments = list_segments(dir_fd);
    const std::optional<std::vector<std::uint8_t>> head = read_head_file(dir_fd);
    result.head_present = head.has_value();
    std::optional<std::span<const std::uint8_t>> head_span;
    if (head) {
        head_span = std::span<const std::uint8_t>(*head);
    }
    Verifier verifier(key, head_span, options);
    std::vector<std::uint8_t> bytes;  // one segment at a time; the verifier keeps no view into it
    for (std::size_t index = 0; index < result.segments.size(); ++index) {
        const SegmentFile& file = result.segments[index];
        if (read_segment(dir_fd, file.name, bytes) == ReadStatus::NotRegular) {
            result.report = fail_report(verifier, Problem::BadSegmentHeader, Position{index, file.number, 0, 0},
                                        file.name + " is not a regular file (symbolic link or other entry)");
            return result;
        }
        if (const auto header = parse_segment_header(bytes); header && header->segment != file.number) {
            result.report = fail_report(verifier, Problem::SegmentOutOfOrder,
                                        Position{index, header->segment, 0, header->first_seq},
                                        "file " + file.name + " holds segment " + std::to_string(header->segment) +
                                            ": segment files were renamed");
            return result;
        }
        if (!verifier.add_segment(bytes)) {
            break;
        }
    }
    result.report = verifier.finish();
    return result;
}

}  // namespace codexvault::audit
