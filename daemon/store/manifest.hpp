// The store manifest, pure part: its data model, its authenticated text encoding, and the
// comparisons start-up integrity checks make against what is on disk. No syscalls here; the
// store (secret_store.cpp, manifest_file.cpp) does the I/O around it.
//
// What the manifest proves: it lists every secret the store holds with the version and the
// BLAKE2b-256 hash of its sealed file, under a MAC only the master key can produce. The AEAD of
// each file already stops edits and files copied to another name; the manifest adds what a file
// cannot say about itself: that it is the *current* version (an older, authentic file restored
// over it is a hash mismatch), that no file went missing, and that no file was added. Its
// generation grows by one on every write, so the audit log can record it; a rollback of the
// whole folder (manifest and files together) is invisible to the store alone.
//
// File format (text, one item per line, every line ends in '\n', nothing else is accepted):
//
//   codex-vault-manifest 1
//   generation <u64, decimal, >= 1>
//   secret <name> <version> <hash> <rotation-required-since> <pending>     (0..n lines)
//   mac <hex of crypto_auth over every byte before this line>
//
//   name      limits::is_valid_secret_name; lines strictly ascending by name (byte order)
//   version   u32 decimal; 0 only for a put still in progress (then hash is "-")
//   hash      64 lowercase hex digits: BLAKE2b-256 (crypto_generichash) of the sealed file,
//             or "-" while a put is in progress
//   rotation-required-since  u64 decimal CLOCK_REALTIME usec; 0 = not marked
//   pending   "-", "remove", or "<version>:<hash>": a write that was started and not yet
//             confirmed (see the write protocol in secret_store.hpp)
//
// Decimal numbers have no sign and no leading zero (except "0"). The MAC is HMAC-SHA-512-256
// (libsodium crypto_auth) under the manifest key, Keyring sub-key id 3, context "CVmanfst".
// The MAC is checked before the body is parsed, so an attacker without the key never reaches
// the parser with text of their choosing.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace codexvault::store {

inline constexpr std::size_t kFileHashBytes = 32;     // crypto_generichash_BYTES
inline constexpr std::size_t kManifestKeyBytes = 32;  // crypto_auth_KEYBYTES
inline constexpr std::size_t kMaxManifestEntries = 10000;
inline constexpr std::size_t kMaxManifestBytes = 4 * 1024 * 1024;  // > 10000 of the longest lines
inline constexpr const char* kManifestFileName = "manifest";

using FileHash = std::array<std::uint8_t, kFileHashBytes>;

// BLAKE2b-256 of a sealed file's bytes (unkeyed: the manifest's MAC is what authenticates it).
FileHash hash_sealed_file(std::span<const std::uint8_t> sealed) noexcept;

// A write the store began but has not confirmed: the file is about to become `hash` at
// `version`, or (hash == nullopt) to be removed.
struct PendingChange {
    std::uint32_t version = 0;  // 0 for a removal
    std::optional<FileHash> hash;
    bool operator==(const PendingChange&) const = default;
};

struct ManifestEntry {
    std::string name;
    std::uint32_t version = 0;
    std::optional<FileHash> hash;                    // nullopt only while a put is pending
    std::uint64_t rotation_required_since_usec = 0;  // 0: not marked
    std::optional<PendingChange> pending;
    bool operator==(const ManifestEntry&) const = default;
};

struct Manifest {
    std::uint64_t generation = 1;
    std::vector<ManifestEntry> entries;  // strictly ascending by name

    [[nodiscard]] const ManifestEntry* find(std::string_view name) const noexcept;
    [[nodiscard]] ManifestEntry* find(std::string_view name) noexcept;
    // Inserts in order; replaces an entry of the same name.
    void upsert(ManifestEntry entry);
    void erase(std::string_view name) noexcept;
    bool operator==(const Manifest&) const = default;
};

// Empty string when the manifest satisfies every rule above, else the first rule it breaks.
std::string manifest_violation(const Manifest& manifest);

// Throws std::invalid_argument when manifest_violation() is not empty (we never write a
// manifest we would refuse to read back) or the key is not kManifestKeyBytes long.
std::string encode_manifest(const Manifest& manifest, std::span<const std::uint8_t> key);

enum class ManifestFault { Malformed, Unauthentic };

struct DecodedManifest {
    std::optional<Manifest> manifest;  // set when the text is authentic and well formed
    ManifestFault fault = ManifestFault::Malformed;
    std::string detail;  // what is wrong, for a problem report (never file content)
};

DecodedManifest decode_manifest(std::string_view text, std::span<const std::uint8_t> key);

// What the store found for one "<name>.secret" file (the I/O part fills it in).
struct ObservedFile {
    std::string name;
    std::optional<FileHash> hash;  // nullopt: not a readable regular file of plausible size
    bool authentic = false;        // the AEAD tag verified
    std::uint32_t version = 0;     // from the header; meaningful only when authentic
};

enum class IntegrityProblemKind {
    ManifestMissing,       // secret files exist but no manifest (and none may be created)
    ManifestMalformed,     // authentic, yet breaks a format rule; or structurally broken
    ManifestUnauthentic,   // the MAC does not verify: edited, or written under another key
    ManifestStale,         // authentic, but not the manifest this store last wrote (rollback)
    SecretMissing,         // listed, no file
    SecretUnlisted,        // a file the manifest does not list
    HashMismatch,          // the file is not the one the manifest lists (replay, edit, swap)
    AuthenticationFailed,  // the AEAD tag does not verify, or the file is not a sealed file
    VersionMismatch,       // an authentic file whose version differs from the manifest's
};

const char* to_string(IntegrityProblemKind kind) noexcept;  // e.g. "hash-mismatch"

struct IntegrityProblem {
    IntegrityProblemKind kind;
    std::string name;    // the secret's name; empty for problems of the manifest itself
    std::string detail;  // never contains secret bytes
    bool operator==(const IntegrityProblem&) const = default;
};

// One line for logs and the audit record, e.g. "secret 'gh': hash-mismatch (file differs ...)".
std::string describe(const IntegrityProblem& problem);

// Every disagreement between the manifest and the files, ordered by name, then kind. `files`
// holds each valid "<name>.secret" file once. Entries still pending count as their committed
// state (settle_pending() first). Empty means the store is intact.
std::vector<IntegrityProblem> compare_manifest(const Manifest& manifest, std::span<const ObservedFile> files);

// An interrupted write resolved by looking at the file: rolled forward when the file is the new
// one (or gone, for a removal), back when it is still the old one (or absent, for a put).
struct Recovery {
    std::string name;
    bool rolled_forward = false;
    std::string detail;
};

// Resolves the pending change of `name` (if any) against its file (nullptr: no file). Returns
// nullopt, leaving the entry pending, when the file is neither the old nor the new one:
// compare_manifest() then reports it. Does not touch the generation.
std::optional<Recovery> settle_pending(Manifest& manifest, std::string_view name, const ObservedFile* file);
// settle_pending() for every pending entry.
std::vector<Recovery> settle_all_pending(Manifest& manifest, std::span<const ObservedFile> files);

// The manifest an upgrade from a build without one starts from: every authentic file, at the
// version its header states. Files that do not authenticate are left out (compare_manifest()
// then reports them as unlisted).
Manifest manifest_from_files(std::span<const ObservedFile> files, std::uint64_t generation);

// Marks every entry not yet marked with `now_usec`; returns how many were newly marked.
std::size_t mark_all_rotation_required(Manifest& manifest, std::uint64_t now_usec);

}  // namespace codexvault::store
