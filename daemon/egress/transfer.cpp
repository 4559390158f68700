#include "daemon/egress/transfer.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "daemon/egress/address_guard.hpp"
#include "daemon/egress/ca_bundle.hpp"
#include "daemon/egress/engine.hpp"
#include "daemon/egress/request_target.hpp"
#include "daemon/egress/tls_read_ahead.hpp"
#include "lib/log/log.hpp"

namespace codexvault::egress {

namespace {

constexpr long kReceiveBuffer = 16 * 1024;

std::uint64_t now_usec(sd_event* event) noexcept
{
    std::uint64_t now = 0;
    (void)sd_event_now(event, CLOCK_MONOTONIC, &now);
    return now;
}

template <typename T>
policy::Result<policy::Ok> set(CURL* easy, CURLoption option, T value, const char* name)
{
    const CURLcode code = curl_easy_setopt(easy, option, value);
    if (code != CURLE_OK) {
        return policy::make_error(std::string("libcurl refused ") + name + ": " + curl_easy_strerror(code));
    }
    return policy::Ok{};
}

}  // namespace

std::string_view end_name(End end) noexcept
{
    switch (end) {
    case End::Complete:
        return "complete";
    case End::Refused:
        return "refused";
    case End::ConnectFailed:
        return "connect-failed";
    case End::TlsFailed:
        return "tls-failed";
    case End::PinMismatch:
        return "pin-mismatch";
    case End::ConnectTimeout:
        return "connect-timeout";
    case End::IdleTimeout:
        return "idle-timeout";
    case End::TotalTimeout:
        return "total-timeout";
    case End::RequestTooLarge:
        return "request-too-large";
    case End::ResponseTooLarge:
        return "response-too-large";
    case End::HeadersTooLarge:
        return "headers-too-large";
    case End::EncodedBody:
        return "encoded-body";
    case End::UpstreamError:
        return "upstream-error";
    case End::BodyReadFailed:
        return "body-read-failed";
    case End::ReaderGone:
        return "reader-gone";
    case End::Cancelled:
        return "cancelled";
    }
    return "unknown";
}

Transfer::Transfer(Engine& engine, std::uint64_t id, ExchangeCallbacks callbacks, bool read_ahead)
    : engine_(engine), id_(id), callbacks_(std::move(callbacks)), read_ahead_(read_ahead)
{
}

Transfer::~Transfer()
{
    if (!ca_bundle_.empty()) {
        explicit_bzero(ca_bundle_.data(), ca_bundle_.size());
    }
}

policy::Result<policy::Ok> Transfer::prepare(ExchangeRequest& request, std::span<const std::uint8_t> secret)
{
    const policy::Provider& provider = request.provider;
    auto target = make_target(provider, request.method, request.path);
    if (!target) {
        return target.error();
    }
    auto filtered = filter_request_headers(request.headers, provider.inject);
    if (!filtered) {
        return filtered.error();
    }
    outcome_.dropped_headers = filtered.value().dropped;
    if (request.body.valid() && !method_takes_body(target.value().method)) {
        return policy::make_error(request.method + " requests are sent without a body");
    }
    auto body = BodySource::open(std::move(request.body), provider.transport.max_request_bytes);
    if (!body) {
        return body.error();
    }
    body_ = std::move(body).value();

    const redact::Secret key{provider.secret, secret, {}};
    redact::BuildResult built = redact::build_needle_set(std::span(&key, 1));
    if (!built.needles) {
        // A secret the redactor cannot match reliably could come back in a response unseen.
        return policy::make_error("the secret of provider " + provider.name + " cannot be redacted from responses (" +
                                  built.error + "); refusing to use it");
    }
    needles_ = std::move(built.needles);
    body_redactor_ = std::make_unique<redact::StreamRedactor>(needles_);
    header_redactor_ = std::make_unique<redact::StreamRedactor>(needles_);

    if (!provider.transport.ca_file.empty()) {
        auto bundle = read_ca_bundle(provider.transport.ca_file);
        if (!bundle) {
            return bundle.error();
        }
        ca_bundle_ = std::move(bundle).value();
    }
    max_response_bytes_ = provider.transport.max_response_bytes;
    idle_usec_ = provider.transport.timeouts.idle_usec;
    allow_private_ = provider.transport.allow_private_address;

    easy_.reset(curl_easy_init());
    if (!easy_) {
        return policy::make_error("libcurl could not create a transfer");
    }
    return configure(request, target.value().url, filtered.value().headers, secret);
}

policy::Result<policy::Ok> Transfer::configure(const ExchangeRequest& request, const std::string& url,
                                               const std::vector<Header>& headers, std::span<const std::uint8_t> secret)
{
    CURL* easy = easy_.get();
    const policy::Transport& transport = request.provider.transport;
    const policy::Injection& inject = request.provider.inject;

    // The header list: the caller's filtered headers, "Expect:" (no 100-continue round trip),
    // then the credential. The credential's text is wiped from this frame once curl has its copy.
    curl_slist* list = nullptr;
    const auto append = [&list](const std::string& line) {
        curl_slist* grown = curl_slist_append(list, line.c_str());
        if (grown == nullptr) {
            return false;
        }
        list = grown;
        return true;
    };
    bool ok = true;
    for (const Header& header : headers) {
        ok = ok && append(header.name + ": " + header.value);
    }
    ok = ok && append("Expect:");
    std::string credential = inject.header + ": " + inject.prefix;
    credential.append(reinterpret_cast<const char*>(secret.data()), secret.size());
    credential += inject.suffix;
    // A secret with CR, LF or NUL would split the header and smuggle a request line of its own.
    const bool credential_fits = is_header_value(std::string_view(credential).substr(inject.header.size() + 2));
    ok = ok && credential_fits && append(credential);
    explicit_bzero(credential.data(), credential.size());
    request_headers_.reset(list);
    if (!credential_fits) {
        return policy::make_error("the secret holds bytes a header cannot carry (control characters) or is too long");
    }
    if (!ok) {
        return policy::make_error("out of memory building the request headers");
    }

    const std::pair<std::string_view, policy::HttpMethod> method{request.method, *policy::parse_method(request.method)};
    const std::uint64_t total_ms =
        transport.timeouts.total_usec ? std::max<std::uint64_t>(1, *transport.timeouts.total_usec / 1000) : 0;
    const auto connect_ms = static_cast<long>(std::max<std::uint64_t>(1, transport.timeouts.connect_usec / 1000));

    std::vector<policy::Result<policy::Ok>> steps;
    steps.push_back(set(easy, CURLOPT_URL, url.c_str(), "URL"));
    steps.push_back(set(easy, CURLOPT_PROTOCOLS_STR, "https", "PROTOCOLS_STR"));
    steps.push_back(set(easy, CURLOPT_REDIR_PROTOCOLS_STR, "https", "REDIR_PROTOCOLS_STR"));
    steps.push_back(set(easy, CURLOPT_FOLLOWLOCATION, 0L, "FOLLOWLOCATION"));
    steps.push_back(set(easy, CURLOPT_PROXY, "", "PROXY"));  // never a proxy from the environment
    steps.push_back(set(easy, CURLOPT_SSL_VERIFYPEER, 1L, "SSL_VERIFYPEER"));
    steps.push_back(set(easy, CURLOPT_SSL_VERIFYHOST, 2L, "SSL_VERIFYHOST"));
    steps.push_back(set(easy, CURLOPT_SSLVERSION, static_cast<long>(CURL_SSLVERSION_TLSv1_2), "SSLVERSION"));
    if (engine_.options().http2) {
        // HTTP/2 where the server offers it by ALPN, else HTTP/1.1; PIPEWAIT: a second request
        // to an origin waits to learn whether the first connection multiplexes, rather than
        // opening its own.
        steps.push_back(set(easy, CURLOPT_HTTP_VERSION, static_cast<long>(CURL_HTTP_VERSION_2TLS), "HTTP_VERSION"));
        steps.push_back(set(easy, CURLOPT_PIPEWAIT, 1L, "PIPEWAIT"));
    } else {
        // HTTP/1.1 with keep-alive (docs/egress.md, "HTTP/2").
        steps.push_back(set(easy, CURLOPT_HTTP_VERSION, static_cast<long>(CURL_HTTP_VERSION_1_1), "HTTP_VERSION"));
    }
    steps.push_back(set(easy, CURLOPT_NOSIGNAL, 1L, "NOSIGNAL"));
    steps.push_back(set(easy, CURLOPT_BUFFERSIZE, kReceiveBuffer, "BUFFERSIZE"));
    steps.push_back(set(easy, CURLOPT_CONNECTTIMEOUT_MS, connect_ms, "CONNECTTIMEOUT_MS"));
    steps.push_back(set(easy, CURLOPT_TIMEOUT_MS, static_cast<long>(total_ms), "TIMEOUT_MS"));
    steps.push_back(set(easy, CURLOPT_HTTPHEADER, request_headers_.get(), "HTTPHEADER"));
    steps.push_back(set(easy, CURLOPT_CUSTOMREQUEST, request.method.c_str(), "CUSTOMREQUEST"));
    steps.push_back(set(easy, CURLOPT_ERRORBUFFER, error_buffer_, "ERRORBUFFER"));
    steps.push_back(set(easy, CURLOPT_PRIVATE, static_cast<void*>(this), "PRIVATE"));
    steps.push_back(set(easy, CURLOPT_HEADERFUNCTION, &Transfer::on_header, "HEADERFUNCTION"));
    steps.push_back(set(easy, CURLOPT_HEADERDATA, static_cast<void*>(this), "HEADERDATA"));
    steps.push_back(set(easy, CURLOPT_WRITEFUNCTION, &Transfer::on_body, "WRITEFUNCTION"));
    steps.push_back(set(easy, CURLOPT_WRITEDATA, static_cast<void*>(this), "WRITEDATA"));
    steps.push_back(set(easy, CURLOPT_OPENSOCKETFUNCTION, &Transfer::on_open_socket, "OPENSOCKETFUNCTION"));
    steps.push_back(set(easy, CURLOPT_OPENSOCKETDATA, static_cast<void*>(this), "OPENSOCKETDATA"));
    steps.push_back(set(easy, CURLOPT_PREREQFUNCTION, &Transfer::on_prereq, "PREREQFUNCTION"));
    steps.push_back(set(easy, CURLOPT_PREREQDATA, static_cast<void*>(this), "PREREQDATA"));
    if (read_ahead_) {
        steps.push_back(set(easy, CURLOPT_SSL_CTX_FUNCTION, &tls::enable_read_ahead, "SSL_CTX_FUNCTION"));
    }
    if (!ca_bundle_.empty()) {
        curl_blob blob{ca_bundle_.data(), ca_bundle_.size(), CURL_BLOB_COPY};
        steps.push_back(set(easy, CURLOPT_CAINFO_BLOB, &blob, "CAINFO_BLOB"));
        // Instead of the system store, not besides it: libcurl keeps its built-in CA file and
        // path next to a blob unless they are cleared, so a private CA would widen trust.
        steps.push_back(set(easy, CURLOPT_CAINFO, static_cast<const char*>(nullptr), "CAINFO"));
        steps.push_back(set(easy, CURLOPT_CAPATH, static_cast<const char*>(nullptr), "CAPATH"));
    }
    std::string pins;
    for (const std::string& pin : transport.pins) {
        pins += (pins.empty() ? "" : ";") + pin;
    }
    if (!pins.empty()) {
        steps.push_back(set(easy, CURLOPT_PINNEDPUBLICKEY, pins.c_str(), "PINNEDPUBLICKEY"));
    }
    if (body_.kind() != BodySource::Kind::None) {
        steps.push_back(set(easy, CURLOPT_UPLOAD, 1L, "UPLOAD"));
        steps.push_back(set(easy, CURLOPT_READFUNCTION, &Transfer::on_read, "READFUNCTION"));
        steps.push_back(set(easy, CURLOPT_READDATA, static_cast<void*>(this), "READDATA"));
        const auto size = body_.size();
        steps.push_back(
            set(easy, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(size ? *size : -1), "INFILESIZE_LARGE"));
    } else if (method_takes_body(method.second)) {
        steps.push_back(set(easy, CURLOPT_POSTFIELDS, "", "POSTFIELDS"));
        steps.push_back(set(easy, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(0), "POSTFIELDSIZE"));
    }
    for (auto& step : steps) {
        if (!step) {
            return step.error();
        }
    }
    return policy::Ok{};
}

// ---- curl callbacks: noexcept, a stored End and an error return on any failure ------------------

size_t Transfer::on_header(char* data, size_t size, size_t count, void* self) noexcept
{
    auto* transfer = static_cast<Transfer*>(self);
    try {
        return transfer->header_line(std::string_view(data, size * count));
    } catch (...) {
        transfer->fail(End::UpstreamError, "internal error handling a response header");
        return 0;
    }
}

size_t Transfer::on_body(char* data, size_t size, size_t count, void* self) noexcept
{
    auto* transfer = static_cast<Transfer*>(self);
    try {
        return transfer->body({reinterpret_cast<const std::uint8_t*>(data), size * count});
    } catch (...) {
        transfer->fail(End::UpstreamError, "internal error relaying the response body");
        return 0;
    }
}

size_t Transfer::on_read(char* buffer, size_t size, size_t count, void* self) noexcept
{
    auto* transfer = static_cast<Transfer*>(self);
    try {
        return transfer->read_body(buffer, size * count);
    } catch (...) {
        transfer->fail(End::BodyReadFailed, "internal error reading the request body");
        return CURL_READFUNC_ABORT;
    }
}

curl_socket_t Transfer::on_open_socket(void* self, curlsocktype purpose, curl_sockaddr* address) noexcept
{
    auto* transfer = static_cast<Transfer*>(self);
    if (purpose != CURLSOCKTYPE_IPCXN || address == nullptr) {
        return CURL_SOCKET_BAD;
    }
    if (!transfer->allow_private_) {
        if (const auto what = non_public_address(&address->addr, address->addrlen)) {
            try {
                transfer->blocked_address_ = std::string(*what);
            } catch (...) {
                transfer->blocked_address_.reset();
            }
            return CURL_SOCKET_BAD;
        }
    }
    return ::socket(address->family, address->socktype | SOCK_CLOEXEC, address->protocol);
}

int Transfer::on_prereq(void* self, char* peer_ip, char* /*local_ip*/, int /*peer_port*/, int /*local_port*/) noexcept
{
    auto* transfer = static_cast<Transfer*>(self);
    // A reused connection was checked when it was opened, but perhaps for a provider that allowed
    // private addresses: check the peer again for this one.
    if (!transfer->allow_private_) {
        if (const auto what = non_public_address_text(peer_ip == nullptr ? "" : peer_ip)) {
            try {
                transfer->blocked_address_ = std::string(*what);
            } catch (...) {
                transfer->blocked_address_.reset();
            }
            transfer->fail(End::Refused, "the provider's address is not public");
            return CURL_PREREQFUNC_ABORT;
        }
    }
    transfer->connected_ = true;
    try {
        transfer->touch();
        transfer->arm_idle();
    } catch (...) {
        transfer->fail(End::UpstreamError, "internal error arming the idle clock");
        return CURL_PREREQFUNC_ABORT;
    }
    return CURL_PREREQFUNC_OK;
}

size_t Transfer::header_line(std::string_view line)
{
    if (head_sent_) {
        return line.size();  // trailers of a chunked body: not relayed
    }
    header_bytes_ += line.size();
    if (header_bytes_ > kMaxResponseHeaderBytes || head_.headers.size() >= kMaxResponseHeaders) {
        fail(End::HeadersTooLarge, "the response headers are larger than 64 KiB or more than 128");
        return 0;
    }
    touch();
    if (line.starts_with("HTTP/")) {
        head_.headers.clear();  // a new response: the last was informational (1xx)
        return line.size();
    }
    if (line == "\r\n" || line == "\n") {
        long status = 0;
        curl_easy_getinfo(easy_.get(), CURLINFO_RESPONSE_CODE, &status);
        if (status >= 200) {
            head_.status = status;
            if (!deliver_head()) {
                return 0;
            }
        }
        return line.size();
    }
    Header header;
    if (!split_header_line(line, header)) {
        return line.size();
    }
    const std::string name = lower_ascii(header.name);
    if (name == "content-encoding" && lower_ascii(header.value) != "identity") {
        fail(End::EncodedBody, "the response is content-encoded (" + header.value.substr(0, 32) +
                                   ") and cannot be inspected for the secret; it is not passed on");
        return 0;
    }
    if (keep_response_header(header.name)) {
        std::vector<std::uint8_t> redacted;
        header_redactor_->feed(redact::bytes_of(header.value), redacted);
        header_redactor_->finish(redacted);
        header.value.assign(redacted.begin(), redacted.end());
        head_.headers.push_back(std::move(header));
    }
    return line.size();
}

bool Transfer::deliver_head()
{
    int pair[2] = {-1, -1};
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0) {
        fail(End::UpstreamError, std::string("cannot create the response stream: ") + std::strerror(errno));
        return false;
    }
    UniqueFd reader(pair[0]);
    stream_.reset(pair[1]);
    // Only the daemon's end is non-blocking; the caller's end is its own open file description.
    const int flags = ::fcntl(stream_.get(), F_GETFL);
    if (flags < 0 || ::fcntl(stream_.get(), F_SETFL, flags | O_NONBLOCK) != 0 ||
        ::shutdown(stream_.get(), SHUT_RD) != 0 || ::shutdown(reader.get(), SHUT_WR) != 0) {
        fail(End::UpstreamError, std::string("cannot set up the response stream: ") + std::strerror(errno));
        return false;
    }
    head_sent_ = true;
    outcome_.head_delivered = true;
    outcome_.status = head_.status;
    if (callbacks_.on_head) {
        callbacks_.on_head(std::move(head_), std::move(reader));
    }
    return true;
}

size_t Transfer::body(std::span<const std::uint8_t> data)
{
    if (!head_sent_) {
        // A body without a blank line first cannot happen with HTTP/1.1; refuse rather than guess.
        fail(End::UpstreamError, "a response body arrived before its headers");
        return 0;
    }
    if (blocked_) {
        // Earlier output could not be written: leave this chunk with curl (it hands it over
        // again on resume) and pause receiving until the stream is writable.
        recv_paused_ = true;
        ++outcome_.receive_pauses;
        watch_stream();
        return CURL_WRITEFUNC_PAUSE;
    }
    touch();
    if (pending_from_ >= pending_.size()) {
        pending_.clear();
        pending_from_ = 0;
    }
    const std::uint64_t room = max_response_bytes_ - outcome_.response_bytes;
    const std::size_t take = static_cast<std::size_t>(std::min<std::uint64_t>(room, data.size()));
    outcome_.response_bytes += take;
    body_redactor_->feed(data.first(take), pending_);
    // Chunks that arrive in one turn of curl are written together when it returns, so a
    // reader wakes once per turn rather than once per TLS record; a full batch goes now.
    if (pending_.size() - pending_from_ >= kBatchBytes) {
        if (!flush()) {
            return 0;
        }
    } else if (!flush_queued_ && pending_from_ < pending_.size()) {
        flush_queued_ = true;
        engine_.flush_later(id_);
    }
    if (take < data.size()) {
        fail(End::ResponseTooLarge, "the response is larger than this provider's max_response_bytes (" +
                                        std::to_string(max_response_bytes_) + "); cut there");
        return 0;
    }
    return data.size();
}

size_t Transfer::read_body(char* buffer, size_t capacity)
{
    std::size_t got = 0;
    std::string error;
    switch (body_.read(buffer, capacity, got, error)) {
    case BodySource::Status::Data:
        touch();
        outcome_.request_bytes = body_.sent();
        return got;
    case BodySource::Status::End:
        return 0;
    case BodySource::Status::WouldBlock: {
        send_paused_ = true;
        if (!body_watch_) {
            sd_event_source* source = nullptr;
            if (sd_event_add_io(engine_.event(), &source, body_.fd(), EPOLLIN, &Transfer::on_body_readable, this) < 0) {
                fail(End::BodyReadFailed, "cannot watch the body pipe");
                return CURL_READFUNC_ABORT;
            }
            body_watch_.reset(source);
        }
        (void)sd_event_source_set_enabled(body_watch_.get(), SD_EVENT_ONESHOT);
        return CURL_READFUNC_PAUSE;
    }
    case BodySource::Status::TooLarge:
        fail(End::RequestTooLarge, error);
        return CURL_READFUNC_ABORT;
    case BodySource::Status::Failed:
        fail(End::BodyReadFailed, error);
        return CURL_READFUNC_ABORT;
    }
    return CURL_READFUNC_ABORT;
}

// ---- the response stream, the body pipe and the idle clock (sd-event callbacks) -----------------

bool Transfer::flush()
{
    while (pending_from_ < pending_.size()) {
        const ssize_t n = ::send(stream_.get(), pending_.data() + pending_from_, pending_.size() - pending_from_,
                                 MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) {
            pending_from_ += static_cast<std::size_t>(n);
            outcome_.delivered_bytes += static_cast<std::uint64_t>(n);
            continue;
        }
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            blocked_ = true;
            watch_stream();
            return true;
        }
        fail(End::ReaderGone, "the caller closed the response stream");
        return false;
    }
    blocked_ = false;
    pending_.clear();
    pending_from_ = 0;
    return true;
}

void Transfer::flush_deferred() noexcept
{
    flush_queued_ = false;
    if (stage_ != Stage::Running || blocked_) {
        return;  // the end or the writable stream writes it
    }
    try {
        if (!flush()) {
            cut(End::ReaderGone, "the caller closed the response stream");
        }
    } catch (...) {
        cut_quietly(End::UpstreamError, "internal error relaying the response");
    }
}

std::optional<curl_socket_t> Transfer::buffered_socket() const noexcept
{
    if (!read_ahead_ || stage_ != Stage::Running || recv_paused_ || socket_ == CURL_SOCKET_BAD ||
        !tls::has_buffered_tls(easy_.get())) {
        return std::nullopt;
    }
    return socket_;
}

void Transfer::watch_stream()
{
    if (!stream_watch_) {
        sd_event_source* source = nullptr;
        if (sd_event_add_io(engine_.event(), &source, stream_.get(), EPOLLOUT, &Transfer::on_stream_writable, this) <
            0) {
            throw std::runtime_error("cannot watch the response stream");
        }
        stream_watch_.reset(source);
    }
    (void)sd_event_source_set_enabled(stream_watch_.get(), SD_EVENT_ONESHOT);
}

int Transfer::on_stream_writable(sd_event_source* /*source*/, int /*fd*/, uint32_t /*events*/, void* self) noexcept
{
    auto* transfer = static_cast<Transfer*>(self);
    try {
        transfer->stream_writable();
    } catch (...) {
        transfer->cut_quietly(End::UpstreamError, "internal error relaying the response");
    }
    return 0;
}

void Transfer::stream_writable()
{
    if (stage_ == Stage::Over) {
        return;
    }
    touch();
    if (!flush()) {
        cut(End::ReaderGone, "the caller closed the response stream");
        return;
    }
    if (pending_from_ < pending_.size()) {
        return;  // flush() re-armed the watch
    }
    if (stage_ == Stage::Draining) {
        close_stream_and_report();
        return;
    }
    if (recv_paused_) {
        recv_paused_ = false;
        unpause();
    }
}

int Transfer::on_body_readable(sd_event_source* /*source*/, int /*fd*/, uint32_t /*events*/, void* self) noexcept
{
    auto* transfer = static_cast<Transfer*>(self);
    try {
        transfer->body_readable();
    } catch (...) {
        transfer->cut_quietly(End::BodyReadFailed, "internal error reading the request body");
    }
    return 0;
}

void Transfer::body_readable()
{
    if (stage_ != Stage::Running || !send_paused_) {
        return;
    }
    send_paused_ = false;
    unpause();
}

void Transfer::unpause()
{
    // Resume only the direction that is ready; curl may call the body callback from in here.
    const int mask = (recv_paused_ ? CURLPAUSE_RECV : 0) | (send_paused_ ? CURLPAUSE_SEND : 0);
    const CURLcode code = curl_easy_pause(easy_.get(), mask);
    if (code != CURLE_OK) {
        cut(End::UpstreamError, std::string("resuming the transfer: ") + curl_easy_strerror(code));
        return;
    }
    // curl may have handed the held chunk over from in there, outside a turn of the engine.
    if (flush_queued_) {
        flush_deferred();
    }
}

void Transfer::touch() noexcept
{
    last_progress_ = now_usec(engine_.event());
}

void Transfer::arm_idle()
{
    if (idle_timer_) {
        return;
    }
    sd_event_source* source = nullptr;
    const int r = sd_event_add_time(engine_.event(), &source, CLOCK_MONOTONIC, last_progress_ + idle_usec_, 100'000,
                                    &Transfer::on_idle_check, this);
    if (r < 0) {
        throw std::runtime_error("cannot arm the idle clock");
    }
    idle_timer_.reset(source);
}

int Transfer::on_idle_check(sd_event_source* /*source*/, uint64_t usec, void* self) noexcept
{
    auto* transfer = static_cast<Transfer*>(self);
    try {
        transfer->idle_check(usec);
    } catch (...) {
        transfer->cut_quietly(End::UpstreamError, "internal error in the idle clock");
    }
    return 0;
}

void Transfer::idle_check(std::uint64_t now)
{
    if (stage_ == Stage::Over) {
        return;
    }
    // One timer per exchange, re-armed at the last progress plus the idle limit, so bytes flowing
    // cost no timer update.
    const std::uint64_t due = last_progress_ + idle_usec_;
    if (now < due) {
        (void)sd_event_source_set_time(idle_timer_.get(), due);
        (void)sd_event_source_set_enabled(idle_timer_.get(), SD_EVENT_ONESHOT);
        return;
    }
    const bool reader_stalled = pending_from_ < pending_.size();
    cut(End::IdleTimeout, reader_stalled ? "the caller read nothing for the provider's idle timeout"
                                         : "the provider sent nothing for its idle timeout");
}

// ---- the end ------------------------------------------------------------------------------------

void Transfer::fail(End end, std::string reason)
{
    if (!failure_) {
        failure_ = end;
        outcome_.reason = std::move(reason);
    }
}

End Transfer::classify(CURLcode result) const
{
    if (failure_) {
        return *failure_;
    }
    switch (result) {
    case CURLE_OK:
        return End::Complete;
    case CURLE_OPERATION_TIMEDOUT:
        return connected_ ? End::TotalTimeout : End::ConnectTimeout;
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
        return End::PinMismatch;
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
        return End::TlsFailed;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_CONNECT:
        return blocked_address_ ? End::Refused : End::ConnectFailed;
    default:
        return End::UpstreamError;
    }
}

void Transfer::curl_done(CURLcode result)
{
    if (stage_ != Stage::Running) {
        return;
    }
    outcome_.end = classify(result);
    if (outcome_.reason.empty()) {
        if (outcome_.end == End::Refused && blocked_address_) {
            outcome_.reason = "the provider's address is " + *blocked_address_ +
                              " and the provider does not set allow_private_address";
        } else if (result != CURLE_OK) {
            outcome_.reason = curl_easy_strerror(result);
            if (error_buffer_[0] != '\0') {
                outcome_.reason += std::string(": ") + error_buffer_;
            }
        }
    }
    long connects = 0;
    curl_easy_getinfo(easy_.get(), CURLINFO_NUM_CONNECTS, &connects);
    outcome_.new_connections = static_cast<std::uint64_t>(std::max(0L, connects));
    long version = 0;
    curl_easy_getinfo(easy_.get(), CURLINFO_HTTP_VERSION, &version);
    outcome_.http2 = version == CURL_HTTP_VERSION_2_0;
    curl_multi_remove_handle(engine_.multi(), easy_.get());
    body_watch_.reset();
    if (!head_sent_) {
        close_stream_and_report();
        return;
    }
    if (outcome_.end == End::Complete) {
        body_redactor_->finish(pending_);
    }
    // On a cut stream the held-back bytes may be the start of the secret: they are dropped.
    stage_ = Stage::Draining;
    if (!flush()) {
        outcome_.end = End::ReaderGone;
        close_stream_and_report();
        return;
    }
    if (pending_from_ >= pending_.size()) {
        close_stream_and_report();
    } else {
        arm_idle();  // a reader that stops reading is cut after the idle limit
    }
}

void Transfer::cut(End end, std::string reason)
{
    if (stage_ == Stage::Over) {
        return;
    }
    if (stage_ == Stage::Running) {
        fail(end, std::move(reason));
        curl_done(CURLE_ABORTED_BY_CALLBACK);
        if (stage_ == Stage::Over) {
            return;
        }
    } else {
        outcome_.end = end;
        outcome_.reason = std::move(reason);
    }
    // Whatever still waits is not sent: the caller learns the stream was cut from on_end.
    pending_.clear();
    pending_from_ = 0;
    close_stream_and_report();
}

void Transfer::cut_quietly(End end, const char* reason) noexcept
{
    try {
        cut(end, reason);
    } catch (...) {
        // Nothing more can be done from a C callback; the engine's destructor frees the handle.
        log::error("egress: an exchange could not be cut cleanly");
    }
}

void Transfer::close_stream_and_report()
{
    if (stage_ == Stage::Over) {
        return;
    }
    stage_ = Stage::Over;
    stream_watch_.reset();
    idle_timer_.reset();
    body_watch_.reset();
    outcome_.redactions = body_redactor_->replacements() + header_redactor_->replacements();
    // The end is reported before the stream closes, so a caller that reads to EOF finds it
    // recorded (RequestOutcome) and, by then usually, its RequestEnded signal sent.
    if (callbacks_.on_end) {
        try {
            callbacks_.on_end(outcome_);
        } catch (const std::exception& e) {
            log::error(std::string("egress: on_end failed: ") + e.what());
        }
    }
    stream_.reset();
    engine_.finished(id_);
}

}  // namespace codexvault::egress
