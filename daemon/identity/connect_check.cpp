#include "daemon/identity/connect_check.hpp"

#include "daemon/identity/exe_from_records.hpp"

namespace codexvault::identity {

std::optional<std::string> apply_connect_check(const monitor::PeerCheck& check, Subject& subject)
{
    const std::string who = "caller pid " + std::to_string(subject.pid) + " (connection " + subject.bus_name + ")";
    switch (check.verdict) {
    case monitor::PeerCredentials::same:
        subject.connect_check = "verified";
        return std::nullopt;
    case monitor::PeerCredentials::changed:
        // Which change it was (an exec, or set*id/setgroups/capset) the kernel does not say; any
        // of them after connecting means the process is not what it was when it connected.
        return who +
               " holds other credentials than when it connected (it exec'd, or changed its uid, groups or "
               "capabilities, after connecting): a connection kept across exec, or handed to another process, is "
               "not trusted; reconnect";
    case monitor::PeerCredentials::gone:
        return who + ": the process that made this connection has exited, and its pid belongs to another process";
    case monitor::PeerCredentials::not_found:
        subject.connect_check =
            "unverified: no bus connection of this pid is visible to the daemon (connected from another network "
            "namespace?)";
        break;
    case monitor::PeerCredentials::unavailable:
        subject.connect_check =
            "unverified: " + (check.detail.empty() ? std::string("the check did not run") : check.detail);
        break;
    }
    forget_exe(subject);
    return std::nullopt;
}

}  // namespace codexvault::identity
