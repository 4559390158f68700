// OpenSSL read-ahead for the engine's connections, made safe for libcurl 7.88.
//
// Without read-ahead OpenSSL reads each TLS record with two recv calls (its 5-byte header, then
// its body), and curl returns to the event loop after every record, so a 16 KiB record cost two
// recv, an epoll_wait and, further on, its own write to the caller. With read-ahead one recv takes
// whatever the socket holds, up to kReadBufferBytes (several records). But curl 7.88 decides
// whether to read again with SSL_pending, which counts only the decrypted record being read, not
// the records read ahead: left alone, curl would wait for the socket to become readable while the
// rest of a response sits in OpenSSL's buffer. So the engine, after every turn of curl, drives
// again every transfer whose connection still holds buffered TLS bytes (has_buffered_tls), for as
// long as that turn processed a TLS record (records_processed); when no record was processed
// the buffers hold only partial records, whose rest arrives on the socket and wakes the loop.
#pragma once

#include <curl/curl.h>

#include <cstdint>

namespace codexvault::egress::tls {

// OpenSSL's read buffer per connection with read-ahead (four full records).
inline constexpr long kReadBufferBytes = 64 * 1024;

// Whether libcurl was built with OpenSSL (only then is any of the rest used).
[[nodiscard]] bool openssl_backend() noexcept;

// CURLOPT_SSL_CTX_FUNCTION: turns read-ahead on for a connection being set up and counts the
// records it processes.
CURLcode enable_read_ahead(CURL* easy, void* ssl_ctx, void* userdata) noexcept;

// Whether the connection of `easy` holds TLS bytes OpenSSL has read but curl has not taken
// (processed or not, a partial record included).
[[nodiscard]] bool has_buffered_tls(CURL* easy) noexcept;

// TLS records processed on every connection set up by enable_read_ahead, ever (the loop is single
// threaded): a turn that changed it made progress.
[[nodiscard]] std::uint64_t records_processed() noexcept;

}  // namespace codexvault::egress::tls
