// The egress engine: mediated HTTPS exchanges on the daemon's sd-event loop with libcurl's
// multi-socket interface. No thread per request and no blocking call: curl tells the engine which
// sockets to watch and when to wake it, sd-event wakes it, and every descriptor the engine reads
// (the caller's body pipe) or writes (the response stream) is non-blocking, with the transfer
// paused in that direction while the descriptor is not ready. One connection cache for the
// engine, so kept-alive connections to an origin are reused across requests.
//
// Every exchange is HTTPS only, verifies TLS (the system store or the provider's ca_file, plus
// its pins), follows no redirect, uses no proxy from the environment, refuses a non-public peer
// address unless the provider allows it (checked on the address connected to), injects the
// secret by the provider's template, and redacts the secret from response headers and body.
#pragma once

#include <systemd/sd-event.h>

#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "daemon/egress/curl_ptr.hpp"
#include "daemon/egress/exchange.hpp"
#include "lib/sdbus/sd_ptr.hpp"
#include "policy/result.hpp"

namespace codexvault::egress {

class Transfer;

struct EngineOptions {
    // Offer HTTP/2 by ALPN (curl multiplexes streams to one origin on one connection). Off in
    // the daemon: docs/egress.md, "HTTP/2", says what Debian 12's libcurl 7.88 does with a
    // paused HTTP/2 stream and why that breaks the memory bound per stream.
    bool http2 = false;
    // OpenSSL read-ahead (tls_read_ahead.hpp), when libcurl uses OpenSSL: several TLS records per
    // recv and per turn of the loop.
    bool read_ahead = true;
};

class Engine {
public:
    // Throws std::runtime_error when libcurl or sd-event cannot be set up.
    explicit Engine(sd_event* event, EngineOptions options = {});
    ~Engine();
    Engine(const Engine&) = delete;
    Engine& operator=(const Engine&) = delete;

    // Starts an exchange. Refused at once (no connection made) when the method, path or headers
    // are malformed or not allowed by the provider, the body descriptor is of the wrong kind or
    // too large, or the secret cannot be redacted (shorter than 8 bytes). `secret` is copied into
    // the request header and the redactor's needles and not kept otherwise. The callbacks run on
    // the event loop; they may call start() and cancel().
    policy::Result<std::uint64_t> start(ExchangeRequest request, std::span<const std::uint8_t> secret,
                                        ExchangeCallbacks callbacks);

    // Cuts an exchange (or all of them): the stream closes without its end and on_end reports
    // Cancelled with the reason. Takes effect on the next turn of the loop.
    void cancel(std::uint64_t id, std::string reason);
    void cancel_all(const std::string& reason);
    // Cuts every exchange now (each on_end runs before this returns): for the orderly stop, when
    // the loop no longer turns. Never from inside a curl callback.
    void cut_all_now(const std::string& reason);

    [[nodiscard]] std::size_t active() const noexcept { return transfers_.size(); }

    // Used by Transfer.
    [[nodiscard]] sd_event* event() const noexcept { return event_; }
    [[nodiscard]] CURLM* multi() const noexcept { return multi_.get(); }
    [[nodiscard]] const EngineOptions& options() const noexcept { return options_; }
    void finished(std::uint64_t id);  // the transfer has reported its end; delete it soon
    // The transfer holds output it has not tried to write yet: written when curl returns to the
    // engine, so the chunks of one turn go out in one write (one wake-up of the reader).
    void flush_later(std::uint64_t id);
    void wake_reaper();

private:
    static int on_socket(CURL* easy, curl_socket_t socket, int what, void* engine, void* socket_data) noexcept;
    static int on_timer(CURLM* multi, long timeout_ms, void* engine) noexcept;
    static int on_socket_ready(sd_event_source* source, int fd, uint32_t events, void* engine) noexcept;
    static int on_timer_due(sd_event_source* source, uint64_t usec, void* engine) noexcept;
    static int on_reap(sd_event_source* source, void* engine) noexcept;
    static int on_kick(sd_event_source* source, void* engine) noexcept;

    int watch_socket(curl_socket_t socket, int what);
    void set_timer(long timeout_ms);
    void drive(curl_socket_t socket, int flags);
    void act(curl_socket_t socket, int flags);
    // Drives again the transfers whose TLS records wait in OpenSSL's read-ahead buffer
    // (tls_read_ahead.hpp); false when it stopped at its bound with records still waiting.
    bool read_buffered();
    void collect_done();
    void flush_deferred();
    void reap();

    sd_event* event_;
    EngineOptions options_;
    MultiPtr multi_;
    bus::EventSourcePtr timer_;
    bus::EventSourcePtr reaper_;
    // Runs curl on the next turn of the loop: for curl's "now" timeouts (no timerfd to arm) and
    // for read-ahead records left over when read_buffered() reached its bound.
    bus::EventSourcePtr kick_;
    bool read_ahead_ = false;  // the connections use OpenSSL read-ahead
    std::unordered_map<curl_socket_t, bus::EventSourcePtr> sockets_;
    std::map<std::uint64_t, std::unique_ptr<Transfer>> transfers_;
    std::vector<std::pair<std::uint64_t, std::string>> cancels_;
    std::vector<std::uint64_t> ended_;
    std::vector<std::uint64_t> unflushed_;
    std::uint64_t next_id_ = 1;
};

}  // namespace codexvault::egress
