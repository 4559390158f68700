#include "daemon/egress/tls_read_ahead.hpp"

#include <openssl/ssl.h>

#include <string_view>

namespace codexvault::egress::tls {

namespace {

// The event loop is the only thread that drives curl, so a plain counter is enough.
std::uint64_t records = 0;

void on_message(int write_p, int /*version*/, int content_type, const void* /*buf*/, size_t /*len*/, SSL* /*ssl*/,
                void* /*arg*/)
{
    // One SSL3_RT_HEADER message per record header read (ssl3_get_record).
    if (write_p == 0 && content_type == SSL3_RT_HEADER) {
        ++records;
    }
}

}  // namespace

bool openssl_backend() noexcept
{
    const curl_version_info_data* info = curl_version_info(CURLVERSION_NOW);
    return info != nullptr && info->ssl_version != nullptr &&
           std::string_view(info->ssl_version).starts_with("OpenSSL/");
}

CURLcode enable_read_ahead(CURL* /*easy*/, void* ssl_ctx, void* /*userdata*/) noexcept
{
    auto* ctx = static_cast<SSL_CTX*>(ssl_ctx);
    SSL_CTX_set_read_ahead(ctx, 1);
    SSL_CTX_set_default_read_buffer_len(ctx, static_cast<size_t>(kReadBufferBytes));
    SSL_CTX_set_msg_callback(ctx, &on_message);
    return CURLE_OK;
}

bool has_buffered_tls(CURL* easy) noexcept
{
    curl_tlssessioninfo* info = nullptr;
    if (curl_easy_getinfo(easy, CURLINFO_TLS_SSL_PTR, &info) != CURLE_OK || info == nullptr ||
        info->backend != CURLSSLBACKEND_OPENSSL || info->internals == nullptr) {
        return false;
    }
    return SSL_has_pending(static_cast<const SSL*>(info->internals)) == 1;
}

std::uint64_t records_processed() noexcept
{
    return records;
}

}  // namespace codexvault::egress::tls
