#include "daemon/ingest/protocol.hpp"

#include <algorithm>
#include <cstring>

#include "lib/scan/finding.hpp"

namespace codexvault::ingest {

std::string_view to_string(WorkerEnd end) noexcept
{
    switch (end) {
    case WorkerEnd::Completed:
        return "completed";
    case WorkerEnd::CpuLimit:
        return "killed at its CPU time limit";
    case WorkerEnd::WallTimeLimit:
        return "killed at its wall-clock time limit";
    case WorkerEnd::MemoryLimit:
        return "stopped at its memory limit";
    case WorkerEnd::SandboxFailed:
        return "could not confine itself (nothing was read)";
    case WorkerEnd::BadDirectory:
        return "the descriptor is not a readable directory";
    case WorkerEnd::Killed:
        return "killed by a signal";
    case WorkerEnd::Failed:
        return "failed";
    case WorkerEnd::Refused:
        return "could not be started";
    }
    return "unknown";
}

namespace {

// Little-endian fields, length-prefixed strings.
class Writer {
public:
    explicit Writer(std::string& out, RecordType type) : out_(out), start_(out.size())
    {
        out_.push_back(static_cast<char>(type));
        out_.append(4, '\0');  // length, filled in by finish()
    }
    void u8(std::uint8_t v) { out_.push_back(static_cast<char>(v)); }
    void u32(std::uint32_t v)
    {
        for (int i = 0; i < 4; ++i) {
            out_.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
        }
    }
    void u64(std::uint64_t v)
    {
        for (int i = 0; i < 8; ++i) {
            out_.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
        }
    }
    void str(std::string_view s, std::size_t max)
    {
        s = s.substr(0, max);
        u32(static_cast<std::uint32_t>(s.size()));
        out_.append(s);
    }
    ~Writer()
    {
        const auto length = static_cast<std::uint32_t>(out_.size() - start_ - 5);
        for (int i = 0; i < 4; ++i) {
            out_[start_ + 1 + static_cast<std::size_t>(i)] = static_cast<char>((length >> (8 * i)) & 0xff);
        }
    }
    Writer(const Writer&) = delete;
    Writer& operator=(const Writer&) = delete;

private:
    std::string& out_;
    std::size_t start_;
};

class Reader {
public:
    explicit Reader(std::string_view data) : data_(data) {}
    bool u8(std::uint8_t& v)
    {
        if (data_.size() < 1) {
            return false;
        }
        v = static_cast<std::uint8_t>(data_[0]);
        data_.remove_prefix(1);
        return true;
    }
    bool u32(std::uint32_t& v)
    {
        if (data_.size() < 4) {
            return false;
        }
        v = 0;
        for (std::size_t i = 0; i < 4; ++i) {
            v |= static_cast<std::uint32_t>(static_cast<std::uint8_t>(data_[i])) << (8 * i);
        }
        data_.remove_prefix(4);
        return true;
    }
    bool u64(std::uint64_t& v)
    {
        if (data_.size() < 8) {
            return false;
        }
        v = 0;
        for (std::size_t i = 0; i < 8; ++i) {
            v |= static_cast<std::uint64_t>(static_cast<std::uint8_t>(data_[i])) << (8 * i);
        }
        data_.remove_prefix(8);
        return true;
    }
    bool str(std::string& s, std::size_t max)
    {
        std::uint32_t n = 0;
        if (!u32(n) || n > max || n > data_.size()) {
            return false;
        }
        s.assign(data_.substr(0, n));
        data_.remove_prefix(n);
        return true;
    }
    [[nodiscard]] bool done() const noexcept { return data_.empty(); }

private:
    std::string_view data_;
};

bool token_ok(std::string_view s) noexcept
{
    return std::all_of(s.begin(), s.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-' ||
               c == '.' || c == ':';
    });
}

bool path_ok(std::string_view s) noexcept
{
    return !s.empty() && s.find('\0') == std::string_view::npos;
}

// "<at most 16 printable bytes, at most a third of the length>…(<length>)": the only shape the
// scanner produces, so a worker cannot smuggle a value out through the preview.
bool preview_ok(std::string_view preview, std::uint32_t length) noexcept
{
    constexpr std::string_view kEllipsis = "\xE2\x80\xA6(";
    const auto at = preview.find(kEllipsis);
    if (at > 16 || at > length / 3) {  // npos (no ellipsis) is past 16 too
        return false;
    }
    for (std::size_t i = 0; i < at; ++i) {
        if (preview[i] < 0x21 || preview[i] > 0x7e) {
            return false;
        }
    }
    return preview.substr(at + kEllipsis.size()) == std::to_string(length) + ")";
}

bool fingerprint_ok(std::string_view s) noexcept
{
    return s.size() == 32 &&
           std::all_of(s.begin(), s.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

std::uint64_t bits_of(double d) noexcept
{
    std::uint64_t v = 0;
    std::memcpy(&v, &d, sizeof v);
    return v;
}

double double_of(std::uint64_t v) noexcept
{
    double d = 0;
    std::memcpy(&d, &v, sizeof d);
    return d;
}

bool decode_finding(Reader& in, WireFinding& f)
{
    std::uint64_t entropy = 0;
    if (!(in.str(f.path, kMaxPathBytes) && in.str(f.rule_id, kMaxShortString) && in.str(f.family, kMaxShortString) &&
          in.str(f.provider, kMaxShortString) && in.u8(f.confidence) && in.u32(f.line) && in.u32(f.column) &&
          in.u32(f.length) && in.str(f.preview, kMaxShortString) && in.u64(entropy) &&
          in.str(f.fingerprint, kMaxShortString) && in.done())) {
        return false;
    }
    f.entropy = double_of(entropy);
    // An env file's finding carries nothing computed from the value; any other carries all of it.
    const bool withheld =
        f.length == 0 && f.preview == scan::kWithheldPreview && f.fingerprint.empty() && f.entropy == 0;
    return path_ok(f.path) && token_ok(f.rule_id) && !f.rule_id.empty() && token_ok(f.family) && token_ok(f.provider) &&
           f.confidence <= 2 &&
           (withheld ||
            (preview_ok(f.preview, f.length) && fingerprint_ok(f.fingerprint) && f.entropy >= 0 && f.entropy <= 8));
}

}  // namespace

void encode(std::string& out, const WireFinding& r)
{
    Writer w(out, RecordType::Finding);
    w.str(r.path, kMaxPathBytes);
    w.str(r.rule_id, kMaxShortString);
    w.str(r.family, kMaxShortString);
    w.str(r.provider, kMaxShortString);
    w.u8(r.confidence);
    w.u32(r.line);
    w.u32(r.column);
    w.u32(r.length);
    w.str(r.preview, kMaxShortString);
    w.u64(bits_of(r.entropy));
    w.str(r.fingerprint, kMaxShortString);
}

void encode(std::string& out, const WireFileNote& r)
{
    Writer w(out, RecordType::FileNote);
    w.str(r.path, kMaxPathBytes);
    w.u8(r.truncation);
    w.u8(r.file_truncated);
}

void encode(std::string& out, const WireSkip& r)
{
    Writer w(out, RecordType::Skip);
    w.str(r.path, kMaxPathBytes);
    w.u8(r.reason);
    w.u32(static_cast<std::uint32_t>(r.error));
}

void encode(std::string& out, const WireEnvFile& r)
{
    Writer w(out, RecordType::EnvFile);
    w.str(r.path, kMaxPathBytes);
    w.u8(r.kind);
    const std::size_t count = std::min(r.names.size(), kMaxEnvNames);
    w.u32(static_cast<std::uint32_t>(count));
    for (std::size_t i = 0; i < count; ++i) {
        w.str(r.names[i], kMaxShortString);
    }
}

void encode_env_read(std::string& out, std::string_view name)
{
    Writer w(out, RecordType::EnvRead);
    w.str(name, kMaxShortString);
}

void encode(std::string& out, const WireSummary& r)
{
    Writer w(out, RecordType::Summary);
    for (const std::uint64_t v : {r.files, r.directories, r.entries, r.bytes_read, r.truncated_files, r.skipped,
                                  r.incomplete_files, r.findings, r.findings_dropped}) {
        w.u64(v);
    }
    w.u8(r.stopped);
    w.u32(static_cast<std::uint32_t>(r.landlock_abi));
}

DecodedResult decode_stream(std::string_view stream, std::size_t max_records)
{
    DecodedResult out;
    std::size_t records = 0;
    while (!stream.empty()) {
        if (stream.size() < 5) {
            break;  // cut short: the worker ended mid-record
        }
        const auto type = static_cast<std::uint8_t>(stream[0]);
        std::uint32_t length = 0;
        for (std::size_t i = 0; i < 4; ++i) {
            length |= static_cast<std::uint32_t>(static_cast<std::uint8_t>(stream[1 + i])) << (8 * i);
        }
        if (length > kMaxRecordBytes) {
            out.error = "a record over the size limit";
            return out;
        }
        if (stream.size() - 5 < length) {
            break;
        }
        if (out.summary) {
            out.error = "records after the summary";
            return out;
        }
        if (++records > max_records) {
            out.error = "too many records";
            return out;
        }
        Reader in(stream.substr(5, length));
        stream.remove_prefix(5 + length);
        bool ok = false;
        switch (static_cast<RecordType>(type)) {
        case RecordType::Finding: {
            WireFinding f;
            ok = decode_finding(in, f);
            if (ok) {
                out.findings.push_back(std::move(f));
            }
            break;
        }
        case RecordType::FileNote: {
            WireFileNote n;
            ok = in.str(n.path, kMaxPathBytes) && in.u8(n.truncation) && in.u8(n.file_truncated) && in.done() &&
                 path_ok(n.path) && n.truncation <= 4 && n.file_truncated <= 1;
            if (ok) {
                out.notes.push_back(std::move(n));
            }
            break;
        }
        case RecordType::Skip: {
            WireSkip s;
            std::uint32_t error = 0;
            ok = in.str(s.path, kMaxPathBytes) && in.u8(s.reason) && in.u32(error) && in.done() && path_ok(s.path) &&
                 s.reason <= 11 && error < 4096;
            s.error = static_cast<std::int32_t>(error);
            if (ok) {
                out.skips.push_back(std::move(s));
            }
            break;
        }
        case RecordType::EnvFile: {
            WireEnvFile e;
            std::uint32_t count = 0;
            ok = in.str(e.path, kMaxPathBytes) && in.u8(e.kind) && in.u32(count) && count <= kMaxEnvNames &&
                 path_ok(e.path) && e.kind >= 1 && e.kind <= 2;
            for (std::uint32_t i = 0; ok && i < count; ++i) {
                std::string name;
                ok = in.str(name, kMaxShortString) && !name.empty() && token_ok(name);
                e.names.push_back(std::move(name));
            }
            ok = ok && in.done();
            if (ok) {
                out.env_files.push_back(std::move(e));
            }
            break;
        }
        case RecordType::EnvRead: {
            std::string name;
            ok = in.str(name, kMaxShortString) && in.done() && !name.empty() && token_ok(name);
            if (ok) {
                out.env_reads.push_back(std::move(name));
            }
            break;
        }
        case RecordType::Summary: {
            WireSummary s;
            std::uint32_t abi = 0;
            ok = in.u64(s.files) && in.u64(s.directories) && in.u64(s.entries) && in.u64(s.bytes_read) &&
                 in.u64(s.truncated_files) && in.u64(s.skipped) && in.u64(s.incomplete_files) && in.u64(s.findings) &&
                 in.u64(s.findings_dropped) && in.u8(s.stopped) && in.u32(abi) && in.done() && s.stopped <= 3;
            s.landlock_abi = static_cast<std::int32_t>(abi);
            if (ok) {
                out.summary = s;
            }
            break;
        }
        }
        if (!ok) {
            out.error = "a malformed record (type " + std::to_string(type) + ")";
            return out;
        }
    }
    return out;
}

}  // namespace codexvault::ingest
