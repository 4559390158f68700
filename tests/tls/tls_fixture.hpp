// Shared by the egress unit tests and the mediation integration tests (layer tests/tls).
// A per-test certificate authority and a server certificate for 127.0.0.1 and localhost, made
// with the openssl command in a fresh temporary folder, plus the server key's SPKI pin.
#pragma once

#include <string>

namespace egress_test {

struct TlsFixture {
    std::string dir;
    std::string ca_file;      // PEM of the CA, what a provider's ca_file names
    std::string server_cert;  // PEM text
    std::string server_key;   // PEM text
    std::string pin;          // "sha256//..." of the server's public key
    std::string error;        // non-empty when the fixture could not be made
};

TlsFixture make_tls_fixture();
void remove_tls_fixture(const TlsFixture& fixture);

}  // namespace egress_test
