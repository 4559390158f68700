// Reading an "as" argument: every string arrives in order, an empty array is empty, and a wrong
// signature is an error rather than a partial result.
#include <sys/socket.h>
#include <systemd/sd-bus.h>

#include <criterion/criterion.h>

#include <memory>
#include <string>
#include <vector>

#include "lib/sdbus/sd_ptr.hpp"
#include "lib/sdbus/string_array.hpp"

using codexvault::bus::MessagePtr;
using codexvault::bus::read_string_array;

namespace {

int g_peer_end = -1;

// Closed without a flush: the queued authentication request would wait out sd-bus's timeout for
// a peer that never answers (BusPtr flushes, as the daemon wants on exit).
struct CloseWithoutFlush {
    void operator()(sd_bus* bus) const noexcept { sd_bus_close_unref(bus); }
};
using BusPtr = std::unique_ptr<sd_bus, CloseWithoutFlush>;

// A message needs a started bus object; one end of a socketpair that nobody answers is enough
// (sd_bus_start only queues its authentication request).
BusPtr unconnected_bus()
{
    int fds[2] = {-1, -1};
    cr_assert_eq(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, fds), 0);
    sd_bus* raw = nullptr;
    cr_assert_geq(sd_bus_new(&raw), 0);
    BusPtr bus(raw);
    cr_assert_geq(sd_bus_set_fd(bus.get(), fds[0], fds[0]), 0);
    g_peer_end = fds[1];  // kept open for the test's life so the queued request has a reader
    cr_assert_geq(sd_bus_start(bus.get()), 0);
    return bus;
}

MessagePtr sealed_message(sd_bus* bus, const std::vector<const char*>& strings)
{
    sd_bus_message* raw = nullptr;
    cr_assert_geq(sd_bus_message_new_signal(bus, &raw, "/org/codexvault/Test", "org.codexvault.Test", "Lines"), 0);
    MessagePtr message(raw);
    std::vector<char*> strv;
    for (const char* s : strings) {
        strv.push_back(const_cast<char*>(s));
    }
    strv.push_back(nullptr);
    cr_assert_geq(sd_bus_message_append_strv(message.get(), strv.data()), 0);
    cr_assert_geq(sd_bus_message_append(message.get(), "t", static_cast<std::uint64_t>(7)), 0);
    cr_assert_geq(sd_bus_message_seal(message.get(), 1, 0), 0);
    cr_assert_geq(sd_bus_message_rewind(message.get(), 1), 0);
    return message;
}

}  // namespace

Test(string_array, reads_every_string_in_order_and_leaves_the_next_argument)
{
    const BusPtr bus = unconnected_bus();
    const MessagePtr message = sealed_message(bus.get(), {"first", "", "third line"});
    std::vector<std::string> out;
    cr_assert_geq(read_string_array(message.get(), out), 0);
    cr_assert_eq(out.size(), 3u);
    cr_assert(out[0] == "first" && out[1].empty() && out[2] == "third line");
    std::uint64_t next = 0;
    cr_assert_geq(sd_bus_message_read(message.get(), "t", &next), 0);
    cr_assert_eq(next, 7u);
}

Test(string_array, an_empty_array_reads_as_nothing)
{
    const BusPtr bus = unconnected_bus();
    const MessagePtr message = sealed_message(bus.get(), {});
    std::vector<std::string> out{"kept"};
    cr_assert_geq(read_string_array(message.get(), out), 0);
    cr_assert_eq(out.size(), 1u, "strings were appended to an array that had none");
}

Test(string_array, a_wrong_signature_is_an_error_and_appends_nothing)
{
    const BusPtr bus = unconnected_bus();
    const MessagePtr message = sealed_message(bus.get(), {"a"});
    std::vector<std::string> first;
    cr_assert_geq(read_string_array(message.get(), first), 0);
    std::vector<std::string> out;
    cr_assert_lt(read_string_array(message.get(), out), 0, "a uint64 was read as a string array");
    cr_assert(out.empty());
}
