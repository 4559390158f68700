// Issue 10, item 8: the grant state (STATE/policy-state.json) and the founder key
// (STATE/founder.pub) are authenticated with keys derived from the master key and carry a
// generation the audit log records, so each attack below, made from the file system on a stopped
// daemon, is noticed at the next start: the vault starts locked and the attack does not take
// effect. Also the audit folder's side: deleted together with the store manifest, or an older
// copy restored alone. And the deliberate migration of an earlier version's unauthenticated file.
#include <nlohmann/json.hpp>
#include <sys/stat.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "cli/cli_support.hpp"
#include "cli/founder_key.hpp"
#include "common/bytes.hpp"
#include "common/vault_error.hpp"
#include "tests/support/harness.hpp"

using namespace codexvault;
using namespace codexvault::test;
namespace fs = std::filesystem;

namespace {

const int kLocked = error_info(ErrorCode::Locked).exit_code;

void require_root()
{
    if (::geteuid() != 0) {
        cr_skip_test("needs root: the daemon must own its state as root and callers run as uid 65534");
    }
}

bool contains(const std::string& haystack, const std::string& needle)
{
    return haystack.find(needle) != std::string::npos;
}

CommandResult founder_with(const std::string& key_path, const std::vector<std::string>& args)
{
    return env->as_founder(args, "", key_path);
}

CommandResult founder(const std::vector<std::string>& args)
{
    return founder_with(env->founder_key(), args);
}

CommandResult as_nobody(const std::vector<std::string>& args)
{
    return env->vaultctl(args, {.stdin_data = "", .passphrase = std::nullopt, .as_uid = kNobody});
}

nlohmann::json status()
{
    const auto r = env->vaultctl({"status", "--json"});
    cr_assert_eq(r.exit_code, 0, "status: %s", r.err.c_str());
    return nlohmann::json::parse(r.out);
}

void start_with_policy(const std::string& content)
{
    env->write_test_policy(content);
    env->restart_daemon();
}

std::string issue_grant(const std::vector<std::string>& options)
{
    std::vector<std::string> args{"grant", "issue"};
    args.insert(args.end(), options.begin(), options.end());
    const auto r = founder(args);
    cr_assert_eq(r.exit_code, 0, "grant issue: %s", r.err.c_str());
    return trim_trailing_space(r.out);
}

std::string state_file(const char* name)
{
    return env->state_dir() + "/" + name;
}

// The vault is locked, and the reason names `needle`.
void expect_locked_naming(const std::string& needle, const char* attack)
{
    const auto s = status();
    cr_assert_eq(s.value("state", ""), "locked", "BUG: after %s the daemon started %s: %s", attack,
                 s.value("state", "").c_str(), s.dump().c_str());
    cr_expect(contains(s.value("lock_reason", ""), needle), "after %s the lock reason does not name '%s': %s", attack,
              needle.c_str(), s.value("lock_reason", "").c_str());
}

const char* kNobodyAuditPolicy = R"(version = 1
[principals.nobody]
uid = 65534
[grants.nobody-audit]
principal = "nobody"
capability = "audit:read"
)";

}  // namespace

TestSuite(state_authentication, .init = start_env_with_founder, .fini = stop_env, .timeout = 90);

Test(state_authentication, a_runtime_grant_forged_in_the_grant_state_file_locks_and_grants_nothing)
{
    require_root();
    // A grant for someone else: the attacker rewrites its principal to their own uid (same length,
    // so the edit is as small as an edit gets).
    (void)issue_grant({"--principal", "uid=12345", "--cap", "audit:read", "--ttl", "1h"});
    cr_assert_neq(as_nobody({"use", "audit:read"}).exit_code, 0, "uid 65534 has no grant yet");
    env->stop_daemon();
    std::string text = read_text_file(state_file("policy-state.json"));
    const auto at = text.find("\"uid\": 12345");
    const auto compact = text.find("\"uid\":12345");
    cr_assert(at != std::string::npos || compact != std::string::npos, "grant principal in the file: %s", text.c_str());
    if (at != std::string::npos) {
        text.replace(at, 12, "\"uid\": 65534");
    } else {
        text.replace(compact, 11, "\"uid\":65534");
    }
    write_private_file(state_file("policy-state.json"), text);

    env->start_daemon();
    const auto use = as_nobody({"use", "audit:read"});
    cr_expect_neq(use.exit_code, 0, "BUG: a grant forged in policy-state.json was honoured: %s", use.out.c_str());
    expect_locked_naming("policy-state.json", "a forged runtime grant");
    expect_locked_naming("failed authentication", "a forged runtime grant");
    // Unlocking does not bring the forged content into force: it is never read.
    cr_assert_eq(founder({"unlock", "--reason", "looked at it"}).exit_code, 0);
    cr_expect_neq(as_nobody({"use", "audit:read"}).exit_code, 0, "the forged grant must stay out of force");
}

Test(state_authentication, a_rolled_back_revocation_locks_until_the_founder_accepts_the_state)
{
    require_root();
    const std::string grant = issue_grant({"--principal", "uid=65534", "--cap", "audit:read", "--ttl", "1h"});
    cr_assert_eq(as_nobody({"use", "audit:read"}).exit_code, 0, "the grant works before it is revoked");
    env->stop_daemon();
    const std::string before_revocation = read_text_file(state_file("policy-state.json"));
    env->start_daemon();
    const auto revoke = founder({"grant", "revoke", grant});
    cr_assert_eq(revoke.exit_code, 0, "revoke: %s", revoke.err.c_str());
    cr_assert_neq(as_nobody({"use", "audit:read"}).exit_code, 0, "revoked");
    env->stop_daemon();
    write_private_file(state_file("policy-state.json"), before_revocation);  // an authentic, older copy

    env->start_daemon();
    const auto use = as_nobody({"use", "audit:read"});
    cr_expect_neq(use.exit_code, 0, "BUG: a revoked grant came back with an older policy-state.json");
    expect_locked_naming("rolled back", "a rolled-back revocation");
    env->restart_daemon();
    expect_locked_naming("rolled back", "a rolled-back revocation, after a restart");
    // The founder accepts the state as it is: the vault serves it and the next start is clean.
    cr_assert_eq(founder({"unlock", "--reason", "restored from backup on purpose"}).exit_code, 0);
    env->restart_daemon();
    cr_expect_eq(status().value("state", ""), "ready", "%s", status().dump().c_str());
}

Test(state_authentication, a_deleted_grant_state_file_does_not_bring_a_revoked_policy_grant_back)
{
    require_root();
    start_with_policy(kNobodyAuditPolicy);
    cr_assert_eq(as_nobody({"use", "audit:read"}).exit_code, 0, "the policy grant works");
    const auto revoke = founder({"grant", "revoke", "nobody-audit"});
    cr_assert_eq(revoke.exit_code, 0, "revoke: %s", revoke.err.c_str());
    cr_assert_neq(as_nobody({"use", "audit:read"}).exit_code, 0, "revoked by name");
    env->stop_daemon();
    cr_assert(fs::remove(state_file("policy-state.json")));

    env->start_daemon();
    const auto use = as_nobody({"use", "audit:read"});
    cr_expect_neq(use.exit_code, 0, "BUG: deleting policy-state.json brought a revoked policy grant back");
    expect_locked_naming("policy-state.json is missing", "a deleted grant state");
}

Test(state_authentication, a_replaced_founder_key_file_makes_nobody_founder)
{
    require_root();
    env->stop_daemon();
    const std::string passphrase = kPassphrase;
    const cli::FounderKeyPair attacker = cli::create_founder_key_file(
        env->root() + "/attacker.key",
        std::span(reinterpret_cast<const std::uint8_t*>(passphrase.data()), passphrase.size()));
    write_private_file(state_file("founder.pub"), bytes::to_hex(attacker.public_key) + "\n");

    env->start_daemon();
    const auto s = status();
    cr_expect_neq(s.value("founder_key_id", ""), cli::founder_key_id(attacker.public_key),
                  "BUG: the replaced founder.pub enrolled the attacker's key: %s", s.dump().c_str());
    const auto as_attacker = founder_with(env->root() + "/attacker.key", {"secret", "ls"});
    cr_expect_neq(as_attacker.exit_code, 0, "BUG: the attacker's key works as the founder's: %s",
                  as_attacker.out.c_str());
    cr_expect_neq(founder_with(env->root() + "/attacker.key", {"unlock", "--reason", "mine now"}).exit_code, 0,
                  "BUG: the attacker's key can unlock");
    expect_locked_naming("founder.pub", "a replaced founder.pub");
}

Test(state_authentication, deleting_the_audit_folder_with_the_store_manifest_does_not_start_a_fresh_unlocked_log)
{
    require_root();
    const auto put =
        env->vaultctl({"secret", "put", "alpha", "--founder-key", env->founder_key(), "--passphrase-fd", "3"},
                      {.stdin_data = "value-alpha", .passphrase = kPassphrase, .as_uid = std::nullopt});
    cr_assert_eq(put.exit_code, 0, "secret put: %s", put.err.c_str());
    env->stop_daemon();
    clear_append_only_flags(env->state_dir() + "/audit");
    fs::remove_all(env->state_dir() + "/audit");
    cr_assert(fs::remove(env->state_dir() + "/secrets/manifest"));

    env->start_daemon();
    expect_locked_naming("audit log missing", "deleting audit/ and the store manifest");
    cr_expect_eq(founder({"secret", "ls"}).exit_code, kLocked);
}

Test(state_authentication, an_older_audit_folder_restored_alone_is_noticed)
{
    require_root();
    env->stop_daemon();
    const std::string audit = env->state_dir() + "/audit";
    const std::string copy = env->root() + "/audit-copy";
    fs::copy(audit, copy, fs::copy_options::recursive);
    env->start_daemon();
    const auto put =
        env->vaultctl({"secret", "put", "alpha", "--founder-key", env->founder_key(), "--passphrase-fd", "3"},
                      {.stdin_data = "value-alpha", .passphrase = kPassphrase, .as_uid = std::nullopt});
    cr_assert_eq(put.exit_code, 0, "secret put: %s", put.err.c_str());
    env->stop_daemon();
    clear_append_only_flags(audit);
    fs::remove_all(audit);
    fs::rename(copy, audit);

    env->start_daemon();
    // The copy ends after this start's checkpoint (the stop appended to it), so the record at the
    // stamp's seq is another one; either way the log is older than the grant state says.
    expect_locked_naming("audit log older than policy-state.json", "restoring an older audit folder");
}

// Migration: an earlier version wrote founder.pub as bare hex. With a log from before this start
// that never recorded an authenticated founder.pub, it is adopted once, recorded, and rewritten
// authenticated; the same bare file later is a replacement, not a migration.
Test(state_authentication, an_earlier_versions_founder_key_is_adopted_once_and_recorded)
{
    require_root();
    const cli::FounderKeyPair key = env->load_founder();
    env->stop_daemon();
    // The log of an earlier version: no state.generation records. Start from a fresh state folder
    // that ran once without a founder, then put the earlier version's founder.pub in place.
    for (const auto& entry : fs::directory_iterator(env->state_dir())) {
        const std::string name = entry.path().filename().string();
        if (name != "keys") {
            clear_append_only_flags(entry.path().string());
            fs::remove_all(entry.path());
        }
    }
    env->start_daemon();
    cr_assert_eq(status().value("state", ""), "uninitialized");
    env->stop_daemon();
    write_private_file(state_file("founder.pub"), bytes::to_hex(key.public_key) + "\n");

    env->start_daemon();
    auto s = status();
    cr_expect_eq(s.value("state", ""), "ready", "%s", s.dump().c_str());
    cr_expect_eq(s.value("founder_key_id", ""), cli::founder_key_id(key.public_key));
    cr_expect_eq(founder({"secret", "ls"}).exit_code, 0);
    const auto tail =
        env->vaultctl({"audit", "tail", "--dir", env->state_dir() + "/audit", "--action", "state.adopt", "--json"});
    cr_expect(contains(tail.out, "founder.pub adopted"), "adoption record: %s", tail.out.c_str());
    cr_expect(read_text_file(state_file("founder.pub")).rfind("codex-vault-state 1\n", 0) == 0,
              "founder.pub is rewritten authenticated");

    // Once adopted, the bare format again is a replacement.
    env->stop_daemon();
    write_private_file(state_file("founder.pub"), bytes::to_hex(key.public_key) + "\n");
    env->start_daemon();
    expect_locked_naming("founder.pub is not authenticated", "a bare founder.pub after adoption");
}

Test(state_authentication, every_start_records_the_founder_key_id)
{
    require_root();
    env->restart_daemon();
    env->restart_daemon();
    const std::string id = cli::founder_key_id(env->load_founder().public_key);
    const auto tail = env->vaultctl(
        {"audit", "tail", "--dir", env->state_dir() + "/audit", "--action", "state.start", "-n", "5", "--json"});
    cr_assert_eq(tail.exit_code, 0, "%s", tail.err.c_str());
    std::size_t count = 0;
    for (std::size_t at = tail.out.find("founder key " + id); at != std::string::npos;
         at = tail.out.find("founder key " + id, at + 1)) {
        ++count;
    }
    cr_expect_geq(count, 2U, "one state.start record per start naming the key id: %s", tail.out.c_str());
    cr_expect_eq(status().value("founder_key_id", ""), id);
}
