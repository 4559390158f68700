#include "daemon/egress/address_guard.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <array>
#include <cstdint>
#include <cstring>
#include <string>

namespace codexvault::egress {

namespace {

struct V4Range {
    std::uint32_t base;
    unsigned prefix;
    std::string_view what;
};

constexpr std::uint32_t v4(unsigned a, unsigned b, unsigned c, unsigned d) noexcept
{
    return (a << 24) | (b << 16) | (c << 8) | d;
}

// RFC 6890 special-purpose ranges that are not globally reachable, plus multicast and reserved.
constexpr std::array<V4Range, 13> kV4Ranges{{
    {v4(0, 0, 0, 0), 8, "unspecified"},
    {v4(10, 0, 0, 0), 8, "private"},
    {v4(100, 64, 0, 0), 10, "shared (carrier-grade NAT)"},
    {v4(127, 0, 0, 0), 8, "loopback"},
    {v4(169, 254, 0, 0), 16, "link-local"},
    {v4(172, 16, 0, 0), 12, "private"},
    {v4(192, 0, 0, 0), 24, "IETF protocol assignments"},
    {v4(192, 0, 2, 0), 24, "documentation"},
    {v4(192, 168, 0, 0), 16, "private"},
    {v4(198, 18, 0, 0), 15, "benchmarking"},
    {v4(198, 51, 100, 0), 24, "documentation"},
    {v4(203, 0, 113, 0), 24, "documentation"},
    {v4(224, 0, 0, 0), 3, "multicast or reserved"},  // 224/4 and 240/4
}};

std::optional<std::string_view> classify_v4(std::uint32_t address) noexcept
{
    for (const V4Range& range : kV4Ranges) {
        const std::uint32_t mask = range.prefix == 0 ? 0 : ~std::uint32_t{0} << (32 - range.prefix);
        if ((address & mask) == range.base) {
            return range.what;
        }
    }
    return std::nullopt;
}

std::uint32_t read_v4(const std::uint8_t* bytes) noexcept
{
    return (std::uint32_t{bytes[0]} << 24) | (std::uint32_t{bytes[1]} << 16) | (std::uint32_t{bytes[2]} << 8) |
           std::uint32_t{bytes[3]};
}

std::optional<std::string_view> classify_v6(const std::uint8_t* a) noexcept
{
    static constexpr std::array<std::uint8_t, 16> kZero{};
    static constexpr std::array<std::uint8_t, 12> kMapped{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    static constexpr std::array<std::uint8_t, 12> kNat64{0x00, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0};
    if (std::memcmp(a, kZero.data(), 15) == 0) {
        return a[15] == 1 ? std::optional<std::string_view>("loopback") : "unspecified";
    }
    // Addresses that embed an IPv4 address reach that address: judge the embedded one.
    if (std::memcmp(a, kMapped.data(), kMapped.size()) == 0 || std::memcmp(a, kNat64.data(), kNat64.size()) == 0 ||
        std::memcmp(a, kZero.data(), 12) == 0) {
        return classify_v4(read_v4(a + 12));
    }
    if (a[0] == 0x20 && a[1] == 0x02) {  // 6to4: 2002:AABB:CCDD::/48
        return classify_v4(read_v4(a + 2));
    }
    if ((a[0] & 0xfe) == 0xfc) {
        return "unique-local";
    }
    if (a[0] == 0xfe && (a[1] & 0xc0) == 0x80) {
        return "link-local";
    }
    if (a[0] == 0xfe && (a[1] & 0xc0) == 0xc0) {
        return "site-local";
    }
    if (a[0] == 0xff) {
        return "multicast";
    }
    if (a[0] == 0x20 && a[1] == 0x01 && a[2] == 0x0d && a[3] == 0xb8) {
        return "documentation";
    }
    if (a[0] == 0x01 && a[1] == 0x00 && std::memcmp(a + 2, kZero.data(), 6) == 0) {
        return "discard-only";
    }
    return std::nullopt;
}

}  // namespace

std::optional<std::string_view> non_public_address(const sockaddr* address, socklen_t length) noexcept
{
    if (address == nullptr) {
        return "unknown";
    }
    if (address->sa_family == AF_INET && length >= static_cast<socklen_t>(sizeof(sockaddr_in))) {
        sockaddr_in in{};
        std::memcpy(&in, address, sizeof(in));
        return classify_v4(ntohl(in.sin_addr.s_addr));
    }
    if (address->sa_family == AF_INET6 && length >= static_cast<socklen_t>(sizeof(sockaddr_in6))) {
        sockaddr_in6 in6{};
        std::memcpy(&in6, address, sizeof(in6));
        return classify_v6(in6.sin6_addr.s6_addr);
    }
    return "not an internet address";
}

std::optional<std::string_view> non_public_address_text(std::string_view text) noexcept
{
    char buffer[INET6_ADDRSTRLEN + 1] = {};
    if (text.empty() || text.size() >= sizeof(buffer)) {
        return "unparsable";
    }
    std::memcpy(buffer, text.data(), text.size());
    in_addr a4{};
    if (inet_pton(AF_INET, buffer, &a4) == 1) {
        return classify_v4(ntohl(a4.s_addr));
    }
    in6_addr a6{};
    if (inet_pton(AF_INET6, buffer, &a6) == 1) {
        return classify_v6(a6.s6_addr);
    }
    return "unparsable";
}

}  // namespace codexvault::egress
