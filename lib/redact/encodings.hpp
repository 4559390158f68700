// The renderings of a secret value that a redactor looks for besides the raw bytes: how JSON
// encoders, URL encoders, base64 and hex turn the value into text. Each function returns every
// distinct form it knows (byte strings held in std::string), so the set of needles is a plain
// union and adding a form never needs a second matcher.
//
// The forms follow what common encoders actually emit, since a secret echoed back by a provider
// went through one of them: RFC 8259 minimal escaping (serde_json, JavaScript, Python with
// ensure_ascii=False), PHP's "\/", Python's and PHP's \uXXXX for non-ASCII, Go's HTML-safe
// \u003c \u003e \u0026, Go's \u0008 \u000c instead of \b \f, and upper-case \u hex (Jackson).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace codexvault::redact {

// Every distinct JSON string-body rendering of `value` (without the surrounding quotes). The
// first element is the minimal RFC 8259 escaping. A value with non-ASCII bytes gets \uXXXX
// variants only if it is valid UTF-8 (an encoder cannot escape what it cannot decode).
std::vector<std::string> json_renderings(std::span<const std::uint8_t> value);

// Every distinct percent-encoding of `value`: RFC 3986 (all but unreserved escaped), Python's
// quote() (keeps '/'), JavaScript's encodeURIComponent (keeps !'()*) and HTML form encoding
// (keeps *-._, escapes ~), each with upper- and lower-case hex and with a space as %20 or '+'.
std::vector<std::string> url_renderings(std::span<const std::uint8_t> value);

// The base64 characters that are fully determined by `value` when it starts `alignment` bytes
// (0, 1 or 2) into a 3-byte group: a substring of the encoding of any byte string that holds
// `value` at such an offset, padded or not. `url` selects the base64url alphabet (RFC 4648 §5).
std::string base64_fragment(std::span<const std::uint8_t> value, unsigned alignment, bool url);

std::string hex(std::span<const std::uint8_t> value, bool upper);

}  // namespace codexvault::redact
