// The SSRF guard: which addresses a provider may not reach unless it sets allow_private_address.
// Applied to the address the connection is actually made to, after name resolution, so a public
// name that resolves (or re-resolves) to an internal address is refused. Pure.
#pragma once

#include <sys/socket.h>

#include <optional>
#include <string_view>

namespace codexvault::egress {

// nullopt for a public unicast address; otherwise what the address is ("loopback", "private",
// "link-local", "unique-local", ...). Unknown address families are refused too.
std::optional<std::string_view> non_public_address(const sockaddr* address, socklen_t length) noexcept;

// The same for a numeric address as text ("127.0.0.1", "::1"); nullopt when public, "unparsable"
// when the text is not an address.
std::optional<std::string_view> non_public_address_text(std::string_view text) noexcept;

}  // namespace codexvault::egress
