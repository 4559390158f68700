// The store's manifest on disk and its integrity check: every write keeps the manifest in step,
// each kind of tampering is named (flipped byte, deleted file, copied file, replayed older
// version, edited or rolled-back manifest), interrupted writes are recovered and reported, an
// upgrade without a manifest is adopted, and rotation-required marks persist and gate use.
// Secret values are random canaries that must never appear in the manifest's bytes.
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <optional>
#include <string>
#include <vector>

#include "common/vault_error.hpp"
#include "daemon/store/manifest.hpp"
#include "daemon/store/secret_store.hpp"
#include "tests/unit/daemon/store_test_support.hpp"

namespace fs = std::filesystem;
using codexvault::ErrorCode;
using codexvault::VaultError;
using codexvault::store::IntegrityProblemKind;
using codexvault::store::IntegrityReport;
using codexvault::store::Manifest;
using codexvault::store::MissingManifest;
using codexvault::store::PendingChange;
using codexvault::store::SecretStore;
using codexvault::store::SecureBuffer;

using namespace codexvault::scratch;

namespace {

using Kind = IntegrityProblemKind;

constexpr std::uint64_t kT1 = 1'700'000'000'000'000ULL;
constexpr std::uint64_t kT2 = kT1 + 1'000'000ULL;

std::vector<Kind> kinds_for(const IntegrityReport& report, const std::string& name)
{
    std::vector<Kind> kinds;
    for (const auto& problem : report.problems) {
        if (problem.name == name) {
            kinds.push_back(problem.kind);
        }
    }
    return kinds;
}

std::string describe_all(const IntegrityReport& report)
{
    std::string text;
    for (const auto& problem : report.problems) {
        text += codexvault::store::describe(problem) + "; ";
    }
    return text;
}

// No 8-byte window of any canary may appear in `haystack`.
void expect_no_canary(const Bytes& haystack, const std::vector<Bytes>& canaries, const char* what)
{
    for (const auto& canary : canaries) {
        for (std::size_t i = 0; i + 8 <= canary.size(); ++i) {
            const auto hit = std::search(haystack.begin(), haystack.end(), canary.begin() + static_cast<long>(i),
                                         canary.begin() + static_cast<long>(i + 8));
            cr_assert(hit == haystack.end(), "secret bytes found in the %s", what);
        }
    }
}

struct Fixture {
    Bytes key = random_bytes(32);
    Bytes manifest_key = random_bytes(32);
    fs::path dir = g_root / "secrets";
    std::optional<SecretStore> store{std::in_place, dir, key, manifest_key};

    void reopen() { store.emplace(dir, key, manifest_key); }
    [[nodiscard]] fs::path manifest_path() const { return dir / "manifest"; }
    [[nodiscard]] Manifest disk_manifest() const
    {
        const Bytes raw = read_file(manifest_path());
        auto decoded = codexvault::store::decode_manifest(std::string(raw.begin(), raw.end()), manifest_key);
        cr_assert(decoded.manifest.has_value(), "manifest does not decode: %s", decoded.detail.c_str());
        return *decoded.manifest;
    }
    void write_manifest(const Manifest& manifest) const
    {
        const std::string text = codexvault::store::encode_manifest(manifest, manifest_key);
        write_file(manifest_path(), Bytes(text.begin(), text.end()));
    }
    void expect_ok(const char* when)
    {
        const IntegrityReport report = store->verify_integrity();
        cr_assert(report.ok(), "%s: %s", when, describe_all(report).c_str());
    }
};

}  // namespace

// --- manifest upkeep ------------------------------------------------------------------------

TestSuite(store_integrity, .init = make_sodium_root, .fini = remove_root);

Test(store_integrity, a_new_store_writes_an_empty_private_manifest)
{
    Fixture f;
    struct stat st {};
    cr_assert_eq(::stat(f.manifest_path().c_str(), &st), 0);
    cr_assert_eq(st.st_mode & 07777, 0600u);
    const Manifest manifest = f.disk_manifest();
    cr_assert(manifest.entries.empty());
    cr_assert_eq(manifest.generation, 1u);
    cr_assert_eq(f.store->manifest_generation(), 1u);
    const IntegrityReport report = f.store->verify_integrity();
    cr_assert(report.ok());
    cr_assert_not(report.manifest_created);
    cr_assert_eq(report.generation, 1u);
}

Test(store_integrity, every_write_keeps_the_manifest_in_step_and_free_of_values)
{
    Fixture f;
    const std::vector<Bytes> canaries = {random_bytes(40), random_bytes(40), random_bytes(40)};
    std::uint64_t generation = f.store->manifest_generation();
    const auto advanced = [&] {
        const std::uint64_t now = f.disk_manifest().generation;
        cr_assert_gt(now, generation, "the generation did not grow");
        cr_assert_eq(now, f.store->manifest_generation());
        generation = now;
    };
    f.store->put("a", canaries[0], kT1);
    advanced();
    f.store->put("b", canaries[1], kT1);
    advanced();
    f.store->rotate("a", canaries[2], kT2);
    advanced();
    f.expect_ok("after put and rotate");

    Manifest manifest = f.disk_manifest();
    cr_assert_eq(manifest.entries.size(), 2u);
    cr_assert_eq(manifest.find("a")->version, 2u);
    cr_assert(*manifest.find("a")->hash == codexvault::store::hash_sealed_file(read_file(f.dir / "a.secret")));
    cr_assert_not(manifest.find("a")->pending.has_value());
    expect_no_canary(read_file(f.manifest_path()), canaries, "manifest");

    f.store->remove("b");
    advanced();
    cr_assert_null(f.disk_manifest().find("b"));
    f.expect_ok("after remove");
    f.reopen();
    f.expect_ok("after reopening");
    cr_assert(same(f.store->open("a"), canaries[2]));
}

// --- tampering ------------------------------------------------------------------------------

Test(store_integrity, a_flipped_byte_is_named_as_authentication_and_hash_failure)
{
    Fixture f;
    f.store->put("good", random_bytes(20), kT1);
    f.store->put("hit", random_bytes(20), kT1);
    Bytes raw = read_file(f.dir / "hit.secret");
    raw[60] ^= 0x01;
    write_file(f.dir / "hit.secret", raw);

    const IntegrityReport report = f.store->verify_integrity();
    cr_assert_not(report.ok());
    cr_assert(kinds_for(report, "hit") == (std::vector<Kind>{Kind::HashMismatch, Kind::AuthenticationFailed}), "%s",
              describe_all(report).c_str());
    cr_assert(kinds_for(report, "good").empty());
    cr_assert(vault_error_of([&] { (void)f.store->open("hit"); }) == ErrorCode::IntegrityFailure);
    cr_assert(vault_error_of([&] { f.store->rotate("hit", random_bytes(5), kT2); }) == ErrorCode::IntegrityFailure);
    for (const auto& problem : report.problems) {
        const std::string text = codexvault::store::describe(problem);
        cr_assert(text.find("'hit'") != std::string::npos, "%s", text.c_str());
    }
}

Test(store_integrity, a_deleted_file_is_missing_and_remove_clears_it)
{
    Fixture f;
    f.store->put("gone", random_bytes(20), kT1);
    fs::remove(f.dir / "gone.secret");
    IntegrityReport report = f.store->verify_integrity();
    cr_assert(kinds_for(report, "gone") == std::vector<Kind>{Kind::SecretMissing}, "%s", describe_all(report).c_str());

    const auto entries = f.store->list();
    cr_assert_eq(entries.size(), 1u);
    cr_assert_not(entries[0].integrity_ok);
    cr_assert_eq(entries[0].version, 1u);
    cr_assert(vault_error_of([&] { (void)f.store->open("gone"); }) == ErrorCode::IntegrityFailure);
    cr_assert(vault_error_of([&] { f.store->put("gone", random_bytes(3), kT2); }) == ErrorCode::InvalidArgument);

    f.store->remove("gone");
    f.expect_ok("after removing the missing secret");
    cr_assert(f.store->list().empty());
}

Test(store_integrity, a_copied_file_under_a_new_name_is_unlisted)
{
    Fixture f;
    f.store->put("orig", random_bytes(20), kT1);
    fs::copy_file(f.dir / "orig.secret", f.dir / "copy.secret");
    const IntegrityReport report = f.store->verify_integrity();
    cr_assert(kinds_for(report, "copy") == (std::vector<Kind>{Kind::SecretUnlisted, Kind::AuthenticationFailed}), "%s",
              describe_all(report).c_str());
    cr_assert(kinds_for(report, "orig").empty());
    cr_assert(vault_error_of([&] { (void)f.store->open("copy"); }) == ErrorCode::IntegrityFailure);
    f.store->remove("copy");
    f.expect_ok("after removing the copy");
}

Test(store_integrity, an_older_authentic_version_restored_is_a_replay)
{
    Fixture f;
    const Bytes first = random_bytes(20);
    f.store->put("key", first, kT1);
    const Bytes version_one = read_file(f.dir / "key.secret");
    f.store->rotate("key", random_bytes(20), kT2);
    write_file(f.dir / "key.secret", version_one);  // authentic under the key, just old

    const IntegrityReport report = f.store->verify_integrity();
    cr_assert(kinds_for(report, "key") == (std::vector<Kind>{Kind::HashMismatch, Kind::VersionMismatch}), "%s",
              describe_all(report).c_str());
    cr_assert(vault_error_of([&] { (void)f.store->open("key"); }) == ErrorCode::IntegrityFailure);
    cr_assert(vault_error_of([&] { f.store->rotate("key", random_bytes(5), kT2); }) == ErrorCode::IntegrityFailure);
    cr_assert_not(f.store->list()[0].integrity_ok, "list() vouches for a replayed file");
    f.reopen();  // the replay is still seen after a restart
    cr_assert(kinds_for(f.store->verify_integrity(), "key") ==
              (std::vector<Kind>{Kind::HashMismatch, Kind::VersionMismatch}));
}

Test(store_integrity, an_edited_manifest_is_unauthentic_and_stops_writes)
{
    Fixture f;
    f.store->put("a", random_bytes(20), kT1);
    Bytes raw = read_file(f.manifest_path());
    const std::string text(raw.begin(), raw.end());
    const std::size_t at = text.find("secret a 1 ");
    cr_assert_neq(at, std::string::npos);
    raw[at + 9] = '2';  // claim version 2
    write_file(f.manifest_path(), raw);

    IntegrityReport report = f.store->verify_integrity();
    cr_assert_eq(report.problems.size(), 1u, "%s", describe_all(report).c_str());
    cr_assert_eq(report.problems[0].kind, Kind::ManifestUnauthentic);
    cr_assert(report.problems[0].name.empty());
    std::string message;
    cr_assert(vault_error_of([&] { f.store->put("b", random_bytes(3), kT2); }, &message) ==
              ErrorCode::IntegrityFailure);
    cr_assert(message.find("manifest") != std::string::npos, "%s", message.c_str());

    f.reopen();  // a restart does not launder it either
    report = f.store->verify_integrity(MissingManifest::CreateFromFiles);
    cr_assert_eq(report.problems.size(), 1u);
    cr_assert_eq(report.problems[0].kind, Kind::ManifestUnauthentic);
    cr_assert(vault_error_of([&] { (void)f.store->open("a"); }) == ErrorCode::IntegrityFailure);
    cr_assert(vault_error_of([&] { f.store->remove("a"); }) == ErrorCode::IntegrityFailure);

    // Under another master key the same is true.
    f.manifest_key = random_bytes(32);
    f.reopen();
    cr_assert_eq(f.store->verify_integrity().problems[0].kind, Kind::ManifestUnauthentic);
}

Test(store_integrity, a_manifest_rolled_back_while_running_is_stale)
{
    Fixture f;
    f.store->put("a", random_bytes(20), kT1);
    const Bytes old_manifest = read_file(f.manifest_path());
    const Bytes old_file = read_file(f.dir / "a.secret");
    f.store->rotate("a", random_bytes(20), kT2);
    // Roll the whole store back consistently: manifest and file together.
    write_file(f.manifest_path(), old_manifest);
    write_file(f.dir / "a.secret", old_file);

    const IntegrityReport report = f.store->verify_integrity();
    cr_assert_not(report.ok());
    cr_assert_eq(report.problems[0].kind, Kind::ManifestStale, "%s", describe_all(report).c_str());
    cr_assert(vault_error_of([&] { f.store->put("b", random_bytes(3), kT2); }) == ErrorCode::IntegrityFailure);
}

Test(store_integrity, a_manifest_deleted_while_running_is_missing_not_recreated)
{
    Fixture f;
    f.store->put("a", random_bytes(20), kT1);
    fs::remove(f.manifest_path());
    const IntegrityReport report = f.store->verify_integrity(MissingManifest::CreateFromFiles);
    cr_assert_not(report.ok());
    cr_assert_eq(report.problems[0].kind, Kind::ManifestMissing);
    cr_assert_not(report.manifest_created);
    cr_assert_not(fs::exists(f.manifest_path()));
}

Test(store_integrity, a_manifest_others_can_read_or_a_symlink_is_refused)
{
    Fixture f;
    f.store->put("a", random_bytes(20), kT1);
    cr_assert_eq(::chmod(f.manifest_path().c_str(), 0644), 0);
    f.reopen();
    cr_assert_eq(f.store->verify_integrity().problems[0].kind, Kind::ManifestMalformed);

    cr_assert_eq(::chmod(f.manifest_path().c_str(), 0600), 0);
    fs::rename(f.manifest_path(), g_root / "elsewhere");
    fs::create_symlink(g_root / "elsewhere", f.manifest_path());
    f.reopen();
    cr_assert_eq(f.store->verify_integrity().problems[0].kind, Kind::ManifestMalformed);
}

// --- upgrade --------------------------------------------------------------------------------

Test(store_integrity, an_upgrade_adopts_authentic_files_and_reports_the_rest)
{
    Fixture f;
    const Bytes value = random_bytes(20);
    f.store->put("a", value, kT1);
    f.store->put("b", random_bytes(20), kT1);
    f.store->rotate("b", random_bytes(20), kT2);
    f.store->put("broken", random_bytes(20), kT1);
    Bytes raw = read_file(f.dir / "broken.secret");
    raw.back() ^= 0x01;
    write_file(f.dir / "broken.secret", raw);
    fs::remove(f.manifest_path());  // as a build without a manifest left the folder

    f.reopen();
    cr_assert_not(fs::exists(f.manifest_path()), "the constructor adopted files silently");
    cr_assert_eq(f.store->manifest_generation(), 0u);
    cr_assert(vault_error_of([&] { (void)f.store->open("a"); }) == ErrorCode::IntegrityFailure);
    cr_assert(vault_error_of([&] { f.store->put("c", random_bytes(3), kT2); }) == ErrorCode::IntegrityFailure);

    IntegrityReport report = f.store->verify_integrity();  // Report: no adoption
    cr_assert_eq(report.problems.size(), 1u);
    cr_assert_eq(report.problems[0].kind, Kind::ManifestMissing);
    cr_assert_not(fs::exists(f.manifest_path()));

    report = f.store->verify_integrity(MissingManifest::CreateFromFiles);
    cr_assert(report.manifest_created);
    cr_assert(report.adopted == (std::vector<std::string>{"a", "b"}));
    cr_assert(kinds_for(report, "broken") == (std::vector<Kind>{Kind::SecretUnlisted, Kind::AuthenticationFailed}));
    cr_assert_eq(report.problems.size(), 2u, "%s", describe_all(report).c_str());
    cr_assert_eq(f.disk_manifest().find("b")->version, 2u);
    cr_assert(same(f.store->open("a"), value));

    f.store->remove("broken");
    f.expect_ok("after removing the broken file");
    f.reopen();
    f.expect_ok("after reopening the upgraded store");
}

Test(store_integrity, an_empty_store_without_manifest_gets_an_empty_one)
{
    Fixture f;
    fs::remove(f.manifest_path());
    f.reopen();
    cr_assert(fs::exists(f.manifest_path()));
    f.expect_ok("empty store");
    f.store->put("a", random_bytes(4), kT1);  // and is writable straight away

    fs::remove(f.dir / "a.secret");
    fs::remove(f.manifest_path());
    f.reopen();
    const IntegrityReport report = f.store->verify_integrity();
    cr_assert(report.ok());
    cr_assert_not(report.manifest_created, "the constructor already wrote it");
}

// --- crash windows --------------------------------------------------------------------------

namespace {

// A store where "k" was put (value one) and then rotated (value two), with the files and
// manifests of both states kept, to rebuild each crash window's disk state.
struct TwoVersions {
    Fixture f;
    Bytes one = random_bytes(24);
    Bytes two = random_bytes(24);
    Bytes file_one;
    Bytes file_two;
    Manifest manifest_one;

    TwoVersions()
    {
        f.store->put("k", one, kT1);
        file_one = read_file(f.dir / "k.secret");
        manifest_one = f.disk_manifest();
        f.store->rotate("k", two, kT2);
        file_two = read_file(f.dir / "k.secret");
    }

    // The manifest after step 2 of the rotation (intent recorded), with file `file` in place.
    void crash_after_intent(const Bytes& file)
    {
        Manifest pending = manifest_one;
        pending.generation += 1;
        pending.find("k")->pending = PendingChange{2, codexvault::store::hash_sealed_file(file_two)};
        f.write_manifest(pending);
        write_file(f.dir / "k.secret", file);
        f.reopen();
    }
};

}  // namespace

Test(store_integrity, a_crash_after_the_rename_rolls_forward)
{
    TwoVersions t;
    t.crash_after_intent(t.file_two);
    cr_assert(vault_error_of([&] { (void)t.f.store->open("k"); }) == ErrorCode::IntegrityFailure,
              "a pending entry was usable before the check settled it");
    const IntegrityReport report = t.f.store->verify_integrity();
    cr_assert(report.ok(), "%s", describe_all(report).c_str());
    cr_assert_eq(report.recoveries.size(), 1u);
    cr_assert(report.recoveries[0].name == "k");
    cr_assert(report.recoveries[0].rolled_forward);
    cr_assert(same(t.f.store->open("k"), t.two));
    cr_assert_eq(t.f.disk_manifest().find("k")->version, 2u);
    cr_assert_not(t.f.disk_manifest().find("k")->pending.has_value());
    cr_assert(t.f.store->verify_integrity().recoveries.empty(), "recovered twice");
}

Test(store_integrity, a_crash_before_the_rename_rolls_back)
{
    TwoVersions t;
    t.crash_after_intent(t.file_one);
    const IntegrityReport report = t.f.store->verify_integrity();
    cr_assert(report.ok(), "%s", describe_all(report).c_str());
    cr_assert_eq(report.recoveries.size(), 1u);
    cr_assert_not(report.recoveries[0].rolled_forward);
    cr_assert(same(t.f.store->open("k"), t.one));
    cr_assert_eq(t.f.disk_manifest().find("k")->version, 1u);
}

Test(store_integrity, a_pending_write_settles_on_the_next_write_of_that_name)
{
    TwoVersions t;
    t.crash_after_intent(t.file_two);
    const Bytes three = random_bytes(24);
    const auto metadata = t.f.store->rotate("k", three, kT2 + 1);
    cr_assert_eq(metadata.version, 3u);
    cr_assert(same(t.f.store->open("k"), three));
    t.f.expect_ok("after rotating over a pending entry");
}

Test(store_integrity, an_interrupted_put_or_remove_is_recovered)
{
    TwoVersions t;
    // A put of "n" whose rename never happened, and a removal of "k" whose unlink did.
    Manifest pending = t.f.disk_manifest();
    pending.generation += 1;
    pending.upsert({"n", 0, std::nullopt, 0, PendingChange{1, codexvault::store::hash_sealed_file(t.file_one)}});
    pending.find("k")->pending = PendingChange{};
    t.f.write_manifest(pending);
    fs::remove(t.f.dir / "k.secret");
    t.f.reopen();
    const IntegrityReport report = t.f.store->verify_integrity();
    cr_assert(report.ok(), "%s", describe_all(report).c_str());
    cr_assert_eq(report.recoveries.size(), 2u);
    cr_assert(t.f.disk_manifest().entries.empty());
}

Test(store_integrity, a_file_that_is_neither_old_nor_pending_is_a_problem)
{
    TwoVersions t;
    Bytes other = t.file_two;
    other[60] ^= 0x01;
    t.crash_after_intent(other);
    const IntegrityReport report = t.f.store->verify_integrity();
    cr_assert(report.recoveries.empty());
    cr_assert(kinds_for(report, "k") == (std::vector<Kind>{Kind::HashMismatch, Kind::AuthenticationFailed}), "%s",
              describe_all(report).c_str());
}

// --- rotation-required marks ------------------------------------------------------------------

TestSuite(store_rotation, .init = make_sodium_root, .fini = remove_root);

Test(store_rotation, marks_persist_gate_use_and_are_cleared_by_rotate)
{
    Fixture f;
    const Bytes value = random_bytes(16);
    f.store->put("a", value, kT1);
    f.store->put("b", random_bytes(16), kT1);
    cr_assert_not(f.store->rotation_required("a"));
    f.store->check_usable("a");

    const std::uint64_t before = f.store->manifest_generation();
    cr_assert_eq(f.store->mark_all_rotation_required(kT2), 2u);
    cr_assert_eq(f.store->manifest_generation(), before + 1, "marking all is not one manifest write");
    cr_assert(f.store->rotation_required("a") && f.store->rotation_required("b"));
    cr_assert_eq(f.disk_manifest().find("a")->rotation_required_since_usec, kT2);

    f.reopen();  // durable
    cr_assert(f.store->rotation_required("a") && f.store->rotation_required("b"));
    for (const auto& entry : f.store->list()) {
        cr_assert(entry.rotation_required, "list() hides the mark of %s", entry.name.c_str());
        cr_assert(entry.integrity_ok);
    }
    std::string message;
    cr_assert(vault_error_of([&] { f.store->check_usable("a"); }, &message) == ErrorCode::IntegrityFailure);
    cr_assert(message == "secret a must be rotated before use", "%s", message.c_str());
    cr_assert(vault_error_of([&] { (void)f.store->open("a"); }, &message) == ErrorCode::IntegrityFailure);
    cr_assert(message == "secret a must be rotated before use", "%s", message.c_str());
    f.expect_ok("marks are not integrity problems");

    cr_assert_eq(f.store->mark_all_rotation_required(kT2 + 5), 0u, "already marked secrets counted again");
    cr_assert_eq(f.disk_manifest().find("a")->rotation_required_since_usec, kT2, "the first mark's time was lost");

    const Bytes fresh = random_bytes(16);
    f.store->rotate("a", fresh, kT2 + 10);
    cr_assert_not(f.store->rotation_required("a"));
    cr_assert(f.store->rotation_required("b"), "rotating a cleared b's mark");
    cr_assert(same(f.store->open("a"), fresh));
    f.reopen();
    cr_assert_not(f.store->rotation_required("a"));
    cr_assert(f.store->rotation_required("b"));
    const auto entries = f.store->list();
    cr_assert_not(entries[0].rotation_required);
    cr_assert(entries[1].rotation_required);
}

Test(store_rotation, queries_on_unknown_names_and_an_empty_store)
{
    Fixture f;
    cr_assert_eq(f.store->mark_all_rotation_required(kT1), 0u);
    cr_assert(vault_error_of([&] { (void)f.store->rotation_required("ghost"); }) == ErrorCode::NotFound);
    cr_assert(vault_error_of([&] { f.store->check_usable("ghost"); }) == ErrorCode::NotFound);
    cr_assert(vault_error_of([&] { f.store->check_usable("../x"); }) == ErrorCode::InvalidArgument);
    f.store->put("later", random_bytes(4), kT2);
    cr_assert_not(f.store->rotation_required("later"), "a secret put after the incident is marked");
    f.store->check_usable("later");
}

Test(store_rotation, remove_and_put_again_starts_unmarked)
{
    Fixture f;
    f.store->put("a", random_bytes(4), kT1);
    (void)f.store->mark_all_rotation_required(kT2);
    f.store->remove("a");
    f.store->put("a", random_bytes(4), kT2);
    cr_assert_not(f.store->rotation_required("a"));
}
