// GetNonce and Enroll: how the founder's key reaches the daemon and how proofs start.
#include <sodium.h>

#include "common/vault_error.hpp"
#include "daemon/monotonic_clock.hpp"
#include "daemon/pipeline/message_io.hpp"
#include "daemon/pipeline/methods.hpp"
#include "daemon/vault_service.hpp"

namespace codexvault::daemon::methods {

PreparedCall decode_get_nonce(sd_bus_message* /*message*/)
{
    PreparedCall call;
    call.act = [](RequestContext& context, sd_bus_message* reply) {
        // The nonce is bound to the asking connection: only a proof sent on it can spend it.
        const std::string& connection = context.subject.bus_name;
        if (connection.empty()) {
            throw VaultError(ErrorCode::PermissionDenied, "a nonce needs a caller with a unique bus name");
        }
        founder::Nonce random{};
        randombytes_buf(random.data(), random.size());
        const auto nonce = context.vault.founder().issue_nonce(connection, random, clock::monotonic_usec());
        io::check(sd_bus_message_append_array(reply, 'y', nonce.data(), nonce.size()), "append nonce");
    };
    return call;
}

PreparedCall decode_enroll(sd_bus_message* message)
{
    PreparedCall call;
    const auto key_bytes = io::read_bytes(message);
    call.proof = io::read_founder_proof(message);
    founder::PublicKey key{};
    if (key_bytes.size() != key.size()) {
        throw VaultError(ErrorCode::InvalidArgument, "founder public key must be 32 bytes (Ed25519)");
    }
    std::copy(key_bytes.begin(), key_bytes.end(), key.begin());
    call.enrolling_key = key;
    call.signed_arguments = {to_hex(key)};
    call.object = "founder";
    call.act = [key](RequestContext& context, sd_bus_message* /*reply*/) {
        // Checked again when applied: an Enroll authorized in the same commit round as another
        // one, or before a lock, was authorized against a state that is gone. The first one
        // applied wins; this one is refused, and its outcome record says so.
        if (context.vault.state() != VaultState::Uninitialized) {
            throw VaultError(ErrorCode::PermissionDenied, "a founder is already enrolled");
        }
        context.vault.enroll_founder(key);
    };
    return call;
}

}  // namespace codexvault::daemon::methods
