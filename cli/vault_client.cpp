#include "cli/vault_client.hpp"

#include <fcntl.h>
#include <sodium.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string_view>

#include "cli/request_call.hpp"
#include "common/bus_contract.hpp"
#include "common/bytes.hpp"

namespace codexvault::cli {
namespace {

constexpr std::uint64_t kProofLifetimeUsec = 30ULL * 1000 * 1000;

std::uint64_t realtime_usec()
{
    struct timespec ts {};
    ::clock_gettime(CLOCK_REALTIME, &ts);
    return static_cast<std::uint64_t>(ts.tv_sec) * 1000000ULL + static_cast<std::uint64_t>(ts.tv_nsec) / 1000ULL;
}

[[noreturn]] void throw_errno(const char* what, int error)
{
    throw CallError(std::nullopt, 1, std::string(what) + ": " + std::strerror(error));
}

}  // namespace

CallError error_from_reply(const sd_bus_error& error, int r)
{
    if (error.name == nullptr) {
        return CallError(std::nullopt, 1, std::string("bus call failed: ") + std::strerror(-r));
    }
    const std::string message = error.message != nullptr ? error.message : "";
    if (auto code = error_from_bus_name(error.name)) {
        return CallError(code, error_info(*code).exit_code, message);
    }
    const std::string_view name(error.name);
    if (name == "org.freedesktop.DBus.Error.InvalidArgs") {
        return CallError(ErrorCode::InvalidArgument, error_info(ErrorCode::InvalidArgument).exit_code, message);
    }
    if (name == "org.freedesktop.DBus.Error.ServiceUnknown" || name == "org.freedesktop.DBus.Error.NameHasNoOwner") {
        return CallError(ErrorCode::Unavailable, error_info(ErrorCode::Unavailable).exit_code,
                         "codex-vaultd is not running on this bus (" + message + ")");
    }
    return CallError(std::nullopt, 1, std::string(error.name) + ": " + message);
}

void check_local(int r, const char* what)
{
    if (r < 0) {
        throw CallError(std::nullopt, 1, std::string(what) + ": " + std::strerror(-r));
    }
}

void append_proof(sd_bus_message* message, const FounderProof& proof)
{
    check_local(sd_bus_message_open_container(message, 'r', "aytay"), "append proof");
    check_local(sd_bus_message_append_array(message, 'y', proof.nonce.data(), proof.nonce.size()), "append nonce");
    check_local(sd_bus_message_append(message, "t", proof.expires_realtime_usec), "append expiry");
    check_local(sd_bus_message_append_array(message, 'y', proof.signature.data(), proof.signature.size()),
                "append signature");
    check_local(sd_bus_message_close_container(message), "append proof");
}

VaultClient::~VaultClient() = default;
VaultClient::VaultClient(VaultClient&&) noexcept = default;
VaultClient& VaultClient::operator=(VaultClient&&) noexcept = default;

RequestEnds& VaultClient::request_ends()
{
    if (!ends_) {
        ends_ = std::make_unique<RequestEnds>(bus_.get());
    }
    return *ends_;
}

VaultClient::VaultClient(const std::string& address)
{
    std::string chosen = address;
    if (chosen.empty()) {
        if (const char* env = std::getenv(bus::kBusAddressEnv); env != nullptr) {
            chosen = env;
        }
    }
    sd_bus* raw = nullptr;
    if (chosen.empty()) {
        const int r = sd_bus_open_system(&raw);
        bus_.reset(raw);
        if (r < 0) {
            throw CallError(std::nullopt, 1, std::string("cannot connect to the system bus: ") + std::strerror(-r));
        }
        return;
    }
    check_local(sd_bus_new(&raw), "create bus connection");
    bus_.reset(raw);
    check_local(sd_bus_set_address(raw, chosen.c_str()), "set bus address");
    check_local(sd_bus_set_bus_client(raw, 1), "set bus client mode");
    check_local(sd_bus_negotiate_fds(raw, 1), "enable descriptor passing");
    const int r = sd_bus_start(raw);
    if (r < 0) {
        throw CallError(std::nullopt, 1, "cannot connect to bus " + chosen + ": " + std::strerror(-r));
    }
}

Message VaultClient::call(const char* method, const std::function<void(sd_bus_message*)>& append,
                          std::uint64_t timeout_usec)
{
    sd_bus_message* raw = nullptr;
    check_local(
        sd_bus_message_new_method_call(bus_.get(), &raw, bus::kBusName, bus::kObjectPath, bus::kInterface, method),
        "create method call");
    Message request(raw);
    if (append) {
        append(request.get());
    }
    sd_bus_error error = SD_BUS_ERROR_NULL;
    sd_bus_message* raw_reply = nullptr;
    const int r = sd_bus_call(bus_.get(), request.get(), timeout_usec, &error, &raw_reply);
    Message reply(raw_reply);
    if (r < 0) {
        CallError failure = error_from_reply(error, r);
        sd_bus_error_free(&error);
        throw failure;
    }
    sd_bus_error_free(&error);
    return reply;
}

std::vector<std::uint8_t> VaultClient::get_nonce()
{
    Message reply = call(bus::method::kGetNonce);
    const void* data = nullptr;
    std::size_t size = 0;
    check_local(sd_bus_message_read_array(reply.get(), 'y', &data, &size), "read nonce");
    const auto* bytes = static_cast<const std::uint8_t*>(data);
    return {bytes, bytes + size};
}

FounderProof VaultClient::prove(const FounderKeyPair& key, const char* method,
                                const std::vector<std::string>& arguments)
{
    FounderProof proof;
    proof.nonce = get_nonce();
    proof.expires_realtime_usec = realtime_usec() + kProofLifetimeUsec;
    const auto payload = founder_signing_payload(method, arguments, proof.nonce, proof.expires_realtime_usec);
    proof.signature = sign_detached(key, payload);
    return proof;
}

UniqueFd sealed_value_pipe(const TransportPublicKey& recipient, std::span<const std::uint8_t> value)
{
    if (sodium_init() < 0) {
        throw CallError(std::nullopt, 1, "libsodium failed to initialise");
    }
    std::vector<std::uint8_t> box(value.size() + crypto_box_SEALBYTES);
    if (crypto_box_seal(box.data(), value.data(), value.size(), recipient.data()) != 0) {
        throw CallError(std::nullopt, 1, "sealing the value to the daemon's transport key failed");
    }
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) {
        throw_errno("pipe", errno);
    }
    UniqueFd read_end(fds[0]);
    UniqueFd write_end(fds[1]);
    // The whole box must fit before the call: the daemon never waits for more (an open writer
    // with nothing left to read is refused).
    if (::fcntl(write_end.get(), F_SETPIPE_SZ, static_cast<int>(box.size())) < 0) {
        throw_errno("size pipe", errno);
    }
    std::size_t written = 0;
    while (written < box.size()) {
        const ssize_t n = ::write(write_end.get(), box.data() + written, box.size() - written);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            throw_errno("write pipe", errno);
        }
        written += static_cast<std::size_t>(n);
    }
    return read_end;
}

TransportPublicKey VaultClient::transport_key()
{
    Message reply = call(bus::method::kStatus);
    sd_bus_message* m = reply.get();
    check_local(sd_bus_message_enter_container(m, 'a', "{sv}"), "read status");
    std::string hex;
    for (;;) {
        const int r = sd_bus_message_enter_container(m, 'e', "sv");
        check_local(r, "read status entry");
        if (r == 0) {
            break;
        }
        const char* key = nullptr;
        check_local(sd_bus_message_read(m, "s", &key), "read status key");
        if (std::string_view(key) == "transport_key") {
            const char* value = nullptr;
            check_local(sd_bus_message_read(m, "v", "s", &value), "read transport_key");
            hex = value;
        } else {
            check_local(sd_bus_message_skip(m, "v"), "skip status value");
        }
        check_local(sd_bus_message_exit_container(m), "read status entry");
    }
    TransportPublicKey key{};
    const std::vector<std::uint8_t> bytes = bytes::from_hex(hex).value_or(std::vector<std::uint8_t>{});
    if (bytes.size() != key.size()) {
        throw CallError(ErrorCode::Unavailable, error_info(ErrorCode::Unavailable).exit_code,
                        "the daemon shows no transport key (an older codex-vaultd?); secret values are sent only "
                        "sealed to it");
    }
    std::copy(bytes.begin(), bytes.end(), key.begin());
    return key;
}

std::uint32_t VaultClient::write_secret(const FounderKeyPair& key, const TransportPublicKey& pinned,
                                        const std::string& name, std::span<const std::uint8_t> value, bool rotate)
{
    const TransportPublicKey shown = transport_key();
    if (sodium_memcmp(shown.data(), pinned.data(), shown.size()) != 0) {
        throw CallError(ErrorCode::IntegrityFailure, error_info(ErrorCode::IntegrityFailure).exit_code,
                        "the daemon shows transport key " + bytes::to_hex(shown) + ", not the pinned " +
                            bytes::to_hex(pinned) +
                            "; the value was not sent (another daemon on this bus, or a new master key: re-pin "
                            "only once you know which)");
    }
    const UniqueFd sealed = sealed_value_pipe(pinned, value);
    return put_secret(key, name, sealed.get(), rotate);
}

void VaultClient::enroll(const FounderKeyPair& key)
{
    // The daemon checks the signature over the key in exactly this form (common/bytes.hpp).
    const FounderProof proof = prove(key, bus::method::kEnroll, {bytes::to_hex(key.public_key)});
    call(bus::method::kEnroll, [&](sd_bus_message* m) {
        check_local(sd_bus_message_append_array(m, 'y', key.public_key.data(), key.public_key.size()), "append key");
        append_proof(m, proof);
    });
}

std::uint32_t VaultClient::put_secret(const FounderKeyPair& key, const std::string& name, int value_fd, bool rotate)
{
    const char* method = rotate ? bus::method::kRotateSecret : bus::method::kPutSecret;
    const FounderProof proof = prove(key, method, {name});
    Message reply = call(method, [&](sd_bus_message* m) {
        check_local(sd_bus_message_append(m, "sh", name.c_str(), value_fd), "append arguments");
        append_proof(m, proof);
    });
    std::uint32_t version = 0;
    check_local(sd_bus_message_read(reply.get(), "u", &version), "read version");
    return version;
}

void VaultClient::delete_secret(const FounderKeyPair& key, const std::string& name)
{
    const FounderProof proof = prove(key, bus::method::kDeleteSecret, {name});
    call(bus::method::kDeleteSecret, [&](sd_bus_message* m) {
        check_local(sd_bus_message_append(m, "s", name.c_str()), "append name");
        append_proof(m, proof);
    });
}

std::vector<SecretInfo> VaultClient::list_secrets(const FounderKeyPair& key)
{
    const FounderProof proof = prove(key, bus::method::kListSecrets, {});
    Message reply = call(bus::method::kListSecrets, [&](sd_bus_message* m) { append_proof(m, proof); });
    std::vector<SecretInfo> out;
    check_local(sd_bus_message_enter_container(reply.get(), 'a', "(suttbb)"), "read list");
    for (;;) {
        const char* name = nullptr;
        SecretInfo info;
        int ok = 0;
        int rotate = 0;
        const int r = sd_bus_message_read(reply.get(), "(suttbb)", &name, &info.version, &info.created_usec,
                                          &info.rotated_usec, &ok, &rotate);
        check_local(r, "read list entry");
        if (r == 0) {
            break;
        }
        info.name = name;
        info.integrity_ok = ok != 0;
        info.rotation_required = rotate != 0;
        out.push_back(std::move(info));
    }
    return out;
}

}  // namespace codexvault::cli
