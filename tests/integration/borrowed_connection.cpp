#include "tests/integration/borrowed_connection.hpp"

#include <fcntl.h>
#include <linux/capability.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include <cerrno>
#include <cstring>

#include "common/bus_contract.hpp"
#include "tests/support/harness.hpp"

namespace codexvault::test {

std::string bus_socket_path()
{
    const std::string prefix = "unix:path=";
    cr_assert(env->bus_address().rfind(prefix, 0) == 0, "bus address %s", env->bus_address().c_str());
    return env->bus_address().substr(prefix.size());
}

std::string read_link(const std::string& path)
{
    char buffer[4096];
    const ssize_t n = ::readlink(path.c_str(), buffer, sizeof buffer);
    return n > 0 ? std::string(buffer, static_cast<std::size_t>(n)) : std::string();
}

bool drop_all_capabilities()
{
    for (int cap = 0; cap <= CAP_LAST_CAP + 8; ++cap) {
        if (::prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 && errno != EINVAL) {
            return false;
        }
    }
    __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
    __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = {};
    return ::syscall(SYS_capset, &header, data) == 0;
}

void Connector::proceed() const
{
    const char byte = 'x';
    cr_assert_eq(::write(go.get(), &byte, 1), 1);
}

void Connector::kill()
{
    if (pid > 0) {
        ::kill(pid, SIGKILL);
        ::waitpid(pid, nullptr, 0);
        pid = -1;
    }
}

Connector fork_connector(int socket_fd, const std::function<bool()>& before, const std::function<void()>& then)
{
    int ready[2], go[2];
    cr_assert(::pipe2(ready, O_CLOEXEC) == 0 && ::pipe2(go, O_CLOEXEC) == 0);
    const std::string path = bus_socket_path();
    const pid_t pid = ::fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        // Only the parent may hold the write end of `go`: closing it is what ends this process.
        ::close(go[1]);
        ::close(ready[0]);
        if (before && !before()) {
            _exit(10);
        }
        sockaddr_un address{};
        address.sun_family = AF_UNIX;
        std::strncpy(address.sun_path, path.c_str(), sizeof address.sun_path - 1);
        if (::connect(socket_fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0) {
            _exit(11);
        }
        const char byte = 'r';
        if (::write(ready[1], &byte, 1) != 1) {
            _exit(12);
        }
        char command = 0;
        if (::read(go[0], &command, 1) == 1 && then) {
            then();
        }
        _exit(0);
    }
    UniqueFd ready_read(ready[0]), ready_write(ready[1]), go_read(go[0]);
    ready_write.reset();
    Connector connector{pid, UniqueFd(go[1])};
    char byte = 0;
    cr_assert_eq(::read(ready_read.get(), &byte, 1), 1, "the connector could not connect");
    return connector;
}

void end_connector(Connector& connector)
{
    connector.go.reset();
    int status = 0;
    cr_assert_eq(::waitpid(connector.pid, &status, 0), connector.pid);
}

bus::BusPtr open_bus_on(UniqueFd socket_fd)
{
    sd_bus* raw = nullptr;
    cr_assert(sd_bus_new(&raw) >= 0);
    bus::BusPtr bus(raw);
    const int fd = socket_fd.release();
    cr_assert(sd_bus_set_fd(raw, fd, fd) >= 0);
    cr_assert(sd_bus_set_bus_client(raw, 1) >= 0);
    cr_assert(sd_bus_start(raw) >= 0);
    const char* unique = nullptr;
    cr_assert(sd_bus_get_unique_name(raw, &unique) >= 0, "no Hello on the borrowed socket");
    return bus;
}

CallResult call(sd_bus* bus, const char* method, const std::function<void(sd_bus_message*)>& append)
{
    sd_bus_message* raw = nullptr;
    cr_assert(sd_bus_message_new_method_call(bus, &raw, bus::kBusName, bus::kObjectPath, bus::kInterface, method) >= 0);
    bus::MessagePtr request(raw);
    if (append) {
        append(request.get());
    }
    bus::BusError error;
    sd_bus_message* reply = nullptr;
    CallResult result;
    if (sd_bus_call(bus, request.get(), 0, error.get(), &reply) < 0) {
        result.error = error.is_set() ? error.name() : "local failure";
        result.message = error.message();
    }
    result.reply.reset(reply);
    return result;
}

}  // namespace codexvault::test
