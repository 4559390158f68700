// vaultctl exec: asks the daemon for one injection per secret (Inject), then runs a command with
// each value in an environment variable or a file in a private folder, masking the values in the
// command's stdout and stderr (lib/redact) unless --no-mask. vaultctl is the marked recipient;
// the command and its descendants inherit the mark (docs/injection.md).
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sodium.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "cli/cli_support.hpp"
#include "cli/vault_client.hpp"
#include "common/bus_contract.hpp"
#include "common/limits.hpp"
#include "lib/fileio/descriptor_passing.hpp"
#include "lib/fileio/unique_fd.hpp"
#include "lib/redact/needle_set.hpp"
#include "lib/redact/stream_redactor.hpp"

namespace codexvault::cli {
namespace {

struct ExecOptions {
    std::vector<std::string> secrets;  // NAME[=ENVVAR]
    std::vector<std::string> files;    // NAME=FILE
    bool no_mask = false;
    std::uint32_t ttl = 0;
    std::vector<std::string> command;
};

// A value held only as long as the command runs, wiped when dropped.
struct HeldValue {
    std::string name;
    std::string value;
    std::string injection_id;
    ~HeldValue() { sodium_memzero(value.data(), value.size()); }
};

pid_t g_child = -1;

constexpr std::size_t kRelayPipeBytes = 1U << 20U;

void forward_signal(int signo)
{
    if (g_child > 0) {
        (void)::kill(g_child, signo);
    }
}

std::string default_env_name(const std::string& secret)
{
    std::string out;
    for (const char c : secret) {
        out += std::isalnum(static_cast<unsigned char>(c)) != 0 ? static_cast<char>(std::toupper(c)) : '_';
    }
    return out;
}

// The descriptor Inject returned: a memfd_secret can only be mapped; a sealed memfd could be
// read, but mapping works for both.
std::string read_injected(int fd)
{
    struct stat st {};
    if (::fstat(fd, &st) != 0 || st.st_size <= 0) {
        throw CallError(std::nullopt, 1, "the injected descriptor is empty or unreadable");
    }
    const auto size = static_cast<std::size_t>(st.st_size);
    void* map = ::mmap(nullptr, size, PROT_READ, MAP_SHARED, fd, 0);
    if (map == MAP_FAILED) {
        throw CallError(std::nullopt, 1, std::string("mapping the injected secret: ") + std::strerror(errno));
    }
    std::string value(static_cast<const char*>(map), size);
    ::munmap(map, size);
    return value;
}

// The descriptor the daemon sent over our socket (never through the bus daemon).
UniqueFd receive_injected(int socket)
{
    char id[64];
    auto received = fileio::receive_with_descriptors(socket, id, sizeof id, MSG_DONTWAIT);
    if (received.bytes <= 0) {
        throw CallError(std::nullopt, 1, "the daemon sent no descriptor for the injection");
    }
    if (received.truncated || received.descriptors.size() != 1) {
        throw CallError(std::nullopt, 1, "the daemon's message carried no descriptor");
    }
    return std::move(received.descriptors.front());
}

// `file`: an empty file of ours the daemon writes the value into and tracks (-1: none).
HeldValue inject(VaultClient& client, const std::string& name, std::uint32_t ttl, int file = -1)
{
    int pair[2] = {-1, -1};
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0) {
        throw CallError(std::nullopt, 1, std::string("socketpair: ") + std::strerror(errno));
    }
    const UniqueFd ours(pair[0]);
    UniqueFd theirs(pair[1]);
    Message reply = client.call(bus::method::kInject, [&](sd_bus_message* m) {
        check_local(sd_bus_message_append(m, "s", name.c_str()), "append name");
        check_local(sd_bus_message_open_container(m, 'a', "{sv}"), "open options");
        if (ttl != 0) {
            check_local(sd_bus_message_append(m, "{sv}", "ttl", "u", ttl), "append ttl");
        }
        if (file >= 0) {
            check_local(sd_bus_message_append(m, "{sv}", "file", "h", file), "append file");
        }
        check_local(sd_bus_message_close_container(m), "close options");
        check_local(sd_bus_message_append(m, "h", theirs.get()), "append channel");
    });
    theirs.reset();
    const char* id = nullptr;
    check_local(sd_bus_message_read(reply.get(), "s", &id), "read injection");
    HeldValue held;
    held.name = name;
    held.injection_id = id;
    const UniqueFd fd = receive_injected(ours.get());
    held.value = read_injected(fd.get());
    return held;
}

// False when the descriptor stopped taking bytes (for the command's output: the reader went away,
// and the command is still drained).
bool write_all(int fd, const std::uint8_t* data, std::size_t size)
{
    while (size > 0) {
        const ssize_t n = ::write(fd, data, size);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return false;
        }
        data += n;
        size -= static_cast<std::size_t>(n);
    }
    return true;
}

// Copies the command's stdout and stderr through one redactor each until both close.
void relay_masked(int out_fd, int err_fd, const std::shared_ptr<const redact::NeedleSet>& needles)
{
    struct Stream {
        int from;
        int to;
        std::unique_ptr<redact::StreamRedactor> redactor;
    };
    std::vector<Stream> streams;
    streams.push_back({out_fd, STDOUT_FILENO, std::make_unique<redact::StreamRedactor>(needles)});
    streams.push_back({err_fd, STDERR_FILENO, std::make_unique<redact::StreamRedactor>(needles)});
    // One read takes what a whole (enlarged) pipe holds: fewer wake-ups per byte relayed.
    std::vector<std::uint8_t> buffer(kRelayPipeBytes);
    std::vector<std::uint8_t> out;
    std::size_t open = streams.size();
    while (open > 0) {
        std::vector<pollfd> fds;
        fds.reserve(streams.size());
        for (const auto& s : streams) {
            fds.push_back(pollfd{s.from, POLLIN, 0});
        }
        if (::poll(fds.data(), fds.size(), -1) < 0) {
            if (errno == EINTR) {
                continue;
            }
            return;
        }
        for (std::size_t i = 0; i < streams.size(); ++i) {
            Stream& s = streams[i];
            if (s.from < 0 || (fds[i].revents & (POLLIN | POLLHUP | POLLERR)) == 0) {
                continue;
            }
            const ssize_t n = ::read(s.from, buffer.data(), buffer.size());
            if (n < 0 && errno == EINTR) {
                continue;
            }
            out.clear();
            if (n <= 0) {
                s.redactor->finish(out);
                (void)write_all(s.to, out.data(), out.size());  // a gone reader: keep draining
                ::close(s.from);
                s.from = -1;
                --open;
                continue;
            }
            s.redactor->feed({buffer.data(), static_cast<std::size_t>(n)}, out);
            (void)write_all(s.to, out.data(), out.size());
        }
        // A closed stream keeps its slot with fd -1, which poll ignores.
    }
}

int exit_status_of(int status)
{
    if (WIFEXITED(status)) {
        return WEXITSTATUS(status);
    }
    if (WIFSIGNALED(status)) {
        // Pass the signal on: die of it ourselves, as a shell would see the command do.
        const int signo = WTERMSIG(status);
        std::cout.flush();
        (void)::signal(signo, SIG_DFL);
        sigset_t set;
        sigemptyset(&set);
        sigaddset(&set, signo);
        (void)::sigprocmask(SIG_UNBLOCK, &set, nullptr);
        (void)::prctl(PR_SET_DUMPABLE, 0);  // no core of a process that holds the secrets
        (void)::raise(signo);
        return 128 + signo;
    }
    return 1;
}

int cmd_exec(const GlobalOptions& options, const ExecOptions& exec)
{
    if (exec.command.empty()) {
        std::cerr << "vaultctl exec: no command given (vaultctl exec --secret NAME -- COMMAND ...)\n";
        return kExitUsage;
    }
    // vaultctl holds the values from here on: no core dumps, no ptrace by same-uid processes.
    (void)::prctl(PR_SET_DUMPABLE, 0);
    VaultClient client(options.bus);
    std::vector<std::unique_ptr<HeldValue>> values;
    std::vector<std::pair<std::string, std::string>> env;  // ENVVAR, secret index
    auto index_of = [&](const std::string& name) {
        for (std::size_t i = 0; i < values.size(); ++i) {
            if (values[i]->name == name) {
                return i;
            }
        }
        values.push_back(std::make_unique<HeldValue>(inject(client, name, exec.ttl)));
        std::cerr << "vaultctl exec: injection " << values.back()->injection_id << " (" << name << ")\n";
        return values.size() - 1;
    };
    std::vector<std::pair<std::string, std::size_t>> env_vars;
    for (const auto& spec : exec.secrets) {
        const auto eq = spec.find('=');
        const std::string name = spec.substr(0, eq);
        const std::string var = eq == std::string::npos ? default_env_name(name) : spec.substr(eq + 1);
        if (!limits::is_valid_secret_name(name) || var.empty() || var.find('=') != std::string::npos) {
            std::cerr << "vaultctl exec: --secret takes NAME or NAME=ENVVAR\n";
            return kExitUsage;
        }
        env_vars.emplace_back(var, index_of(name));
    }
    std::vector<std::pair<std::string, std::string>> file_specs;  // secret name, file name
    for (const auto& spec : exec.files) {
        const auto eq = spec.find('=');
        if (eq == std::string::npos || spec.find('/', eq) != std::string::npos || eq + 1 == spec.size()) {
            std::cerr << "vaultctl exec: --file takes NAME=FILE (a file name, no folders)\n";
            return kExitUsage;
        }
        const std::string file = spec.substr(eq + 1);
        if (file == "." || file == ".." || !limits::is_valid_secret_name(spec.substr(0, eq))) {
            std::cerr << "vaultctl exec: --file takes NAME=FILE (a file name, no folders)\n";
            return kExitUsage;
        }
        file_specs.emplace_back(spec.substr(0, eq), file);
    }

    // Files: a private folder on tmpfs (/dev/shm), 0700, removed when the command ends. Each file
    // is created empty here and filled by the daemon, which tracks its inode first (one injection
    // per file: the monitor records any touch of it by a process outside the mark).
    std::string folder;
    const auto remove_folder = [&folder] {
        if (!folder.empty()) {
            std::error_code ec;
            std::filesystem::remove_all(folder, ec);
        }
    };
    if (!file_specs.empty()) {
        std::string templ = "/dev/shm/vaultctl-exec-XXXXXX";
        if (::mkdtemp(templ.data()) == nullptr) {
            std::cerr << "vaultctl exec: cannot create the private folder: " << std::strerror(errno) << '\n';
            return 1;
        }
        folder = templ;
        try {
            for (const auto& [name, file] : file_specs) {
                std::string path = folder;
                path += '/';
                path += file;
                const UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600));
                if (!fd) {
                    std::cerr << "vaultctl exec: cannot create " << path << ": " << std::strerror(errno) << '\n';
                    remove_folder();
                    return 1;
                }
                values.push_back(std::make_unique<HeldValue>(inject(client, name, exec.ttl, fd.get())));
                std::cerr << "vaultctl exec: injection " << values.back()->injection_id << " (" << name << " in "
                          << file << ")\n";
            }
        } catch (...) {
            remove_folder();
            throw;
        }
    }

    std::shared_ptr<const redact::NeedleSet> needles;
    if (!exec.no_mask) {
        std::vector<redact::Secret> list;
        list.reserve(values.size());
        for (const auto& v : values) {
            // A secret both in a variable and in a file was injected twice: one needle set each.
            const bool seen =
                std::any_of(list.begin(), list.end(), [&](const redact::Secret& s) { return s.name == v->name; });
            if (!seen) {
                list.push_back(redact::Secret{v->name, redact::bytes_of(v->value), {}});
            }
        }
        redact::BuildResult built = redact::build_needle_set(list);
        if (!built.needles) {
            std::cerr << "vaultctl exec: output masking is not possible (" << built.error
                      << "); use --no-mask to run without it\n";
            remove_folder();
            return 1;
        }
        needles = std::move(built.needles);
    }

    int out_pipe[2] = {-1, -1};
    int err_pipe[2] = {-1, -1};
    if (needles && (::pipe2(out_pipe, O_CLOEXEC) != 0 || ::pipe2(err_pipe, O_CLOEXEC) != 0)) {
        std::cerr << "vaultctl exec: pipe: " << std::strerror(errno) << '\n';
        remove_folder();
        return 1;
    }
    if (needles) {
        // Best effort (the default limit for anyone is 1 MiB): a larger pipe lets the command
        // write on while vaultctl masks, and halves the switches between them.
        (void)::fcntl(out_pipe[1], F_SETPIPE_SZ, static_cast<int>(kRelayPipeBytes));
        (void)::fcntl(err_pipe[1], F_SETPIPE_SZ, static_cast<int>(kRelayPipeBytes));
    }
    std::cout.flush();
    const pid_t child = ::fork();
    if (child < 0) {
        std::cerr << "vaultctl exec: fork: " << std::strerror(errno) << '\n';
        remove_folder();
        return 1;
    }
    if (child == 0) {
        if (needles) {
            ::dup2(out_pipe[1], STDOUT_FILENO);
            ::dup2(err_pipe[1], STDERR_FILENO);
        }
        for (const auto& [var, index] : env_vars) {
            ::setenv(var.c_str(), values[index]->value.c_str(), 1);
        }
        if (!folder.empty()) {
            ::setenv("CODEX_VAULT_SECRETS_DIR", folder.c_str(), 1);
        }
        std::vector<char*> argv;
        for (const auto& a : exec.command) {
            argv.push_back(const_cast<char*>(a.c_str()));
        }
        argv.push_back(nullptr);
        ::execvp(argv[0], argv.data());
        const std::string message = "vaultctl exec: " + exec.command[0] + ": " + std::strerror(errno) + "\n";
        (void)!::write(STDERR_FILENO, message.data(), message.size());
        _exit(errno == ENOENT ? 127 : 126);
    }
    g_child = child;
    struct sigaction forward {};
    forward.sa_handler = forward_signal;
    for (const int signo : {SIGINT, SIGTERM, SIGHUP, SIGQUIT}) {
        (void)::sigaction(signo, &forward, nullptr);
    }
    if (needles) {
        ::close(out_pipe[1]);
        ::close(err_pipe[1]);
        relay_masked(out_pipe[0], err_pipe[0], needles);
    }
    int status = 0;
    while (::waitpid(child, &status, 0) < 0 && errno == EINTR) {
    }
    remove_folder();
    values.clear();
    return exit_status_of(status);
}

}  // namespace

void add_exec_command(CLI::App& app, const GlobalOptions& options, SelectedCommand& selected)
{
    auto exec = std::make_shared<ExecOptions>();
    auto* cmd = app.add_subcommand("exec", "Run a command with secrets injected (needs secret:NAME:inject grants)");
    cmd->add_option("--secret", exec->secrets, "NAME or NAME=ENVVAR: the secret in an environment variable");
    cmd->add_option("--file", exec->files,
                    "NAME=FILE: the secret in $CODEX_VAULT_SECRETS_DIR/FILE (a private tmpfs folder)");
    cmd->add_flag("--no-mask", exec->no_mask, "Do not mask the secrets in the command's output");
    cmd->add_option("--ttl", exec->ttl, "End the injections after this many seconds (default: the grant's expiry)");
    // Everything from the first argument that is not an option of exec (or after "--") is the
    // command, its own options included.
    cmd->prefix_command();
    cmd->fallthrough(false);
    cmd->allow_extras();
    cmd->footer("COMMAND [ARGS...] follows, after --");
    on_selected(cmd, selected, [&options, exec, cmd] {
        exec->command = cmd->remaining();
        if (!exec->command.empty() && exec->command.front() == "--") {
            exec->command.erase(exec->command.begin());
        }
        return cmd_exec(options, *exec);
    });
}

}  // namespace codexvault::cli
