// Integration-test harness: a private dbus-daemon, the real codex-vaultd and vaultctl binaries,
// all in a per-test temporary folder. Nothing here imitates a component we ship.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cli/vault_client.hpp"

namespace codexvault::test {

inline constexpr uid_t kNobody = 65534;
inline constexpr const char* kPassphrase = "correct horse battery staple";

struct CommandResult {
    int exit_code = -1;
    std::string out;
    std::string err;
};

struct CommandOptions {
    std::string stdin_data;
    std::optional<std::string> passphrase;  // written to fd 3 (use --passphrase-fd 3)
    std::optional<uid_t> as_uid;            // run through setpriv with this uid/gid
};

class VaultEnv {
public:
    VaultEnv();  // creates the folder (0755), starts the bus and the daemon
    // start_daemon_now = false: the bus runs but the daemon does not, so a test can prepare the
    // state folder first (e.g. mount a small file system on state_dir()), then call start_daemon().
    explicit VaultEnv(bool start_daemon_now);
    ~VaultEnv();
    VaultEnv(const VaultEnv&) = delete;
    VaultEnv& operator=(const VaultEnv&) = delete;

    [[nodiscard]] const std::string& bus_address() const { return bus_address_; }
    [[nodiscard]] const std::string& state_dir() const { return state_dir_; }
    [[nodiscard]] const std::string& root() const { return root_; }
    [[nodiscard]] std::string founder_key() const { return root_ + "/founder.key"; }
    [[nodiscard]] std::string policy_dir() const { return root_ + "/policy.d"; }
    [[nodiscard]] pid_t daemon_pid() const { return daemon_pid_; }

    // Starts the daemon under a wrapper command from the next start_daemon() on: `argv` (e.g.
    // {"strace", "-f", "-o", FILE, "--"}) comes first, then the daemon's own command line. The
    // daemon must be a descendant of the wrapper: daemon_pid() is then the daemon's own pid (found
    // after READY=1), signals go to it, and stop_daemon()/kill_daemon() wait for the wrapper, whose
    // exit status must be the daemon's (as strace's is). An empty `argv` removes the wrapper.
    void set_daemon_wrapper(std::vector<std::string> argv);

    void start_daemon();
    void stop_daemon();  // SIGTERM and wait; asserts a clean exit
    void kill_daemon();  // SIGKILL and wait: a crash (no stop record, no final checkpoint)
    [[nodiscard]] std::string daemon_log() const;

    // vaultctl with --bus set; `args` follow the program name.
    CommandResult vaultctl(const std::vector<std::string>& args, const CommandOptions& options = {}) const;
    // vaultctl as the founder: `args`, then the founder key (founder_key() unless `key_path`) and
    // the standard passphrase on fd 3.
    CommandResult as_founder(const std::vector<std::string>& args, const std::string& stdin_data = "",
                             const std::string& key_path = "") const;
    // Writes `content` as the test's policy file (policy_dir()/50-test.toml, 0644).
    void write_test_policy(const std::string& content) const;
    void restart_daemon();  // stop_daemon() then start_daemon()
    // init with the standard passphrase; asserts success.
    void init_founder() const;
    [[nodiscard]] cli::FounderKeyPair load_founder() const;

private:
    int signal_and_reap(int signal);  // signals the daemon, waits for it (or its wrapper); the wait status

    std::string root_;
    std::string bus_address_;
    std::string state_dir_;
    std::string log_path_;
    std::string config_path_;
    pid_t bus_pid_ = -1;
    pid_t daemon_pid_ = -1;
    std::vector<std::string> daemon_wrapper_;
    pid_t wrapper_pid_ = -1;  // the wrapper's pid while a wrapped daemon runs; -1 otherwise
};

// The suite fixture: one VaultEnv per test (Criterion runs each test in its own process).
// Use `TestSuite(name, .init = start_env, .fini = stop_env)`.
extern std::unique_ptr<VaultEnv> env;
void start_env();
void start_env_with_founder();  // start_env() then init_founder()
void stop_env();

CommandResult run_command(const std::vector<std::string>& argv, const CommandOptions& options = {});

// The source tree (units/, policy/examples), wherever the build folder is.
std::string source_dir();

// Runs `body` in a child process whose uid, gid and groups are `uid` (no capabilities), and
// returns its exit status. `body` returns the status (e.g. a CallError's exit code).
int run_as(uid_t uid, const std::function<int()>& body);

// Calls `body` and returns the CallError exit code it threw, or 0 when it threw nothing.
int exit_code_of(const std::function<void()>& body);

// All regular files below `dir`, concatenated (for canary searches).
std::string read_tree(const std::string& dir);
// The daemon sets the append-only inode flag on audit segments when it can (it starts as root
// in these tests): tests that tamper with a segment, and the clean-up, clear it first.
bool set_append_only(const std::string& path, bool on);
void clear_append_only_flags(const std::string& dir);
std::string random_canary();

// A whole file as text; asserts it can be opened.
std::string read_text_file(const std::string& path);
// Replaces `path` with `text`, mode 0600 (as an attacker with the daemon's uid would write it).
void write_private_file(const std::string& path, const std::string& text);
// `text` without trailing newlines and spaces (a command's one-line output).
std::string trim_trailing_space(std::string text);

}  // namespace codexvault::test
