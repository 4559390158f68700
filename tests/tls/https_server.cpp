#include "tests/tls/https_server.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <memory>
#include <vector>

#include "tests/tls/encodings.hpp"

namespace egress_test {

namespace {

// A body produced a few bytes per call, so that every echoed form crosses chunk boundaries.
struct Trickle {
    std::string text;
    std::size_t step = 7;
    std::size_t at = 0;
};

ssize_t trickle_reader(void* cls, uint64_t /*pos*/, char* buffer, size_t max)
{
    auto* t = static_cast<Trickle*>(cls);
    if (t->at >= t->text.size()) {
        return MHD_CONTENT_READER_END_OF_STREAM;
    }
    const std::size_t n = std::min({t->step, max, t->text.size() - t->at});
    std::memcpy(buffer, t->text.data() + t->at, n);
    t->at += n;
    return static_cast<ssize_t>(n);
}

void free_trickle(void* cls)
{
    delete static_cast<Trickle*>(cls);
}

struct Gated {
    TestServer* server;
    int part = 0;
};

ssize_t gated_reader(void* cls, uint64_t /*pos*/, char* buffer, size_t max)
{
    auto* g = static_cast<Gated*>(cls);
    std::string piece;
    if (g->part == 0) {
        piece = "first-part\n";
    } else if (g->part == 1) {
        piece = g->server->wait_gate() ? "second-part\n" : "the gate was never opened\n";
    } else {
        return MHD_CONTENT_READER_END_OF_STREAM;
    }
    ++g->part;
    const std::size_t n = std::min(piece.size(), max);
    std::memcpy(buffer, piece.data(), n);
    return static_cast<ssize_t>(n);
}

void free_gated(void* cls)
{
    delete static_cast<Gated*>(cls);
}

ssize_t hang_reader(void* cls, uint64_t pos, char* buffer, size_t max)
{
    auto* server = static_cast<TestServer*>(cls);
    if (pos == 0 && max > 0) {
        buffer[0] = '.';
        return 1;
    }
    server->wait_stop();
    return MHD_CONTENT_READER_END_WITH_ERROR;
}

// Server-sent events, one per call, in order: "data: 0" to "data: 49".
struct Events {
    int next = 0;
};

ssize_t events_reader(void* cls, uint64_t /*pos*/, char* buffer, size_t max)
{
    auto* e = static_cast<Events*>(cls);
    if (e->next >= kSseEvents) {
        return MHD_CONTENT_READER_END_OF_STREAM;
    }
    const std::string event = "data: " + std::to_string(e->next++) + "\n\n";
    const std::size_t n = std::min(event.size(), max);
    std::memcpy(buffer, event.data(), n);
    return static_cast<ssize_t>(n);
}

void free_events(void* cls)
{
    delete static_cast<Events*>(cls);
}

// kSize bytes of a repeating pattern, streamed in 16 KiB pieces.
template <uint64_t kSize>
ssize_t pattern_reader(void* /*cls*/, uint64_t pos, char* buffer, size_t max)
{
    if (pos >= kSize) {
        return MHD_CONTENT_READER_END_OF_STREAM;
    }
    const std::size_t n = static_cast<std::size_t>(std::min<uint64_t>({kSize - pos, max, 16384}));
    for (std::size_t i = 0; i < n; ++i) {
        buffer[i] = static_cast<char>('a' + (pos + i) % 26);
    }
    return static_cast<ssize_t>(n);
}

MHD_Result collect_header(void* cls, MHD_ValueKind /*kind*/, const char* key, const char* value)
{
    auto* headers = static_cast<std::map<std::string, std::string>*>(cls);
    std::string name(key);
    std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
    (*headers)[name] = value == nullptr ? "" : value;
    return MHD_YES;
}

MHD_Result on_request(void* cls, MHD_Connection* connection, const char* url, const char* method,
                      const char* /*version*/, const char* upload, size_t* upload_size, void** state)
{
    return static_cast<TestServer*>(cls)->handle(connection, url, method, upload, upload_size, state);
}

void on_connection(void* cls, MHD_Connection* /*connection*/, void** /*socket_context*/,
                   MHD_ConnectionNotificationCode code)
{
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        ++static_cast<TestServer*>(cls)->connections_;
    }
}

MHD_Result queue(MHD_Connection* connection, unsigned status, MHD_Response* response)
{
    const MHD_Result result = MHD_queue_response(connection, status, response);
    MHD_destroy_response(response);
    return result;
}

MHD_Response* text(const std::string& body)
{
    return MHD_create_response_from_buffer(body.size(), const_cast<char*>(body.data()), MHD_RESPMEM_MUST_COPY);
}

}  // namespace

TestServer::TestServer(const std::string& cert_pem, const std::string& key_pem, std::string credential_header,
                       std::string credential_prefix)
    : credential_header_(std::move(credential_header)),
      credential_prefix_(std::move(credential_prefix)),
      cert_(cert_pem),
      key_(key_pem)
{
    if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
        return;
    }
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = 0;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    daemon_ = MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_TLS, 0,
                               nullptr, nullptr, &on_request, this, MHD_OPTION_SOCK_ADDR, &address,
                               MHD_OPTION_HTTPS_MEM_KEY, key_.c_str(), MHD_OPTION_HTTPS_MEM_CERT, cert_.c_str(),
                               MHD_OPTION_NOTIFY_CONNECTION, &on_connection, this, MHD_OPTION_END);
    if (daemon_ != nullptr) {
        const MHD_DaemonInfo* info = MHD_get_daemon_info(daemon_, MHD_DAEMON_INFO_BIND_PORT);
        port_ = info == nullptr ? 0 : info->port;
    }
}

TestServer::~TestServer()
{
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
        gate_open_ = true;
    }
    changed_.notify_all();
    if (daemon_ != nullptr) {
        MHD_stop_daemon(daemon_);
    }
}

std::map<std::string, std::string> TestServer::last_headers()
{
    std::lock_guard lock(mutex_);
    return last_headers_;
}

std::uint64_t TestServer::last_body_bytes()
{
    std::lock_guard lock(mutex_);
    return last_body_bytes_;
}

void TestServer::open_gate()
{
    {
        std::lock_guard lock(mutex_);
        gate_open_ = true;
    }
    changed_.notify_all();
}

bool TestServer::wait_gate()
{
    // A bound so a broken engine fails the test instead of hanging it; not a timing assertion.
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, std::chrono::seconds(20), [this] { return gate_open_; }) && !stopping_;
}

bool TestServer::wait_stop()
{
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, std::chrono::seconds(60), [this] { return stopping_; });
}

MHD_Result TestServer::handle(MHD_Connection* connection, const std::string& url, const std::string& /*method*/,
                              const char* /*upload*/, size_t* upload_size, void** state)
{
    // First call: headers only. Then the body arrives in pieces; the last call has none.
    if (*state == nullptr) {
        auto* counter = new std::uint64_t(0);
        *state = counter;
        std::map<std::string, std::string> headers;
        MHD_get_connection_values(connection, MHD_HEADER_KIND, &collect_header, &headers);
        std::lock_guard lock(mutex_);
        last_headers_ = std::move(headers);
        return MHD_YES;
    }
    std::unique_ptr<std::uint64_t> counter(static_cast<std::uint64_t*>(*state));
    if (*upload_size != 0) {
        *counter += *upload_size;
        *upload_size = 0;
        counter.release();
        return MHD_YES;
    }
    *state = nullptr;
    ++requests_;
    std::string credential;
    {
        std::lock_guard lock(mutex_);
        last_body_bytes_ = *counter;
        const auto found = last_headers_.find(credential_header_);
        if (found != last_headers_.end() && found->second.starts_with(credential_prefix_)) {
            credential = found->second.substr(credential_prefix_.size());
        }
    }
    if (url == "/v1/echo") {
        auto* trickle = new Trickle;
        for (const std::string& form : echo_forms(credential)) {
            trickle->text += "{\"echo\":\"" + form + "\"}\n";
        }
        MHD_Response* response =
            MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 64, &trickle_reader, trickle, &free_trickle);
        MHD_add_response_header(response, "X-Echo", credential.c_str());
        MHD_add_response_header(response, "Set-Cookie", "session=abc");
        MHD_add_response_header(response, "Content-Type", "application/json");
        return queue(connection, MHD_HTTP_OK, response);
    }
    if (url == "/v1/stream") {
        MHD_Response* response =
            MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 64, &gated_reader, new Gated{this}, &free_gated);
        return queue(connection, MHD_HTTP_OK, response);
    }
    if (url == "/v1/hang") {
        MHD_Response* response = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 64, &hang_reader, this, nullptr);
        return queue(connection, MHD_HTTP_OK, response);
    }
    if (url == "/v1/big") {
        return queue(connection, MHD_HTTP_OK, text(std::string(200'000, 'b')));
    }
    if (url == "/v1/redirect") {
        MHD_Response* response = text("moved\n");
        MHD_add_response_header(response, "Location", "https://elsewhere.invalid/steal");
        return queue(connection, MHD_HTTP_FOUND, response);
    }
    if (url == "/v1/gzip") {
        MHD_Response* response = text("not really gzip");
        MHD_add_response_header(response, "Content-Encoding", "gzip");
        return queue(connection, MHD_HTTP_OK, response);
    }
    if (url == "/v1/sse") {
        MHD_Response* response =
            MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 256, &events_reader, new Events, &free_events);
        MHD_add_response_header(response, "Content-Type", "text/event-stream");
        return queue(connection, MHD_HTTP_OK, response);
    }
    if (url == "/v1/large") {
        MHD_Response* response =
            MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16384, &pattern_reader<kLargeBytes>, nullptr, nullptr);
        return queue(connection, MHD_HTTP_OK, response);
    }
    if (url == "/v1/mebibyte") {
        MHD_Response* response =
            MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16384, &pattern_reader<1024 * 1024>, nullptr, nullptr);
        return queue(connection, MHD_HTTP_OK, response);
    }
    if (url == "/v1/missing") {
        return queue(connection, MHD_HTTP_NOT_FOUND, text("no such thing\n"));
    }
    if (url == "/v1/upload") {
        return queue(connection, MHD_HTTP_OK, text("received " + std::to_string(*counter) + "\n"));
    }
    return queue(connection, MHD_HTTP_OK, text("ok\n"));
}

}  // namespace egress_test
