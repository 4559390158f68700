// What the redactor tests and the fuzz target share, free of Criterion: building a needle set
// from plain strings, running a StreamRedactor over a stream cut at given positions, and a naive
// reference redactor to compare it with.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "lib/redact/needle_set.hpp"
#include "lib/redact/stream_redactor.hpp"

namespace codexvault::redact::testing {

struct PlainSecret {
    std::string name;
    std::string value;
    std::vector<std::string> renderings;
};

inline BuildResult build(const std::vector<PlainSecret>& plain)
{
    std::vector<Secret> secrets;
    for (const auto& secret : plain) {
        Secret built{secret.name, bytes_of(secret.value), {}};
        for (const auto& rendering : secret.renderings) {
            built.renderings.push_back(bytes_of(rendering));
        }
        secrets.push_back(std::move(built));
    }
    return build_needle_set(secrets);
}

struct Redacted {
    std::string output;
    std::uint64_t replacements = 0;
    std::size_t most_held = 0;  // the largest held_back() seen after any feed()
    std::size_t max_held = 0;   // max_held_back()
};

// Feeds stream[0, cuts[0]), stream[cuts[0], cuts[1]), ... (cuts ascending, within the stream;
// repeated cuts make empty chunks), then finishes.
inline Redacted redact_in_chunks(const std::shared_ptr<const NeedleSet>& needles, std::string_view stream,
                                 std::span<const std::size_t> cuts, const MarkerBuilder& marker = named_marker)
{
    StreamRedactor redactor(needles, marker);
    std::vector<std::uint8_t> out;
    Redacted result;
    std::size_t from = 0;
    const auto feed_to = [&](std::size_t to) {
        redactor.feed(bytes_of(stream.substr(from, to - from)), out);
        result.most_held = std::max(result.most_held, redactor.held_back());
        from = to;
    };
    for (const std::size_t cut : cuts) {
        feed_to(cut);
    }
    feed_to(stream.size());
    redactor.finish(out);
    result.output.assign(out.begin(), out.end());
    result.replacements = redactor.replacements();
    result.max_held = redactor.max_held_back();
    return result;
}

inline Redacted redact_whole(const std::shared_ptr<const NeedleSet>& needles, std::string_view stream,
                             const MarkerBuilder& marker = named_marker)
{
    return redact_in_chunks(needles, stream, {}, marker);
}

struct Reference {
    std::string output;
    std::uint64_t replacements = 0;
};

// The specification, computed the slow way on the whole stream: take the leftmost position
// where any needle occurs and the longest needle there; extend the replaced run over every
// occurrence that starts inside it; write the text before it and the marker of that needle's
// secret; go on after the run.
inline Reference reference_redact(std::string_view stream, const NeedleSet& needles,
                                  const MarkerBuilder& marker = named_marker)
{
    const auto longest_at = [&](std::size_t at, std::uint32_t& secret) {
        std::size_t best = 0;
        for (const auto& needle : needles.needles()) {
            if (needle.bytes.size() > best && stream[at] == needle.bytes[0] &&
                stream.substr(at, needle.bytes.size()) == needle.bytes) {
                best = needle.bytes.size();
                secret = needle.secret;
            }
        }
        return best;
    };
    Reference result;
    std::size_t position = 0;
    while (position < stream.size()) {
        std::uint32_t secret = 0;
        std::size_t start = position;
        std::size_t length = 0;
        while (start < stream.size() && (length = longest_at(start, secret)) == 0) {
            ++start;
        }
        result.output.append(stream.substr(position, start - position));
        if (start == stream.size()) {
            break;
        }
        std::size_t end = start + length;
        for (std::size_t inside = start + 1; inside < end; ++inside) {
            std::uint32_t ignored = 0;
            end = std::max(end, inside + longest_at(inside, ignored));
        }
        result.output.append(marker(needles.name(secret)));
        ++result.replacements;
        position = end;
    }
    return result;
}

inline bool contains_any_needle(std::string_view text, const NeedleSet& needles)
{
    return std::any_of(needles.needles().begin(), needles.needles().end(),
                       [&](const Needle& needle) { return text.find(needle.bytes) != std::string_view::npos; });
}

}  // namespace codexvault::redact::testing
