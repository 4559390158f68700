// Audit durability through the real daemon (issue 4):
//   - crash consistency: a storm of allowed and denied durable calls from 4 clients, the daemon
//     killed with SIGKILL at a random moment, 20+ times; every call that got a reply has its
//     records after the restart, the chain verifies offline, torn tails are reported and recovered;
//   - a full file system: no record, no action; only Status answers, and says why; after space is
//     freed and the daemon restarted the log verifies and the vault works;
//   - an informational flood is folded into a few records that still account for every call;
//   - an incident seals the segment in the middle of a durable storm (flushes in flight, issue 11).
#include <fcntl.h>
#include <grp.h>
#include <nlohmann/json.hpp>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <random>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "cli/vault_client.hpp"
#include "common/bus_contract.hpp"
#include "common/vault_error.hpp"
#include "tests/support/founder_calls.hpp"
#include "tests/support/harness.hpp"

using namespace codexvault;
using namespace codexvault::test;
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

const int kUnavailable = error_info(ErrorCode::Unavailable).exit_code;

void require_root()
{
    if (::geteuid() != 0) {
        cr_skip_test("needs root: callers run as other uids, and the disk-full test mounts a tmpfs");
    }
}

std::uint64_t monotonic_usec()
{
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000 + static_cast<std::uint64_t>(ts.tv_nsec) / 1000;
}

CommandResult founder(const std::vector<std::string>& args, const std::string& stdin_data = "")
{
    return env->as_founder(args, stdin_data);
}

// A counted grant (max_uses): its uses are enforced, so each is saved before its reply. (An
// unlimited grant's use count is saved within a second, and may lag after a crash; every use is
// in the audit log either way.)
std::string issue_grant(uid_t uid, const std::string& capability)
{
    const auto r = founder({"grant", "issue", "--principal", "uid=" + std::to_string(uid), "--cap", capability, "--ttl",
                            "1h", "--max-uses", "1000000000"});
    cr_assert_eq(r.exit_code, 0, "grant issue for uid %u: %s", uid, r.err.c_str());
    std::string id = r.out;
    while (!id.empty() && id.back() == '\n') {
        id.pop_back();
    }
    return id;
}

// Grant id -> the uses the daemon has on record for it.
std::map<std::string, std::uint64_t> grant_uses()
{
    const auto r = founder({"grant", "ls", "--json"});
    cr_assert_eq(r.exit_code, 0, "grant ls: %s", r.err.c_str());
    const json grants = json::parse(r.out, nullptr, false);
    cr_assert(grants.is_array(), "grant ls --json: %s", r.out.c_str());
    std::map<std::string, std::uint64_t> uses;
    for (const auto& g : grants) {
        uses[g.at("id").get<std::string>()] = g.at("uses").get<std::uint64_t>();
    }
    return uses;
}

std::string audit_dir()
{
    return env->state_dir() + "/audit";
}

// The audit public key, exported through the daemon and kept outside the state folder, so the
// offline verification does not take the key from the place it checks.
std::string export_pubkey()
{
    const auto r = env->vaultctl({"audit", "pubkey"});
    cr_assert_eq(r.exit_code, 0, "audit pubkey: %s", r.err.c_str());
    cr_assert(r.out.rfind("codex-vault-audit-ed25519 ", 0) == 0, "audit pubkey: %s", r.out.c_str());
    const std::string path = env->root() + "/audit-pubkey.txt";
    std::ofstream(path, std::ios::trunc) << r.out;
    return path;
}

struct Verified {
    int exit_code = -1;
    json report;
    std::string text;
};

Verified verify_log(const std::string& pubkey)
{
    const auto r = env->vaultctl({"audit", "verify", "--dir", audit_dir(), "--pubkey", pubkey, "--json"});
    Verified v;
    v.exit_code = r.exit_code;
    v.text = r.out + r.err;
    v.report = json::parse(r.out, nullptr, false);
    cr_assert(!v.report.is_discarded(), "audit verify --json printed no JSON (exit %d): %s", r.exit_code,
              v.text.c_str());
    return v;
}

// The newest `lines` records (offline, no daemon needed), oldest first.
std::vector<json> tail_records(std::size_t lines, const std::vector<std::string>& filters = {})
{
    std::vector<std::string> args{"audit", "tail", "--dir", audit_dir(), "--json", "-n", std::to_string(lines)};
    args.insert(args.end(), filters.begin(), filters.end());
    const auto r = env->vaultctl(args);
    cr_assert_eq(r.exit_code, 0, "audit tail: %s", r.err.c_str());
    std::vector<json> records;
    std::istringstream in(r.out);
    for (std::string line; std::getline(in, line);) {
        if (line.empty()) {
            continue;
        }
        json record = json::parse(line, nullptr, false);
        cr_assert(!record.is_discarded(), "audit tail: not a JSON line: %s", line.c_str());
        records.push_back(std::move(record));
    }
    return records;
}

std::string status_text()
{
    const auto r = env->vaultctl({"status"});
    cr_assert_eq(r.exit_code, 0, "status must always answer: %s%s", r.out.c_str(), r.err.c_str());
    return r.out;
}

// Bytes of every file in the audit folder.
std::uint64_t audit_folder_bytes()
{
    std::uint64_t total = 0;
    for (const auto& entry : fs::directory_iterator(env->state_dir() + "/audit")) {
        if (entry.is_regular_file()) {
            total += entry.file_size();
        }
    }
    return total;
}

// The "policy" line of `vaultctl status`: what the engine has loaded.
std::string policy_line(const std::string& status)
{
    std::istringstream lines(status);
    for (std::string line; std::getline(lines, line);) {
        if (line.find("policy") != std::string::npos) {
            return line;
        }
    }
    cr_assert_fail("no policy line in status:\n%s", status.c_str());
    return {};
}

// A policy that loads: a reload of it changes the policy line of Status.
const char* const kReloadPolicy = "version = 1\n[principals.agent]\nuid = 65534\n";

// ---- the segment files, read the way docs/audit-log.md describes them ----------------------------

constexpr std::size_t kSegmentHeaderBytes = 96;
constexpr std::size_t kFrameOverheadBytes = 40;  // length, ~length, (payload), hash

std::string read_file(const std::string& path)
{
    std::ifstream in(path, std::ios::binary);
    std::stringstream bytes;
    bytes << in.rdbuf();
    return bytes.str();
}

std::uint32_t le32(const std::string& bytes, std::size_t at)
{
    std::uint32_t v = 0;
    for (int i = 3; i >= 0; --i) {
        v = (v << 8) | static_cast<unsigned char>(bytes[at + static_cast<std::size_t>(i)]);
    }
    return v;
}

std::uint64_t le64(const std::string& bytes, std::size_t at)
{
    std::uint64_t v = 0;
    for (int i = 7; i >= 0; --i) {
        v = (v << 8) | static_cast<unsigned char>(bytes[at + static_cast<std::size_t>(i)]);
    }
    return v;
}

struct SegmentScan {
    std::string path;
    std::uint64_t number = 0;  // from the header
    std::size_t size = 0;
    std::size_t last_frame_at = 0;   // 0: no whole frame
    std::size_t last_frame_len = 0;  // bytes of the last whole frame
    std::optional<std::size_t> torn_at;
};

// The newest segment, walked frame by frame: where its last whole frame is, and whether it ends
// inside a frame (fewer bytes than the frame's length says, or only zero bytes).
SegmentScan scan_last_segment()
{
    std::vector<std::string> segments;
    for (const auto& entry : fs::directory_iterator(audit_dir())) {
        const std::string name = entry.path().filename().string();
        if (name.size() == 16 && name.ends_with(".seg")) {
            segments.push_back(entry.path().string());
        }
    }
    cr_assert(!segments.empty(), "no segment in %s", audit_dir().c_str());
    std::sort(segments.begin(), segments.end());
    SegmentScan scan;
    scan.path = segments.back();
    const std::string bytes = read_file(scan.path);
    scan.size = bytes.size();
    cr_assert(bytes.size() >= kSegmentHeaderBytes && bytes.compare(0, 8, "CVAUDSEG") == 0, "%s: bad header",
              scan.path.c_str());
    scan.number = le64(bytes, 16);
    std::size_t at = kSegmentHeaderBytes;
    while (at < bytes.size()) {
        const std::size_t left = bytes.size() - at;
        if (std::all_of(bytes.begin() + static_cast<std::ptrdiff_t>(at), bytes.end(), [](char c) { return c == 0; })) {
            scan.torn_at = at;
            break;
        }
        if (left < 8) {
            scan.torn_at = at;
            break;
        }
        const std::uint32_t length = le32(bytes, at);
        cr_assert_eq(le32(bytes, at + 4), ~length, "%s: damaged frame at %zu (not a torn one)", scan.path.c_str(), at);
        if (left < kFrameOverheadBytes + length) {
            scan.torn_at = at;
            break;
        }
        scan.last_frame_at = at;
        scan.last_frame_len = kFrameOverheadBytes + length;
        at += kFrameOverheadBytes + length;
    }
    return scan;
}

void append_bytes(const std::string& path, const std::string& bytes)
{
    // O_APPEND works on a segment carrying the append-only inode flag.
    const int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
    cr_assert(fd >= 0, "open %s: %s", path.c_str(), std::strerror(errno));
    cr_assert_eq(::write(fd, bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
    ::close(fd);
}

// ---- the storm's clients ---------------------------------------------------------------------------

// Three clients use a runtime grant under uids of their own; the fourth is the founder (this
// process's uid) storing secrets with unique names. Each also makes denied calls.
constexpr std::array<uid_t, 3> kGrantedUids{kNobody, 1, 2};
constexpr std::size_t kClients = kGrantedUids.size() + 1;
constexpr const char* kAllowedCapability = "audit:read";  // granted to each of kGrantedUids at run time
constexpr const char* kDeniedCapability = "ingest:scan";  // granted to nobody

struct ClientReport {
    pid_t pid = 0;
    uid_t uid = 0;
    bool founder = false;
    std::uint64_t allowed = 0;     // allowed calls answered with success (Use, or PutSecret for the founder)
    std::uint64_t denied = 0;      // Use of the ungranted capability answered PermissionDenied
    std::uint64_t unexpected = 0;  // any other answer from the vault itself
    bool connected = false;
    char last_error[200] = {};
};

std::string storm_secret(int round, std::uint64_t i)
{
    return "storm-" + std::to_string(round) + "-" + std::to_string(i);
}

void use(cli::VaultClient& client, const char* capability)
{
    (void)client.call(bus::method::kUse, [&](sd_bus_message* m) {
        cli::check_local(sd_bus_message_append(m, "s", capability), "append capability");
        cli::check_local(sd_bus_message_append(m, "a{sv}", 0), "append request");
    });
}

// A client process: 3 allowed calls, then 1 denied one, until the daemon goes away or the deadline
// passes; it reports what it got answers for. A call in flight when the daemon dies gets no reply
// from the daemon (the bus answers NoReply, then ServiceUnknown): it is not counted, and need not be
// in the log. The founder's i-th allowed call stores storm_secret(round, i), so its successes are
// the names 0 .. allowed-1 (any refusal counts as unexpected and fails the test).
pid_t start_client(std::optional<uid_t> uid, const cli::FounderKeyPair* founder_key, int round,
                   const std::string& bus_address, std::uint64_t deadline_usec, int report_fd)
{
    const pid_t pid = ::fork();
    cr_assert(pid >= 0, "fork: %s", std::strerror(errno));
    if (pid != 0) {
        return pid;
    }
    ClientReport report;
    report.pid = ::getpid();
    report.uid = uid.value_or(::geteuid());
    report.founder = founder_key != nullptr;
    if (uid &&
        (::setgroups(0, nullptr) != 0 || ::setresgid(*uid, *uid, *uid) != 0 || ::setresuid(*uid, *uid, *uid) != 0)) {
        _exit(126);
    }
    try {
        cli::VaultClient client(bus_address);
        report.connected = true;
        // Secret values are sent sealed to the daemon's transport key, as vaultctl sends them.
        const cli::TransportPublicKey transport =
            founder_key != nullptr ? client.transport_key() : cli::TransportPublicKey{};
        for (std::uint64_t i = 0; monotonic_usec() < deadline_usec; ++i) {
            const bool allowed_call = i % 4 != 3;
            try {
                if (!allowed_call) {
                    use(client, kDeniedCapability);
                    ++report.unexpected;
                } else if (founder_key != nullptr) {
                    const std::string name = storm_secret(round, report.allowed);
                    const int value = sealed_pipe_holding(transport, "value of " + name);
                    (void)client.put_secret(*founder_key, name, value, false);
                    ::close(value);
                    ++report.allowed;
                } else {
                    use(client, kAllowedCapability);
                    ++report.allowed;
                }
            } catch (const cli::CallError& e) {
                const std::string message = e.what();
                std::snprintf(report.last_error, sizeof report.last_error, "%s", e.what());
                if (!e.code() || message.find("is not running on this bus") != std::string::npos) {
                    break;  // not the vault answering: the daemon is gone
                }
                if (!allowed_call && *e.code() == ErrorCode::PermissionDenied) {
                    ++report.denied;
                } else {
                    ++report.unexpected;
                    if (founder_key != nullptr) {
                        break;  // the next name would no longer be storm_secret(round, allowed)
                    }
                }
            }
        }
    } catch (const std::exception& e) {
        std::snprintf(report.last_error, sizeof report.last_error, "%s", e.what());
    }
    const ssize_t n = ::write(report_fd, &report, sizeof report);
    _exit(n == static_cast<ssize_t>(sizeof report) ? 0 : 1);
}

struct Tear {
    std::uint64_t segment = 0;
    std::uint64_t offset = 0;
    bool injected = false;
};

// The records of one daemon lifetime [from, to) that belong to the storm's calls.
struct LifetimeRecords {
    std::map<pid_t, std::uint64_t> use_decisions;  // allowed Use, per pid
    std::map<uid_t, std::uint64_t> use_decisions_by_uid;
    std::map<pid_t, std::uint64_t> use_outcomes;
    std::map<uid_t, std::uint64_t> denied_decisions;     // denied Use of kDeniedCapability, per uid
    std::map<std::string, std::uint64_t> put_decisions;  // allowed secret.put, per secret name
    std::map<std::string, std::uint64_t> put_outcomes;
};

LifetimeRecords count_storm_records(const std::vector<json>& records, std::uint64_t from, std::uint64_t to)
{
    LifetimeRecords out;
    for (const auto& r : records) {
        const std::uint64_t t = r.value("monotonic_usec", std::uint64_t{0});
        if (t < from || t >= to || r["subject"]["pid"].is_null()) {
            continue;
        }
        const auto pid = r["subject"]["pid"].get<pid_t>();
        const auto uid = r["subject"]["uid"].get<uid_t>();
        const std::string event = r["event"];
        const std::string decision = r["decision"];
        const std::string object = r["object"];
        const bool decided = event == "decision";
        if (event != "decision" && event != "outcome") {
            continue;
        }
        if (r["action"] == "grant.use" && object == kAllowedCapability && decision == "allow") {
            ++(decided ? out.use_decisions : out.use_outcomes)[pid];
            out.use_decisions_by_uid[uid] += decided ? 1 : 0;
        } else if (r["action"] == "grant.use" && object == kDeniedCapability && decided && decision == "deny") {
            ++out.denied_decisions[uid];
        } else if (r["action"] == "secret.put" && decision == "allow") {
            ++(decided ? out.put_decisions : out.put_outcomes)[object];
        }
    }
    return out;
}

std::uint64_t count_of(const auto& map, const auto& key)
{
    const auto it = map.find(key);
    return it == map.end() ? 0 : it->second;
}

void expect_ready()
{
    const std::string status = status_text();
    cr_assert(status.find("ready") != std::string::npos, "the vault is not ready after a crash:\n%s", status.c_str());
    cr_assert(status.find("FAILED") == std::string::npos, "%s", status.c_str());
}

// ---- the disk-full test's file system --------------------------------------------------------------

bool tmpfs_mounted = false;

void stop_env_on_tmpfs()
{
    if (env && env->daemon_pid() > 0) {
        env->kill_daemon();
    }
    if (env && tmpfs_mounted) {
        ::umount2(env->state_dir().c_str(), MNT_DETACH);
        tmpfs_mounted = false;
    }
    env.reset();
}

// Fills the file system holding `path` with one file until even a one-byte write finds no space.
std::uint64_t fill_file_system(const std::string& path)
{
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    cr_assert(fd >= 0, "create %s: %s", path.c_str(), std::strerror(errno));
    const std::string chunk(64 * 1024, 'F');
    std::uint64_t total = 0;
    for (std::size_t size : {chunk.size(), std::size_t{4096}, std::size_t{1}}) {
        for (;;) {
            const ssize_t n = ::write(fd, chunk.data(), size);
            if (n > 0) {
                total += static_cast<std::uint64_t>(n);
                continue;
            }
            cr_assert(n < 0 && errno == ENOSPC, "filling %s: %s", path.c_str(), std::strerror(errno));
            break;
        }
    }
    ::fsync(fd);
    ::close(fd);
    return total;
}

bool lists_secret(const std::string& listing, const std::string& name)
{
    std::istringstream in(listing);
    for (std::string line; std::getline(in, line);) {
        std::istringstream words(line);
        std::string first;
        words >> first;
        if (first == name) {
            return true;
        }
    }
    return false;
}

}  // namespace

TestSuite(audit_durability, .timeout = 300);

// The issue: "Run a write storm of allowed and denied calls from 4 clients and kill -9 the daemon
// at random points, at least 20 times: every record whose request got a reply is present after
// restart; the chain verifies; the torn tail is reported."
//
// The calls are durable ones (decision on disk before acting, outcome on disk before the reply):
// three clients, each under a uid of its own (65534, 1, 2) holding a runtime grant for audit:read,
// Use it; the fourth, the founder, stores secrets with unique names (GetNonce + PutSecret). All four
// interleave denied Uses of ingest:scan (no grant) with their allowed calls.
//
// Allowed calls: for each Use client pid P, the log has at least as many allowed grant.use
// decision records AND outcome records for P as P got success replies (more is fine: a call in
// flight at the kill may have been decided or done without its reply getting out). For each secret
// whose put got a success reply: its decision and outcome records are in the log AND the secret is
// listed after the restart. Conversely, every storm secret that exists has its decision record
// (nothing is done without a record).
//
// Denials: a denial is foldable. The first one per (uid, action, reason) in a 1 s window is
// written and on disk before its reply; the repeats are answered at once and only counted in a
// folded-repeats record at the window's end, which a kill may take with it (the documented price
// of "no disk-filling by callers"). A storm lasts < 1 s and each daemon lifetime starts with a
// fresh fold table, so what must survive is: for every uid that got a denial reply in a lifetime,
// at least one deny decision record for that uid in that lifetime. One uid per client makes that
// a per-client check.
//
// Torn tails: SIGKILL rarely tears a frame (a write(2) is cut only between pages), so besides
// checking the natural case (the newest segment ends inside a frame before the restart: the
// verifier must then note it and the log must hold the torn-tail-recovered record), every third
// round appends what a crash in the middle of a write can leave (a prefix of the last frame, or
// zeros) and expects the same. Never a verification failure, never a locked vault.
Test(audit_durability, kill_9_during_a_write_storm_loses_no_replied_record_and_the_chain_verifies,
     .init = start_env_with_founder, .fini = stop_env)
{
    require_root();
    std::map<uid_t, std::string> grant_of;
    for (const uid_t uid : kGrantedUids) {
        grant_of[uid] = issue_grant(uid, kAllowedCapability);
    }
    // Uses answered with success, and allowed Use decisions in the log, since the grants exist.
    std::map<uid_t, std::uint64_t> replied_uses, logged_uses;
    const std::string pubkey = export_pubkey();
    const cli::FounderKeyPair founder_key = env->load_founder();

    constexpr int kRounds = 40;
    std::mt19937 random(static_cast<unsigned>(monotonic_usec()));
    std::uniform_int_distribution<int> kill_after_ms(50, 400);
    std::uint64_t lifetime_start = 0;  // the first lifetime's records include the set-up's
    std::uint64_t total_uses = 0, total_puts = 0, total_denied = 0, tears_seen = 0, tears_injected = 0;
    const auto started = std::chrono::steady_clock::now();

    for (int round = 0; round < kRounds; ++round) {
        // The storm, and the kill.
        int pipes[2];
        cr_assert_eq(::pipe2(pipes, O_CLOEXEC), 0);
        const std::uint64_t deadline = monotonic_usec() + 5'000'000;  // only if the kill never came
        std::vector<pid_t> clients;
        for (const uid_t uid : kGrantedUids) {
            clients.push_back(start_client(uid, nullptr, round, env->bus_address(), deadline, pipes[1]));
        }
        clients.push_back(start_client(std::nullopt, &founder_key, round, env->bus_address(), deadline, pipes[1]));
        ::close(pipes[1]);
        std::this_thread::sleep_for(std::chrono::milliseconds(kill_after_ms(random)));
        env->kill_daemon();

        std::vector<ClientReport> reports;
        for (ClientReport report; ::read(pipes[0], &report, sizeof report) == static_cast<ssize_t>(sizeof report);) {
            reports.push_back(report);
        }
        ::close(pipes[0]);
        for (const pid_t pid : clients) {
            int status = 0;
            ::waitpid(pid, &status, 0);
            cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "round %d: a client failed (status %d)", round,
                      status);
        }
        cr_assert_eq(reports.size(), kClients, "round %d: %zu client reports", round, reports.size());

        // What the kill left, and (every third round, when the kill tore nothing) a torn write.
        std::optional<Tear> tear;
        const SegmentScan scan = scan_last_segment();
        if (scan.torn_at) {
            tear = Tear{scan.number, *scan.torn_at, false};
        } else if (round % 3 == 2) {
            std::string bytes;
            if (round % 2 == 0 && scan.last_frame_len > 1) {
                const std::string segment = read_file(scan.path);
                std::uniform_int_distribution<std::size_t> cut(1, scan.last_frame_len - 1);
                bytes = segment.substr(scan.last_frame_at, cut(random));
            } else {
                bytes.assign(1 + random() % 300, '\0');  // the file's size reached the disk, its data did not
            }
            append_bytes(scan.path, bytes);
            tear = Tear{scan.number, scan.size, true};
            ++tears_injected;
        }

        const std::uint64_t restarted_at = monotonic_usec();
        env->start_daemon();
        expect_ready();

        // The chain verifies offline; a torn tail is a note, never a failure, and never silent.
        const Verified v = verify_log(pubkey);
        cr_assert_eq(v.exit_code, 0, "round %d: the log does not verify after kill -9:\n%s", round, v.text.c_str());
        cr_assert(v.report["ok"].get<bool>(), "round %d: %s", round, v.text.c_str());
        if (tear) {
            ++tears_seen;
            bool noted = false;
            for (const auto& note : v.report["notes"]) {
                noted = noted || (note["kind"] == "torn-tail" && note["segment"] == tear->segment &&
                                  note["offset"] == tear->offset);
            }
            cr_assert(noted, "round %d: the %s torn frame at segment %llu offset %llu is not reported:\n%s", round,
                      tear->injected ? "injected" : "natural", static_cast<unsigned long long>(tear->segment),
                      static_cast<unsigned long long>(tear->offset), v.text.c_str());
            const auto recovered = tail_records(50, {"--event", "torn-tail-recovered"});
            const bool logged = std::any_of(recovered.begin(), recovered.end(), [&](const json& r) {
                return r["torn_tail"]["segment"] == tear->segment && r["torn_tail"]["offset"] == tear->offset;
            });
            cr_assert(logged, "round %d: no torn-tail-recovered record for segment %llu offset %llu", round,
                      static_cast<unsigned long long>(tear->segment), static_cast<unsigned long long>(tear->offset));
        }

        // Every replied call's records are there.
        std::uint64_t replies = 0;
        for (const auto& report : reports) {
            cr_assert(report.connected, "round %d: client uid %u could not connect: %s", round, report.uid,
                      report.last_error);
            cr_assert_eq(report.unexpected, 0, "round %d: client uid %u got %llu unexpected answers, last: %s", round,
                         report.uid, static_cast<unsigned long long>(report.unexpected), report.last_error);
            replies += report.allowed + report.denied;
        }
        // Newest first: this lifetime's records, plus at most the earlier ones the margin reaches.
        const auto records = tail_records(4 * replies + 2000);
        const LifetimeRecords found = count_storm_records(records, lifetime_start, restarted_at);
        std::vector<std::string> replied_puts;
        for (const auto& report : reports) {
            if (report.founder) {
                for (std::uint64_t i = 0; i < report.allowed; ++i) {
                    const std::string name = storm_secret(round, i);
                    replied_puts.push_back(name);
                    cr_expect_geq(count_of(found.put_decisions, name), 1, "round %d: put %s replied, no decision",
                                  round, name.c_str());
                    cr_expect_geq(count_of(found.put_outcomes, name), 1, "round %d: put %s replied, no outcome", round,
                                  name.c_str());
                }
                total_puts += report.allowed;
            } else {
                const auto decisions = count_of(found.use_decisions, report.pid);
                const auto outcomes = count_of(found.use_outcomes, report.pid);
                cr_expect_geq(decisions, report.allowed,
                              "round %d: pid %d (uid %u) got %llu allowed replies but the log has %llu decisions",
                              round, report.pid, report.uid, static_cast<unsigned long long>(report.allowed),
                              static_cast<unsigned long long>(decisions));
                cr_expect_geq(outcomes, report.allowed,
                              "round %d: pid %d (uid %u) got %llu allowed replies but the log has %llu outcomes", round,
                              report.pid, report.uid, static_cast<unsigned long long>(report.allowed),
                              static_cast<unsigned long long>(outcomes));
                total_uses += report.allowed;
                replied_uses[report.uid] += report.allowed;
            }
            if (report.denied > 0) {
                cr_expect_geq(count_of(found.denied_decisions, report.uid), 1,
                              "round %d: uid %u got %llu denials but its first one is not in the log", round,
                              report.uid, static_cast<unsigned long long>(report.denied));
            }
            total_denied += report.denied;
        }

        // The grant state agrees with the log: a use answered is a use counted (no replay after a
        // crash), and no use is counted that has no decision on the record.
        const auto uses = grant_uses();
        for (const uid_t uid : kGrantedUids) {
            logged_uses[uid] += count_of(found.use_decisions_by_uid, uid);
            const std::uint64_t counted = count_of(uses, grant_of[uid]);
            cr_expect_geq(counted, replied_uses[uid], "round %d: grant of uid %u counts %llu uses, %llu were answered",
                          round, uid, static_cast<unsigned long long>(counted),
                          static_cast<unsigned long long>(replied_uses[uid]));
            cr_expect_leq(counted, logged_uses[uid],
                          "round %d: grant of uid %u counts %llu uses, the log has %llu allowed decisions", round, uid,
                          static_cast<unsigned long long>(counted), static_cast<unsigned long long>(logged_uses[uid]));
        }

        // The store agrees: every replied put is there; every stored one was decided on the record.
        cli::VaultClient client(env->bus_address());
        std::vector<std::string> listed;
        for (const auto& secret : client.list_secrets(founder_key)) {
            listed.push_back(secret.name);
        }
        for (const auto& name : replied_puts) {
            cr_expect(std::find(listed.begin(), listed.end(), name) != listed.end(),
                      "round %d: %s was answered as stored but is not listed after the restart", round, name.c_str());
        }
        const std::string prefix = storm_secret(round, 0).substr(0, storm_secret(round, 0).size() - 1);
        for (const auto& name : listed) {
            if (name.rfind(prefix, 0) == 0) {
                cr_expect_geq(count_of(found.put_decisions, name), 1,
                              "round %d: %s is stored but its decision record is not in the log", round, name.c_str());
            }
        }
        lifetime_start = restarted_at;
    }

    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    cr_log_info(
        "%d kills in %.1f s; replies checked: %llu allowed Use, %llu secret puts, %llu denials; torn tails: "
        "%llu natural, %llu injected",
        kRounds, seconds, static_cast<unsigned long long>(total_uses), static_cast<unsigned long long>(total_puts),
        static_cast<unsigned long long>(total_denied), static_cast<unsigned long long>(tears_seen - tears_injected),
        static_cast<unsigned long long>(tears_injected));
    // The storm really stormed: the checks above were not vacuous.
    cr_assert_geq(total_uses, 5 * static_cast<std::uint64_t>(kRounds), "%llu allowed Use replies in all",
                  static_cast<unsigned long long>(total_uses));
    cr_assert_geq(total_puts, static_cast<std::uint64_t>(kRounds), "%llu put replies in all",
                  static_cast<unsigned long long>(total_puts));
    cr_assert_gt(total_denied, 0);
    cr_assert_geq(tears_seen, 1);

    // Everything still holds after an orderly stop and start.
    env->stop_daemon();
    env->start_daemon();
    expect_ready();
    const Verified last = verify_log(pubkey);
    cr_assert_eq(last.exit_code, 0, "%s", last.text.c_str());
}

// The issue: "If a record cannot be written (disk full, I/O error), the request is denied: no
// record, no action. The daemon keeps answering Status and says why. Test it with a small
// filesystem that fills up."
//
// The state folder is a 1 MiB tmpfs, in a mount namespace of this test process (the daemon and the
// bus are its children, so the mount goes away with them whatever happens). After filling it, the
// last page of the current segment may still have room for a few records, and secret files need
// pages of their own: so founder puts are tried one after another until one is refused because of
// the audit log. Every put that was not answered with success must be absent after the restart,
// and the one the log refused must have no record at all.
Test(audit_durability, a_full_file_system_denies_all_but_status_and_nothing_happens_without_a_record,
     .fini = stop_env_on_tmpfs)
{
    require_root();
    if (::unshare(CLONE_NEWNS) != 0 || ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
        cr_skip_test("cannot make a private mount namespace for the tmpfs: %s", std::strerror(errno));
    }
    env = std::make_unique<VaultEnv>(false);
    fs::create_directory(env->state_dir());
    if (::mount("tmpfs", env->state_dir().c_str(), "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,mode=0700") != 0) {
        cr_skip_test("cannot mount a size-limited tmpfs on the state folder: %s", std::strerror(errno));
    }
    tmpfs_mounted = true;
    env->start_daemon();
    env->init_founder();
    const std::string pubkey = export_pubkey();
    cr_assert_eq(founder({"secret", "put", "before-fill"}, "value-1").exit_code, 0);
    issue_grant(kNobody, "audit:read");

    const std::string filler = env->state_dir() + "/filler";
    const std::uint64_t filled = fill_file_system(filler);
    cr_log_info("filled the state file system with %llu bytes", static_cast<unsigned long long>(filled));

    std::vector<std::string> not_stored;  // every put not answered with success
    std::vector<std::string> stored;
    std::string refused_name;
    CommandResult refused;
    for (int i = 0; i < 60 && refused_name.empty(); ++i) {
        const std::string name = "full-" + std::to_string(i);
        const auto r = founder({"secret", "put", name}, "value-of-" + name);
        if (r.exit_code == 0) {
            stored.push_back(name);
            continue;
        }
        if (r.err.find("carried out, but") != std::string::npos) {
            // Done, then its outcome record failed: the caller is told, and the secret may exist.
            cr_log_info("put %s was carried out without a durable outcome: %s", name.c_str(), r.err.c_str());
            continue;
        }
        not_stored.push_back(name);
        if (r.err.find("audit log") != std::string::npos) {
            refused_name = name;
            refused = r;
        } else {
            cr_log_info("put %s failed before the log did (exit %d): %s", name.c_str(), r.exit_code, r.err.c_str());
        }
    }
    cr_assert(!refused_name.empty(), "no put was refused for the audit log after the disk filled up; status:\n%s",
              status_text().c_str());
    {
        std::istringstream log(env->daemon_log());
        for (std::string line; std::getline(log, line);) {
            if (line.find("internal error") != std::string::npos) {
                cr_log_info("daemon: %s", line.c_str());
            }
        }
    }
    cr_log_info("%zu puts stored, %zu failed; refused for the audit log: %s: %s", stored.size(), not_stored.size(),
                refused_name.c_str(), refused.err.c_str());
    cr_expect_eq(refused.exit_code, kUnavailable, "%s", refused.err.c_str());
    cr_expect(refused.err.find("No space left on device") != std::string::npos, "%s", refused.err.c_str());

    // Status answers and says why; everything else is refused, Unavailable.
    const std::string status = status_text();
    cr_expect(status.find("FAILED") != std::string::npos, "%s", status.c_str());
    cr_expect(status.find("No space left on device") != std::string::npos, "%s", status.c_str());
    const std::vector<std::pair<std::string, CommandResult>> refused_calls{
        {"whoami", env->vaultctl({"whoami"})},
        {"check", env->vaultctl({"check", "audit:read"})},
        {"use (founder uid)", env->vaultctl({"use", "audit:read"})},
        {"use (granted nobody)",
         env->vaultctl({"use", "audit:read"}, {.stdin_data = "", .passphrase = std::nullopt, .as_uid = kNobody})},
        {"whoami (nobody)",
         env->vaultctl({"whoami"}, {.stdin_data = "", .passphrase = std::nullopt, .as_uid = kNobody})},
        {"secret ls", founder({"secret", "ls"})},
        {"secret put", founder({"secret", "put", "after-failure"}, "value")},
    };
    for (const auto& [what, r] : refused_calls) {
        cr_expect_eq(r.exit_code, kUnavailable, "%s while the log is failed: exit %d: %s%s", what.c_str(), r.exit_code,
                     r.out.c_str(), r.err.c_str());
        cr_expect(r.err.find("audit log") != std::string::npos, "%s: %s", what.c_str(), r.err.c_str());
    }
    not_stored.push_back("after-failure");

    // A SIGHUP reload while the log cannot record it changes nothing: the policy in force stays
    // the one that was recorded (no record, no action, for reloads too).
    const std::string policy_before = policy_line(status_text());
    {
        const std::string path = env->policy_dir() + "/10-reload.toml";
        std::ofstream(path, std::ios::trunc) << kReloadPolicy;
        cr_assert_eq(::chmod(path.c_str(), 0644), 0);
    }
    cr_assert_eq(::kill(env->daemon_pid(), SIGHUP), 0);
    for (int i = 0; i < 200 && env->daemon_log().find("policy reload refused") == std::string::npos; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(25));
    }
    cr_expect(env->daemon_log().find("policy reload refused: the audit log cannot record it") != std::string::npos,
              "the daemon did not say why the reload was refused:\n%s", env->daemon_log().c_str());
    cr_expect_eq(policy_line(status_text()), policy_before,
                 "a reload the audit log could not record was installed anyway");
    cr_assert_eq(::unlink((env->policy_dir() + "/10-reload.toml").c_str()), 0);

    // Free the space, restart: the log verifies (a torn tail is allowed) and the vault works.
    cr_assert_eq(::unlink(filler.c_str()), 0);
    env->stop_daemon();
    env->start_daemon();
    const std::string after = status_text();
    cr_expect(after.find("ready") != std::string::npos, "not ready after the disk was freed:\n%s", after.c_str());
    const Verified v = verify_log(pubkey);
    cr_assert_eq(v.exit_code, 0, "%s", v.text.c_str());
    // A write cut short by the full disk left a torn frame: reported as a note, and recovered.
    std::smatch written;
    if (std::regex_search(refused.err, written, std::regex("([0-9]+) of [0-9]+ bytes written")) &&
        written.str(1) != "0") {
        const bool noted = std::any_of(v.report["notes"].begin(), v.report["notes"].end(),
                                       [](const json& note) { return note["kind"] == "torn-tail"; });
        cr_expect(noted, "a partial write, but no torn tail is reported:\n%s", v.text.c_str());
        cr_expect(!tail_records(10, {"--event", "torn-tail-recovered"}).empty());
    }

    const auto ls = founder({"secret", "ls"});
    cr_assert_eq(ls.exit_code, 0, "%s", ls.err.c_str());
    cr_expect(lists_secret(ls.out, "before-fill"), "%s", ls.out.c_str());
    for (const auto& name : stored) {
        cr_expect(lists_secret(ls.out, name), "%s was answered as stored but is gone:\n%s", name.c_str(),
                  ls.out.c_str());
    }
    for (const auto& name : not_stored) {
        cr_expect(!lists_secret(ls.out, name), "%s was refused but is stored:\n%s", name.c_str(), ls.out.c_str());
    }
    // No record for the put the log refused: no record, no action.
    for (const auto& r : tail_records(100000, {"--action", "secret.put"})) {
        cr_expect(r["object"] != refused_name, "a record for the refused put: %s", r.dump().c_str());
    }

    cr_assert_eq(founder({"secret", "put", "after-restart"}, "value-2").exit_code, 0);
    const auto ls2 = founder({"secret", "ls"});
    cr_expect(lists_secret(ls2.out, "after-restart"), "%s", ls2.out.c_str());
    cr_expect_eq(env->vaultctl({"use", "audit:read"}, {.stdin_data = "", .passphrase = std::nullopt, .as_uid = kNobody})
                     .exit_code,
                 0);
}

// "No disk-filling by callers": 2,000 informational calls from one process cost a handful of
// records, and the folded-repeats records still account for every call.
Test(audit_durability, an_informational_flood_is_folded_and_every_call_is_counted, .init = start_env_with_founder,
     .fini = stop_env)
{
    require_root();
    // Quiet: what the set-up wrote is out (folds flushed, informational records written).
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));
    std::uint64_t last_seq = 0;
    for (const auto& r : tail_records(1)) {
        last_seq = r["seq"].get<std::uint64_t>();
    }
    cr_assert_gt(last_seq, 0);

    constexpr int kCalls = 2000;
    {
        cli::VaultClient client(env->bus_address());
        for (int i = 0; i < kCalls; ++i) {
            (void)client.call(i % 2 == 0 ? bus::method::kStatus : bus::method::kWhoAmI);
        }
    }
    const pid_t self = ::getpid();
    // The last window ends 1 s after it began; the daemon's timer then writes its folded repeats.
    std::uint64_t counted = 0, folded_records = 0, added = 0;
    for (int attempt = 0; attempt < 40 && counted < kCalls; ++attempt) {
        std::this_thread::sleep_for(std::chrono::milliseconds(250));
        counted = folded_records = added = 0;
        for (const auto& r : tail_records(100000)) {
            if (r["seq"].get<std::uint64_t>() <= last_seq) {
                continue;
            }
            ++added;
            const std::string action = r["action"];
            if (action != "status.read" && action != "identity.read") {
                continue;
            }
            if (r["event"] == "folded-repeats") {
                cr_expect_eq(r["subject"]["uid"], ::geteuid(), "%s", r.dump().c_str());
                counted += r.value("repeat_count", std::uint64_t{0});
                ++folded_records;
            } else if (r["subject"]["pid"] == self) {
                ++counted;
            }
        }
    }
    cr_log_info("%d informational calls: %llu records added, %llu of them folded-repeats", kCalls,
                static_cast<unsigned long long>(added), static_cast<unsigned long long>(folded_records));
    cr_expect_lt(added, 100, "%llu records for %d informational calls", static_cast<unsigned long long>(added), kCalls);
    cr_expect_geq(folded_records, 1);
    cr_expect_eq(counted, kCalls, "the records account for %llu of %d calls", static_cast<unsigned long long>(counted),
                 kCalls);
}

// An unlimited grant's use count is not needed by any later decision, so it is saved within a
// second rather than before each reply; after that second a crash loses none of it.
Test(audit_durability, an_unlimited_grants_use_count_survives_a_crash_after_a_second, .init = start_env_with_founder,
     .fini = stop_env)
{
    if (::geteuid() != 0) {
        cr_skip_test("needs root: callers run as another uid");
    }
    const auto r = founder({"grant", "issue", "--principal", "uid=65534", "--cap", "audit:read", "--ttl", "1h"});
    cr_assert_eq(r.exit_code, 0, "%s", r.err.c_str());
    std::string id = r.out.substr(0, r.out.find('\n'));
    for (int i = 0; i < 3; ++i) {
        const auto used =
            env->vaultctl({"use", "audit:read"}, {.stdin_data = "", .passphrase = std::nullopt, .as_uid = kNobody});
        cr_assert_eq(used.exit_code, 0, "%s", used.err.c_str());
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));
    env->kill_daemon();
    env->start_daemon();
    cr_expect_eq(count_of(grant_uses(), id), 3u, "uses counted after the crash");
}

// The attack pass: varying the capability string defeated folding (the denial's reason quotes
// it), 2.8 MB/s of records from one uid. Now caller text is in no fold key, each record keeps a
// bounded amount of it, and one subject writes at most a fixed number of records per window.
Test(audit_durability, a_flood_of_distinct_bad_capabilities_writes_a_bounded_number_of_records,
     .init = start_env_with_founder, .fini = stop_env)
{
    require_root();
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));
    std::uint64_t last_seq = 0;
    for (const auto& r : tail_records(1)) {
        last_seq = r["seq"].get<std::uint64_t>();
    }
    const std::uint64_t bytes_before = audit_folder_bytes();

    constexpr int kCalls = 2000;
    int refused = 0;
    {
        cli::VaultClient client(env->bus_address());
        for (int i = 0; i < kCalls; ++i) {
            // Long and different every time: the worst case for folding and for record size.
            const std::string capability = "bogus:" + std::to_string(i) + ":" + std::string(600, 'q');
            try {
                (void)client.call(i % 2 == 0 ? bus::method::kCheck : bus::method::kUse, [&](sd_bus_message* m) {
                    cli::check_local(sd_bus_message_append(m, "s", capability.c_str()), "append capability");
                    cli::check_local(sd_bus_message_append(m, "a{sv}", 0), "append request");
                });
            } catch (const cli::CallError&) {
                ++refused;
            }
        }
    }
    cr_expect_eq(refused, kCalls, "every bogus capability is refused");
    std::this_thread::sleep_for(std::chrono::milliseconds(2500));  // the last windows' folded repeats
    std::uint64_t added = 0;
    std::uint64_t counted = 0;
    for (const auto& r : tail_records(100000)) {
        if (r["seq"].get<std::uint64_t>() <= last_seq) {
            continue;
        }
        ++added;
        const std::string reason = r.value("reason", "");
        cr_expect_lt(reason.size(), 700U, "a record holds %zu bytes of reason", reason.size());
        if (r["event"] == "folded-repeats") {
            counted += r.value("repeat_count", std::uint64_t{0});
        } else if (r["event"] == "decision") {
            ++counted;
        }
    }
    const std::uint64_t grown = audit_folder_bytes() - bytes_before;
    cr_log_info("%d bogus capabilities: %llu records, %llu bytes added", kCalls, static_cast<unsigned long long>(added),
                static_cast<unsigned long long>(grown));
    cr_expect_lt(added, 200U, "%llu records for %d calls", static_cast<unsigned long long>(added), kCalls);
    cr_expect_lt(grown, 200U * 1024U, "the log grew by %llu bytes", static_cast<unsigned long long>(grown));
    cr_expect_eq(counted, static_cast<std::uint64_t>(kCalls), "the records account for %llu of %d calls",
                 static_cast<unsigned long long>(counted), kCalls);
}

// Issue 11: the flush runs on a thread while the loop keeps writing, so sealing and checkpoints
// happen with a flush in flight. 8 clients make 150 durable Uses each (about 2,400 records, so the
// 1,000-record checkpoints ride on flushes); once 600 have been answered, the founder declares an
// incident, which seals the current segment. Every call is answered with success or Locked, every
// success has its outcome record in the log, the log verifies offline with its head, and the seal
// started a new segment.
Test(audit_durability, an_incident_seals_the_segment_in_the_middle_of_a_durable_storm_and_the_log_verifies,
     .init = start_env_with_founder, .fini = stop_env)
{
    require_root();
    const auto granted = founder({"grant", "issue", "--principal", "uid=" + std::to_string(::geteuid()), "--cap",
                                  kAllowedCapability, "--ttl", "1h"});
    cr_assert_eq(granted.exit_code, 0, "grant issue: %s", granted.err.c_str());
    const std::string pubkey = export_pubkey();

    constexpr int kStormClients = 8;
    constexpr int kCallsEach = 150;
    constexpr int kIncidentAfter = 600;  // 1,200+ records: a checkpoint by count rides a flush
    struct Result {
        std::string sender;
        int ok = 0;
        int locked = 0;
        int other = 0;
        std::string error;
    };
    std::vector<Result> results(kStormClients);
    std::atomic<int> answered{0};
    std::vector<std::thread> clients;
    for (auto& result : results) {
        clients.emplace_back([&result, &answered] {
            try {
                cli::VaultClient client(env->bus_address());
                const char* name = nullptr;
                if (sd_bus_get_unique_name(client.bus(), &name) >= 0 && name != nullptr) {
                    result.sender = name;
                }
                for (int i = 0; i < kCallsEach; ++i) {
                    try {
                        use(client, kAllowedCapability);
                        ++result.ok;
                    } catch (const cli::CallError& e) {
                        if (e.code() == ErrorCode::Locked) {
                            ++result.locked;
                        } else {
                            ++result.other;
                            result.error = e.what();
                        }
                    }
                    ++answered;
                }
            } catch (const std::exception& e) {
                result.error = e.what();
                ++result.other;
            }
        });
    }
    while (answered.load() < kIncidentAfter && answered.load() < kStormClients * kCallsEach) {
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    const auto incident = founder({"incident", "--reason", "flush drill"});
    for (auto& t : clients) {
        t.join();
    }
    cr_assert_eq(incident.exit_code, 0, "incident: %s", incident.err.c_str());

    int ok = 0, locked = 0;
    for (const auto& r : results) {
        cr_assert_eq(r.other, 0, "client %s: %d unexpected answers, last: %s", r.sender.c_str(), r.other,
                     r.error.c_str());
        ok += r.ok;
        locked += r.locked;
    }
    cr_log_info("%d Uses answered before the incident took effect, %d refused as locked after it", ok, locked);
    cr_assert_geq(ok, kIncidentAfter, "the storm did not run before the incident");

    env->stop_daemon();
    const Verified v = verify_log(pubkey);
    cr_assert_eq(v.exit_code, 0, "the log does not verify:\n%s", v.text.c_str());
    cr_assert(v.report["ok"].get<bool>(), "%s", v.text.c_str());
    cr_assert_geq(v.report["segments"].get<std::uint64_t>(), 2U, "the incident did not seal a segment:\n%s",
                  v.text.c_str());
    cr_assert_geq(v.report["checkpoints"].get<std::uint64_t>(), 4U, "%s", v.text.c_str());
    cr_assert_eq(v.report["unsigned_tail_records"].get<std::uint64_t>(), 0U, "%s", v.text.c_str());

    std::map<std::string, int> outcomes;
    for (const auto& r : tail_records(100000, {"--event", "outcome"})) {
        if (r["action"] == "grant.use" && r["decision"] == "allow" && r["subject"]["sender"].is_string()) {
            ++outcomes[r["subject"]["sender"].get<std::string>()];
        }
    }
    for (const auto& r : results) {
        cr_expect_geq(outcomes[r.sender], r.ok, "client %s got %d successes, the log has %d outcome records",
                      r.sender.c_str(), r.ok, outcomes[r.sender]);
    }
}
