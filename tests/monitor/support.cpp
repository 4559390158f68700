#include "tests/monitor/support.hpp"

#include <bpf/bpf.h>
#include <dirent.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

namespace cvtest {

std::unique_ptr<Monitor> load_or_skip(const codexvault::monitor::Options& options)
{
    if (::geteuid() != 0) {
        cr_skip_test("needs root: loading BPF programs needs CAP_BPF and CAP_PERFMON");
    }
    auto loaded = Monitor::open_and_load(options);
    if (!loaded.monitor) {
        cr_skip_test("eBPF monitor %s", loaded.status.describe().c_str());
    }
    return std::move(loaded.monitor);
}

std::vector<Event> drain_until(Monitor& monitor, const std::function<bool(const Event&)>& done,
                               std::chrono::milliseconds timeout)
{
    std::vector<Event> events;
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    bool found = false;
    while (!found && std::chrono::steady_clock::now() < deadline) {
        monitor.drain([&](const Event& e) noexcept {
            try {
                events.push_back(e);
            } catch (...) {
            }
            found = found || done(e);
        });
        if (!found) {
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
        }
    }
    return events;
}

std::vector<Event> drain_for(Monitor& monitor, std::chrono::milliseconds settle)
{
    return drain_until(
        monitor, [](const Event&) { return false; }, settle);
}

Latch::Latch()
{
    if (::pipe2(fds_, O_CLOEXEC) != 0) {
        cr_assert_fail("pipe2: %s", std::strerror(errno));
    }
}

Latch::~Latch()
{
    ::close(fds_[0]);
    ::close(fds_[1]);
}

void Latch::release()
{
    const char c = 1;
    (void)!::write(fds_[1], &c, 1);
}

void Latch::wait()
{
    char c;
    while (::read(fds_[0], &c, 1) < 0 && errno == EINTR) {
    }
}

pid_t spawn(const std::function<int()>& body)
{
    const pid_t pid = ::fork();
    cr_assert(pid >= 0, "fork: %s", std::strerror(errno));
    if (pid == 0) {
        int code = 127;
        try {
            code = body();
        } catch (...) {
        }
        ::_exit(code);
    }
    return pid;
}

int reap(pid_t pid)
{
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    return status;
}

std::uint64_t stat_start_ticks(pid_t pid)
{
    std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const auto close_paren = text.rfind(')');
    if (close_paren == std::string::npos) {
        return 0;
    }
    std::istringstream fields(text.substr(close_paren + 2));
    std::string field;
    // Field 3 (state) is the first after the comm; starttime is field 22.
    for (int i = 3; i <= 22 && fields >> field; ++i) {
        if (i == 22) {
            return std::stoull(field);
        }
    }
    return 0;
}

MemFd make_memfd(const std::string& content)
{
    MemFd m;
    m.fd = ::memfd_create("cv-secret", MFD_CLOEXEC);
    cr_assert(m.fd >= 0, "memfd_create: %s", std::strerror(errno));
    cr_assert_eq(::write(m.fd, content.data(), content.size()), static_cast<ssize_t>(content.size()));
    struct stat st {};
    cr_assert_eq(::fstat(m.fd, &st), 0);
    m.dev = st.st_dev;
    m.ino = st.st_ino;
    return m;
}

std::pair<std::uint64_t, std::uint64_t> inode_of(const char* path)
{
    struct stat st {};
    if (::stat(path, &st) != 0) {
        return {0, 0};
    }
    return {st.st_dev, st.st_ino};
}

namespace {

// prog_id of every BPF program descriptor in this process (/proc/self/fdinfo says it).
std::set<std::uint32_t> own_program_ids()
{
    std::set<std::uint32_t> ids;
    DIR* dir = ::opendir("/proc/self/fdinfo");
    if (dir == nullptr) {
        return ids;
    }
    while (const dirent* entry = ::readdir(dir)) {
        std::ifstream info(std::string("/proc/self/fdinfo/") + entry->d_name);
        for (std::string line; std::getline(info, line);) {
            if (line.rfind("prog_id:", 0) == 0) {
                ids.insert(static_cast<std::uint32_t>(std::stoul(line.substr(8))));
            }
        }
    }
    ::closedir(dir);
    return ids;
}

}  // namespace

std::vector<std::string> own_tracepoint_links()
{
    const auto mine = own_program_ids();
    std::vector<std::string> names;
    std::uint32_t id = 0;
    while (bpf_link_get_next_id(id, &id) == 0) {
        const int fd = bpf_link_get_fd_by_id(id);
        if (fd < 0) {
            continue;  // gone meanwhile
        }
        char name[64] = {};
        bpf_link_info info{};
        info.raw_tracepoint.tp_name = reinterpret_cast<std::uint64_t>(name);
        info.raw_tracepoint.tp_name_len = sizeof(name);
        std::uint32_t len = sizeof(info);
        if (bpf_obj_get_info_by_fd(fd, &info, &len) == 0 && info.type == BPF_LINK_TYPE_RAW_TRACEPOINT &&
            mine.count(info.prog_id) != 0) {
            names.emplace_back(name);
        }
        ::close(fd);
    }
    return names;
}

}  // namespace cvtest
