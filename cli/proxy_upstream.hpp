// The proxy's bus connection for mediated requests (Request and RequestOutcome through
// cli/request_call.hpp). One UpstreamBus per thread: sd-bus connections are not thread-safe, and
// RequestOutcome must be asked on the connection that sent the Request. The daemon sees each
// connection as the proxy process (its uid, unit and exe).
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>

#include "cli/request_call.hpp"
#include "cli/vault_client.hpp"
#include "lib/fileio/unique_fd.hpp"

namespace codexvault::cli::proxy {

// The HTTP client hung up while its Request waited for the response head.
class ClientGone : public std::runtime_error {
public:
    ClientGone() : std::runtime_error("the client hung up before the response head arrived") {}
};

class UpstreamBus {
public:
    // `address` empty: $CODEX_VAULT_BUS, else the system bus (as VaultClient).
    explicit UpstreamBus(const std::string& address) : client_(address) { (void)client_.request_ends(); }

    // Throws CallError (with the vault's error code when the daemon refused). The reply comes
    // when the upstream's headers do, which may take minutes for a model that answers without
    // streaming: the call waits up to `timeout_usec`. Meanwhile `client` (the HTTP client's
    // socket, or -1) is watched: when it hangs up, ClientGone is thrown and this connection must
    // be dropped (closing it is what cancels the Request in the daemon: a caller that leaves the
    // bus before its response head arrives has its exchange cut).
    ProviderResponse request(const ProviderRequest& request, std::uint64_t timeout_usec, int client = -1);
    // After the stream's EOF: the request's RequestEnded signal from `vault` (the name that
    // answered the Request), else RequestOutcome. A "pending" answer (the daemon has not
    // recorded the end yet) is asked again briefly; still pending after that counts as not
    // complete.
    ProviderOutcome outcome(std::uint64_t request_id, const std::string& vault);

private:
    VaultClient client_;
};

}  // namespace codexvault::cli::proxy
