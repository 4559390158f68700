// The store's start-up check in two halves (issue 9, fail closed): inspecting an interrupted write
// finds the recovery and writes nothing, so the daemon can record it in the audit log first;
// applying it then rewrites the manifest.
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "common/vault_error.hpp"
#include "daemon/store/manifest.hpp"
#include "daemon/store/secret_store.hpp"
#include "tests/unit/daemon/store_test_support.hpp"

namespace fs = std::filesystem;
using namespace codexvault;

using namespace codexvault::scratch;

namespace {

store::Manifest disk_manifest(const fs::path& path, const Bytes& key)
{
    const Bytes raw = read_file(path);
    auto decoded = store::decode_manifest(std::string(raw.begin(), raw.end()), key);
    cr_assert(decoded.manifest.has_value(), "manifest does not decode: %s", decoded.detail.c_str());
    return *decoded.manifest;
}

}  // namespace

TestSuite(store_inspection, .init = make_sodium_root, .fini = remove_root);

Test(store_inspection, inspecting_an_interrupted_write_changes_nothing_until_applied)
{
    const Bytes key = random_bytes(32);
    const Bytes manifest_key = random_bytes(32);
    const fs::path dir = g_root / "secrets";
    const fs::path manifest_path = dir / "manifest";
    const Bytes one = random_bytes(24);
    const Bytes two = random_bytes(24);
    constexpr std::uint64_t kT1 = 1'700'000'000'000'000ULL;
    Bytes file_two;
    store::Manifest manifest_one;
    {
        store::SecretStore s(dir, key, manifest_key);
        s.put("k", one, kT1);
        manifest_one = disk_manifest(manifest_path, manifest_key);
        s.rotate("k", two, kT1 + 1);
        file_two = read_file(dir / "k.secret");
    }
    // A crash between the rename and the second manifest write: intent recorded, file renamed.
    store::Manifest pending = manifest_one;
    pending.generation += 1;
    pending.find("k")->pending = store::PendingChange{2, store::hash_sealed_file(file_two)};
    const std::string text = store::encode_manifest(pending, manifest_key);
    write_file(manifest_path, Bytes(text.begin(), text.end()));

    store::SecretStore s(dir, key, manifest_key);
    const Bytes before = read_file(manifest_path);
    const store::IntegrityInspection inspection = s.inspect_integrity();
    cr_assert_eq(inspection.report.recoveries.size(), 1u);
    cr_assert(inspection.report.recoveries[0].rolled_forward);
    cr_assert(inspection.write, "a recovery rewrites the manifest when applied");
    cr_assert(read_file(manifest_path) == before, "inspection rewrote the manifest");
    bool refused = false;
    try {
        (void)s.open("k");
    } catch (const VaultError& e) {
        refused = e.code() == ErrorCode::IntegrityFailure;
    }
    cr_assert(refused, "the secret stays pending until the recovery is applied");

    s.apply_integrity(inspection);
    const store::SecureBuffer value = s.open("k");
    cr_assert(value.size() == two.size() && std::equal(two.begin(), two.end(), value.data()));
    const store::Manifest after = disk_manifest(manifest_path, manifest_key);
    cr_assert_not(after.find("k")->pending.has_value());
    cr_assert_eq(after.generation, pending.generation + 1);
}
