#include "tests/support/harness.hpp"

#include <fcntl.h>
#include <grp.h>
#include <linux/fs.h>
#include <poll.h>
#include <signal.h>
#include <sodium.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <thread>

#include "lib/fileio/unique_fd.hpp"

namespace codexvault::test {
namespace fs = std::filesystem;
namespace {

std::string build_dir()
{
    const char* dir = std::getenv("CODEX_VAULT_BUILD");
    cr_assert(dir != nullptr, "CODEX_VAULT_BUILD must point at the build folder (make integration-test sets it)");
    return dir;
}

// A file that may be gone by now (a /proc entry, a log not yet written): empty then.
std::string read_text_or_empty(const std::string& path)
{
    std::ifstream in(path);
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

}  // namespace

// The source tree: CODEX_VAULT_SOURCE (make sets it, so a build folder may live anywhere), else
// the build folder's parent.
std::string source_dir()
{
    const char* dir = std::getenv("CODEX_VAULT_SOURCE");
    return dir != nullptr ? std::string(dir) : fs::path(build_dir()).parent_path().string();
}

namespace {

void write_all(int fd, const std::string& data)
{
    std::size_t done = 0;
    while (done < data.size()) {
        const ssize_t n = ::write(fd, data.data() + done, data.size() - done);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return;  // the reader went away; the command's exit status tells the story
        }
        done += static_cast<std::size_t>(n);
    }
}

// Copies a binary into the test folder so an unprivileged uid can run it even when the
// checkout lives in a private folder (a fresh clone in mktemp -d is 0700).
std::string stage_binary(const std::string& root, const std::string& name)
{
    const std::string target = root + "/bin/" + name;
    fs::create_directories(root + "/bin");
    fs::copy_file(build_dir() + "/" + name, target, fs::copy_options::overwrite_existing);
    ::chmod(target.c_str(), 0755);
    return target;
}

// Reads one line from `fd` (dbus-daemon --print-address), waiting at most `timeout`; empty when
// none arrived (the child died or said nothing).
std::string read_line_within(int fd, std::chrono::milliseconds timeout)
{
    std::string line;
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (line.find('\n') == std::string::npos) {
        const auto left =
            std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) {
            return {};
        }
        pollfd pfd{fd, POLLIN, 0};
        const int r = ::poll(&pfd, 1, static_cast<int>(left.count()));
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r <= 0) {
            return {};
        }
        char buffer[512];
        const ssize_t n = ::read(fd, buffer, sizeof buffer);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return {};
        }
        line.append(buffer, static_cast<std::size_t>(n));
    }
    return line.substr(0, line.find('\n'));
}

// A datagram socket the daemon's sd_notify() reaches (NOTIFY_SOCKET), as systemd provides one.
UniqueFd bind_notify_socket(const std::string& path)
{
    UniqueFd fd(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    cr_assert(fd, "notify socket: %s", std::strerror(errno));
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    cr_assert_lt(path.size(), sizeof address.sun_path, "notify socket path too long: %s", path.c_str());
    std::memcpy(address.sun_path, path.c_str(), path.size() + 1);
    (void)::unlink(path.c_str());
    cr_assert_eq(::bind(fd.get(), reinterpret_cast<const sockaddr*>(&address), sizeof address), 0, "bind %s: %s",
                 path.c_str(), std::strerror(errno));
    return fd;
}

// Waits for READY=1 on the notify socket, as systemd does for Type=notify: true once it arrives;
// false when the daemon exits first or 30 s pass.
bool wait_for_ready(int notify_fd, pid_t daemon_pid)
{
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (std::chrono::steady_clock::now() < deadline) {
        pollfd pfd{notify_fd, POLLIN, 0};
        const int r = ::poll(&pfd, 1, 100);
        if (r > 0) {
            char message[4096];
            const ssize_t n = ::recv(notify_fd, message, sizeof message - 1, 0);
            if (n > 0) {
                message[n] = '\0';
                // sd_notify sends newline-separated assignments; READY=1 may share a datagram.
                std::istringstream lines(message);
                for (std::string line; std::getline(lines, line);) {
                    if (line == "READY=1") {
                        return true;
                    }
                }
            }
            continue;
        }
        int status = 0;
        if (::waitpid(daemon_pid, &status, WNOHANG) == daemon_pid) {
            return false;
        }
    }
    return false;
}

// A test that aborts mid-way (a failed cr_assert) must not leave its bus and daemon running.
void die_with_parent()
{
    if (::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) {
        _exit(126);
    }
}

// The descendant of `ancestor` whose command name is `comm` (the daemon started under a wrapper
// such as strace), or -1. Walks /proc rather than /proc/PID/task/TID/children, which needs
// CONFIG_PROC_CHILDREN.
pid_t find_descendant(pid_t ancestor, const std::string& comm)
{
    std::vector<std::pair<pid_t, pid_t>> parents;  // (pid, ppid) of every process named `comm`
    std::vector<std::pair<pid_t, pid_t>> all;
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator("/proc", ec)) {
        const std::string name = entry.path().filename().string();
        if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) {
            continue;
        }
        // "pid (comm) state ppid ...": comm may hold spaces and parentheses, so cut at the last ')'.
        const std::string stat = read_text_or_empty(entry.path().string() + "/stat");
        const std::size_t open = stat.find('(');
        const std::size_t close = stat.rfind(')');
        if (open == std::string::npos || close == std::string::npos || close < open) {
            continue;
        }
        std::istringstream rest(stat.substr(close + 1));
        std::string state;
        pid_t ppid = 0;
        if (!(rest >> state >> ppid)) {
            continue;
        }
        const pid_t pid = static_cast<pid_t>(std::stol(name));
        all.emplace_back(pid, ppid);
        if (stat.substr(open + 1, close - open - 1) == comm) {
            parents.emplace_back(pid, ppid);
        }
    }
    for (const auto& [pid, ppid] : parents) {
        pid_t up = ppid;
        for (int depth = 0; depth < 16 && up > 1; ++depth) {
            if (up == ancestor) {
                return pid;
            }
            const auto it = std::find_if(all.begin(), all.end(), [up](const auto& p) { return p.first == up; });
            up = it == all.end() ? 0 : it->second;
        }
    }
    return -1;
}

}  // namespace

std::unique_ptr<VaultEnv> env;

void start_env()
{
    env = std::make_unique<VaultEnv>();
}

void start_env_with_founder()
{
    start_env();
    env->init_founder();
}

void stop_env()
{
    env.reset();
}

CommandResult run_command(const std::vector<std::string>& argv, const CommandOptions& options)
{
    std::vector<std::string> full;
    if (options.as_uid) {
        const std::string id = std::to_string(*options.as_uid);
        // No capabilities at all, even for uid 0: a capless root caller is what the daemon can read.
        full = {"setpriv", "--reuid=" + id, "--regid=" + id, "--clear-groups", "--inh-caps=-all", "--bounding-set=-all",
                "--"};
    }
    full.insert(full.end(), argv.begin(), argv.end());

    int in_pipe[2], out_pipe[2], err_pipe[2], pass_pipe[2] = {-1, -1};
    cr_assert(::pipe2(in_pipe, O_CLOEXEC) == 0 && ::pipe2(out_pipe, O_CLOEXEC) == 0 &&
              ::pipe2(err_pipe, O_CLOEXEC) == 0);
    if (options.passphrase) {
        cr_assert(::pipe2(pass_pipe, O_CLOEXEC) == 0);
    }
    const pid_t pid = ::fork();
    cr_assert(pid >= 0, "fork: %s", std::strerror(errno));
    if (pid == 0) {
        ::dup2(in_pipe[0], 0);
        ::dup2(out_pipe[1], 1);
        ::dup2(err_pipe[1], 2);
        if (options.passphrase) {
            ::dup2(pass_pipe[0], 3);
        }
        std::vector<char*> args;
        for (auto& a : full) {
            args.push_back(a.data());
        }
        args.push_back(nullptr);
        ::execvp(args[0], args.data());
        _exit(127);
    }
    UniqueFd in_write(in_pipe[1]), out_read(out_pipe[0]), err_read(err_pipe[0]);
    UniqueFd(in_pipe[0]).reset();
    UniqueFd(out_pipe[1]).reset();
    UniqueFd(err_pipe[1]).reset();
    if (options.passphrase) {
        UniqueFd pass_write(pass_pipe[1]);
        UniqueFd(pass_pipe[0]).reset();
        write_all(pass_write.get(), *options.passphrase + "\n");
    }
    ::signal(SIGPIPE, SIG_IGN);
    write_all(in_write.get(), options.stdin_data);
    in_write.reset();

    CommandResult result;
    std::array<pollfd, 2> fds{{{out_read.get(), POLLIN, 0}, {err_read.get(), POLLIN, 0}}};
    std::array<std::string*, 2> sinks{&result.out, &result.err};
    int open_streams = 2;
    while (open_streams > 0) {
        if (::poll(fds.data(), fds.size(), 30000) <= 0) {
            break;
        }
        for (std::size_t i = 0; i < fds.size(); ++i) {
            if (fds[i].fd >= 0 && (fds[i].revents & (POLLIN | POLLHUP)) != 0) {
                char buffer[4096];
                const ssize_t n = ::read(fds[i].fd, buffer, sizeof buffer);
                if (n <= 0) {
                    fds[i].fd = -1;
                    --open_streams;
                } else {
                    sinks[i]->append(buffer, static_cast<std::size_t>(n));
                }
            }
        }
    }
    int status = 0;
    ::waitpid(pid, &status, 0);
    result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return result;
}

int run_as(uid_t uid, const std::function<int()>& body)
{
    const pid_t pid = ::fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        const gid_t gid = uid;
        if (::setgroups(0, nullptr) != 0 || ::setresgid(gid, gid, gid) != 0 || ::setresuid(uid, uid, uid) != 0) {
            _exit(126);
        }
        int code = 125;
        try {
            code = body();
        } catch (...) {
            code = 124;
        }
        _exit(code);
    }
    int status = 0;
    ::waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

int exit_code_of(const std::function<void()>& body)
{
    try {
        body();
    } catch (const cli::CallError& e) {
        return e.exit_code();
    }
    return 0;
}

VaultEnv::VaultEnv() : VaultEnv(true)
{
}

VaultEnv::VaultEnv(bool start_daemon_now)
{
    char templ[] = "/tmp/codex-vault-test.XXXXXX";
    cr_assert(::mkdtemp(templ) != nullptr, "mkdtemp: %s", std::strerror(errno));
    root_ = templ;
    ::chmod(root_.c_str(), 0755);
    state_dir_ = root_ + "/state";
    log_path_ = root_ + "/daemon.log";
    const std::string socket_dir = root_ + "/bus";
    fs::create_directory(socket_dir);
    ::chmod(socket_dir.c_str(), 0755);
    bus_address_ = "unix:path=" + socket_dir + "/socket";
    stage_binary(root_, "vaultctl");
    stage_binary(root_, "codex-vaultd");
    // The founder is whoever runs the tests (root in CI), so a developer's own run works too.
    fs::create_directory(policy_dir());
    ::chmod(policy_dir().c_str(), 0755);
    config_path_ = root_ + "/codex-vaultd.toml";
    std::ofstream(config_path_) << "founder_uid = " << ::geteuid() << "\n";

    // dbus-daemon prints its address once it listens (--print-address), so the test waits for that
    // line rather than polling for the socket file.
    int address_pipe[2] = {-1, -1};
    cr_assert_eq(::pipe2(address_pipe, O_CLOEXEC), 0);
    UniqueFd address_read(address_pipe[0]);
    UniqueFd address_write(address_pipe[1]);
    bus_pid_ = ::fork();
    cr_assert(bus_pid_ >= 0);
    if (bus_pid_ == 0) {
        die_with_parent();
        // dbus-daemon's own warnings (e.g. it cannot raise its fd limit in a container) are kept
        // beside the test's files rather than mixed into the test report.
        const std::string bus_log = root_ + "/bus.log";
        const int log = ::open(bus_log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        ::dup2(log, 1);
        ::dup2(log, 2);
        ::dup2(address_write.get(), 3);  // dup2 clears close-on-exec on the copy
        const std::string config = "--config-file=" + source_dir() + "/units/dev-bus.conf";
        const std::string address = "--address=" + bus_address_;
        ::execlp("dbus-daemon", "dbus-daemon", config.c_str(), address.c_str(), "--nofork", "--nopidfile",
                 "--print-address=3", static_cast<char*>(nullptr));
        _exit(127);
    }
    address_write.reset();
    const std::string printed = read_line_within(address_read.get(), std::chrono::seconds(10));
    cr_assert(!printed.empty(), "private dbus-daemon did not print its address; log:\n%s",
              read_text_or_empty(root_ + "/bus.log").c_str());
    // The printed address carries a guid; clients connect by the path alone, as before.
    cr_assert(printed.rfind(bus_address_, 0) == 0, "dbus-daemon listens on %s, not %s", printed.c_str(),
              bus_address_.c_str());
    if (start_daemon_now) {
        start_daemon();
    }
}

void clear_append_only_flags(const std::string& dir)
{
    std::error_code ec;
    for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::recursive_directory_iterator();
         it.increment(ec)) {
        if (it->is_regular_file(ec)) {
            set_append_only(it->path().string(), false);
        }
    }
}

bool set_append_only(const std::string& path, bool on)
{
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        return false;
    }
    int flags = 0;
    bool ok = ::ioctl(fd, FS_IOC_GETFLAGS, &flags) == 0;
    if (ok) {
        flags = on ? (flags | FS_APPEND_FL) : (flags & ~FS_APPEND_FL);
        ok = ::ioctl(fd, FS_IOC_SETFLAGS, &flags) == 0;
    }
    ::close(fd);
    return ok;
}

VaultEnv::~VaultEnv()
{
    if (wrapper_pid_ > 0) {
        // The daemon first: a tracer killed before its tracee would leave it running, detached.
        if (daemon_pid_ > 0 && daemon_pid_ != wrapper_pid_) {
            ::kill(daemon_pid_, SIGKILL);
        }
        ::kill(wrapper_pid_, SIGKILL);
        ::waitpid(wrapper_pid_, nullptr, 0);
    } else if (daemon_pid_ > 0) {
        ::kill(daemon_pid_, SIGKILL);
        ::waitpid(daemon_pid_, nullptr, 0);
    }
    if (bus_pid_ > 0) {
        ::kill(bus_pid_, SIGTERM);
        ::waitpid(bus_pid_, nullptr, 0);
    }
    std::error_code ec;
    clear_append_only_flags(root_);
    fs::remove_all(root_, ec);
}

void VaultEnv::set_daemon_wrapper(std::vector<std::string> argv)
{
    daemon_wrapper_ = std::move(argv);
}

void VaultEnv::start_daemon()
{
    // Ready means what it means under systemd: the daemon sent READY=1, after it took its name,
    // hardened itself and wrote its start-up records.
    const std::string notify_path = root_ + "/notify.sock";
    const UniqueFd notify = bind_notify_socket(notify_path);
    daemon_pid_ = ::fork();
    cr_assert(daemon_pid_ >= 0);
    if (daemon_pid_ == 0) {
        die_with_parent();
        const int log = ::open(log_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        ::dup2(log, 1);
        ::dup2(log, 2);
        ::setenv("NOTIFY_SOCKET", notify_path.c_str(), 1);
        const std::string binary = root_ + "/bin/codex-vaultd";
        if (!daemon_wrapper_.empty()) {
            std::vector<std::string> full = daemon_wrapper_;
            full.insert(full.end(), {binary, "--bus", bus_address_, "--state-dir", state_dir_, "--config", config_path_,
                                     "--policy-dir", policy_dir()});
            std::vector<char*> args;
            for (auto& a : full) {
                args.push_back(a.data());
            }
            args.push_back(nullptr);
            ::execvp(args[0], args.data());
            _exit(127);
        }
        ::execl(binary.c_str(), binary.c_str(), "--bus", bus_address_.c_str(), "--state-dir", state_dir_.c_str(),
                "--config", config_path_.c_str(), "--policy-dir", policy_dir().c_str(), static_cast<char*>(nullptr));
        _exit(127);
    }
    if (!daemon_wrapper_.empty()) {
        wrapper_pid_ = daemon_pid_;
    }
    const bool ready = wait_for_ready(notify.get(), daemon_pid_);
    (void)::unlink(notify_path.c_str());
    cr_assert(ready, "codex-vaultd did not send READY=1; log:\n%s", daemon_log().c_str());
    if (wrapper_pid_ > 0) {
        daemon_pid_ = find_descendant(wrapper_pid_, "codex-vaultd");
        cr_assert(daemon_pid_ > 0, "codex-vaultd is not a descendant of its wrapper %s (pid %d)",
                  daemon_wrapper_.front().c_str(), wrapper_pid_);
    }
}

// A wrapped daemon: the signal goes to the daemon, the wait to the wrapper (its parent).
int VaultEnv::signal_and_reap(int signal)
{
    const pid_t waited = wrapper_pid_ > 0 ? wrapper_pid_ : daemon_pid_;
    ::kill(daemon_pid_, signal);
    int status = 0;
    ::waitpid(waited, &status, 0);
    daemon_pid_ = -1;
    wrapper_pid_ = -1;
    return status;
}

void VaultEnv::stop_daemon()
{
    cr_assert(daemon_pid_ > 0);
    const int status = signal_and_reap(SIGTERM);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "codex-vaultd did not stop cleanly (status %d)", status);
}

void VaultEnv::kill_daemon()
{
    cr_assert(daemon_pid_ > 0);
    (void)signal_and_reap(SIGKILL);
}

std::string VaultEnv::daemon_log() const
{
    std::ifstream in(log_path_);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
}

CommandResult VaultEnv::vaultctl(const std::vector<std::string>& args, const CommandOptions& options) const
{
    std::vector<std::string> argv{root_ + "/bin/vaultctl", "--bus", bus_address_};
    argv.insert(argv.end(), args.begin(), args.end());
    return run_command(argv, options);
}

CommandResult VaultEnv::as_founder(const std::vector<std::string>& args, const std::string& stdin_data,
                                   const std::string& key_path) const
{
    std::vector<std::string> full = args;
    full.insert(full.end(), {"--founder-key", key_path.empty() ? founder_key() : key_path, "--passphrase-fd", "3"});
    return vaultctl(full, {.stdin_data = stdin_data, .passphrase = kPassphrase, .as_uid = std::nullopt});
}

void VaultEnv::write_test_policy(const std::string& content) const
{
    const std::string path = policy_dir() + "/50-test.toml";
    std::ofstream(path, std::ios::trunc) << content;
    cr_assert_eq(::chmod(path.c_str(), 0644), 0, "chmod %s: %s", path.c_str(), std::strerror(errno));
}

void VaultEnv::restart_daemon()
{
    stop_daemon();
    start_daemon();
}

void VaultEnv::init_founder() const
{
    CommandOptions options;
    options.passphrase = kPassphrase;
    const auto result = vaultctl({"init", "--founder-key", founder_key(), "--passphrase-fd", "3"}, options);
    cr_assert_eq(result.exit_code, 0, "vaultctl init failed: %s", result.err.c_str());
}

cli::FounderKeyPair VaultEnv::load_founder() const
{
    const std::string passphrase = kPassphrase;
    return cli::load_founder_key_file(
        founder_key(), std::span(reinterpret_cast<const std::uint8_t*>(passphrase.data()), passphrase.size()));
}

std::string read_text_file(const std::string& path)
{
    std::ifstream in(path, std::ios::binary);
    cr_assert(in.good(), "cannot read %s", path.c_str());
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_private_file(const std::string& path, const std::string& text)
{
    {
        std::ofstream out(path, std::ios::binary | std::ios::trunc);
        out << text;
        cr_assert(out.good(), "cannot write %s", path.c_str());
    }
    cr_assert_eq(::chmod(path.c_str(), 0600), 0, "chmod %s: %s", path.c_str(), std::strerror(errno));
}

std::string trim_trailing_space(std::string text)
{
    while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) {
        text.pop_back();
    }
    return text;
}

std::string read_tree(const std::string& dir)
{
    std::string all;
    std::error_code ec;
    for (const auto& entry : fs::recursive_directory_iterator(dir, ec)) {
        if (entry.is_regular_file()) {
            std::ifstream in(entry.path(), std::ios::binary);
            std::stringstream text;
            text << in.rdbuf();
            all += text.str();
        }
    }
    return all;
}

std::string random_canary()
{
    static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    std::string canary = "sk-canary-";
    for (int i = 0; i < 32; ++i) {
        canary += kAlphabet[randombytes_uniform(sizeof kAlphabet - 1)];
    }
    return canary;
}

}  // namespace codexvault::test
