// `vaultctl run --provider NAME[,NAME]... -- COMMAND [ARGS...]`: a proxy on a random loopback port
// with a fresh token, the providers' client variables pointing at it, the command, its status.
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>

#include "cli/proxy_commands.hpp"
#include "cli/proxy_server.hpp"
#include "lib/fileio/files.hpp"
#include "lib/fileio/unique_fd.hpp"
#include "policy/policy_parser.hpp"

extern char** environ;

namespace codexvault::cli {
namespace proxy {
namespace {

constexpr std::size_t kMaxPolicyFileBytes = 1024 * 1024;

// The daemon's own rule for its policy files (daemon/policy_files.cpp): root-owned and writable
// by root only. The variable names a file sets reach the command's environment, so a file
// anyone else could have written is not read.
std::string read_policy_file(const std::filesystem::path& path)
{
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK));
    if (!fd) {
        throw CallError(std::nullopt, kExitLocalError, "cannot read " + path.string() + ": " + std::strerror(errno));
    }
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) {
        throw CallError(std::nullopt, kExitLocalError, path.string() + " is not a regular file");
    }
    if (st.st_uid != 0 || (st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
        throw CallError(std::nullopt, kExitLocalError,
                        path.string() + " is not owned by root or is writable by others; the daemon would not load it");
    }
    std::string content(kMaxPolicyFileBytes + 1, '\0');
    const std::size_t got = fileio::read_until_eof(fd.get(), content.data(), content.size(), path.string());
    if (got > kMaxPolicyFileBytes) {
        throw CallError(std::nullopt, kExitLocalError, path.string() + " is larger than 1 MiB");
    }
    content.resize(got);
    return content;
}

}  // namespace

std::vector<ClientVariables> client_settings_from_policy(const std::string& policy_dir,
                                                         const std::vector<std::string>& names)
{
    std::vector<std::filesystem::path> files;
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator(policy_dir, ec)) {
        const std::string name = entry.path().filename().string();
        if (name.size() > 5 && name.ends_with(".toml") && name[0] != '.') {
            files.push_back(entry.path());
        }
    }
    if (ec) {
        throw CallError(std::nullopt, kExitLocalError,
                        "cannot list the policy folder " + policy_dir + ": " + ec.message() + " (see --policy-dir)");
    }
    std::sort(files.begin(), files.end());
    // PolicyDocument views its name and text: both live in these vectors until the load is done.
    std::vector<std::string> paths;
    std::vector<std::string> contents;
    std::vector<policy::PolicyDocument> documents;
    for (const auto& file : files) {
        paths.push_back(file.string());
        contents.push_back(read_policy_file(file));
    }
    for (std::size_t i = 0; i < files.size(); ++i) {
        documents.push_back({paths[i], contents[i]});
    }
    const policy::LoadResult result = policy::load_policy(documents);
    if (!result.ok()) {
        throw CallError(ErrorCode::InvalidArgument, error_info(ErrorCode::InvalidArgument).exit_code,
                        "the policy in " + policy_dir + " does not load:\n" + result.error_text());
    }
    std::vector<ClientVariables> out;
    for (const auto& name : names) {
        const policy::Provider* provider = result.policy->find_provider(name);
        if (provider == nullptr) {
            throw CallError(ErrorCode::NotFound, error_info(ErrorCode::NotFound).exit_code,
                            std::string("no provider \"").append(name).append("\" in ").append(policy_dir));
        }
        if (!provider->client) {
            throw CallError(ErrorCode::InvalidArgument, error_info(ErrorCode::InvalidArgument).exit_code,
                            "provider \"" + name +
                                "\" has no `client` settings, so run does not know which "
                                "variables its clients read; use `vaultctl proxy` and set them yourself");
        }
        out.push_back(
            {name, provider->client->base_url_env, provider->client->base_path, provider->client->api_key_env});
    }
    return out;
}

}  // namespace proxy

namespace {

struct RunOptions {
    std::vector<std::string> providers;
    std::string policy_dir = "/etc/codex-vault/policy.d";
    std::vector<std::string> command;
};

// environ with `set` replacing or adding its variables.
std::vector<std::string> child_environment(const std::vector<std::pair<std::string, std::string>>& set)
{
    std::vector<std::string> env;
    for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
        const std::string_view entry(*e);
        const std::string_view name = entry.substr(0, entry.find('='));
        if (std::none_of(set.begin(), set.end(), [&](const auto& kv) { return kv.first == name; })) {
            env.emplace_back(entry);
        }
    }
    for (const auto& [name, value] : set) {
        std::string entry = name;
        entry.append("=").append(value);
        env.push_back(std::move(entry));
    }
    return env;
}

std::vector<char*> pointers(std::vector<std::string>& strings)
{
    std::vector<char*> out;
    out.reserve(strings.size() + 1);
    for (auto& s : strings) {
        out.push_back(s.data());
    }
    out.push_back(nullptr);
    return out;
}

int exit_status_of(int status)
{
    if (WIFEXITED(status)) {
        return WEXITSTATUS(status);
    }
    if (WIFSIGNALED(status)) {
        return 128 + WTERMSIG(status);
    }
    return 1;
}

// Waits for the child, passing on the signals meant for it. SIGINT and SIGQUIT from the
// terminal already reached the child (same process group), so only ones sent with kill() are
// passed on; a second copy would make an agent CLI think Ctrl-C was pressed twice.
int wait_for_child(pid_t child, const sigset_t& signals)
{
    for (;;) {
        siginfo_t info{};
        const int sig = sigwaitinfo(&signals, &info);
        if (sig < 0) {
            if (errno == EINTR) {
                continue;
            }
            throw CallError(std::nullopt, kExitLocalError, std::string("sigwaitinfo: ") + std::strerror(errno));
        }
        if (sig == SIGCHLD) {
            int status = 0;
            const pid_t r = ::waitpid(child, &status, WNOHANG);
            if (r == child) {
                return exit_status_of(status);
            }
            continue;
        }
        const bool from_terminal = info.si_code == SI_KERNEL;
        if ((sig == SIGINT || sig == SIGQUIT) && from_terminal) {
            continue;
        }
        (void)::kill(child, sig);
    }
}

int cmd_run(const GlobalOptions& options, const RunOptions& args)
{
    const std::vector<std::string> names = proxy::split_provider_list(args.providers);
    if (names.empty()) {
        throw CallError(std::nullopt, kExitUsage, "run needs --provider NAME[,NAME]...");
    }
    if (args.command.empty()) {
        throw CallError(std::nullopt, kExitUsage, "run needs a command after --");
    }
    const auto clients = proxy::client_settings_from_policy(args.policy_dir, names);

    proxy::ProxyConfig config;
    config.listen.kind = proxy::ListenAddress::Kind::Tcp;
    config.listen.host = "127.0.0.1";
    config.listen.port = 0;
    config.providers = names;
    config.bus_address = options.bus;
    config.token = proxy::generate_token();

    std::string error;
    sigset_t signals;
    sigemptyset(&signals);
    for (int sig : {SIGCHLD, SIGINT, SIGTERM, SIGHUP, SIGQUIT}) {
        sigaddset(&signals, sig);
    }
    // Blocked before the server's threads start, so they inherit the mask and only
    // wait_for_child sees these signals; the child gets an empty mask back.
    if (pthread_sigmask(SIG_BLOCK, &signals, nullptr) != 0) {
        throw CallError(std::nullopt, kExitLocalError, "cannot block signals");
    }
    // Never destroyed: see the end of this function.
    auto* server = new proxy::ProxyServer(config);
    const auto vars =
        proxy::client_environment(clients, proxy::proxy_origin(config.listen, server->port()), config.token, error);
    if (!vars) {
        throw CallError(std::nullopt, kExitUsage, error);
    }
    std::vector<std::string> env = child_environment(*vars);
    std::vector<std::string> argv = args.command;
    std::vector<char*> env_pointers = pointers(env);
    std::vector<char*> argv_pointers = pointers(argv);

    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    sigset_t empty;
    sigemptyset(&empty);
    posix_spawnattr_setsigmask(&attr, &empty);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK);
    pid_t child = -1;
    const int r = posix_spawnp(&child, argv_pointers[0], nullptr, &attr, argv_pointers.data(), env_pointers.data());
    posix_spawnattr_destroy(&attr);
    if (r != 0) {
        std::fprintf(stderr, "vaultctl run: cannot run %s: %s\n", argv[0].c_str(), std::strerror(r));
        std::fflush(nullptr);
        std::_Exit(r == ENOENT ? 127 : 126);
    }
    const int status = wait_for_child(child, signals);
    // The proxy stops with this process: exiting without joining its threads means a request
    // still waiting for upstream headers cannot hold the command's exit status back.
    (void)server;
    std::fflush(nullptr);
    std::_Exit(status);
}

}  // namespace

void add_run_command(CLI::App& app, const GlobalOptions& options, SelectedCommand& selected)
{
    auto args = std::make_shared<RunOptions>();
    auto* cmd = app.add_subcommand(
        "run", "Run a command with its SDK pointed at a private vault proxy: vaultctl run --provider NAME -- COMMAND");
    cmd->add_option("--provider", args->providers, "Providers whose client variables to set (NAME or NAME,NAME)")
        ->required()
        ->expected(1)
        ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
    cmd->add_option("--policy-dir", args->policy_dir, "Where the provider definitions are (the daemon's policy folder)")
        ->capture_default_str();
    cmd->add_option("command", args->command, "The command and its arguments, after --")->required();
    on_selected(cmd, selected, [&options, args] { return cmd_run(options, *args); });
}

}  // namespace codexvault::cli
