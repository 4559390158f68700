// The proxy's side of the bus contract for mediated requests: Request and RequestOutcome
// (docs/bus-api.md). One UpstreamBus per thread: sd-bus connections are not thread-safe, and the
// daemon sees each connection as the proxy process (its uid, unit and exe).
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "cli/vault_client.hpp"
#include "lib/fileio/unique_fd.hpp"

namespace codexvault::cli::proxy {

using HeaderList = std::vector<std::pair<std::string, std::string>>;

struct UpstreamResponse {
    std::uint64_t request_id = 0;
    std::uint16_t status = 0;
    HeaderList headers;
    UniqueFd stream;  // the body, to EOF; then ask RequestOutcome whether it was whole
};

struct UpstreamOutcome {
    std::string end;  // "complete" or "truncated"
    std::string reason;
    std::uint64_t bytes_delivered = 0;
    std::uint64_t redactions = 0;
    [[nodiscard]] bool complete() const noexcept { return end == "complete"; }
};

class UpstreamBus {
public:
    // `address` empty: $CODEX_VAULT_BUS, else the system bus (as VaultClient).
    explicit UpstreamBus(const std::string& address) : client_(address) {}

    // Throws CallError (with the vault's error code when the daemon refused). `body` -1: no body.
    // The reply comes when the upstream's headers do, which may take minutes for a model that
    // answers without streaming: the call waits up to `timeout_usec`.
    UpstreamResponse request(const std::string& provider, const std::string& method,
                             const std::string& path_and_query, const HeaderList& headers, int body,
                             std::uint64_t timeout_usec);
    UpstreamOutcome outcome(std::uint64_t request_id);

private:
    VaultClient client_;
};

// Method names of the contract (common/bus_contract.hpp carries them once the daemon side is in).
inline constexpr const char* kRequestMethod = "Request";
inline constexpr const char* kRequestOutcomeMethod = "RequestOutcome";

}  // namespace codexvault::cli::proxy
