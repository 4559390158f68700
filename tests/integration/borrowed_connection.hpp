// Test support for the "borrowed connection" attacks: a process connects a socket to the bus
// (the bus records its pid and uid), hands it over, and the test speaks on it; for the identity
// tests (test_identity_attacks.cpp) and the monitor's exe tests (test_monitor_identity.cpp).
#pragma once

#include <sys/types.h>

#include <functional>
#include <string>

#include "lib/fileio/unique_fd.hpp"
#include "lib/sdbus/sd_ptr.hpp"

namespace codexvault::test {

// The filesystem path of the test bus's socket (its address is unix:path=...).
std::string bus_socket_path();

// The target of a symbolic link, empty when it cannot be read.
std::string read_link(const std::string& path);

// Like `setpriv --bounding-set=-all --inh-caps=-all`: uid 0 without any capability, so the
// daemon (capability-less root in these tests) may read this process's exe, and an exec does not
// give capabilities back.
bool drop_all_capabilities();

// The process that connected the socket. It waits on a pipe: proceed() makes it run `then`
// (e.g. an exec); end_connector() lets it exit and reaps it; kill() ends it at once.
struct Connector {
    pid_t pid = -1;
    UniqueFd go;

    void proceed() const;
    void kill();
};

// Forks a process that runs `before` (false: it exits 10), connects `socket_fd` to the bus and
// waits for proceed(); returns once it is connected.
Connector fork_connector(int socket_fd, const std::function<bool()>& before, const std::function<void()>& then);

// Closes the connector's pipe, so it exits, and reaps it: its pid is free again.
void end_connector(Connector& connector);

// sd-bus on a socket another process connected: authenticates and says Hello on it.
bus::BusPtr open_bus_on(UniqueFd socket_fd);

struct CallResult {
    std::string error;  // D-Bus error name; empty on success
    std::string message;
    bus::MessagePtr reply;
    [[nodiscard]] bool ok() const { return error.empty(); }
};

// One method call on the vault over `bus`; `append` adds the arguments.
CallResult call(sd_bus* bus, const char* method, const std::function<void(sd_bus_message*)>& append = {});

}  // namespace codexvault::test
