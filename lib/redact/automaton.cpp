#include "lib/redact/automaton.hpp"

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <utility>
#include <vector>

#include "lib/redact/wipe.hpp"

namespace codexvault::redact {

namespace {

struct Child {
    std::uint8_t byte = 0;
    std::uint32_t node = 0;
};

unsigned pair_index(std::string_view bytes, std::size_t at)
{
    return static_cast<std::uint8_t>(bytes[at]) | (unsigned{static_cast<std::uint8_t>(bytes[at + 1])} << 8);
}

struct TrieNode {
    // Edge bytes are secret bytes, and these vectors grow one edge at a time.
    std::vector<Child, WipingAllocator<Child>> children;
    std::uint32_t depth = 0;
    std::uint32_t label = 0;
    bool terminal = false;
};

std::vector<TrieNode> build_trie(std::span<const Automaton::Pattern> patterns)
{
    std::vector<TrieNode> trie(1);
    for (const auto& pattern : patterns) {
        std::uint32_t node = 0;
        for (const char c : pattern.bytes) {
            const auto byte = static_cast<std::uint8_t>(c);
            auto& children = trie[node].children;
            const auto found = std::find_if(children.begin(), children.end(),
                                            [byte](const Child& child) { return child.byte == byte; });
            if (found != children.end()) {
                node = found->node;
                continue;
            }
            const auto next = static_cast<std::uint32_t>(trie.size());
            children.push_back({byte, next});
            TrieNode child;
            child.depth = trie[node].depth + 1;
            trie.push_back(std::move(child));
            node = next;
        }
        trie[node].terminal = true;
        trie[node].label = pattern.label;
    }
    return trie;
}

}  // namespace

Automaton::Automaton(std::span<const Pattern> patterns)
{
    std::vector<TrieNode> trie = build_trie(patterns);

    // Breadth-first renumbering puts every node after all shallower ones, so failure links and
    // the facts derived from them can be filled in one forward pass.
    std::vector<std::uint32_t> order{0};
    std::vector<std::uint32_t> renumbered(trie.size(), 0);
    for (std::size_t k = 0; k < order.size(); ++k) {
        auto& children = trie[order[k]].children;
        std::sort(children.begin(), children.end(), [](const Child& a, const Child& b) { return a.byte < b.byte; });
        for (const auto& child : children) {
            renumbered[child.node] = static_cast<std::uint32_t>(order.size());
            order.push_back(child.node);
        }
    }

    nodes_.resize(trie.size());
    // One edge per node but the root: sized once, so no reallocation leaves edge bytes behind.
    edge_bytes_.reserve(trie.size());
    edge_targets_.reserve(trie.size());
    for (std::size_t k = 0; k < order.size(); ++k) {
        const TrieNode& source = trie[order[k]];
        Node& node = nodes_[k];
        node.first_edge = static_cast<std::uint32_t>(edge_bytes_.size());
        node.edge_count = static_cast<std::uint32_t>(source.children.size());
        node.depth = source.depth;
        if (source.terminal) {
            node.match_length = source.depth;
            node.match_label = source.label;
        }
        if (!source.children.empty()) {
            node.first_byte = source.children.front().byte;
            node.first_target = renumbered[source.children.front().node];
        }
        for (const auto& child : source.children) {
            edge_bytes_.push_back(child.byte);
            edge_targets_.push_back(renumbered[child.node]);
        }
    }
    for (std::uint32_t k = 0; k < nodes_[kRoot].edge_count; ++k) {
        root_next_[edge_bytes_[k]] = edge_targets_[k];
    }

    for (std::size_t k = 0; k < nodes_.size(); ++k) {
        Node& node = nodes_[k];
        if (k != kRoot) {
            // A pattern ending here is the longest one ending here, since the node is the
            // longest suffix that is a prefix at all.
            const Node& fail = nodes_[node.fail];
            if (node.match_length == 0) {
                node.match_length = fail.match_length;
                node.match_label = fail.match_label;
            }
            node.live_depth = node.edge_count != 0 ? node.depth : fail.live_depth;
        }
        for (std::uint32_t e = 0; e < node.edge_count; ++e) {
            const std::uint32_t child = edge_targets_[node.first_edge + e];
            nodes_[child].fail = k == kRoot ? kRoot : step(node.fail, edge_bytes_[node.first_edge + e]);
        }
    }

    window_ = kMaxWindow;
    for (const auto& pattern : patterns) {
        const unsigned first = pair_index(pattern.bytes, 0);
        pair_bits_[first >> 6] |= std::uint64_t{1} << (first & 63);
        window_ = std::min(window_, pattern.bytes.size());
    }
    if (window_ >= 4) {
        // A pair that ends at offset q of some pattern's first window_ bytes allows a pattern to
        // start window_ - 1 - q bytes before the window; no pair allows one in fewer.
        shift_.assign(65536, static_cast<std::uint8_t>(window_ - 1));
        for (const auto& pattern : patterns) {
            for (std::size_t q = 1; q < window_; ++q) {
                std::uint8_t& shift = shift_[pair_index(pattern.bytes, q - 1)];
                shift = std::min(shift, static_cast<std::uint8_t>(window_ - 1 - q));
            }
        }
    } else {
        window_ = 0;
    }

    for (auto& node : trie) {
        wipe(node.children);
    }
}

Automaton::~Automaton()
{
    wipe(edge_bytes_);
    wipe(edge_targets_);
    wipe(nodes_);
    wipe_bytes(root_next_.data(), sizeof root_next_);
    wipe_bytes(pair_bits_.data(), sizeof pair_bits_);
    wipe(shift_);
}

std::size_t Automaton::next_candidate(const std::uint8_t* data, std::size_t from, std::size_t size) const noexcept
{
    std::size_t i = from;
    if (window_ != 0) {
        const std::uint8_t* shift = shift_.data();
        while (i + window_ <= size) {
            const std::uint8_t* end = data + i + window_ - 2;
            const std::uint8_t skip = shift[end[0] | (unsigned{end[1]} << 8)];
            if (skip != 0) {
                i += skip;
            } else if (pair_starts_pattern(data[i], data[i + 1])) {
                return i;
            } else {
                ++i;
            }
        }
    }
    // Windows that run past the chunk (or every window, without a shift table): a pattern may
    // start wherever its first two bytes do.
    for (; i + 1 < size; ++i) {
        if (pair_starts_pattern(data[i], data[i + 1])) {
            return i;
        }
    }
    return size - 1;
}

}  // namespace codexvault::redact
