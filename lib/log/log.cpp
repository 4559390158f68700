#include "lib/log/log.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace codexvault::log {
namespace {

constexpr std::size_t kMaxLine = 4096;

bool journal_stream_matches_stderr() noexcept
{
    const char* stream = std::getenv("JOURNAL_STREAM");
    if (stream == nullptr || stream[0] == '\0') {
        return false;
    }
    unsigned long long device = 0;
    unsigned long long inode = 0;
    if (std::sscanf(stream, "%llu:%llu", &device, &inode) != 2) {
        return false;
    }
    struct stat st {};
    if (::fstat(STDERR_FILENO, &st) != 0) {
        return false;
    }
    return st.st_dev == device && st.st_ino == inode;
}

}  // namespace

bool stderr_is_journal() noexcept
{
    static const bool journal = journal_stream_matches_stderr();
    return journal;
}

void write(Priority priority, std::string_view message) noexcept
{
    std::array<char, kMaxLine + 8> line{};
    std::size_t used = 0;
    if (stderr_is_journal()) {
        line[used++] = '<';
        line[used++] = static_cast<char>('0' + static_cast<int>(priority));
        line[used++] = '>';
    }
    const std::size_t room = kMaxLine - used;
    const std::size_t length = message.size() < room ? message.size() : room;
    std::memcpy(line.data() + used, message.data(), length);
    used += length;
    line[used++] = '\n';
    std::size_t written = 0;
    while (written < used) {
        const ssize_t n = ::write(STDERR_FILENO, line.data() + written, used - written);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return;
        }
        written += static_cast<std::size_t>(n);
    }
}

}  // namespace codexvault::log
