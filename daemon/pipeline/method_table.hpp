// The one dispatch table. Every bus method is declared here with the action it performs and
// who may call it; the pipeline (vault_object.cpp) runs identity -> state -> decode ->
// authorize -> audit -> act -> audit for each, so no method body can skip a step.
#pragma once

#include <systemd/sd-bus.h>

#include <functional>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "common/founder_proof.hpp"
#include "daemon/founder/founder_authority.hpp"
#include "daemon/identity/subject.hpp"
#include "policy/capability.hpp"
#include "policy/engine.hpp"

namespace codexvault::audit {
class AuditTrail;
}
namespace codexvault::ingest {
class ScanClient;
}
namespace codexvault::inject {
class InjectionService;
}

namespace codexvault::daemon {

class VaultService;
class IntegrityControl;
class MonitorService;

enum class Access {
    Anyone,          // informational; authorization is "any identified local process"
    FounderUid,      // the configured founder uid, no proof (only GetNonce: proofs need a nonce first)
    Founder,         // founder uid AND a valid founder proof over the call's arguments
    Enrollment,      // founder uid AND a proof made with the key being enrolled; only when uninitialized
    Grant,           // a grant for the call's capability, decided by the policy engine (a real use)
    AuditReader,     // the founder (uid and proof), or a grant for audit:read without one
    FounderOrGrant,  // the founder (uid and proof), or, unsigned, a grant for the row's capability (Ingest)
};

const char* to_string(Access access) noexcept;

// A use of a capability (Access::Grant): what the engine decides on, and its decision.
struct GrantUse {
    policy::Capability capability;
    std::string method;       // provider requests
    std::string path;         // provider requests
    std::string body_digest;  // provider requests
    std::string target;       // injections
    std::optional<std::string> approval_id;
    policy::Decision decision;  // set by the pipeline's authorize step

    // The engine's view of it; views into this object.
    [[nodiscard]] policy::RequestContext request() const
    {
        policy::RequestContext context;
        context.method = method;
        context.path = path;
        context.body_digest = body_digest;
        context.target = target;
        if (approval_id) {
            context.approval_id = *approval_id;
        }
        return context;
    }
};

struct RequestContext {
    VaultService& vault;
    const identity::Subject& subject;
    const GrantUse* grant_use = nullptr;  // Access::Grant methods: the allowed use
    audit::AuditTrail* audit = nullptr;
    IntegrityControl* integrity = nullptr;
    // MethodFlag::RepliesLater: the method call, for the action to answer later, and what the
    // pipeline recorded the decision under (grant and approval ids).
    sd_bus_message* call = nullptr;
    std::string_view sender{};
    std::string_view grant_reference{};
    class RequestBroker* requests = nullptr;
    const MonitorService* monitor = nullptr;         // the eBPF monitor's service (Status); null in unit tests
    ingest::ScanClient* ingest = nullptr;            // the ingest helper's client; null when it is not running
    inject::InjectionService* injections = nullptr;  // Inject; null when the daemon runs none
};

// An action that completes later, on the event loop (Ingest: a worker process scans): `start`
// begins it and returns; the action calls the CompleteCall exactly once, with a FinishCall that
// fills the reply and returns the reason its outcome record carries (or throws VaultError). The
// outcome is recorded then, and the reply sent once that record is durable.
using FinishCall = std::function<std::string(sd_bus_message* reply)>;
using CompleteCall = std::function<void(FinishCall finish)>;

// What decoding a call yields: the arguments the proof must cover, and the action to run
// once (and only if) the pipeline has authorized and audited the call.
struct PreparedCall {
    std::string object;
    std::vector<std::string> signed_arguments;
    std::optional<FounderProof> proof;
    std::optional<founder::PublicKey> enrolling_key;
    std::optional<GrantUse> grant_use;
    std::function<void(RequestContext&, sd_bus_message* reply)> act;
    std::function<void(RequestContext&, CompleteCall complete)> start;  // instead of act, for deferred actions
};

// What the pipeline does differently for a method, beyond its Access; the pipeline never tests a
// method's name. Each flag names one behaviour. All but NeedsEnrolledFounder and Sensitive relax
// a default, so a row that forgets one is refused or slowed, never let through.
// tests/unit/daemon/test_contract.cpp pins which rows carry which flag; method_table.cpp refuses
// to compile a combination that would break a guarantee of the pipeline.
enum class MethodFlag : unsigned {
    // Served while the vault is locked (checked at dispatch, and again before acting, for a call
    // authorized before a Lock or Incident acted on first in the same round). Without it: Locked.
    // The methods that inspect the vault, or lock, unlock and investigate it.
    AllowedWhenLocked = 1U << 0,
    // Refused as Unavailable ("run 'vaultctl init'") before a founder is enrolled, rather than
    // failing later in proof verification. Every method a founder proof authorizes, except Enroll.
    NeedsEnrolledFounder = 1U << 1,
    // Carries secret material (a value descriptor): registered SD_BUS_VTABLE_SENSITIVE so
    // sd-bus keeps its messages out of debug dumps. Must not be allowed when locked.
    Sensitive = 1U << 2,
    // Changes nothing, so it is answered at once: it acts and replies in dispatch, its one record
    // (decision and outcome) goes out with the next write and is not waited for, a denial is
    // answered at once, and the record is marked informational (so repeats fold). Only
    // Access::Anyone rows, and GetNonce: an authorized call must not act before its decision is
    // durable, and a nonce authorizes nothing without the founder key.
    Informational = 1U << 3,
    // Answered from the subject confirmed when the caller's pid was pinned, without re-reading
    // uid, exe and cgroup (measured: 40 us -> 18 us of daemon CPU per WhoAmI). Only informational
    // rows that grant and decide nothing: every authorizing row, and Check (which answers what the
    // caller may do), re-read the caller's identity.
    PinnedIdentity = 1U << 4,
    // Still answered once the audit log has failed (every other call is refused Unavailable until
    // the daemon restarts), even if its own record cannot be written: it is how an operator
    // learns why. Status only; it must be informational.
    ServedWhenAuditFailed = 1U << 5,
    // Its action is only its reply (Use: the authorize step already counted the use), so when no
    // grant state awaits saving it acts as soon as its decision is queued, and one fdatasync makes
    // decision and outcome durable before the reply: one commit round instead of two. Only
    // Access::Grant rows that change nothing when acting.
    OneRoundCommit = 1U << 6,
    // Its action starts work that answers the call itself later and writes its own outcome record
    // when that work ends (Request: the reply goes when the upstream's response head arrives, the
    // outcome when the stream ends). The pipeline acts once the decision is durable, as for any
    // durable call, and then neither replies nor records an outcome, unless the action threw
    // (then the refusal is recorded and answered as for any call). Only Access::Grant rows not
    // served while locked.
    RepliesLater = 1U << 7,
};

// A set of MethodFlag, built with `|`.
class MethodFlags {
public:
    constexpr MethodFlags() noexcept = default;
    // Implicit, so a single flag is a set: `Sensitive` as well as `Sensitive | NeedsEnrolledFounder`.
    constexpr MethodFlags(MethodFlag flag) noexcept : bits_(static_cast<unsigned>(flag)) {}

    [[nodiscard]] constexpr bool has(MethodFlag flag) const noexcept
    {
        return (bits_ & static_cast<unsigned>(flag)) != 0;
    }
    [[nodiscard]] constexpr unsigned bits() const noexcept { return bits_; }

    friend constexpr MethodFlags operator|(MethodFlags a, MethodFlags b) noexcept
    {
        MethodFlags both;
        both.bits_ = a.bits_ | b.bits_;
        return both;
    }
    friend constexpr bool operator==(const MethodFlags&, const MethodFlags&) noexcept = default;

private:
    unsigned bits_ = 0;
};

constexpr MethodFlags operator|(MethodFlag a, MethodFlag b) noexcept
{
    return MethodFlags(a) | MethodFlags(b);
}

// One row of the dispatch table (method_table.cpp), in the order the table lists it.
struct MethodSpec {
    const char* name;
    Access access;
    const char* action;
    PreparedCall (*decode)(sd_bus_message* message);
    MethodFlags flags;
    const char* in_signature;
    const char* out_signature;
    // NUL-separated argument names, inputs then outputs, for introspection.
    const char* argument_names;

    [[nodiscard]] constexpr bool has(MethodFlag flag) const noexcept { return flags.has(flag); }
};

std::span<const MethodSpec> method_table() noexcept;
const MethodSpec* find_method(std::string_view name) noexcept;

}  // namespace codexvault::daemon
