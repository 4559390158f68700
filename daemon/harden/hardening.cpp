#include "daemon/harden/hardening.hpp"

#include "daemon/harden/capabilities.hpp"
#include "daemon/harden/process_limits.hpp"
#include "daemon/harden/syscall_filter.hpp"

namespace codexvault::harden {

void apply_runtime_hardening()
{
    drop_all_capabilities();
    apply_process_limits();
    install_syscall_filter();
}

}  // namespace codexvault::harden
