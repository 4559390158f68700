#include "daemon/store/sealed_state.hpp"

#include <sodium.h>

#include <algorithm>
#include <charconv>
#include <stdexcept>

#include "common/bytes.hpp"

namespace codexvault::store {
namespace {

static_assert(kStateMacKeyBytes == crypto_auth_KEYBYTES);

constexpr std::string_view kHeaderLine = "codex-vault-state 1\n";
constexpr std::string_view kMacPrefix = "mac ";
constexpr std::size_t kMacHexBytes = crypto_auth_BYTES * 2;
constexpr std::size_t kMacLineBytes = kMacPrefix.size() + kMacHexBytes + 1;

std::span<const std::uint8_t> as_bytes(std::string_view text) noexcept
{
    return {reinterpret_cast<const std::uint8_t*>(text.data()), text.size()};
}

bool is_lower_hex(std::string_view text) noexcept
{
    return std::all_of(text.begin(), text.end(),
                       [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

// Strict unsigned decimal: digits only, no leading zero except "0" itself.
std::optional<std::uint64_t> parse_decimal(std::string_view text)
{
    if (text.empty() || (text.size() > 1 && text[0] == '0')) {
        return std::nullopt;
    }
    std::uint64_t value = 0;
    const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (error != std::errc() || end != text.data() + text.size()) {
        return std::nullopt;
    }
    return value;
}

// Takes "<prefix><value>\n" off the front of `text`; nullopt when the line is not that.
std::optional<std::string_view> take_line(std::string_view& text, std::string_view prefix)
{
    const auto end = text.find('\n');
    if (end == std::string_view::npos || !text.starts_with(prefix)) {
        return std::nullopt;
    }
    const std::string_view value = text.substr(prefix.size(), end - prefix.size());
    text.remove_prefix(end + 1);
    return value;
}

DecodedState fault(StateFault kind, std::string detail)
{
    DecodedState decoded;
    decoded.fault = kind;
    decoded.detail = std::move(detail);
    return decoded;
}

void require_key(std::span<const std::uint8_t> key)
{
    if (key.size() != kStateMacKeyBytes) {
        throw std::invalid_argument("state file MAC key must be " + std::to_string(kStateMacKeyBytes) + " bytes");
    }
}

}  // namespace

const char* kind_name(StateKind kind) noexcept
{
    return kind == StateKind::Founder ? "founder" : "policy-state";
}

const char* file_name(StateKind kind) noexcept
{
    return kind == StateKind::Founder ? "founder.pub" : "policy-state.json";
}

const char* to_string(StateFault fault) noexcept
{
    switch (fault) {
    case StateFault::Legacy:
        return "not authenticated (the format of an earlier version)";
    case StateFault::Malformed:
        return "malformed";
    case StateFault::Unauthentic:
        return "not authentic";
    case StateFault::WrongKind:
        return "sealed as another state file";
    }
    return "malformed";
}

std::string encode_sealed_state(const SealedState& state, std::span<const std::uint8_t> key)
{
    require_key(key);
    if (state.generation == 0) {
        throw std::invalid_argument("a state file's generation starts at 1");
    }
    std::string text(kHeaderLine);
    text += "kind " + std::string(kind_name(state.kind)) + "\n";
    text += "generation " + std::to_string(state.generation) + "\n";
    text += "audit " + std::to_string(state.audit.seq) + " " + bytes::to_hex(state.audit.hash) + "\n";
    text += "body " + std::to_string(state.body.size()) + "\n";
    text += state.body;
    std::array<std::uint8_t, crypto_auth_BYTES> mac{};
    const auto covered = as_bytes(text);
    if (::crypto_auth(mac.data(), covered.data(), covered.size(), key.data()) != 0) {
        throw std::runtime_error("crypto_auth failed");
    }
    text += std::string(kMacPrefix) + bytes::to_hex(mac) + "\n";
    return text;
}

DecodedState decode_sealed_state(std::string_view text, StateKind expected, std::span<const std::uint8_t> key)
{
    require_key(key);
    if (!text.starts_with(kHeaderLine)) {
        DecodedState legacy = fault(StateFault::Legacy, "no codex-vault-state header");
        legacy.legacy_body = std::string(text);
        return legacy;
    }
    // The MAC first: an attacker without the key never reaches the parser with chosen text.
    if (text.size() < kHeaderLine.size() + kMacLineBytes) {
        return fault(StateFault::Malformed, "cut short before its MAC");
    }
    const std::string_view covered = text.substr(0, text.size() - kMacLineBytes);
    std::string_view mac_line = text.substr(covered.size());
    const auto mac_hex = take_line(mac_line, kMacPrefix);
    if (!mac_hex || !mac_line.empty() || mac_hex->size() != kMacHexBytes || !is_lower_hex(*mac_hex)) {
        return fault(StateFault::Malformed, "the last line is not its MAC");
    }
    const auto mac = bytes::from_hex(*mac_hex);
    const auto covered_bytes = as_bytes(covered);
    if (!mac || ::crypto_auth_verify(mac->data(), covered_bytes.data(), covered_bytes.size(), key.data()) != 0) {
        return fault(StateFault::Unauthentic, "its MAC does not verify under the vault's key");
    }

    std::string_view rest = covered.substr(kHeaderLine.size());
    const auto kind = take_line(rest, "kind ");
    const auto generation_text = take_line(rest, "generation ");
    const auto audit_text = take_line(rest, "audit ");
    const auto body_text = take_line(rest, "body ");
    if (!kind || !generation_text || !audit_text || !body_text) {
        return fault(StateFault::Malformed, "a header line is missing");
    }
    if (*kind != kind_name(expected)) {
        return fault(StateFault::WrongKind,
                     "sealed as '" + std::string(kind->substr(0, 32)) + "', expected '" + kind_name(expected) + "'");
    }
    SealedState state;
    state.kind = expected;
    const auto generation = parse_decimal(*generation_text);
    const auto body_bytes = parse_decimal(*body_text);
    const auto space = audit_text->find(' ');
    const auto seq = space == std::string_view::npos ? std::nullopt : parse_decimal(audit_text->substr(0, space));
    const std::string_view hash_hex =
        space == std::string_view::npos ? std::string_view() : audit_text->substr(space + 1);
    if (!generation || *generation == 0 || !body_bytes || !seq || hash_hex.size() != kAuditHashBytes * 2 ||
        !is_lower_hex(hash_hex)) {
        return fault(StateFault::Malformed, "a header value breaks the format");
    }
    if (*body_bytes != rest.size()) {
        return fault(StateFault::Malformed, "the body length does not match");
    }
    const auto hash = bytes::from_hex(hash_hex);
    std::copy(hash->begin(), hash->end(), state.audit.hash.begin());
    state.audit.seq = *seq;
    state.generation = *generation;
    state.body = std::string(rest);
    DecodedState decoded;
    decoded.state = std::move(state);
    return decoded;
}

}  // namespace codexvault::store
