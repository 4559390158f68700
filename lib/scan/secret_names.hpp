// Whether the name a value is assigned to says the value is not a secret: `TOKEN_ENDPOINT`,
// `password_file`, `BetaAnalyticsTokenType` hold an address, a path or a type name, even when the
// value looks random. Used by the generic keyword rules, whose keyword only says that a secret
// word appears somewhere in the name.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace codexvault::scan {

// The words of a name, lower-cased: split at `_`, `-`, `.`, digits and case humps
// ("HTTPServerURL2" -> http, server, url).
std::vector<std::string> name_words(std::string_view name);

// The name in front of a value that starts at `value_begin`: looking back over an opening quote,
// blanks, an assignment operator (= : > |), blanks and a closing quote, the [A-Za-z0-9_.-] bytes
// before them (at most 64). Empty when there is none.
std::string_view assigned_name(std::string_view input, std::size_t value_begin);

// True when a word after the name's last secret word (password, secret, token, key, ...; or after
// none, when no word ends with one) is one that names something else about the secret: where it
// is (path, file, url, endpoint, header, env), what kind it is (type, name, format, algorithm), or
// a number about it (length, ttl, expiry, limit).
bool names_a_non_secret(std::string_view name);

}  // namespace codexvault::scan
