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

namespace codexvault::daemon {

class VaultService;
class IntegrityControl;

enum class Access {
    Anyone,       // informational; authorization is "any identified local process"
    FounderUid,   // the configured founder uid, no proof (only GetNonce: proofs need a nonce first)
    Founder,      // founder uid AND a valid founder proof over the call's arguments
    Enrollment,   // founder uid AND a proof made with the key being enrolled; only when uninitialized
    Grant,        // a grant for the call's capability, decided by the policy engine (a real use)
    AuditReader,  // the founder (uid and proof), or a grant for audit:read without one
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
};

// What decoding a call yields: the arguments the proof must cover, and the action to run
// once (and only if) the pipeline has authorized and audited the call.
struct PreparedCall {
    std::string object;
    std::vector<std::string> signed_arguments;
    std::optional<FounderProof> proof;
    std::optional<founder::PublicKey> enrolling_key;
    std::optional<GrantUse> grant_use;
    std::function<void(RequestContext&, sd_bus_message* reply)> act;
};

struct MethodSpec {
    const char* name;
    const char* in_signature;
    const char* out_signature;
    // NUL-separated argument names, inputs then outputs, for introspection.
    const char* argument_names;
    const char* action;
    Access access;
    bool allowed_when_locked;
    bool requires_enrolled_founder;
    bool sensitive;  // carries secret material: SD_BUS_VTABLE_SENSITIVE
    PreparedCall (*decode)(sd_bus_message* message);
};

std::span<const MethodSpec> method_table() noexcept;
const MethodSpec* find_method(std::string_view name) noexcept;

}  // namespace codexvault::daemon
