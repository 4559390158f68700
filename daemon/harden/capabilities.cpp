#include "daemon/harden/capabilities.hpp"

#include <sys/capability.h>
#include <sys/prctl.h>

#include <cerrno>
#include <memory>
#include <stdexcept>
#include <string>
#include <system_error>

namespace codexvault::harden {
namespace {

[[noreturn]] void throw_errno(int error, const std::string& step)
{
    throw std::system_error(error, std::generic_category(), "hardening: " + step);
}

struct CapFree {
    void operator()(void* object) const noexcept { (void)::cap_free(object); }
};
using CapPtr = std::unique_ptr<std::remove_pointer_t<cap_t>, CapFree>;

// Highest capability number the running kernel knows, plus one (libcap probes it at load).
cap_value_t capability_count()
{
    const cap_value_t count = ::cap_max_bits();
    if (count <= 0) {
        throw std::runtime_error("hardening: read capabilities: libcap reports no capabilities (cap_max_bits)");
    }
    return count;
}

std::string name_of(cap_value_t cap)
{
    std::unique_ptr<char, CapFree> name(::cap_to_name(cap));
    return name ? std::string(name.get()) : "cap_" + std::to_string(cap);
}

void append(std::string& list, cap_value_t cap)
{
    if (!list.empty()) {
        list += ',';
    }
    list += name_of(cap);
}

bool in_bounding_set(cap_value_t cap)
{
    const int r = ::prctl(PR_CAPBSET_READ, static_cast<unsigned long>(cap), 0, 0, 0);
    if (r < 0) {
        throw_errno(errno, "read capabilities: PR_CAPBSET_READ " + name_of(cap));
    }
    return r == 1;
}

bool in_ambient_set(cap_value_t cap)
{
    const int r = ::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, static_cast<unsigned long>(cap), 0, 0);
    if (r < 0) {
        throw_errno(errno, "read capabilities: PR_CAP_AMBIENT_IS_SET " + name_of(cap));
    }
    return r == 1;
}

bool has_flag(cap_t caps, cap_value_t cap, cap_flag_t flag)
{
    cap_flag_value_t value = CAP_CLEAR;
    if (::cap_get_flag(caps, cap, flag, &value) != 0) {
        throw_errno(errno, "read capabilities: cap_get_flag " + name_of(cap));
    }
    return value == CAP_SET;
}

// CAP_SETPCAP in the effective set, for PR_CAPBSET_DROP. Raised from the permitted set when
// needed; without it in either, the bounding set cannot be emptied and start-up fails.
void make_setpcap_effective(const CapabilityState& state)
{
    CapPtr caps(::cap_get_proc());
    if (!caps) {
        throw_errno(errno, "drop bounding set: cap_get_proc");
    }
    if (has_flag(caps.get(), CAP_SETPCAP, CAP_EFFECTIVE)) {
        return;
    }
    if (!has_flag(caps.get(), CAP_SETPCAP, CAP_PERMITTED)) {
        throw std::runtime_error("hardening: drop bounding set: the bounding set still holds " + state.bounding +
                                 " but the process lacks CAP_SETPCAP to drop it");
    }
    const cap_value_t setpcap[] = {CAP_SETPCAP};
    if (::cap_set_flag(caps.get(), CAP_EFFECTIVE, 1, setpcap, CAP_SET) != 0 || ::cap_set_proc(caps.get()) != 0) {
        throw_errno(errno, "drop bounding set: raise CAP_SETPCAP");
    }
}

}  // namespace

std::string CapabilityState::describe() const
{
    std::string text;
    const auto add = [&text](const char* set, const std::string& caps) {
        if (!caps.empty()) {
            text += (text.empty() ? "" : " ") + std::string(set) + "=" + caps;
        }
    };
    add("effective", effective);
    add("permitted", permitted);
    add("inheritable", inheritable);
    add("ambient", ambient);
    add("bounding", bounding);
    return text.empty() ? "none" : text;
}

CapabilityState read_capabilities()
{
    const cap_value_t count = capability_count();
    CapPtr caps(::cap_get_proc());
    if (!caps) {
        throw_errno(errno, "read capabilities: cap_get_proc");
    }
    CapabilityState state;
    for (cap_value_t cap = 0; cap < count; ++cap) {
        if (has_flag(caps.get(), cap, CAP_EFFECTIVE)) {
            append(state.effective, cap);
        }
        if (has_flag(caps.get(), cap, CAP_PERMITTED)) {
            append(state.permitted, cap);
        }
        if (has_flag(caps.get(), cap, CAP_INHERITABLE)) {
            append(state.inheritable, cap);
        }
        if (in_ambient_set(cap)) {
            append(state.ambient, cap);
        }
        if (in_bounding_set(cap)) {
            append(state.bounding, cap);
        }
    }
    return state;
}

void drop_all_capabilities()
{
    const CapabilityState before = read_capabilities();

    // 1. Bounding set: only possible while CAP_SETPCAP is effective, so it goes first.
    if (!before.bounding.empty()) {
        make_setpcap_effective(before);
        const cap_value_t count = capability_count();
        for (cap_value_t cap = 0; cap < count; ++cap) {
            if (in_bounding_set(cap) && ::prctl(PR_CAPBSET_DROP, static_cast<unsigned long>(cap), 0, 0, 0) != 0) {
                throw_errno(errno, "drop bounding set: PR_CAPBSET_DROP " + name_of(cap));
            }
        }
    }
    // 2. Ambient set (needs no privilege; clearing the permitted set would also empty it).
    if (!before.ambient.empty() && ::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0) {
        throw_errno(errno, "clear ambient capabilities: PR_CAP_AMBIENT_CLEAR_ALL");
    }
    // 3. Effective, permitted and inheritable in one capset(2). Skipped when already empty: the
    //    unit's SystemCallFilter denies capset (@privileged), and there is nothing to drop.
    if (!before.process_sets_empty()) {
        CapPtr none(::cap_init());
        if (!none) {
            throw_errno(errno, "drop capabilities: cap_init");
        }
        if (::cap_set_proc(none.get()) != 0) {
            throw_errno(errno, "drop capabilities: cap_set_proc");
        }
    }

    // 4. Verify by reading back, whether or not anything had to be dropped.
    const CapabilityState after = read_capabilities();
    if (!after.empty()) {
        throw std::runtime_error("hardening: verify capabilities: still held after the drop: " + after.describe());
    }
}

}  // namespace codexvault::harden
