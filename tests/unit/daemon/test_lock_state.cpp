// The persistent lock record: its strict text codec (every state round trips, every other text
// is refused), the incident step order a restart resumes from, and STATE/lock on disk (atomic,
// 0600, and an unreadable file still means locked).
#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <string>
#include <vector>

#include "common/bytes.hpp"
#include "daemon/integrity/lock_file.hpp"
#include "daemon/integrity/lock_state.hpp"
#include "daemon/store/secret_store.hpp"
#include "lib/fileio/unique_fd.hpp"

namespace fs = std::filesystem;
using codexvault::UniqueFd;
using codexvault::store::decode_lock_state;
using codexvault::store::encode_lock_state;
using codexvault::store::IncidentStep;
using codexvault::store::LockState;
using codexvault::store::next_incomplete_step;
namespace lock_file = codexvault::store::lock_file;

namespace {

fs::path g_root;

void make_root()
{
    cr_assert_geq(sodium_init(), 0);
    char pattern[] = "/tmp/cv-lock-test-XXXXXX";
    cr_assert_not_null(::mkdtemp(pattern), "mkdtemp: %s", std::strerror(errno));
    g_root = pattern;
}

void remove_root()
{
    std::error_code ignored;
    fs::remove_all(g_root, ignored);
}

std::string read_text(const fs::path& path)
{
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
}

void write_text(const fs::path& path, const std::string& text, mode_t mode = 0600)
{
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << text;
    out.close();
    cr_assert(!out.fail());
    cr_assert_eq(::chmod(path.c_str(), mode), 0);
}

UniqueFd open_root()
{
    UniqueFd fd(::open(g_root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    cr_assert(fd.valid());
    return fd;
}

LockState incident_state()
{
    LockState state;
    state.locked_since_usec = 1'700'000'000'000'000ULL;
    state.reason = "incident: founder ran vaultctl incident";
    state.incident = true;
    state.mark_done(IncidentStep::Locked);
    state.mark_done(IncidentStep::AccessRevoked);
    return state;
}

void expect_unreadable(const std::optional<LockState>& state, const char* what)
{
    cr_assert(state.has_value(), "%s: treated as unlocked", what);
    cr_assert(state->unreadable, "%s: not flagged unreadable", what);
    cr_assert(state->reason == "lock state file unreadable", "%s: reason %s", what, state->reason.c_str());
    cr_assert(state->done(IncidentStep::Locked));
    cr_assert_not(state->incident);
}

}  // namespace

// --- codec and steps ----------------------------------------------------------------------

TestSuite(store_lock_state);

Test(store_lock_state, every_step_set_round_trips)
{
    for (std::uint32_t steps = 0; steps <= codexvault::store::kAllIncidentSteps; ++steps) {
        for (const bool incident : {false, true}) {
            LockState state{123 + steps, "reason " + std::to_string(steps), incident, steps, false};
            const std::string text = encode_lock_state(state);
            const auto decoded = decode_lock_state(text);
            cr_assert(decoded.has_value(), "steps %u did not decode: %s", steps, text.c_str());
            cr_assert(*decoded == state);
        }
    }
}

Test(store_lock_state, encoding_is_the_documented_text)
{
    cr_assert(encode_lock_state(incident_state()) ==
              "codex-vault-lock 1\nsince 1700000000000000\nincident yes\nsteps 3\n"
              "reason incident: founder ran vaultctl incident\n");
}

Test(store_lock_state, incident_steps_run_in_order_and_a_plain_lock_needs_two)
{
    LockState state;
    state.incident = true;
    const IncidentStep order[] = {IncidentStep::Locked, IncidentStep::AccessRevoked, IncidentStep::SecretsMarked,
                                  IncidentStep::AuditSealed, IncidentStep::SignalEmitted};
    for (const IncidentStep step : order) {
        const auto next = next_incomplete_step(state);
        cr_assert(next.has_value() && *next == step, "expected %s next", codexvault::store::to_string(step));
        state.mark_done(step);
    }
    cr_assert_not(next_incomplete_step(state).has_value());

    // Resuming after a crash in the middle picks the earliest missing step.
    LockState resumed = incident_state();
    cr_assert(next_incomplete_step(resumed) == IncidentStep::SecretsMarked);
    resumed.mark_done(IncidentStep::AuditSealed);
    cr_assert(next_incomplete_step(resumed) == IncidentStep::SecretsMarked);

    LockState plain;
    cr_assert(next_incomplete_step(plain) == IncidentStep::Locked);
    plain.mark_done(IncidentStep::Locked);
    cr_assert(next_incomplete_step(plain) == IncidentStep::SignalEmitted);
    plain.mark_done(IncidentStep::SignalEmitted);
    cr_assert_not(next_incomplete_step(plain).has_value());
}

Test(store_lock_state, reasons_are_sanitized_never_refused)
{
    using codexvault::store::sanitize_lock_reason;
    cr_assert(sanitize_lock_reason("") == "unspecified");
    cr_assert(sanitize_lock_reason("bad\nline\x1b[31m\x7f") == "bad?line?[31m?");
    cr_assert(sanitize_lock_reason(std::string(codexvault::store::kMaxLockReasonBytes + 44, 'r')).size() ==
              codexvault::store::kMaxLockReasonBytes);
    LockState state = incident_state();
    state.reason = "two\nlines";
    const auto decoded = decode_lock_state(encode_lock_state(state));
    cr_assert(decoded.has_value());
    cr_assert(decoded->reason == "two?lines");
}

Test(store_lock_state, every_other_text_is_refused)
{
    const std::string good = encode_lock_state(incident_state());
    for (std::size_t length = 0; length < good.size(); ++length) {
        cr_assert_not(decode_lock_state(good.substr(0, length)).has_value(), "prefix of %zu bytes accepted", length);
    }
    const std::vector<std::string> bad = {
        good + "\n",
        good + "extra\n",
        "codex-vault-lock 2\nsince 1\nincident no\nsteps 1\nreason r\n",
        "codex-vault-lock 1 \nsince 1\nincident no\nsteps 1\nreason r\n",
        "codex-vault-lock 1\nsince 01\nincident no\nsteps 1\nreason r\n",
        "codex-vault-lock 1\nsince -1\nincident no\nsteps 1\nreason r\n",
        "codex-vault-lock 1\nsince 18446744073709551616\nincident no\nsteps 1\nreason r\n",
        "codex-vault-lock 1\nsince 1\nincident maybe\nsteps 1\nreason r\n",
        "codex-vault-lock 1\nsince 1\nincident Yes\nsteps 1\nreason r\n",
        "codex-vault-lock 1\nsince 1\nincident no\nsteps 32\nreason r\n",
        "codex-vault-lock 1\nsince 1\nincident no\nsteps 0x1\nreason r\n",
        "codex-vault-lock 1\nsince 1\nincident no\nsteps 1\nreason \n",
        "codex-vault-lock 1\nsince 1\nincident no\nsteps 1\nreason a\tb\n",
        "codex-vault-lock 1\nsince 1\nincident no\nsteps 1\nreason " +
            std::string(codexvault::store::kMaxLockReasonBytes + 1, 'r') + "\n",
        "codex-vault-lock 1\r\nsince 1\nincident no\nsteps 1\nreason r\n",
        "codex-vault-lock 1\nincident no\nsince 1\nsteps 1\nreason r\n",
        "codex-vault-lock 1\nsince 1\nincident no\nsteps 1\n",
        "",
    };
    for (const auto& text : bad) {
        cr_assert_not(decode_lock_state(text).has_value(), "accepted: %s", text.c_str());
    }
    cr_assert(decode_lock_state("codex-vault-lock 1\nsince 0\nincident no\nsteps 0\nreason r\n").has_value());
}

// --- STATE/lock on disk -----------------------------------------------------------------------

TestSuite(store_lock_file, .init = make_root, .fini = remove_root);

Test(store_lock_file, save_load_clear)
{
    const UniqueFd dir = open_root();
    cr_assert_not(lock_file::load(dir.get()).has_value(), "no file must mean unlocked");
    const LockState state = incident_state();
    lock_file::save(dir.get(), state);
    struct stat st {};
    cr_assert_eq(::stat((g_root / "lock").c_str(), &st), 0);
    cr_assert_eq(st.st_mode & 07777, 0600u);
    const auto loaded = lock_file::load(dir.get());
    cr_assert(loaded.has_value() && *loaded == state);

    LockState progressed = state;
    progressed.mark_done(IncidentStep::SecretsMarked);
    lock_file::save(dir.get(), progressed);  // replaces atomically
    cr_assert(lock_file::load(dir.get()) == progressed);
    for (const auto& entry : fs::directory_iterator(g_root)) {
        cr_assert(entry.path().filename().string().rfind(".tmp.", 0) != 0, "temp file left behind");
    }

    lock_file::clear(dir.get());
    cr_assert_not(lock_file::load(dir.get()).has_value());
    lock_file::clear(dir.get());  // clearing twice is fine
}

Test(store_lock_file, an_unreadable_file_still_means_locked)
{
    const UniqueFd dir = open_root();
    const fs::path lock = g_root / "lock";

    write_text(lock, "locked\n");
    expect_unreadable(lock_file::load(dir.get()), "garbage");

    write_text(lock, encode_lock_state(incident_state()), 0644);
    expect_unreadable(lock_file::load(dir.get()), "a file others can read");

    write_text(lock, std::string(600, 'x'));
    expect_unreadable(lock_file::load(dir.get()), "an oversized file");

    fs::remove(lock);
    write_text(g_root / "target", encode_lock_state(incident_state()));
    fs::create_symlink(g_root / "target", lock);
    expect_unreadable(lock_file::load(dir.get()), "a symlink");

    fs::remove(lock);
    fs::create_directory(lock);
    expect_unreadable(lock_file::load(dir.get()), "a directory");

    fs::remove(lock);
    write_text(lock, "");
    expect_unreadable(lock_file::load(dir.get()), "an empty file");
}

Test(store_lock_file, incident_files_hold_no_secret_bytes)
{
    // An incident writes the lock record and the marked manifest next to the secrets: neither
    // may carry any part of a value.
    std::vector<std::vector<std::uint8_t>> canaries;
    std::vector<std::uint8_t> key(32);
    std::vector<std::uint8_t> manifest_key(32);
    randombytes_buf(key.data(), key.size());
    randombytes_buf(manifest_key.data(), manifest_key.size());
    codexvault::store::SecretStore store(g_root / "secrets", key, manifest_key);
    for (int i = 0; i < 3; ++i) {
        std::vector<std::uint8_t> canary(48);
        randombytes_buf(canary.data(), canary.size());
        store.put("canary-" + std::to_string(i), canary, 1);
        canaries.push_back(std::move(canary));
    }
    const UniqueFd dir = open_root();
    LockState state = incident_state();
    lock_file::save(dir.get(), state);
    cr_assert_eq(store.mark_all_rotation_required(2), 3u);
    state.mark_done(IncidentStep::SecretsMarked);
    lock_file::save(dir.get(), state);

    for (const fs::path& path : {g_root / "lock", g_root / "secrets" / "manifest"}) {
        const std::string bytes = read_text(path);
        cr_assert_not(bytes.empty());
        for (const auto& canary : canaries) {
            for (std::size_t i = 0; i + 8 <= canary.size(); ++i) {
                const std::string window(canary.begin() + static_cast<long>(i),
                                         canary.begin() + static_cast<long>(i + 8));
                cr_assert_eq(bytes.find(window), std::string::npos, "secret bytes in %s", path.c_str());
                const std::string hex = codexvault::bytes::to_hex(std::span(canary.data() + i, 8));  // nor in hex form
                cr_assert_eq(bytes.find(hex), std::string::npos, "secret bytes (hex) in %s", path.c_str());
            }
        }
    }
}
