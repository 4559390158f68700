#include "daemon/methods/message_io.hpp"

#include <fcntl.h>

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

void Dictionary::close()
{
    check(sd_bus_message_close_container(message_), "close dictionary");
}

}  // namespace codexvault::daemon::io
