// The proxy's HTTP endpoint without a daemon (cli/proxy_server.hpp): what it refuses, it refuses
// before any bus call; the bus it is given here leads nowhere, so a request that got past the
// checks answers 502.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include <cstdlib>
#include <string>

#include "cli/proxy_commands.hpp"
#include "cli/proxy_server.hpp"
#include "lib/fileio/unique_fd.hpp"

using namespace codexvault::cli::proxy;
using codexvault::UniqueFd;

namespace {

const std::string kToken = "sk-cv-0123456789abcdef0123456789abcdef0123456789abcdef";

ProxyConfig config()
{
    ProxyConfig c;
    c.listen.host = "127.0.0.1";
    c.listen.port = 0;
    c.token = kToken;
    c.providers = {"openai"};
    c.bus_address = "unix:path=/nonexistent/codex-vault-test-bus";
    return c;
}

// One request on a fresh connection; the whole response as text.
std::string http_exchange(std::uint16_t port, const std::string& request)
{
    UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    cr_assert(fd.valid());
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(::connect(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
    cr_assert_eq(::write(fd.get(), request.data(), request.size()), static_cast<ssize_t>(request.size()));
    std::string out;
    char buf[4096];
    for (;;) {
        const ssize_t n = ::read(fd.get(), buf, sizeof buf);
        if (n <= 0) {
            break;
        }
        out.append(buf, static_cast<std::size_t>(n));
    }
    return out;
}

std::string get(std::uint16_t port, const std::string& target, const std::string& headers)
{
    return http_exchange(port, "GET " + target + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" + headers + "\r\n");
}

bool status_is(const std::string& response, unsigned status)
{
    return response.rfind("HTTP/1.1 " + std::to_string(status) + " ", 0) == 0;
}

}  // namespace

Test(proxy_server, a_request_without_the_token_gets_401_and_no_bus_call)
{
    ProxyServer server(config());
    const std::string r = get(server.port(), "/openai/v1/models", "");
    cr_assert(status_is(r, 401), "%s", r.c_str());
    cr_assert(r.find("WWW-Authenticate: Bearer") != std::string::npos);
    cr_assert_eq(server.bus_requests(), 0);
    cr_assert_eq(server.refused_before_bus(), 1);
}

Test(proxy_server, a_wrong_token_in_either_header_gets_401_and_no_bus_call)
{
    ProxyServer server(config());
    std::string wrong = kToken;
    wrong[10] = wrong[10] == '0' ? '1' : '0';
    cr_assert(status_is(get(server.port(), "/openai/v1/models", "Authorization: Bearer " + wrong + "\r\n"), 401));
    cr_assert(status_is(get(server.port(), "/openai/v1/models", "x-api-key: " + wrong + "\r\n"), 401));
    cr_assert(status_is(get(server.port(), "/openai/v1/models", "x-goog-api-key: " + wrong + "\r\n"), 401));
    cr_assert(status_is(get(server.port(), "/openai/v1/models", "api-key: " + wrong + "\r\n"), 401));
    cr_assert(status_is(
        get(server.port(), "/openai/v1/models", "x-goog-api-key: " + kToken + "\r\nx-api-key: " + wrong + "\r\n"),
        401));
    cr_assert(status_is(
        get(server.port(), "/openai/v1/models", "x-api-key: " + kToken + "\r\nAuthorization: Bearer " + wrong + "\r\n"),
        401));
    // A refused POST body is never read: 401 comes before "100 Continue".
    const std::string post = http_exchange(server.port(),
                                           "POST /openai/v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
                                           "Expect: 100-continue\r\nContent-Length: 5\r\n\r\n");
    cr_assert(status_is(post, 401), "%s", post.c_str());
    cr_assert(post.find("100 Continue") == std::string::npos);
    cr_assert_eq(server.bus_requests(), 0);
}

Test(proxy_server, unrouted_providers_bad_paths_and_methods_are_refused_before_the_bus)
{
    ProxyServer server(config());
    const std::string auth = "Authorization: Bearer " + kToken + "\r\n";
    cr_assert(status_is(get(server.port(), "/anthropic/v1/models", auth), 404));
    cr_assert(status_is(get(server.port(), "/openai/v1/%2e%2e/admin", auth), 400));
    cr_assert(status_is(http_exchange(server.port(),
                                      "OPTIONS /openai/v1/models HTTP/1.1\r\nHost: x\r\n"
                                      "Connection: close\r\n" +
                                          auth + "\r\n"),
                        405));
    cr_assert_eq(server.bus_requests(), 0);
    cr_assert_eq(server.refused_before_bus(), 3);
}

Test(proxy_server, a_good_request_goes_to_the_bus_and_an_unreachable_vault_is_502)
{
    ProxyServer server(config());
    const std::string r = get(server.port(), "/openai/v1/models", "x-api-key: " + kToken + "\r\n");
    cr_assert(status_is(r, 502), "%s", r.c_str());
    cr_assert(r.find("vault_unreachable") != std::string::npos);
    cr_assert(r.find(kToken) == std::string::npos, "the token came back");
    cr_assert_eq(server.bus_requests(), 1);
    // Gemini's and Azure OpenAI's SDKs send their key in x-goog-api-key and api-key.
    cr_assert(status_is(get(server.port(), "/openai/v1/models", "x-goog-api-key: " + kToken + "\r\n"), 502));
    cr_assert(status_is(get(server.port(), "/openai/v1/models", "api-key: " + kToken + "\r\n"), 502));
    cr_assert_eq(server.bus_requests(), 3);
}

Test(proxy_server, an_oversized_body_gets_413)
{
    ProxyConfig c = config();
    c.max_request_bytes = 16;
    ProxyServer server(c);
    const std::string body(64, 'x');
    const std::string r = http_exchange(server.port(),
                                        "POST /openai/v1/chat/completions HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                                        "Authorization: Bearer " +
                                            kToken + "\r\nContent-Length: 64\r\n\r\n" + body);
    cr_assert(status_is(r, 413), "%s", r.c_str());
    // Chunked, so the length is known only as the body arrives.
    const std::string chunked =
        http_exchange(server.port(),
                      "POST /openai/v1/chat/completions HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                      "Authorization: Bearer " +
                          kToken + "\r\nTransfer-Encoding: chunked\r\n\r\n40\r\n" + body + "\r\n0\r\n\r\n");
    cr_assert(status_is(chunked, 413), "%s", chunked.c_str());
    cr_assert_eq(server.bus_requests(), 0);
}

Test(proxy_server, a_short_token_is_refused_at_start)
{
    ProxyConfig c = config();
    c.token = "sk-short";
    bool threw = false;
    try {
        ProxyServer server(c);
    } catch (const std::runtime_error&) {
        threw = true;
    }
    cr_assert(threw);
}

Test(proxy_token_file, a_private_file_gives_its_trimmed_token)
{
    char path[] = "/tmp/proxy-token-XXXXXX";
    const int fd = ::mkstemp(path);
    cr_assert(fd >= 0);
    const std::string text = "  " + kToken + "\n";
    cr_assert_eq(::write(fd, text.data(), text.size()), static_cast<ssize_t>(text.size()));
    ::close(fd);
    cr_assert_eq(read_token_file(path), kToken);
    ::chmod(path, 0640);
    bool threw = false;
    try {
        (void)read_token_file(path);
    } catch (const codexvault::cli::CallError&) {
        threw = true;
    }
    ::unlink(path);
    cr_assert(threw, "a group-readable token file was accepted");
}

Test(proxy_token_file, generated_tokens_differ_and_are_acceptable)
{
    const std::string a = generate_token();
    const std::string b = generate_token();
    cr_assert_neq(a, b);
    cr_assert(is_acceptable_token(a));
}
