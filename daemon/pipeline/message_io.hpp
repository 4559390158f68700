// Reading arguments from and writing replies to sd-bus messages, with every sd-bus error
// turned into a typed error: malformed input is InvalidArgument, a failed append is internal.
#pragma once

#include <systemd/sd-bus.h>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "common/founder_proof.hpp"
#include "lib/fileio/unique_fd.hpp"

namespace codexvault::daemon::io {

std::string read_string(sd_bus_message* message);
std::vector<std::uint8_t> read_bytes(sd_bus_message* message);
// Duplicates the descriptor: the message keeps its own, the caller owns the copy.
UniqueFd read_fd(sd_bus_message* message);
FounderProof read_founder_proof(sd_bus_message* message);
std::vector<std::string> read_string_array(sd_bus_message* message, std::size_t max_items);

// An a{sv} argument whose values are strings or uint32s, and descriptors (h, duplicated) for the
// keys in `descriptor_keys` only. Unknown keys, other value types, repeated keys, more than
// max_entries entries or strings over 4,096 bytes are InvalidArgument.
using DictValue = std::variant<std::string, std::uint32_t, std::shared_ptr<UniqueFd>>;
using ArgumentDict = std::map<std::string, DictValue, std::less<>>;
ArgumentDict read_argument_dict(sd_bus_message* message, std::span<const std::string_view> allowed_keys,
                                std::span<const std::string_view> descriptor_keys = {});
std::shared_ptr<UniqueFd> dict_fd(const ArgumentDict& dict, std::string_view key);  // null when absent
std::string dict_string(const ArgumentDict& dict, std::string_view key);            // "" when absent
std::optional<std::uint32_t> dict_uint32(const ArgumentDict& dict, std::string_view key);
// "key=value" for each entry, in key order: how a dictionary argument is covered by a founder
// proof (vaultctl builds the same list).
std::vector<std::string> signed_entries(const ArgumentDict& dict);

// Throws std::system_error naming `what` when an sd-bus call fails.
void check(int r, const char* what);
// Throws InvalidArgument ("malformed argument: what") when reading an argument failed.
void check_argument(int r, const char* what);

// a{sv} dictionary building.
class Dictionary {
public:
    explicit Dictionary(sd_bus_message* message);
    void add(const char* key, const std::string& value);
    void add(const char* key, const char* value);
    void add(const char* key, bool value);
    void add(const char* key, std::uint32_t value);
    void add(const char* key, std::uint64_t value);
    void add_uint32_array(const char* key, std::span<const std::uint32_t> values);
    void add_string_array(const char* key, std::span<const std::string> values);
    void close();

private:
    sd_bus_message* message_;
};

}  // namespace codexvault::daemon::io
