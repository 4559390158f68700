// What start-up checks once the audit log is open, in this order, each finding recorded before
// anything acts on it:
//   1. the store check's recoveries (interrupted writes rolled forward or back) and a manifest
//      to be created are recorded and fdatasynced, and only then is the manifest rewritten; if
//      the records cannot be made durable nothing is rewritten and start-up fails (fail closed);
//   2. the authenticated state files (policy-state.json, founder.pub) are compared with what the
//      log recorded of them (state_ledger.hpp): a forged, deleted, rolled-back or unvouched file,
//      or a log that is missing, older or another than the files were written against, locks;
//   3. a tampered log, or a missing one for a vault that has run before, locks;
//   4. one record names the founder key id and the generations in force (at every start);
//   5. every state file judged sound is rewritten with the next generation, stamped with this
//      start's checkpoint, and the write recorded: an audit folder restored from before this
//      start is then noticed at the next.
// Throws when the records cannot be written: the daemon does not serve without them.
#pragma once

namespace codexvault::audit {
class AuditTrail;
}

namespace codexvault::daemon {

class VaultService;
class IntegrityControl;

void run_start_up_checks(VaultService& vault, audit::AuditTrail& trail, IntegrityControl& integrity);

}  // namespace codexvault::daemon
