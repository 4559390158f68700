#include "daemon/identity/proc_entry.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <charconv>
#include <string_view>
#include <system_error>

namespace codexvault::identity {
namespace {

constexpr std::size_t kMaxProcFileBytes = 64 * 1024;

template <typename T>
bool parse_number(std::string_view text, T& out)
{
    const auto* end = text.data() + text.size();
    auto [ptr, ec] = std::from_chars(text.data(), end, out);
    return ec == std::errc() && ptr == end;
}

std::vector<std::string_view> split_whitespace(std::string_view text)
{
    std::vector<std::string_view> fields;
    std::size_t pos = 0;
    while (pos < text.size()) {
        while (pos < text.size() && (text[pos] == ' ' || text[pos] == '\t' || text[pos] == '\n')) {
            ++pos;
        }
        const std::size_t start = pos;
        while (pos < text.size() && text[pos] != ' ' && text[pos] != '\t' && text[pos] != '\n') {
            ++pos;
        }
        if (pos > start) {
            fields.push_back(text.substr(start, pos - start));
        }
    }
    return fields;
}

}  // namespace

std::optional<ProcStatus> parse_proc_status(const std::string& text)
{
    ProcStatus status;
    bool have_uid = false;
    bool have_gid = false;
    std::string_view rest(text);
    while (!rest.empty()) {
        const auto newline = rest.find('\n');
        const auto line = rest.substr(0, newline);
        rest = newline == std::string_view::npos ? std::string_view() : rest.substr(newline + 1);
        const auto colon = line.find(':');
        if (colon == std::string_view::npos) {
            continue;
        }
        const auto key = line.substr(0, colon);
        if (key != "Uid" && key != "Gid" && key != "Groups") {
            continue;
        }
        const auto fields = split_whitespace(line.substr(colon + 1));
        if (key == "Uid") {
            if (fields.size() < 2 || !parse_number(fields[0], status.real_uid) ||
                !parse_number(fields[1], status.effective_uid)) {
                return std::nullopt;
            }
            have_uid = true;
        } else if (key == "Gid") {
            if (fields.size() < 2 || !parse_number(fields[1], status.effective_gid)) {
                return std::nullopt;
            }
            have_gid = true;
        } else {
            for (auto field : fields) {
                gid_t group = 0;
                if (!parse_number(field, group)) {
                    return std::nullopt;
                }
                status.groups.push_back(group);
            }
        }
    }
    if (!have_uid || !have_gid) {
        return std::nullopt;
    }
    return status;
}

std::optional<std::uint64_t> parse_start_time(const std::string& stat_text)
{
    // The command name (field 2) is in parentheses and may itself contain ") ", so the fixed
    // fields are counted from the last ')'. starttime is field 22, i.e. the 20th after it.
    const auto close = stat_text.rfind(')');
    if (close == std::string::npos) {
        return std::nullopt;
    }
    const auto fields = split_whitespace(std::string_view(stat_text).substr(close + 1));
    constexpr std::size_t kStartTimeIndex = 19;
    std::uint64_t start = 0;
    if (fields.size() <= kStartTimeIndex) {
        return std::nullopt;
    }
    auto field = fields[kStartTimeIndex];
    if (!field.empty() && field.back() == '\n') {
        field.remove_suffix(1);
    }
    if (!parse_number(field, start)) {
        return std::nullopt;
    }
    return start;
}

std::string parse_unified_cgroup(const std::string& cgroup_text)
{
    std::string_view rest(cgroup_text);
    while (!rest.empty()) {
        const auto newline = rest.find('\n');
        const auto line = rest.substr(0, newline);
        if (line.substr(0, 3) == "0::") {
            return std::string(line.substr(3));
        }
        rest = newline == std::string_view::npos ? std::string_view() : rest.substr(newline + 1);
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
}

std::string ProcEntry::read_file(const char* name) const
{
    UniqueFd fd(::openat(dir_.get(), name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
    if (!fd) {
        throw std::system_error(errno, std::generic_category(), std::string("open /proc/PID/") + name);
    }
    std::string out;
    std::array<char, 4096> chunk{};
    while (out.size() < kMaxProcFileBytes) {
        const ssize_t n = ::read(fd.get(), chunk.data(), chunk.size());
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            throw std::system_error(errno, std::generic_category(), std::string("read /proc/PID/") + name);
        }
        if (n == 0) {
            break;
        }
        out.append(chunk.data(), static_cast<std::size_t>(n));
    }
    return out;
}

ProcStatus ProcEntry::status() const
{
    auto parsed = parse_proc_status(read_file("status"));
    if (!parsed) {
        throw std::runtime_error("malformed /proc/PID/status");
    }
    return *parsed;
}

std::uint64_t ProcEntry::start_time() const
{
    auto parsed = parse_start_time(read_file("stat"));
    if (!parsed) {
        throw std::runtime_error("malformed /proc/PID/stat");
    }
    return *parsed;
}

std::string ProcEntry::cgroup() const
{
    try {
        return parse_unified_cgroup(read_file("cgroup"));
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
    struct stat st {};
    if (::fstatat(dir_.get(), "exe", &st, 0) != 0) {
        return std::nullopt;
    }
    return ProcExe{std::string(buffer.data(), static_cast<std::size_t>(n)), st.st_dev, st.st_ino};
}

UniqueFd ProcEntry::open_exe() const
{
    return UniqueFd(::openat(dir_.get(), "exe", O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK));
}

}  // namespace codexvault::identity
