// The connect-time rule as the resolver applies the kernel's verdict at a caller's first pin
// (daemon/identity/connect_check.*): a change of credentials since connecting or a vanished
// connector refuses; a verdict the kernel could not give leaves the exe unknown.
#include <criterion/criterion.h>

#include <string>

#include "daemon/identity/connect_check.hpp"

using namespace codexvault;
using identity::ExeSource;
using identity::Subject;
using monitor::PeerCheck;
using monitor::PeerCredentials;

namespace {

Subject caller_with_a_known_exe()
{
    Subject s;
    s.pid = 4242;
    s.bus_name = ":1.7";
    s.exe = "/usr/bin/trusted";
    s.exe_known = true;
    s.exe_device = 2049;
    s.exe_inode = 77;
    s.exe_sha256 = std::string(64, 'a');
    s.exe_source = ExeSource::proc;
    return s;
}

PeerCheck verdict(PeerCredentials v, std::string detail = {})
{
    PeerCheck c;
    c.verdict = v;
    c.connections = v == PeerCredentials::not_found || v == PeerCredentials::unavailable ? 0 : 1;
    c.detail = std::move(detail);
    return c;
}

void expect_exe_forgotten(const Subject& s)
{
    cr_expect(!s.exe_known);
    cr_expect(s.exe.empty());
    cr_expect(s.exe_sha256.empty());
    cr_expect_eq(s.exe_device, 0U);
    cr_expect_eq(s.exe_inode, 0U);
    cr_expect(s.exe_source == ExeSource::none);
}

}  // namespace

Test(connect_check, the_same_credentials_as_at_connect_keep_the_exe_and_say_verified)
{
    Subject s = caller_with_a_known_exe();
    cr_expect(!identity::apply_connect_check(verdict(PeerCredentials::same), s));
    cr_expect(s.exe_known);
    cr_expect_eq(s.exe, "/usr/bin/trusted");
    cr_expect_eq(s.connect_check, "verified");
}

Test(connect_check, credentials_changed_since_connecting_refuse_with_the_reason)
{
    Subject s = caller_with_a_known_exe();
    const auto refusal = identity::apply_connect_check(verdict(PeerCredentials::changed), s);
    cr_assert(refusal.has_value());
    cr_expect(refusal->find("other credentials than when it connected") != std::string::npos, "%s", refusal->c_str());
    cr_expect(refusal->find("pid 4242") != std::string::npos, "%s", refusal->c_str());
}

Test(connect_check, a_connector_that_is_gone_refuses)
{
    Subject s = caller_with_a_known_exe();
    const auto refusal = identity::apply_connect_check(verdict(PeerCredentials::gone), s);
    cr_assert(refusal.has_value());
    cr_expect(refusal->find("has exited") != std::string::npos, "%s", refusal->c_str());
}

Test(connect_check, a_check_that_could_not_run_forgets_the_exe_and_says_why)
{
    Subject s = caller_with_a_known_exe();
    cr_expect(!identity::apply_connect_check(verdict(PeerCredentials::unavailable, "the program is not loaded"), s));
    expect_exe_forgotten(s);
    cr_expect_eq(s.connect_check, "unverified: the program is not loaded");
}

Test(connect_check, a_connection_the_kernel_walk_cannot_see_forgets_the_exe)
{
    Subject s = caller_with_a_known_exe();
    cr_expect(!identity::apply_connect_check(verdict(PeerCredentials::not_found), s));
    expect_exe_forgotten(s);
    cr_expect(s.connect_check.rfind("unverified: ", 0) == 0, "%s", s.connect_check.c_str());
}
