#include "daemon/pipeline/message_io.hpp"

#include <fcntl.h>

#include <algorithm>
#include <cerrno>
#include <system_error>

#include "common/vault_error.hpp"

namespace codexvault::daemon::io {
namespace {

void check_read(int r, const char* what)
{
    if (r < 0) {
        throw VaultError(ErrorCode::InvalidArgument, std::string("malformed argument: ") + what);
    }
}

}  // namespace

void check_argument(int r, const char* what)
{
    check_read(r, what);
}

void check(int r, const char* what)
{
    if (r < 0) {
        throw std::system_error(-r, std::generic_category(), what);
    }
}

std::string read_string(sd_bus_message* message)
{
    const char* value = nullptr;
    check_read(sd_bus_message_read(message, "s", &value), "string");
    return value;
}

std::vector<std::uint8_t> read_bytes(sd_bus_message* message)
{
    const void* data = nullptr;
    std::size_t size = 0;
    check_read(sd_bus_message_read_array(message, 'y', &data, &size), "byte array");
    const auto* begin = static_cast<const std::uint8_t*>(data);
    return {begin, begin + size};
}

UniqueFd read_fd(sd_bus_message* message)
{
    int fd = -1;
    check_read(sd_bus_message_read(message, "h", &fd), "file descriptor");
    UniqueFd copy(::fcntl(fd, F_DUPFD_CLOEXEC, 3));
    if (!copy) {
        throw std::system_error(errno, std::generic_category(), "duplicate received descriptor");
    }
    return copy;
}

FounderProof read_founder_proof(sd_bus_message* message)
{
    FounderProof proof;
    check_read(sd_bus_message_enter_container(message, 'r', "aytay"), "founder proof");
    proof.nonce = read_bytes(message);
    check_read(sd_bus_message_read(message, "t", &proof.expires_realtime_usec), "founder proof expiry");
    proof.signature = read_bytes(message);
    check_read(sd_bus_message_exit_container(message), "founder proof");
    return proof;
}

std::vector<std::string> read_string_array(sd_bus_message* message, std::size_t max_items)
{
    std::vector<std::string> out;
    check_read(sd_bus_message_enter_container(message, 'a', "s"), "string array");
    for (;;) {
        const char* value = nullptr;
        const int r = sd_bus_message_read(message, "s", &value);
        check_read(r, "string array item");
        if (r == 0) {
            break;
        }
        if (out.size() >= max_items) {
            throw VaultError(ErrorCode::InvalidArgument, "too many items (at most " + std::to_string(max_items) + ")");
        }
        out.emplace_back(value);
    }
    check_read(sd_bus_message_exit_container(message), "string array");
    return out;
}

ArgumentDict read_argument_dict(sd_bus_message* message, std::span<const std::string_view> allowed_keys,
                                std::span<const std::string_view> descriptor_keys)
{
    constexpr std::size_t kMaxValueBytes = 4096;
    ArgumentDict out;
    check_read(sd_bus_message_enter_container(message, 'a', "{sv}"), "dictionary");
    for (;;) {
        const int r = sd_bus_message_enter_container(message, 'e', "sv");
        check_read(r, "dictionary entry");
        if (r == 0) {
            break;
        }
        const char* key = nullptr;
        check_read(sd_bus_message_read(message, "s", &key), "dictionary key");
        const std::string_view name(key);
        bool known = false;
        for (const auto allowed : allowed_keys) {
            known = known || allowed == name;
        }
        if (!known) {
            // Not echoed: the key is caller-chosen text.
            throw VaultError(ErrorCode::InvalidArgument, "unknown dictionary key");
        }
        if (out.find(name) != out.end()) {
            throw VaultError(ErrorCode::InvalidArgument, "dictionary key " + std::string(name) + " given twice");
        }
        char type = 0;
        const char* contents = nullptr;
        check_read(sd_bus_message_peek_type(message, &type, &contents), "dictionary value");
        const std::string_view signature = contents != nullptr ? contents : "";
        check_read(sd_bus_message_enter_container(message, 'v', contents), "dictionary value");
        if (signature == "s") {
            const char* value = nullptr;
            check_read(sd_bus_message_read(message, "s", &value), "dictionary string");
            const std::string_view text(value);
            if (text.size() > kMaxValueBytes) {
                throw VaultError(ErrorCode::InvalidArgument, "value of " + std::string(name) + " is too long");
            }
            out.emplace(std::string(name), std::string(text));
        } else if (signature == "u") {
            std::uint32_t value = 0;
            check_read(sd_bus_message_read(message, "u", &value), "dictionary uint32");
            out.emplace(std::string(name), value);
        } else if (signature == "h" &&
                   std::find(descriptor_keys.begin(), descriptor_keys.end(), name) != descriptor_keys.end()) {
            out.emplace(std::string(name), std::make_shared<UniqueFd>(read_fd(message)));
        } else {
            throw VaultError(ErrorCode::InvalidArgument,
                             "value of " + std::string(name) + " must be a string (s) or a uint32 (u)");
        }
        check_read(sd_bus_message_exit_container(message), "dictionary value");
        check_read(sd_bus_message_exit_container(message), "dictionary entry");
    }
    check_read(sd_bus_message_exit_container(message), "dictionary");
    return out;
}

std::string dict_string(const ArgumentDict& dict, std::string_view key)
{
    const auto it = dict.find(key);
    if (it == dict.end()) {
        return {};
    }
    if (const auto* text = std::get_if<std::string>(&it->second)) {
        return *text;
    }
    throw VaultError(ErrorCode::InvalidArgument, std::string(key) + " must be a string");
}

std::optional<std::uint32_t> dict_uint32(const ArgumentDict& dict, std::string_view key)
{
    const auto it = dict.find(key);
    if (it == dict.end()) {
        return std::nullopt;
    }
    if (const auto* value = std::get_if<std::uint32_t>(&it->second)) {
        return *value;
    }
    throw VaultError(ErrorCode::InvalidArgument, std::string(key) + " must be a uint32");
}

std::shared_ptr<UniqueFd> dict_fd(const ArgumentDict& dict, std::string_view key)
{
    const auto it = dict.find(key);
    if (it == dict.end()) {
        return nullptr;
    }
    if (const auto* fd = std::get_if<std::shared_ptr<UniqueFd>>(&it->second)) {
        return *fd;
    }
    throw VaultError(ErrorCode::InvalidArgument, std::string(key) + " must be a descriptor");
}

std::vector<std::string> signed_entries(const ArgumentDict& dict)
{
    std::vector<std::string> out;
    out.reserve(dict.size());
    for (const auto& [key, value] : dict) {
        // A descriptor has no bytes a founder could sign.
        if (std::holds_alternative<std::shared_ptr<UniqueFd>>(value)) {
            throw VaultError(ErrorCode::InvalidArgument, "a signed dictionary cannot carry a descriptor");
        }
        const auto* number = std::get_if<std::uint32_t>(&value);
        std::string entry = key;
        entry += '=';
        entry += number != nullptr ? std::to_string(*number) : std::get<std::string>(value);
        out.push_back(std::move(entry));
    }
    return out;
}

Dictionary::Dictionary(sd_bus_message* message) : message_(message)
{
    check(sd_bus_message_open_container(message_, 'a', "{sv}"), "open dictionary");
}

void Dictionary::add(const char* key, const std::string& value)
{
    add(key, value.c_str());
}

void Dictionary::add(const char* key, const char* value)
{
    check(sd_bus_message_append(message_, "{sv}", key, "s", value), "append string entry");
}

void Dictionary::add(const char* key, bool value)
{
    check(sd_bus_message_append(message_, "{sv}", key, "b", static_cast<int>(value)), "append bool entry");
}

void Dictionary::add(const char* key, std::uint32_t value)
{
    check(sd_bus_message_append(message_, "{sv}", key, "u", value), "append uint32 entry");
}

void Dictionary::add(const char* key, std::uint64_t value)
{
    check(sd_bus_message_append(message_, "{sv}", key, "t", value), "append uint64 entry");
}

void Dictionary::add_uint32_array(const char* key, std::span<const std::uint32_t> values)
{
    check(sd_bus_message_open_container(message_, 'e', "sv"), "open entry");
    check(sd_bus_message_append(message_, "s", key), "append key");
    check(sd_bus_message_open_container(message_, 'v', "au"), "open variant");
    check(sd_bus_message_append_array(message_, 'u', values.data(), values.size() * sizeof(std::uint32_t)),
          "append array");
    check(sd_bus_message_close_container(message_), "close variant");
    check(sd_bus_message_close_container(message_), "close entry");
}

void Dictionary::add_string_array(const char* key, std::span<const std::string> values)
{
    check(sd_bus_message_open_container(message_, 'e', "sv"), "open entry");
    check(sd_bus_message_append(message_, "s", key), "append key");
    check(sd_bus_message_open_container(message_, 'v', "as"), "open variant");
    check(sd_bus_message_open_container(message_, 'a', "s"), "open array");
    for (const auto& value : values) {
        check(sd_bus_message_append(message_, "s", value.c_str()), "append array item");
    }
    check(sd_bus_message_close_container(message_), "close array");
    check(sd_bus_message_close_container(message_), "close variant");
    check(sd_bus_message_close_container(message_), "close entry");
}

void Dictionary::close()
{
    check(sd_bus_message_close_container(message_), "close dictionary");
}

}  // namespace codexvault::daemon::io
