// Aho–Corasick automaton over bytes: a trie of the needles with failure links, built once per
// NeedleSet and shared read-only by every stream. Memory is linear in the total needle length
// (one node per trie byte plus one edge), which keeps large secrets (a PEM key, a service-account
// JSON) affordable where a dense 256-column DFA would not be; the failure walk is amortised O(1)
// per byte.
//
// The no-match fast path does not walk the automaton at all. next_candidate() skips ahead
// Wu–Manber style: with m the length of the shortest pattern (capped), it looks at the byte pair
// that ends an m-byte window and shifts the window by how far that pair is from the end of any
// pattern's first m bytes (m - 1 if it appears in none), so ordinary text is read about one
// pair in every few bytes. A window whose shift is 0 is then checked against the bitmap of
// patterns' first two bytes before the automaton is run from it.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

namespace codexvault::redact {

class Automaton {
public:
    struct Pattern {
        std::string_view bytes;  // at least 2 bytes; patterns are distinct
        std::uint32_t label;     // reported with a match (the secret's index)
    };

    static constexpr std::uint32_t kRoot = 0;

    explicit Automaton(std::span<const Pattern> patterns);
    ~Automaton();
    Automaton(const Automaton&) = delete;
    Automaton& operator=(const Automaton&) = delete;

    // The state after reading `byte` in `state`: the longest suffix of everything read that is
    // a prefix of some pattern.
    [[nodiscard]] std::uint32_t step(std::uint32_t state, std::uint8_t byte) const noexcept
    {
        while (state != kRoot) {
            const Node& node = nodes_[state];
            if (node.edge_count != 0 && node.first_byte == byte) {
                return node.first_target;
            }
            const std::uint8_t* bytes = edge_bytes_.data() + node.first_edge;
            for (std::uint32_t k = 1; k < node.edge_count; ++k) {
                if (bytes[k] == byte) {
                    return edge_targets_[node.first_edge + k];
                }
            }
            state = node.fail;
        }
        return root_next_[byte];
    }

    // Length of the state's prefix.
    [[nodiscard]] std::uint32_t depth(std::uint32_t state) const noexcept { return nodes_[state].depth; }

    // Length of the longest pattern that ends here (0 if none) and its label. Shorter patterns
    // ending at the same byte lie inside it, so they never matter to a redactor.
    [[nodiscard]] std::uint32_t match_length(std::uint32_t state) const noexcept { return nodes_[state].match_length; }
    [[nodiscard]] std::uint32_t match_label(std::uint32_t state) const noexcept { return nodes_[state].match_label; }

    // How many of the last bytes read may still begin a pattern occurrence that has not ended:
    // the depth of the longest suffix of the state that can still be extended. At most the
    // longest pattern length minus one.
    [[nodiscard]] std::uint32_t live_depth(std::uint32_t state) const noexcept { return nodes_[state].live_depth; }

    // The first i in [from, size - 1) where data[i], data[i + 1] are the first two bytes of some
    // pattern; size - 1 if there is none (the last byte still needs its successor). Requires
    // from < size.
    [[nodiscard]] std::size_t next_candidate(const std::uint8_t* data, std::size_t from,
                                             std::size_t size) const noexcept;

    [[nodiscard]] std::size_t state_count() const noexcept { return nodes_.size(); }

    // A longer window shifts further but marks more pairs as pattern parts; of 8, 16 and 32
    // bytes, 32 measured best on text and base64 with 1 and 8 API-key-sized secrets. Shifts are
    // stored in bytes, so it must stay below 256.
    static constexpr std::size_t kMaxWindow = 32;

private:
    // Most nodes below the first levels have one child; keeping the first edge in the node
    // saves two dependent loads per step.
    struct Node {
        std::uint32_t first_edge = 0;
        std::uint32_t edge_count = 0;
        std::uint32_t first_target = 0;
        std::uint8_t first_byte = 0;
        std::uint32_t fail = kRoot;
        std::uint32_t depth = 0;
        std::uint32_t match_length = 0;
        std::uint32_t match_label = 0;
        std::uint32_t live_depth = 0;
    };

    [[nodiscard]] bool pair_starts_pattern(std::uint8_t first, std::uint8_t second) const noexcept
    {
        const unsigned index = first | (unsigned{second} << 8);
        return ((pair_bits_[index >> 6] >> (index & 63)) & 1u) != 0;
    }

    std::vector<Node> nodes_;  // breadth-first order: a node's fail target comes before it
    std::vector<std::uint8_t> edge_bytes_;
    std::vector<std::uint32_t> edge_targets_;
    std::array<std::uint32_t, 256> root_next_{};
    std::array<std::uint64_t, 1024> pair_bits_{};
    std::size_t window_ = 0;           // m; 0 when some pattern is too short for skipping to pay
    std::vector<std::uint8_t> shift_;  // by byte pair (first | second << 8), when window_ != 0
};

}  // namespace codexvault::redact
