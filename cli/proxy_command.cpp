// `vaultctl proxy`: serves until SIGINT or SIGTERM.
#include <fcntl.h>
#include <signal.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>

#include "cli/proxy_commands.hpp"
#include "cli/proxy_server.hpp"
#include "lib/fileio/files.hpp"
#include "lib/fileio/unique_fd.hpp"

namespace codexvault::cli {
namespace proxy {

std::string generate_token()
{
    if (sodium_init() < 0) {
        throw CallError(std::nullopt, kExitLocalError, "libsodium could not start");
    }
    std::uint8_t random[kTokenRandomBytes];
    randombytes_buf(random, sizeof random);
    std::string token = format_token(random);
    sodium_memzero(random, sizeof random);
    return token;
}

std::string read_token_file(const std::string& path)
{
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK));
    if (!fd) {
        throw CallError(std::nullopt, kExitLocalError, "cannot open token file " + path + ": " + std::strerror(errno));
    }
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) {
        throw CallError(std::nullopt, kExitLocalError, path + " is not a regular file");
    }
    if (st.st_uid != ::geteuid() || (st.st_mode & 077) != 0) {
        throw CallError(std::nullopt, kExitLocalError,
                        path + " must be owned by you and readable by nobody else (chmod 600)");
    }
    std::string text(kMaxTokenLength + 64, '\0');
    const std::size_t got = fileio::read_until_eof(fd.get(), text.data(), text.size(), path);
    text.resize(got);
    const auto first = text.find_first_not_of(" \t\r\n");
    const auto last = text.find_last_not_of(" \t\r\n");
    std::string token = first == std::string::npos ? std::string() : text.substr(first, last - first + 1);
    if (!is_acceptable_token(token)) {
        throw CallError(std::nullopt, kExitLocalError,
                        path + ": a token is 32 to 256 visible ASCII characters on one line");
    }
    return token;
}

}  // namespace proxy

namespace {

struct ProxyOptions {
    std::string listen;
    std::vector<std::string> providers;
    std::string token_file;
    unsigned max_connections = 64;
    std::uint64_t max_request_bytes = 32ULL * 1024 * 1024;
};

int cmd_proxy(const GlobalOptions& options, const ProxyOptions& args)
{
    std::string error;
    const auto listen = proxy::parse_listen(args.listen, error);
    if (!listen) {
        throw CallError(std::nullopt, kExitUsage, "--listen " + args.listen + ": " + error);
    }
    proxy::ProxyConfig config;
    config.listen = *listen;
    config.providers = proxy::split_provider_list(args.providers);
    config.bus_address = options.bus;
    config.max_connections = args.max_connections;
    config.max_request_bytes = args.max_request_bytes;
    const bool generated = args.token_file.empty();
    config.token = generated ? proxy::generate_token() : proxy::read_token_file(args.token_file);

    // Signals go to this thread only: the server's threads start with them blocked.
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    sigaddset(&stop_signals, SIGHUP);
    if (pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr) != 0) {
        throw CallError(std::nullopt, kExitLocalError, "cannot block signals");
    }
    // Never destroyed: a connection thread may sit in a Request call for minutes, and stopping
    // must not wait for it. The process exits below; the kernel closes every connection.
    auto* server = new proxy::ProxyServer(config);
    const std::string url = listen->kind == proxy::ListenAddress::Kind::Unix
                                ? "unix:" + listen->path
                                : proxy::proxy_origin(*listen, server->port());
    if (options.json) {
        nlohmann::json out{{"url", url}, {"providers", config.providers}};
        if (generated) {
            out["token"] = config.token;
        }
        std::cout << out.dump() << std::endl;
    } else {
        std::cout << "vaultctl proxy: listening on " << url << "; route /<provider>/<path>\n";
        if (generated) {
            // Printed once; it is the only way in, so keep it like a key.
            std::cout << "token " << config.token << std::endl;
        } else {
            std::cout << "token from " << args.token_file << std::endl;
        }
    }
    int signal_number = 0;
    (void)sigwait(&stop_signals, &signal_number);
    (void)server;
    std::fprintf(stderr, "vaultctl proxy: stopping (%s)\n", strsignal(signal_number));
    std::fflush(nullptr);
    std::_Exit(0);
}

}  // namespace

void add_proxy_command(CLI::App& app, const GlobalOptions& options, SelectedCommand& selected)
{
    auto args = std::make_shared<ProxyOptions>();
    auto* cmd = app.add_subcommand(
        "proxy", "Serve a local HTTP endpoint that routes /<provider>/<path> through the vault (docs/proxy.md)");
    cmd->add_option("--listen", args->listen, "127.0.0.1:PORT, [::1]:PORT or unix:PATH (loopback only)")->required();
    cmd->add_option("--provider", args->providers, "Route only these providers (NAME or NAME,NAME; default: any)")
        ->expected(1)
        ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
    cmd->add_option("--token-file", args->token_file,
                    "Read the token from this file (mode 600) instead of generating one");
    cmd->add_option("--max-connections", args->max_connections, "Client connections served at once")
        ->check(CLI::Range(1U, 1024U))
        ->capture_default_str();
    cmd->add_option("--max-request-bytes", args->max_request_bytes, "Largest request body accepted")
        ->check(CLI::Range(std::uint64_t{1}, std::uint64_t{4} << 30))
        ->capture_default_str();
    on_selected(cmd, selected, [&options, args] { return cmd_proxy(options, *args); });
}

}  // namespace codexvault::cli
