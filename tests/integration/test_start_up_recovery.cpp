// Issue 9, fail closed: a store recovery at start-up (an interrupted write rolled forward or
// back) is recorded in the audit log before the store manifest is rewritten. When the record
// cannot be made durable (here: the audit folder cannot be opened at all), the manifest is left
// exactly as it was and the daemon does not start; once the log works, the recovery is recorded
// and applied.
//
// The interrupted write is made the way a crash leaves it: the manifest (authenticated with the
// vault's own manifest key, derived here from the master key as the daemon derives it) marks the
// removal of a secret as pending, and the file is already gone.
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "common/bytes.hpp"
#include "tests/support/harness.hpp"

using namespace codexvault;
using namespace codexvault::test;
namespace fs = std::filesystem;

namespace {

// The store manifest key: crypto_kdf sub-key 3, context "CVmanfst" (docs/architecture.md).
std::vector<std::uint8_t> manifest_key()
{
    const std::string master = read_text_file(env->state_dir() + "/keys/master.key");
    cr_assert_eq(master.size(), static_cast<std::size_t>(crypto_kdf_KEYBYTES));
    std::vector<std::uint8_t> key(crypto_auth_KEYBYTES);
    cr_assert_eq(crypto_kdf_derive_from_key(key.data(), key.size(), 3, "CVmanfst",
                                            reinterpret_cast<const std::uint8_t*>(master.data())),
                 0);
    return key;
}

// The manifest of a crash in the middle of `secret rm NAME`: the removal is marked pending (and
// the generation moved on), under a MAC the daemon accepts.
std::string manifest_with_pending_removal(const std::string& manifest, const std::string& name)
{
    std::string body = manifest.substr(0, manifest.rfind("mac "));
    const std::string line_start = "\nsecret " + name + " ";
    const auto at = body.find(line_start);
    cr_assert(at != std::string::npos, "manifest lists %s: %s", name.c_str(), manifest.c_str());
    const auto end = body.find('\n', at + 1);
    cr_assert_eq(body.compare(end - 2, 2, " -"), 0, "nothing pending yet: %s", manifest.c_str());
    body.replace(end - 1, 1, "remove");
    const auto gen = body.find("generation ");
    const auto gen_end = body.find('\n', gen);
    const std::uint64_t generation = std::stoull(body.substr(gen + 11, gen_end - gen - 11));
    body.replace(gen + 11, gen_end - gen - 11, std::to_string(generation + 1));
    const auto key = manifest_key();
    std::vector<std::uint8_t> mac(crypto_auth_BYTES);
    crypto_auth(mac.data(), reinterpret_cast<const std::uint8_t*>(body.data()), body.size(), key.data());
    return body + "mac " + bytes::to_hex(mac) + "\n";
}

}  // namespace

TestSuite(start_up_recovery, .init = start_env_with_founder, .fini = stop_env, .timeout = 60);

Test(start_up_recovery, a_store_recovery_the_audit_log_cannot_record_rewrites_nothing)
{
    if (::geteuid() != 0) {
        cr_skip_test("needs root: the daemon must own its state as root");
    }
    const auto put =
        env->vaultctl({"secret", "put", "alpha", "--founder-key", env->founder_key(), "--passphrase-fd", "3"},
                      {.stdin_data = "value-alpha", .passphrase = kPassphrase, .as_uid = std::nullopt});
    cr_assert_eq(put.exit_code, 0, "secret put: %s", put.err.c_str());
    env->stop_daemon();

    const std::string manifest_path = env->state_dir() + "/secrets/manifest";
    const std::string interrupted = manifest_with_pending_removal(read_text_file(manifest_path), "alpha");
    write_private_file(manifest_path, interrupted);
    cr_assert(fs::remove(env->state_dir() + "/secrets/alpha.secret"));

    // The audit log cannot be opened: a file where its folder should be.
    const std::string audit = env->state_dir() + "/audit";
    const std::string aside = env->state_dir() + "/audit.aside";
    fs::rename(audit, aside);
    write_private_file(audit, "not a folder\n");
    const auto failed =
        run_command({env->root() + "/bin/codex-vaultd", "--bus", env->bus_address(), "--state-dir", env->state_dir(),
                     "--config", env->root() + "/codex-vaultd.toml", "--policy-dir", env->policy_dir()});
    cr_expect_neq(failed.exit_code, 0, "the daemon must not start without its audit log");
    cr_expect_eq(read_text_file(manifest_path), interrupted,
                 "BUG: the store manifest was rewritten by a recovery the audit log never recorded");

    // With the log back, the recovery is recorded, then applied.
    cr_assert(fs::remove(audit));
    fs::rename(aside, audit);
    env->start_daemon();
    cr_expect_neq(read_text_file(manifest_path), interrupted, "the recovery is applied once recorded");
    const auto tail = env->vaultctl({"audit", "tail", "--dir", audit, "--action", "store.recover", "--json"});
    cr_assert_eq(tail.exit_code, 0, "%s", tail.err.c_str());
    cr_expect(tail.out.find("secret alpha rolled forward") != std::string::npos, "recovery record: %s",
              tail.out.c_str());
}
