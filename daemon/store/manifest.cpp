#include "daemon/store/manifest.hpp"

#include <sodium.h>

#include <algorithm>
#include <charconv>
#include <limits>
#include <map>
#include <stdexcept>
#include <tuple>
#include <utility>

#include "common/bytes.hpp"
#include "common/limits.hpp"

namespace codexvault::store {
namespace {

static_assert(kFileHashBytes == crypto_generichash_BYTES);
static_assert(kManifestKeyBytes == crypto_auth_KEYBYTES);

constexpr std::string_view kHeaderLine = "codex-vault-manifest 1";
constexpr std::string_view kMacPrefix = "mac ";
constexpr std::size_t kMacHexBytes = crypto_auth_BYTES * 2;

using Text = std::string_view;

std::span<const std::uint8_t> as_bytes(Text text) noexcept
{
    return {reinterpret_cast<const std::uint8_t*>(text.data()), text.size()};
}

std::string hash_text(const std::optional<FileHash>& hash)
{
    return hash ? bytes::to_hex(*hash) : std::string("-");
}

// Strict unsigned decimal: digits only, no leading zero except "0" itself, in range.
template <typename T>
std::optional<T> parse_decimal(Text text)
{
    if (text.empty() || (text.size() > 1 && text[0] == '0')) {
        return std::nullopt;
    }
    T value = 0;
    const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (error != std::errc() || end != text.data() + text.size()) {
        return std::nullopt;
    }
    return value;
}

// Lowercase only, so each hash has exactly one spelling and the MAC'd text is canonical.
bool is_lower_hex(Text text) noexcept
{
    return std::all_of(text.begin(), text.end(),
                       [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

std::optional<FileHash> parse_hash(Text text)
{
    if (text.size() != kFileHashBytes * 2 || !is_lower_hex(text)) {
        return std::nullopt;
    }
    const auto raw = bytes::from_hex(text);
    FileHash hash{};
    std::copy(raw->begin(), raw->end(), hash.begin());
    return hash;
}

// "-" -> nullopt hash; otherwise a hash or a parse failure (outer nullopt).
std::optional<std::optional<FileHash>> parse_optional_hash(Text text)
{
    if (text == "-") {
        return std::optional<FileHash>{};
    }
    if (auto hash = parse_hash(text)) {
        return std::optional<FileHash>{*hash};
    }
    return std::nullopt;
}

std::vector<Text> split_spaces(Text line)
{
    std::vector<Text> fields;
    std::size_t start = 0;
    for (;;) {
        const std::size_t space = line.find(' ', start);
        fields.push_back(line.substr(start, space == Text::npos ? Text::npos : space - start));
        if (space == Text::npos) {
            return fields;
        }
        start = space + 1;
    }
}

std::string pending_text(const std::optional<PendingChange>& pending)
{
    if (!pending) {
        return "-";
    }
    if (!pending->hash) {
        return "remove";
    }
    return std::to_string(pending->version) + ":" + bytes::to_hex(*pending->hash);
}

std::optional<std::optional<PendingChange>> parse_pending(Text text)
{
    if (text == "-") {
        return std::optional<PendingChange>{};
    }
    if (text == "remove") {
        return std::optional<PendingChange>{PendingChange{}};
    }
    const std::size_t colon = text.find(':');
    if (colon == Text::npos) {
        return std::nullopt;
    }
    const auto version = parse_decimal<std::uint32_t>(text.substr(0, colon));
    const auto hash = parse_hash(text.substr(colon + 1));
    if (!version || !hash) {
        return std::nullopt;
    }
    return std::optional<PendingChange>{PendingChange{*version, *hash}};
}

std::string entry_violation(const ManifestEntry& entry)
{
    if (!limits::is_valid_secret_name(entry.name)) {
        return "an entry has an invalid secret name";
    }
    const std::string who = "entry '" + entry.name + "' ";
    if (!entry.hash) {
        if (entry.version != 0 || !entry.pending || !entry.pending->hash) {
            return who + "has no hash but is not a pending put";
        }
    } else if (entry.version == 0) {
        return who + "has version 0";
    }
    if (entry.pending) {
        if (entry.pending->hash) {
            if (entry.pending->version <= entry.version) {
                return who + "has a pending version not above its current one";
            }
        } else if (entry.pending->version != 0 || !entry.hash) {
            return who + "has a malformed pending removal";
        }
    }
    return {};
}

void add_problem(std::vector<IntegrityProblem>& problems, IntegrityProblemKind kind, const std::string& name,
                 std::string detail)
{
    problems.push_back(IntegrityProblem{kind, name, std::move(detail)});
}

void compare_file(const ManifestEntry& entry, const ObservedFile& file, std::vector<IntegrityProblem>& problems)
{
    if (!file.authentic) {
        add_problem(problems, IntegrityProblemKind::AuthenticationFailed, entry.name,
                    file.hash ? "the sealed file does not authenticate" : "not a readable sealed file");
    }
    if (!file.hash || !entry.hash || *file.hash != *entry.hash) {
        add_problem(problems, IntegrityProblemKind::HashMismatch, entry.name,
                    entry.pending ? "the file is neither the version listed nor the one being written"
                                  : "the file is not the one the manifest lists");
    }
    if (file.authentic && file.version != entry.version) {
        add_problem(problems, IntegrityProblemKind::VersionMismatch, entry.name,
                    "the file is version " + std::to_string(file.version) + ", the manifest lists version " +
                        std::to_string(entry.version));
    }
}

}  // namespace

FileHash hash_sealed_file(std::span<const std::uint8_t> sealed) noexcept
{
    FileHash hash{};
    // crypto_generichash only fails for out-of-range output or key sizes, fixed here.
    (void)::crypto_generichash(hash.data(), hash.size(), sealed.data(), sealed.size(), nullptr, 0);
    return hash;
}

const ManifestEntry* Manifest::find(std::string_view name) const noexcept
{
    const auto it = std::lower_bound(entries.begin(), entries.end(), name,
                                     [](const ManifestEntry& entry, std::string_view key) { return entry.name < key; });
    return it != entries.end() && it->name == name ? &*it : nullptr;
}

ManifestEntry* Manifest::find(std::string_view name) noexcept
{
    return const_cast<ManifestEntry*>(std::as_const(*this).find(name));
}

void Manifest::upsert(ManifestEntry entry)
{
    const auto it = std::lower_bound(entries.begin(), entries.end(), entry.name,
                                     [](const ManifestEntry& e, const std::string& key) { return e.name < key; });
    if (it != entries.end() && it->name == entry.name) {
        *it = std::move(entry);
    } else {
        entries.insert(it, std::move(entry));
    }
}

void Manifest::erase(std::string_view name) noexcept
{
    std::erase_if(entries, [name](const ManifestEntry& entry) { return entry.name == name; });
}

std::string manifest_violation(const Manifest& manifest)
{
    if (manifest.generation == 0) {
        return "generation 0";
    }
    if (manifest.entries.size() > kMaxManifestEntries) {
        return "more than " + std::to_string(kMaxManifestEntries) + " entries";
    }
    for (std::size_t i = 0; i < manifest.entries.size(); ++i) {
        if (auto violation = entry_violation(manifest.entries[i]); !violation.empty()) {
            return violation;
        }
        if (i > 0 && !(manifest.entries[i - 1].name < manifest.entries[i].name)) {
            return "entries are not in strictly ascending name order";
        }
    }
    return {};
}

std::string encode_manifest(const Manifest& manifest, std::span<const std::uint8_t> key)
{
    if (key.size() != kManifestKeyBytes) {
        throw std::invalid_argument("manifest key must be " + std::to_string(kManifestKeyBytes) + " bytes");
    }
    if (const auto violation = manifest_violation(manifest); !violation.empty()) {
        throw std::invalid_argument("refusing to write an invalid store manifest: " + violation);
    }
    std::string text(kHeaderLine);
    text += "\ngeneration " + std::to_string(manifest.generation) + "\n";
    for (const auto& entry : manifest.entries) {
        text += "secret " + entry.name + " " + std::to_string(entry.version) + " " + hash_text(entry.hash) + " " +
                std::to_string(entry.rotation_required_since_usec) + " " + pending_text(entry.pending) + "\n";
    }
    std::array<std::uint8_t, crypto_auth_BYTES> mac{};
    const auto body = as_bytes(text);
    if (::crypto_auth(mac.data(), body.data(), body.size(), key.data()) != 0) {
        throw std::runtime_error("crypto_auth failed");
    }
    text += std::string(kMacPrefix) + bytes::to_hex(mac) + "\n";
    return text;
}

DecodedManifest decode_manifest(std::string_view text, std::span<const std::uint8_t> key)
{
    DecodedManifest result;
    const auto malformed = [&result](std::string detail) {
        result.fault = ManifestFault::Malformed;
        result.detail = std::move(detail);
        return result;
    };
    if (key.size() != kManifestKeyBytes) {
        throw std::invalid_argument("manifest key must be " + std::to_string(kManifestKeyBytes) + " bytes");
    }
    if (text.size() > kMaxManifestBytes) {
        return malformed("larger than " + std::to_string(kMaxManifestBytes) + " bytes");
    }
    // Structure first, only as far as needed to find the MAC: the last line.
    if (text.empty() || text.back() != '\n') {
        return malformed("does not end with a newline");
    }
    const std::size_t last_start = text.rfind('\n', text.size() - 2) + 1;  // npos + 1 == 0
    const Text mac_line = text.substr(last_start, text.size() - 1 - last_start);
    if (!mac_line.starts_with(kMacPrefix) || mac_line.size() != kMacPrefix.size() + kMacHexBytes ||
        !is_lower_hex(mac_line.substr(kMacPrefix.size()))) {
        return malformed("the last line is not a MAC line");
    }
    const auto mac = bytes::from_hex(mac_line.substr(kMacPrefix.size()));
    const auto body = as_bytes(text.substr(0, last_start));
    if (::crypto_auth_verify(mac->data(), body.data(), body.size(), key.data()) != 0) {
        result.fault = ManifestFault::Unauthentic;
        result.detail = "the MAC does not verify (edited, or written under another master key)";
        return result;
    }

    // Authentic from here on; still parsed strictly, so a bug of ours shows as "malformed".
    Manifest manifest;
    manifest.entries.clear();
    Text rest = text.substr(0, last_start);
    std::size_t line_number = 0;
    while (!rest.empty()) {
        const std::size_t newline = rest.find('\n');  // the body ends in '\n': always found
        const Text line = rest.substr(0, newline);
        rest.remove_prefix(newline + 1);
        ++line_number;
        const std::string where = "line " + std::to_string(line_number);
        if (line_number == 1) {
            if (line != kHeaderLine) {
                return malformed(where + ": not a codex-vault-manifest 1 header");
            }
            continue;
        }
        const auto fields = split_spaces(line);
        if (line_number == 2) {
            const auto generation = fields.size() == 2 && fields[0] == "generation"
                                        ? parse_decimal<std::uint64_t>(fields[1])
                                        : std::nullopt;
            if (!generation) {
                return malformed(where + ": expected 'generation <number>'");
            }
            manifest.generation = *generation;
            continue;
        }
        if (fields.size() != 6 || fields[0] != "secret") {
            return malformed(where + ": expected a secret line with 6 fields");
        }
        ManifestEntry entry;
        entry.name = std::string(fields[1]);
        const auto version = parse_decimal<std::uint32_t>(fields[2]);
        const auto hash = parse_optional_hash(fields[3]);
        const auto since = parse_decimal<std::uint64_t>(fields[4]);
        const auto pending = parse_pending(fields[5]);
        if (!version || !hash || !since || !pending) {
            return malformed(where + ": a field is not in its canonical form");
        }
        entry.version = *version;
        entry.hash = *hash;
        entry.rotation_required_since_usec = *since;
        entry.pending = *pending;
        manifest.entries.push_back(std::move(entry));
        if (manifest.entries.size() > kMaxManifestEntries) {
            return malformed("more than " + std::to_string(kMaxManifestEntries) + " entries");
        }
    }
    if (line_number < 2) {
        return malformed("the header or generation line is missing");
    }
    if (auto violation = manifest_violation(manifest); !violation.empty()) {
        return malformed(std::move(violation));
    }
    result.manifest = std::move(manifest);
    return result;
}

const char* to_string(IntegrityProblemKind kind) noexcept
{
    switch (kind) {
    case IntegrityProblemKind::ManifestMissing:
        return "manifest-missing";
    case IntegrityProblemKind::ManifestMalformed:
        return "manifest-malformed";
    case IntegrityProblemKind::ManifestUnauthentic:
        return "manifest-unauthentic";
    case IntegrityProblemKind::ManifestStale:
        return "manifest-stale";
    case IntegrityProblemKind::SecretMissing:
        return "secret-missing";
    case IntegrityProblemKind::SecretUnlisted:
        return "secret-unlisted";
    case IntegrityProblemKind::HashMismatch:
        return "hash-mismatch";
    case IntegrityProblemKind::AuthenticationFailed:
        return "authentication-failed";
    case IntegrityProblemKind::VersionMismatch:
        return "version-mismatch";
    }
    return "unknown";
}

std::string describe(const IntegrityProblem& problem)
{
    std::string text = problem.name.empty() ? std::string("store manifest") : "secret '" + problem.name + "'";
    text += ": ";
    text += to_string(problem.kind);
    if (!problem.detail.empty()) {
        text += " (" + problem.detail + ")";
    }
    return text;
}

std::vector<IntegrityProblem> compare_manifest(const Manifest& manifest, std::span<const ObservedFile> files)
{
    std::map<std::string_view, const ObservedFile*> by_name;
    for (const auto& file : files) {
        by_name.emplace(file.name, &file);
    }
    std::vector<IntegrityProblem> problems;
    for (const auto& entry : manifest.entries) {
        const auto it = by_name.find(entry.name);
        if (it == by_name.end()) {
            if (entry.hash) {  // a put still pending with no file is no loss
                add_problem(problems, IntegrityProblemKind::SecretMissing, entry.name, "listed, but its file is gone");
            }
            continue;
        }
        compare_file(entry, *it->second, problems);
    }
    for (const auto& [name, file] : by_name) {
        if (manifest.find(name) != nullptr) {
            continue;
        }
        add_problem(problems, IntegrityProblemKind::SecretUnlisted, file->name, "a file the manifest does not list");
        if (!file->authentic) {
            add_problem(problems, IntegrityProblemKind::AuthenticationFailed, file->name,
                        file->hash ? "the sealed file does not authenticate" : "not a readable sealed file");
        }
    }
    std::stable_sort(problems.begin(), problems.end(), [](const IntegrityProblem& a, const IntegrityProblem& b) {
        return std::tie(a.name, a.kind) < std::tie(b.name, b.kind);
    });
    return problems;
}

std::optional<Recovery> settle_pending(Manifest& manifest, std::string_view name, const ObservedFile* file)
{
    ManifestEntry* entry = manifest.find(name);
    if (entry == nullptr || !entry->pending) {
        return std::nullopt;
    }
    const PendingChange pending = *entry->pending;
    const bool file_is_new = pending.hash ? (file != nullptr && file->hash == pending.hash) : file == nullptr;
    const bool file_is_old = entry->hash ? (file != nullptr && file->hash == entry->hash) : file == nullptr;
    Recovery recovery{std::string(name), file_is_new, {}};
    if (file_is_new) {
        if (!pending.hash) {
            manifest.erase(name);
            recovery.detail = "interrupted removal completed";
            return recovery;
        }
        // The mark stays: it may have been set after this write began (an incident), and the
        // founder never saw the write confirmed. Failing closed costs one more rotation.
        entry->version = pending.version;
        entry->hash = pending.hash;
        entry->pending.reset();
        recovery.detail = "interrupted write completed (version " + std::to_string(pending.version) + ")";
        return recovery;
    }
    if (file_is_old) {
        if (!entry->hash) {
            manifest.erase(name);
            recovery.detail = "interrupted put undone";
            return recovery;
        }
        entry->pending.reset();
        recovery.detail = pending.hash
                              ? "interrupted write undone (version " + std::to_string(entry->version) + " kept)"
                              : "interrupted removal undone";
        return recovery;
    }
    return std::nullopt;
}

std::vector<Recovery> settle_all_pending(Manifest& manifest, std::span<const ObservedFile> files)
{
    std::vector<std::string> names;
    for (const auto& entry : manifest.entries) {
        if (entry.pending) {
            names.push_back(entry.name);
        }
    }
    std::vector<Recovery> recoveries;
    for (const auto& name : names) {
        const auto it = std::find_if(files.begin(), files.end(), [&](const ObservedFile& f) { return f.name == name; });
        if (auto recovery = settle_pending(manifest, name, it == files.end() ? nullptr : &*it)) {
            recoveries.push_back(std::move(*recovery));
        }
    }
    return recoveries;
}

Manifest manifest_from_files(std::span<const ObservedFile> files, std::uint64_t generation)
{
    Manifest manifest;
    manifest.generation = generation;
    for (const auto& file : files) {
        if (file.authentic && file.hash && file.version != 0 && limits::is_valid_secret_name(file.name)) {
            manifest.upsert(ManifestEntry{file.name, file.version, file.hash, 0, std::nullopt});
        }
    }
    return manifest;
}

std::size_t mark_all_rotation_required(Manifest& manifest, std::uint64_t now_usec)
{
    // 0 means "not marked", so a clock reading of 0 is recorded as 1.
    const std::uint64_t mark = now_usec == 0 ? 1 : now_usec;
    std::size_t marked = 0;
    for (auto& entry : manifest.entries) {
        if (entry.rotation_required_since_usec == 0) {
            entry.rotation_required_since_usec = mark;
            ++marked;
        }
    }
    return marked;
}

}  // namespace codexvault::store
