// `vaultctl proxy`'s HTTP/1.1 endpoint (libmicrohttpd, a thread per connection): checks the
// token, routes /<provider>/<path> to the daemon's Request method and streams the response body
// back as it arrives. It holds no secret: the daemon injects the key upstream.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "cli/proxy_core.hpp"
#include "cli/request_call.hpp"

namespace codexvault::cli::proxy {

struct ProxyConfig {
    ListenAddress listen;
    std::string token;
    std::vector<std::string> providers;  // empty: any provider (the daemon decides)
    std::string bus_address;             // empty: $CODEX_VAULT_BUS, else the system bus
    // Bounds: at most this many client connections (each a thread with its own bus connection
    // and a 64 KiB read buffer); a request body is spooled to a memfd, never to the heap.
    unsigned max_connections = 64;
    std::uint64_t max_request_bytes = 32ULL * 1024 * 1024;
    // How long Request may take to answer: it answers when the upstream's headers arrive.
    std::uint64_t header_timeout_usec = kRequestCallTimeoutUsec;
};

class ProxyServer {
public:
    // Binds and starts serving; throws std::runtime_error with the reason.
    explicit ProxyServer(ProxyConfig config);
    // Stops accepting, ends the streams in flight (cut, so clients see them as truncated) and
    // joins the connection threads. A thread inside a Request call that waits for upstream
    // headers is joined when that call returns; a command that must stop at once exits the
    // process instead (run_command.cpp).
    ~ProxyServer();
    ProxyServer(const ProxyServer&) = delete;
    ProxyServer& operator=(const ProxyServer&) = delete;

    [[nodiscard]] std::uint16_t port() const noexcept;
    // Requests turned away before any bus call (wrong or missing token, bad route or method).
    [[nodiscard]] std::uint64_t refused_before_bus() const noexcept;
    [[nodiscard]] std::uint64_t bus_requests() const noexcept;

    struct Impl;

private:
    std::unique_ptr<Impl> impl_;
};

}  // namespace codexvault::cli::proxy
