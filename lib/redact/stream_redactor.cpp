#include "lib/redact/stream_redactor.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "lib/redact/automaton.hpp"
#include "lib/redact/needle_set.hpp"
#include "lib/redact/wipe.hpp"

namespace codexvault::redact {

std::string named_marker(std::string_view name)
{
    std::string marker = "<redacted:";
    marker += name;
    marker += '>';
    return marker;
}

MarkerBuilder fixed_marker(std::string text)
{
    return [text = std::move(text)](std::string_view /*name*/) {
        return text;
    };
}

StreamRedactor::StreamRedactor(std::shared_ptr<const NeedleSet> needles, const MarkerBuilder& marker)
    : needles_(std::move(needles))
{
    if (!needles_) {
        throw std::invalid_argument("StreamRedactor needs a NeedleSet");
    }
    for (std::uint32_t secret = 0; secret < needles_->secret_count(); ++secret) {
        markers_.push_back(marker(needles_->name(secret)));
    }
    by_secret_.assign(needles_->secret_count(), 0);
    held_.assign(needles_->longest() > 0 ? needles_->longest() - 1 : 0, 0);
}

StreamRedactor::~StreamRedactor()
{
    wipe(held_);
}

void StreamRedactor::feed(std::span<const std::uint8_t> chunk, std::vector<std::uint8_t>& out)
{
    const Automaton& automaton = needles_->automaton();
    const std::uint8_t* data = chunk.data();
    const std::size_t size = chunk.size();
    chunk_ = data;
    chunk_start_ = position_;
    std::uint32_t state = state_;
    std::size_t i = 0;
    while (i < size) {
        const std::uint32_t depth = automaton.depth(state);
        // At depth 0 or 1 no needle can have begun before the last byte read, so the automaton's
        // state can be rebuilt from the next window that begins a needle; everything before it
        // is plain text. (At depth 1 on a chunk's first byte that byte is in held_: just step.)
        if (depth == 0 || (depth == 1 && i > 0)) {
            const std::size_t j = automaton.next_candidate(data, i - depth, size);
            if (j + 1 == size) {
                state = automaton.step(Automaton::kRoot, data[j]);
                break;
            }
            state = automaton.step(automaton.step(Automaton::kRoot, data[j]), data[j + 1]);
            i = j + 2;
            continue;
        }
        state = automaton.step(state, data[i]);
        ++i;
        if (automaton.match_length(state) != 0) {
            add_occurrence(chunk_start_ + i, state);
            settle(chunk_start_ + i - automaton.live_depth(state), out);
        }
    }
    state_ = state;
    position_ = chunk_start_ + size;
    settle(position_ - automaton.live_depth(state), out);
    keep_held_bytes();
}

void StreamRedactor::finish(std::vector<std::uint8_t>& out)
{
    settle(position_, out);
    wipe_bytes(held_.data(), held_size_);
    held_size_ = 0;
    runs_.clear();
    state_ = Automaton::kRoot;
    position_ = 0;
    emitted_ = 0;
    chunk_start_ = 0;
}

// Occurrences arrive in order of their end, and for each end only the longest matters (shorter
// ones ending there lie inside it). A new one absorbs every run it overlaps; the merged run is
// named by whichever begins first, and on a tie by the new one, which is longer.
void StreamRedactor::add_occurrence(std::uint64_t end, std::uint32_t state)
{
    const Automaton& automaton = needles_->automaton();
    Run merged{end - automaton.match_length(state), end, automaton.match_label(state), false};
    while (!runs_.empty() && runs_.back().end > merged.start) {
        const Run& run = runs_.back();
        if (run.start < merged.start) {
            merged.start = run.start;
            merged.secret = run.secret;
        }
        merged.marked = merged.marked || run.marked;
        runs_.pop_back();
    }
    runs_.push_back(merged);
}

// Releases everything before `limit`, the first position a needle not yet ended may still
// cover: text as is, and each run that starts before it as its marker. A run that ends past
// `limit` can still grow, so it stays, marked, and its later bytes are dropped as they come.
void StreamRedactor::settle(std::uint64_t limit, std::vector<std::uint8_t>& out)
{
    while (!runs_.empty() && runs_.front().start < limit) {
        Run& run = runs_.front();
        if (!run.marked) {
            emit_text(emitted_, run.start, out);
            const std::string& marker = markers_[run.secret];
            out.insert(out.end(), marker.begin(), marker.end());
            ++replacements_;
            ++by_secret_[run.secret];
            run.marked = true;
        }
        emitted_ = std::max(emitted_, run.end);
        if (run.end > limit) {
            return;
        }
        runs_.erase(runs_.begin());
    }
    if (emitted_ < limit) {
        emit_text(emitted_, limit, out);
        emitted_ = limit;
    }
}

void StreamRedactor::emit_text(std::uint64_t from, std::uint64_t to, std::vector<std::uint8_t>& out) const
{
    if (from >= to) {
        return;
    }
    const std::uint64_t held_start = chunk_start_ - held_size_;
    if (from < chunk_start_) {
        const std::uint64_t held_end = std::min(to, chunk_start_);
        out.insert(out.end(), held_.data() + (from - held_start), held_.data() + (held_end - held_start));
        from = held_end;
    }
    if (from < to) {
        out.insert(out.end(), chunk_ + (from - chunk_start_), chunk_ + (to - chunk_start_));
    }
}

// Moves the bytes not yet released, [emitted_, position_), into held_ for the next call.
void StreamRedactor::keep_held_bytes()
{
    const std::uint64_t held_start = chunk_start_ - held_size_;
    const std::uint64_t count = position_ - emitted_;
    if (count > held_.size()) {
        throw std::logic_error("StreamRedactor: hold-back bound exceeded");  // a bug, never input
    }
    std::size_t kept = 0;
    if (emitted_ < chunk_start_) {
        const std::size_t from_held = static_cast<std::size_t>(chunk_start_ - emitted_);
        std::memmove(held_.data(), held_.data() + (emitted_ - held_start), from_held);
        kept = from_held;
    }
    const std::uint64_t chunk_from = std::max(emitted_, chunk_start_);
    const auto from_chunk = static_cast<std::size_t>(position_ - chunk_from);
    if (from_chunk != 0) {
        std::memcpy(held_.data() + kept, chunk_ + (chunk_from - chunk_start_), from_chunk);
    }
    const auto new_size = static_cast<std::size_t>(count);
    if (new_size < held_size_) {
        wipe_bytes(held_.data() + new_size, held_size_ - new_size);
    }
    held_size_ = new_size;
    chunk_ = nullptr;
    chunk_start_ = position_;
}

}  // namespace codexvault::redact
