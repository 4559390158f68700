// What a mediated exchange is given and what it reports: the request as the caller states it,
// the response head handed over once the upstream's headers are in, and how the stream ended.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "daemon/egress/header_rules.hpp"
#include "lib/fileio/unique_fd.hpp"
#include "policy/provider.hpp"

namespace codexvault::egress {

struct ExchangeRequest {
    policy::Provider provider;  // a copy: a policy reload does not change an exchange under way
    std::string method;         // "POST"
    std::string path;           // "/v1/chat/completions?stream=true", clean (request_target.hpp)
    std::vector<Header> headers;
    UniqueFd body;  // a pipe, a memfd or a regular file (read from offset 0); invalid: no body
};

struct ResponseHead {
    long status = 0;
    std::vector<Header> headers;  // filtered (header_rules.hpp) and redacted
};

// How an exchange ended. Everything but Complete means the body the caller got is not the whole
// response (or there was no response).
enum class End : std::uint8_t {
    Complete,
    Refused,        // before any connection: a private address, a too-large known body
    ConnectFailed,  // DNS, TCP
    TlsFailed,      // certificate verification, handshake
    PinMismatch,    // the server's key matched none of the provider's pins
    ConnectTimeout,
    IdleTimeout,  // no byte either way for timeouts.idle (upstream or the reader)
    TotalTimeout,
    RequestTooLarge,   // a streamed body went past max_request_bytes
    ResponseTooLarge,  // cut at max_response_bytes
    HeadersTooLarge,
    EncodedBody,     // Content-Encoding other than identity: cannot be redacted, not passed on
    UpstreamError,   // reset, protocol error, short body
    BodyReadFailed,  // the caller's body descriptor failed or shrank
    ReaderGone,      // the caller closed its end of the body stream
    Cancelled,       // lock, incident, daemon stop
};
std::string_view end_name(End end) noexcept;

struct Outcome {
    End end = End::Complete;
    std::string reason;  // for the log and the caller; never a header value or body byte
    long status = 0;     // 0 when no response head arrived
    bool head_delivered = false;
    std::uint64_t request_bytes = 0;    // body bytes sent upstream
    std::uint64_t response_bytes = 0;   // body bytes received from upstream
    std::uint64_t delivered_bytes = 0;  // bytes written to the caller (after redaction)
    std::uint64_t redactions = 0;       // markers written, headers and body
    std::uint64_t new_connections = 0;  // 0 when a kept-alive connection was reused
    bool http2 = false;                 // the response came over HTTP/2
    std::uint64_t receive_pauses = 0;   // times the reader's backlog paused the download
    std::vector<std::string> dropped_headers;
};

struct ExchangeCallbacks {
    // Once, when the final response head is in: the head and the read end of the stream the body
    // comes through (EOF at the end, complete or not: on_end says which). Not called when the
    // exchange fails before a response.
    std::function<void(ResponseHead head, UniqueFd body_reader)> on_head;
    // Once, last, when the exchange is over: everything that will be written to the body stream
    // is written, and the daemon's end closes right after this returns.
    std::function<void(const Outcome& outcome)> on_end;
};

}  // namespace codexvault::egress
