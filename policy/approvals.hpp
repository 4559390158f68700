// Approvals: the founder's yes or no to one exact use. An approval is created when a use of an
// approval = each (or a first use of an approval = once) grant is attempted, and is bound to:
//   - the grant it was created for,
//   - the process that asked (uid, pid, start time; and its exe when known),
//   - the exact request (canonical_request: provider method, path, body digest; inject target).
// It is single-use, and it expires ttl (120 s by default) after it was created, whether or not
// the founder has decided by then. Approving does not extend it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "policy/capability.hpp"
#include "policy/ids.hpp"
#include "policy/principal.hpp"
#include "policy/result.hpp"

namespace codexvault::policy {

struct ApprovalOptions {
    std::uint64_t ttl_usec = 120ULL * 1000 * 1000;
    std::size_t max_outstanding = 1024;        // pending or approved, not used and not expired
    std::size_t max_outstanding_per_uid = 32;  // one noisy caller cannot fill the founder's queue
};

enum class ApprovalState : std::uint8_t { Pending, Approved, Denied, Consumed };
std::string_view approval_state_name(ApprovalState state) noexcept;

// The process an approval belongs to.
struct ProcessBinding {
    std::uint32_t uid = 0;
    std::uint32_t pid = 0;
    std::uint64_t start_time = 0;
    std::optional<std::string> exe;  // as known when the approval was created

    static ProcessBinding of(const SubjectView& subject);
    [[nodiscard]] bool matches(const SubjectView& subject) const noexcept;
    friend bool operator==(const ProcessBinding&, const ProcessBinding&) = default;
};

struct Approval {
    ApprovalId id;
    std::string grant_id;
    Capability capability;
    ProcessBinding subject;
    std::string request;  // canonical_request(...)
    std::string summary;  // describe_request(...), for the founder
    std::uint64_t created_at_usec = 0;
    std::uint64_t expires_at_usec = 0;
    ApprovalState state = ApprovalState::Pending;
    std::uint64_t decided_at_usec = 0;  // approved/denied/consumed at

    [[nodiscard]] bool expired(std::uint64_t now_usec) const noexcept { return now_usec >= expires_at_usec; }
    [[nodiscard]] bool outstanding(std::uint64_t now_usec) const noexcept
    {
        return !expired(now_usec) && (state == ApprovalState::Pending || state == ApprovalState::Approved);
    }
};

enum class DecideResult : std::uint8_t { Ok, NotFound, Expired, AlreadyDecided };
std::string_view describe(DecideResult result) noexcept;

class ApprovalBook {
public:
    explicit ApprovalBook(ApprovalOptions options = {}) : options_(options) {}

    [[nodiscard]] const ApprovalOptions& options() const noexcept { return options_; }

    // Creates a pending approval (id from seed, expiry from options). Fails when the id is taken
    // (retry with fresh randomness) or the outstanding limits are reached.
    Result<ApprovalId> create(std::string grant_id, Capability capability, const SubjectView& subject,
                              std::string request, std::string summary, const IdSeed& seed, std::uint64_t now_usec);

    // The founder's decision. Only a pending, unexpired approval can be decided.
    DecideResult approve(std::string_view id, std::uint64_t now_usec);
    DecideResult deny(std::string_view id, std::uint64_t now_usec);

    // Marks an approved approval used; false if it was not approved and unexpired.
    bool consume(std::string_view id, std::uint64_t now_usec);

    // Denies every outstanding approval (incident response, revoke all).
    std::size_t deny_all(std::uint64_t now_usec);

    [[nodiscard]] const Approval* find(std::string_view id) const noexcept;
    // An outstanding approval for the same grant, process and request, if there is one.
    [[nodiscard]] const Approval* find_outstanding(std::string_view grant_id, const SubjectView& subject,
                                                   std::string_view request, std::uint64_t now_usec) const noexcept;
    [[nodiscard]] std::vector<Approval> pending(std::uint64_t now_usec) const;
    [[nodiscard]] const std::vector<Approval>& all() const noexcept { return approvals_; }

    // Forgets approvals that expired more than one ttl ago (a reused id is then unknown, and
    // still denied).
    std::size_t prune(std::uint64_t now_usec);

    // Persistence: puts back a decoded approval; false for a duplicate id.
    bool restore(Approval approval);

private:
    Approval* find_mutable(std::string_view id) noexcept;
    DecideResult decide(std::string_view id, ApprovalState to, std::uint64_t now_usec);

    ApprovalOptions options_;
    std::vector<Approval> approvals_;  // small (bounded by the limits); linear scans are fine
};

}  // namespace codexvault::policy
