#include "lib/auditcore/fold.hpp"

namespace codexvault::audit {
namespace {

// The catch-all overflow key's decision value: no real decision has it.
constexpr std::uint8_t kCatchAll = 0xff;

}  // namespace

RecordView FoldedRepeat::view() const noexcept
{
    RecordView r;
    r.type = EventType::FoldedRepeats;
    r.decision = decision;
    r.subject_known = subject_known;
    r.uid = uid;
    r.sender = sender;
    r.action = action;
    r.reason = reason;
    r.object = event_type_name(folded_type);  // what was folded: "decision", "outcome" ...
    r.repeat_count = count;
    return r;
}

std::string Folder::cut(std::string_view text) const
{
    if (text.size() <= limits_.max_key_field_bytes) {
        return std::string(text);
    }
    std::size_t end = limits_.max_key_field_bytes;
    // Back up to a UTF-8 character boundary so the folded record stays readable.
    while (end > 0 && (static_cast<unsigned char>(text[end]) & 0xc0) == 0x80) {
        --end;
    }
    return std::string(text.substr(0, end));
}

FoldVerdict Folder::offer(const RecordView& r, bool informational, std::uint64_t now_usec)
{
    if (!foldable(r, informational)) {
        return FoldVerdict::Write;
    }
    if (window_end_ && now_usec >= *window_end_) {
        close_window();
    }
    if (!window_end_) {
        window_end_ = now_usec + limits_.window_usec;
    }
    // An unknown subject has no uid to key on; its sender is the best identity there is.
    Key key{r.subject_known,
            r.subject_known ? r.uid : 0,
            r.subject_known ? std::string() : cut(r.sender),
            static_cast<std::uint8_t>(r.type),
            cut(r.action),
            static_cast<std::uint8_t>(r.decision)};
    if (const auto it = keys_.find(key); it != keys_.end()) {
        ++it->second.count;
        ++counted_;
        return FoldVerdict::Folded;
    }
    const OverflowKey subject_overflow{r.subject_known, r.subject_known ? r.uid : 0,
                                       static_cast<std::uint8_t>(r.decision)};
    if (keys_.size() >= limits_.max_keys) {
        return count_overflow(subject_overflow);
    }
    // Every unidentified caller shares one budget: a caller that cannot be identified must not
    // gain records by opening new connections.
    std::size_t& written = written_[SubjectKey{r.subject_known, r.subject_known ? r.uid : 0}];
    if (written >= limits_.max_written_per_subject) {
        return count_overflow(subject_overflow);
    }
    ++written;
    keys_.emplace(std::move(key), Counted{0, cut(r.reason)});
    return FoldVerdict::Write;
}

FoldVerdict Folder::count_overflow(OverflowKey key)
{
    if (overflow_.find(key) == overflow_.end() && overflow_.size() >= limits_.max_overflow_keys) {
        key = OverflowKey{false, 0, kCatchAll};  // the one key left; a slot is kept for it below
    }
    ++overflow_[key];
    ++counted_;
    return FoldVerdict::Folded;
}

void Folder::close_window()
{
    for (const auto& [key, counted] : keys_) {
        if (counted.count == 0) {
            continue;
        }
        FoldedRepeat f;
        f.subject_known = std::get<0>(key);
        f.uid = std::get<1>(key);
        f.sender = std::get<2>(key);
        f.folded_type = static_cast<EventType>(std::get<3>(key));
        f.action = std::get<4>(key);
        f.decision = static_cast<Decision>(std::get<5>(key));
        f.reason = counted.first_reason;
        f.count = counted.count;
        due_.push_back(std::move(f));
    }
    for (const auto& [key, count] : overflow_) {
        FoldedRepeat f;
        const bool catch_all = std::get<2>(key) == kCatchAll;
        f.subject_known = std::get<0>(key);
        f.uid = std::get<1>(key);
        f.decision = catch_all ? Decision::None : static_cast<Decision>(std::get<2>(key));
        f.action = "*";
        f.reason = catch_all ? "fold limit reached: calls of many subjects counted together"
                             : "fold limit reached: further calls of this subject counted together";
        f.count = count;
        f.overflow = true;
        due_.push_back(std::move(f));
    }
    keys_.clear();
    written_.clear();
    overflow_.clear();
    counted_ = 0;
    window_end_.reset();
}

std::vector<FoldedRepeat> Folder::take_due(std::uint64_t now_usec)
{
    if (window_end_ && now_usec >= *window_end_) {
        close_window();
    }
    std::vector<FoldedRepeat> out;
    out.swap(due_);
    return out;
}

std::vector<FoldedRepeat> Folder::take_all()
{
    close_window();
    std::vector<FoldedRepeat> out;
    out.swap(due_);
    return out;
}

std::optional<std::uint64_t> Folder::deadline() const noexcept
{
    if (!due_.empty()) {
        return 0;  // already due
    }
    if (!window_end_ || counted_ == 0) {
        return std::nullopt;
    }
    return window_end_;
}

}  // namespace codexvault::audit
