// The founder's channel to the daemon (issue 10, item 9): a secret value travels sealed to the
// daemon's transport key, so a root bus monitor that copies the value's pipe in transit (tee(2))
// sees ciphertext only. The daemon refuses a value sent in the clear or sealed to another key;
// vaultctl pins the daemon's key at init and refuses to send a value to a daemon showing another.
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "cli/founder_key.hpp"
#include "common/bytes.hpp"
#include "common/vault_error.hpp"
#include "lib/fileio/unique_fd.hpp"
#include "tests/support/founder_calls.hpp"
#include "tests/support/harness.hpp"

using namespace codexvault;
using namespace codexvault::test;

namespace {

const int kInvalid = error_info(ErrorCode::InvalidArgument).exit_code;
const int kIntegrity = error_info(ErrorCode::IntegrityFailure).exit_code;

int put_with_fd(cli::VaultClient& client, const cli::FounderKeyPair& key, const std::string& name, int fd)
{
    return exit_code_of([&] {
        call_method(client, "PutSecret", make_proof(client, key, "PutSecret", {name}), key.public_key, name, fd);
    });
}

cli::TransportPublicKey another_transport_key()
{
    cli::TransportPublicKey public_key{};
    unsigned char secret_key[crypto_box_SECRETKEYBYTES];
    crypto_box_keypair(public_key.data(), secret_key);
    sodium_memzero(secret_key, sizeof secret_key);
    return public_key;
}

CommandResult founder_cmd(const std::vector<std::string>& args, const std::string& stdin_data)
{
    return env->as_founder(args, stdin_data);
}

std::string read_text(const std::string& path)
{
    std::ifstream in(path, std::ios::binary);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
}

// How strace -xx prints bytes: every byte as \xNN.
std::string strace_escaped(const std::string& bytes)
{
    std::string out;
    char escaped[5];
    for (const char c : bytes) {
        std::snprintf(escaped, sizeof escaped, "\\x%02x", static_cast<unsigned char>(c));
        out += escaped;
    }
    return out;
}

void require_strace()
{
    if (::geteuid() != 0) {
        cr_skip_test("needs root to trace vaultctl with strace");
    }
    const CommandResult r = run_command({"strace", "-f", "-qq", "-o", "/dev/null", "-e", "trace=none", "--", "true"});
    if (r.exit_code != 0) {
        cr_skip_test("strace cannot trace here (exit %d): %s", r.exit_code, r.err.c_str());
    }
}

// `vaultctl secret VERB NAME` with `value` on stdin, under strace recording every write: what
// vaultctl wrote into the value's pipe (and anywhere else) is in the trace.
CommandResult traced_secret_write(const std::string& verb, const std::string& name, const std::string& value,
                                  const std::string& trace)
{
    return run_command({"strace",
                        "-f",
                        "-qq",
                        "-xx",
                        "-s",
                        "300000",
                        "-e",
                        "trace=write,writev,pwrite64,sendmsg",
                        "-o",
                        trace,
                        "--",
                        env->root() + "/bin/vaultctl",
                        "--bus",
                        env->bus_address(),
                        "secret",
                        verb,
                        name,
                        "--founder-key",
                        env->founder_key(),
                        "--passphrase-fd",
                        "3"},
                       {.stdin_data = value, .passphrase = kPassphrase, .as_uid = std::nullopt});
}

}  // namespace

TestSuite(founder_channel, .init = start_env_with_founder, .fini = stop_env, .timeout = 120);

Test(founder_channel, status_shows_the_transport_key_that_init_pinned_next_to_the_founder_key)
{
    const auto founder = env->load_founder();
    cli::VaultClient client(env->bus_address());
    const cli::TransportPublicKey shown = client.transport_key();
    cr_expect(cli::load_transport_pin(env->founder_key(), founder) == shown, "init pinned another key");
    struct stat st {};
    cr_assert_eq(::stat(cli::transport_pin_path(env->founder_key()).c_str(), &st), 0);
    cr_expect_eq(st.st_mode & 07777, 0600u);
    const auto status = env->vaultctl({"status", "--json"});
    cr_expect(status.out.find("\"transport_key\": \"" + bytes::to_hex(shown) + "\"") != std::string::npos, "%s",
              status.out.c_str());
}

Test(founder_channel, a_value_sent_in_the_clear_is_refused_and_never_stored)
{
    const auto founder = env->load_founder();
    cli::VaultClient client(env->bus_address());
    const std::string canary = random_canary();
    const UniqueFd clear(pipe_holding(canary));
    cr_expect_eq(put_with_fd(client, founder, "clear", clear.get()), kInvalid);
    cr_expect_eq(client.list_secrets(founder).size(), 0u);
    cr_expect(read_tree(env->state_dir()).find(canary) == std::string::npos, "the canary reached the state folder");
    cr_expect(env->daemon_log().find(canary) == std::string::npos, "the canary reached the daemon's log");
}

Test(founder_channel, a_value_sealed_to_another_key_is_refused)
{
    const auto founder = env->load_founder();
    cli::VaultClient client(env->bus_address());
    const UniqueFd foreign(sealed_pipe_holding(another_transport_key(), random_canary()));
    cr_expect_eq(put_with_fd(client, founder, "foreign", foreign.get()), kInvalid);
    // The same value sealed to the daemon's key is taken: the refusal was the key's.
    const UniqueFd sealed(sealed_pipe_holding(client.transport_key(), random_canary()));
    cr_expect_eq(put_with_fd(client, founder, "sealed", sealed.get()), 0);
    const auto listed = client.list_secrets(founder);
    cr_assert_eq(listed.size(), 1u);
    cr_expect_eq(listed[0].name, "sealed");
}

Test(founder_channel, put_and_rotate_through_vaultctl_write_only_ciphertext_into_the_pipe)
{
    require_strace();
    const std::string first = random_canary();
    const std::string second = random_canary();
    const std::string trace_put = env->root() + "/put.trace";
    const std::string trace_rotate = env->root() + "/rotate.trace";

    const CommandResult put = traced_secret_write("put", "traced", first, trace_put);
    cr_assert_eq(put.exit_code, 0, "put: %s", put.err.c_str());
    const CommandResult rotate = traced_secret_write("rotate", "traced", second, trace_rotate);
    cr_assert_eq(rotate.exit_code, 0, "rotate: %s", rotate.err.c_str());

    for (const auto& [trace, canary] : {std::pair{trace_put, first}, std::pair{trace_rotate, second}}) {
        const std::string written = read_text(trace);
        // The trace saw the box go into the pipe: one write of the value's size plus the seal.
        const std::string box_write = "= " + std::to_string(canary.size() + crypto_box_SEALBYTES) + "\n";
        cr_expect(written.find(box_write) != std::string::npos, "no write of the sealed box in %s", trace.c_str());
        cr_expect(written.find(strace_escaped(canary)) == std::string::npos, "the value went out in the clear");
        cr_expect(written.find(canary) == std::string::npos, "the value went out in the clear");
    }
    cli::VaultClient client(env->bus_address());
    const auto listed = client.list_secrets(env->load_founder());
    cr_assert_eq(listed.size(), 1u);
    cr_expect_eq(listed[0].version, 2u);
}

Test(founder_channel, vaultctl_sends_nothing_when_the_daemon_shows_another_transport_key_than_the_pinned_one)
{
    const auto founder = env->load_founder();
    // As if another daemon answered on this bus: the pin (genuinely signed) names another key.
    cli::write_transport_pin(env->founder_key(), founder, another_transport_key());
    const std::string canary = random_canary();
    const CommandResult r = founder_cmd({"secret", "put", "pinned"}, canary);
    cr_expect_eq(r.exit_code, kIntegrity, "%s", r.err.c_str());
    cr_expect(r.err.find("not the pinned") != std::string::npos, "%s", r.err.c_str());
    cli::VaultClient client(env->bus_address());
    cr_expect_eq(client.list_secrets(founder).size(), 0u);

    // A pin someone swapped without the founder key is refused too.
    cli::write_transport_pin(env->founder_key(), stranger_key(), client.transport_key());
    const CommandResult swapped = founder_cmd({"secret", "put", "pinned"}, canary);
    cr_expect_neq(swapped.exit_code, 0);
    cr_expect(swapped.err.find("not signed by this founder key") != std::string::npos, "%s", swapped.err.c_str());
    cr_expect_eq(client.list_secrets(founder).size(), 0u);

    // Pinned again (what the founder does once the key is checked): the put goes through.
    const CommandResult repin =
        env->vaultctl({"pin-transport-key", "--founder-key", env->founder_key(), "--passphrase-fd", "3"},
                      {.stdin_data = "", .passphrase = kPassphrase, .as_uid = std::nullopt});
    cr_assert_eq(repin.exit_code, 0, "%s", repin.err.c_str());
    cr_expect_eq(founder_cmd({"secret", "put", "pinned"}, canary).exit_code, 0);
}
