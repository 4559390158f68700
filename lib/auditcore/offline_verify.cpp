#include "lib/auditcore/offline_verify.hpp"

#include <fcntl.h>
#include <nlohmann/json.hpp>
#include <sodium.h>

#include <cerrno>
#include <exception>
#include <filesystem>
#include <optional>
#include <system_error>

#include "common/vault_error.hpp"
#include "lib/auditcore/checkpoint.hpp"
#include "lib/auditcore/segment_dir.hpp"
#include "lib/auditcore/verifier.hpp"
#include "lib/fileio/files.hpp"
#include "lib/fileio/unique_fd.hpp"

namespace codexvault::audit {
namespace {

constexpr int kLocalError = 1;
constexpr std::size_t kMaxKeyFileBytes = 4096;

audit::PublicKey read_public_key(const std::string& path)
{
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY));
    if (!fd) {
        throw std::system_error(errno, std::generic_category(), "cannot open the audit public key " + path);
    }
    std::string text(kMaxKeyFileBytes, '\0');
    text.resize(fileio::read_until_eof(fd.get(), text.data(), text.size(), "the audit public key " + path));
    const std::optional<audit::PublicKey> key = audit::parse_public_key(text);
    if (!key) {
        throw std::runtime_error(path + " is not an audit public key (expected one line: " +
                                 std::string(audit::kPublicKeyFilePrefix) + "<64 hex digits>)");
    }
    return *key;
}

void print_text(std::ostream& out, const std::string& dir, const audit::DirectoryVerification& v,
                const audit::PublicKey& key, bool key_from_dir)
{
    const audit::VerifyReport& r = v.report;
    out << "audit log " << dir << ": " << (r.ok ? "OK" : "INTEGRITY FAILURE") << "\n";
    if (!r.ok) {
        const audit::Position& at = r.problem.at;
        out << "  first bad position: segment " << at.segment << " (file #" << at.segment_index << "), offset "
            << at.offset << ", seq " << at.seq << "\n";
        out << "  problem: " << audit::problem_name(r.problem.problem) << ": " << r.problem.detail << "\n";
        out << "  " << audit::describe(r.problem) << "\n";
        out << "  nothing from that position on is trusted; before it:\n";
    }
    out << "  segments: " << r.segments << ", records: " << r.records << " (checkpoints: " << r.checkpoints
        << "), last seq: " << r.last_seq << "\n";
    out << "  last checkpoint: "
        << (r.last_checkpoint_seq == 0 ? std::string("none") : "seq " + std::to_string(r.last_checkpoint_seq)) << "\n";
    if (r.head_checked) {
        out << "  head file: checked (checkpoint seq " << r.head_seq << ")\n";
    } else if (v.head_present) {
        out << "  head file: present, not confirmed\n";
    } else {
        out << "  head file: none (a tail removed at a record boundary cannot be detected)\n";
    }
    if (r.unsigned_tail_records > 0) {
        out << "  unsigned tail: " << r.unsigned_tail_records
            << " record(s) after the last checkpoint are chain-consistent but not yet covered by a signature\n";
    }
    for (const audit::Finding& note : r.notes) {
        out << "  note: " << audit::describe(note) << "\n";
    }
    out << "  key: " << audit::to_hex(audit::key_id_of(key)) << " (key id)\n";
    if (key_from_dir) {
        out << "  warning: the public key was read from the log folder itself; pass --pubkey with a copy kept "
               "elsewhere, or this check proves nothing against someone who can write the folder\n";
    }
}

}  // namespace

int run_audit_verify(const std::string& dir_arg, const std::string& pubkey_arg, bool json, std::ostream& out)
{
    const std::string dir = dir_arg.empty() ? std::string(kDefaultAuditDir) : dir_arg;
    const bool key_from_dir = pubkey_arg.empty();
    const std::string pubkey_file =
        key_from_dir ? (std::filesystem::path(dir) / audit::kPublicKeyFileName).string() : pubkey_arg;
    try {
        if (sodium_init() < 0) {
            throw std::runtime_error("libsodium could not be initialised");
        }
        const audit::PublicKey key = read_public_key(pubkey_file);
        const UniqueFd dir_fd = fileio::open_directory(dir);
        const audit::DirectoryVerification v = audit::verify_directory(dir_fd.get(), key);
        if (json) {
            nlohmann::json j = audit::report_to_json(v.report);
            j["dir"] = dir;
            j["pubkey_file"] = pubkey_file;
            j["pubkey_from_log_dir"] = key_from_dir;
            j["key_id"] = audit::to_hex(audit::key_id_of(key));
            j["head_present"] = v.head_present;
            j["description"] =
                v.report.ok ? nlohmann::json(nullptr) : nlohmann::json(audit::describe(v.report.problem));
            out << j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
        } else {
            print_text(out, dir, v, key, key_from_dir);
        }
        return v.report.ok ? 0 : error_info(ErrorCode::IntegrityFailure).exit_code;
    } catch (const std::exception& e) {
        if (json) {
            out << nlohmann::json{{"ok", false}, {"error", e.what()}, {"dir", dir}}.dump(
                       -1, ' ', false, nlohmann::json::error_handler_t::replace)
                << "\n";
        } else {
            out << "vaultctl audit verify: " << e.what() << "\n";
        }
        return kLocalError;
    }
}

}  // namespace codexvault::audit
