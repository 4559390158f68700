// One mediated exchange: the curl easy handle and its callbacks, the caller's body source, the
// response stream with its redactor, and the idle clock. Driven by the Engine; every curl callback
// is noexcept and turns a failure into a stored End plus an error return to curl.
//
// Memory per stream is bounded: curl's receive buffer (16 KiB), OpenSSL's read-ahead buffer
// (tls::kReadBufferBytes), at most kBatchBytes plus one
// chunk of redacted output waiting for the reader (a chunk is not taken from curl while earlier
// output could not be written: the transfer is paused instead), the redactor's hold-back (longest
// needle - 1 bytes), and the socket buffer of the stream.
#pragma once

#include <curl/curl.h>
#include <systemd/sd-event.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "daemon/egress/body_source.hpp"
#include "daemon/egress/curl_ptr.hpp"
#include "daemon/egress/exchange.hpp"
#include "lib/redact/needle_set.hpp"
#include "lib/redact/stream_redactor.hpp"
#include "lib/sdbus/sd_ptr.hpp"

namespace codexvault::egress {

class Engine;

class Transfer {
public:
    Transfer(Engine& engine, std::uint64_t id, ExchangeCallbacks callbacks, bool read_ahead);
    ~Transfer();
    Transfer(const Transfer&) = delete;
    Transfer& operator=(const Transfer&) = delete;

    // Sets the easy handle up; an error means nothing was started.
    policy::Result<policy::Ok> prepare(ExchangeRequest& request, std::span<const std::uint8_t> secret);
    [[nodiscard]] CURL* easy() const noexcept { return easy_.get(); }
    [[nodiscard]] std::uint64_t id() const noexcept { return id_; }

    // curl reported the transfer done (it is still in the multi handle).
    void curl_done(CURLcode result);
    // Cut from outside the curl callbacks (lock, idle clock, reader gone).
    void cut(End end, std::string reason);
    void cut_quietly(End end, const char* reason) noexcept;
    // Writes the output batched during the engine's last turn of curl (Engine::flush_later).
    void flush_deferred() noexcept;
    // The socket to drive again when this transfer is receiving and its connection holds TLS
    // bytes read ahead (tls_read_ahead.hpp); none otherwise.
    [[nodiscard]] std::optional<curl_socket_t> buffered_socket() const noexcept;
    // The socket curl watches for this transfer (its socket callback), CURL_SOCKET_BAD for none.
    void set_socket(curl_socket_t socket) noexcept { socket_ = socket; }

    // Output of one turn of curl is written in one send() up to this many bytes.
    static constexpr std::size_t kBatchBytes = 64 * 1024;

private:
    enum class Stage { Running, Draining, Over };

    static size_t on_header(char* data, size_t size, size_t count, void* self) noexcept;
    static size_t on_body(char* data, size_t size, size_t count, void* self) noexcept;
    static size_t on_read(char* buffer, size_t size, size_t count, void* self) noexcept;
    static curl_socket_t on_open_socket(void* self, curlsocktype purpose, curl_sockaddr* address) noexcept;
    static int on_prereq(void* self, char* peer_ip, char* local_ip, int peer_port, int local_port) noexcept;
    static int on_stream_writable(sd_event_source* source, int fd, uint32_t events, void* self) noexcept;
    static int on_body_readable(sd_event_source* source, int fd, uint32_t events, void* self) noexcept;
    static int on_idle_check(sd_event_source* source, uint64_t usec, void* self) noexcept;

    policy::Result<policy::Ok> configure(const ExchangeRequest& request, const std::string& url,
                                         const std::vector<Header>& headers, std::span<const std::uint8_t> secret);
    size_t header_line(std::string_view line);
    size_t body(std::span<const std::uint8_t> data);
    size_t read_body(char* buffer, size_t capacity);
    bool deliver_head();
    // Writes waiting output; false when the reader is gone (then the End is set).
    bool flush();
    void stream_writable();
    void body_readable();
    void idle_check(std::uint64_t now);
    void touch() noexcept;
    void arm_idle();
    void watch_stream();
    void unpause();
    void fail(End end, std::string reason);
    End classify(CURLcode result) const;
    void close_stream_and_report();

    Engine& engine_;
    std::uint64_t id_;
    ExchangeCallbacks callbacks_;
    EasyPtr easy_;
    SlistPtr request_headers_;
    std::string ca_bundle_;
    BodySource body_;
    std::uint64_t max_response_bytes_ = 0;
    std::uint64_t idle_usec_ = 0;
    bool allow_private_ = false;
    bool read_ahead_ = false;
    curl_socket_t socket_ = CURL_SOCKET_BAD;
    char error_buffer_[CURL_ERROR_SIZE] = {};

    std::shared_ptr<const redact::NeedleSet> needles_;
    std::unique_ptr<redact::StreamRedactor> body_redactor_;
    std::unique_ptr<redact::StreamRedactor> header_redactor_;

    Stage stage_ = Stage::Running;
    ResponseHead head_;
    std::size_t header_bytes_ = 0;
    bool head_sent_ = false;
    UniqueFd stream_;  // the daemon's end of the response stream
    std::vector<std::uint8_t> pending_;
    std::size_t pending_from_ = 0;
    bool recv_paused_ = false;
    bool blocked_ = false;       // the last write met a full stream: wait for it to drain
    bool flush_queued_ = false;  // Engine::flush_later was called and has not run yet
    bool send_paused_ = false;
    bool connected_ = false;
    std::optional<std::string> blocked_address_;
    std::optional<End> failure_;
    Outcome outcome_;
    std::uint64_t last_progress_ = 0;

    bus::EventSourcePtr stream_watch_;
    bus::EventSourcePtr body_watch_;
    bus::EventSourcePtr idle_timer_;
};

}  // namespace codexvault::egress
