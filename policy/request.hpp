// What a use is for, beyond the capability: the facts an approval is bound to.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "policy/capability.hpp"

namespace codexvault::policy {

struct RequestContext {
    // provider:NAME:request: the request the daemon is about to make.
    std::string_view method;       // "POST"
    std::string_view path;         // "/v1/chat/completions?x=1" (checked with clean_request_path)
    std::string_view body_digest;  // a digest of the body the daemon computed (e.g. BLAKE2b-256 hex), <= 128 bytes
    // secret:NAME:inject: who receives the secret, as the daemon describes the recipient
    // (e.g. "pid=1234 start=98765 exe=/usr/bin/python3"), <= 4096 bytes.
    std::string_view target;
    // The approval the caller presents with a retried request (approval = each / once).
    std::optional<std::string_view> approval_id;
};

// The exact request an approval is bound to: a length-prefixed, domain-tagged encoding of the
// capability and the fields relevant to its kind (provider: method, path with query, body
// digest; inject: the secret, via the capability, and the target). Two requests are the same
// for an approval exactly when these bytes are equal, so the binding has no collisions; the
// daemon may hash it for audit records. Never contains secret bytes.
std::string canonical_request(const Capability& capability, const RequestContext& request);

// One line for a founder deciding on an approval: "provider:openai:request POST /v1/chat/completions
// body 3f2a..." (untrusted parts quoted).
std::string describe_request(const Capability& capability, const RequestContext& request);

}  // namespace codexvault::policy
