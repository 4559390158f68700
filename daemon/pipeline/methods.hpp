// Decoders for every bus method. Each reads and validates its arguments and returns the
// action to run; only the pipeline runs it, after authorization and audit.
#pragma once

#include "daemon/pipeline/method_table.hpp"

namespace codexvault::daemon::methods {

PreparedCall decode_status(sd_bus_message* message);
PreparedCall decode_who_am_i(sd_bus_message* message);
PreparedCall decode_get_nonce(sd_bus_message* message);
PreparedCall decode_enroll(sd_bus_message* message);
PreparedCall decode_put_secret(sd_bus_message* message);
PreparedCall decode_rotate_secret(sd_bus_message* message);
PreparedCall decode_delete_secret(sd_bus_message* message);
PreparedCall decode_list_secrets(sd_bus_message* message);
PreparedCall decode_reload_policy(sd_bus_message* message);
PreparedCall decode_explain(sd_bus_message* message);
PreparedCall decode_check(sd_bus_message* message);
PreparedCall decode_use(sd_bus_message* message);
PreparedCall decode_issue_grant(sd_bus_message* message);
PreparedCall decode_list_grants(sd_bus_message* message);
PreparedCall decode_revoke_grant(sd_bus_message* message);
PreparedCall decode_revoke_all_grants(sd_bus_message* message);
PreparedCall decode_list_approvals(sd_bus_message* message);
PreparedCall decode_approve(sd_bus_message* message);
PreparedCall decode_deny(sd_bus_message* message);
PreparedCall decode_lock(sd_bus_message* message);
PreparedCall decode_unlock(sd_bus_message* message);
PreparedCall decode_incident(sd_bus_message* message);
PreparedCall decode_audit_tail(sd_bus_message* message);
PreparedCall decode_audit_public_key(sd_bus_message* message);
PreparedCall decode_request(sd_bus_message* message);
PreparedCall decode_request_outcome(sd_bus_message* message);
PreparedCall decode_inject(sd_bus_message* message);
PreparedCall decode_ingest(sd_bus_message* message);

}  // namespace codexvault::daemon::methods
