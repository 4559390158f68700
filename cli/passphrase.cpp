// Passphrase input for vaultctl: one line from a descriptor (automation) or from the
// controlling terminal with echo off (a person). The bytes go straight into SensitiveBytes.
#include <fcntl.h>
#include <poll.h>
#include <sodium.h>
#include <termios.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <string>
#include <string_view>
#include <system_error>

#include "cli/founder_key.hpp"
#include "lib/fileio/unique_fd.hpp"

namespace codexvault::cli {

namespace {

constexpr std::size_t kMaxPassphraseBytes = 1024;

// Set by the handler SignalGuard installs while the terminal's echo is off.
volatile std::sig_atomic_t g_caught_signal = 0;

void record_signal(int signal_number)
{
    g_caught_signal = signal_number;
}

[[noreturn]] void throw_input(const std::string& message)
{
    throw FounderKeyError(FounderKeyError::Kind::Io, message);
}

std::string errno_text(int error)
{
    return std::error_code(error, std::generic_category()).message();
}

// Reads one line byte by byte, so nothing after the newline is consumed: the descriptor may
// carry more input meant for someone else. Stops at '\n' or end of file; drops one '\r' before
// the newline. With `abort_on_signal`, a signal caught by SignalGuard ends the read.
SensitiveBytes read_line(int fd, const std::string& source, bool abort_on_signal)
{
    // Room for the longest accepted passphrase, a '\r' and one byte that proves the line is too
    // long, so every byte read lands in locked memory.
    SensitiveBytes line(kMaxPassphraseBytes + 2);
    std::size_t length = 0;
    for (;;) {
        if (abort_on_signal && g_caught_signal != 0) {
            throw_input("passphrase entry interrupted");
        }
        if (length == line.capacity()) {
            throw_input("the passphrase from " + source + " is longer than 1024 bytes");
        }
        const ssize_t got = ::read(fd, line.data() + length, 1);
        if (got < 0) {
            const int error = errno;
            if (error == EINTR) {
                if (abort_on_signal && g_caught_signal != 0) {
                    throw_input("passphrase entry interrupted");
                }
                continue;
            }
            if (error == EAGAIN || error == EWOULDBLOCK) {
                // A non-blocking descriptor: wait for input rather than failing on an empty pipe.
                pollfd waiter{fd, POLLIN, 0};
                (void)::poll(&waiter, 1, -1);
                continue;
            }
            throw_input("cannot read the passphrase from " + source + ": " + errno_text(error));
        }
        if (got == 0 || line.data()[length] == '\n') {
            break;
        }
        ++length;
    }
    if (length > 0 && line.data()[length - 1] == '\r') {
        --length;
    }
    if (length > kMaxPassphraseBytes) {
        throw_input("the passphrase from " + source + " is longer than 1024 bytes");
    }
    line.resize(length);  // also wipes the newline and anything past the passphrase
    return line;
}

void write_all(int fd, std::string_view text)
{
    while (!text.empty()) {
        const ssize_t written = ::write(fd, text.data(), text.size());
        if (written < 0) {
            if (errno == EINTR) {
                continue;
            }
            throw_input("cannot write to the terminal: " + errno_text(errno));
        }
        text.remove_prefix(static_cast<std::size_t>(written));
    }
}

// While a prompt is up, SIGINT/SIGTERM/SIGHUP/SIGQUIT are caught instead of killing vaultctl
// with the terminal's echo still off. Handlers are installed without SA_RESTART so the pending
// read() returns EINTR; on the way out the terminal is restored first (EchoOff is destroyed
// before this guard), then the old handlers, and the caught signal is raised again so the
// process ends the way the user asked it to.
class SignalGuard {
public:
    SignalGuard()
    {
        g_caught_signal = 0;
        struct sigaction action {};
        action.sa_handler = record_signal;
        sigemptyset(&action.sa_mask);
        action.sa_flags = 0;
        for (std::size_t i = 0; i < kSignals.size(); ++i) {
            installed_[i] = ::sigaction(kSignals[i], &action, &previous_[i]) == 0;
            if (installed_[i] && previous_[i].sa_handler == SIG_IGN) {
                // An ignored signal (nohup's SIGHUP, say) stays ignored.
                (void)::sigaction(kSignals[i], &previous_[i], nullptr);
                installed_[i] = false;
            }
        }
    }
    SignalGuard(const SignalGuard&) = delete;
    SignalGuard& operator=(const SignalGuard&) = delete;
    ~SignalGuard()
    {
        for (std::size_t i = 0; i < kSignals.size(); ++i) {
            if (installed_[i]) {
                (void)::sigaction(kSignals[i], &previous_[i], nullptr);
            }
        }
        const int caught = g_caught_signal;
        g_caught_signal = 0;
        if (caught != 0) {
            (void)::raise(caught);
        }
    }

private:
    static constexpr std::array<int, 4> kSignals{SIGINT, SIGTERM, SIGHUP, SIGQUIT};
    std::array<struct sigaction, 4> previous_{};
    std::array<bool, 4> installed_{};
};

// Turns echo off on the terminal and puts the saved settings back on every path out.
// TCSAFLUSH both times: input typed before the prompt (which was echoed) is not taken as the
// passphrase, and input left unread at the end (the rest of an over-long line, typed blind) is
// discarded instead of reaching the shell.
class EchoOff {
public:
    explicit EchoOff(int tty) : tty_(tty)
    {
        if (::tcgetattr(tty_, &saved_) != 0) {
            throw_input("cannot read the terminal settings: " + errno_text(errno));
        }
        termios quiet = saved_;
        quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
        quiet.c_lflag |= ECHONL;  // the Enter key still moves to the next line
        if (::tcsetattr(tty_, TCSAFLUSH, &quiet) != 0) {
            throw_input("cannot turn off terminal echo: " + errno_text(errno));
        }
    }
    EchoOff(const EchoOff&) = delete;
    EchoOff& operator=(const EchoOff&) = delete;
    ~EchoOff()
    {
        while (::tcsetattr(tty_, TCSAFLUSH, &saved_) != 0 && errno == EINTR) {
        }
    }

private:
    int tty_;
    termios saved_{};
};

SensitiveBytes prompt_once(int tty, const char* prompt)
{
    const EchoOff quiet(tty);
    // The prompt goes out only once echo is off, so whatever the user types after seeing it
    // is never shown.
    write_all(tty, prompt);
    try {
        return read_line(tty, "the terminal", true);
    } catch (...) {
        // Best effort: leave the shell prompt on a line of its own. The original error matters
        // more than a failed cosmetic write.
        const ssize_t ignored = ::write(tty, "\n", 1);
        (void)ignored;
        throw;
    }
}

}  // namespace

SensitiveBytes read_passphrase_from_fd(int fd)
{
    if (fd < 0) {
        throw_input("invalid passphrase descriptor " + std::to_string(fd));
    }
    return read_line(fd, "descriptor " + std::to_string(fd), false);
}

SensitiveBytes read_passphrase_from_terminal(const char* prompt, bool confirm)
{
    // The controlling terminal, not stdin: stdin may be a pipe carrying other data.
    UniqueFd tty(::open("/dev/tty", O_RDWR | O_CLOEXEC | O_NOCTTY));
    if (!tty) {
        throw_input("no terminal to ask for the passphrase; use --passphrase-fd");
    }
    const SignalGuard signals;
    SensitiveBytes first = prompt_once(tty.get(), prompt);
    if (!confirm) {
        return first;
    }
    const SensitiveBytes second = prompt_once(tty.get(), "Repeat to confirm: ");
    if (first.size() != second.size() || sodium_memcmp(first.data(), second.data(), first.size()) != 0) {
        throw_input("the passphrases do not match");
    }
    return first;
}

}  // namespace codexvault::cli
