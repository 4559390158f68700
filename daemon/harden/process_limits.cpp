#include "daemon/harden/process_limits.hpp"

#include <sys/prctl.h>
#include <sys/resource.h>

#include <cerrno>
#include <system_error>

namespace codexvault::harden {

void apply_process_limits()
{
    const struct rlimit no_core {
        0, 0
    };
    if (::setrlimit(RLIMIT_CORE, &no_core) != 0) {
        throw std::system_error(errno, std::generic_category(), "hardening: setrlimit(RLIMIT_CORE, 0)");
    }
    if (::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) {
        throw std::system_error(errno, std::generic_category(), "hardening: prctl(PR_SET_DUMPABLE, 0)");
    }
    if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
        throw std::system_error(errno, std::generic_category(), "hardening: prctl(PR_SET_NO_NEW_PRIVS, 1)");
    }
}

}  // namespace codexvault::harden
