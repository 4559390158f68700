#include "policy/ids.hpp"

#include <stdexcept>

#include "policy/text.hpp"

namespace codexvault::policy {

namespace {

ShortId prefixed(char prefix, const IdSeed& seed)
{
    std::string text{prefix, '-'};
    text += to_hex(seed);
    return ShortId(text);
}

bool is_prefixed(std::string_view text, char prefix) noexcept
{
    return text.size() == 18 && text[0] == prefix && text[1] == '-' && is_lower_hex(text.substr(2));
}

}  // namespace

ShortId::ShortId(std::string_view text)
{
    if (text.size() > kCapacity) {
        throw std::length_error("policy id longer than 64 bytes");
    }
    text.copy(data_.data(), text.size());
    size_ = static_cast<std::uint8_t>(text.size());
}

GrantId make_grant_id(const IdSeed& seed)
{
    return prefixed('g', seed);
}

ApprovalId make_approval_id(const IdSeed& seed)
{
    return prefixed('a', seed);
}

bool is_runtime_grant_id(std::string_view text) noexcept
{
    return is_prefixed(text, 'g');
}

bool is_approval_id(std::string_view text) noexcept
{
    return is_prefixed(text, 'a');
}

}  // namespace codexvault::policy
