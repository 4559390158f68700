// StreamRedactor: replaces every occurrence of any needle of a NeedleSet in a byte stream that
// arrives in chunks of any size, so that no needle survives in what it releases (unless a marker
// itself can complete one: keep needle characters out of markers); the output is the same byte
// for byte however the stream is split.
//
// What is replaced: each maximal run of overlapping needle occurrences becomes one marker. The
// run starts at the leftmost occurrence, and the marker names the secret of the longest needle
// starting there (leftmost-longest); the run then extends over every occurrence that overlaps
// it, so no byte of any occurrence is released (plain leftmost-longest would release the tail
// of an occurrence overlapping a replaced one, say "12345678" in "abcdefgh12345678" when both
// "abcdefgh12" and "gh12345678" are secrets). Occurrences that only touch get a marker each.
//
// Memory per stream: at most longest() - 1 bytes are held back between calls (held_back()), in
// a buffer allocated once at construction, plus a list of pending replacements that lie inside
// that window. feed() holds back only bytes that may still turn out to be part of a needle.
//
// Not thread-safe; one redactor per stream. Pure computation: no I/O, no global state.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "lib/redact/needle_set.hpp"

namespace codexvault::redact {

// Renders the marker for a secret name; called once per secret when a redactor is made.
using MarkerBuilder = std::function<std::string(std::string_view name)>;

// "<redacted:NAME>"
std::string named_marker(std::string_view name);

// The same text whatever the secret, e.g. fixed_marker("[REDACTED]").
MarkerBuilder fixed_marker(std::string text);

class StreamRedactor {
public:
    explicit StreamRedactor(std::shared_ptr<const NeedleSet> needles, const MarkerBuilder& marker = named_marker);
    ~StreamRedactor();
    StreamRedactor(const StreamRedactor&) = delete;
    StreamRedactor& operator=(const StreamRedactor&) = delete;

    // Appends to `out` the redacted bytes that are safe to release so far.
    void feed(std::span<const std::uint8_t> chunk, std::vector<std::uint8_t>& out);

    // Ends the stream: appends everything still held back. The redactor is then ready for a new
    // stream; the replacement counts keep accumulating.
    void finish(std::vector<std::uint8_t>& out);

    // Markers written so far, in total and by the secret that named them.
    [[nodiscard]] std::uint64_t replacements() const noexcept { return replacements_; }
    [[nodiscard]] std::span<const std::uint64_t> replacements_by_secret() const noexcept { return by_secret_; }

    // Bytes fed but not yet released or replaced; never more than max_held_back().
    [[nodiscard]] std::size_t held_back() const noexcept { return held_size_; }
    [[nodiscard]] std::size_t max_held_back() const noexcept { return held_.size(); }

private:
    // A run of overlapping occurrences, in absolute stream positions [start, end).
    struct Run {
        std::uint64_t start = 0;
        std::uint64_t end = 0;
        std::uint32_t secret = 0;
        bool marked = false;  // its marker is out; bytes up to `end` are dropped as they come
    };

    void add_occurrence(std::uint64_t end, std::uint32_t state);
    void settle(std::uint64_t limit, std::vector<std::uint8_t>& out);
    void emit_text(std::uint64_t from, std::uint64_t to, std::vector<std::uint8_t>& out) const;
    void keep_held_bytes();

    std::shared_ptr<const NeedleSet> needles_;
    std::vector<std::string> markers_;
    std::vector<std::uint64_t> by_secret_;
    std::uint64_t replacements_ = 0;

    std::uint32_t state_ = Automaton::kRoot;
    std::uint64_t position_ = 0;  // bytes fed in this stream
    std::uint64_t emitted_ = 0;   // bytes before this are released or replaced
    std::vector<Run> runs_;       // ordered, disjoint, all ending after emitted_

    // Stream bytes [emitted_, position_) between calls: sized once to longest() - 1.
    std::vector<std::uint8_t> held_;
    std::size_t held_size_ = 0;

    // The chunk being fed and its first byte's position; the held bytes precede it.
    const std::uint8_t* chunk_ = nullptr;
    std::uint64_t chunk_start_ = 0;
};

}  // namespace codexvault::redact
