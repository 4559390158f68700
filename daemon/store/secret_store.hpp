// Sealed secrets on disk: one file per secret, XChaCha20-Poly1305 with the secret's name,
// version and times as associated data, every write atomic (state_files.hpp), all of them
// listed in an authenticated manifest (manifest.hpp) that start-up checks against the files.
//
// Write protocol. Every put, rotate and remove writes the manifest twice around the file:
//   1. the sealed value goes to a temp file, fsynced (prepare());
//   2. the manifest is rewritten with the entry's change marked *pending* (new version and
//      hash, or "remove"): the intent is durable before the file changes;
//   3. the temp file is renamed over "<name>.secret" (or the file unlinked), folder fsynced;
//   4. the manifest is rewritten with the change applied and nothing pending.
// Each manifest write is itself atomic and bumps the generation. A crash therefore leaves one
// of these, and verify_integrity() tells them apart:
//   - before 2: the old manifest and the old file (a stale temp file, removed on open);
//   - between 2 and 3: the file is still the old one -> the write is rolled back;
//   - between 3 and 4: the file is the pending one (or gone, for a remove) -> rolled forward.
// Both appear in IntegrityReport::recoveries (name and direction) and are not problems. Only a
// file that is neither the listed nor the pending one is a problem; an attacker cannot produce
// a "pending" state, since the manifest's MAC covers it. A write that fails between 2 and 4
// leaves the entry pending in the running store: the secret cannot be opened until the next
// write of that name or verify_integrity() settles it.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "daemon/store/manifest.hpp"
#include "daemon/store/secure_buffer.hpp"
#include "lib/fileio/unique_fd.hpp"

namespace codexvault::store {

struct SecretMetadata {
    std::string name;
    std::uint32_t version = 0;
    std::uint64_t created_usec = 0;  // CLOCK_REALTIME
    std::uint64_t rotated_usec = 0;  // equals created_usec until the first rotation
    // false: the file failed authentication or does not match the manifest (list only)
    bool integrity_ok = true;
    bool rotation_required = false;  // marked by incident response; rotate() clears it (list only)
};

// What verify_integrity() found. ok() is the start-up gate: anything else means lock.
struct IntegrityReport {
    std::vector<IntegrityProblem> problems;  // ordered by secret name, then kind
    std::vector<Recovery> recoveries;        // interrupted writes completed or undone (audit them)
    bool manifest_created = false;           // there was no manifest and one was written now
    std::vector<std::string> adopted;        // when created from existing files: the names listed
    std::uint64_t generation = 0;            // of the manifest in force afterwards; 0 if none

    [[nodiscard]] bool ok() const noexcept { return problems.empty(); }
};

// What inspect_integrity() found and what apply_integrity() would write: nothing is changed on
// disk between the two, so the daemon can record a recovery in the audit log before it happens.
struct IntegrityInspection {
    IntegrityReport report;
    std::optional<Manifest> manifest;  // the manifest to put in force; nullopt: none usable
    bool write = false;                // it differs from the disk (a recovery, or a created manifest)
};

// What verify_integrity() may do when the folder has secret files but no manifest.
enum class MissingManifest {
    Report,           // report ManifestMissing and write nothing
    CreateFromFiles,  // upgrade from a build without a manifest: list every file that
                      // authenticates, report the others, set manifest_created and adopted
};

// A sealed value written to a temp file and fsynced but not yet renamed into place. Must not
// outlive the SecretStore that prepared it (it borrows the store's directory descriptor).
class PendingWrite {
public:
    // A moved-from PendingWrite owns no temp file: only the object it was moved into unlinks it.
    PendingWrite(PendingWrite&& other) noexcept;
    PendingWrite& operator=(PendingWrite&& other) noexcept;
    PendingWrite(const PendingWrite&) = delete;
    PendingWrite& operator=(const PendingWrite&) = delete;
    ~PendingWrite();  // unlinks the temp file if never committed
    [[nodiscard]] const SecretMetadata& metadata() const noexcept { return metadata_; }

private:
    friend class SecretStore;
    PendingWrite(int dir_fd, std::string temp_name, std::string final_name, SecretMetadata metadata, FileHash hash);
    void discard() noexcept;

    int dir_fd_ = -1;        // borrowed from the store
    std::string temp_name_;  // empty once committed, discarded or moved from
    std::string final_name_;
    SecretMetadata metadata_;
    FileHash hash_{};      // of the sealed bytes in the temp file, for the manifest
    bool replace_ = true;  // false for put(): commit must not replace a file that appeared meanwhile
};

// Errors: VaultError(InvalidArgument) for a bad name or value size, VaultError(NotFound),
// VaultError(InvalidArgument) when put() finds the name taken, VaultError(IntegrityFailure)
// when a file does not authenticate or does not match the manifest, when the manifest is
// missing or unusable (every write and open() refuses until verify_integrity() resolves it),
// and for a secret marked rotation-required (open(), check_usable()); std::system_error for
// I/O failures (never with secret bytes in the message).
class SecretStore {
public:
    // `directory` must be private (created 0700 if missing). Stale temp files are removed. The
    // manifest is loaded; a folder with neither secret files nor a manifest gets an empty one.
    // Both keys are borrowed from the Keyring, which must outlive the store.
    SecretStore(const std::filesystem::path& directory, std::span<const std::uint8_t> sealing_key,
                std::span<const std::uint8_t> manifest_key);

    SecretMetadata put(std::string_view name, std::span<const std::uint8_t> value, std::uint64_t now_usec);
    // Needs the current file to authenticate and match the manifest (a replayed or damaged file
    // is refused: remove it, then put). Clears the secret's rotation-required mark.
    SecretMetadata rotate(std::string_view name, std::span<const std::uint8_t> value, std::uint64_t now_usec);
    // Works on a damaged file, a listed secret whose file is gone, and a file the manifest does
    // not list: removal is how the founder clears those problems.
    void remove(std::string_view name);
    // Sorted by name; includes listed secrets whose file is gone (integrity_ok false, times 0).
    [[nodiscard]] std::vector<SecretMetadata> list() const;
    [[nodiscard]] bool contains(std::string_view name) const;
    // Decrypts into guarded memory. Calls check_usable() first and refuses a file whose hash
    // differs from the manifest's, so a caller cannot forget either check.
    [[nodiscard]] SecureBuffer open(std::string_view name) const;

    // The start-up integrity check (also what an on-demand verify runs): compares the manifest
    // on disk with the files, resolves interrupted writes (rewriting the manifest), creates a
    // missing manifest when the folder has no secrets, or from the files when `on_missing` says
    // so. Reports a manifest that authenticates but is not the one this store last wrote
    // (rolled back while running) as ManifestStale. Throws only for I/O errors.
    IntegrityReport verify_integrity(MissingManifest on_missing = MissingManifest::Report);
    // verify_integrity() in two halves. inspect_integrity() reads and compares and writes
    // nothing; apply_integrity() then puts its manifest in force, rewriting the file when
    // `write` says so (a recovery, or a created manifest). Nothing else may write the store in
    // between: the manifest it rewrites is the one inspected.
    [[nodiscard]] IntegrityInspection inspect_integrity(MissingManifest on_missing = MissingManifest::Report) const;
    void apply_integrity(const IntegrityInspection& inspection);
    // Generation of the manifest in force, for the audit log; 0 when there is none.
    [[nodiscard]] std::uint64_t manifest_generation() const noexcept;

    // Incident response: marks every listed secret rotation-required in one manifest write
    // (durable when this returns). Returns how many were newly marked; already marked secrets
    // keep their original time. Idempotent, so a restarted incident can simply call it again.
    std::size_t mark_all_rotation_required(std::uint64_t now_usec);
    // Throws NotFound for a secret the manifest does not list.
    [[nodiscard]] bool rotation_required(std::string_view name) const;
    // For inject/provider code before it uses a secret: throws VaultError(IntegrityFailure,
    // "secret NAME must be rotated before use") when marked. IntegrityFailure (not Locked or
    // PermissionDenied) because the mark means "presumed compromised": the store can no longer
    // vouch for the value, which is what that error reports elsewhere. Also throws NotFound /
    // IntegrityFailure as open() would for an unlisted or missing secret, or no manifest.
    void check_usable(std::string_view name) const;

    // Two-phase write, exposed so a crash between the phases can be tested. commit() runs the
    // write protocol above; for a prepared rotation the version must exceed the listed one.
    PendingWrite prepare(std::string_view name, std::span<const std::uint8_t> value, const SecretMetadata& metadata);
    SecretMetadata commit(PendingWrite&& pending);

private:
    void load_manifest();
    const Manifest& require_manifest() const;
    // The manifest to change: the one in force, after checking the disk still holds it.
    Manifest manifest_for_write() const;
    void store_manifest(const Manifest& manifest);
    void settle(Manifest& manifest, std::string_view name) const;
    [[nodiscard]] bool has_secret_files() const;
    [[nodiscard]] std::vector<ObservedFile> observe_all() const;

    UniqueFd dir_;
    std::span<const std::uint8_t> key_;  // borrowed from the Keyring, which outlives the store
    std::span<const std::uint8_t> manifest_key_;
    std::optional<Manifest> manifest_;  // the manifest in force; nullopt: missing or unusable
    std::string manifest_unavailable_;  // why manifest_ is nullopt
};

}  // namespace codexvault::store
