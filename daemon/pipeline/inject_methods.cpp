// Inject: a secret handed to the calling process as a descriptor, under a secret:NAME:inject
// grant, only while the eBPF monitor records. The value never crosses the bus: the reply carries
// a memfd_secret descriptor, an id and metadata.
#include "daemon/pipeline/inject_methods.hpp"

#include <sys/socket.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <string_view>

#include "common/bus_contract.hpp"
#include "common/limits.hpp"
#include "common/vault_error.hpp"
#include "daemon/audit/audit_trail.hpp"
#include "daemon/monitor_service.hpp"
#include "daemon/monotonic_clock.hpp"
#include "daemon/pipeline/message_io.hpp"
#include "daemon/pipeline/methods.hpp"
#include "daemon/vault_service.hpp"
#include "lib/fileio/descriptor_passing.hpp"
#include "lib/log/log.hpp"

namespace codexvault::daemon {
namespace {

constexpr std::array<std::string_view, 3> kInjectKeys{"ttl", "approval_id", "file"};
// An empty file of the caller's on tmpfs that gets the value too, its inode tracked (vaultctl
// exec --file).
constexpr std::array<std::string_view, 1> kInjectDescriptorKeys{"file"};
// A ttl longer than this is refused rather than silently cut (a grant's own expiry still applies).
constexpr std::uint32_t kMaxTtlSeconds = 7U * 24U * 3600U;

// The grant's definition and whether it can still serve, by id: runtime grants, then policy ones.
struct GrantLookup {
    const policy::GrantDefinition* definition = nullptr;
    bool revoked = false;
};

GrantLookup find_grant(VaultService& vault, std::string_view id)
{
    GrantLookup out;
    auto& engine = vault.engine();
    if (const policy::RuntimeGrant* runtime = engine.grants().find(id)) {
        out.definition = &runtime->definition;
        out.revoked = runtime->revoked_at_usec.has_value();
        return out;
    }
    if (const auto& policy = engine.policy()) {
        out.definition = policy->find_grant(id);
        out.revoked = engine.grants().is_policy_grant_revoked(id);
    }
    return out;
}

// Sends `fd` over the caller's socket with the injection id as the message; never waits (a full
// or wrong socket fails the call, and the injection closes when its recipient is gone or expires).
void hand_over(int channel, int fd, const std::string& id)
{
    const int fds[] = {fd};
    if (fileio::send_with_descriptors(channel, id.data(), id.size(), fds, MSG_DONTWAIT | MSG_NOSIGNAL) < 0) {
        throw VaultError(
            ErrorCode::InvalidArgument,
            std::string("the channel descriptor must be a connected unix socket with room: ") + std::strerror(errno));
    }
}

}  // namespace

namespace methods {

PreparedCall decode_inject(sd_bus_message* message)
{
    PreparedCall call;
    std::string name = io::read_string(message);
    if (!limits::is_valid_secret_name(name)) {
        throw VaultError(
            ErrorCode::InvalidArgument,
            "invalid secret name: use 1-64 characters from [A-Za-z0-9._-], starting with a letter or digit");
    }
    const io::ArgumentDict options = io::read_argument_dict(message, kInjectKeys, kInjectDescriptorKeys);
    std::shared_ptr<UniqueFd> file = io::dict_fd(options, "file");
    std::optional<std::uint64_t> ttl_usec;
    if (const auto ttl = io::dict_uint32(options, "ttl")) {
        if (*ttl == 0 || *ttl > kMaxTtlSeconds) {
            throw VaultError(ErrorCode::InvalidArgument, "ttl must be from 1 to 604800 seconds");
        }
        ttl_usec = std::uint64_t{*ttl} * 1'000'000U;
    }
    GrantUse use;
    use.capability = policy::Capability::secret_inject(name);
    if (options.find("approval_id") != options.end()) {
        use.approval_id = io::dict_string(options, "approval_id");
    }
    call.grant_use = std::move(use);
    call.object = name;
    // The caller's end of a unix socket: the secret's descriptor goes there, not into the reply,
    // so the bus daemon never holds it (it would be an unmarked process receiving the tracked
    // inode: an alert on every injection, and under on_touch = "kill" a dead bus).
    auto channel = std::make_shared<UniqueFd>(io::read_fd(message));
    call.act = [name, ttl_usec, channel, file](RequestContext& context, sd_bus_message* reply) {
        // Checked after the grant, so a caller without one is told PermissionDenied whatever the
        // monitor's state; nothing is handed out while nobody could record where it goes.
        inject::InjectionService* injections = context.injections;
        if (injections == nullptr) {
            throw VaultError(ErrorCode::Unavailable, "injection unavailable: the daemon has no injection service");
        }
        if (const auto why = injections->unavailable_reason()) {
            const std::string state =
                context.monitor != nullptr ? context.monitor->state_line() : std::string("off: not started");
            throw VaultError(ErrorCode::Unavailable, "injection unavailable: " + *why + " (monitor " + state + ")");
        }
        auto& secrets = context.vault.secrets();
        if (secrets.rotation_required(name)) {
            throw VaultError(ErrorCode::IntegrityFailure, "secret " + name + " must be rotated before use");
        }
        const std::string grant_id(context.grant_use->decision.grant_id.view());
        const GrantLookup grant = find_grant(context.vault, grant_id);
        if (grant.definition == nullptr || grant.revoked) {
            throw VaultError(ErrorCode::PermissionDenied, "the grant " + grant_id + " is gone");
        }
        inject::InjectRequest request;
        request.secret = name;
        request.grant_id = grant_id;
        request.options = grant.definition->inject;
        request.grant_expires_usec = grant.definition->expires_at_usec;
        request.ttl_usec = ttl_usec;
        request.recipient = &context.subject;
        request.sender = context.subject.bus_name;
        request.file_fd = file ? file->get() : -1;
        inject::Injected injected;
        {
            const store::SecureBuffer value = secrets.open(name);
            injected = injections->inject(request, value.span());
        }
        hand_over(channel->get(), injected.fd.get(), injected.id);
        channel->reset();
        io::check(sd_bus_message_append(reply, "s", injected.id.c_str()), "append injection");
        io::Dictionary info(reply);
        info.add("kind", std::string(inject::to_string(injected.kind)));
        info.add("grant_id", grant_id);
        info.add("expires_usec", injected.expires_usec);
        info.add("on_touch", std::string(policy::inject_on_touch_name(request.options.on_touch)));
        info.add("on_expiry", std::string(policy::inject_on_expiry_name(request.options.on_expiry)));
        info.close();
    };
    return call;
}

}  // namespace methods

inject::Hooks injection_hooks(VaultService& vault, audit::AuditTrail& audit, MonitorService& monitor, sd_bus* bus)
{
    inject::Hooks hooks;
    hooks.why_end = [&vault](const std::string& grant_id) -> std::optional<std::string> {
        if (vault.state() == VaultState::Locked) {
            return "the vault locked: " + vault.lock_reason();
        }
        const GrantLookup grant = find_grant(vault, grant_id);
        if (grant.definition == nullptr) {
            return std::string("its grant is gone");
        }
        if (grant.revoked) {
            return std::string("its grant was revoked");
        }
        if (grant.definition->expires_at_usec && clock::realtime_usec() >= *grant.definition->expires_at_usec) {
            return std::string("its grant expired");
        }
        return std::nullopt;
    };
    hooks.revoke_grant = [&vault, &audit](const std::string& grant_id, const std::string& reason) {
        // No record, no action: the revocation is durable in the log before the state file says so.
        const audit::Appended appended = audit.record(audit::AuditRecord{.type = audit::EventType::Monitor,
                                                                         .action = "inject.revoke",
                                                                         .object = grant_id,
                                                                         .subject = nullptr,
                                                                         .sender = "inject",
                                                                         .decision = audit::Decision::None,
                                                                         .reason = reason,
                                                                         .grant = grant_id,
                                                                         .informational = false});
        if (appended == audit::Appended::Failed || !audit.sync()) {
            log::error("injection: the grant " + grant_id + " could not be revoked: the audit log failed");
            return;
        }
        try {
            (void)vault.engine().revoke(grant_id, clock::realtime_usec());
            vault.mark_policy_state_dirty();
            vault.save_policy_state_if_dirty();
        } catch (const std::exception& e) {
            // Revoked in memory; the state file could not follow, so lock rather than let a
            // restart bring the grant back.
            vault.lock(std::string("could not persist grant state after an injection kill: ") + e.what());
        }
    };
    hooks.drain_monitor = [&monitor] {
        monitor.drain();
    };
    hooks.alert = [bus](const std::string& injection_id, const std::string& grant_id, const std::string& kind) {
        const int r = sd_bus_emit_signal(bus, bus::kObjectPath, bus::kInterface, bus::signal::kInjectionAlert,
                                         bus::signal::kInjectionAlertSignature, injection_id.c_str(), grant_id.c_str(),
                                         kind.c_str());
        if (r < 0) {
            log::warning("could not emit InjectionAlert for " + injection_id + ": " + std::strerror(-r));
        }
    };
    return hooks;
}

}  // namespace codexvault::daemon
