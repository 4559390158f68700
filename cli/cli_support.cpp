#include "cli/cli_support.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <iostream>

#include "common/bytes.hpp"
#include "common/limits.hpp"
#include "lib/auditcore/checkpoint.hpp"
#include "lib/sdbus/string_array.hpp"

namespace codexvault::cli {
std::string default_founder_key_path()
{
    if (const char* xdg = std::getenv("XDG_CONFIG_HOME"); xdg != nullptr && xdg[0] == '/') {
        return std::string(xdg) + "/codex-vault/founder.key";
    }
    if (const char* home = std::getenv("HOME"); home != nullptr && home[0] == '/') {
        return std::string(home) + "/.config/codex-vault/founder.key";
    }
    return "founder.key";
}

SensitiveBytes read_passphrase(const GlobalOptions& options, bool confirm)
{
    if (options.passphrase_fd >= 0) {
        return read_passphrase_from_fd(options.passphrase_fd);
    }
    return read_passphrase_from_terminal("Founder key passphrase: ", confirm);
}

FounderKeyPair load_founder_key(const GlobalOptions& options)
{
    const SensitiveBytes passphrase = read_passphrase(options, false);
    return load_founder_key_file(options.founder_key, passphrase.span());
}

std::string founder_key_id(const std::array<std::uint8_t, 32>& public_key)
{
    return bytes::to_hex(audit::key_id_of(public_key));
}

std::string format_time(std::uint64_t usec)
{
    const auto seconds = static_cast<std::time_t>(usec / 1000000);
    struct tm utc {};
    gmtime_r(&seconds, &utc);
    char text[32];
    std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &utc);
    return text;
}

// Reads an a{sv} of the value types the daemon sends (s, b, u, t, au) into JSON.
nlohmann::json read_dictionary(sd_bus_message* message)
{
    nlohmann::json out = nlohmann::json::object();
    check_local(sd_bus_message_enter_container(message, 'a', "{sv}"), "read dictionary");
    for (;;) {
        int r = sd_bus_message_enter_container(message, 'e', "sv");
        check_local(r, "read entry");
        if (r == 0) {
            break;
        }
        const char* key = nullptr;
        check_local(sd_bus_message_read(message, "s", &key), "read key");
        char type = 0;
        const char* contents = nullptr;
        check_local(sd_bus_message_peek_type(message, &type, &contents), "peek value");
        const std::string signature = contents != nullptr ? contents : "";
        check_local(sd_bus_message_enter_container(message, 'v', contents), "read variant");
        if (signature == "s") {
            const char* value = nullptr;
            check_local(sd_bus_message_read(message, "s", &value), "read string");
            out[key] = value;
        } else if (signature == "b") {
            int value = 0;
            check_local(sd_bus_message_read(message, "b", &value), "read bool");
            out[key] = value != 0;
        } else if (signature == "u") {
            std::uint32_t value = 0;
            check_local(sd_bus_message_read(message, "u", &value), "read uint32");
            out[key] = value;
        } else if (signature == "t") {
            std::uint64_t value = 0;
            check_local(sd_bus_message_read(message, "t", &value), "read uint64");
            out[key] = value;
        } else if (signature == "au") {
            const void* data = nullptr;
            std::size_t size = 0;
            check_local(sd_bus_message_read_array(message, 'u', &data, &size), "read array");
            const auto* values = static_cast<const std::uint32_t*>(data);
            out[key] = std::vector<std::uint32_t>(values, values + size / sizeof(std::uint32_t));
        } else if (signature == "as") {
            std::vector<std::string> values;
            check_local(bus::read_string_array(message, values), "read string array");
            out[key] = values;
        } else {
            check_local(sd_bus_message_skip(message, contents), "skip value");
        }
        check_local(sd_bus_message_exit_container(message), "close variant");
        check_local(sd_bus_message_exit_container(message), "close entry");
    }
    check_local(sd_bus_message_exit_container(message), "close dictionary");
    return out;
}

void print_dictionary(const nlohmann::json& dict, bool json)
{
    if (json) {
        std::cout << dict.dump(2) << '\n';
        return;
    }
    for (const auto& [key, value] : dict.items()) {
        std::cout << key << ": " << (value.is_string() ? value.get<std::string>() : value.dump()) << '\n';
    }
}

// The value travels in a pipe whose write end is closed before the call, so the daemon reads
// a complete value without blocking; it never appears in argv, the environment or a message.
SensitiveBytes read_value_from_stdin()
{
    SensitiveBytes value(limits::kMaxSecretBytes + 1);
    if (::isatty(STDIN_FILENO) != 0) {
        SensitiveBytes typed = read_passphrase_from_terminal("Secret value: ", false);
        value.resize(typed.size());
        std::memcpy(value.data(), typed.data(), typed.size());
    } else {
        std::size_t size = 0;
        while (size < value.capacity()) {
            const ssize_t n = ::read(STDIN_FILENO, value.data() + size, value.capacity() - size);
            if (n < 0 && errno == EINTR) {
                continue;
            }
            if (n < 0) {
                throw CallError(std::nullopt, kExitLocalError,
                                std::string("read secret from stdin: ") + std::strerror(errno));
            }
            if (n == 0) {
                break;
            }
            size += static_cast<std::size_t>(n);
        }
        value.resize(size);
    }
    const int invalid = error_info(ErrorCode::InvalidArgument).exit_code;
    if (value.size() == 0) {
        throw CallError(ErrorCode::InvalidArgument, invalid, "secret value is empty");
    }
    if (value.size() > limits::kMaxSecretBytes) {
        throw CallError(ErrorCode::InvalidArgument, invalid, "secret value exceeds 65536 bytes");
    }
    return value;
}

nlohmann::json read_dictionary_array(sd_bus_message* message)
{
    nlohmann::json out = nlohmann::json::array();
    check_local(sd_bus_message_enter_container(message, 'a', "a{sv}"), "read list");
    for (;;) {
        const int r = sd_bus_message_at_end(message, 0);
        check_local(r, "read list");
        if (r > 0) {
            break;
        }
        out.push_back(read_dictionary(message));
    }
    check_local(sd_bus_message_exit_container(message), "close list");
    return out;
}

}  // namespace codexvault::cli
