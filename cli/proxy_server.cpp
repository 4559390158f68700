#include "cli/proxy_server.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <stdexcept>

#include "cli/proxy_upstream.hpp"
#include "lib/fileio/unique_fd.hpp"

namespace codexvault::cli::proxy {

struct ProxyServer::Impl {
    ProxyConfig config;
    UniqueFd listener;
    std::uint16_t port = 0;
    MHD_Daemon* daemon = nullptr;
    std::atomic<bool> stopping{false};
    std::atomic<std::uint64_t> refused{0};
    std::atomic<std::uint64_t> requests{0};
};

namespace {

constexpr std::size_t kStreamBlock = 64 * 1024;
constexpr int kStopCheckMillis = 250;

[[noreturn]] void fail(const std::string& what, int error)
{
    throw std::runtime_error(what + ": " + std::strerror(error));
}

// One bus connection per connection thread: sd-bus objects are not thread-safe, and with a
// thread per client connection this is also one bus connection per keep-alive client.
thread_local std::unique_ptr<UpstreamBus> t_bus;

UpstreamBus& thread_bus(const std::string& address)
{
    if (!t_bus) {
        t_bus = std::make_unique<UpstreamBus>(address);
    }
    return *t_bus;
}

// What one HTTP request accumulates before its Request call.
struct Exchange {
    ProxyServer::Impl* server = nullptr;
    std::string target;  // raw request target, query included
    bool checked = false;
    Route route;
    std::string method;
    HeaderList headers;  // cli/request_call.hpp
    UniqueFd body;
    std::uint64_t body_bytes = 0;
    bool too_large = false;  // the rest of the body is read and dropped, then 413
};

// A response body in flight: the daemon's stream, read to EOF, then judged by its end (RequestEnded or
// RequestOutcome).
struct Stream {
    ProxyServer::Impl* server = nullptr;
    UniqueFd fd;
    std::uint64_t request_id = 0;
    std::string vault;  // the bus name that answered the Request
    int client = -1;    // the client's socket (MHD owns it), watched for a hang-up
};

MHD_Result queue_error(MHD_Connection* connection, unsigned status, std::string_view type, std::string_view message,
                       bool authenticate = false)
{
    const std::string body = error_body(type, message);
    MHD_Response* response =
        MHD_create_response_from_buffer(body.size(), const_cast<char*>(body.data()), MHD_RESPMEM_MUST_COPY);
    if (response == nullptr) {
        return MHD_NO;
    }
    MHD_add_response_header(response, "Content-Type", "application/json");
    if (authenticate) {
        MHD_add_response_header(response, "WWW-Authenticate", "Bearer realm=\"vaultctl proxy\"");
    }
    const MHD_Result queued = MHD_queue_response(connection, status, response);
    MHD_destroy_response(response);
    return queued;
}

struct HeaderScan {
    std::string_view expected;
    bool any_credential = false;
    bool credentials_ok = true;
    std::vector<std::string> connection;
    HeaderList all;
};

MHD_Result scan_header(void* cls, MHD_ValueKind /*kind*/, const char* key, const char* value) noexcept
{
    auto* scan = static_cast<HeaderScan*>(cls);
    const std::string_view name(key != nullptr ? key : "");
    const std::string_view text(value != nullptr ? value : "");
    try {
        // Every credential header must carry the token: a second, different one is refused.
        if (strcasecmp(key, "authorization") == 0) {
            scan->any_credential = true;
            scan->credentials_ok = token_accepted({text, std::nullopt}, scan->expected) && scan->credentials_ok;
        } else if (is_key_header(name)) {
            scan->any_credential = true;
            scan->credentials_ok = token_accepted({std::nullopt, text}, scan->expected) && scan->credentials_ok;
        } else if (strcasecmp(key, "connection") == 0) {
            for (auto& token : connection_tokens(text)) {
                scan->connection.push_back(std::move(token));
            }
        }
        scan->all.emplace_back(name, text);
    } catch (...) {
        scan->credentials_ok = false;
        return MHD_NO;
    }
    return MHD_YES;
}

// First call for a request: token, method and route, before anything else happens.
MHD_Result check_request(MHD_Connection* connection, Exchange& exchange, const char* method)
{
    ProxyServer::Impl& server = *exchange.server;
    HeaderScan scan;
    scan.expected = server.config.token;
    MHD_get_connection_values(connection, MHD_HEADER_KIND, scan_header, &scan);
    if (!scan.any_credential || !scan.credentials_ok) {
        ++server.refused;
        return queue_error(connection, 401, "authentication_error",
                           "missing or wrong proxy token (Authorization: Bearer TOKEN, or x-api-key, "
                           "x-goog-api-key or api-key: TOKEN)",
                           true);
    }
    if (!is_supported_method(method)) {
        ++server.refused;
        return queue_error(connection, 405, "invalid_request_error", "method not supported by the vault proxy");
    }
    RouteError error;
    auto route = route_request(exchange.target, server.config.providers, error);
    if (!route) {
        ++server.refused;
        return queue_error(connection, error.status, "invalid_request_error", error.message);
    }
    // A declared length over the limit is refused before the body is read.
    const char* length = MHD_lookup_connection_value(connection, MHD_HEADER_KIND, "Content-Length");
    if (length != nullptr && std::strtoull(length, nullptr, 10) > server.config.max_request_bytes) {
        ++server.refused;
        return queue_error(connection, 413, "invalid_request_error",
                           "request body larger than the proxy's limit (--max-request-bytes)");
    }
    exchange.route = std::move(*route);
    exchange.method = method;
    for (auto& [name, value] : scan.all) {
        if (forward_request_header(name, scan.connection)) {
            exchange.headers.emplace_back(std::move(name), std::move(value));
        }
    }
    exchange.checked = true;
    return MHD_YES;
}

bool spool_body(Exchange& exchange, const char* data, std::size_t size)
{
    if (!exchange.body) {
        // Sealable, so the body the daemon hashes for an approval cannot change under it.
        exchange.body = UniqueFd(::memfd_create("vaultctl-proxy-body", MFD_CLOEXEC | MFD_ALLOW_SEALING));
        if (!exchange.body) {
            fail("memfd_create", errno);
        }
    }
    while (size > 0) {
        const ssize_t n = ::write(exchange.body.get(), data, size);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            fail("spool request body", errno);
        }
        data += n;
        size -= static_cast<std::size_t>(n);
        exchange.body_bytes += static_cast<std::uint64_t>(n);
    }
    return true;
}

ssize_t read_stream(void* cls, std::uint64_t /*pos*/, char* buf, std::size_t max) noexcept
{
    auto* stream = static_cast<Stream*>(cls);
    try {
        for (;;) {
            if (stream->server->stopping.load()) {
                return MHD_CONTENT_READER_END_WITH_ERROR;
            }
            // A client that went away while the upstream is silent (a model thinking for
            // minutes) ends the stream now: closing it cuts the upstream exchange in the daemon.
            struct pollfd pfd[2] = {{stream->fd.get(), POLLIN, 0}, {stream->client, POLLRDHUP, 0}};
            const int ready = ::poll(pfd, stream->client >= 0 ? 2 : 1, kStopCheckMillis);
            if (ready < 0 && errno != EINTR) {
                return MHD_CONTENT_READER_END_WITH_ERROR;
            }
            if (ready <= 0) {
                continue;
            }
            if ((pfd[1].revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0) {
                return MHD_CONTENT_READER_END_WITH_ERROR;
            }
            if (pfd[0].revents == 0) {
                continue;
            }
            const ssize_t n = ::read(stream->fd.get(), buf, max);
            if (n > 0) {
                return n;
            }
            if (n < 0 && (errno == EINTR || errno == EAGAIN)) {
                continue;
            }
            if (n < 0) {
                return MHD_CONTENT_READER_END_WITH_ERROR;
            }
            // EOF: whole only if the daemon says so. Anything else ends without the final chunk,
            // so the client sees a cut body, never a complete one.
            const ProviderOutcome outcome =
                thread_bus(stream->server->config.bus_address).outcome(stream->request_id, stream->vault);
            if (outcome.complete()) {
                return MHD_CONTENT_READER_END_OF_STREAM;
            }
            std::fprintf(stderr, "vaultctl proxy: request %llu cut after %llu bytes: %s\n",
                         static_cast<unsigned long long>(stream->request_id),
                         static_cast<unsigned long long>(outcome.bytes_delivered), outcome.reason.c_str());
            return MHD_CONTENT_READER_END_WITH_ERROR;
        }
    } catch (const std::exception& e) {
        t_bus.reset();
        std::fprintf(stderr, "vaultctl proxy: request %llu: %s\n", static_cast<unsigned long long>(stream->request_id),
                     e.what());
        return MHD_CONTENT_READER_END_WITH_ERROR;
    } catch (...) {
        return MHD_CONTENT_READER_END_WITH_ERROR;
    }
}

void free_stream(void* cls) noexcept
{
    delete static_cast<Stream*>(cls);
}

MHD_Result forward(MHD_Connection* connection, Exchange& exchange)
{
    ProxyServer::Impl& server = *exchange.server;
    ProviderRequest request;
    request.provider = exchange.route.provider;
    request.method = exchange.method;
    request.path_and_query = exchange.route.path_and_query;
    request.headers = std::move(exchange.headers);
    if (exchange.body) {
        // Sealed, so the daemon uses it as it is: the bytes it hashes for an approval are the
        // bytes it sends.
        if (::fcntl(exchange.body.get(), F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) != 0) {
            fail("seal request body", errno);
        }
        if (::lseek(exchange.body.get(), 0, SEEK_SET) != 0) {
            fail("rewind request body", errno);
        }
        request.body = std::move(exchange.body);
    }
    ++server.requests;
    ProviderResponse response;
    const MHD_ConnectionInfo* client_info = MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CONNECTION_FD);
    const int client = client_info != nullptr ? client_info->connect_fd : -1;
    try {
        response = thread_bus(server.config.bus_address).request(request, server.config.header_timeout_usec, client);
    } catch (const ClientGone&) {
        // Dropping the bus connection cancels the Request in the daemon (and its upstream
        // exchange); nobody is left to answer.
        t_bus.reset();
        return MHD_NO;
    } catch (const CallError& e) {
        if (!e.code()) {
            t_bus.reset();  // a broken connection is not reused
        }
        return queue_error(connection, status_for_vault_error(e.code()), error_type_for(e.code()), e.what());
    }
    MHD_Response* reply = nullptr;
    const bool no_body = response.status == 204 || response.status == 304 || response.status < 200;
    if (no_body) {
        reply = MHD_create_response_from_buffer(0, nullptr, MHD_RESPMEM_PERSISTENT);
    } else {
        auto stream = std::make_unique<Stream>();
        stream->server = &server;
        stream->fd = std::move(response.stream);
        stream->request_id = response.request_id;
        stream->vault = response.vault;
        stream->client = client;
        // Unknown size: chunked, so a stream cut short lacks its final chunk.
        reply =
            MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, kStreamBlock, read_stream, stream.get(), free_stream);
        if (reply != nullptr) {
            (void)stream.release();
        }
    }
    if (reply == nullptr) {
        return MHD_NO;
    }
    for (const auto& [name, value] : response.headers) {
        if (forward_response_header(name)) {
            (void)MHD_add_response_header(reply, name.c_str(), value.c_str());
        }
    }
    const MHD_Result queued = MHD_queue_response(connection, response.status, reply);
    MHD_destroy_response(reply);
    return queued;
}

MHD_Result handle(void* cls, MHD_Connection* connection, const char* /*url*/, const char* method,
                  const char* /*version*/, const char* upload_data, std::size_t* upload_data_size,
                  void** con_cls) noexcept
{
    auto* exchange = static_cast<Exchange*>(*con_cls);
    if (exchange == nullptr) {
        return MHD_NO;
    }
    (void)cls;
    try {
        if (!exchange->checked) {
            // Headers only; a refusal is queued before MHD sends "100 Continue" or reads the body.
            return check_request(connection, *exchange, method);
        }
        if (*upload_data_size > 0) {
            const std::size_t size = *upload_data_size;
            *upload_data_size = 0;
            // MHD cannot answer in the middle of an upload: a chunked body over the limit is
            // read and dropped (memory stays bounded), and answered 413 when it ends.
            if (exchange->too_large || exchange->body_bytes + size > exchange->server->config.max_request_bytes) {
                exchange->too_large = true;
                exchange->body.reset();
                return MHD_YES;
            }
            spool_body(*exchange, upload_data, size);
            return MHD_YES;
        }
        if (exchange->too_large) {
            ++exchange->server->refused;
            return queue_error(connection, 413, "invalid_request_error",
                               "request body larger than the proxy's limit (--max-request-bytes)");
        }
        return forward(connection, *exchange);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "vaultctl proxy: %s\n", e.what());
        return queue_error(connection, 500, "api_error", "the vault proxy failed; see its log");
    } catch (...) {
        return MHD_NO;
    }
}

void* start_exchange(void* cls, const char* uri, MHD_Connection* /*connection*/) noexcept
{
    try {
        auto* exchange = new Exchange();
        exchange->server = static_cast<ProxyServer::Impl*>(cls);
        exchange->target = uri != nullptr ? uri : "";
        return exchange;
    } catch (...) {
        return nullptr;
    }
}

void end_exchange(void* /*cls*/, MHD_Connection* /*connection*/, void** con_cls,
                  MHD_RequestTerminationCode /*code*/) noexcept
{
    delete static_cast<Exchange*>(*con_cls);
    *con_cls = nullptr;
}

// The raw target is routed as sent: MHD's percent-decoding of the path is turned off, so what
// the daemon authorizes is byte for byte what goes upstream.
std::size_t keep_escaped(void* /*cls*/, MHD_Connection* /*connection*/, char* s) noexcept
{
    return std::strlen(s);
}

UniqueFd bind_listener(const ListenAddress& address)
{
    if (address.kind == ListenAddress::Kind::Unix) {
        UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
        if (!fd) {
            fail("socket", errno);
        }
        sockaddr_un sa{};
        sa.sun_family = AF_UNIX;
        std::memcpy(sa.sun_path, address.path.c_str(), address.path.size() + 1);
        if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
            fail("bind " + address.path, errno);
        }
        // The token is the lock; the socket's mode keeps other users from even knocking.
        if (::chmod(address.path.c_str(), 0600) != 0) {
            fail("chmod " + address.path, errno);
        }
        if (::listen(fd.get(), 128) != 0) {
            fail("listen", errno);
        }
        return fd;
    }
    const bool v6 = address.host == "::1";
    UniqueFd fd(::socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd) {
        fail("socket", errno);
    }
    int r = 0;
    if (v6) {
        sockaddr_in6 sa{};
        sa.sin6_family = AF_INET6;
        sa.sin6_port = htons(address.port);
        sa.sin6_addr = in6addr_loopback;
        r = ::bind(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa);
    } else {
        sockaddr_in sa{};
        sa.sin_family = AF_INET;
        sa.sin_port = htons(address.port);
        if (::inet_pton(AF_INET, address.host.c_str(), &sa.sin_addr) != 1) {
            throw std::runtime_error("not an IPv4 address: " + address.host);
        }
        r = ::bind(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa);
    }
    if (r != 0) {
        fail("bind " + address.host + ":" + std::to_string(address.port), errno);
    }
    if (::listen(fd.get(), 128) != 0) {
        fail("listen", errno);
    }
    return fd;
}

std::uint16_t bound_port(int fd)
{
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) {
        fail("getsockname", errno);
    }
    if (ss.ss_family == AF_INET) {
        return ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
    }
    if (ss.ss_family == AF_INET6) {
        return ntohs(reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port);
    }
    return 0;
}

}  // namespace

ProxyServer::ProxyServer(ProxyConfig config) : impl_(std::make_unique<Impl>())
{
    if (!is_acceptable_token(config.token)) {
        throw std::runtime_error("the proxy token must be 32 to 256 visible ASCII characters");
    }
    impl_->config = std::move(config);
    impl_->listener = bind_listener(impl_->config.listen);
    impl_->port = bound_port(impl_->listener.get());
    const unsigned flags = MHD_USE_AUTO | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_ITC;
    impl_->daemon = MHD_start_daemon(flags, 0, nullptr, nullptr, handle, impl_.get(), MHD_OPTION_LISTEN_SOCKET,
                                     impl_->listener.get(), MHD_OPTION_CONNECTION_LIMIT, impl_->config.max_connections,
                                     MHD_OPTION_CONNECTION_MEMORY_LIMIT, static_cast<std::size_t>(128 * 1024),
                                     MHD_OPTION_CONNECTION_TIMEOUT, 600U, MHD_OPTION_URI_LOG_CALLBACK, start_exchange,
                                     impl_.get(), MHD_OPTION_NOTIFY_COMPLETED, end_exchange, impl_.get(),
                                     MHD_OPTION_UNESCAPE_CALLBACK, keep_escaped, nullptr, MHD_OPTION_END);
    if (impl_->daemon == nullptr) {
        throw std::runtime_error("cannot start the HTTP server (libmicrohttpd)");
    }
    // MHD closes the listening socket when it stops.
    (void)impl_->listener.release();
}

ProxyServer::~ProxyServer()
{
    impl_->stopping = true;
    if (impl_->daemon != nullptr) {
        MHD_stop_daemon(impl_->daemon);
    }
}

std::uint16_t ProxyServer::port() const noexcept
{
    return impl_->port;
}

std::uint64_t ProxyServer::refused_before_bus() const noexcept
{
    return impl_->refused.load();
}

std::uint64_t ProxyServer::bus_requests() const noexcept
{
    return impl_->requests.load();
}

}  // namespace codexvault::cli::proxy
