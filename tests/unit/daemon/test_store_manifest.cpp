// The store manifest's pure part (manifest.hpp): the authenticated encoding, its strict parser
// (every byte flip, every truncation, every non-canonical spelling refused), the comparison that
// names each kind of problem, crash recovery of pending writes, upgrade and rotation marks.
#include <sodium.h>

#include <criterion/criterion.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "common/bytes.hpp"
#include "daemon/store/manifest.hpp"

using codexvault::store::decode_manifest;
using codexvault::store::encode_manifest;
using codexvault::store::FileHash;
using codexvault::store::IntegrityProblem;
using codexvault::store::IntegrityProblemKind;
using codexvault::store::Manifest;
using codexvault::store::ManifestEntry;
using codexvault::store::ManifestFault;
using codexvault::store::ObservedFile;
using codexvault::store::PendingChange;

namespace {

using Bytes = std::vector<std::uint8_t>;
using Kind = IntegrityProblemKind;

void init_sodium()
{
    cr_assert_geq(sodium_init(), 0);
}

Bytes key_of(std::uint8_t fill)
{
    return Bytes(32, fill);
}

FileHash hash_of(std::uint8_t fill)
{
    FileHash hash{};
    hash.fill(fill);
    return hash;
}

std::string hex(const FileHash& hash)
{
    return codexvault::bytes::to_hex(hash);
}

// A manifest that uses every field and every pending form.
Manifest rich_manifest()
{
    Manifest manifest;
    manifest.generation = 18446744073709551615ULL;
    manifest.upsert(ManifestEntry{"zeta", 4294967295U, hash_of(1), 0, std::nullopt});
    manifest.upsert(ManifestEntry{"alpha", 1, hash_of(2), 1700000000000000ULL, std::nullopt});
    manifest.upsert(ManifestEntry{"Mid_1.x-y", 2, hash_of(3), 0, PendingChange{3, hash_of(4)}});
    manifest.upsert(ManifestEntry{"new", 0, std::nullopt, 0, PendingChange{1, hash_of(5)}});
    manifest.upsert(ManifestEntry{"old", 7, hash_of(6), 5, PendingChange{}});
    return manifest;
}

// Authentic text with a body of our choosing: the parser's strictness must not depend on the MAC.
std::string with_mac(const std::string& body, const Bytes& key)
{
    std::array<std::uint8_t, crypto_auth_BYTES> mac{};
    crypto_auth(mac.data(), reinterpret_cast<const std::uint8_t*>(body.data()), body.size(), key.data());
    return body + "mac " + codexvault::bytes::to_hex(mac) + "\n";
}

std::vector<Kind> kinds_for(const std::vector<IntegrityProblem>& problems, const std::string& name)
{
    std::vector<Kind> kinds;
    for (const auto& problem : problems) {
        if (problem.name == name) {
            kinds.push_back(problem.kind);
        }
    }
    return kinds;
}

ObservedFile file(const std::string& name, std::uint8_t hash_fill, std::uint32_t version, bool authentic = true)
{
    return ObservedFile{name, hash_of(hash_fill), authentic, version};
}

}  // namespace

TestSuite(store_manifest_codec, .init = init_sodium);

Test(store_manifest_codec, round_trips_every_field)
{
    const Bytes key = key_of(7);
    for (const Manifest& manifest : {Manifest{}, rich_manifest()}) {
        const std::string text = encode_manifest(manifest, key);
        const auto decoded = decode_manifest(text, key);
        cr_assert(decoded.manifest.has_value(), "decode failed: %s", decoded.detail.c_str());
        cr_assert(*decoded.manifest == manifest);
        cr_assert(encode_manifest(*decoded.manifest, key) == text, "encoding is not canonical");
    }
}

Test(store_manifest_codec, encoding_is_the_documented_text)
{
    const Bytes key = key_of(7);
    Manifest manifest;
    manifest.generation = 12;
    manifest.upsert(ManifestEntry{"gh", 3, hash_of(0xab), 99, std::nullopt});
    manifest.upsert(ManifestEntry{"new", 0, std::nullopt, 0, PendingChange{1, hash_of(0x01)}});
    manifest.upsert(ManifestEntry{"old", 2, hash_of(0x02), 0, PendingChange{}});
    const std::string body = "codex-vault-manifest 1\ngeneration 12\nsecret gh 3 " + hex(hash_of(0xab)) +
                             " 99 -\nsecret new 0 - 0 1:" + hex(hash_of(0x01)) + "\nsecret old 2 " +
                             hex(hash_of(0x02)) + " 0 remove\n";
    cr_assert(encode_manifest(manifest, key) == with_mac(body, key));
}

Test(store_manifest_codec, every_flipped_bit_is_refused)
{
    const Bytes key = key_of(7);
    const std::string text = encode_manifest(rich_manifest(), key);
    for (std::size_t i = 0; i < text.size(); ++i) {
        for (const int bit : {0, 5, 7}) {
            std::string edited = text;
            edited[i] = static_cast<char>(edited[i] ^ (1 << bit));
            const auto decoded = decode_manifest(edited, key);
            cr_assert_not(decoded.manifest.has_value(), "flip at byte %zu bit %d accepted", i, bit);
        }
    }
}

Test(store_manifest_codec, every_truncation_and_extension_is_refused)
{
    const Bytes key = key_of(7);
    const std::string text = encode_manifest(rich_manifest(), key);
    for (std::size_t length = 0; length < text.size(); ++length) {
        cr_assert_not(decode_manifest(text.substr(0, length), key).manifest.has_value(), "length %zu", length);
    }
    for (const char* tail : {"\n", "x", "mac 00\n", " "}) {
        cr_assert_not(decode_manifest(text + tail, key).manifest.has_value());
    }
}

Test(store_manifest_codec, another_key_is_unauthentic_a_broken_mac_line_malformed)
{
    const std::string text = encode_manifest(rich_manifest(), key_of(7));
    const auto other = decode_manifest(text, key_of(8));
    cr_assert_not(other.manifest.has_value());
    cr_assert(other.fault == ManifestFault::Unauthentic);

    std::string upper = text;
    const std::size_t mac_at = upper.rfind("mac ") + 4;
    std::transform(upper.begin() + static_cast<long>(mac_at), upper.end(), upper.begin() + static_cast<long>(mac_at),
                   [](char c) { return static_cast<char>(std::toupper(static_cast<unsigned char>(c))); });
    if (upper != text) {
        cr_assert(decode_manifest(upper, key_of(7)).fault == ManifestFault::Malformed);
    }
    cr_assert(decode_manifest("", key_of(7)).fault == ManifestFault::Malformed);
    cr_assert(decode_manifest("mac 00\n", key_of(7)).fault == ManifestFault::Malformed);
}

Test(store_manifest_codec, authentic_but_non_canonical_bodies_are_malformed)
{
    const Bytes key = key_of(7);
    const std::string h = hex(hash_of(0xab));  // has letters, so an uppercase spelling differs
    const std::string head = "codex-vault-manifest 1\ngeneration 5\n";
    // The valid baseline first, so each refusal below is about the one change it makes.
    const auto good = decode_manifest(with_mac(head + "secret a 1 " + h + " 0 -\n", key), key);
    cr_assert(good.manifest.has_value(), "%s", good.detail.c_str());

    std::string upper_hash = h;
    std::transform(upper_hash.begin(), upper_hash.end(), upper_hash.begin(),
                   [](char c) { return static_cast<char>(std::toupper(static_cast<unsigned char>(c))); });
    const std::vector<std::string> bad = {
        "codex-vault-manifest 2\ngeneration 5\n",
        "codex-vault-manifest 1\n",
        "codex-vault-manifest 1\ngeneration 05\n",
        "codex-vault-manifest 1\ngeneration 0\n",
        "codex-vault-manifest 1\ngeneration +5\n",
        "codex-vault-manifest 1\ngeneration 18446744073709551616\n",
        "codex-vault-manifest 1\ngeneration  5\n",
        "codex-vault-manifest 1\r\ngeneration 5\n",
        "generation 5\ncodex-vault-manifest 1\n",
        head + "secret a 01 " + h + " 0 -\n",
        head + "secret a 1 " + upper_hash + " 0 -\n",
        head + "secret a 1 " + h.substr(2) + " 0 -\n",
        head + "secret a 1 " + h + " 00 -\n",
        head + "secret a 1 " + h + " 0 -\nsecret a 2 " + h + " 0 -\n",  // duplicate
        head + "secret b 1 " + h + " 0 -\nsecret a 1 " + h + " 0 -\n",  // unsorted
        head + "secret .a 1 " + h + " 0 -\n",
        head + "secret a/b 1 " + h + " 0 -\n",
        head + "secret " + std::string(65, 'a') + " 1 " + h + " 0 -\n",
        head + "secret a 0 " + h + " 0 -\n",            // version 0 with a hash
        head + "secret a 1 - 0 -\n",                    // no hash, not pending
        head + "secret a 0 - 0 remove\n",               // removal of a put in progress
        head + "secret a 2 " + h + " 0 2:" + h + "\n",  // pending version not above
        head + "secret a 2 " + h + " 0 3:-\n",
        head + "secret a 2 " + h + " 0 x\n",
        head + "secret a 2 " + h + " 0 -  \n",
        head + "secret a 2 " + h + " 0\n",
        head + "secret a 2 " + h + " 0 - extra\n",
        head + "Secret a 2 " + h + " 0 -\n",
        head + "\n",
        head + "secret a 4294967296 " + h + " 0 -\n",
    };
    for (const auto& body : bad) {
        const auto decoded = decode_manifest(with_mac(body, key), key);
        cr_assert_not(decoded.manifest.has_value(), "accepted: %s", body.c_str());
        cr_assert(decoded.fault == ManifestFault::Malformed, "not reported malformed: %s", body.c_str());
    }
}

Test(store_manifest_codec, encode_refuses_what_decode_would_refuse)
{
    const Bytes key = key_of(7);
    std::vector<Manifest> invalid(6);
    invalid[0].generation = 0;
    invalid[1].entries = {ManifestEntry{"b", 1, hash_of(1), 0, {}}, ManifestEntry{"a", 1, hash_of(1), 0, {}}};
    invalid[2].entries = {ManifestEntry{"bad name", 1, hash_of(1), 0, {}}};
    invalid[3].entries = {ManifestEntry{"a", 0, hash_of(1), 0, {}}};
    invalid[4].entries = {ManifestEntry{"a", 2, hash_of(1), 0, PendingChange{2, hash_of(2)}}};
    invalid[5].entries = {ManifestEntry{"a", 0, std::nullopt, 0, PendingChange{}}};
    for (const auto& manifest : invalid) {
        bool refused = false;
        try {
            (void)encode_manifest(manifest, key);
        } catch (const std::invalid_argument&) {
            refused = true;
        }
        cr_assert(refused);
    }
    bool refused = false;
    try {
        (void)encode_manifest(Manifest{}, Bytes(16, 1));
    } catch (const std::invalid_argument&) {
        refused = true;
    }
    cr_assert(refused, "a short key was accepted");
}

Test(store_manifest_codec, entry_limit_is_enforced_both_ways)
{
    const Bytes key = key_of(7);
    Manifest manifest;
    for (std::size_t i = 0; i <= codexvault::store::kMaxManifestEntries; ++i) {
        manifest.entries.push_back(ManifestEntry{"s" + std::to_string(1000000 + i), 1, hash_of(1), 0, {}});
    }
    cr_assert_not(codexvault::store::manifest_violation(manifest).empty());
    manifest.entries.pop_back();
    const std::string text = encode_manifest(manifest, key);
    cr_assert_lt(text.size(), codexvault::store::kMaxManifestBytes);
    cr_assert(decode_manifest(text, key).manifest.has_value());
}

// --- compare, settle, upgrade, marks ----------------------------------------------------------

TestSuite(store_manifest_compare, .init = init_sodium);

Test(store_manifest_compare, intact_store_has_no_problems)
{
    Manifest manifest;
    manifest.upsert(ManifestEntry{"a", 1, hash_of(1), 0, {}});
    manifest.upsert(ManifestEntry{"b", 3, hash_of(2), 0, {}});
    const std::vector<ObservedFile> files = {file("b", 2, 3), file("a", 1, 1)};
    cr_assert(codexvault::store::compare_manifest(manifest, files).empty());
    cr_assert(codexvault::store::compare_manifest(Manifest{}, {}).empty());
}

Test(store_manifest_compare, names_each_problem_and_orders_them)
{
    Manifest manifest;
    manifest.upsert(ManifestEntry{"missing", 1, hash_of(1), 0, {}});
    manifest.upsert(ManifestEntry{"flipped", 1, hash_of(2), 0, {}});
    manifest.upsert(ManifestEntry{"replayed", 3, hash_of(3), 0, {}});
    manifest.upsert(ManifestEntry{"odd", 1, hash_of(4), 0, {}});
    manifest.upsert(ManifestEntry{"fine", 1, hash_of(5), 0, {}});
    manifest.upsert(ManifestEntry{"putting", 0, std::nullopt, 0, PendingChange{1, hash_of(6)}});
    std::vector<ObservedFile> files = {
        file("flipped", 9, 1, false), file("replayed", 8, 2),     ObservedFile{"odd", std::nullopt, false, 0},
        file("fine", 5, 1),           file("extra", 7, 1, false), file("adopted-elsewhere", 6, 1),
    };
    const auto problems = codexvault::store::compare_manifest(manifest, files);
    cr_assert(kinds_for(problems, "missing") == std::vector<Kind>{Kind::SecretMissing});
    cr_assert(kinds_for(problems, "flipped") == (std::vector<Kind>{Kind::HashMismatch, Kind::AuthenticationFailed}));
    cr_assert(kinds_for(problems, "replayed") == (std::vector<Kind>{Kind::HashMismatch, Kind::VersionMismatch}));
    cr_assert(kinds_for(problems, "odd") == (std::vector<Kind>{Kind::HashMismatch, Kind::AuthenticationFailed}));
    cr_assert(kinds_for(problems, "extra") == (std::vector<Kind>{Kind::SecretUnlisted, Kind::AuthenticationFailed}));
    cr_assert(kinds_for(problems, "adopted-elsewhere") == std::vector<Kind>{Kind::SecretUnlisted});
    cr_assert(kinds_for(problems, "fine").empty());
    cr_assert(kinds_for(problems, "putting").empty(), "a pending put with no file is no loss");
    cr_assert(
        std::is_sorted(problems.begin(), problems.end(), [](const auto& a, const auto& b) { return a.name < b.name; }));
    for (const auto& problem : problems) {
        const std::string text = codexvault::store::describe(problem);
        cr_assert(text.find("secret '" + problem.name + "': " + codexvault::store::to_string(problem.kind)) == 0, "%s",
                  text.c_str());
    }
    cr_assert(codexvault::store::describe(IntegrityProblem{Kind::ManifestUnauthentic, "", "x"}) ==
              "store manifest: manifest-unauthentic (x)");
}

Test(store_manifest_compare, settle_rolls_forward_and_back)
{
    using codexvault::store::settle_pending;
    Manifest base;
    base.upsert(ManifestEntry{"rot", 1, hash_of(1), 77, PendingChange{2, hash_of(2)}});
    base.upsert(ManifestEntry{"put", 0, std::nullopt, 0, PendingChange{1, hash_of(3)}});
    base.upsert(ManifestEntry{"del", 4, hash_of(4), 0, PendingChange{}});

    {  // crash after the file changed: roll forward; the mark stays (fail closed)
        Manifest m = base;
        const std::vector<ObservedFile> files = {file("rot", 2, 2), file("put", 3, 1)};
        const auto recoveries = codexvault::store::settle_all_pending(m, files);
        cr_assert_eq(recoveries.size(), 3u);
        for (const auto& recovery : recoveries) {
            cr_assert(recovery.rolled_forward, "%s", recovery.name.c_str());
        }
        cr_assert(*m.find("rot") == (ManifestEntry{"rot", 2, hash_of(2), 77, std::nullopt}));
        cr_assert(*m.find("put") == (ManifestEntry{"put", 1, hash_of(3), 0, std::nullopt}));
        cr_assert_null(m.find("del"));
        cr_assert(codexvault::store::compare_manifest(m, files).empty());
    }
    {  // crash before the file changed: roll back
        Manifest m = base;
        const std::vector<ObservedFile> files = {file("rot", 1, 1), file("del", 4, 4)};
        const auto recoveries = codexvault::store::settle_all_pending(m, files);
        cr_assert_eq(recoveries.size(), 3u);
        for (const auto& recovery : recoveries) {
            cr_assert_not(recovery.rolled_forward, "%s", recovery.name.c_str());
        }
        cr_assert(*m.find("rot") == (ManifestEntry{"rot", 1, hash_of(1), 77, std::nullopt}));
        cr_assert_null(m.find("put"));
        cr_assert(*m.find("del") == (ManifestEntry{"del", 4, hash_of(4), 0, std::nullopt}));
        cr_assert(codexvault::store::compare_manifest(m, files).empty());
    }
    {  // a file that is neither: stays pending, reported
        Manifest m = base;
        const ObservedFile stranger = file("rot", 9, 1);
        cr_assert_not(settle_pending(m, "rot", &stranger).has_value());
        cr_assert(m.find("rot")->pending.has_value());
        cr_assert_not(settle_pending(m, "rot", nullptr).has_value());
        const std::vector<ObservedFile> files = {stranger};
        cr_assert(kinds_for(codexvault::store::compare_manifest(m, files), "rot") ==
                  std::vector<Kind>{Kind::HashMismatch});
        cr_assert_not(settle_pending(m, "unknown", nullptr).has_value());
    }
}

Test(store_manifest_compare, upgrade_lists_only_authentic_files)
{
    const std::vector<ObservedFile> files = {file("b", 2, 5), file("a", 1, 1), file("bad", 3, 1, false),
                                             ObservedFile{"odd", std::nullopt, false, 0}};
    const Manifest manifest = codexvault::store::manifest_from_files(files, 1);
    cr_assert_eq(manifest.generation, 1u);
    cr_assert_eq(manifest.entries.size(), 2u);
    cr_assert(manifest.entries[0] == (ManifestEntry{"a", 1, hash_of(1), 0, std::nullopt}));
    cr_assert(manifest.entries[1] == (ManifestEntry{"b", 5, hash_of(2), 0, std::nullopt}));
    const auto problems = codexvault::store::compare_manifest(manifest, files);
    cr_assert(kinds_for(problems, "bad") == (std::vector<Kind>{Kind::SecretUnlisted, Kind::AuthenticationFailed}));
    cr_assert(kinds_for(problems, "odd") == (std::vector<Kind>{Kind::SecretUnlisted, Kind::AuthenticationFailed}));
    cr_assert_eq(problems.size(), 4u);
}

Test(store_manifest_compare, marks_are_set_once_and_never_zero)
{
    Manifest manifest;
    manifest.upsert(ManifestEntry{"a", 1, hash_of(1), 0, {}});
    manifest.upsert(ManifestEntry{"b", 1, hash_of(2), 42, {}});
    cr_assert_eq(codexvault::store::mark_all_rotation_required(manifest, 100), 1u);
    cr_assert_eq(manifest.find("a")->rotation_required_since_usec, 100u);
    cr_assert_eq(manifest.find("b")->rotation_required_since_usec, 42u, "an earlier mark was overwritten");
    cr_assert_eq(codexvault::store::mark_all_rotation_required(manifest, 200), 0u);
    Manifest zero;
    zero.upsert(ManifestEntry{"z", 1, hash_of(1), 0, {}});
    cr_assert_eq(codexvault::store::mark_all_rotation_required(zero, 0), 1u);
    cr_assert_eq(zero.find("z")->rotation_required_since_usec, 1u);
}

Test(store_manifest_compare, hash_is_blake2b_256_of_the_bytes)
{
    const Bytes data = {1, 2, 3};
    FileHash expected{};
    crypto_generichash(expected.data(), expected.size(), data.data(), data.size(), nullptr, 0);
    cr_assert(codexvault::store::hash_sealed_file(data) == expected);
    cr_assert(codexvault::store::hash_sealed_file(Bytes{1, 2, 4}) != expected);
}
