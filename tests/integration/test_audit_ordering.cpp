// Audit ordering through the real daemon (issue 11): no reply to a durable call overtakes the
// flush of that call's audit records, whichever thread calls fdatasync.
//
// The daemon runs under `strace -f` (every thread, so a flusher thread is seen as well as the event
// loop), with every descriptor decoded to its path (-y) and every byte written or sent dumped in
// hex (-xx, -s large enough never to cut). After a storm of durable `Use` calls from concurrent
// clients, the test reads the trace in order and rebuilds:
//   - the bytes appended to each audit segment (`…/audit/NNNNNNNNNNNN.seg`), frame by frame as
//     docs/audit-log.md lays them out, so each record's sender (the caller's unique bus name) is
//     known together with the write that completed it;
//   - the fdatasync/fsync calls on a segment, with the line where each started and the line where
//     it returned (the same line, or its `<... fdatasync resumed>` line);
//   - the D-Bus messages the daemon received (recvmsg) and sent (sendmsg), from the byte streams of
//     its bus connection (after the SASL exchange), with the line of the first byte sent.
// For every reply (method return, type 2, or error, type 3) to a call that is not informational
// (Status, WhoAmI, Check, AuditPublicKey and GetNonce answer at once by design), the caller's decision and
// outcome records written after the call was read and before the reply are the call's records
// (every caller here has one call in flight at a time); a success needs an outcome record among
// them, and each of them needs an fdatasync of its segment that started after its write returned
// and returned before the reply's sendmsg started. strace prints a thread's syscall entry before
// the thread executes it and its exit after the kernel finished it, and a traced thread waits at
// each stop until strace has printed it, so this order of lines is an order in time.
#include <sys/types.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <criterion/logging.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <exception>
#include <fstream>
#include <latch>
#include <map>
#include <optional>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "cli/vault_client.hpp"
#include "common/bus_contract.hpp"
#include "tests/support/harness.hpp"

using namespace codexvault;
using namespace codexvault::test;

namespace {

constexpr int kClients = 16;
constexpr int kCallsPerClient = 25;
// Two kinds of durable Use: an unlimited grant (decision and outcome written together, one flush)
// and a counted one (its use is saved before the reply: the decision is flushed, then the outcome).
constexpr const char* kUnlimitedCapability = "audit:read";
constexpr const char* kCountedCapability = "ingest:scan";
constexpr const char* kTracedCalls = "trace=write,writev,pwrite64,pwritev,pwritev2,fdatasync,fsync,sendmsg,recvmsg";

void require_root()
{
    if (::geteuid() != 0) {
        cr_skip_test("needs root: the daemon is started as root and traced with strace");
    }
}

// strace must exist and be allowed to trace (ptrace can be forbidden by a container's seccomp
// profile, by Yama, or by a missing CAP_SYS_PTRACE); setpriv --pdeathsig keeps the traced daemon
// from outliving a killed strace.
void require_strace()
{
    const CommandResult r = run_command({"strace", "-f", "-qq", "-o", "/dev/null", "-e", "trace=none", "--", "setpriv",
                                         "--pdeathsig", "KILL", "--", "true"});
    if (r.exit_code == 127) {
        cr_skip_test("strace is not installed (packaging/install-deps.sh installs it)");
    }
    if (r.exit_code != 0) {
        std::string why = r.err;
        while (!why.empty() && (why.back() == '\n' || why.back() == ' ')) {
            why.pop_back();
        }
        cr_skip_test("cannot trace a process here (ptrace not permitted?): strace exited %d: %s", r.exit_code,
                     why.c_str());
    }
}

CommandResult founder(const std::vector<std::string>& args)
{
    return env->as_founder(args);
}

void issue_grant(const std::string& capability, bool counted)
{
    std::vector<std::string> args{"grant", "issue",    "--principal", "uid=" + std::to_string(::geteuid()),
                                  "--cap", capability, "--ttl",       "1h"};
    if (counted) {
        args.insert(args.end(), {"--max-uses", "1000000000"});
    }
    const auto r = founder(args);
    cr_assert_eq(r.exit_code, 0, "grant issue %s: %s", capability.c_str(), r.err.c_str());
}

// ---- the storm ---------------------------------------------------------------------------------

struct ClientResult {
    std::string unique_name;
    int replied = 0;  // calls answered with success
    int failed = 0;   // calls answered with an error (any error fails the test)
    std::string error;
};

void run_client(const std::string& address, std::latch& start, ClientResult& out)
{
    std::optional<cli::VaultClient> client;
    try {
        client.emplace(address);
        const char* name = nullptr;
        if (sd_bus_get_unique_name(client->bus(), &name) >= 0 && name != nullptr) {
            out.unique_name = name;
        }
    } catch (const std::exception& e) {
        out.error = std::string("connect: ") + e.what();
        client.reset();
    }
    start.arrive_and_wait();
    if (!client) {
        return;
    }
    for (int i = 0; i < kCallsPerClient; ++i) {
        const char* capability = i % 2 == 0 ? kUnlimitedCapability : kCountedCapability;
        try {
            (void)client->call(bus::method::kUse, [&](sd_bus_message* m) {
                cli::check_local(sd_bus_message_append(m, "s", capability), "append capability");
                cli::check_local(sd_bus_message_append(m, "a{sv}", 0), "append request");
            });
            ++out.replied;
        } catch (const std::exception& e) {
            ++out.failed;
            out.error = e.what();
        }
    }
}

// ---- strace's log --------------------------------------------------------------------------------

// One system call of the trace: the line (0-based) where it started and the line where it returned.
struct Syscall {
    std::size_t entry = 0;
    std::size_t exit = 0;
    long tid = 0;
    std::string name;
    std::string text;  // "name(args) = ret", an interrupted call's two halves joined
    std::optional<long long> ret;
};

std::string read_whole_file(const std::string& path)
{
    std::ifstream in(path, std::ios::binary);
    std::stringstream bytes;
    bytes << in.rdbuf();
    return bytes.str();
}

// strace -o FILE -f: "PID  name(args) = ret", "PID  name(args <unfinished ...>" then
// "PID  <... name resumed>rest) = ret"; signal and exit lines ("---", "+++") are skipped.
std::vector<Syscall> parse_trace(const std::string& log, std::vector<std::string>& problems)
{
    std::vector<Syscall> calls;
    std::map<long, Syscall> unfinished;  // by thread
    static constexpr std::string_view kUnfinished = " <unfinished ...>";
    std::size_t line_no = 0;
    std::istringstream in(log);
    for (std::string line; std::getline(in, line); ++line_no) {
        char* end = nullptr;
        const long tid = std::strtol(line.c_str(), &end, 10);
        if (end == line.c_str()) {
            problems.push_back("line " + std::to_string(line_no + 1) + " has no pid: " + line.substr(0, 80));
            continue;
        }
        std::string_view text(end);
        while (!text.empty() && text.front() == ' ') {
            text.remove_prefix(1);
        }
        if (text.starts_with("---") || text.starts_with("+++")) {
            continue;
        }
        Syscall call;
        if (text.starts_with("<... ")) {
            const std::size_t resumed = text.find(" resumed>");
            const auto it = unfinished.find(tid);
            if (resumed == std::string_view::npos || it == unfinished.end()) {
                problems.push_back("line " + std::to_string(line_no + 1) +
                                   " resumes nothing: " + std::string(text.substr(0, 80)));
                continue;
            }
            call = std::move(it->second);
            unfinished.erase(it);
            call.text += text.substr(resumed + 9);
        } else {
            call.entry = line_no;
            call.tid = tid;
            call.name = std::string(text.substr(0, text.find('(')));
            call.text = std::string(text);
        }
        if (call.text.ends_with(kUnfinished)) {
            call.text.resize(call.text.size() - kUnfinished.size());
            unfinished[tid] = std::move(call);
            continue;
        }
        call.exit = line_no;
        const std::size_t eq = call.text.rfind(" = ");
        if (eq != std::string::npos) {
            const char* value = call.text.c_str() + eq + 3;
            char* value_end = nullptr;
            const long long v = std::strtoll(value, &value_end, 10);
            if (value_end != value) {
                call.ret = v;
            }
        }
        calls.push_back(std::move(call));
    }
    // A call still unfinished when the log ends never returned: it proves nothing either way.
    return calls;
}

int hex_digit(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

// A C-escaped string of strace starting after its opening quote at `at` (or a path between < and >,
// closed by `close`); `at` ends after the closing character. nullopt when it is malformed.
std::optional<std::string> unescape(const std::string& text, std::size_t& at, char close)
{
    std::string out;
    while (at < text.size()) {
        const char c = text[at++];
        if (c == close) {
            return out;
        }
        if (c != '\\') {
            out += c;
            continue;
        }
        if (at >= text.size()) {
            return std::nullopt;
        }
        const char e = text[at++];
        switch (e) {
        case 'x': {
            if (at + 2 > text.size() || hex_digit(text[at]) < 0 || hex_digit(text[at + 1]) < 0) {
                return std::nullopt;
            }
            out += static_cast<char>(hex_digit(text[at]) * 16 + hex_digit(text[at + 1]));
            at += 2;
            break;
        }
        case 'n':
            out += '\n';
            break;
        case 't':
            out += '\t';
            break;
        case 'r':
            out += '\r';
            break;
        case 'v':
            out += '\v';
            break;
        case 'f':
            out += '\f';
            break;
        default:
            if (e >= '0' && e <= '7') {
                int v = e - '0';
                for (int i = 0; i < 2 && at < text.size() && text[at] >= '0' && text[at] <= '7'; ++i) {
                    v = v * 8 + (text[at++] - '0');
                }
                out += static_cast<char>(v);
            } else {
                out += e;  // \\ and \"
            }
        }
    }
    return std::nullopt;
}

// The path of the call's first argument, a descriptor decoded by -y: "name(7</path>, ...".
std::string fd_path(const Syscall& call)
{
    std::size_t at = call.text.find('(');
    if (at == std::string::npos) {
        return {};
    }
    ++at;
    while (at < call.text.size() && call.text[at] >= '0' && call.text[at] <= '9') {
        ++at;
    }
    if (at >= call.text.size() || call.text[at] != '<') {
        return {};
    }
    ++at;
    return unescape(call.text, at, '>').value_or(std::string{});
}

// The bytes a call wrote or read: write/pwrite64's buffer, or every iov_base of the others, cut at
// the return value. Sets `cut` when strace abbreviated a string (the check cannot rebuild streams).
std::string call_data(const Syscall& call, bool& cut)
{
    std::string data;
    const bool plain = call.name == "write" || call.name == "pwrite64";
    std::size_t at = 0;
    const std::string marker = plain ? "\"" : "iov_base=\"";
    while ((at = call.text.find(marker, at)) != std::string::npos) {
        at += marker.size();
        const auto piece = unescape(call.text, at, '"');
        if (!piece) {
            cut = true;
            return data;
        }
        data += *piece;
        if (call.text.compare(at, 3, "...") == 0) {
            cut = true;
        }
        if (plain) {
            break;
        }
    }
    const long long sent = call.ret.value_or(0);
    data.resize(sent > 0 ? std::min(data.size(), static_cast<std::size_t>(sent)) : 0);
    return data;
}

std::uint32_t le32(std::string_view b, std::size_t at)
{
    return static_cast<std::uint32_t>(static_cast<unsigned char>(b[at])) |
           static_cast<std::uint32_t>(static_cast<unsigned char>(b[at + 1])) << 8 |
           static_cast<std::uint32_t>(static_cast<unsigned char>(b[at + 2])) << 16 |
           static_cast<std::uint32_t>(static_cast<unsigned char>(b[at + 3])) << 24;
}

// Bytes appended to a stream by successive calls; which call carried a given byte.
struct Stream {
    std::string bytes;
    std::size_t parsed = 0;
    std::vector<std::size_t> chunk_start;    // stream offset of each call's first byte
    std::vector<const Syscall*> chunk_call;  // the call that carried it
    const Syscall* carrier(std::size_t offset) const
    {
        const auto it = std::upper_bound(chunk_start.begin(), chunk_start.end(), offset);
        return chunk_call[static_cast<std::size_t>(it - chunk_start.begin()) - 1];
    }
    void append(const Syscall& call, const std::string& data)
    {
        if (data.empty()) {
            return;
        }
        chunk_start.push_back(bytes.size());
        chunk_call.push_back(&call);
        bytes += data;
    }
};

// ---- audit segments (docs/audit-log.md, "Frame" and "Record payload") ------------------------------

// Event types of the records that belong to one call (docs/audit-log.md, "Event types").
constexpr int kDecisionEvent = 1;
constexpr int kOutcomeEvent = 2;

struct Frame {
    std::string segment;
    int event = 0;  // payload byte 0
    std::string sender;
    const Syscall* write = nullptr;  // the write that completed the frame
};

// Cuts whole frames off a segment's stream. The first traced write of a segment starts at a frame
// boundary: the header and the first records are written to a temporary file renamed into place.
void parse_frames(const std::string& segment, Stream& s, std::vector<Frame>& frames, std::vector<std::string>& problems)
{
    while (s.bytes.size() - s.parsed >= 8) {
        const std::size_t at = s.parsed;
        const std::uint32_t length = le32(s.bytes, at);
        if (le32(s.bytes, at + 4) != ~length || length < 90 || length > 28'923) {
            problems.push_back("segment " + segment + ": no frame at traced byte " + std::to_string(at) + " (length " +
                               std::to_string(length) + ")");
            s.parsed = s.bytes.size();
            return;
        }
        if (s.bytes.size() - at < 40 + std::size_t{length}) {
            return;  // the rest comes with a later write
        }
        const std::size_t payload = at + 8;
        const std::size_t sender_length = static_cast<unsigned char>(s.bytes[payload + 76]) |
                                          static_cast<std::size_t>(static_cast<unsigned char>(s.bytes[payload + 77]))
                                              << 8;
        Frame f;
        f.segment = segment;
        f.event = static_cast<unsigned char>(s.bytes[payload]);
        if (78 + sender_length <= length) {
            f.sender = s.bytes.substr(payload + 78, sender_length);
        }
        f.write = s.carrier(at + 40 + length - 1);
        frames.push_back(std::move(f));
        s.parsed = at + 40 + length;
    }
}

// ---- D-Bus messages (the wire format: a 16-byte fixed header, then header fields) --------------------

struct BusMessage {
    int type = 0;  // 1 call, 2 return, 3 error, 4 signal
    std::uint32_t serial = 0;
    std::optional<std::uint32_t> reply_serial;
    std::string member, destination, sender, error_name;
    const Syscall* first = nullptr;  // the call that carried its first byte
    const Syscall* last = nullptr;   // ... and its last byte
};

std::size_t align(std::size_t offset, std::size_t to)
{
    return (offset + to - 1) / to * to;
}

// Reads the header fields of the message at `start`; false when a field has a type this parser
// does not know (the daemon's messages have only o, s, g and u fields).
bool parse_fields(std::string_view b, std::size_t start, std::size_t fields_end, BusMessage& m)
{
    std::size_t at = start + 16;
    while (at < fields_end) {
        at = start + align(at - start, 8);
        if (at + 3 > fields_end) {
            return false;
        }
        const auto code = static_cast<unsigned char>(b[at]);
        const std::size_t signature_length = static_cast<unsigned char>(b[at + 1]);
        const std::string_view signature = b.substr(at + 2, signature_length);
        at += 2 + signature_length + 1;
        if (signature == "s" || signature == "o") {
            at = start + align(at - start, 4);
            const std::uint32_t length = le32(b, at);
            const std::string value(b.substr(at + 4, length));
            at += 4 + std::size_t{length} + 1;
            if (code == 3) {
                m.member = value;
            } else if (code == 4) {
                m.error_name = value;
            } else if (code == 6) {
                m.destination = value;
            } else if (code == 7) {
                m.sender = value;
            }
        } else if (signature == "g") {
            at += 1 + static_cast<unsigned char>(b[at]) + 1;
        } else if (signature == "u") {
            at = start + align(at - start, 4);
            if (code == 5) {
                m.reply_serial = le32(b, at);
            }
            at += 4;
        } else {
            return false;
        }
    }
    return at <= fields_end;
}

// Cuts whole messages off a bus stream, after the SASL exchange: the daemon, a client of the bus,
// sends "\0AUTH ...\r\n" ... "BEGIN\r\n"; the bus answers with "OK ...\r\n" and "AGREE_UNIX_FD\r\n".
void parse_messages(const std::string& what, Stream& s, bool outgoing, std::vector<BusMessage>& out,
                    std::vector<std::string>& problems)
{
    if (outgoing && s.parsed == 0) {
        const std::size_t begin = s.bytes.find("BEGIN\r\n");
        if (begin == std::string::npos) {
            return;
        }
        s.parsed = begin + 7;
    }
    while (!outgoing && s.parsed < s.bytes.size() && s.bytes[s.parsed] != 'l' && s.bytes[s.parsed] != 'B') {
        const std::size_t eol = s.bytes.find("\r\n", s.parsed);
        if (eol == std::string::npos) {
            return;
        }
        s.parsed = eol + 2;
    }
    const std::string_view b(s.bytes);
    while (b.size() - s.parsed >= 16) {
        const std::size_t start = s.parsed;
        if (b[start] != 'l' || b[start + 3] != 1) {
            problems.push_back(what + ": not a little-endian D-Bus message at byte " + std::to_string(start));
            s.parsed = b.size();
            return;
        }
        const std::size_t body = le32(b, start + 4);
        const std::size_t fields = le32(b, start + 12);
        const std::size_t fields_end = start + 16 + fields;
        const std::size_t total = align(16 + fields, 8) + body;
        if (b.size() - start < total) {
            return;
        }
        BusMessage m;
        m.type = static_cast<unsigned char>(b[start + 1]);
        m.serial = le32(b, start + 8);
        if (!parse_fields(b, start, fields_end, m)) {
            problems.push_back(what + ": unreadable header fields at byte " + std::to_string(start));
        }
        m.first = s.carrier(start);
        m.last = s.carrier(start + total - 1);
        out.push_back(std::move(m));
        s.parsed = start + total;
    }
}

bool is_segment(const std::string& path)
{
    static const std::regex kSegment(".*/audit/[0-9]{12}\\.seg");
    return std::regex_match(path, kSegment);
}

bool informational(const std::string& member)
{
    return member == bus::method::kStatus || member == bus::method::kWhoAmI || member == bus::method::kCheck ||
           member == bus::method::kAuditPublicKey || member == bus::method::kGetNonce;
}

struct Sync {
    std::string segment;
    const Syscall* call = nullptr;
};

struct Analysis {
    std::vector<std::string> problems;           // the trace could not be read as expected
    std::vector<std::string> violations;         // replies that overtook their records' flush
    std::map<std::string, int> durable_replies;  // per caller
    int informational_replies = 0;
    int durable_total = 0;
    std::size_t frames = 0, syncs = 0, lines = 0;
    std::set<long> sync_threads;
    std::map<int, int> flushes_waited;  // syncs that ended between the call's arrival and its reply
};

std::string position(const Syscall* c)
{
    if (c->entry == c->exit) {
        return "line " + std::to_string(c->entry + 1) + " (tid " + std::to_string(c->tid) + ")";
    }
    return "lines " + std::to_string(c->entry + 1) + ".." + std::to_string(c->exit + 1) + " (tid " +
           std::to_string(c->tid) + ")";
}

Analysis analyse(const std::string& log)
{
    Analysis a;
    a.lines = static_cast<std::size_t>(std::count(log.begin(), log.end(), '\n'));
    std::vector<Syscall> calls = parse_trace(log, a.problems);
    // Bytes go out in the order the calls started (one thread writes each segment and the socket).
    std::stable_sort(calls.begin(), calls.end(), [](const Syscall& x, const Syscall& y) { return x.entry < y.entry; });

    std::map<std::string, Stream> segments, sent, received;
    std::vector<Frame> frames;
    std::vector<Sync> syncs;
    std::vector<BusMessage> in_messages, out_messages;
    for (const Syscall& call : calls) {
        const std::string path = fd_path(call);
        if (call.name == "fdatasync" || call.name == "fsync") {
            if (is_segment(path) && call.ret == 0) {
                syncs.push_back({path, &call});
                a.sync_threads.insert(call.tid);
            }
            continue;
        }
        bool cut = false;
        const std::string data = call_data(call, cut);
        if (cut) {
            a.problems.push_back("strace cut the data of the " + call.name + " at " + position(&call));
        }
        if (is_segment(path) && call.name != "sendmsg" && call.name != "recvmsg") {
            segments[path].append(call, data);
            parse_frames(path, segments[path], frames, a.problems);
        } else if (path.starts_with("socket:") && call.name == "sendmsg") {
            Stream& s = sent[path];
            s.append(call, data);
            if (s.bytes.starts_with(std::string_view("\0AUTH", 5))) {
                parse_messages("sent on " + path, s, true, out_messages, a.problems);
            }
        } else if (path.starts_with("socket:") && call.name == "recvmsg") {
            Stream& s = received[path];
            s.append(call, data);
            if (sent[path].bytes.starts_with(std::string_view("\0AUTH", 5))) {
                parse_messages("received on " + path, s, false, in_messages, a.problems);
            }
        }
    }
    a.frames = frames.size();
    a.syncs = syncs.size();

    std::map<std::pair<std::string, std::uint32_t>, const BusMessage*> calls_by_serial;
    for (const auto& m : in_messages) {
        if (m.type == 1) {
            calls_by_serial[{m.sender, m.serial}] = &m;
        }
    }
    std::map<std::string, std::vector<const Frame*>> frames_of;  // per sender, in write order
    for (const auto& f : frames) {
        frames_of[f.sender].push_back(&f);
    }

    for (const auto& reply : out_messages) {
        if ((reply.type != 2 && reply.type != 3) || !reply.reply_serial) {
            continue;
        }
        const std::string what = std::string(reply.type == 2 ? "reply" : "error reply") + " to " + reply.destination +
                                 " (serial " + std::to_string(*reply.reply_serial) + ")";
        const auto found = calls_by_serial.find({reply.destination, *reply.reply_serial});
        if (found == calls_by_serial.end()) {
            a.problems.push_back(what + ", sent at " + position(reply.first) + ", answers no call the daemon read");
            continue;
        }
        const BusMessage& call = *found->second;
        if (informational(call.member)) {
            ++a.informational_replies;
            continue;
        }
        ++a.durable_total;
        ++a.durable_replies[reply.destination];
        const std::string named =
            what + " of " + call.member + ", read at " + position(call.last) + ", sendmsg at " + position(reply.first);
        const std::size_t sent_at = reply.first->entry;

        // The call's records: the caller's decision and outcome records written after the call
        // was read and before the reply (each storm client, and each vaultctl, has one call in
        // flight at a time, so these are this call's). A success needs its outcome record; an
        // error its decision (a refusal) or its outcome (an action that failed).
        std::vector<const Frame*> records;
        for (const Frame* f : frames_of[reply.destination]) {
            if ((f->event == kDecisionEvent || f->event == kOutcomeEvent) && f->write->entry > call.last->exit &&
                f->write->entry < sent_at) {
                records.push_back(f);
            }
        }
        const bool has_outcome =
            std::any_of(records.begin(), records.end(), [](const Frame* f) { return f->event == kOutcomeEvent; });
        if (records.empty() || (reply.type == 2 && !has_outcome)) {
            a.violations.push_back(named + ": no " + (records.empty() ? "record" : "outcome record") +
                                   " of the call was written to a segment before the reply");
            continue;
        }
        // Each of them is flushed: an fdatasync of its segment started after its write returned
        // and returned before the reply's sendmsg started.
        bool flushed = true;
        for (const Frame* record : records) {
            const Syscall* w = record->write;
            const bool ok = std::any_of(syncs.begin(), syncs.end(), [&](const Sync& s) {
                return s.segment == record->segment && s.call->entry > w->exit && s.call->exit < sent_at;
            });
            if (ok) {
                continue;
            }
            std::string next = "none did";
            for (const auto& s : syncs) {
                if (s.segment == record->segment && s.call->entry > w->exit) {
                    next = "the next one ran at " + position(s.call);
                    break;
                }
            }
            a.violations.push_back(named + ": its " + (record->event == kOutcomeEvent ? "outcome" : "decision") +
                                   " record was written at " + position(w) + " to " + record->segment +
                                   ", but no fdatasync of that segment started after the write and returned before "
                                   "the reply (" +
                                   next + ")");
            flushed = false;
            break;
        }
        if (!flushed) {
            continue;
        }
        int waited = 0;
        for (const auto& s : syncs) {
            if (s.call->entry > call.last->exit && s.call->exit < sent_at) {
                ++waited;
            }
        }
        ++a.flushes_waited[waited];
    }
    return a;
}

std::string first_of(const std::vector<std::string>& lines, std::size_t n)
{
    std::string out;
    for (std::size_t i = 0; i < lines.size() && i < n; ++i) {
        out += "\n  " + lines[i];
    }
    if (lines.size() > n) {
        out += "\n  ... and " + std::to_string(lines.size() - n) + " more";
    }
    return out;
}

}  // namespace

TestSuite(audit_ordering, .fini = stop_env, .timeout = 120);

Test(audit_ordering, no_reply_to_a_durable_call_overtakes_the_fdatasync_of_its_records)
{
    require_root();
    require_strace();
    const auto started = std::chrono::steady_clock::now();

    env = std::make_unique<VaultEnv>(false);
    const std::string trace = env->root() + "/daemon.strace";
    // -f: every thread (a flusher thread as well as the event loop); -y: descriptors as paths, so a
    // segment and the bus socket are recognised; -xx -s: every byte of every buffer, never cut;
    // setpriv --pdeathsig: the daemon dies with strace if the test is killed.
    env->set_daemon_wrapper({"strace", "-f", "-qq", "-y", "-xx", "-s", "4194304", "-e", kTracedCalls, "-e",
                             "signal=none", "-o", trace, "--", "setpriv", "--pdeathsig", "KILL", "--"});
    env->start_daemon();
    env->init_founder();
    issue_grant(kUnlimitedCapability, false);
    issue_grant(kCountedCapability, true);

    std::vector<ClientResult> results(kClients);
    {
        std::latch start(kClients);
        std::vector<std::thread> clients;
        for (auto& result : results) {
            clients.emplace_back(run_client, env->bus_address(), std::ref(start), std::ref(result));
        }
        for (auto& t : clients) {
            t.join();
        }
    }
    const pid_t daemon = env->daemon_pid();  // its main thread's id; a flusher thread has another
    env->stop_daemon();                      // strace has written the whole log once it has exited

    int replied = 0;
    for (const auto& r : results) {
        cr_assert(!r.unique_name.empty(), "a client did not connect: %s", r.error.c_str());
        cr_assert_eq(r.failed, 0, "client %s: %d of %d calls failed, last: %s", r.unique_name.c_str(), r.failed,
                     kCallsPerClient, r.error.c_str());
        replied += r.replied;
    }

    const Analysis a = analyse(read_whole_file(trace));
    std::string threads;
    for (const long tid : a.sync_threads) {
        threads += (threads.empty() ? "" : ", ") + std::to_string(tid) + (tid == daemon ? " (main)" : " (other)");
    }
    std::string waited;
    for (const auto& [flushes, replies] : a.flushes_waited) {
        waited += (waited.empty() ? "" : ", ") + std::to_string(replies) + " after " + std::to_string(flushes);
    }
    cr_log_info(
        "%d clients, %d Use replies; trace: %zu lines, %zu records, %zu segment flushes by thread(s) %s; "
        "%d durable replies checked (flushes that ended between call and reply: %s), %d informational; "
        "%.1f s in all",
        kClients, replied, a.lines, a.frames, a.syncs, threads.c_str(), a.durable_total, waited.c_str(),
        a.informational_replies, std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());

    cr_assert_gt(a.syncs, 0u,
                 "no fdatasync or fsync of an audit segment in the trace: if the flush moved to io_uring or "
                 "sync_file_range, this test must learn to see it");
    cr_assert(a.problems.empty(), "the trace could not be read as expected (%zu problems):%s", a.problems.size(),
              first_of(a.problems, 10).c_str());
    cr_assert(a.violations.empty(), "%zu of %d replies to durable calls were sent before their records' flush:%s",
              a.violations.size(), a.durable_total, first_of(a.violations, 10).c_str());

    // Not vacuous: every reply the storm received was found in the trace and checked.
    cr_assert_eq(replied, kClients * kCallsPerClient);
    for (const auto& r : results) {
        const auto it = a.durable_replies.find(r.unique_name);
        const int checked = it == a.durable_replies.end() ? 0 : it->second;
        cr_assert_eq(checked, r.replied, "client %s got %d replies, the trace shows %d durable replies to it",
                     r.unique_name.c_str(), r.replied, checked);
    }
    cr_assert_geq(a.durable_total, replied, "%d durable replies checked, the storm alone got %d", a.durable_total,
                  replied);
}
