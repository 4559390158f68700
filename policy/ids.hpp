// Grant and approval identifiers. Runtime ids are "g-" / "a-" followed by 16 lowercase hex
// digits made from 8 random bytes the caller supplies (the library has no randomness of its
// own). Static grant ids are the grant's name in its policy file. Ids are held inline (no
// allocation), so a Decision can carry them off the evaluation path for free.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "policy/policy_limits.hpp"

namespace codexvault::policy {

using IdSeed = std::array<std::uint8_t, 8>;

class ShortId {
public:
    static constexpr std::size_t kCapacity = limits::kMaxNameLength;

    ShortId() = default;
    // Text longer than kCapacity is a programming error (ids are validated before they get here).
    explicit ShortId(std::string_view text);

    [[nodiscard]] std::string_view view() const noexcept { return {data_.data(), size_}; }
    [[nodiscard]] std::string str() const { return std::string(view()); }
    [[nodiscard]] bool empty() const noexcept { return size_ == 0; }
    friend bool operator==(const ShortId& a, const ShortId& b) noexcept { return a.view() == b.view(); }
    friend bool operator==(const ShortId& a, std::string_view b) noexcept { return a.view() == b; }

private:
    std::array<char, kCapacity> data_{};
    std::uint8_t size_ = 0;
};

using GrantId = ShortId;
using ApprovalId = ShortId;

GrantId make_grant_id(const IdSeed& seed);
ApprovalId make_approval_id(const IdSeed& seed);

bool is_runtime_grant_id(std::string_view text) noexcept;  // g-<16 hex>
bool is_approval_id(std::string_view text) noexcept;       // a-<16 hex>

}  // namespace codexvault::policy
