#include "daemon/integrity/state_ledger.hpp"

#include <charconv>

namespace codexvault::daemon {
namespace {

constexpr std::string_view kGenerationPrefix = "generation ";

Judgement lock(std::string reason, bool refuse_content)
{
    return Judgement{Verdict::Lock, refuse_content, std::move(reason)};
}

}  // namespace

std::string generation_reason(std::uint64_t generation, std::string_view why, std::uint64_t audit_seq)
{
    return std::string(kGenerationPrefix) + std::to_string(generation) + " (" + std::string(why) +
           "); after audit seq " + std::to_string(audit_seq);
}

std::optional<std::uint64_t> parse_generation_reason(std::string_view reason) noexcept
{
    if (!reason.starts_with(kGenerationPrefix)) {
        return std::nullopt;
    }
    reason.remove_prefix(kGenerationPrefix.size());
    std::uint64_t value = 0;
    const auto [end, error] = std::from_chars(reason.data(), reason.data() + reason.size(), value);
    if (error != std::errc() || end == reason.data() || value == 0) {
        return std::nullopt;
    }
    return value;
}

Judgement judge_state_file(store::StateKind kind, const FileView& file, const LogView& log)
{
    const std::string name = store::file_name(kind);
    const auto recorded = log.untrusted ? std::nullopt : log.recorded_generation;
    switch (file.form) {
    case FileForm::Bad:
        return lock(name + " failed authentication (" + file.detail + ")", true);
    case FileForm::Legacy:
        if (recorded) {
            return lock(name + " is not authenticated, but the audit log records its authenticated generation " +
                            std::to_string(*recorded) + ": it was replaced",
                        true);
        }
        if (!log.previous_log) {
            return lock(name + " is not authenticated and there is no earlier audit log to vouch for it", true);
        }
        return Judgement{Verdict::Adopt, false, name + " adopted from an earlier version's unauthenticated format"};
    case FileForm::Absent:
        if (recorded) {
            return lock(name + " is missing, but the audit log records its generation " + std::to_string(*recorded),
                        false);
        }
        return {};
    case FileForm::Authentic:
        break;
    }
    if (recorded && *recorded > file.generation) {
        return lock(name + " was rolled back: generation " + std::to_string(file.generation) +
                        " on disk, the audit log records generation " + std::to_string(*recorded),
                    false);
    }
    if (log.untrusted || file.stamp.seq == 0) {
        return {};
    }
    const std::string seq = std::to_string(file.stamp.seq);
    if (!log.previous_log) {
        return lock("audit log missing: " + name + " was written when the log held seq " + seq +
                        ", but there is no earlier log",
                    false);
    }
    switch (log.stamp) {
    case StampInLog::Missing:
        return lock("audit log older than " + name + ": the file was written after audit seq " + seq +
                        ", which the log does not reach (an older audit folder restored?)",
                    false);
    case StampInLog::Differs:
        return lock("audit log older than " + name + " or replaced: the record at seq " + seq +
                        " is not the one the file was written after",
                    false);
    case StampInLog::NotChecked:
    case StampInLog::Found:
        break;
    }
    return {};
}

}  // namespace codexvault::daemon
