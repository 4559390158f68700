// The capability drop (docs/hardening.md): after it, the process holds no
// capability in any set -- effective, permitted, inheritable, ambient, bounding -- and can never
// regain one. Under the unit the daemon already holds none (system user, empty bounding set, and
// capset(2) is outside the unit's SystemCallFilter), so the drop then changes nothing and only
// reads and verifies the state.
#pragma once

#include <string>

namespace codexvault::harden {

// What the process holds right now, read with capget(2) (cap_get_proc), PR_CAPBSET_READ and
// PR_CAP_AMBIENT_IS_SET; each string lists capability names ("cap_setpcap,cap_sys_admin"),
// empty when the set is empty.
struct CapabilityState {
    std::string effective;
    std::string permitted;
    std::string inheritable;
    std::string ambient;
    std::string bounding;

    [[nodiscard]] bool process_sets_empty() const
    {
        return effective.empty() && permitted.empty() && inheritable.empty();
    }
    [[nodiscard]] bool empty() const { return process_sets_empty() && ambient.empty() && bounding.empty(); }
    [[nodiscard]] std::string describe() const;  // "effective=... permitted=..." for non-empty sets
};

// Throws std::system_error("hardening: read capabilities: ...") when the state cannot be read.
CapabilityState read_capabilities();

// Drops every capability, in the only order that works: the bounding set first (PR_CAPBSET_DROP
// needs CAP_SETPCAP, raised into the effective set for the purpose when it is only permitted),
// then the ambient set (PR_CAP_AMBIENT_CLEAR_ALL), then effective/permitted/inheritable with one
// cap_set_proc(). A step whose set is already empty is skipped, so a process that holds nothing
// makes no privileged call (no capset, no PR_CAPBSET_DROP). The end state is always read back
// and verified. Throws std::system_error / std::runtime_error "hardening: <step>: <error>".
void drop_all_capabilities();

}  // namespace codexvault::harden
