// A throw-away directory tree for the walker's tests: created under $TMPDIR (or /tmp), removed
// with descriptors (not paths) so a 4,096-deep tree goes too, and small helpers that fail the
// test on any error.
#pragma once

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "daemon/ingest/walker.hpp"
#include "lib/fileio/unique_fd.hpp"

namespace ingest_test {

using namespace codexvault;
using namespace codexvault::ingest;

inline void check(bool ok, const char* what)
{
    if (!ok) {
        cr_assert_fail("%s: %s", what, std::strerror(errno));
    }
}

// Removes everything beneath dir_fd (one descriptor per level of depth).
inline void remove_contents(int dir_fd)
{
    const int copy = ::dup(dir_fd);
    DIR* dir = ::fdopendir(copy);
    if (dir == nullptr) {
        ::close(copy);
        return;
    }
    std::vector<std::string> names;
    while (const dirent* entry = ::readdir(dir)) {
        const std::string_view name(entry->d_name);
        if (name != "." && name != "..") {
            names.emplace_back(name);
        }
    }
    ::closedir(dir);
    for (const auto& name : names) {
        struct stat st {};
        if (::fstatat(dir_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode)) {
            (void)!::fchmodat(dir_fd, name.c_str(), 0700, 0);  // best effort: the unlink below reports nothing either
            const int child = ::openat(dir_fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (child >= 0) {
                remove_contents(child);
                ::close(child);
            }
            ::unlinkat(dir_fd, name.c_str(), AT_REMOVEDIR);
        } else {
            ::unlinkat(dir_fd, name.c_str(), 0);
        }
    }
}

class Tree {
public:
    Tree()
    {
        const char* tmp = std::getenv("TMPDIR");
        std::string templ = std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") + "/cv-ingest-test.XXXXXX";
        check(::mkdtemp(templ.data()) != nullptr, "mkdtemp");
        path_ = templ;
        fd_ = UniqueFd(::open(path_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
        check(fd_.valid(), "open tree");
    }
    Tree(const Tree&) = delete;
    Tree& operator=(const Tree&) = delete;
    ~Tree()
    {
        remove_contents(fd_.get());
        fd_.reset();
        ::rmdir(path_.c_str());
    }

    [[nodiscard]] int fd() const { return fd_.get(); }
    [[nodiscard]] const std::string& path() const { return path_; }
    [[nodiscard]] std::string at(std::string_view relative) const { return path_ + "/" + std::string(relative); }

    void dir(std::string_view relative) const { check(::mkdir(at(relative).c_str(), 0755) == 0, "mkdir"); }
    void file(std::string_view relative, std::string_view content, mode_t mode = 0644) const
    {
        UniqueFd out(::open(at(relative).c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode));
        check(out.valid(), "create file");
        std::size_t done = 0;
        while (done < content.size()) {
            const ssize_t wrote = ::write(out.get(), content.data() + done, content.size() - done);
            check(wrote > 0, "write file");
            done += static_cast<std::size_t>(wrote);
        }
    }
    void symlink(std::string_view target, std::string_view relative) const
    {
        check(::symlink(std::string(target).c_str(), at(relative).c_str()) == 0, "symlink");
    }

private:
    std::string path_;
    UniqueFd fd_;
};

struct Visited {
    std::string path;
    std::string content;
    std::uint64_t size = 0;
    bool truncated = false;
    std::uint64_t links = 0;
};

// Walks and records every visit (content copied).
inline WalkSummary walk_all(int fd, const WalkLimits& limits, std::vector<Visited>& out)
{
    return walk(fd, limits, [&](const FileVisit& file) {
        out.push_back({std::string(file.path), std::string(file.content), file.size, file.truncated, file.links});
    });
}

inline const Skip* skipped(const WalkSummary& summary, std::string_view path)
{
    for (const auto& skip : summary.skips) {
        if (skip.path == path) {
            return &skip;
        }
    }
    return nullptr;
}

inline bool visited(const std::vector<Visited>& files, std::string_view path)
{
    for (const auto& file : files) {
        if (file.path == path) {
            return true;
        }
    }
    return false;
}

}  // namespace ingest_test
