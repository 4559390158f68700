// Drives the egress engine on a real sd-event loop against the local test server, reading the
// response stream on the same loop the way the daemon's caller would.
#pragma once

#include <systemd/sd-event.h>

#include <functional>
#include <memory>
#include <string>

#include "daemon/egress/engine.hpp"
#include "lib/sdbus/sd_ptr.hpp"
#include "tests/tls/https_server.hpp"
#include "tests/tls/tls_fixture.hpp"

namespace egress_test {

struct Exchange {
    bool head = false;
    codexvault::egress::ResponseHead response;
    std::string body;
    bool eof = false;
    bool ended = false;
    codexvault::egress::Outcome outcome;
    std::uint64_t id = 0;
    std::string start_error;  // set when start() refused the request
    codexvault::UniqueFd reader;
    codexvault::bus::EventSourcePtr reader_watch;
    std::function<void(Exchange&)> on_data;  // after each read
    std::function<void(Exchange&)> on_head;
};

class Harness {
public:
    // Skips the test (with the reason) when openssl, TLS in libmicrohttpd or root are missing.
    Harness(const std::string& credential_header = "authorization", const std::string& prefix = "Bearer ");
    ~Harness();

    codexvault::policy::Provider provider(bool allow_private = true) const;
    codexvault::egress::ExchangeRequest request(const std::string& method, const std::string& path,
                                                bool allow_private = true) const;
    // Starts the exchange and runs the loop until it has ended and its stream is read to EOF.
    void run(Exchange& exchange, codexvault::egress::ExchangeRequest request);
    void start(Exchange& exchange, codexvault::egress::ExchangeRequest request);
    void loop_until(const std::function<bool()>& done);

    std::string secret;
    TlsFixture tls;
    std::unique_ptr<TestServer> server;
    sd_event* event = nullptr;
    std::unique_ptr<codexvault::egress::Engine> engine;
};

}  // namespace egress_test
