// The secret store and its key ring: round trips, the AEAD binding of name,
// version and times, tamper and truncation detection, crash safety of the two-phase write,
// permission checks that name the path, and key loading order. (How a value descriptor is read:
// test_value_input.cpp.)
#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

#include "common/limits.hpp"
#include "common/vault_error.hpp"
#include "daemon/store/keyring.hpp"
#include "daemon/store/secret_store.hpp"
#include "daemon/store/secure_buffer.hpp"
#include "lib/fileio/unique_fd.hpp"
#include "tests/unit/daemon/store_test_support.hpp"

namespace fs = std::filesystem;
using codexvault::ErrorCode;
using codexvault::UniqueFd;
using codexvault::VaultError;
using codexvault::store::Keyring;
using codexvault::store::PendingWrite;
using codexvault::store::SecretMetadata;
using codexvault::store::SecretStore;
using codexvault::store::SecureBuffer;
using codexvault::store::SecureMemoryKind;

using namespace codexvault::scratch;

namespace {

constexpr std::uint64_t kT1 = 1'700'000'000'000'000ULL;
constexpr std::uint64_t kT2 = kT1 + 3'600'000'000ULL;

Bytes test_key()
{
    return random_bytes(32);
}

void flip_bit(const fs::path& path, std::size_t offset)
{
    Bytes content = read_file(path);
    cr_assert_lt(offset, content.size());
    content[offset] ^= 0x04;
    write_file(path, content);
}

void expect_integrity_failure(const SecretStore& store, const std::string& name, const char* what)
{
    std::string message;
    const auto code = vault_error_of([&] { (void)store.open(name); }, &message);
    cr_assert(code == ErrorCode::IntegrityFailure, "open() after %s did not report IntegrityFailure", what);
    expect_text(message.c_str(), ("secret '" + name + "' failed integrity check").c_str());
}

struct StoreFixture {
    Bytes key = test_key();
    Bytes manifest_key = test_key();
    fs::path dir = g_root / "secrets";
    SecretStore store{dir, key, manifest_key};
};

}  // namespace

// --- SecretStore --------------------------------------------------------------------------

TestSuite(secret_store, .init = make_sodium_root, .fini = remove_root);

Test(secret_store, put_then_open_round_trips_and_lists_metadata)
{
    StoreFixture f;
    const Bytes value = bytes_of("sk-test-0123456789");
    const SecretMetadata put = f.store.put("openai.api-key", value, kT1);
    cr_assert_eq(put.version, 1u);
    cr_assert_eq(put.created_usec, kT1);
    cr_assert_eq(put.rotated_usec, kT1);
    cr_assert(put.integrity_ok);

    const SecureBuffer opened = f.store.open("openai.api-key");
    cr_assert(same(opened, value));
    cr_assert_eq(opened.kind(), SecureMemoryKind::SodiumMalloc);  // plaintext goes to guarded memory
    cr_assert(f.store.contains("openai.api-key"));
    cr_assert_not(f.store.contains("other"));
    cr_assert_not(f.store.contains("../escape"));

    const auto entries = f.store.list();
    cr_assert_eq(entries.size(), 1u);
    expect_text(entries[0].name.c_str(), "openai.api-key");
    cr_assert_eq(entries[0].version, 1u);
    cr_assert_eq(entries[0].created_usec, kT1);
    cr_assert_eq(entries[0].rotated_usec, kT1);
    cr_assert(entries[0].integrity_ok);

    struct stat st {};
    cr_assert_eq(::stat((f.dir / "openai.api-key.secret").c_str(), &st), 0);
    cr_assert_eq(st.st_mode & 07777, 0600u);
    cr_assert(temp_files_in(f.dir).empty());
}

Test(secret_store, store_survives_reopening_with_the_same_key)
{
    StoreFixture f;
    const Bytes value = random_bytes(1000);
    f.store.put("token", value, kT1);
    SecretStore again(f.dir, f.key, f.manifest_key);
    cr_assert(same(again.open("token"), value));

    const Bytes other_key = test_key();
    SecretStore wrong(f.dir, other_key, f.manifest_key);
    expect_integrity_failure(wrong, "token", "opening with another key");
}

Test(secret_store, list_is_sorted_and_ignores_foreign_files)
{
    StoreFixture f;
    f.store.put("zeta", bytes_of("z"), kT1);
    f.store.put("alpha", bytes_of("a"), kT1);
    f.store.put("Mid_1", bytes_of("m"), kT1);
    write_file(f.dir / "notes.txt", bytes_of("hello"));
    write_file(f.dir / "alpha.secret.bak", bytes_of("old"));
    write_file(f.dir / "bad name.secret", bytes_of("x"));
    write_file(f.dir / "-dash.secret", bytes_of("x"));
    write_file(f.dir / ".secret", bytes_of("x"));
    fs::create_directory(f.dir / "subdir");

    const auto entries = f.store.list();
    cr_assert_eq(entries.size(), 3u);
    expect_text(entries[0].name.c_str(), "Mid_1");
    expect_text(entries[1].name.c_str(), "alpha");
    expect_text(entries[2].name.c_str(), "zeta");
}

Test(secret_store, rotate_bumps_version_and_keeps_created_time)
{
    StoreFixture f;
    f.store.put("gh-token", bytes_of("first"), kT1);
    const SecretMetadata rotated = f.store.rotate("gh-token", bytes_of("second value"), kT2);
    cr_assert_eq(rotated.version, 2u);
    cr_assert_eq(rotated.created_usec, kT1);
    cr_assert_eq(rotated.rotated_usec, kT2);
    cr_assert(same(f.store.open("gh-token"), bytes_of("second value")));

    const SecretMetadata third = f.store.rotate("gh-token", bytes_of("third"), kT2 + 1);
    cr_assert_eq(third.version, 3u);
    cr_assert_eq(third.created_usec, kT1);

    const auto entries = f.store.list();
    cr_assert_eq(entries.size(), 1u);
    cr_assert_eq(entries[0].version, 3u);
    cr_assert_eq(entries[0].created_usec, kT1);
    cr_assert_eq(entries[0].rotated_usec, kT2 + 1);
    cr_assert(temp_files_in(f.dir).empty());
}

Test(secret_store, put_refuses_an_existing_name)
{
    StoreFixture f;
    f.store.put("dup", bytes_of("one"), kT1);
    std::string message;
    const auto code = vault_error_of([&] { f.store.put("dup", bytes_of("two"), kT2); }, &message);
    cr_assert(code == ErrorCode::InvalidArgument);
    expect_text(message.c_str(), "secret 'dup' already exists; use rotate");
    cr_assert(same(f.store.open("dup"), bytes_of("one")));
    cr_assert(temp_files_in(f.dir).empty());
}

Test(secret_store, missing_names_are_not_found)
{
    StoreFixture f;
    std::string message;
    cr_assert(vault_error_of([&] { (void)f.store.open("ghost"); }, &message) == ErrorCode::NotFound);
    expect_text(message.c_str(), "no secret named 'ghost'");
    cr_assert(vault_error_of([&] { f.store.rotate("ghost", bytes_of("v"), kT1); }) == ErrorCode::NotFound);
    cr_assert(vault_error_of([&] { f.store.remove("ghost"); }) == ErrorCode::NotFound);
}

Test(secret_store, invalid_names_and_values_are_refused)
{
    StoreFixture f;
    for (const char* name : {"", "../x", "a/b", ".hidden", "-x", "white space", "x\n"}) {
        cr_assert(vault_error_of([&] { f.store.put(name, bytes_of("v"), kT1); }) == ErrorCode::InvalidArgument,
                  "name '%s' accepted", name);
        cr_assert(vault_error_of([&] { (void)f.store.open(name); }) == ErrorCode::InvalidArgument);
        cr_assert(vault_error_of([&] { f.store.remove(name); }) == ErrorCode::InvalidArgument);
    }
    cr_assert(vault_error_of([&] { f.store.put(std::string(65, 'a'), bytes_of("v"), kT1); }) ==
              ErrorCode::InvalidArgument);

    std::string message;
    cr_assert(vault_error_of([&] { f.store.put("empty", Bytes{}, kT1); }, &message) == ErrorCode::InvalidArgument);
    expect_text(message.c_str(), "secret value is empty");
    const Bytes too_big(codexvault::limits::kMaxSecretBytes + 1, 'x');
    cr_assert(vault_error_of([&] { f.store.put("big", too_big, kT1); }, &message) == ErrorCode::InvalidArgument);
    expect_text(message.c_str(), "secret value exceeds 65536 bytes");

    const Bytes largest = random_bytes(codexvault::limits::kMaxSecretBytes);
    f.store.put("largest", largest, kT1);
    cr_assert(same(f.store.open("largest"), largest));
    cr_assert_eq(f.store.list().size(), 1u);
}

Test(secret_store, name_is_bound_a_file_copied_over_another_fails)
{
    StoreFixture f;
    f.store.put("a", bytes_of("value of a"), kT1);
    f.store.put("b", bytes_of("value of b"), kT1);
    fs::copy_file(f.dir / "a.secret", f.dir / "b.secret", fs::copy_options::overwrite_existing);

    expect_integrity_failure(f.store, "b", "copying a.secret over b.secret");
    cr_assert(same(f.store.open("a"), bytes_of("value of a")));
    const auto entries = f.store.list();
    cr_assert_eq(entries.size(), 2u);
    cr_assert(entries[0].integrity_ok);
    cr_assert_not(entries[1].integrity_ok);
}

Test(secret_store, a_flipped_bit_anywhere_is_detected)
{
    struct Region {
        const char* what;
        std::size_t offset;
    };
    const Region regions[] = {
        {"magic", 3},  {"version", 8},    {"created time", 13}, {"rotated time", 27},
        {"nonce", 28}, {"nonce end", 51}, {"ciphertext", 52},   {"ciphertext middle", 60},
    };
    const Bytes value = random_bytes(40);
    for (const auto& region : regions) {
        StoreFixture f;
        f.store.put("s", value, kT1);
        f.store.rotate("s", value, kT2);  // so created and rotated differ
        flip_bit(f.dir / "s.secret", region.offset);

        expect_integrity_failure(f.store, "s", region.what);
        cr_assert(vault_error_of([&] { f.store.rotate("s", value, kT2 + 1); }) == ErrorCode::IntegrityFailure,
                  "rotate() accepted a file with a flipped bit in the %s", region.what);
        std::vector<SecretMetadata> entries;
        cr_assert(runtime_error_of([&] { entries = f.store.list(); }).empty());
        cr_assert_eq(entries.size(), 1u);
        cr_assert_not(entries[0].integrity_ok, "list() reports a tampered %s as intact", region.what);
        remove_root();
        make_root();
    }
    // The tag is the last 16 bytes.
    StoreFixture f;
    f.store.put("s", value, kT1);
    const std::size_t size = fs::file_size(f.dir / "s.secret");
    flip_bit(f.dir / "s.secret", size - 1);
    expect_integrity_failure(f.store, "s", "a flipped tag bit");
}

Test(secret_store, list_reports_the_fields_of_a_damaged_file)
{
    StoreFixture f;
    f.store.put("s", bytes_of("value"), kT1);
    f.store.rotate("s", bytes_of("value two"), kT2);
    flip_bit(f.dir / "s.secret", 60);  // ciphertext: the header still parses
    auto entries = f.store.list();
    cr_assert_eq(entries.size(), 1u);
    cr_assert_not(entries[0].integrity_ok);
    cr_assert_eq(entries[0].version, 2u);
    cr_assert_eq(entries[0].created_usec, kT1);
    cr_assert_eq(entries[0].rotated_usec, kT2);

    flip_bit(f.dir / "s.secret", 60);  // undo
    flip_bit(f.dir / "s.secret", 0);   // magic: nothing can be trusted to parse
    entries = f.store.list();
    cr_assert_not(entries[0].integrity_ok);
    cr_assert_eq(entries[0].version, 0u);
    cr_assert_eq(entries[0].created_usec, 0u);
}

Test(secret_store, truncated_files_fail_integrity)
{
    const Bytes value = random_bytes(100);
    for (const std::size_t length : {0, 4, 8, 11, 20, 27, 51, 52, 67, 151}) {
        StoreFixture f;
        f.store.put("t", value, kT1);
        const fs::path path = f.dir / "t.secret";
        cr_assert_eq(fs::file_size(path), 168u);  // 52 header + 100 + 16 tag
        fs::resize_file(path, length);

        expect_integrity_failure(f.store, "t", "truncation");
        std::vector<SecretMetadata> entries;
        cr_assert(runtime_error_of([&] { entries = f.store.list(); }).empty());
        cr_assert_eq(entries.size(), 1u);
        cr_assert_not(entries[0].integrity_ok);
        cr_assert_eq(entries[0].version, length >= 12 ? 1u : 0u, "length %zu", length);
        cr_assert_eq(entries[0].created_usec, length >= 20 ? kT1 : 0u, "length %zu", length);
        remove_root();
        make_root();
    }
}

Test(secret_store, oversized_or_odd_files_fail_integrity_without_throwing_from_list)
{
    StoreFixture f;
    f.store.put("big", bytes_of("v"), kT1);
    fs::resize_file(f.dir / "big.secret", 52 + codexvault::limits::kMaxSecretBytes + 16 + 1);
    expect_integrity_failure(f.store, "big", "growing the file past the largest sealed size");

    fs::create_directory(f.dir / "folder.secret");
    fs::create_symlink(f.dir / "big.secret", f.dir / "link.secret");
    ::mkfifo((f.dir / "fifo.secret").c_str(), 0600);
    expect_integrity_failure(f.store, "folder", "a directory in place of a file");
    expect_integrity_failure(f.store, "link", "a symlink in place of a file");
    expect_integrity_failure(f.store, "fifo", "a FIFO in place of a file");

    std::vector<SecretMetadata> entries;
    cr_assert(runtime_error_of([&] { entries = f.store.list(); }).empty());
    cr_assert_eq(entries.size(), 4u);
    for (const auto& entry : entries) {
        cr_assert_not(entry.integrity_ok, "%s reported intact", entry.name.c_str());
    }
}

Test(secret_store, remove_works_on_a_corrupt_file)
{
    StoreFixture f;
    f.store.put("gone", bytes_of("value"), kT1);
    fs::resize_file(f.dir / "gone.secret", 10);
    f.store.remove("gone");
    cr_assert_not(fs::exists(f.dir / "gone.secret"));
    cr_assert(f.store.list().empty());
    cr_assert(vault_error_of([&] { (void)f.store.open("gone"); }) == ErrorCode::NotFound);
    f.store.put("gone", bytes_of("again"), kT2);  // the name is free again
    cr_assert_eq(f.store.list()[0].version, 1u);
}

Test(secret_store, file_never_contains_the_plaintext)
{
    StoreFixture f;
    const Bytes canary = random_bytes(32);
    f.store.put("canary", canary, kT1);
    f.store.rotate("canary", canary, kT2);
    const Bytes raw = read_file(f.dir / "canary.secret");
    cr_assert_eq(raw.size(), 52u + canary.size() + 16u);
    // Any 8-byte window of the canary would be a leak; search for each.
    for (std::size_t i = 0; i + 8 <= canary.size(); ++i) {
        const auto hit = std::search(raw.begin(), raw.end(), canary.begin() + i, canary.begin() + i + 8);
        cr_assert(hit == raw.end(), "plaintext bytes %zu..%zu found in the sealed file", i, i + 8);
    }
}

Test(secret_store, crash_between_prepare_and_commit_keeps_the_old_value)
{
    StoreFixture f;
    const Bytes old_value = bytes_of("old value");
    f.store.put("db", old_value, kT1);

    const pid_t child = ::fork();
    cr_assert_geq(child, 0);
    if (child == 0) {
        // The child seals the rotation and "crashes" before commit: _exit() runs no destructor,
        // so nothing unlinks the temp file, as after a power cut.
        try {
            PendingWrite pending =
                f.store.prepare("db", bytes_of("new value"), SecretMetadata{"db", 2, kT1, kT2, true});
            ::_exit(0);  // while `pending` is alive: its destructor never runs
        } catch (...) {
            ::_exit(1);
        }
    }
    int status = 0;
    cr_assert_eq(::waitpid(child, &status, 0), child);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child failed to prepare");

    const auto leftovers = temp_files_in(f.dir);
    cr_assert_eq(leftovers.size(), 1u, "prepare() left no temp file behind");
    cr_assert(leftovers[0].rfind(".tmp.db.secret.", 0) == 0, "unexpected temp name %s", leftovers[0].c_str());
    cr_assert(same(f.store.open("db"), old_value));
    cr_assert_eq(f.store.list().size(), 1u);
    cr_assert_eq(f.store.list()[0].version, 1u);

    SecretStore restarted(f.dir, f.key, f.manifest_key);
    cr_assert(temp_files_in(f.dir).empty(), "a new SecretStore did not remove the stale temp file");
    cr_assert(same(restarted.open("db"), old_value));
}

Test(secret_store, pending_write_unlinks_unless_committed_and_moves_correctly)
{
    StoreFixture f;
    f.store.put("p", bytes_of("v1"), kT1);
    {
        PendingWrite dropped = f.store.prepare("p", bytes_of("v2"), SecretMetadata{"p", 2, kT1, kT2, true});
        cr_assert_eq(temp_files_in(f.dir).size(), 1u);
        cr_assert_eq(dropped.metadata().version, 2u);
    }
    cr_assert(temp_files_in(f.dir).empty(), "an uncommitted PendingWrite left its temp file");
    cr_assert(same(f.store.open("p"), bytes_of("v1")));

    // A moved-from PendingWrite must not unlink the file its successor is about to commit.
    PendingWrite first = f.store.prepare("p", bytes_of("v2"), SecretMetadata{"p", 2, kT1, kT2, true});
    std::optional<PendingWrite> moved;
    moved.emplace(std::move(first));
    {
        PendingWrite sink = std::move(first);
    }  // destroying a moved-from object unlinks nothing
    cr_assert_eq(temp_files_in(f.dir).size(), 1u);

    // Move assignment discards the target's own temp file.
    PendingWrite other = f.store.prepare("p", bytes_of("v3"), SecretMetadata{"p", 3, kT1, kT2, true});
    cr_assert_eq(temp_files_in(f.dir).size(), 2u);
    other = std::move(*moved);
    moved.reset();
    cr_assert_eq(temp_files_in(f.dir).size(), 1u);

    const SecretMetadata committed = f.store.commit(std::move(other));
    cr_assert_eq(committed.version, 2u);
    cr_assert(temp_files_in(f.dir).empty());
    cr_assert(same(f.store.open("p"), bytes_of("v2")));
    cr_assert_eq(f.store.list()[0].version, 2u);
    cr_assert_eq(f.store.list()[0].rotated_usec, kT2);
}

Test(secret_store, refuses_a_group_readable_folder_naming_it)
{
    const fs::path dir = g_root / "open-secrets";
    cr_assert_eq(::mkdir(dir.c_str(), 0755), 0);
    cr_assert_eq(::chmod(dir.c_str(), 0755), 0);
    const Bytes key = test_key();
    const std::string message = runtime_error_of([&] { SecretStore store(dir, key, key); });
    cr_assert(contains(message, "state folder " + dir.string() + " is group- or world-accessible (mode 0755)"),
              "message was: %s", message.c_str());
    cr_assert(contains(message, "expected 0700"), "message was: %s", message.c_str());
}

Test(secret_store, creates_its_folder_private)
{
    StoreFixture f;
    struct stat st {};
    cr_assert_eq(::lstat(f.dir.c_str(), &st), 0);
    cr_assert(S_ISDIR(st.st_mode));
    cr_assert_eq(st.st_mode & 07777, 0700u);
}

// --- Keyring ------------------------------------------------------------------------------

TestSuite(keyring, .init = make_sodium_root, .fini = remove_root);

namespace {

Bytes derived_probe(const Keyring& keyring)
{
    const SecureBuffer key = keyring.derive(42, "CVprobe0", 32);
    return Bytes(key.data(), key.data() + key.size());
}

Bytes sealing_key_of(const Keyring& keyring)
{
    const auto key = keyring.secret_sealing_key();
    return Bytes(key.begin(), key.end());
}

fs::path make_state_dir()
{
    const fs::path state = g_root / "state";
    fs::create_directory(state);
    fs::permissions(state, fs::perms::owner_all);
    return state;
}

}  // namespace

Test(keyring, creates_a_private_key_file_and_loads_the_same_key_again)
{
    const fs::path state = make_state_dir();
    const Keyring first = Keyring::load(state, std::nullopt);
    expect_text(first.source().c_str(), "key-file");

    const fs::path key_file = state / "keys" / "master.key";
    struct stat st {};
    cr_assert_eq(::lstat(key_file.c_str(), &st), 0);
    cr_assert(S_ISREG(st.st_mode));
    cr_assert_eq(st.st_mode & 07777, 0600u);
    cr_assert_eq(st.st_size, 32);
    cr_assert_eq(::lstat((state / "keys").c_str(), &st), 0);
    cr_assert_eq(st.st_mode & 07777, 0700u);
    cr_assert(temp_files_in(state / "keys").empty());

    const Keyring second = Keyring::load(state, std::nullopt);
    cr_assert(derived_probe(first) == derived_probe(second), "second load derived a different key");
    cr_assert(sealing_key_of(first) == sealing_key_of(second));
    cr_assert_eq(first.secret_sealing_key().size(), 32u);
    cr_assert(sealing_key_of(first) != derived_probe(first), "sub-keys with different ids must differ");
}

Test(keyring, sealing_key_is_kdf_subkey_1_with_context_CVsecret)
{
    const fs::path state = make_state_dir();
    const Keyring keyring = Keyring::load(state, std::nullopt);
    const Bytes master = read_file(state / "keys" / "master.key");
    std::array<std::uint8_t, 32> expected{};
    cr_assert_eq(crypto_kdf_derive_from_key(expected.data(), expected.size(), 1, "CVsecret", master.data()), 0);
    cr_assert(sealing_key_of(keyring) == Bytes(expected.begin(), expected.end()));
}

Test(keyring, manifest_key_is_kdf_subkey_3_with_context_CVmanfst)
{
    const fs::path state = make_state_dir();
    const Keyring keyring = Keyring::load(state, std::nullopt);
    const Bytes master = read_file(state / "keys" / "master.key");
    std::array<std::uint8_t, 32> expected{};
    cr_assert_eq(crypto_kdf_derive_from_key(expected.data(), expected.size(), 3, "CVmanfst", master.data()), 0);
    const auto key = keyring.store_manifest_key();
    cr_assert(Bytes(key.begin(), key.end()) == Bytes(expected.begin(), expected.end()));
    cr_assert(Bytes(key.begin(), key.end()) != sealing_key_of(keyring));
}

Test(keyring, key_lives_in_memfd_secret_when_available)
{
    const fs::path state = make_state_dir();
    const Keyring keyring = Keyring::load(state, std::nullopt);
    UniqueFd probe(static_cast<int>(::syscall(SYS_memfd_secret, O_CLOEXEC)));
    if (!probe) {
        cr_skip_test("memfd_secret unavailable here (%s)", std::strerror(errno));
    }
    cr_assert_eq(keyring.memory_kind(), SecureMemoryKind::MemfdSecret);
}

Test(keyring, refuses_a_key_file_others_can_read_naming_it)
{
    const fs::path state = make_state_dir();
    (void)Keyring::load(state, std::nullopt);
    const fs::path key_file = state / "keys" / "master.key";
    cr_assert_eq(::chmod(key_file.c_str(), 0644), 0);
    const std::string message = runtime_error_of([&] { (void)Keyring::load(state, std::nullopt); });
    cr_assert(contains(message, key_file.string()) && contains(message, "mode 0644"), "message was: %s",
              message.c_str());
}

Test(keyring, refuses_a_key_file_of_the_wrong_size)
{
    const fs::path state = make_state_dir();
    (void)Keyring::load(state, std::nullopt);
    const fs::path key_file = state / "keys" / "master.key";
    for (const std::size_t size : {0, 31, 33, 64}) {
        write_file(key_file, random_bytes(size), 0600);
        const std::string message = runtime_error_of([&] { (void)Keyring::load(state, std::nullopt); });
        cr_assert(contains(message, key_file.string()) && contains(message, "expected exactly 32"),
                  "size %zu: message was: %s", size, message.c_str());
    }
}

Test(keyring, refuses_a_symlinked_key_file_and_a_shared_keys_folder)
{
    const fs::path state = make_state_dir();
    const fs::path keys = state / "keys";
    cr_assert_eq(::mkdir(keys.c_str(), 0700), 0);
    write_file(g_root / "elsewhere.key", random_bytes(32), 0600);
    fs::create_symlink(g_root / "elsewhere.key", keys / "master.key");
    std::string message = runtime_error_of([&] { (void)Keyring::load(state, std::nullopt); });
    cr_assert(contains(message, "symbolic link"), "message was: %s", message.c_str());

    fs::remove(keys / "master.key");
    cr_assert_eq(::chmod(keys.c_str(), 0755), 0);
    message = runtime_error_of([&] { (void)Keyring::load(state, std::nullopt); });
    cr_assert(contains(message, keys.string()) && contains(message, "mode 0755"), "message was: %s", message.c_str());
}

Test(keyring, removes_a_stale_temp_key_left_by_a_crash)
{
    const fs::path state = make_state_dir();
    const fs::path keys = state / "keys";
    cr_assert_eq(::mkdir(keys.c_str(), 0700), 0);
    write_file(keys / ".tmp.master.key.0123456789abcdef", random_bytes(32));
    (void)Keyring::load(state, std::nullopt);
    cr_assert(temp_files_in(keys).empty());
}

Test(keyring, credential_takes_precedence_over_the_key_file)
{
    const fs::path state = make_state_dir();
    const Keyring from_file = Keyring::load(state, std::nullopt);

    const fs::path credentials = g_root / "credentials";
    cr_assert_eq(::mkdir(credentials.c_str(), 0755), 0);  // systemd's own modes are not ours to judge
    const Bytes credential = random_bytes(32);
    write_file(credentials / "codex-vault.key", credential, 0440);

    const Keyring from_credential = Keyring::load(state, credentials);
    expect_text(from_credential.source().c_str(), "credential");
    cr_assert(sealing_key_of(from_credential) != sealing_key_of(from_file));
    std::array<std::uint8_t, 32> expected{};
    cr_assert_eq(crypto_kdf_derive_from_key(expected.data(), expected.size(), 1, "CVsecret", credential.data()), 0);
    cr_assert(sealing_key_of(from_credential) == Bytes(expected.begin(), expected.end()));

    // A credentials folder without our credential falls back to the key file.
    const fs::path empty = g_root / "no-credentials";
    cr_assert_eq(::mkdir(empty.c_str(), 0700), 0);
    const Keyring fallback = Keyring::load(state, empty);
    expect_text(fallback.source().c_str(), "key-file");
    cr_assert(sealing_key_of(fallback) == sealing_key_of(from_file));
}

Test(keyring, refuses_a_symlinked_or_wrong_size_credential)
{
    const fs::path state = make_state_dir();
    const fs::path credentials = g_root / "credentials";
    cr_assert_eq(::mkdir(credentials.c_str(), 0700), 0);
    const fs::path credential = credentials / "codex-vault.key";

    write_file(credential, random_bytes(33), 0400);
    std::string message = runtime_error_of([&] { (void)Keyring::load(state, credentials); });
    cr_assert(contains(message, credential.string()) && contains(message, "expected exactly 32"), "message was: %s",
              message.c_str());

    fs::remove(credential);
    write_file(g_root / "target.key", random_bytes(32), 0400);
    fs::create_symlink(g_root / "target.key", credential);
    message = runtime_error_of([&] { (void)Keyring::load(state, credentials); });
    cr_assert(contains(message, credential.string()) && contains(message, "symbolic link"), "message was: %s",
              message.c_str());
    cr_assert_not(fs::exists(state / "keys" / "master.key"), "a refused credential fell back to the key file");
}

Test(keyring, derive_refuses_lengths_crypto_kdf_cannot_produce)
{
    const fs::path state = make_state_dir();
    const Keyring keyring = Keyring::load(state, std::nullopt);
    bool refused = false;
    try {
        (void)keyring.derive(2, "CVprobe0", 8);
    } catch (const std::invalid_argument&) {
        refused = true;
    }
    cr_assert(refused);
    cr_assert_eq(keyring.derive(2, "CVprobe0", 64).size(), 64u);
    cr_assert(derived_probe(keyring) != Bytes(32, 0));
}
