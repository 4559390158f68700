// The needles of a redactor: for each secret, its value and every extra rendering the caller
// knows of (say "user:pass" for a Basic header), each expanded into the raw bytes and every
// encoded form in encodings.hpp (JSON-escaped, percent-encoded, base64 and base64url fragments at
// the three alignments, lower- and upper-case hex). Identical needles are kept once, for the
// secret listed first. Built once, shared read-only by any number of streams.
//
// Length policy: every value and rendering must be 8 to 16,384 bytes. Below 8 bytes a needle
// matches ordinary text too often (a short password is a common word) and the redactor would
// mangle normal output, so such a secret is refused rather than matched; the daemon should keep
// such values out of relayed streams or not promise redaction for them. Every encoded form is
// then at least 8 bytes too (the shortest is a 10-character base64 fragment). The upper bound
// keeps the automaton and the per-stream hold-back buffer (up to 6 bytes per value byte for
// \u-escaped JSON) small.
//
// The set holds the secret and its encodings in ordinary heap memory for its lifetime and wipes
// them when destroyed; keep it alive no longer than the streams that need it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "lib/redact/automaton.hpp"

namespace codexvault::redact {

inline constexpr std::size_t kMinSecretLength = 8;
inline constexpr std::size_t kMaxSecretLength = 16 * 1024;

struct Secret {
    std::string name;                     // shown in markers and errors; must not be secret itself
    std::span<const std::uint8_t> value;  // only read while the set is built
    // Other forms the value travels in that its encodings do not cover, such as "user:pass" of
    // a Basic header (so the whole base64 credential is replaced, not only the password's part).
    std::vector<std::span<const std::uint8_t>> renderings;
};

enum class Encoding : std::uint8_t { Raw, Json, Url, Base64, Base64Url, HexLower, HexUpper };

struct Needle {
    std::string bytes;
    std::uint32_t secret = 0;  // index of the secret in the list the set was built from
    Encoding encoding = Encoding::Raw;
};

struct BuildResult;
BuildResult build_needle_set(std::span<const Secret> secrets);

class NeedleSet {
public:
    // Only build_needle_set() can make one, so every set has passed the length policy.
    class Key {
        Key() = default;
        friend BuildResult build_needle_set(std::span<const Secret> secrets);
    };

    NeedleSet(Key key, std::vector<std::string> names, std::vector<Needle> needles);
    ~NeedleSet();
    NeedleSet(const NeedleSet&) = delete;
    NeedleSet& operator=(const NeedleSet&) = delete;

    [[nodiscard]] std::span<const Needle> needles() const noexcept { return needles_; }
    [[nodiscard]] std::size_t secret_count() const noexcept { return names_.size(); }
    [[nodiscard]] const std::string& name(std::uint32_t secret) const { return names_.at(secret); }
    // Length of the longest needle, 0 for a set without secrets.
    [[nodiscard]] std::size_t longest() const noexcept { return longest_; }
    [[nodiscard]] const Automaton& automaton() const noexcept { return automaton_; }

private:
    std::vector<std::string> names_;
    std::vector<Needle> needles_;
    std::size_t longest_ = 0;
    Automaton automaton_;
};

struct BuildResult {
    std::shared_ptr<const NeedleSet> needles;  // null when a secret was refused
    std::string error;                         // names the secret and the rule, never its bytes
};

BuildResult build_needle_set(std::span<const Secret> secrets);

inline std::span<const std::uint8_t> bytes_of(std::string_view text) noexcept
{
    return {reinterpret_cast<const std::uint8_t*>(text.data()), text.size()};
}

}  // namespace codexvault::redact
