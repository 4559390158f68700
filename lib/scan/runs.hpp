// The run finder: maximal runs of at least `min` bytes drawn from one byte class, for rules
// with no literal to anchor on (a high-entropy quoted string). It probes the byte `min - 1`
// ahead and jumps past it when that byte is outside the class, so on source text it reads a
// small fraction of the bytes instead of running an automaton over every one.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>
#include <type_traits>
#include <utility>

namespace codexvault::scan {

using ByteTable = std::array<bool, 256>;

// Calls found(begin, end) for each maximal run [begin, end) with end - begin >= min (min >= 1),
// in order. found returns false to stop early.
template <typename Found>
void for_each_run(std::string_view text, const ByteTable& in_class, std::size_t min, Found&& found)
{
    const auto* bytes = reinterpret_cast<const unsigned char*>(text.data());
    const std::size_t size = text.size();
    // Invariant: no run of `min` or more starts before i unreported, and i == 0 or the byte
    // before i is outside the class.
    std::size_t i = 0;
    while (min > 0 && i + min <= size) {
        const std::size_t probe = i + min - 1;
        if (!in_class[bytes[probe]]) {
            i = probe + 1;
            continue;
        }
        std::size_t begin = probe;
        while (begin > i && in_class[bytes[begin - 1]]) {
            --begin;
        }
        if (begin > i) {
            i = begin;  // a run long enough would have to start here
            continue;
        }
        std::size_t end = probe + 1;
        while (end < size && in_class[bytes[end]]) {
            ++end;
        }
        if (!found(begin, end)) {
            return;
        }
        i = end + 1;
    }
}

namespace detail {

// The run finder's vector kernel: two 16-byte tables give each byte shape bits (lo[c & 15] &
// hi[c >> 4]); the class owns some of the 8 bits and the anchors others, one per distinct row
// (high nibble) shape, so any class and anchors with at most 8 row shapes between them fit, as
// every class of printable ASCII with quotes does.
struct VectorRunsPlan {
    bool usable = false;  // the CPU has AVX2, the sets fit the tables, min and anchors suit
    std::array<std::uint8_t, 16> lo{};
    std::array<std::uint8_t, 16> hi{};
    std::uint8_t class_bits = 0;
    std::uint8_t anchor_bits = 0;
    std::size_t min = 0;
    std::size_t cap = 0;
    unsigned chunk = 0;  // a run of min holds an aligned chunk of this many class bytes (0: none)
};

}  // namespace detail

// What for_each_run_after can work out once for a rule instead of once per text.
using RunsAfterPlan = detail::VectorRunsPlan;
RunsAfterPlan plan_runs_after(std::string_view after, const ByteTable& in_class, std::size_t min,
                              std::size_t max) noexcept;

namespace detail {

// Calls emit(context, begin, end) for each run, as for_each_run_after; stops when emit returns
// false (an exception from emit passes through). Only with a usable plan.
using EmitRun = bool (*)(void* context, std::size_t begin, std::size_t end);
void vector_runs_after(const VectorRunsPlan& plan, std::string_view text, EmitRun emit, void* context);

}  // namespace detail

// Runs that begin right after one of the `after` bytes (at most 4; they should be outside the
// class, as quotes are): found(begin, end) for each run of at least `min` bytes. Counting stops
// at max + 1 bytes (when max > 0), so a long run costs no more than that; its reported end is
// then begin + max + 1.
//
// On x86-64 with AVX2, when the anchors are outside the class and min is at most 64 (the
// quoted-string rule: 32), every byte is classified 64 at a time (runs.cpp): two table lookups
// per 32 bytes give each byte a class bit and an anchor bit. A run of `min` holds a whole
// aligned chunk of class bytes (16 for min 32), so a word with no such chunk in it or the next
// is passed over; elsewhere an anchor followed by a class byte is checked against the next 64
// class bits. Otherwise (or where the CPU lacks AVX2) the portable finder below runs.
//
// The portable finder: source code is full of quotes and almost none opens a run of `min` class
// bytes, so each anchor's first `min` bytes are checked last to first: the first byte outside
// the class, at q, rules out this anchor and every later one before q (each of their first `min`
// bytes would include q), and the search for the next anchor resumes at q. Most quotes are never
// looked at. Anchors are found 16 bytes at a time with the compiler's generic vector extension
// (SSE2 on x86-64, NEON on arm64; no intrinsics header), so text between them (a base64 blob,
// say) is skimmed, not classified byte by byte.
//
// `plan` is plan_runs_after(after, in_class, min, max) (the overload below makes it).
template <typename Found>
void for_each_run_after(std::string_view text, std::string_view after, const ByteTable& in_class, std::size_t min,
                        std::size_t max, const RunsAfterPlan& plan, Found&& found)
{
    using Bytes16 = unsigned char __attribute__((vector_size(16)));
    const auto* bytes = reinterpret_cast<const unsigned char*>(text.data());
    const std::size_t size = text.size();
    const std::size_t cap = max == 0 ? size : max + 1;
    const std::size_t anchors = std::min<std::size_t>(after.size(), 4);
    if (anchors == 0 || min == 0) {
        return;
    }
    if (plan.usable) {
        using Target = std::remove_reference_t<Found>;
        const detail::EmitRun emit = [](void* context, std::size_t begin, std::size_t end) {
            return static_cast<bool>((*static_cast<Target*>(context))(begin, end));
        };
        detail::vector_runs_after(plan, text, emit, const_cast<void*>(static_cast<const void*>(&found)));
        return;
    }
    std::array<bool, 256> anchor{};
    // Unused slots repeat the first anchor, so the loop below needs no count.
    std::array<Bytes16, 4> splat{};
    for (std::size_t k = 0; k < 4; ++k) {
        const auto byte = static_cast<unsigned char>(after[k < anchors ? k : 0]);
        anchor[byte] = true;
        for (int lane = 0; lane < 16; ++lane) {
            splat[k][lane] = byte;
        }
    }
    // The first anchor at or after `from`, or size.
    const auto next_anchor = [&](std::size_t from) {
        std::size_t i = from;
        for (; i + 16 <= size; i += 16) {
            Bytes16 chunk;
            std::memcpy(&chunk, bytes + i, sizeof chunk);
            const auto equal = (chunk == splat[0]) | (chunk == splat[1]) | (chunk == splat[2]) | (chunk == splat[3]);
            std::array<std::uint64_t, 2> halves{};
            std::memcpy(halves.data(), &equal, sizeof halves);
            if (halves[0] != 0) {
                return i + static_cast<std::size_t>(__builtin_ctzll(halves[0])) / 8;
            }
            if (halves[1] != 0) {
                return i + 8 + static_cast<std::size_t>(__builtin_ctzll(halves[1])) / 8;
            }
        }
        for (; i < size; ++i) {
            if (anchor[bytes[i]]) {
                return i;
            }
        }
        return size;
    };
    std::size_t p = next_anchor(0);
    while (p < size) {
        const std::size_t begin = p + 1;
        if (min > size - begin) {
            return;  // no room left for a run of `min` after this anchor or any later one
        }
        std::size_t outside = begin + min;
        while (outside > begin && in_class[bytes[outside - 1]]) {
            --outside;
        }
        if (outside > begin) {
            p = next_anchor(outside - 1);  // the byte outside the class may itself be an anchor
            continue;
        }
        std::size_t end = begin + min;
        while (end < size && end - begin < cap && in_class[bytes[end]]) {
            ++end;
        }
        if (!found(begin, end)) {
            return;
        }
        p = next_anchor(p + 1);
    }
}

template <typename Found>
void for_each_run_after(std::string_view text, std::string_view after, const ByteTable& in_class, std::size_t min,
                        std::size_t max, Found&& found)
{
    for_each_run_after(text, after, in_class, min, max, plan_runs_after(after, in_class, min, max),
                       std::forward<Found>(found));
}

}  // namespace codexvault::scan
