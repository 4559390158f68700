// On-disk format of one sealed secret, the file "<name>.secret" in the store directory
// (mode 0600, written with write_temp_file + commit_temp_file, i.e. temp + fsync + rename +
// fsync of the folder). All integers are little-endian.
//
//   offset  size    field
//   0       8       magic "CVSECRT1"
//   8       4       version (u32): 1 on put, +1 per rotate
//   12      8       created_usec (u64, CLOCK_REALTIME): set by put, kept by rotate
//   20      8       rotated_usec (u64): equals created_usec until the first rotate
//   28      24      nonce: random per write (XChaCha20's 192-bit nonce makes random safe)
//   52      n + 16  crypto_aead_xchacha20poly1305_ietf ciphertext of the n-byte value, tag last
//
// Associated data: magic | u64 name length | name | version (u32) | created (u64) | rotated (u64).
// Binding the name means a file copied over another secret's name does not authenticate;
// binding version and times means the header cannot be edited (or rolled forward) unnoticed.
// The key is the Keyring's sub-key (id 1, context "CVsecret"). Rolling a whole file back to an
// older, authentic version is not detected by the file itself: the manifest (manifest.hpp)
// lists each file's hash, and the write protocol in secret_store.hpp keeps it in step.
#include "daemon/store/secret_store.hpp"

#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <iterator>
#include <limits>
#include <set>
#include <stdexcept>
#include <system_error>
#include <utility>

#include "common/bytes.hpp"
#include "common/limits.hpp"
#include "common/vault_error.hpp"
#include "daemon/store/manifest_file.hpp"
#include "lib/fileio/files.hpp"

namespace codexvault::store {
namespace {

constexpr std::array<std::uint8_t, 8> kMagic{'C', 'V', 'S', 'E', 'C', 'R', 'T', '1'};
constexpr std::string_view kSuffix = ".secret";
constexpr std::size_t kVersionOffset = 8;
constexpr std::size_t kCreatedOffset = 12;
constexpr std::size_t kRotatedOffset = 20;
constexpr std::size_t kNonceOffset = 28;
constexpr std::size_t kNonceBytes = crypto_aead_xchacha20poly1305_ietf_NPUBBYTES;
constexpr std::size_t kHeaderBytes = kNonceOffset + kNonceBytes;
constexpr std::size_t kTagBytes = crypto_aead_xchacha20poly1305_ietf_ABYTES;
constexpr std::size_t kMaxFileBytes = kHeaderBytes + limits::kMaxSecretBytes + kTagBytes;
static_assert(kNonceBytes == 24 && kHeaderBytes == 52 && kTagBytes == 16);

using Bytes = std::vector<std::uint8_t>;

[[noreturn]] void throw_errno(int error, const std::string& what)
{
    throw std::system_error(error, std::generic_category(), what);
}

[[noreturn]] void throw_integrity(std::string_view name)
{
    throw VaultError(ErrorCode::IntegrityFailure, "secret '" + std::string(name) + "' failed integrity check");
}

[[noreturn]] void throw_not_found(std::string_view name)
{
    throw VaultError(ErrorCode::NotFound, "no secret named '" + std::string(name) + "'");
}

// The name is not echoed: an invalid one may hold control characters meant for a terminal.
void require_valid_name(std::string_view name)
{
    if (!limits::is_valid_secret_name(name)) {
        throw VaultError(
            ErrorCode::InvalidArgument,
            "invalid secret name: use 1-64 characters from [A-Za-z0-9._-], starting with a letter or digit");
    }
}

void require_valid_value(std::span<const std::uint8_t> value)
{
    if (value.empty()) {
        throw VaultError(ErrorCode::InvalidArgument, "secret value is empty");
    }
    if (value.size() > limits::kMaxSecretBytes) {
        throw VaultError(ErrorCode::InvalidArgument,
                         "secret value exceeds " + std::to_string(limits::kMaxSecretBytes) + " bytes");
    }
}

std::string file_name(std::string_view name)
{
    return std::string(name) + std::string(kSuffix);
}

Bytes associated_data(const SecretMetadata& metadata)
{
    Bytes aad(kMagic.begin(), kMagic.end());
    bytes::append_le<std::uint64_t>(aad, metadata.name.size());
    aad.insert(aad.end(), metadata.name.begin(), metadata.name.end());
    bytes::append_le<std::uint32_t>(aad, metadata.version);
    bytes::append_le<std::uint64_t>(aad, metadata.created_usec);
    bytes::append_le<std::uint64_t>(aad, metadata.rotated_usec);
    return aad;
}

// What the header of a sealed file says, before anything is authenticated. Fields the file is
// too short for (or all of them, when the magic is wrong) stay 0.
struct ParsedFile {
    SecretMetadata metadata;
    bool complete = false;  // magic matches and header plus tag are present
    std::span<const std::uint8_t> nonce;
    std::span<const std::uint8_t> ciphertext;  // includes the tag
};

ParsedFile parse(std::string_view name, std::span<const std::uint8_t> file)
{
    ParsedFile parsed;
    parsed.metadata.name = std::string(name);
    parsed.metadata.integrity_ok = false;
    if (file.size() < kMagic.size() || !std::equal(kMagic.begin(), kMagic.end(), file.begin())) {
        return parsed;
    }
    if (file.size() >= kCreatedOffset) {
        parsed.metadata.version = bytes::get_le<std::uint32_t>(file.data() + kVersionOffset);
    }
    if (file.size() >= kRotatedOffset) {
        parsed.metadata.created_usec = bytes::get_le<std::uint64_t>(file.data() + kCreatedOffset);
    }
    if (file.size() >= kNonceOffset) {
        parsed.metadata.rotated_usec = bytes::get_le<std::uint64_t>(file.data() + kRotatedOffset);
    }
    if (file.size() >= kHeaderBytes + kTagBytes) {
        parsed.complete = true;
        parsed.nonce = file.subspan(kNonceOffset, kNonceBytes);
        parsed.ciphertext = file.subspan(kHeaderBytes);
    }
    return parsed;
}

// Checks the tag, and decrypts into `plaintext` when it is not null. With a null output
// libsodium verifies the tag and returns without decrypting (aead_chacha20poly1305.c: "if (m ==
// NULL) return ret;"), so list() and rotate() never produce plaintext they do not need.
bool authenticate(const ParsedFile& parsed, std::span<const std::uint8_t> key, std::uint8_t* plaintext)
{
    if (!parsed.complete) {
        return false;
    }
    const Bytes aad = associated_data(parsed.metadata);
    const std::size_t text_bytes = parsed.ciphertext.size() - kTagBytes;
    return ::crypto_aead_xchacha20poly1305_ietf_decrypt_detached(
               plaintext, nullptr, parsed.ciphertext.data(), text_bytes, parsed.ciphertext.data() + text_bytes,
               aad.data(), aad.size(), parsed.nonce.data(), key.data()) == 0;
}

// The raw (sealed, so not secret) bytes of `name`.secret. A symlink, a non-regular file or an
// oversized file in the store is not something we wrote: IntegrityFailure.
Bytes read_sealed_file(int dir_fd, std::string_view name)
{
    const std::string file = file_name(name);
    UniqueFd fd(::openat(dir_fd, file.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK));
    if (!fd) {
        if (errno == ENOENT) {
            throw_not_found(name);
        }
        if (errno == ELOOP) {
            throw_integrity(name);
        }
        throw_errno(errno, "cannot open " + file);
    }
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) {
        throw_errno(errno, "cannot inspect " + file);
    }
    if (!S_ISREG(st.st_mode) || static_cast<std::uint64_t>(st.st_size) > kMaxFileBytes) {
        throw_integrity(name);
    }
    Bytes bytes(kMaxFileBytes + 1);
    const std::size_t got = fileio::read_until_eof(fd.get(), bytes.data(), bytes.size(), file);
    if (got > kMaxFileBytes) {
        throw_integrity(name);  // grew after fstat
    }
    bytes.resize(got);
    return bytes;
}

// What one file holds, for list() and verify_integrity(): never throws for a damaged file,
// reports what it could read. nullopt when the file vanished while we looked.
struct Inspection {
    SecretMetadata metadata;
    std::optional<FileHash> hash;  // nullopt: not a regular file of plausible size
};

std::optional<Inspection> inspect(int dir_fd, std::string_view name, std::span<const std::uint8_t> key)
{
    Bytes file;
    bool readable = true;
    try {
        file = read_sealed_file(dir_fd, name);
    } catch (const VaultError& error) {
        if (error.code() == ErrorCode::NotFound) {
            return std::nullopt;  // removed while we were listing
        }
        readable = false;  // not a regular file we can read: report it as damaged
    } catch (const std::system_error&) {
        readable = false;
    }
    Inspection inspection;
    ParsedFile parsed = parse(name, file);
    parsed.metadata.integrity_ok = readable && authenticate(parsed, key, nullptr);
    inspection.metadata = parsed.metadata;
    if (readable) {
        inspection.hash = hash_sealed_file(file);
    }
    return inspection;
}

ObservedFile observed(const Inspection& inspection)
{
    return ObservedFile{inspection.metadata.name, inspection.hash, inspection.metadata.integrity_ok,
                        inspection.metadata.version};
}

// The names of the valid "<name>.secret" entries of the folder (unsorted).
std::vector<std::string> secret_names(int dir_fd)
{
    std::vector<std::string> names;
    for (const auto& file : fileio::list_directory(dir_fd)) {
        if (file.size() <= kSuffix.size() || !file.ends_with(kSuffix)) {
            continue;
        }
        const std::string_view stem = std::string_view(file).substr(0, file.size() - kSuffix.size());
        if (limits::is_valid_secret_name(stem)) {  // not a file this store wrote (temp files start with '.')
            names.emplace_back(stem);
        }
    }
    return names;
}

bool file_exists(int dir_fd, const std::string& file)
{
    struct stat st {};
    if (::fstatat(dir_fd, file.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) {
        return true;
    }
    if (errno == ENOENT) {
        return false;
    }
    throw_errno(errno, "cannot inspect " + file);
}

}  // namespace

// --- PendingWrite ---------------------------------------------------------------------------

PendingWrite::PendingWrite(int dir_fd, std::string temp_name, std::string final_name, SecretMetadata metadata,
                           FileHash hash)
    : dir_fd_(dir_fd),
      temp_name_(std::move(temp_name)),
      final_name_(std::move(final_name)),
      metadata_(std::move(metadata)),
      hash_(hash)
{
}

PendingWrite::PendingWrite(PendingWrite&& other) noexcept
    : dir_fd_(std::exchange(other.dir_fd_, -1)),
      temp_name_(std::exchange(other.temp_name_, {})),
      final_name_(std::move(other.final_name_)),
      metadata_(std::move(other.metadata_)),
      hash_(other.hash_),
      replace_(other.replace_)
{
}

PendingWrite& PendingWrite::operator=(PendingWrite&& other) noexcept
{
    if (this != &other) {
        discard();
        dir_fd_ = std::exchange(other.dir_fd_, -1);
        temp_name_ = std::exchange(other.temp_name_, {});
        final_name_ = std::move(other.final_name_);
        metadata_ = std::move(other.metadata_);
        hash_ = other.hash_;
        replace_ = other.replace_;
    }
    return *this;
}

PendingWrite::~PendingWrite()
{
    discard();
}

void PendingWrite::discard() noexcept
{
    if (dir_fd_ >= 0 && !temp_name_.empty()) {
        (void)::unlinkat(dir_fd_, temp_name_.c_str(), 0);
    }
    temp_name_.clear();
}

// --- SecretStore ----------------------------------------------------------------------------

namespace {

[[noreturn]] void throw_exists(std::string_view name)
{
    throw VaultError(ErrorCode::InvalidArgument, "secret '" + std::string(name) + "' already exists; use rotate");
}

void require_key_size(std::span<const std::uint8_t> key, std::size_t expected, const char* what)
{
    if (key.size() != expected) {
        throw std::invalid_argument(std::string(what) + " must be " + std::to_string(expected) + " bytes");
    }
}

const char* fault_text(ManifestFault fault)
{
    return fault == ManifestFault::Unauthentic ? "unauthentic" : "malformed";
}

IntegrityProblemKind fault_kind(ManifestFault fault)
{
    return fault == ManifestFault::Unauthentic ? IntegrityProblemKind::ManifestUnauthentic
                                               : IntegrityProblemKind::ManifestMalformed;
}

}  // namespace

SecretStore::SecretStore(const std::filesystem::path& directory, std::span<const std::uint8_t> sealing_key,
                         std::span<const std::uint8_t> manifest_key)
    : key_(sealing_key), manifest_key_(manifest_key)
{
    require_key_size(key_, crypto_aead_xchacha20poly1305_ietf_KEYBYTES, "secret sealing key");
    require_key_size(manifest_key_, kManifestKeyBytes, "store manifest key");
    ensure_sodium_initialized();
    fileio::ensure_private_directory(directory);
    dir_ = fileio::open_directory(directory);
    // Left by a crash between prepare() and commit(): sealed, but never meant to be kept.
    fileio::remove_stale_temp_files(dir_.get());
    load_manifest();
}

void SecretStore::load_manifest()
{
    const ManifestFile disk = read_manifest_file(dir_.get(), manifest_key_);
    if (disk.present) {
        if (disk.decoded.manifest) {
            manifest_ = *disk.decoded.manifest;
        } else {
            manifest_unavailable_ =
                std::string("store manifest is ") + fault_text(disk.decoded.fault) + ": " + disk.decoded.detail;
        }
        return;
    }
    if (has_secret_files()) {
        // Adopting these files is a decision verify_integrity() reports; never made silently.
        manifest_unavailable_ = "store has secrets but no manifest; the integrity check has not created one";
        return;
    }
    store_manifest(Manifest{});  // a new (or empty) store: nothing to vouch for yet
}

const Manifest& SecretStore::require_manifest() const
{
    if (!manifest_) {
        throw VaultError(ErrorCode::IntegrityFailure, manifest_unavailable_);
    }
    return *manifest_;
}

Manifest SecretStore::manifest_for_write() const
{
    const Manifest& current = require_manifest();
    // Another writer, or someone restoring an older manifest, would otherwise be overwritten
    // silently; the integrity check reports it instead.
    const ManifestFile disk = read_manifest_file(dir_.get(), manifest_key_);
    if (!disk.present || !disk.decoded.manifest || *disk.decoded.manifest != current) {
        throw VaultError(ErrorCode::IntegrityFailure, "store manifest changed on disk since generation " +
                                                          std::to_string(current.generation) + " was written");
    }
    return current;
}

void SecretStore::store_manifest(const Manifest& manifest)
{
    write_manifest_file(dir_.get(), manifest, manifest_key_);
    manifest_ = manifest;
    manifest_unavailable_.clear();
}

void SecretStore::settle(Manifest& manifest, std::string_view name) const
{
    const ManifestEntry* entry = manifest.find(name);
    if (entry == nullptr || !entry->pending) {
        return;
    }
    const auto inspection = inspect(dir_.get(), name, key_);
    const std::optional<ObservedFile> file = inspection ? std::optional(observed(*inspection)) : std::nullopt;
    (void)settle_pending(manifest, name, file ? &*file : nullptr);
}

bool SecretStore::has_secret_files() const
{
    return !secret_names(dir_.get()).empty();
}

std::vector<ObservedFile> SecretStore::observe_all() const
{
    std::vector<ObservedFile> files;
    for (const auto& name : secret_names(dir_.get())) {
        if (auto inspection = inspect(dir_.get(), name, key_)) {
            files.push_back(observed(*inspection));
        }
    }
    return files;
}

SecretMetadata SecretStore::put(std::string_view name, std::span<const std::uint8_t> value, std::uint64_t now_usec)
{
    require_valid_name(name);
    require_valid_value(value);
    Manifest manifest = manifest_for_write();
    settle(manifest, name);
    if (manifest.find(name) != nullptr || file_exists(dir_.get(), file_name(name))) {
        throw_exists(name);
    }
    if (manifest.entries.size() >= kMaxManifestEntries) {
        throw VaultError(ErrorCode::InvalidArgument,
                         "the store already holds the maximum of " + std::to_string(kMaxManifestEntries) + " secrets");
    }
    SecretMetadata metadata{std::string(name), 1, now_usec, now_usec, true, false};
    PendingWrite pending = prepare(name, value, metadata);
    pending.replace_ = false;
    return commit(std::move(pending));
}

SecretMetadata SecretStore::rotate(std::string_view name, std::span<const std::uint8_t> value, std::uint64_t now_usec)
{
    require_valid_name(name);
    require_valid_value(value);
    Manifest manifest = manifest_for_write();
    settle(manifest, name);
    const ManifestEntry* entry = manifest.find(name);
    if (entry == nullptr || !entry->hash) {
        if (file_exists(dir_.get(), file_name(name))) {
            throw_integrity(name);  // a file the manifest does not list
        }
        throw_not_found(name);
    }
    // The old file must authenticate and be the listed one: its version and created time
    // carry over, and rotating a tampered or replayed file would launder it into a fresh one.
    Bytes file;
    try {
        file = read_sealed_file(dir_.get(), name);
    } catch (const VaultError&) {
        throw_integrity(name);  // listed, so a missing file is damage, not "not found"
    }
    ParsedFile parsed = parse(name, file);
    if (entry->pending || hash_sealed_file(file) != *entry->hash || !authenticate(parsed, key_, nullptr) ||
        parsed.metadata.version != entry->version) {
        throw_integrity(name);
    }
    if (entry->version == std::numeric_limits<std::uint32_t>::max()) {
        throw VaultError(ErrorCode::InvalidArgument, "secret '" + std::string(name) + "' cannot be rotated again");
    }
    SecretMetadata metadata{std::string(name), entry->version + 1, parsed.metadata.created_usec, now_usec, true, false};
    return commit(prepare(name, value, metadata));
}

void SecretStore::remove(std::string_view name)
{
    require_valid_name(name);
    const std::string file = file_name(name);
    Manifest manifest = manifest_for_write();
    settle(manifest, name);
    ManifestEntry* entry = manifest.find(name);
    if (entry == nullptr && !file_exists(dir_.get(), file)) {
        throw_not_found(name);
    }
    if (entry != nullptr && entry->hash) {
        entry->pending = PendingChange{};  // step 2: the removal is on record before the unlink
        ++manifest.generation;
        store_manifest(manifest);
    }
    // No authentication first: a damaged secret must still be removable.
    if (::unlinkat(dir_.get(), file.c_str(), 0) != 0 && !(errno == ENOENT && entry != nullptr)) {
        if (errno == ENOENT) {
            throw_not_found(name);
        }
        throw_errno(errno, "cannot remove " + file);
    }
    fileio::sync_directory(dir_.get(), "after removing " + file);
    if (entry != nullptr) {
        manifest.erase(name);
        ++manifest.generation;
        store_manifest(manifest);
    }
}

std::vector<SecretMetadata> SecretStore::list() const
{
    std::vector<SecretMetadata> entries;
    for (const auto& name : secret_names(dir_.get())) {
        auto inspection = inspect(dir_.get(), name, key_);
        if (!inspection) {
            continue;
        }
        SecretMetadata metadata = std::move(inspection->metadata);
        const ManifestEntry* entry = manifest_ ? manifest_->find(name) : nullptr;
        // Authentic is not enough: an older authentic file restored over the current one is
        // exactly what the manifest exists to catch.
        metadata.integrity_ok = metadata.integrity_ok && entry != nullptr && entry->hash && !entry->pending &&
                                inspection->hash == entry->hash && metadata.version == entry->version;
        metadata.rotation_required = entry != nullptr && entry->rotation_required_since_usec != 0;
        entries.push_back(std::move(metadata));
    }
    if (manifest_) {
        std::set<std::string_view> seen;
        for (const auto& metadata : entries) {
            seen.insert(metadata.name);
        }
        std::vector<SecretMetadata> gone;
        for (const auto& entry : manifest_->entries) {
            if (entry.hash && !seen.contains(entry.name)) {  // listed, but the file is gone
                gone.push_back(
                    SecretMetadata{entry.name, entry.version, 0, 0, false, entry.rotation_required_since_usec != 0});
            }
        }
        entries.insert(entries.end(), std::make_move_iterator(gone.begin()), std::make_move_iterator(gone.end()));
    }
    std::sort(entries.begin(), entries.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
    return entries;
}

bool SecretStore::contains(std::string_view name) const
{
    return limits::is_valid_secret_name(name) && file_exists(dir_.get(), file_name(name));
}

void SecretStore::check_usable(std::string_view name) const
{
    require_valid_name(name);
    const Manifest& manifest = require_manifest();
    const ManifestEntry* entry = manifest.find(name);
    if (entry == nullptr || !entry->hash) {
        if (file_exists(dir_.get(), file_name(name))) {
            throw_integrity(name);  // a file the manifest does not list
        }
        throw_not_found(name);
    }
    if (entry->rotation_required_since_usec != 0) {
        throw VaultError(ErrorCode::IntegrityFailure, "secret " + std::string(name) + " must be rotated before use");
    }
}

bool SecretStore::rotation_required(std::string_view name) const
{
    require_valid_name(name);
    const ManifestEntry* entry = require_manifest().find(name);
    if (entry == nullptr || !entry->hash) {
        throw_not_found(name);
    }
    return entry->rotation_required_since_usec != 0;
}

std::size_t SecretStore::mark_all_rotation_required(std::uint64_t now_usec)
{
    Manifest manifest = manifest_for_write();
    const std::size_t marked = store::mark_all_rotation_required(manifest, now_usec);
    if (marked > 0) {
        ++manifest.generation;
        store_manifest(manifest);
    }
    return marked;
}

std::uint64_t SecretStore::manifest_generation() const noexcept
{
    return manifest_ ? manifest_->generation : 0;
}

SecureBuffer SecretStore::open(std::string_view name) const
{
    check_usable(name);
    const ManifestEntry& entry = *manifest_->find(name);
    Bytes file;
    try {
        file = read_sealed_file(dir_.get(), name);
    } catch (const VaultError&) {
        throw_integrity(name);  // listed, so a missing or odd file is damage
    }
    if (entry.pending || hash_sealed_file(file) != *entry.hash) {
        throw_integrity(name);
    }
    const ParsedFile parsed = parse(name, file);
    if (!parsed.complete) {
        throw_integrity(name);
    }
    SecureBuffer plaintext = SecureBuffer::allocate_guarded(parsed.ciphertext.size() - kTagBytes);
    if (!authenticate(parsed, key_, plaintext.data())) {
        throw_integrity(name);
    }
    return plaintext;
}

IntegrityInspection SecretStore::inspect_integrity(MissingManifest on_missing) const
{
    IntegrityInspection inspection;
    IntegrityReport& report = inspection.report;
    const std::vector<ObservedFile> files = observe_all();
    const ManifestFile disk = read_manifest_file(dir_.get(), manifest_key_);
    const auto manifest_problem = [&report](IntegrityProblemKind kind, std::string detail) {
        report.problems.insert(report.problems.begin(), IntegrityProblem{kind, "", std::move(detail)});
    };

    if (!disk.present && !manifest_) {
        if (files.empty() || on_missing == MissingManifest::CreateFromFiles) {
            Manifest created = manifest_from_files(files, 1);
            report.manifest_created = true;
            for (const auto& entry : created.entries) {
                report.adopted.push_back(entry.name);
            }
            report.problems = compare_manifest(created, files);  // the files that did not authenticate
            report.generation = created.generation;
            inspection.manifest = std::move(created);
            inspection.write = true;
        } else {
            manifest_problem(IntegrityProblemKind::ManifestMissing,
                             std::to_string(files.size()) + " secret files but no manifest");
        }
        return inspection;
    }
    // The manifest this store wrote is the reference while it runs; the disk must still hold it.
    if (!disk.present || !disk.decoded.manifest || (manifest_ && *disk.decoded.manifest != *manifest_)) {
        if (manifest_) {
            report.problems = compare_manifest(*manifest_, files);
            report.generation = manifest_->generation;
        }
        if (!disk.present) {
            manifest_problem(IntegrityProblemKind::ManifestMissing,
                             "the manifest (generation " + std::to_string(manifest_->generation) + ") is gone");
        } else if (!disk.decoded.manifest) {
            manifest_problem(fault_kind(disk.decoded.fault), disk.decoded.detail);
        } else {
            manifest_problem(IntegrityProblemKind::ManifestStale,
                             "generation " + std::to_string(disk.decoded.manifest->generation) +
                                 " on disk is not generation " + std::to_string(manifest_->generation) +
                                 " this store last wrote");
        }
        return inspection;
    }

    Manifest manifest = *disk.decoded.manifest;
    report.recoveries = settle_all_pending(manifest, files);
    if (!report.recoveries.empty()) {
        ++manifest.generation;
        inspection.write = true;
    }
    report.problems = compare_manifest(manifest, files);
    report.generation = manifest.generation;
    inspection.manifest = std::move(manifest);
    return inspection;
}

void SecretStore::apply_integrity(const IntegrityInspection& inspection)
{
    if (!inspection.manifest) {
        return;
    }
    if (inspection.write) {
        store_manifest(*inspection.manifest);
        return;
    }
    manifest_ = *inspection.manifest;  // loaded now, if the constructor could not
    manifest_unavailable_.clear();
}

IntegrityReport SecretStore::verify_integrity(MissingManifest on_missing)
{
    IntegrityInspection inspection = inspect_integrity(on_missing);
    apply_integrity(inspection);
    return std::move(inspection.report);
}

PendingWrite SecretStore::prepare(std::string_view name, std::span<const std::uint8_t> value,
                                  const SecretMetadata& metadata)
{
    require_valid_name(name);
    require_valid_value(value);
    SecretMetadata sealed = metadata;
    sealed.name = std::string(name);
    sealed.integrity_ok = true;
    sealed.rotation_required = false;

    Bytes file(kMagic.begin(), kMagic.end());
    file.reserve(kHeaderBytes + value.size() + kTagBytes);
    bytes::append_le<std::uint32_t>(file, sealed.version);
    bytes::append_le<std::uint64_t>(file, sealed.created_usec);
    bytes::append_le<std::uint64_t>(file, sealed.rotated_usec);
    file.resize(kHeaderBytes + value.size() + kTagBytes);
    ::randombytes_buf(file.data() + kNonceOffset, kNonceBytes);

    const Bytes aad = associated_data(sealed);
    unsigned long long sealed_bytes = 0;
    if (::crypto_aead_xchacha20poly1305_ietf_encrypt(file.data() + kHeaderBytes, &sealed_bytes, value.data(),
                                                     value.size(), aad.data(), aad.size(), nullptr,
                                                     file.data() + kNonceOffset, key_.data()) != 0 ||
        sealed_bytes != value.size() + kTagBytes) {
        throw std::runtime_error("sealing secret '" + sealed.name + "' failed");
    }
    const std::string final_name = file_name(name);
    std::string temp_name = fileio::write_temp_file(dir_.get(), final_name, file, 0600);
    return PendingWrite(dir_.get(), std::move(temp_name), final_name, std::move(sealed), hash_sealed_file(file));
}

SecretMetadata SecretStore::commit(PendingWrite&& pending)
{
    // Taken over here, so the temp file is unlinked on every failure path below.
    PendingWrite owned(std::move(pending));
    if (owned.temp_name_.empty()) {
        throw std::logic_error("commit of a PendingWrite that was already committed or discarded");
    }
    if (owned.dir_fd_ != dir_.get()) {
        throw std::logic_error("commit of a PendingWrite prepared by another SecretStore");
    }
    const std::string& name = owned.metadata_.name;
    const std::uint32_t version = owned.metadata_.version;
    Manifest manifest = manifest_for_write();
    settle(manifest, name);
    const Manifest before = manifest;

    // Step 2 of the write protocol: the intent, durable before the file changes.
    ManifestEntry* entry = manifest.find(name);
    if (!owned.replace_) {
        if (entry != nullptr) {
            throw_exists(name);
        }
        manifest.upsert(ManifestEntry{name, 0, std::nullopt, 0, PendingChange{version, owned.hash_}});
    } else {
        if (entry == nullptr || !entry->hash) {
            throw_not_found(name);
        }
        if (version <= entry->version) {
            throw std::logic_error("commit of a rotation that does not raise the version");
        }
        entry->pending = PendingChange{version, owned.hash_};
    }
    ++manifest.generation;
    store_manifest(manifest);

    // Step 3.
    try {
        fileio::commit_temp_file(dir_.get(), owned.temp_name_, owned.final_name_, owned.replace_);
    } catch (const std::system_error& error) {
        // The file is unchanged: take the intent back. If that write fails too, the entry stays
        // pending and the next write of this name (or verify_integrity) settles it from the
        // file; the rename error is the one worth reporting.
        Manifest undo = before;
        undo.generation = manifest.generation + 1;
        try {
            store_manifest(undo);
        } catch (const std::exception&) {
        }
        if (!owned.replace_ && error.code() == std::errc::file_exists) {
            throw_exists(name);
        }
        throw;
    }
    owned.temp_name_.clear();  // renamed: nothing left to unlink

    // Step 4: applied. A new value is no longer the presumed-compromised one.
    entry = manifest.find(name);
    entry->version = version;
    entry->hash = owned.hash_;
    entry->rotation_required_since_usec = 0;
    entry->pending.reset();
    ++manifest.generation;
    store_manifest(manifest);
    return owned.metadata_;
}

}  // namespace codexvault::store
