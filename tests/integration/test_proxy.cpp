// vaultctl proxy and vaultctl run end to end: the real daemon and dbus-daemon, a real HTTPS
// provider on 127.0.0.1 with a per-run CA (below), the proxy (cli/proxy_server.hpp) in this
// process or inside `vaultctl run`, and the real OpenAI Node SDK (tests/npm).
#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "cli/proxy_server.hpp"
#include "lib/fileio/unique_fd.hpp"
#include "tests/support/harness.hpp"

using namespace codexvault;
using namespace codexvault::test;

namespace {

constexpr int kSseEvents = 20;
const char* const kCompletionPieces[] = {"al", "pha", " be", "ta", "!"};

// ---- a per-run CA and a certificate for 127.0.0.1, made with the openssl command -----------------
struct Tls {
    std::string dir;
    std::string ca_file;
    std::string cert;
    std::string key;
    std::string error;
};

std::string slurp(const std::string& path)
{
    std::ifstream in(path);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

Tls make_tls()
{
    Tls tls;
    char dir[] = "/tmp/proxy-tls-XXXXXX";
    if (::mkdtemp(dir) == nullptr) {
        tls.error = "mkdtemp failed";
        return tls;
    }
    ::chmod(dir, 0755);
    tls.dir = dir;
    const std::string d = tls.dir;
    const std::string script =
        "set -e; cd " + d +
        "; openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.pem "
        "-days 2 -subj /CN=proxy-test-ca -addext basicConstraints=critical,CA:TRUE "
        "-addext keyUsage=critical,keyCertSign >/dev/null 2>&1;"
        "openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout server.key -out server.csr "
        "-subj /CN=127.0.0.1 >/dev/null 2>&1;"
        "printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\\nextendedKeyUsage=serverAuth\\n' > ext;"
        "openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem -days 2 "
        "-extfile ext >/dev/null 2>&1; chmod 0644 ca.pem";
    if (std::system(script.c_str()) != 0) {
        tls.error = "openssl could not make the test CA";
        return tls;
    }
    tls.ca_file = d + "/ca.pem";
    tls.cert = slurp(d + "/server.pem");
    tls.key = slurp(d + "/server.key");
    return tls;
}

// ---- the provider: libmicrohttpd with TLS, a thread per connection ------------------------------
class Provider {
public:
    Provider(const Tls& tls, std::string key) : key_(std::move(key)), cert_(tls.cert), pem_key_(tls.key)
    {
        daemon_ = MHD_start_daemon(
            MHD_USE_TLS | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_AUTO | MHD_USE_ITC,
            0, nullptr, nullptr, &Provider::handle, this, MHD_OPTION_HTTPS_MEM_KEY, pem_key_.c_str(),
            MHD_OPTION_HTTPS_MEM_CERT, cert_.c_str(), MHD_OPTION_SOCK_ADDR, loopback(), MHD_OPTION_END);
        if (daemon_ != nullptr) {
            port_ = MHD_get_daemon_info(daemon_, MHD_DAEMON_INFO_BIND_PORT)->port;
        }
    }
    ~Provider()
    {
        open_gate();
        if (daemon_ != nullptr) {
            MHD_stop_daemon(daemon_);
        }
    }
    Provider(const Provider&) = delete;
    Provider& operator=(const Provider&) = delete;

    [[nodiscard]] bool running() const { return daemon_ != nullptr; }
    [[nodiscard]] std::uint16_t port() const { return port_; }
    [[nodiscard]] int requests() const { return requests_.load(); }
    void open_gate()
    {
        {
            std::lock_guard lock(mutex_);
            gate_open_ = true;
        }
        changed_.notify_all();
    }

private:
    // A body made of pieces, one per reader call, so the client sees them as separate writes.
    struct Pieces {
        Provider* provider;
        std::vector<std::string> parts;
        std::size_t next = 0;
        std::size_t gate_before = SIZE_MAX;  // wait for open_gate() before this piece
    };

    static sockaddr* loopback()
    {
        static sockaddr_in sa{};
        sa.sin_family = AF_INET;
        sa.sin_port = 0;
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        return reinterpret_cast<sockaddr*>(&sa);
    }

    static ssize_t read_piece(void* cls, std::uint64_t /*pos*/, char* buf, std::size_t max)
    {
        auto* p = static_cast<Pieces*>(cls);
        if (p->next == p->gate_before) {
            std::unique_lock lock(p->provider->mutex_);
            p->provider->changed_.wait(lock, [&] { return p->provider->gate_open_; });
        }
        if (p->next >= p->parts.size()) {
            return MHD_CONTENT_READER_END_OF_STREAM;
        }
        const std::string& part = p->parts[p->next++];
        const std::size_t n = std::min(max, part.size());
        std::memcpy(buf, part.data(), n);
        return static_cast<ssize_t>(n);
    }

    static void free_pieces(void* cls) { delete static_cast<Pieces*>(cls); }

    static MHD_Result handle(void* cls, MHD_Connection* c, const char* url, const char* /*method*/,
                             const char* /*version*/, const char* /*upload*/, std::size_t* upload_size, void** state)
    {
        auto* self = static_cast<Provider*>(cls);
        if (*state == nullptr) {
            *state = self;
            return MHD_YES;
        }
        if (*upload_size > 0) {
            *upload_size = 0;
            return MHD_YES;
        }
        ++self->requests_;
        const std::string path(url);
        if (path == "/v1/hold-head") {
            // No response head until the test opens the gate.
            std::unique_lock lock(self->mutex_);
            self->changed_.wait(lock, [&] { return self->gate_open_; });
        }
        // The Anthropic API takes its key in x-api-key, the others in Authorization.
        const bool anthropic = path == "/v1/messages";
        const char* auth = MHD_lookup_connection_value(c, MHD_HEADER_KIND, anthropic ? "x-api-key" : "Authorization");
        if (auth == nullptr || std::string(auth) != (anthropic ? "" : "Bearer ") + self->key_) {
            static char denied[] = "{\"error\":\"no key\"}";
            MHD_Response* r = MHD_create_response_from_buffer(sizeof denied - 1, denied, MHD_RESPMEM_PERSISTENT);
            const MHD_Result q = MHD_queue_response(c, 401, r);
            MHD_destroy_response(r);
            return q;
        }
        auto pieces = std::make_unique<Pieces>();
        pieces->provider = self;
        if (path == "/v1/chat/completions") {
            for (const char* piece : kCompletionPieces) {
                pieces->parts.push_back(
                    std::string(
                        R"(data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"test-model",)") +
                    R"("choices":[{"index":0,"delta":{"content":")" + piece + R"("},"finish_reason":null}]})" + "\n\n");
            }
            pieces->parts.emplace_back("data: [DONE]\n\n");
        } else if (anthropic) {
            const auto event = [&pieces](const std::string& type, const std::string& data) {
                pieces->parts.push_back("event: " + type + "\ndata: " + data + "\n\n");
            };
            event("message_start",
                  R"({"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant",)"
                  R"("model":"test-model","content":[],"stop_reason":null,"stop_sequence":null,)"
                  R"("usage":{"input_tokens":1,"output_tokens":1}}})");
            event("content_block_start",
                  R"({"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}})");
            for (const char* piece : kCompletionPieces) {
                event("content_block_delta",
                      std::string(R"({"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":")") +
                          piece + R"("}})");
            }
            event("content_block_stop", R"({"type":"content_block_stop","index":0})");
            event("message_delta", R"({"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},)"
                                   R"("usage":{"output_tokens":5}})");
            event("message_stop", R"({"type":"message_stop"})");
        } else if (path == "/v1/sse") {
            for (int i = 0; i < kSseEvents; ++i) {
                pieces->parts.push_back("data: " + std::to_string(i) + "\n\n");
            }
        } else if (path == "/v1/gate") {
            pieces->parts = {"data: first\n\n", "data: second\n\n"};
            pieces->gate_before = 1;
        }
        MHD_Response* r =
            MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 1024, read_piece, pieces.get(), free_pieces);
        (void)pieces.release();
        MHD_add_response_header(r, "Content-Type", "text/event-stream");
        const MHD_Result q = MHD_queue_response(c, 200, r);
        MHD_destroy_response(r);
        return q;
    }

    std::string key_;
    std::string cert_;
    std::string pem_key_;
    MHD_Daemon* daemon_ = nullptr;
    std::uint16_t port_ = 0;
    std::atomic<int> requests_{0};
    std::mutex mutex_;
    std::condition_variable changed_;
    bool gate_open_ = false;
};

struct World {
    Tls tls;
    std::unique_ptr<Provider> provider;
    std::string key;
};
std::unique_ptr<World> world;

CommandResult founder(const std::vector<std::string>& args, const std::string& stdin_data = "")
{
    std::vector<std::string> full = args;
    full.insert(full.end(), {"--founder-key", env->founder_key(), "--passphrase-fd", "3"});
    return env->vaultctl(full, {.stdin_data = stdin_data, .passphrase = kPassphrase, .as_uid = std::nullopt});
}

void setup()
{
    start_env_with_founder();
}

void teardown()
{
    if (world) {
        world->provider.reset();
        std::error_code ec;
        std::filesystem::remove_all(world->tls.dir, ec);
        world.reset();
    }
    stop_env();
}

// The provider "openai" at the local server, its key a canary, a grant for uid 0 (this process
// and the vaultctl it starts), and the daemon restarted to load them.
void require_provider()
{
    if (::geteuid() != 0) {
        cr_skip_test("needs root: policy and CA files must be root-owned");
    }
    world = std::make_unique<World>();
    world->tls = make_tls();
    if (!world->tls.error.empty()) {
        cr_skip_test("%s", world->tls.error.c_str());
    }
    world->key = random_canary();
    world->provider = std::make_unique<Provider>(world->tls, world->key);
    if (!world->provider->running()) {
        cr_skip_test("libmicrohttpd cannot serve TLS here");
    }
    const auto put = founder({"secret", "put", "openai-key"}, world->key);
    cr_assert_eq(put.exit_code, 0, "secret put: %s", put.err.c_str());
    const auto put_anthropic = founder({"secret", "put", "anthropic-key"}, world->key);
    cr_assert_eq(put_anthropic.exit_code, 0, "secret put: %s", put_anthropic.err.c_str());
    const std::string policy =
        "version = 1\n[providers.openai]\norigin = \"https://127.0.0.1:" + std::to_string(world->provider->port()) +
        "\"\nallow = [\"GET /v1/*\", \"POST /v1/*\"]\nsecret = \"openai-key\"\n"
        "inject = { header = \"Authorization\", template = \"Bearer {secret}\" }\n"
        "ca_file = \"" +
        world->tls.ca_file +
        "\"\nallow_private_address = true\n"
        "client = { base_url_env = \"OPENAI_BASE_URL\", base_path = \"/v1\", api_key_env = \"OPENAI_API_KEY\" }\n"
        "[principals.root]\nuid = 0\n"
        "[grants.root-openai]\nprincipal = \"root\"\ncapability = \"provider:openai:request\"\n"
        "requests = [\"GET /v1/*\", \"POST /v1/*\"]\n"
        "[providers.anthropic]\norigin = \"https://127.0.0.1:" +
        std::to_string(world->provider->port()) +
        "\"\nallow = [\"POST /v1/messages\"]\nsecret = \"anthropic-key\"\n"
        "inject = { header = \"x-api-key\", template = \"{secret}\" }\nca_file = \"" +
        world->tls.ca_file +
        "\"\nallow_private_address = true\n"
        "client = { base_url_env = \"ANTHROPIC_BASE_URL\", api_key_env = \"ANTHROPIC_API_KEY\" }\n"
        "[grants.root-anthropic]\nprincipal = \"root\"\ncapability = \"provider:anthropic:request\"\n"
        "requests = [\"POST /v1/messages\"]\n";
    const std::string path = env->policy_dir() + "/50-proxy.toml";
    std::ofstream(path, std::ios::trunc) << policy;
    cr_assert_eq(::chmod(path.c_str(), 0644), 0);
    env->stop_daemon();
    env->start_daemon();
}

const std::string kToken = "sk-cv-00112233445566778899aabbccddeeff0011223344556677";

cli::proxy::ProxyConfig proxy_config()
{
    cli::proxy::ProxyConfig c;
    c.listen.host = "127.0.0.1";
    c.token = kToken;
    c.providers = {"openai"};
    c.bus_address = env->bus_address();
    return c;
}

UniqueFd connect_to(std::uint16_t port)
{
    UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(::connect(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
    return fd;
}

void send_text(int fd, const std::string& text)
{
    cr_assert_eq(::write(fd, text.data(), text.size()), static_cast<ssize_t>(text.size()));
}

bool read_until(int fd, std::string& buffer, const std::string& needle)
{
    char buf[4096];
    while (buffer.find(needle) == std::string::npos) {
        const ssize_t n = ::read(fd, buf, sizeof buf);
        if (n <= 0) {
            return false;
        }
        buffer.append(buf, static_cast<std::size_t>(n));
    }
    return true;
}

std::string read_all(int fd, std::string buffer = "")
{
    char buf[4096];
    ssize_t n = 0;
    while ((n = ::read(fd, buf, sizeof buf)) > 0) {
        buffer.append(buf, static_cast<std::size_t>(n));
    }
    return buffer;
}

}  // namespace

TestSuite(proxy, .init = setup, .fini = teardown, .timeout = 120);

Test(proxy, a_missing_or_wrong_token_gets_401_and_nothing_reaches_the_daemon_or_the_provider)
{
    require_provider();
    cli::proxy::ProxyServer server(proxy_config());
    for (const std::string& credential : std::vector<std::string>{
             std::string(), "Authorization: Bearer sk-cv-wrong-token-0000000000000000000000000000000000\r\n",
             "x-api-key: " + kToken.substr(0, kToken.size() - 1) + "0\r\n"}) {
        UniqueFd client = connect_to(server.port());
        send_text(client.get(),
                  "GET /openai/v1/sse HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" + credential + "\r\n");
        const std::string got = read_all(client.get());
        cr_assert(got.rfind("HTTP/1.1 401", 0) == 0, "%s", got.c_str());
    }
    cr_assert_eq(server.bus_requests(), 0);
    cr_assert_eq(world->provider->requests(), 0);
    // The same request with the token goes through, so the refusals above were the token's.
    UniqueFd client = connect_to(server.port());
    send_text(client.get(),
              "GET /openai/v1/sse HTTP/1.1\r\nHost: x\r\nConnection: close\r\nx-api-key: " + kToken + "\r\n\r\n");
    const std::string got = read_all(client.get());
    cr_assert(got.rfind("HTTP/1.1 200", 0) == 0, "%s\ndaemon log:\n%s", got.c_str(), env->daemon_log().c_str());
    cr_assert_eq(world->provider->requests(), 1);
}

Test(proxy, sse_is_relayed_in_order_through_vaultctl_run)
{
    require_provider();
    const auto run =
        env->vaultctl({"run", "--provider", "openai", "--policy-dir", env->policy_dir(), "--", "sh", "-c",
                       "curl -sS -N -H \"Authorization: Bearer $OPENAI_API_KEY\" \"$OPENAI_BASE_URL/sse\""});
    cr_assert_eq(run.exit_code, 0, "run: %d %s\ndaemon log:\n%s", run.exit_code, run.err.c_str(),
                 env->daemon_log().c_str());
    std::string expected;
    for (int i = 0; i < kSseEvents; ++i) {
        expected += "data: " + std::to_string(i) + "\n\n";
    }
    cr_assert_eq(run.out, expected, "%s", run.out.c_str());
    cr_assert(run.out.find(world->key) == std::string::npos && run.err.find(world->key) == std::string::npos);
}

Test(proxy, vaultctl_run_passes_the_exit_status_on)
{
    require_provider();
    cr_assert_eq(
        env->vaultctl({"run", "--provider", "openai", "--policy-dir", env->policy_dir(), "--", "sh", "-c", "exit 23"})
            .exit_code,
        23);
    cr_assert_eq(env->vaultctl({"run", "--provider", "openai", "--policy-dir", env->policy_dir(), "--", "sh", "-c",
                                "kill -KILL $$"})
                     .exit_code,
                 128 + 9);
}

Test(proxy, a_lock_during_a_stream_gives_the_client_a_truncated_body)
{
    require_provider();
    cli::proxy::ProxyServer server(proxy_config());
    UniqueFd client = connect_to(server.port());
    send_text(client.get(), "GET /openai/v1/gate HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Bearer " +
                                kToken + "\r\n\r\n");
    std::string got;
    cr_assert(read_until(client.get(), got, "data: first"), "no first event: %s\ndaemon log:\n%s", got.c_str(),
              env->daemon_log().c_str());
    const auto lock = founder({"lock", "--reason", "proxy stream test"});
    cr_assert_eq(lock.exit_code, 0, "lock: %s", lock.err.c_str());
    got = read_all(client.get(), got);
    world->provider->open_gate();
    cr_assert(got.rfind("HTTP/1.1 200", 0) == 0, "%s", got.c_str());
    cr_assert(got.find("Transfer-Encoding: chunked") != std::string::npos);
    cr_assert(got.find("data: second") == std::string::npos);
    cr_assert(got.find("\r\n0\r\n\r\n") == std::string::npos, "a cut stream was framed as complete:\n%s", got.c_str());
}

Test(proxy, a_client_that_hangs_up_before_the_response_head_cancels_the_request_in_the_daemon)
{
    require_provider();
    cli::proxy::ProxyServer server(proxy_config());
    {
        UniqueFd client = connect_to(server.port());
        send_text(client.get(),
                  "GET /openai/v1/hold-head HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + kToken + "\r\n\r\n");
        // The Request is in flight once the provider has it (it holds its head back).
        for (int i = 0; i < 1000 && world->provider->requests() == 0; ++i) {
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
        cr_assert_eq(world->provider->requests(), 1, "the request never reached the provider\ndaemon log:\n%s",
                     env->daemon_log().c_str());
    }  // the client hangs up
    // The daemon cuts the exchange and records why, while the provider still holds the head.
    bool cancelled = false;
    for (int i = 0; i < 1000 && !cancelled; ++i) {
        cancelled = env->daemon_log().find("end cancelled") != std::string::npos;
        if (!cancelled) {
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
    }
    world->provider->open_gate();
    cr_assert(cancelled, "the Request was not cancelled when its client hung up\ndaemon log:\n%s",
              env->daemon_log().c_str());
    cr_assert(env->daemon_log().find("left the bus before the response head arrived") != std::string::npos, "%s",
              env->daemon_log().c_str());
}

namespace {

// Runs a tests/npm script under `vaultctl run --provider PROVIDER` (skipped with the reason when
// the SDK cannot be installed) and checks it streamed the fake provider's pieces, whole and in
// order, without the key anywhere in its output.
std::string sdk_output_through_vaultctl_run(const char* provider, const char* script, const char* sdk)
{
    const std::string runner = source_dir() + "/tests/npm/run.sh";
    const auto run =
        env->vaultctl({"run", "--provider", provider, "--policy-dir", env->policy_dir(), "--", runner, script});
    if (run.exit_code == 77) {
        cr_skip_test("the %s is not available: %s", sdk, run.err.c_str());
    }
    cr_assert_eq(run.exit_code, 0, "sdk: %d\n%s\n%s\ndaemon log:\n%s", run.exit_code, run.out.c_str(), run.err.c_str(),
                 env->daemon_log().c_str());
    std::string text;
    for (const char* piece : kCompletionPieces) {
        text += piece;
    }
    cr_assert(run.out.find("\"text\":\"" + text + "\"") != std::string::npos, "%s", run.out.c_str());
    cr_assert(run.out.find(world->key) == std::string::npos);
    cr_assert(run.err.find(world->key) == std::string::npos);
    return run.out;
}

}  // namespace

Test(proxy, the_openai_node_sdk_streams_a_chat_completion_through_vaultctl_run, .timeout = 300)
{
    require_provider();
    const std::string out = sdk_output_through_vaultctl_run("openai", "openai_stream.mjs", "OpenAI Node SDK");
    cr_assert(out.find("\"chunks\":5") != std::string::npos, "%s", out.c_str());
}

Test(proxy, the_anthropic_node_sdk_streams_a_message_through_vaultctl_run, .timeout = 300)
{
    require_provider();
    const std::string out = sdk_output_through_vaultctl_run("anthropic", "anthropic_stream.mjs", "Anthropic Node SDK");
    cr_assert(out.find("\"deltas\":5") != std::string::npos, "%s", out.c_str());
    cr_assert(out.find("\"stop\":\"end_turn\"") != std::string::npos, "%s", out.c_str());
}
