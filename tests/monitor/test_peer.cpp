// The connect-time credential check in the real kernel (bpf/monitor_peer.bpf.h): a listener the
// test owns stands in for the bus. What it relies on, each shown here: the socket a listener
// accepts records the connecting process and the struct cred it connected with; an exec (or a
// uid change) gives that process another cred; a reaped connector leaves its struct pid without a
// task; only sockets accepted from the listener asked about count; and the check runs after
// every capability is dropped.
#include <linux/capability.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "tests/monitor/support.hpp"

using codexvault::monitor::PeerCheck;
using codexvault::monitor::PeerCredentials;
using namespace cvtest;

namespace {

// A listening unix socket at a fresh path, standing in for the bus.
struct Listener {
    std::string dir;
    std::string path;
    int fd = -1;
    std::uint64_t dev = 0;
    std::uint64_t ino = 0;

    Listener()
    {
        char tmpl[] = "/tmp/cv-peer-XXXXXX";
        cr_assert(::mkdtemp(tmpl) != nullptr);
        dir = tmpl;
        path = dir + "/bus";
        // Non-blocking: a connection the test expects is queued before accept_one runs, and one
        // that is missing fails the test instead of hanging it.
        fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
        cr_assert_eq(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0, "%s", std::strerror(errno));
        cr_assert_eq(::listen(fd, 16), 0);
        struct stat st {};
        cr_assert_eq(::stat(path.c_str(), &st), 0);
        dev = st.st_dev;
        ino = st.st_ino;
    }
    Listener(const Listener&) = delete;
    Listener& operator=(const Listener&) = delete;
    ~Listener()
    {
        ::close(fd);
        ::unlink(path.c_str());
        ::rmdir(dir.c_str());
    }
    // The server side of the next connection (kept open by the caller, as the bus keeps it).
    int accept_one() const
    {
        const int s = ::accept4(fd, nullptr, nullptr, SOCK_CLOEXEC);
        cr_assert(s >= 0, "accept: %s", std::strerror(errno));
        return s;
    }
};

bool connect_to(const std::string& path)
{
    const int s = ::socket(AF_UNIX, SOCK_STREAM, 0);  // kept across exec on purpose
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
    return s >= 0 && ::connect(s, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
}

std::string exe_of(pid_t pid)
{
    char buf[4096];
    const std::string link = "/proc/" + std::to_string(pid) + "/exe";
    const ssize_t n = ::readlink(link.c_str(), buf, sizeof(buf) - 1);
    return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : std::string();
}

bool drop_all_capabilities()
{
    __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
    __user_cap_data_struct data[2] = {};
    return ::syscall(SYS_capset, &header, data) == 0;
}

const char* text(PeerCredentials v)
{
    return codexvault::monitor::to_string(v);
}

// The two walks: every unix socket of this network namespace (iter/unix), or the descriptors of
// the process that accepted the connections (iter/task_file bound to its pid; here the test
// process itself, which owns the listener).
enum class Walk { unix_sockets, bus_files };

// A child that connects to `listener` (from a network namespace of its own when asked), then
// runs `rest`, whose result is its exit status. Returns once it has connected, with the server
// side of its connection accepted and kept open, as the bus keeps it. A child that could not
// connect exits 2, and the accept fails the test instead of hanging it.
struct Connected {
    pid_t pid = -1;
    int server = -1;
};

Connected connect_child(const Listener& listener, const std::function<int()>& rest, bool own_network = false)
{
    Latch connected;
    const pid_t pid = spawn([&] {
        const bool ok = (!own_network || ::unshare(CLONE_NEWNET) == 0) && connect_to(listener.path);
        connected.release();  // also on failure: the test then fails instead of waiting forever
        return ok ? rest() : 2;
    });
    connected.wait();
    return {pid, listener.accept_one()};
}

std::unique_ptr<Monitor> load_walk(Walk walk)
{
    codexvault::monitor::Options options;
    if (walk == Walk::bus_files) {
        options.bus_pid = ::getpid();
    }
    auto monitor = load_or_skip(options);
    cr_assert(monitor->connection_check_loaded(), "%s", monitor->status().describe().c_str());
    cr_assert_eq(monitor->connection_check_sees_every_namespace(), walk == Walk::bus_files, "%s",
                 monitor->status().describe().c_str());
    return monitor;
}

}  // namespace

// A scenario run with each walk: suite monitor_peer (iter/unix) and monitor_peer_bus_files.
#define WITH_BOTH_WALKS(name)            \
    static void name##_with(Walk walk);  \
    Test(monitor_peer, name)             \
    {                                    \
        name##_with(Walk::unix_sockets); \
    }                                    \
    Test(monitor_peer_bus_files, name)   \
    {                                    \
        name##_with(Walk::bus_files);    \
    }                                    \
    static void name##_with(Walk walk)

WITH_BOTH_WALKS(a_process_that_connected_and_kept_its_credentials_is_the_same)
{
    auto monitor = load_walk(walk);
    Listener bus;
    Latch done;
    const auto [child, server] = connect_child(bus, [&] {
        done.wait();
        return 0;
    });
    const PeerCheck check = monitor->check_peer_credentials(child, bus.dev, bus.ino);
    cr_expect(check.verdict == PeerCredentials::same, "%s: %s", text(check.verdict), check.detail.c_str());
    cr_expect_eq(check.connections, 1U);
    done.release();
    cr_expect_eq(reap(child), 0);
    ::close(server);
}

WITH_BOTH_WALKS(a_process_that_execs_after_connecting_has_changed_credentials)
{
    auto monitor = load_walk(walk);
    Listener bus;
    Latch go;
    const auto [child, server] = connect_child(bus, [&] {
        go.wait();
        ::execl("/bin/sleep", "sleep", "30", static_cast<char*>(nullptr));
        return 3;
    });
    const PeerCheck before = monitor->check_peer_credentials(child, bus.dev, bus.ino);
    cr_expect(before.verdict == PeerCredentials::same, "%s: %s", text(before.verdict), before.detail.c_str());
    go.release();
    for (int i = 0; i < 250 && exe_of(child).find("sleep") == std::string::npos; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    cr_assert(exe_of(child).find("sleep") != std::string::npos, "the child did not exec");
    const PeerCheck after = monitor->check_peer_credentials(child, bus.dev, bus.ino);
    cr_expect(after.verdict == PeerCredentials::changed, "%s: %s", text(after.verdict), after.detail.c_str());
    ::kill(child, SIGKILL);
    reap(child);
    ::close(server);
}

WITH_BOTH_WALKS(a_uid_change_after_connecting_is_a_change_of_credentials)
{
    auto monitor = load_walk(walk);
    Listener bus;
    Latch changed, done;
    const auto [child, server] = connect_child(bus, [&] {
        const bool became = ::setresuid(65534, 65534, 65534) == 0;
        changed.release();
        if (!became) {
            return 3;
        }
        done.wait();
        return 0;
    });
    changed.wait();
    const PeerCheck check = monitor->check_peer_credentials(child, bus.dev, bus.ino);
    cr_expect(check.verdict == PeerCredentials::changed, "%s: %s", text(check.verdict), check.detail.c_str());
    done.release();
    cr_expect_eq(reap(child), 0);
    ::close(server);
}

WITH_BOTH_WALKS(a_connector_that_was_reaped_is_gone_even_if_its_pid_is_in_use_again)
{
    auto monitor = load_walk(walk);
    Listener bus;
    const pid_t child = spawn([&] { return connect_to(bus.path) ? 0 : 2; });
    cr_assert_eq(reap(child), 0);
    const int server = bus.accept_one();  // still queued after its client is gone
    // The socket still names the old process's struct pid; whoever gets the number next has
    // another one, with no task behind the old.
    const PeerCheck check = monitor->check_peer_credentials(child, bus.dev, bus.ino);
    cr_expect(check.verdict == PeerCredentials::gone, "%s: %s", text(check.verdict), check.detail.c_str());
    ::close(server);
}

WITH_BOTH_WALKS(only_connections_accepted_from_the_listener_asked_about_count)
{
    auto monitor = load_walk(walk);
    Listener bus;
    Listener other;
    Latch go;
    const auto [child, server] = connect_child(other, [&] {
        go.wait();
        ::execl("/bin/sleep", "sleep", "30", static_cast<char*>(nullptr));
        return 3;
    });
    go.release();
    for (int i = 0; i < 250 && exe_of(child).find("sleep") == std::string::npos; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    // A connection to another server, made before an exec, says nothing about the bus.
    const PeerCheck on_bus = monitor->check_peer_credentials(child, bus.dev, bus.ino);
    cr_expect(on_bus.verdict == PeerCredentials::not_found, "%s: %s", text(on_bus.verdict), on_bus.detail.c_str());
    const PeerCheck on_other = monitor->check_peer_credentials(child, other.dev, other.ino);
    cr_expect(on_other.verdict == PeerCredentials::changed, "%s", text(on_other.verdict));
    // A process that never connected has nothing to find.
    const PeerCheck self = monitor->check_peer_credentials(::getpid(), bus.dev, bus.ino);
    cr_expect(self.verdict == PeerCredentials::not_found, "%s", text(self.verdict));
    ::kill(child, SIGKILL);
    reap(child);
    ::close(server);
}

WITH_BOTH_WALKS(one_changed_connection_among_unchanged_ones_is_a_change)
{
    auto monitor = load_walk(walk);
    Listener bus;
    Latch first, second, done;
    const pid_t child = spawn([&] {
        const bool ok = connect_to(bus.path);
        first.release();
        if (!ok) {
            return 2;
        }
        // New credentials (as an exec would give), then a second connection under them: the
        // first one, made under the old ones, still counts.
        const bool again = drop_all_capabilities() && connect_to(bus.path);
        second.release();
        if (!again) {
            return 3;
        }
        done.wait();
        return 0;
    });
    first.wait();
    const int a = bus.accept_one();
    second.wait();
    const int b = bus.accept_one();
    const PeerCheck check = monitor->check_peer_credentials(child, bus.dev, bus.ino);
    cr_expect(check.verdict == PeerCredentials::changed, "%s: %s", text(check.verdict), check.detail.c_str());
    cr_expect_eq(check.connections, 2U);
    done.release();
    cr_expect_eq(reap(child), 0);
    ::close(a);
    ::close(b);
}

// The socket the listener accepts is created in the connecting socket's network namespace, and
// iter/unix walks the reader's: a connection from another namespace is invisible to it (the daemon
// then cannot verify, and treats the exe as unknown). The bus daemon's descriptors hold it
// whatever its namespace.
void connect_from_another_network_namespace(Walk walk, PeerCredentials expected)
{
    auto monitor = load_walk(walk);
    Listener bus;
    Latch done;
    const auto [child, server] = connect_child(
        bus,
        [&] {
            done.wait();
            return 0;
        },
        true);
    const PeerCheck check = monitor->check_peer_credentials(child, bus.dev, bus.ino);
    cr_expect(check.verdict == expected, "%s: %s", text(check.verdict), check.detail.c_str());
    done.release();
    cr_expect_eq(reap(child), 0);
    ::close(server);
}

Test(monitor_peer, a_connection_made_from_another_network_namespace_is_not_found)
{
    connect_from_another_network_namespace(Walk::unix_sockets, PeerCredentials::not_found);
}

Test(monitor_peer_bus_files, a_connection_made_from_another_network_namespace_is_found)
{
    connect_from_another_network_namespace(Walk::bus_files, PeerCredentials::same);
}

WITH_BOTH_WALKS(the_check_runs_after_every_capability_is_dropped)
{
    auto monitor = load_walk(walk);
    Listener bus;
    Latch done;
    const auto [child, server] = connect_child(bus, [&] {
        done.wait();
        return 0;
    });
    Monitor& m = *monitor;
    // As another user, too (the packaged daemon's own uid is not the bus daemon's): leaving uid 0
    // clears every capability, and capset makes sure.
    const pid_t checker = spawn([&] {
        if (::setresgid(65534, 65534, 65534) != 0 || ::setresuid(65534, 65534, 65534) != 0 ||
            !drop_all_capabilities()) {
            return 10;
        }
        const PeerCheck check = m.check_peer_credentials(child, bus.dev, bus.ino);
        return check.verdict == PeerCredentials::same ? 0 : 20 + static_cast<int>(check.verdict);
    });
    cr_expect_eq(reap(checker), 0, "the capability-less check as uid 65534 did not say same");
    done.release();
    reap(child);
    ::close(server);
}

Test(monitor_peer, without_the_program_the_check_is_unavailable)
{
    codexvault::monitor::Options options;
    options.connection_check = false;
    auto monitor = load_or_skip(options);
    cr_expect(!monitor->connection_check_loaded());
    const PeerCheck check = monitor->check_peer_credentials(::getpid(), 1, 1);
    cr_expect(check.verdict == PeerCredentials::unavailable, "%s", text(check.verdict));
    cr_expect(!check.detail.empty());
}
