#include "daemon/harden/hardening.hpp"

#include <exception>
#include <stdexcept>
#include <string>

#include "daemon/harden/capabilities.hpp"
#include "daemon/harden/process_limits.hpp"
#include "daemon/harden/syscall_filter.hpp"

namespace codexvault::harden {

void apply_runtime_hardening(const std::function<void()>& start_threads)
{
    drop_all_capabilities();
    apply_process_limits();
    if (start_threads) {
        try {
            start_threads();
        } catch (const std::exception& e) {
            throw std::runtime_error(std::string("hardening: start the daemon's threads: ") + e.what());
        }
    }
    install_syscall_filter();
}

}  // namespace codexvault::harden
