#include "policy/approvals.hpp"

#include <algorithm>
#include <array>

namespace codexvault::policy {

namespace {

constexpr std::array<std::string_view, 4> kStates{"pending", "approved", "denied", "consumed"};

}  // namespace

std::string_view approval_state_name(ApprovalState state) noexcept
{
    return kStates[static_cast<std::size_t>(state)];
}

std::string_view describe(DecideResult result) noexcept
{
    switch (result) {
    case DecideResult::Ok:
        return "ok";
    case DecideResult::NotFound:
        return "no such approval";
    case DecideResult::Expired:
        return "approval expired";
    case DecideResult::AlreadyDecided:
        return "approval already decided";
    }
    return "unknown";
}

ProcessBinding ProcessBinding::of(const SubjectView& subject)
{
    ProcessBinding binding;
    binding.uid = subject.uid;
    binding.pid = subject.pid;
    binding.start_time = subject.start_time;
    if (subject.exe) {
        binding.exe = std::string(*subject.exe);
    }
    return binding;
}

bool ProcessBinding::matches(const SubjectView& subject) const noexcept
{
    if (subject.uid != uid || subject.pid != pid || subject.start_time != start_time) {
        return false;
    }
    // The same process cannot have changed its exe without exec; if it did, it is not the same
    // program any more. Unknown stays unknown.
    if (exe.has_value() != subject.exe.has_value()) {
        return false;
    }
    return !exe || *exe == *subject.exe;
}

Result<ApprovalId> ApprovalBook::create(std::string grant_id, Capability capability, const SubjectView& subject,
                                        std::string request, std::string summary, const IdSeed& seed,
                                        std::uint64_t now_usec)
{
    prune(now_usec);
    std::size_t outstanding = 0;
    std::size_t for_uid = 0;
    for (const auto& approval : approvals_) {
        if (approval.outstanding(now_usec)) {
            ++outstanding;
            for_uid += approval.subject.uid == subject.uid ? 1 : 0;
        }
    }
    if (outstanding >= options_.max_outstanding || for_uid >= options_.max_outstanding_per_uid) {
        return make_error("too many approvals outstanding");
    }
    const ApprovalId id = make_approval_id(seed);
    if (find(id.view()) != nullptr) {
        return make_error("approval id collision; retry with fresh randomness");
    }
    Approval approval;
    approval.id = id;
    approval.grant_id = std::move(grant_id);
    approval.capability = std::move(capability);
    approval.subject = ProcessBinding::of(subject);
    approval.request = std::move(request);
    approval.summary = std::move(summary);
    approval.created_at_usec = now_usec;
    approval.expires_at_usec = now_usec + std::min(options_.ttl_usec, UINT64_MAX - now_usec);
    approvals_.push_back(std::move(approval));
    return id;
}

Approval* ApprovalBook::find_mutable(std::string_view id) noexcept
{
    const auto found =
        std::find_if(approvals_.begin(), approvals_.end(), [id](const Approval& a) { return a.id.view() == id; });
    return found == approvals_.end() ? nullptr : &*found;
}

const Approval* ApprovalBook::find(std::string_view id) const noexcept
{
    const auto found =
        std::find_if(approvals_.begin(), approvals_.end(), [id](const Approval& a) { return a.id.view() == id; });
    return found == approvals_.end() ? nullptr : &*found;
}

DecideResult ApprovalBook::decide(std::string_view id, ApprovalState to, std::uint64_t now_usec)
{
    Approval* approval = find_mutable(id);
    if (approval == nullptr) {
        return DecideResult::NotFound;
    }
    if (approval->state != ApprovalState::Pending) {
        return DecideResult::AlreadyDecided;
    }
    if (approval->expired(now_usec)) {
        return DecideResult::Expired;
    }
    approval->state = to;
    approval->decided_at_usec = now_usec;
    return DecideResult::Ok;
}

DecideResult ApprovalBook::approve(std::string_view id, std::uint64_t now_usec)
{
    return decide(id, ApprovalState::Approved, now_usec);
}

DecideResult ApprovalBook::deny(std::string_view id, std::uint64_t now_usec)
{
    return decide(id, ApprovalState::Denied, now_usec);
}

bool ApprovalBook::consume(std::string_view id, std::uint64_t now_usec)
{
    Approval* approval = find_mutable(id);
    if (approval == nullptr || approval->state != ApprovalState::Approved || approval->expired(now_usec)) {
        return false;
    }
    approval->state = ApprovalState::Consumed;
    approval->decided_at_usec = now_usec;
    return true;
}

std::size_t ApprovalBook::deny_all(std::uint64_t now_usec)
{
    std::size_t denied = 0;
    for (auto& approval : approvals_) {
        if (approval.outstanding(now_usec)) {
            approval.state = ApprovalState::Denied;
            approval.decided_at_usec = now_usec;
            ++denied;
        }
    }
    return denied;
}

const Approval* ApprovalBook::find_outstanding(std::string_view grant_id, const SubjectView& subject,
                                               std::string_view request, std::uint64_t now_usec) const noexcept
{
    for (const auto& approval : approvals_) {
        if (approval.outstanding(now_usec) && approval.grant_id == grant_id && approval.request == request &&
            approval.subject.matches(subject)) {
            return &approval;
        }
    }
    return nullptr;
}

std::vector<Approval> ApprovalBook::pending(std::uint64_t now_usec) const
{
    std::vector<Approval> out;
    for (const auto& approval : approvals_) {
        if (approval.state == ApprovalState::Pending && !approval.expired(now_usec)) {
            out.push_back(approval);
        }
    }
    return out;
}

std::size_t ApprovalBook::prune(std::uint64_t now_usec)
{
    const std::size_t before = approvals_.size();
    const std::uint64_t grace = options_.ttl_usec;
    std::erase_if(approvals_, [&](const Approval& a) {
        return now_usec >= a.expires_at_usec && now_usec - a.expires_at_usec >= grace;
    });
    return before - approvals_.size();
}

bool ApprovalBook::restore(Approval approval)
{
    if (find(approval.id.view()) != nullptr) {
        return false;
    }
    approvals_.push_back(std::move(approval));
    return true;
}

}  // namespace codexvault::policy
