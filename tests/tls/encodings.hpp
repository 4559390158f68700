// Shared by the egress unit tests and the mediation integration tests (layer tests/tls).
// The encoded forms a provider might echo a key in, written independently of lib/redact so the
// tests do not check the redactor against itself.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace egress_test {

std::string base64(std::string_view bytes, bool url);
std::string json_escape(std::string_view text);  // with "\/" as PHP writes it
std::string percent_encode(std::string_view text, bool lower_hex);

// Every form above that a server would write for `secret`: raw, JSON-escaped, percent-encoded
// (both hex cases) and base64/base64url with 0, 1 or 2 bytes in front.
std::vector<std::string> echo_forms(std::string_view secret);
// Substrings of those forms that must never reach a caller: for base64, the characters fully
// determined by the secret (the edges mix in neighbouring bytes).
std::vector<std::string> forbidden_fragments(std::string_view secret);

}  // namespace egress_test
