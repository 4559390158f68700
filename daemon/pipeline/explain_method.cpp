// Explain: the founder asks how the policy decides for a subject (a live pid, or a uid/unit/...
// described by hand) and a capability, and why.
#include <array>
#include <limits>
#include <string_view>

#include "common/vault_error.hpp"
#include "daemon/grant_bridge.hpp"
#include "daemon/identity/identity_resolver.hpp"
#include "daemon/monotonic_clock.hpp"
#include "daemon/pipeline/message_io.hpp"
#include "daemon/pipeline/methods.hpp"
#include "daemon/vault_service.hpp"

namespace codexvault::daemon::methods {
namespace {

constexpr std::array<std::string_view, 6> kSubjectKeys{"pid", "uid", "gid", "unit", "cgroup", "exe"};
// A described subject has no gid unless one is given; this one matches no gid condition.
constexpr std::uint32_t kNoId = std::numeric_limits<std::uint32_t>::max();

// A live process, read the way the pipeline reads callers (exe unknown when not permitted).
identity::Subject subject_of_pid(std::uint32_t pid)
{
    identity::Subject subject;
    try {
        // Kept between calls: explaining the same program twice hashes it once.
        static identity::ExeDigestCache digests;
        const identity::ProcEntry proc(static_cast<pid_t>(pid));
        subject.pid = static_cast<pid_t>(pid);
        subject.start_time_ticks = proc.start_time();
        identity::read_process(proc, proc.status(), digests, subject);
    } catch (const std::exception&) {
        throw VaultError(ErrorCode::NotFound,
                         "no process " + std::to_string(pid) + " (or its /proc entry is unreadable)");
    }
    return subject;
}

identity::Subject described_subject(const io::ArgumentDict& dict)
{
    identity::Subject subject;
    subject.uid = io::dict_uint32(dict, "uid").value_or(kNoId);
    subject.gid = io::dict_uint32(dict, "gid").value_or(kNoId);
    subject.unit = io::dict_string(dict, "unit");
    subject.cgroup = io::dict_string(dict, "cgroup");
    subject.exe = io::dict_string(dict, "exe");
    subject.exe_known = !subject.exe.empty();
    return subject;
}

}  // namespace

PreparedCall decode_explain(sd_bus_message* message)
{
    PreparedCall call;
    const std::string capability_text = io::read_string(message);
    policy::Capability capability = capability_argument(capability_text);
    const io::ArgumentDict dict = io::read_argument_dict(message, kSubjectKeys);
    call.proof = io::read_founder_proof(message);
    call.signed_arguments = {capability_text};
    for (auto& entry : io::signed_entries(dict)) {
        call.signed_arguments.push_back(std::move(entry));
    }
    const auto pid = io::dict_uint32(dict, "pid");
    if (pid && dict.size() != 1) {
        throw VaultError(ErrorCode::InvalidArgument,
                         "give either pid alone or a described subject (uid, gid, unit, cgroup, exe)");
    }
    if (dict.empty()) {
        throw VaultError(ErrorCode::InvalidArgument, "no subject: give pid, or uid/gid/unit/cgroup/exe");
    }
    call.object = capability_text;
    identity::Subject described = pid ? identity::Subject{} : described_subject(dict);
    call.act = [capability = std::move(capability), described = std::move(described), pid](RequestContext& context,
                                                                                           sd_bus_message* reply) {
        const identity::Subject subject = pid ? subject_of_pid(*pid) : described;
        const policy::Explanation explanation = context.vault.engine().explain(
            subject_view(subject), capability, policy::RequestContext{}, clock::realtime_usec());
        const std::string verdict(policy::verdict_name(explanation.decision.verdict));
        const std::string text = explanation.text();
        io::check(sd_bus_message_append(reply, "ss", verdict.c_str(), text.c_str()), "append explanation");
    };
    return call;
}

}  // namespace codexvault::daemon::methods
