#include "daemon/identity/proc_entry.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <charconv>
#include <stdexcept>
#include <system_error>

namespace codexvault::identity {
namespace {

// Above NGROUPS_MAX (65,536) groups of ten digits each, so a real status is never cut; text
// beyond it is refused, not parsed short.
constexpr std::size_t kMaxProcFileBytes = 1024 * 1024;
// status (about 1.5 KiB) and cgroup fit here for any ordinary process; longer text spills.
constexpr std::size_t kStackBytes = 4096;

template <typename T>
bool parse_number(std::string_view text, T& out)
{
    const auto* end = text.data() + text.size();
    auto [ptr, ec] = std::from_chars(text.data(), end, out);
    return ec == std::errc() && ptr == end;
}

bool is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\n';
}

// The next blank-separated field of `text` at or after `pos`; empty when there is none.
std::string_view next_field(std::string_view text, std::size_t& pos)
{
    while (pos < text.size() && is_blank(text[pos])) {
        ++pos;
    }
    const std::size_t start = pos;
    while (pos < text.size() && !is_blank(text[pos])) {
        ++pos;
    }
    return text.substr(start, pos - start);
}

// The text of a /proc file, read from offset 0 without an allocation in the common case.
class ProcText {
public:
    // A seq_file read returns less than asked only when the text is over, and a read that
    // continues where the previous one stopped copies on from the same rendering, so the text
    // is one consistent snapshot. (Should a read ever stop short anyway, the parsers refuse a
    // line without its newline.)
    std::string_view read(int fd, const char* name)
    {
        std::size_t got = 0;
        while (got < stack_.size()) {
            const ssize_t n = ::pread(fd, stack_.data() + got, stack_.size() - got, static_cast<off_t>(got));
            if (n < 0) {
                if (errno == EINTR) {
                    continue;
                }
                throw failure(errno, name);
            }
            got += static_cast<std::size_t>(n);
            if (n == 0 || got < stack_.size()) {
                return {stack_.data(), got};
            }
        }
        spill_.assign(stack_.data(), got);
        while (spill_.size() <= kMaxProcFileBytes) {
            const ssize_t n = ::pread(fd, stack_.data(), stack_.size(), static_cast<off_t>(spill_.size()));
            if (n < 0) {
                if (errno == EINTR) {
                    continue;
                }
                throw failure(errno, name);
            }
            if (n == 0) {
                return spill_;
            }
            spill_.append(stack_.data(), static_cast<std::size_t>(n));
        }
        throw failure(EFBIG, name);
    }

private:
    static std::system_error failure(int error, const char* name)
    {
        return std::system_error(error, std::generic_category(), std::string("read /proc/PID/") + name);
    }

    std::array<char, kStackBytes> stack_;
    std::string spill_;
};

UniqueFd open_in(int dir, const char* name)
{
    return UniqueFd(::openat(dir, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
}

}  // namespace

std::optional<ProcStatus> parse_proc_status(std::string_view text)
{
    ProcStatus status;
    bool have_uid = false;
    bool have_gid = false;
    bool have_groups = false;
    // The kernel writes Uid, Gid and Groups once each, near the top; nothing after them is read.
    while (!text.empty() && !(have_uid && have_gid && have_groups)) {
        const auto newline = text.find('\n');
        const bool complete = newline != std::string_view::npos;
        const auto line = text.substr(0, newline);
        text = complete ? text.substr(newline + 1) : std::string_view();
        const auto colon = line.find(':');
        if (colon == std::string_view::npos) {
            continue;
        }
        const auto key = line.substr(0, colon);
        const auto values = line.substr(colon + 1);
        std::size_t pos = 0;
        if (key == "Uid") {
            const auto real = next_field(values, pos);
            const auto effective = next_field(values, pos);
            if (!complete || !parse_number(real, status.real_uid) || !parse_number(effective, status.effective_uid)) {
                return std::nullopt;
            }
            have_uid = true;
        } else if (key == "Gid") {
            (void)next_field(values, pos);
            if (!complete || !parse_number(next_field(values, pos), status.effective_gid)) {
                return std::nullopt;
            }
            have_gid = true;
        } else if (key == "Groups") {
            if (!complete) {
                return std::nullopt;
            }
            for (auto field = next_field(values, pos); !field.empty(); field = next_field(values, pos)) {
                gid_t group = 0;
                if (!parse_number(field, group)) {
                    return std::nullopt;
                }
                status.groups.push_back(group);
            }
            have_groups = true;
        }
    }
    if (!have_uid || !have_gid) {
        return std::nullopt;
    }
    return status;
}

std::optional<std::uint64_t> parse_start_time(std::string_view stat_text)
{
    // The command name (field 2) is in parentheses and may itself contain ") ", so the fixed
    // fields are counted from the last ')'. starttime is field 22, i.e. the 20th after it.
    const auto close = stat_text.rfind(')');
    if (close == std::string_view::npos) {
        return std::nullopt;
    }
    const auto rest = stat_text.substr(close + 1);
    constexpr std::size_t kStartTimeIndex = 19;
    std::size_t pos = 0;
    std::string_view field;
    for (std::size_t i = 0; i <= kStartTimeIndex; ++i) {
        field = next_field(rest, pos);
    }
    std::uint64_t start = 0;
    if (field.empty() || !parse_number(field, start)) {
        return std::nullopt;
    }
    return start;
}

std::string parse_unified_cgroup(std::string_view cgroup_text)
{
    while (!cgroup_text.empty()) {
        const auto newline = cgroup_text.find('\n');
        if (newline == std::string_view::npos) {
            return {};  // cut short: the path may be incomplete
        }
        const auto line = cgroup_text.substr(0, newline);
        if (line.substr(0, 3) == "0::") {
            return std::string(line.substr(3));
        }
        cgroup_text.remove_prefix(newline + 1);
    }
    return {};
}

ProcEntry::ProcEntry(pid_t pid)
{
    const std::string path = "/proc/" + std::to_string(pid);
    dir_.reset(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!dir_) {
        throw std::system_error(errno, std::generic_category(), "open " + path);
    }
    status_ = open_in(dir_.get(), "status");
    if (!status_) {
        throw std::system_error(errno, std::generic_category(), "open " + path + "/status");
    }
    cgroup_ = open_in(dir_.get(), "cgroup");
    if (!cgroup_ && (errno == EMFILE || errno == ENFILE)) {
        throw std::system_error(errno, std::generic_category(), "open " + path + "/cgroup");
    }
}

ProcStatus ProcEntry::status() const
{
    ProcText text;
    auto parsed = parse_proc_status(text.read(status_.get(), "status"));
    if (!parsed) {
        throw std::runtime_error("malformed /proc/PID/status");
    }
    return std::move(*parsed);
}

std::uint64_t ProcEntry::start_time() const
{
    const UniqueFd fd = open_in(dir_.get(), "stat");
    if (!fd) {
        throw std::system_error(errno, std::generic_category(), "open /proc/PID/stat");
    }
    ProcText text;
    auto parsed = parse_start_time(text.read(fd.get(), "stat"));
    if (!parsed) {
        throw std::runtime_error("malformed /proc/PID/stat");
    }
    return *parsed;
}

std::string ProcEntry::cgroup() const
{
    if (!cgroup_) {
        return {};
    }
    try {
        ProcText text;
        return parse_unified_cgroup(text.read(cgroup_.get(), "cgroup"));
    } catch (const std::system_error&) {
        return {};
    }
}

std::optional<ProcExe> ProcEntry::exe() const
{
    std::array<char, 4096> buffer{};
    const ssize_t n = ::readlinkat(dir_.get(), "exe", buffer.data(), buffer.size());
    if (n < 0 || static_cast<std::size_t>(n) >= buffer.size()) {
        return std::nullopt;
    }
    ProcExe exe;
    if (::fstatat(dir_.get(), "exe", &exe.file, 0) != 0) {
        return std::nullopt;
    }
    exe.path.assign(buffer.data(), static_cast<std::size_t>(n));
    exe.device = exe.file.st_dev;
    exe.inode = exe.file.st_ino;
    return exe;
}

UniqueFd ProcEntry::open_exe() const
{
    return UniqueFd(::openat(dir_.get(), "exe", O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK));
}

}  // namespace codexvault::identity
