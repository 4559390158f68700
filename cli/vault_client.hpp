// The client side of the bus contract: connects, calls methods, signs founder operations, and
// turns D-Bus errors into typed errors with vaultctl's exit codes.
#pragma once

#include <systemd/sd-bus.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "cli/founder_key.hpp"
#include "common/founder_proof.hpp"
#include "common/vault_error.hpp"
#include "lib/fileio/unique_fd.hpp"
#include "lib/sdbus/sd_ptr.hpp"

namespace codexvault::cli {

// A failed call: `code` is set for the vault's own errors; `exit_code` is what vaultctl exits with.
class CallError : public std::runtime_error {
public:
    CallError(std::optional<ErrorCode> code, int exit_code, const std::string& message)
        : std::runtime_error(message), code_(code), exit_code_(exit_code)
    {
    }
    [[nodiscard]] std::optional<ErrorCode> code() const noexcept { return code_; }
    [[nodiscard]] int exit_code() const noexcept { return exit_code_; }

private:
    std::optional<ErrorCode> code_;
    int exit_code_;
};

using Message = bus::MessagePtr;

class RequestEnds;  // cli/request_call.hpp

struct SecretInfo {
    std::string name;
    std::uint32_t version = 0;
    std::uint64_t created_usec = 0;
    std::uint64_t rotated_usec = 0;
    bool integrity_ok = true;
    bool rotation_required = false;  // marked by incident response: rotate before use
};

class VaultClient {
public:
    // `address` empty: $CODEX_VAULT_BUS if set, else the system bus.
    explicit VaultClient(const std::string& address);
    ~VaultClient();
    VaultClient(VaultClient&&) noexcept;
    VaultClient& operator=(VaultClient&&) noexcept;

    // Calls `method`; `append` adds the arguments. Throws CallError on an error reply.
    // timeout_usec 0: sd-bus's default (25 s); Ingest waits for a whole scan.
    Message call(const char* method, const std::function<void(sd_bus_message*)>& append = {},
                 std::uint64_t timeout_usec = 0);

    std::vector<std::uint8_t> get_nonce();
    // A proof over (method, arguments) with a fresh nonce and a 30 s expiry.
    FounderProof prove(const FounderKeyPair& key, const char* method, const std::vector<std::string>& arguments);

    void enroll(const FounderKeyPair& key);
    // The transport key the daemon shows in Status (`transport_key`).
    TransportPublicKey transport_key();
    // PutSecret/RotateSecret of `value`: refused here (IntegrityFailure, nothing sent) unless the
    // daemon shows the `pinned` transport key; the value is sealed to that key and handed over in
    // a pipe that holds only the sealed box.
    std::uint32_t write_secret(const FounderKeyPair& key, const TransportPublicKey& pinned, const std::string& name,
                               std::span<const std::uint8_t> value, bool rotate);
    // The raw call: `value_fd` must already hold what the daemon expects (a sealed box).
    std::uint32_t put_secret(const FounderKeyPair& key, const std::string& name, int value_fd, bool rotate);
    void delete_secret(const FounderKeyPair& key, const std::string& name);
    std::vector<SecretInfo> list_secrets(const FounderKeyPair& key);

    // The connection, for signal matches (`approvals watch`).
    [[nodiscard]] sd_bus* bus() const noexcept { return bus_.get(); }

    // The RequestEnded signals this connection received (created at the first use).
    RequestEnds& request_ends();

private:
    bus::BusPtr bus_;
    std::unique_ptr<RequestEnds> ends_;
};

void append_proof(sd_bus_message* message, const FounderProof& proof);
// A pipe whose write end is closed after it received `value` sealed to `recipient`
// (crypto_box_seal): the descriptor to pass as a PutSecret/RotateSecret value.
UniqueFd sealed_value_pipe(const TransportPublicKey& recipient, std::span<const std::uint8_t> value);
// The CallError for an error reply (or a local failure `r` when `error` is unset).
CallError error_from_reply(const sd_bus_error& error, int r);
// Throws CallError(exit 1) naming `what` when an sd-bus call fails locally.
void check_local(int r, const char* what);

}  // namespace codexvault::cli
