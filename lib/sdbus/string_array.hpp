// An "as" argument read from a message: sd-bus hands over a malloc'd NULL-terminated array of
// malloc'd strings, owned here from the moment it arrives so that nothing copied out of it (which
// may throw) can leak it.
#pragma once

#include <systemd/sd-bus.h>

#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

namespace codexvault::bus {

struct StrvFree {
    void operator()(char** strv) const noexcept
    {
        for (char** item = strv; item != nullptr && *item != nullptr; ++item) {
            std::free(*item);
        }
        std::free(static_cast<void*>(strv));
    }
};
using StrvPtr = std::unique_ptr<char*, StrvFree>;

// Appends the strings of the next "as" argument to `out`. Returns sd-bus's result (negative errno
// on failure, 0 at the end of a container); throws only what copying into `out` throws, after
// which the array is still freed.
inline int read_string_array(sd_bus_message* message, std::vector<std::string>& out)
{
    char** raw = nullptr;
    const int r = sd_bus_message_read_strv(message, &raw);
    if (r < 0) {
        return r;
    }
    const StrvPtr owned(raw);
    for (char** item = owned.get(); item != nullptr && *item != nullptr; ++item) {
        out.emplace_back(*item);
    }
    return r;
}

}  // namespace codexvault::bus
