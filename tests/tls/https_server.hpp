// Shared by the egress unit tests and the mediation integration tests (layer tests/tls).
// A real HTTPS server on 127.0.0.1 (libmicrohttpd with GnuTLS, a thread per connection) with the
// endpoints the egress tests need. It echoes the credential it receives in many encodings, streams
// in steps the test releases, hangs, redirects, sends oversized bodies and counts connections.
#pragma once

#include <microhttpd.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>

namespace egress_test {

// /v1/sse sends this many events, "data: N" for N from 0, in order.
inline constexpr int kSseEvents = 50;
// /v1/large streams this many bytes of a repeating pattern (a slow reader's test).
inline constexpr std::uint64_t kLargeBytes = 64ULL * 1024 * 1024;

class TestServer {
public:
    // credential_header: where the vault injects the key (lower case); prefix: what precedes it.
    TestServer(const std::string& cert_pem, const std::string& key_pem, std::string credential_header,
               std::string credential_prefix);
    ~TestServer();
    TestServer(const TestServer&) = delete;
    TestServer& operator=(const TestServer&) = delete;

    [[nodiscard]] bool running() const noexcept { return daemon_ != nullptr; }
    [[nodiscard]] std::uint16_t port() const noexcept { return port_; }
    [[nodiscard]] int connections() const noexcept { return connections_.load(); }
    [[nodiscard]] int requests() const noexcept { return requests_.load(); }

    // The headers of the last request (names lower-cased), its body size.
    std::map<std::string, std::string> last_headers();
    std::uint64_t last_body_bytes();

    // /stream sends its first part, then waits until the test calls open_gate().
    void open_gate();

    // Used by the C callbacks.
    struct Reply;
    MHD_Result handle(MHD_Connection* connection, const std::string& url, const std::string& method, const char* upload,
                      size_t* upload_size, void** state);
    bool wait_gate();
    bool wait_stop();
    std::atomic<int> connections_{0};

private:
    std::string credential_header_;
    std::string credential_prefix_;
    MHD_Daemon* daemon_ = nullptr;
    std::uint16_t port_ = 0;
    std::atomic<int> requests_{0};
    std::mutex mutex_;
    std::condition_variable changed_;
    bool gate_open_ = false;
    bool stopping_ = false;
    std::map<std::string, std::string> last_headers_;
    std::uint64_t last_body_bytes_ = 0;
    std::string cert_;
    std::string key_;
};

}  // namespace egress_test
