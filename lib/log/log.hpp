// One way to write a diagnostic line, with a syslog priority. When stderr is the journal (systemd
// sets JOURNAL_STREAM to stderr's device:inode), each line starts with "<N>" so journald files it
// under that priority, as systemd's own services do; otherwise (a terminal, a test harness) the
// line is plain. Never pass secret bytes: every caller formats only names, counts and errors.
#pragma once

#include <string_view>

namespace codexvault::log {

// The syslog priorities (<syslog.h> numbering) this project uses.
enum class Priority : int {
    Critical = 2,
    Error = 3,
    Warning = 4,
    Notice = 5,
    Info = 6,
    Debug = 7,
};

// Writes `message` and a newline to stderr with one write(2), so concurrent writers never
// interleave within a line; a message longer than 4 KiB is cut there. Never throws; a failed write
// is dropped (there is nowhere else to report it).
void write(Priority priority, std::string_view message) noexcept;

inline void critical(std::string_view message) noexcept
{
    write(Priority::Critical, message);
}
inline void error(std::string_view message) noexcept
{
    write(Priority::Error, message);
}
inline void warning(std::string_view message) noexcept
{
    write(Priority::Warning, message);
}
inline void notice(std::string_view message) noexcept
{
    write(Priority::Notice, message);
}
inline void info(std::string_view message) noexcept
{
    write(Priority::Info, message);
}

// Whether lines carry the "<N>" prefix: decided once, from JOURNAL_STREAM and fstat(2) of stderr.
bool stderr_is_journal() noexcept;

}  // namespace codexvault::log
