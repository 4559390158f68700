#include "tests/tls/tls_fixture.hpp"

#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace egress_test {

namespace {

std::string slurp(const std::string& path)
{
    std::ifstream in(path, std::ios::binary);
    std::ostringstream out;
    out << in.rdbuf();
    return out.str();
}

bool run(const std::string& command)
{
    const int status = std::system(("( " + command + " ) >/dev/null 2>&1").c_str());
    return status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

}  // namespace

TlsFixture make_tls_fixture()
{
    TlsFixture fixture;
    char templ[] = "/tmp/cv-egress-tls-XXXXXX";
    if (::mkdtemp(templ) == nullptr) {
        fixture.error = "mkdtemp failed";
        return fixture;
    }
    fixture.dir = templ;
    const std::string d = fixture.dir;
    {
        std::ofstream ext(d + "/server.ext");
        ext << "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n"
               "keyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n";
    }
    const std::string ec = "-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes";
    const bool ok =
        run("openssl req -x509 " + ec + " -keyout " + d + "/ca.key -out " + d +
            "/ca.pem -days 2 -subj /CN=cv-egress-test-ca") &&
        run("openssl req " + ec + " -keyout " + d + "/server.key -out " + d + "/server.csr -subj /CN=localhost") &&
        run("openssl x509 -req -in " + d + "/server.csr -CA " + d + "/ca.pem -CAkey " + d +
            "/ca.key -CAcreateserial -out " + d + "/server.pem -days 2 -extfile " + d + "/server.ext") &&
        run("openssl pkey -in " + d +
            "/server.key -pubout -outform der | openssl dgst -sha256 -binary | openssl base64 -A > " + d + "/pin");
    if (!ok) {
        fixture.error = "the openssl command could not make the test CA";
        return fixture;
    }
    fixture.ca_file = d + "/ca.pem";
    fixture.server_cert = slurp(d + "/server.pem");
    fixture.server_key = slurp(d + "/server.key");
    fixture.pin = "sha256//" + slurp(d + "/pin");
    if (fixture.pin.size() != 8 + 44) {
        fixture.error = "the openssl command did not compute the server key's pin";
    }
    return fixture;
}

void remove_tls_fixture(const TlsFixture& fixture)
{
    if (!fixture.dir.empty()) {
        std::error_code ignored;
        std::filesystem::remove_all(fixture.dir, ignored);
    }
}

}  // namespace egress_test
