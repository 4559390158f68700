// codex-vaultd start-up, in a fixed order (docs/architecture.md, "Start-up order"): configuration -> state and keys ->
// bus connection and name -> hardening -> READY. Any failure stops start-up with the step named.
#include <signal.h>
#include <sodium.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-daemon.h>
#include <systemd/sd-event.h>

#include <cstdio>
#include <cstring>
#include <exception>
#include <stdexcept>
#include <string>
#include <system_error>

#include "common/bus_contract.hpp"
#include "daemon/audit/audit_trail.hpp"
#include "daemon/daemon_config.hpp"
#include "daemon/harden/capabilities.hpp"
#include "daemon/harden/hardening.hpp"
#include "daemon/ingest/helper.hpp"
#include "daemon/ingest/scan_client.hpp"
#include "daemon/integrity/integrity_control.hpp"
#include "daemon/integrity/start_up_checks.hpp"
#include "daemon/monitor_service.hpp"
#include "daemon/pipeline/inject_methods.hpp"
#include "daemon/pipeline/vault_object.hpp"
#include "daemon/vault_service.hpp"
#include "daemon/version.hpp"
#include "lib/log/log.hpp"
#include "lib/sdbus/sd_ptr.hpp"

namespace codexvault::daemon {
namespace {

void check(int r, const std::string& step)
{
    if (r < 0) {
        throw std::system_error(-r, std::generic_category(), step);
    }
}

bus::BusPtr connect_bus(const DaemonConfig& config)
{
    sd_bus* raw = nullptr;
    if (!config.bus_address) {
        check(sd_bus_open_system(&raw), "connect to the system bus");
        return bus::BusPtr(raw);
    }
    check(sd_bus_new(&raw), "create bus connection");
    bus::BusPtr bus(raw);
    check(sd_bus_set_address(bus.get(), config.bus_address->c_str()), "set bus address " + *config.bus_address);
    check(sd_bus_set_bus_client(bus.get(), 1), "set bus client mode");
    check(sd_bus_negotiate_fds(bus.get(), 1), "enable descriptor passing");
    check(sd_bus_start(bus.get()), "connect to bus " + *config.bus_address);
    return bus;
}

int on_stop_signal(sd_event_source* source, const struct signalfd_siginfo* /*info*/, void* /*userdata*/) noexcept
{
    (void)sd_notify(0, "STOPPING=1\nSTATUS=Stopping");
    return sd_event_exit(sd_event_source_get_event(source), 0);
}

struct ReloadContext {
    VaultService* vault;
    audit::AuditTrail* audit;
};

// SIGHUP (systemctl reload): re-read the policy folder. Like a bus call, the request is on disk
// before anything changes and the result after it: a reload the audit log cannot record does not
// happen (no record, no action), and the policy in force stays as it was.
int on_reload_signal(sd_event_source* /*source*/, const struct signalfd_siginfo* /*info*/, void* userdata) noexcept
{
    auto* context = static_cast<ReloadContext*>(userdata);
    try {
        (void)sd_notify(0, "RELOADING=1");
        audit::AuditRecord record{.type = audit::EventType::Reload,
                                  .action = "policy.reload",
                                  .object = "policy",
                                  .subject = nullptr,
                                  .sender = "signal:SIGHUP",
                                  .decision = audit::Decision::Allow,
                                  .reason = "reload requested",
                                  .grant = {},
                                  .informational = false};
        if (context->audit->record(record) == audit::Appended::Failed || !context->audit->sync()) {
            log::error("policy reload refused: the audit log cannot record it (" + context->audit->failure_reason() +
                       ")");
        } else {
            const bool loaded = context->vault->reload_policy();
            const std::string status = context->vault->policy_status();
            record.type = audit::EventType::Outcome;
            record.decision = loaded ? audit::Decision::Allow : audit::Decision::Deny;
            record.reason = status;
            (void)context->audit->record(record);
            (void)context->audit->sync();  // a failure here fails the log: every later call is refused
        }
    } catch (const std::exception& e) {
        log::error(std::string("reload failed: ") + e.what());
    }
    (void)sd_notify(0, "READY=1");
    return 0;
}

// The audit log: verified, continued or quarantined. A log that was tampered with locks the vault
// (persistently: the fresh log that replaces it would verify at the next start).
std::unique_ptr<audit::AuditLog> open_audit_log(VaultService& vault)
{
    const store::SecureBuffer seed =
        vault.keyring().derive(audit::kAuditSeedSubkeyId, audit::kAuditSeedContext, audit::kAuditSeedBytes);
    audit::AuditLogOptions options;
    options.start_object = std::string("codex-vaultd ") + kVersion;
    options.journal_send = audit::journal_sender();
    options.journal_flush = audit::journal_batch_end();
    return audit::AuditLog::open(
        vault.state_path(),
        std::span<const std::uint8_t, audit::kAuditSeedBytes>(seed.span().data(), audit::kAuditSeedBytes), options);
}

void status_line(VaultService& vault, const std::string& bus_description)
{
    const std::string status = std::string("STATUS=") + to_string(vault.state()) + " on " + bus_description;
    (void)sd_notify(0, status.c_str());
}

int run(int argc, char** argv)
{
    DaemonConfig config = parse_command_line(argc, argv);
    load_config_file(config);
    if (sodium_init() < 0) {
        throw std::runtime_error("libsodium could not initialize (no entropy source?)");
    }

    // The ingest helper is forked first: before any key is loaded (it never holds one but a
    // scan's fingerprint key) and before the seccomp filter, which has no fork (docs/ingest.md).
    ingest::Helper helper = ingest::start_helper([] { harden::drop_all_capabilities(); });

    std::unique_ptr<VaultService> vault;
    try {
        vault = VaultService::open(config);
    } catch (const std::exception& e) {
        throw std::runtime_error(std::string("opening state: ") + e.what());
    }

    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGTERM);
    sigaddset(&signals, SIGINT);
    sigaddset(&signals, SIGHUP);
    if (sigprocmask(SIG_BLOCK, &signals, nullptr) != 0) {
        throw std::system_error(errno, std::generic_category(), "block signals");
    }
    // A client that goes away mid-reply must not kill the daemon.
    signal(SIGPIPE, SIG_IGN);

    sd_event* raw_event = nullptr;
    check(sd_event_default(&raw_event), "create event loop");
    bus::EventPtr event(raw_event);
    check(sd_event_add_signal(event.get(), nullptr, SIGTERM, &on_stop_signal, nullptr), "watch SIGTERM");
    check(sd_event_add_signal(event.get(), nullptr, SIGINT, &on_stop_signal, nullptr), "watch SIGINT");
    std::unique_ptr<audit::AuditLog> log;
    try {
        log = open_audit_log(*vault);
    } catch (const std::exception& e) {
        throw std::runtime_error(std::string("opening the audit log: ") + e.what());
    }
    audit::AuditTrail audit(event.get(), std::move(log));
    IntegrityControl integrity(*vault, audit);
    run_start_up_checks(*vault, audit, integrity);  // records findings before acting on them
    ReloadContext reload_context{vault.get(), &audit};
    check(sd_event_add_signal(event.get(), nullptr, SIGHUP, &on_reload_signal, &reload_context), "watch SIGHUP");
    check(sd_event_set_watchdog(event.get(), 1), "enable watchdog");

    bus::BusPtr bus = connect_bus(config);
    check(sd_bus_attach_event(bus.get(), event.get(), SD_EVENT_PRIORITY_NORMAL), "attach bus to event loop");
    // Before the capability drop: loading the eBPF monitor and creating its maps need CAP_BPF and
    // CAP_PERFMON. Before the bus object: its identity resolver takes callers' exes from the
    // monitor's exec records. Its start record goes out with the sync below.
    MonitorService monitor(event.get(), bus.get(), audit, config.monitor, config.inject);
    inject::InjectionService injections(event.get(), audit, monitor.monitor(),
                                        injection_hooks(*vault, audit, monitor, bus.get()));
    monitor.set_observer([&injections](const codexvault::monitor::Event& e) { injections.observe(e); });
    if (!config.inject) {
        injections.disable("injections are off in the configuration (inject = false)");
    }
    // Ingest fingerprints are keyed with a vault sub-key (keyring.hpp: id 7), so the same value in
    // two files is one secret and nobody without the vault can test a guess against it.
    const store::SecureBuffer fingerprint_key = vault->keyring().derive(7, "CVfinger", 32);
    ingest::ScanClient scans(event.get(), std::move(helper.control));
    scans.set_fingerprint_key(fingerprint_key.span());
    VaultObject object(bus.get(), event.get(), *vault, audit, integrity, &monitor);
    object.set_scan_client(&scans);
    object.set_injection_service(&injections);
    check(sd_bus_request_name(bus.get(), bus::kBusName, 0), std::string("take the bus name ") + bus::kBusName);
    integrity.set_bus(bus.get());
    integrity.resume();
    if (!audit.sync()) {
        throw std::runtime_error("writing the start-up audit records: " + audit.failure_reason());
    }

    // The audit flusher thread starts inside the hardening step: after the capability drop and
    // no_new_privs, before the seccomp filter that then covers it too (hardening.hpp).
    harden::apply_runtime_hardening([&audit] { audit.start_flusher(); });

    const std::string bus_description = config.bus_address ? *config.bus_address : "the system bus";
    log::notice(std::string("codex-vaultd ") + kVersion + ": " + to_string(vault->state()) + ", serving " +
                bus::kBusName + " on " + bus_description + " (keys in " +
                store::to_string(vault->keyring().memory_kind()) + ")");
    (void)sd_notify(0, "READY=1");
    status_line(*vault, bus_description);

    check(sd_event_loop(event.get()), "event loop");
    injections.close_all("the daemon stopped");
    object.drain();
    if (!audit.close("orderly stop")) {
        log::error("the audit log could not be closed cleanly: " + audit.failure_reason());
    }
    log::notice("codex-vaultd: stopped");
    return 0;
}

}  // namespace
}  // namespace codexvault::daemon

int main(int argc, char** argv)
{
    try {
        return codexvault::daemon::run(argc, argv);
    } catch (const codexvault::daemon::CommandLineExit& e) {
        return e.exit_code;
    } catch (const std::exception& e) {
        codexvault::log::critical(std::string("codex-vaultd: ") + e.what());
        const std::string status = std::string("STATUS=Failed: ") + e.what();
        (void)sd_notify(0, status.c_str());
        return 1;
    }
}
