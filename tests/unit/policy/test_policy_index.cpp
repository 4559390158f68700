// The grant index decides a principal match on its own (interned strings, exact ids): it must
// give exactly what match() gives, find every grant it should and no other, and hand back each
// grant's expiry and id unchanged.
#include <criterion/criterion.h>

#include <cstdint>
#include <string>
#include <vector>

#include "policy/grant_index.hpp"
#include "policy/ids.hpp"

using namespace codexvault::policy;

Test(policy_index, matches_exactly_what_match_says)
{
    const std::vector<std::string> units{"", "a.service", "b.service"};
    const std::vector<std::string> cgroups{"", "/a", "/a/b", "/a/b/c", "/a/bc", "/x"};
    const std::vector<std::string> exes{"/bin/a", "/bin/b"};
    const std::vector<std::string> hashes{std::string(64, 'a'), std::string(64, 'b')};
    const std::vector<std::string> specs{
        "uid=1",
        "uid=2",
        "gid=5",
        "gid=7",
        "unit=a.service",
        "uid=1,unit=b.service",
        "cgroup=/a",
        "cgroup=/a/b",
        "uid=1,cgroup=/a/b/c",
        "cgroup=/a/bc",
        "exe=/bin/a",
        "uid=1,exe=/bin/b",
        "exe_sha256=" + std::string(64, 'a'),
        "gid=7,unit=b.service,cgroup=/a,exe=/bin/b",
        "unit=a.service,exe=/bin/a,exe_sha256=" + std::string(64, 'a'),
        "uid=1,unit=a.service,exe=/bin/a",
    };
    // Two grants per spec and capability (runs of more than one entry), two capabilities.
    const std::vector<Capability> capabilities{Capability::secret_inject("s"), Capability::provider_request("p")};
    std::vector<GrantDefinition> grants;
    GrantIndex index;
    for (const auto& capability : capabilities) {
        for (int copy = 0; copy < 2; ++copy) {
            for (const auto& spec : specs) {
                GrantDefinition d;
                d.principal = parse_inline_conditions(spec).value();
                d.capability = capability;
                const auto slot = static_cast<std::uint32_t>(grants.size());
                if (slot % 2 == 0) {
                    IdSeed seed{};
                    for (std::size_t b = 0; b < seed.size(); ++b) {
                        seed[b] = static_cast<std::uint8_t>(slot * 37 + b * 11 + 0xa0);
                    }
                    d.id = make_grant_id(seed).str();
                    d.expires_at_usec = 1000 + slot;
                } else {
                    d.id = "static-" + std::to_string(slot);
                }
                index.add(d, slot);
                grants.push_back(std::move(d));
            }
        }
    }
    for (std::uint32_t slot = 0; slot < grants.size(); ++slot) {
        const GrantFacts& facts = index.facts(slot);
        if (slot % 2 == 0) {
            cr_assert_eq(facts.runtime_grant_id().view(), grants[slot].id);
            cr_assert_eq(facts.expires_at_usec, 1000U + slot);
        }
    }

    const std::uint32_t groups[] = {7};
    std::size_t matches = 0;
    for (const auto& capability : capabilities) {
        for (std::uint32_t uid : {1U, 2U, 3U}) {
            for (const auto& unit : units) {
                for (const auto& cgroup : cgroups) {
                    for (int exe_case = 0; exe_case < 6; ++exe_case) {
                        for (int gid_case = 0; gid_case < 3; ++gid_case) {
                            SubjectView s;
                            s.uid = uid;
                            s.gid = gid_case == 0 ? 5 : 6;
                            if (gid_case == 2) {
                                s.groups = groups;
                            }
                            s.unit = unit;
                            s.cgroup = cgroup;
                            if (exe_case < 4) {
                                s.exe = exes[static_cast<std::size_t>(exe_case % 2)];
                                if (exe_case >= 2) {
                                    s.exe_sha256 = hashes[static_cast<std::size_t>(exe_case % 2)];
                                }
                            }
                            SubjectKeys keys(s);
                            SubjectMatcher matcher(index, keys);
                            const auto hits = index.find(capability.kind, capability.name, s.uid);
                            cr_assert(hits.capability_known);
                            std::vector<int> seen(grants.size(), 0);
                            for (const auto span : {hits.by_uid, hits.any_uid}) {
                                for (const IndexEntry& entry : span) {
                                    const GrantDefinition& d = grants[entry.slot];
                                    ++seen[entry.slot];
                                    cr_assert(d.capability == capability);
                                    cr_assert_eq(matcher.match(entry), match(d.principal, s).status,
                                                 "%s for uid=%u unit=%s cgroup=%s exe_case=%d gid_case=%d",
                                                 d.principal.to_spec().c_str(), uid, unit.c_str(), cgroup.c_str(),
                                                 exe_case, gid_case);
                                    cr_assert_eq(entry.has(GrantTrait::RuntimeId), entry.slot % 2 == 0);
                                    cr_assert_eq(entry.has(GrantTrait::Expires), entry.slot % 2 == 0);
                                    matches += matcher.match(entry) == MatchStatus::Match ? 1 : 0;
                                }
                            }
                            // Every grant for the capability whose uid condition is absent or
                            // holds, exactly once; no other.
                            for (std::uint32_t slot = 0; slot < grants.size(); ++slot) {
                                const GrantDefinition& d = grants[slot];
                                const bool expected =
                                    d.capability == capability && (!d.principal.uid || *d.principal.uid == uid);
                                cr_assert_eq(seen[slot], expected ? 1 : 0, "slot %u", slot);
                            }
                        }
                    }
                }
            }
        }
    }
    cr_assert_gt(matches, 100U);
    cr_assert_not(index.find(CapabilityKind::SecretInject, "p", 1).capability_known);
    cr_assert_not(index.find(CapabilityKind::AuditRead, "", 1).capability_known);
}
