// The integrity guarantees of issue 4 through the real daemon and vaultctl on a private bus:
// every kind of audit-log tamper (bit flip, deleted record, swapped records, removed tail,
// forged checkpoint, forged head) is found offline at the right position and makes the daemon
// start locked, persistently, until the founder unlocks; a torn tail is recovered, not locked;
// store tampering locks; incident response (also one interrupted by a crash) revokes, marks,
// seals and survives restarts; audit tail access; no canary secret bytes in the log, the journal
// copy or vaultctl's output; use --wait; founder Lock/Unlock.
//
// Tampering happens with the daemon stopped. The daemon runs as root here, so it sets the
// append-only inode flag on its segments: tests clear it before editing a segment.
#include <fcntl.h>
#include <nlohmann/json.hpp>
#include <signal.h>
#include <sodium.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "cli/vault_client.hpp"
#include "common/bus_contract.hpp"
#include "common/vault_error.hpp"
#include "lib/auditcore/chain.hpp"
#include "lib/auditcore/record.hpp"
#include "lib/auditcore/segment_dir.hpp"
#include "tests/support/harness.hpp"

using namespace codexvault;
using namespace codexvault::test;
namespace fs = std::filesystem;

namespace {

using Bytes = std::vector<std::uint8_t>;

const int kDenied = error_info(ErrorCode::PermissionDenied).exit_code;
const int kLocked = error_info(ErrorCode::Locked).exit_code;
const int kInvalid = error_info(ErrorCode::InvalidArgument).exit_code;
const int kIntegrity = error_info(ErrorCode::IntegrityFailure).exit_code;

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

CommandResult founder(const std::vector<std::string>& args, const std::string& stdin_data = "")
{
    return env->as_founder(args, stdin_data);
}

CommandResult as(uid_t uid, const std::vector<std::string>& args)
{
    return env->vaultctl(args, {.stdin_data = "", .passphrase = std::nullopt, .as_uid = uid});
}

// Another uid holding a copy of the founder key file and its passphrase: the daemon checks the
// founder's uid as well as the signature.
CommandResult stolen_key_as_nobody(const std::vector<std::string>& args)
{
    const std::string copy = env->root() + "/stolen-founder.key";
    std::error_code ec;
    fs::copy_file(env->founder_key(), copy, fs::copy_options::overwrite_existing, ec);
    cr_assert(!ec, "copy the founder key: %s", ec.message().c_str());
    cr_assert_eq(::chmod(copy.c_str(), 0644), 0);
    std::vector<std::string> full = args;
    full.insert(full.end(), {"--founder-key", copy, "--passphrase-fd", "3"});
    return env->vaultctl(full, {.stdin_data = "", .passphrase = kPassphrase, .as_uid = kNobody});
}

// Writes the policy and restarts the daemon so it loads it.
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
    const std::string id = trim_trailing_space(r.out);
    cr_assert(id.rfind("g-", 0) == 0, "grant id: %s", id.c_str());
    return id;
}

nlohmann::json parse_json(const CommandResult& r, const char* what)
{
    const auto j = nlohmann::json::parse(r.out, nullptr, false);
    cr_assert(!j.is_discarded(), "%s: not JSON (exit %d): %s%s", what, r.exit_code, r.out.c_str(), r.err.c_str());
    return j;
}

nlohmann::json status()
{
    const auto r = env->vaultctl({"status", "--json"});
    cr_assert_eq(r.exit_code, 0, "status: %s", r.err.c_str());
    return parse_json(r, "status");
}

std::string status_text(const nlohmann::json& s)
{
    return s.dump();
}

nlohmann::json secrets_json()
{
    const auto r = founder({"secret", "ls", "--json"});
    cr_assert_eq(r.exit_code, 0, "secret ls: %s", r.err.c_str());
    return parse_json(r, "secret ls");
}

nlohmann::json grants_json()
{
    const auto r = founder({"grant", "ls", "--json"});
    cr_assert_eq(r.exit_code, 0, "grant ls: %s", r.err.c_str());
    return parse_json(r, "grant ls");
}

void put_secret(const std::string& name, const std::string& value)
{
    const auto r = founder({"secret", "put", name}, value);
    cr_assert_eq(r.exit_code, 0, "secret put %s: %s", name.c_str(), r.err.c_str());
}

// ---- files -------------------------------------------------------------------------------------

std::string audit_dir()
{
    return env->state_dir() + "/audit";
}

Bytes read_bytes(const std::string& path)
{
    std::ifstream in(path, std::ios::binary);
    cr_assert(in.good(), "cannot read %s", path.c_str());
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// Replaces a file's content in place (same inode), clearing the append-only flag first.
void write_bytes(const std::string& path, const Bytes& bytes)
{
    (void)set_append_only(path, false);
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    out.close();
    cr_assert(out.good(), "cannot write %s (append-only flag still set?)", path.c_str());
}

std::vector<std::string> segment_paths(const std::string& dir)
{
    std::vector<std::string> paths;
    for (const auto& entry : fs::directory_iterator(dir)) {
        if (audit::parse_segment_file_name(entry.path().filename().string())) {
            paths.push_back(entry.path().string());
        }
    }
    std::sort(paths.begin(), paths.end());
    return paths;
}

std::string last_segment()
{
    const auto paths = segment_paths(audit_dir());
    cr_assert(!paths.empty(), "no audit segments in %s", audit_dir().c_str());
    return paths.back();
}

std::vector<std::string> quarantine_dirs()
{
    std::vector<std::string> dirs;
    for (const auto& entry : fs::directory_iterator(env->state_dir())) {
        if (entry.path().filename().string().rfind("audit.tampered-", 0) == 0) {
            dirs.push_back(entry.path().string());
        }
    }
    std::sort(dirs.begin(), dirs.end());
    return dirs;
}

// ---- a minimal frame walker (docs/audit-log.md), over the audit core vaultctl links too -------

struct Frame {
    std::size_t offset = 0;
    std::size_t size = 0;
    std::uint64_t seq = 0;
    audit::EventType type = audit::EventType::Decision;
    bool sealed = false;  // checkpoints only
};

std::vector<Frame> frames_of(const Bytes& segment)
{
    cr_assert(audit::parse_segment_header(segment).has_value(), "segment header unreadable");
    std::vector<Frame> frames;
    std::size_t off = audit::kSegmentHeaderBytes;
    for (;;) {
        const audit::FrameRead fr = audit::read_frame(segment, off);
        if (fr.status == audit::FrameStatus::End) {
            break;
        }
        cr_assert(fr.status == audit::FrameStatus::Ok, "frame at offset %zu unreadable (status %d)", off,
                  static_cast<int>(fr.status));
        const auto r = audit::decode_payload(fr.payload);
        cr_assert(r.has_value(), "frame at offset %zu does not decode", off);
        frames.push_back(
            Frame{off, fr.size, r->seq, r->type, r->type == audit::EventType::Checkpoint && r->checkpoint.sealed});
        off += fr.size;
    }
    return frames;
}

bool is_checkpoint(const Frame& f)
{
    return f.type == audit::EventType::Checkpoint;
}

// A non-checkpoint record in the middle of the segment, followed by another non-checkpoint record
// (so it can be swapped with its successor) and followed later by a checkpoint (so it is signed).
std::size_t middle_record(const std::vector<Frame>& frames)
{
    std::vector<std::size_t> candidates;
    for (std::size_t i = 1; i + 2 < frames.size(); ++i) {
        if (!is_checkpoint(frames[i]) && !is_checkpoint(frames[i + 1])) {
            candidates.push_back(i);
        }
    }
    cr_assert_geq(candidates.size(), 3U, "too few records to pick one in the middle (%zu frames)", frames.size());
    return candidates[candidates.size() / 2];
}

// BLAKE2b-256 over a frame's header and payload, written over its hash: what an editor who knows
// the format (but not the key) does to make an edited frame look whole.
void rehash_frame(Bytes& segment, const Frame& f)
{
    const std::size_t covered = f.size - 32;
    crypto_generichash(segment.data() + f.offset + covered, 32, segment.data() + f.offset, covered, nullptr, 0);
}

// ---- verification through vaultctl -------------------------------------------------------------

std::string pubkey_path()
{
    return env->root() + "/saved-audit.pub";
}

// The founder exports the audit key while the daemon runs, and keeps it outside the log folder.
void save_pubkey()
{
    const auto r = env->vaultctl({"audit", "pubkey", "-o", pubkey_path()});
    cr_assert_eq(r.exit_code, 0, "audit pubkey: %s", r.err.c_str());
    cr_assert(read_text_file(pubkey_path()).rfind("codex-vault-audit-ed25519 ", 0) == 0, "%s",
              read_text_file(pubkey_path()).c_str());
}

struct Verified {
    int code = -1;
    nlohmann::json report;
    std::string raw;
};

Verified verify(const std::string& dir)
{
    const auto r = env->vaultctl({"audit", "verify", "--dir", dir, "--pubkey", pubkey_path(), "--json"});
    Verified v;
    v.code = r.exit_code;
    v.raw = r.out + r.err;
    v.report = parse_json(r, "audit verify");
    return v;
}

struct Expected {
    std::string kind;
    std::uint64_t segment = 1;
    std::uint64_t offset = 0;
    std::uint64_t seq = 0;
};

void expect_finding(const Verified& v, const Expected& e, const char* where)
{
    cr_assert_eq(v.code, kIntegrity, "%s: audit verify must fail with %d: %s", where, kIntegrity, v.raw.c_str());
    cr_assert_eq(v.report.value("ok", true), false, "%s: %s", where, v.raw.c_str());
    const auto& p = v.report.at("problem");
    cr_expect_eq(p.at("kind").get<std::string>(), e.kind, "%s: kind %s, expected %s: %s", where,
                 p.at("kind").get<std::string>().c_str(), e.kind.c_str(), v.raw.c_str());
    cr_expect_eq(p.at("segment").get<std::uint64_t>(), e.segment, "%s: segment: %s", where, v.raw.c_str());
    cr_expect_eq(p.at("offset").get<std::uint64_t>(), e.offset, "%s: offset, expected %llu: %s", where,
                 static_cast<unsigned long long>(e.offset), v.raw.c_str());
    cr_expect_eq(p.at("seq").get<std::uint64_t>(), e.seq, "%s: seq, expected %llu: %s", where,
                 static_cast<unsigned long long>(e.seq), v.raw.c_str());
}

void expect_verifies(const std::string& dir, const char* where)
{
    const Verified v = verify(dir);
    cr_assert_eq(v.code, 0, "%s: %s should verify: %s", where, dir.c_str(), v.raw.c_str());
}

// ---- the common shape of a tamper test ---------------------------------------------------------

// Records across two daemon runs (so the segment holds several checkpoints), then stops.
void make_history()
{
    save_pubkey();
    put_secret("alpha", "value-alpha");
    put_secret("beta", "value-beta");
    for (int i = 0; i < 3; ++i) {
        cr_assert_eq(founder({"secret", "ls"}).exit_code, 0);
    }
    env->restart_daemon();
    put_secret("gamma", "value-gamma");
    cr_assert_eq(founder({"secret", "rotate", "alpha"}, "value-alpha-2").exit_code, 0);
    cr_assert_eq(founder({"secret", "ls"}).exit_code, 0);
    env->stop_daemon();
    cr_assert_eq(segment_paths(audit_dir()).size(), 1U, "expected one segment");
}

void expect_locked_naming(const std::string& needle, const char* where)
{
    const auto s = status();
    cr_assert_eq(s.at("state").get<std::string>(), "locked", "%s: %s", where, status_text(s).c_str());
    const std::string reason = s.at("lock_reason").get<std::string>();
    cr_expect(contains(reason, needle), "%s: lock reason does not name '%s': %s", where, needle.c_str(),
              reason.c_str());
    const auto ls = founder({"secret", "ls"});
    cr_expect_eq(ls.exit_code, kLocked, "%s: secret ls while locked: %d %s", where, ls.exit_code, ls.err.c_str());
}

// The daemon is stopped and the log has been tampered with: (a) offline verify finds it where
// expected, (b) the daemon starts locked naming the finding, (c) stays locked after a restart
// although the fresh log verifies, (d) the founder unlocks it (and it stays unlocked).
void expect_tamper_handled(const Expected& expected)
{
    expect_finding(verify(audit_dir()), expected, "offline, the tampered folder");

    env->start_daemon();
    expect_locked_naming("audit log failed verification", "after start");
    expect_locked_naming(expected.kind, "after start");
    // Status and the audit key still answer; use is refused as locked.
    cr_expect_eq(env->vaultctl({"audit", "pubkey"}).exit_code, 0);
    cr_expect_eq(as(kNobody, {"use", "audit:read"}).exit_code, kLocked);
    const auto quarantined = quarantine_dirs();
    cr_assert_eq(quarantined.size(), 1U, "one quarantine folder expected");
    expect_finding(verify(quarantined[0]), expected, "offline, the quarantine folder");
    // The lock reason says where the finding is and where the evidence was kept.
    expect_locked_naming("offset " + std::to_string(expected.offset) + " seq " + std::to_string(expected.seq),
                         "after start");
    expect_locked_naming("kept as " + fs::path(quarantined[0]).filename().string(), "after start");
    const auto tail = founder({"audit", "tail", "--event", "integrity", "--json"});
    cr_expect_eq(tail.exit_code, 0, "%s", tail.err.c_str());
    cr_expect(contains(tail.out, fs::path(quarantined[0]).filename().string()), "integrity record: %s",
              tail.out.c_str());

    env->restart_daemon();
    expect_verifies(audit_dir(), "the fresh log");
    expect_locked_naming("audit log failed verification", "after a further restart");

    const auto unlock = founder({"unlock", "--reason", "investigated the audit finding"});
    cr_assert_eq(unlock.exit_code, 0, "unlock: %s", unlock.err.c_str());
    cr_expect_eq(status().at("state").get<std::string>(), "ready");
    cr_expect_eq(founder({"secret", "ls"}).exit_code, 0);
    env->restart_daemon();
    cr_expect_eq(status().at("state").get<std::string>(), "ready", "unlock must persist: %s",
                 status_text(status()).c_str());
    expect_verifies(audit_dir(), "the log after unlock");
}

}  // namespace

TestSuite(integrity, .init = start_env_with_founder, .fini = stop_env, .timeout = 60);

// ---- 1. tampering with the audit log -----------------------------------------------------------

Test(integrity, a_flipped_bit_in_a_record_is_found_and_locks_the_vault)
{
    require_root();
    make_history();
    const std::string path = last_segment();
    Bytes seg = read_bytes(path);
    const auto frames = frames_of(seg);
    const Frame victim = frames[middle_record(frames)];
    seg[victim.offset + 8 + 40] ^= 0x04;  // inside the payload (its previous-hash field)
    write_bytes(path, seg);
    expect_tamper_handled({"corrupt-record", 1, victim.offset, victim.seq});
}

Test(integrity, a_deleted_record_is_found_and_locks_the_vault)
{
    require_root();
    make_history();
    const std::string path = last_segment();
    Bytes seg = read_bytes(path);
    const auto frames = frames_of(seg);
    const Frame victim = frames[middle_record(frames)];
    seg.erase(seg.begin() + static_cast<std::ptrdiff_t>(victim.offset),
              seg.begin() + static_cast<std::ptrdiff_t>(victim.offset + victim.size));
    write_bytes(path, seg);
    expect_tamper_handled({"sequence-gap", 1, victim.offset, victim.seq});
}

Test(integrity, swapped_records_are_found_and_lock_the_vault)
{
    require_root();
    make_history();
    const std::string path = last_segment();
    Bytes seg = read_bytes(path);
    const auto frames = frames_of(seg);
    const std::size_t i = middle_record(frames);
    const Frame a = frames[i];
    const Frame b = frames[i + 1];
    Bytes swapped(seg.begin(), seg.begin() + static_cast<std::ptrdiff_t>(a.offset));
    swapped.insert(swapped.end(), seg.begin() + static_cast<std::ptrdiff_t>(b.offset),
                   seg.begin() + static_cast<std::ptrdiff_t>(b.offset + b.size));
    swapped.insert(swapped.end(), seg.begin() + static_cast<std::ptrdiff_t>(a.offset),
                   seg.begin() + static_cast<std::ptrdiff_t>(a.offset + a.size));
    swapped.insert(swapped.end(), seg.begin() + static_cast<std::ptrdiff_t>(b.offset + b.size), seg.end());
    cr_assert_eq(swapped.size(), seg.size());
    write_bytes(path, swapped);
    expect_tamper_handled({"out-of-order", 1, a.offset, a.seq});
}

Test(integrity, a_tail_cut_at_a_record_boundary_removing_the_head_checkpoint_is_found)
{
    require_root();
    make_history();
    const std::string path = last_segment();
    Bytes seg = read_bytes(path);
    const auto frames = frames_of(seg);
    // The orderly stop ended the log with `stop` and the checkpoint the head file names.
    const Frame last = frames.back();
    cr_assert(is_checkpoint(last), "the log should end in the stop checkpoint");
    seg.resize(last.offset);
    write_bytes(path, seg);
    expect_tamper_handled({"removed-tail", 1, last.offset, last.seq});
}

Test(integrity, a_tail_of_several_records_cut_at_a_record_boundary_is_found)
{
    require_root();
    make_history();
    const std::string path = last_segment();
    Bytes seg = read_bytes(path);
    const auto frames = frames_of(seg);
    // Cut back to just after the checkpoint before the last one: every record written since is
    // gone, and what is left is a log that ends in a validly signed checkpoint.
    std::size_t keep = frames.size() - 1;
    while (keep > 0 && !is_checkpoint(frames[keep - 1])) {
        --keep;
    }
    cr_assert_gt(keep, 0U);
    cr_assert_lt(keep + 1, frames.size(), "at least two records must be removed");
    const Frame first_removed = frames[keep];
    seg.resize(first_removed.offset);
    write_bytes(path, seg);
    expect_tamper_handled({"removed-tail", 1, first_removed.offset, first_removed.seq});
}

Test(integrity, a_checkpoint_with_altered_claims_and_a_recomputed_frame_hash_is_found)
{
    require_root();
    make_history();
    const std::string path = last_segment();
    Bytes seg = read_bytes(path);
    const auto frames = frames_of(seg);
    std::vector<Frame> checkpoints;
    std::copy_if(frames.begin(), frames.end(), std::back_inserter(checkpoints), is_checkpoint);
    cr_assert_geq(checkpoints.size(), 3U, "expected several checkpoints");
    const Frame cp = checkpoints[1];  // one in the middle of the segment
    // Claim a different previous checkpoint (tail offset 16, docs/audit-log.md), then make the
    // frame whole again: only the signature can tell.
    const std::size_t payload = cp.offset + audit::kFrameHeaderBytes;
    const std::size_t payload_size = cp.size - audit::kFrameOverheadBytes;
    const std::size_t tail = payload + payload_size - audit::kCheckpointTailBytes;
    seg[tail + 16] ^= 0x01;
    rehash_frame(seg, cp);
    write_bytes(path, seg);
    expect_tamper_handled({"bad-checkpoint-signature", 1, cp.offset, cp.seq});
}

Test(integrity, a_head_file_naming_another_checkpoint_is_found)
{
    require_root();
    make_history();
    const std::string path = last_segment();
    const Bytes seg = read_bytes(path);
    const auto frames = frames_of(seg);
    std::vector<Frame> checkpoints;
    std::copy_if(frames.begin(), frames.end(), std::back_inserter(checkpoints), is_checkpoint);
    cr_assert_geq(checkpoints.size(), 2U);
    const std::string head_path = audit_dir() + "/head";
    Bytes head = read_bytes(head_path);
    cr_assert_eq(head.size(), 144U);
    std::uint64_t named = 0;
    std::memcpy(&named, head.data() + 24, 8);
    cr_assert_eq(named, checkpoints.back().seq, "the head names the last checkpoint");
    // Name an earlier checkpoint instead (without the key, the signature cannot follow).
    const std::uint64_t other = checkpoints[checkpoints.size() - 2].seq;
    std::memcpy(head.data() + 24, &other, 8);
    write_bytes(head_path, head);
    const Frame last = frames.back();
    expect_tamper_handled({"bad-head", 1, last.offset + last.size, last.seq + 1});
}

// The head file is what makes a removed tail visible; deleting it must not make the same cut
// invisible. The daemon writes a head after every checkpoint and every start writes one, so a
// log with checkpoints but no head was tampered with (or lost its head some other way): either
// way the vault must not carry on as if nothing happened.
Test(integrity, a_removed_tail_is_not_hidden_by_also_deleting_the_head_file)
{
    require_root();
    make_history();
    const std::string path = last_segment();
    Bytes seg = read_bytes(path);
    const auto frames = frames_of(seg);
    std::size_t keep = frames.size() - 1;
    while (keep > 0 && !is_checkpoint(frames[keep - 1])) {
        --keep;
    }
    cr_assert_lt(keep + 1, frames.size());
    seg.resize(frames[keep].offset);
    write_bytes(path, seg);
    cr_assert(fs::remove(audit_dir() + "/head"));

    const auto text = env->vaultctl({"audit", "verify", "--dir", audit_dir(), "--pubkey", pubkey_path()});
    cr_expect(contains(text.out, "head file: none"), "offline verify says the head is missing: %s", text.out.c_str());
    env->start_daemon();
    const auto s = status();
    cr_expect_eq(s.at("state").get<std::string>(), "locked",
                 "BUG: %zu records (with a signed checkpoint) were cut from the log and the head file deleted, "
                 "yet the daemon started %s: %s",
                 frames.size() - keep, s.at("state").get<std::string>().c_str(), status_text(s).c_str());
}

// The most complete truncation: the whole log moved away. The append-only flag does not stop it
// (a folder holding flagged files can still be renamed), and a vault with an enrolled founder and
// secrets is not a first start: it must not begin a fresh log as if it were.
Test(integrity, an_audit_folder_moved_away_is_not_taken_for_a_first_start)
{
    require_root();
    make_history();
    fs::rename(audit_dir(), env->state_dir() + "/elsewhere");
    env->start_daemon();
    const auto s = status();
    cr_expect_eq(s.at("state").get<std::string>(), "locked",
                 "BUG: the whole audit log was moved away and the daemon started %s with a fresh log: %s",
                 s.at("state").get<std::string>().c_str(), status_text(s).c_str());
}

// Not through the daemon (one restart per position would be slow): every frame of a real log,
// a bit flipped in its length, its payload and its hash, and one in the segment header.
Test(integrity, a_bit_flipped_anywhere_is_found_offline_at_its_frame)
{
    require_root();
    make_history();
    const std::string copy = env->root() + "/flip";
    const Bytes original = read_bytes(last_segment());
    const auto frames = frames_of(original);
    fs::create_directory(copy);
    fs::copy_file(audit_dir() + "/head", copy + "/head");
    const std::string seg_path = copy + "/" + fs::path(last_segment()).filename().string();

    Bytes seg = original;
    seg[20] ^= 0x01;  // the header's segment number
    write_bytes(seg_path, seg);
    {
        const Verified v = verify(copy);
        cr_assert_eq(v.code, kIntegrity, "header flip: %s", v.raw.c_str());
        cr_expect_eq(v.report["problem"].value("kind", ""), "bad-segment-header", "%s", v.raw.c_str());
        cr_expect_eq(v.report["problem"].value("offset", 1ULL), 0ULL, "%s", v.raw.c_str());
    }

    for (const Frame& f : frames) {
        const std::size_t positions[] = {f.offset + 1, f.offset + audit::kFrameHeaderBytes + (f.size - 40) / 2,
                                         f.offset + f.size - 1};
        for (const std::size_t at : positions) {
            seg = original;
            seg[at] ^= 0x10;
            write_bytes(seg_path, seg);
            const std::string where = "flip at byte " + std::to_string(at) + " (frame at " + std::to_string(f.offset) +
                                      ", seq " + std::to_string(f.seq) + ")";
            expect_finding(verify(copy), {"corrupt-record", 1, f.offset, f.seq}, where.c_str());
        }
    }
    write_bytes(seg_path, original);
    expect_verifies(copy, "the unmodified copy");
}

// ---- 2. a torn tail is a crash artefact: recovered and recorded, never a lock ------------------

Test(integrity, a_torn_tail_is_recovered_recorded_and_does_not_lock)
{
    require_root();
    make_history();
    const std::string path = last_segment();
    Bytes seg = read_bytes(path);
    const auto frames = frames_of(seg);
    const std::size_t torn_offset = seg.size();
    // Half a frame, as a crash during write(2) leaves it: a valid frame header, then the bytes
    // stop inside the payload.
    const Frame model = frames[middle_record(frames)];
    const std::size_t half = model.size / 2;
    seg.insert(seg.end(), seg.begin() + static_cast<std::ptrdiff_t>(model.offset),
               seg.begin() + static_cast<std::ptrdiff_t>(model.offset + half));
    write_bytes(path, seg);

    env->start_daemon();
    const auto s = status();
    cr_expect_eq(s.at("state").get<std::string>(), "ready", "a torn tail must not lock: %s", status_text(s).c_str());
    cr_expect(quarantine_dirs().empty(), "a torn tail is not tampering");
    cr_expect_eq(founder({"secret", "ls"}).exit_code, 0);

    const auto tail = founder({"audit", "tail", "--event", "torn-tail-recovered", "--json"});
    cr_assert_eq(tail.exit_code, 0, "%s", tail.err.c_str());
    const auto record = nlohmann::json::parse(trim_trailing_space(tail.out), nullptr, false);
    cr_assert(!record.is_discarded() && record.contains("torn_tail"), "torn-tail-recovered record: %s",
              tail.out.c_str());
    cr_expect_eq(record["torn_tail"].value("segment", 0ULL), 1ULL, "%s", tail.out.c_str());
    cr_expect_eq(record["torn_tail"].value("offset", 0ULL), torn_offset, "%s", tail.out.c_str());
    cr_expect_eq(record["torn_tail"].value("bytes", 0ULL), half, "%s", tail.out.c_str());
    // The sequence number is the one the torn record would have had.
    cr_expect_eq(record.value("seq", 0ULL), frames.back().seq + 1, "%s", tail.out.c_str());

    env->stop_daemon();
    const Verified v = verify(audit_dir());
    cr_assert_eq(v.code, 0, "the recovered log verifies: %s", v.raw.c_str());
    cr_expect_geq(v.report.at("segments").get<int>(), 2, "continued in a new segment: %s", v.raw.c_str());
    bool noted = false;
    for (const auto& note : v.report.at("notes")) {
        if (note.value("kind", "") == "torn-tail" && note.value("offset", 0ULL) == torn_offset &&
            note.value("segment", 0ULL) == 1) {
            noted = true;
        }
    }
    cr_expect(noted, "verify must note the torn tail: %s", v.raw.c_str());
    const auto text = env->vaultctl({"audit", "verify", "--dir", audit_dir(), "--pubkey", pubkey_path()});
    cr_expect_eq(text.exit_code, 0, "%s", text.out.c_str());
    cr_expect(contains(text.out, "torn"), "text output mentions the torn tail: %s", text.out.c_str());
    env->start_daemon();
    cr_expect_eq(status().at("state").get<std::string>(), "ready");
}

// ---- 3. tampering with the store ---------------------------------------------------------------

namespace {

std::string secrets_dir()
{
    return env->state_dir() + "/secrets";
}

void store_history()
{
    put_secret("alpha", "value-alpha");
    put_secret("beta", "value-beta");
    env->stop_daemon();
    cr_assert(fs::exists(secrets_dir() + "/alpha.secret"), "expected STATE/secrets/alpha.secret");
}

// Locked naming `name`; the founder unlocks; the damaged entry is removed and the store is whole.
void expect_store_lock(const std::string& name)
{
    env->start_daemon();
    expect_locked_naming("store integrity check failed", "store tamper");
    expect_locked_naming("'" + name + "'", "store tamper");
    env->restart_daemon();
    expect_locked_naming("'" + name + "'", "store tamper, after a restart");
    const auto unlock = founder({"unlock", "--reason", "damaged secret investigated"});
    cr_assert_eq(unlock.exit_code, 0, "unlock: %s", unlock.err.c_str());
    cr_expect_eq(status().at("state").get<std::string>(), "ready");
    cr_expect_eq(founder({"secret", "ls"}).exit_code, 0);
    // Removing the damaged entry is how the founder repairs the store: the next start is clean.
    const auto rm = founder({"secret", "rm", name});
    cr_expect_eq(rm.exit_code, 0, "secret rm %s: %s", name.c_str(), rm.err.c_str());
    env->restart_daemon();
    cr_expect_eq(status().at("state").get<std::string>(), "ready", "%s", status_text(status()).c_str());
}

}  // namespace

Test(integrity, a_flipped_byte_in_a_secret_file_locks_the_vault)
{
    require_root();
    store_history();
    const std::string path = secrets_dir() + "/alpha.secret";
    Bytes file = read_bytes(path);
    file[file.size() / 2] ^= 0x01;
    write_bytes(path, file);
    expect_store_lock("alpha");
}

Test(integrity, a_deleted_secret_file_locks_the_vault)
{
    require_root();
    store_history();
    cr_assert(fs::remove(secrets_dir() + "/beta.secret"));
    expect_store_lock("beta");
}

Test(integrity, an_unlisted_copy_of_a_secret_file_locks_the_vault)
{
    require_root();
    store_history();
    fs::copy_file(secrets_dir() + "/alpha.secret", secrets_dir() + "/copied.secret");
    expect_store_lock("copied");
}

// ---- 4. incident response end to end -----------------------------------------------------------

namespace {

// Waits for the Locked signal on the bus.
struct LockedWatch {
    cli::VaultClient client{env->bus_address()};
    sd_bus_slot* slot = nullptr;
    std::string reason;
    bool seen = false;

    LockedWatch()
    {
        cr_assert(sd_bus_match_signal(client.bus(), &slot, bus::kBusName, bus::kObjectPath, bus::kInterface,
                                      bus::signal::kLocked, &LockedWatch::on_signal, this) >= 0);
    }
    ~LockedWatch() { sd_bus_slot_unref(slot); }
    LockedWatch(const LockedWatch&) = delete;
    LockedWatch& operator=(const LockedWatch&) = delete;

    static int on_signal(sd_bus_message* m, void* userdata, sd_bus_error* /*error*/)
    {
        const char* text = nullptr;
        if (sd_bus_message_read(m, "s", &text) >= 0) {
            auto* self = static_cast<LockedWatch*>(userdata);
            self->reason = text;
            self->seen = true;
        }
        return 0;
    }
    bool wait()
    {
        for (int i = 0; i < 100 && !seen; ++i) {
            while (sd_bus_process(client.bus(), nullptr) > 0) {
            }
            if (!seen) {
                (void)sd_bus_wait(client.bus(), 50'000);
            }
        }
        return seen;
    }
};

const nlohmann::json* find_by(const nlohmann::json& list, const std::string& key, const std::string& value)
{
    for (const auto& item : list) {
        if (item.value(key, "") == value) {
            return &item;
        }
    }
    return nullptr;
}

}  // namespace

Test(integrity, incident_revokes_marks_seals_persists_and_recovers)
{
    require_root();
    start_with_policy("version = 1\n");
    save_pubkey();
    put_secret("openai", "value-before-incident");
    const std::string grant = issue_grant({"--principal", "uid=65534", "--cap", "audit:read", "--ttl", "1h"});
    cr_assert_eq(as(kNobody, {"use", "audit:read"}).exit_code, 0, "use before the incident");
    const std::size_t segments_before = segment_paths(audit_dir()).size();

    LockedWatch watch;
    const auto incident = founder({"incident", "--reason", "laptop stolen"});
    cr_assert_eq(incident.exit_code, 0, "incident: %s%s", incident.out.c_str(), incident.err.c_str());
    cr_expect(contains(incident.out, "1 grant(s) revoked"), "%s", incident.out.c_str());
    cr_expect(watch.wait(), "Locked signal");
    cr_expect(contains(watch.reason, "laptop stolen"), "Locked signal reason: %s", watch.reason.c_str());

    const auto check_locked_state = [&](const char* when) {
        const auto s = status();
        cr_expect_eq(s.at("state").get<std::string>(), "locked", "%s: %s", when, status_text(s).c_str());
        cr_expect_eq(s.at("incident").get<bool>(), true, "%s: %s", when, status_text(s).c_str());
        cr_expect(contains(s.at("lock_reason").get<std::string>(), "laptop stolen"), "%s: %s", when,
                  status_text(s).c_str());
        const auto use = as(kNobody, {"use", "audit:read"});
        cr_expect_eq(use.exit_code, kLocked, "%s: use as nobody: %d %s", when, use.exit_code, use.err.c_str());
        cr_expect_eq(founder({"secret", "ls"}).exit_code, kLocked, "%s: secret ls", when);
        cr_expect_eq(founder({"grant", "ls"}).exit_code, kLocked, "%s: grant ls", when);
        // The audit log stays readable to the founder while locked: the incident is in it.
        const auto tail = founder({"audit", "tail", "-n", "200", "--json"});
        cr_expect_eq(tail.exit_code, 0, "%s: audit tail: %s", when, tail.err.c_str());
        cr_expect(contains(tail.out, "\"vault.incident\""), "%s: incident record: %s", when, tail.out.c_str());
        cr_expect(contains(tail.out, "revoked 1 grant(s)"), "%s: revocation record: %s", when, tail.out.c_str());
        cr_expect(contains(tail.out, "vault.incident.mark-secrets"), "%s: %s", when, tail.out.c_str());
        const std::string lock_file = read_text_file(env->state_dir() + "/lock");
        cr_expect(contains(lock_file, "incident yes\n"), "%s: %s", when, lock_file.c_str());
        cr_expect(contains(lock_file, "steps 31\n"), "%s: %s", when, lock_file.c_str());
    };
    check_locked_state("after the incident");

    // The segment was sealed with a signed checkpoint and the log continued in a new one.
    const auto segments = segment_paths(audit_dir());
    cr_expect_gt(segments.size(), segments_before, "incident seals the segment");
    const auto sealed_frames = frames_of(read_bytes(segments[segments.size() - 2]));
    cr_expect(sealed_frames.back().sealed, "the previous segment ends in a sealing checkpoint");
    const Verified v = verify(audit_dir());
    cr_expect_eq(v.code, 0, "%s", v.raw.c_str());
    cr_expect_geq(v.report.value("segments", 0), 2, "%s", v.raw.c_str());

    env->restart_daemon();
    check_locked_state("after a restart");

    const auto unlock = founder({"unlock", "--reason", "keys rotated, laptop wiped"});
    cr_assert_eq(unlock.exit_code, 0, "unlock: %s", unlock.err.c_str());
    const auto grants = grants_json();
    const auto* g = find_by(grants, "id", grant);
    cr_assert_not_null(g, "%s", grants.dump().c_str());
    cr_expect_eq((*g)["state"].get<std::string>(), "revoked", "%s", grants.dump().c_str());
    const auto denied = as(kNobody, {"use", "audit:read"});
    cr_expect_eq(denied.exit_code, kDenied, "a revoked grant stays revoked after unlock: %s", denied.err.c_str());
    auto secrets = secrets_json();
    const auto* s = find_by(secrets, "name", "openai");
    cr_assert_not_null(s, "%s", secrets.dump().c_str());
    cr_expect_eq((*s)["rotation_required"].get<bool>(), true, "%s", secrets.dump().c_str());

    const auto rotated = founder({"secret", "rotate", "openai"}, "value-after-incident");
    cr_assert_eq(rotated.exit_code, 0, "rotate: %s", rotated.err.c_str());
    secrets = secrets_json();
    s = find_by(secrets, "name", "openai");
    cr_assert_not_null(s);
    cr_expect_eq((*s)["rotation_required"].get<bool>(), false, "%s", secrets.dump().c_str());

    issue_grant({"--principal", "uid=65534", "--cap", "audit:read", "--ttl", "1h"});
    cr_expect_eq(as(kNobody, {"use", "audit:read"}).exit_code, 0, "use works again with a new grant");
    env->restart_daemon();
    cr_expect_eq(status().at("state").get<std::string>(), "ready");
    cr_expect_eq(as(kNobody, {"use", "audit:read"}).exit_code, 0);
}

// ---- 5. an incident interrupted by a crash is completed at the next start ----------------------

Test(integrity, an_interrupted_incident_is_completed_at_start_up)
{
    require_root();
    start_with_policy("version = 1\n");
    put_secret("github", "value-github");
    const std::string grant = issue_grant({"--principal", "uid=65534", "--cap", "audit:read", "--ttl", "1h"});
    cr_assert_eq(as(kNobody, {"use", "audit:read"}).exit_code, 0);
    save_pubkey();
    env->stop_daemon();
    const std::size_t segments_before = segment_paths(audit_dir()).size();

    // What a crash right after step 1 leaves: the lock record, incident yes, only Locked done.
    const auto since =
        std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
            .count();
    const std::string lock = "codex-vault-lock 1\nsince " + std::to_string(since) +
                             "\nincident yes\nsteps 1\nreason incident: crashed mid-way\n";
    const std::string lock_path = env->state_dir() + "/lock";
    const int fd = ::open(lock_path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    cr_assert_geq(fd, 0, "create %s: %s", lock_path.c_str(), std::strerror(errno));
    cr_assert_eq(::write(fd, lock.data(), lock.size()), static_cast<ssize_t>(lock.size()));
    cr_assert_eq(::fchmod(fd, 0600), 0);
    ::close(fd);

    env->start_daemon();
    // Calls are answered only after start-up has finished the incident (the name is taken just
    // before), so one Status call orders this read after it.
    const auto s = status();
    const std::string after = read_text_file(lock_path);
    cr_expect(contains(after, "steps 31\n"), "every step done: %s", after.c_str());
    cr_expect(contains(after, "incident yes\n"), "%s", after.c_str());
    cr_expect_eq(s.at("state").get<std::string>(), "locked", "%s", status_text(s).c_str());
    cr_expect_eq(s.at("incident").get<bool>(), true, "%s", status_text(s).c_str());
    cr_expect_eq(as(kNobody, {"use", "audit:read"}).exit_code, kLocked);
    const auto tail = founder({"audit", "tail", "-n", "50", "--json"});
    cr_expect(contains(tail.out, "vault.incident.resume"), "%s", tail.out.c_str());
    cr_expect(contains(tail.out, "revoked 1 grant(s)"), "%s", tail.out.c_str());
    cr_expect_gt(segment_paths(audit_dir()).size(), segments_before, "the segment was sealed at start-up");
    expect_verifies(audit_dir(), "after the resumed incident");

    // Restarting again does not run it twice.
    env->restart_daemon();
    cr_expect(contains(read_text_file(lock_path), "steps 31\n"));
    const auto resumes = founder({"audit", "tail", "-n", "500", "--action", "vault.incident.resume", "--json"});
    cr_expect_eq(std::count(resumes.out.begin(), resumes.out.end(), '\n'), 1, "one resume record: %s",
                 resumes.out.c_str());

    cr_assert_eq(founder({"unlock", "--reason", "checked"}).exit_code, 0);
    const auto grants = grants_json();
    const auto* g = find_by(grants, "id", grant);
    cr_assert_not_null(g, "%s", grants.dump().c_str());
    cr_expect_eq((*g)["state"].get<std::string>(), "revoked", "%s", grants.dump().c_str());
    const auto secrets = secrets_json();
    const auto* secret = find_by(secrets, "name", "github");
    cr_assert_not_null(secret);
    cr_expect_eq((*secret)["rotation_required"].get<bool>(), true, "%s", secrets.dump().c_str());
    cr_expect_eq(as(kNobody, {"use", "audit:read"}).exit_code, kDenied);
}

// ---- 6. who may read the audit log -------------------------------------------------------------

Test(integrity, audit_tail_needs_the_founder_or_an_audit_read_grant)
{
    require_root();
    start_with_policy("version = 1\n");
    put_secret("alpha", "value-alpha");
    const auto mine = founder({"audit", "tail", "-n", "5", "--json"});
    cr_assert_eq(mine.exit_code, 0, "founder tail: %s", mine.err.c_str());
    std::istringstream lines(mine.out);
    std::string line;
    int count = 0;
    while (std::getline(lines, line)) {
        const auto r = nlohmann::json::parse(line, nullptr, false);
        cr_expect(!r.is_discarded() && r.contains("seq"), "record line: %s", line.c_str());
        ++count;
    }
    cr_expect_eq(count, 5, "%s", mine.out.c_str());

    const auto stranger = as(kNobody, {"audit", "tail"});
    cr_expect_eq(stranger.exit_code, kDenied, "nobody without a grant: %d %s%s", stranger.exit_code,
                 stranger.out.c_str(), stranger.err.c_str());
    cr_expect(stranger.out.empty(), "no records for a denied caller: %s", stranger.out.c_str());
    // Nor can the same uid read the folder offline.
    const auto offline = as(kNobody, {"audit", "tail", "--dir", audit_dir()});
    cr_expect_neq(offline.exit_code, 0, "offline read of the private folder: %s", offline.out.c_str());

    issue_grant({"--principal", "uid=65534", "--cap", "audit:read", "--ttl", "1h"});
    const auto reader = as(kNobody, {"audit", "tail", "-n", "50", "--json"});
    cr_assert_eq(reader.exit_code, 0, "nobody with audit:read: %s", reader.err.c_str());
    cr_expect(contains(reader.out, "\"secret.put\""), "records visible: %s", reader.out.c_str());
    const auto filtered = as(kNobody, {"audit", "tail", "--event", "start", "--json"});
    cr_expect_eq(filtered.exit_code, 0, "%s", filtered.err.c_str());
    cr_expect(contains(filtered.out, "\"event\":\"start\"") || contains(filtered.out, "\"event\": \"start\""), "%s",
              filtered.out.c_str());
    cr_expect(!contains(filtered.out, "\"secret.put\""), "filter applied: %s", filtered.out.c_str());
}

// ---- 7. canaries -------------------------------------------------------------------------------

namespace {

std::string hex_of(const std::string& text, bool upper)
{
    static constexpr char kLower[] = "0123456789abcdef";
    static constexpr char kUpper[] = "0123456789ABCDEF";
    const char* digits = upper ? kUpper : kLower;
    std::string out;
    for (const unsigned char c : text) {
        out.push_back(digits[c >> 4]);
        out.push_back(digits[c & 0x0f]);
    }
    return out;
}

std::string base64_of(const std::string& text)
{
    std::string out(sodium_base64_encoded_len(text.size(), sodium_base64_VARIANT_ORIGINAL), '\0');
    sodium_bin2base64(out.data(), out.size(), reinterpret_cast<const unsigned char*>(text.data()), text.size(),
                      sodium_base64_VARIANT_ORIGINAL);
    out.resize(std::strlen(out.c_str()));
    return out;
}

void expect_no_canary(const std::string& where, const std::string& text, const std::string& canary)
{
    // The distinctive random part is enough, and catches a value cut at the front.
    const std::string core = canary.substr(canary.size() - 24);
    for (const std::string& needle :
         {canary, core, hex_of(canary, false), hex_of(canary, true), hex_of(core, false), base64_of(canary)}) {
        cr_expect(!contains(text, needle), "canary (as '%s') found in %s", needle.c_str(), where.c_str());
    }
}

}  // namespace

Test(integrity, no_canary_bytes_in_the_audit_log_the_journal_copy_or_vaultctl_output)
{
    require_root();
    start_with_policy("version = 1\n");
    const std::string canary1 = random_canary();
    const std::string canary2 = random_canary();
    std::string outputs;
    const auto run = [&outputs](const CommandResult& r, const char* what) {
        outputs += r.out + r.err;
        cr_expect_eq(r.exit_code, 0, "%s: %s", what, r.err.c_str());
    };
    run(founder({"secret", "put", "canary"}, canary1), "put");
    run(founder({"secret", "ls"}), "ls");
    run(founder({"secret", "ls", "--json"}), "ls --json");
    run(founder({"secret", "rotate", "canary"}, canary2), "rotate");
    // A name that is itself not secret, but a failing put of an existing name with the canary.
    outputs += founder({"secret", "put", "canary"}, canary1).err;
    issue_grant({"--principal", "uid=65534", "--cap", "audit:read", "--ttl", "1h"});
    run(as(kNobody, {"use", "audit:read"}), "use");
    run(founder({"incident", "--reason", "canary drill"}), "incident");
    run(founder({"audit", "tail", "-n", "200", "--json"}), "tail");
    run(founder({"unlock", "--reason", "drill over"}), "unlock");
    run(founder({"secret", "rotate", "canary"}, canary1), "rotate after incident");
    run(founder({"secret", "rm", "canary"}), "rm");
    run(env->vaultctl({"status", "--json"}), "status");
    env->restart_daemon();
    run(founder({"audit", "tail", "-n", "500"}), "tail text");
    env->stop_daemon();
    run(env->vaultctl({"audit", "verify", "--dir", audit_dir()}), "verify");
    run(env->vaultctl({"audit", "tail", "--dir", audit_dir(), "-n", "500", "--json"}), "offline tail");

    const std::string log = read_tree(audit_dir());
    cr_assert_gt(log.size(), 1000U, "the audit folder holds the records");
    const std::string journal = env->daemon_log();
    // The journal copy goes to stderr in tests: make sure it is there, or this proves nothing.
    cr_assert(contains(journal, "codex-vault audit seq="), "no journal copy in the daemon log:\n%s", journal.c_str());
    cr_assert(contains(journal, "secret.rotate"), "the journal copy covers the calls");
    for (const auto& canary : {canary1, canary2}) {
        expect_no_canary("the audit folder", log, canary);
        expect_no_canary("the daemon's stderr (journal copy)", journal, canary);
        expect_no_canary("vaultctl output", outputs, canary);
        for (const auto& q : quarantine_dirs()) {
            expect_no_canary(q, read_tree(q), canary);
        }
    }
}

// ---- 8. use --wait ------------------------------------------------------------------------------

namespace {

struct Background {
    pid_t pid = -1;
    std::string out_path;
};

// vaultctl in the background as `uid` (no capabilities), output to a file.
Background start_background(uid_t uid, const std::vector<std::string>& args)
{
    Background bg;
    bg.out_path = env->root() + "/background.out";
    std::vector<std::string> argv{"setpriv",
                                  "--reuid=" + std::to_string(uid),
                                  "--regid=" + std::to_string(uid),
                                  "--clear-groups",
                                  "--inh-caps=-all",
                                  "--bounding-set=-all",
                                  "--",
                                  env->root() + "/bin/vaultctl",
                                  "--bus",
                                  env->bus_address()};
    argv.insert(argv.end(), args.begin(), args.end());
    bg.pid = ::fork();
    cr_assert_geq(bg.pid, 0);
    if (bg.pid == 0) {
        ::prctl(PR_SET_PDEATHSIG, SIGKILL);
        const int out = ::open(bg.out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        const int null = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (out < 0 || null < 0) {
            _exit(126);
        }
        ::dup2(null, 0);
        ::dup2(out, 1);
        ::dup2(out, 2);
        std::vector<char*> raw;
        for (auto& a : argv) {
            raw.push_back(a.data());
        }
        raw.push_back(nullptr);
        ::execvp(raw[0], raw.data());
        _exit(127);
    }
    return bg;
}

// Exit status, or nullopt when it has not finished within `timeout` (it is killed then).
std::optional<int> wait_background(const Background& bg, std::chrono::milliseconds timeout)
{
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        int status = 0;
        const pid_t r = ::waitpid(bg.pid, &status, WNOHANG);
        if (r == bg.pid) {
            return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        }
        if (std::chrono::steady_clock::now() > deadline) {
            ::kill(bg.pid, SIGKILL);
            ::waitpid(bg.pid, nullptr, 0);
            return std::nullopt;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
}

}  // namespace

Test(integrity, use_wait_returns_once_the_founder_approves)
{
    require_root();
    start_with_policy("version = 1\n");
    issue_grant({"--principal", "uid=65534", "--cap", "audit:read", "--ttl", "1h", "--approval", "each"});
    // Without --wait the use stops at the approval.
    cr_expect_eq(as(kNobody, {"use", "audit:read"}).exit_code, error_info(ErrorCode::ApprovalRequired).exit_code);

    const auto pending_ids = [] {
        std::vector<std::string> ids;
        for (const auto& a : parse_json(founder({"approvals", "ls", "--json"}), "approvals ls")) {
            if (a.value("state", "") == "pending") {
                ids.push_back(a.value("id", ""));
            }
        }
        return ids;
    };
    const auto before = pending_ids();

    const Background bg = start_background(kNobody, {"use", "audit:read", "--wait"});
    std::string approval;
    for (int i = 0; i < 100 && approval.empty(); ++i) {
        for (const auto& id : pending_ids()) {
            if (std::find(before.begin(), before.end(), id) == before.end()) {
                approval = id;
            }
        }
        if (approval.empty()) {
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
        }
    }
    cr_assert(!approval.empty(), "the waiting use created no approval; its output: %s",
              read_text_file(bg.out_path).c_str());
    // Still waiting: nothing is used before the founder decides.
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    int status = 0;
    cr_expect_eq(::waitpid(bg.pid, &status, WNOHANG), 0, "use --wait returned before the approval: %s",
                 read_text_file(bg.out_path).c_str());

    const auto approved = founder({"approve", approval});
    cr_assert_eq(approved.exit_code, 0, "approve: %s", approved.err.c_str());
    const auto code = wait_background(bg, std::chrono::seconds(10));
    const std::string out = read_text_file(bg.out_path);
    cr_assert(code.has_value(), "use --wait did not return after the approval: %s", out.c_str());
    cr_expect_eq(*code, 0, "use --wait: %s", out.c_str());
    cr_expect(contains(out, "with approval " + approval), "%s", out.c_str());
    // The approval was single-use.
    cr_expect_eq(as(kNobody, {"use", "audit:read"}).exit_code, error_info(ErrorCode::ApprovalRequired).exit_code);
}

// ---- 9. founder Lock and Unlock ----------------------------------------------------------------

Test(integrity, founder_lock_refuses_use_until_unlock)
{
    require_root();
    start_with_policy("version = 1\n");
    issue_grant({"--principal", "uid=65534", "--cap", "audit:read", "--ttl", "1h"});
    cr_assert_eq(as(kNobody, {"use", "audit:read"}).exit_code, 0);

    // Only the founder locks.
    const auto stolen = stolen_key_as_nobody({"lock", "--reason", "x"});
    cr_expect_eq(stolen.exit_code, kDenied, "lock by nobody with the founder's key: %d %s", stolen.exit_code,
                 stolen.err.c_str());
    cr_expect_eq(status().at("state").get<std::string>(), "ready");

    LockedWatch watch;
    const auto lock = founder({"lock", "--reason", "maintenance window"});
    cr_assert_eq(lock.exit_code, 0, "lock: %s", lock.err.c_str());
    cr_expect(watch.wait(), "Locked signal");
    const auto refused = [](const char* when) {
        const auto s = status();
        cr_expect_eq(s.at("state").get<std::string>(), "locked", "%s: %s", when, status_text(s).c_str());
        cr_expect(contains(s.at("lock_reason").get<std::string>(), "maintenance window"), "%s: %s", when,
                  status_text(s).c_str());
        cr_expect_eq(s.at("incident").get<bool>(), false, "%s", when);
        cr_expect_eq(env->vaultctl({"audit", "pubkey"}).exit_code, 0, "%s: AuditPublicKey answers", when);
        cr_expect_eq(as(kNobody, {"whoami"}).exit_code, 0, "%s: WhoAmI answers", when);
        cr_expect_eq(as(kNobody, {"use", "audit:read"}).exit_code, kLocked, "%s: use", when);
        cr_expect_eq(as(kNobody, {"check", "audit:read"}).exit_code, kLocked, "%s: check", when);
        cr_expect_eq(founder({"secret", "ls"}).exit_code, kLocked, "%s: secret ls", when);
        cr_expect_eq(founder({"secret", "put", "late"}, "value").exit_code, kLocked, "%s: secret put", when);
        cr_expect_eq(
            founder({"grant", "issue", "--principal", "uid=65534", "--cap", "audit:read", "--ttl", "1h"}).exit_code,
            kLocked, "%s: grant issue", when);
        // Only the founder unlocks.
        const auto stolen_unlock = stolen_key_as_nobody({"unlock", "--reason", "x"});
        cr_expect_eq(stolen_unlock.exit_code, kDenied, "%s: unlock by nobody with the founder's key: %d %s", when,
                     stolen_unlock.exit_code, stolen_unlock.err.c_str());
    };
    refused("after lock");
    env->restart_daemon();
    refused("after a restart");

    const auto unlock = founder({"unlock", "--reason", "maintenance done"});
    cr_assert_eq(unlock.exit_code, 0, "unlock: %s", unlock.err.c_str());
    cr_expect_eq(status().at("state").get<std::string>(), "ready");
    cr_expect_eq(as(kNobody, {"use", "audit:read"}).exit_code, 0, "the grant survived a plain lock");
    cr_expect_eq(as(kNobody, {"check", "audit:read"}).exit_code, 0);
    cr_expect_eq(founder({"secret", "ls"}).exit_code, 0);
    const auto again = founder({"unlock", "--reason", "again"});
    cr_expect_eq(again.exit_code, kInvalid, "unlock when not locked: %d %s", again.exit_code, again.err.c_str());
    const auto tail = founder({"audit", "tail", "-n", "100", "--json"});
    cr_expect(contains(tail.out, "\"vault.lock\"") && contains(tail.out, "\"vault.unlock\""), "%s", tail.out.c_str());
    cr_expect(contains(tail.out, "maintenance window") && contains(tail.out, "maintenance done"), "%s",
              tail.out.c_str());
}
