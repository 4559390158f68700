// Walks the daemon's introspection data: every method it serves must be in the coverage
// table, which the denial tests (test_founder_access.cpp) iterate. A new method without a
// declared entry fails here; a non-public entry gets its denial test from that table.
#include <criterion/criterion.h>

#include <memory>
#include <regex>
#include <set>

#include "tests/support/founder_calls.hpp"
#include "tests/support/harness.hpp"

using namespace codexvault;
using namespace codexvault::test;

namespace {

std::set<std::string> introspected_methods()
{
    const auto r = run_command({"busctl", "--address=" + env->bus_address(), "introspect", "--xml-interface",
                                "org.codexvault.Vault1", "/org/codexvault/Vault1"});
    cr_assert_eq(r.exit_code, 0, "%s", r.err.c_str());
    const auto start = r.out.find("<interface name=\"org.codexvault.Vault1\">");
    cr_assert_neq(start, std::string::npos, "interface missing from introspection");
    const auto end = r.out.find("</interface>", start);
    const std::string section = r.out.substr(start, end - start);
    std::set<std::string> methods;
    const std::regex method_re("<method name=\"([A-Za-z0-9_]+)\">");
    for (auto it = std::sregex_iterator(section.begin(), section.end(), method_re); it != std::sregex_iterator();
         ++it) {
        methods.insert((*it)[1]);
    }
    return methods;
}
}  // namespace

TestSuite(dispatch_coverage, .init = start_env, .fini = stop_env, .timeout = 60);

Test(dispatch_coverage, every_introspected_method_has_a_coverage_entry_and_vice_versa)
{
    const auto methods = introspected_methods();
    cr_assert_gt(methods.size(), 0u);
    for (const auto& method : methods) {
        bool covered = false;
        for (const auto& entry : kMethodCoverage) {
            covered = covered || method == entry.name;
        }
        cr_expect(covered, "method %s has no entry in kMethodCoverage (and so no denial test)", method.c_str());
    }
    for (const auto& entry : kMethodCoverage) {
        cr_expect(methods.count(entry.name) == 1, "coverage entry %s is not served by the daemon", entry.name);
    }
}

Test(dispatch_coverage, secret_carrying_methods_are_marked_sensitive)
{
    const auto r = run_command({"busctl", "--address=" + env->bus_address(), "introspect", "--xml-interface",
                                "org.codexvault.Vault1", "/org/codexvault/Vault1"});
    cr_assert_eq(r.exit_code, 0);
    // sd-bus does not publish the SENSITIVE flag; what is visible is that values travel as 'h'.
    for (const char* method : {"PutSecret", "RotateSecret"}) {
        const auto at = r.out.find(std::string("<method name=\"") + method + "\">");
        cr_assert_neq(at, std::string::npos);
        const auto block = r.out.substr(at, r.out.find("</method>", at) - at);
        cr_expect(block.find("type=\"h\"") != std::string::npos, "%s must take its value as a descriptor", method);
    }
}
