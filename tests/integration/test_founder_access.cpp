// Founder methods against the real daemon: who may call them, and which proofs are refused.
#include <nlohmann/json.hpp>
#include <sodium.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <sstream>
#include <thread>
#include <vector>

#include "common/bus_contract.hpp"
#include "common/vault_error.hpp"
#include "tests/support/founder_calls.hpp"
#include "tests/support/harness.hpp"

using namespace codexvault;
using namespace codexvault::test;

namespace {
const int kDenied = error_info(ErrorCode::PermissionDenied).exit_code;
const int kExpired = error_info(ErrorCode::Expired).exit_code;
const std::string kSecret = "access-test";

// `count` GetNonce calls on one connection, up to 32 in flight at a time (the daemon answers a
// batch per commit round, so the flood is over in a few seconds, well inside a proof's lifetime).
// Returns how many were answered with a nonce.
int mint_nonces(cli::VaultClient& client, int count)
{
    struct Progress {
        int answered = 0;
        int nonces = 0;
    } progress;
    const auto on_reply = [](sd_bus_message* reply, void* userdata, sd_bus_error* /*error*/) -> int {
        auto* p = static_cast<Progress*>(userdata);
        ++p->answered;
        if (!sd_bus_message_is_method_error(reply, nullptr)) {
            ++p->nonces;
        }
        return 0;
    };
    int sent = 0;
    while (progress.answered < count) {
        while (sent < count && sent - progress.answered < 32) {
            cr_assert_geq(sd_bus_call_method_async(client.bus(), nullptr, bus::kBusName, bus::kObjectPath,
                                                   bus::kInterface, bus::method::kGetNonce, on_reply, &progress, ""),
                          0);
            ++sent;
        }
        const int r = sd_bus_process(client.bus(), nullptr);
        cr_assert_geq(r, 0);
        if (r == 0) {
            cr_assert_geq(sd_bus_wait(client.bus(), 30'000'000), 0);
        }
    }
    return progress.nonces;
}

void require_root()
{
    if (::geteuid() != 0) {
        cr_skip_test("needs root to run callers as uid 65534");
    }
}

}  // namespace

TestSuite(founder_access, .init = start_env, .fini = stop_env, .timeout = 120);

Test(founder_access, every_founder_method_is_denied_to_an_unprivileged_uid_even_with_a_valid_proof)
{
    require_root();
    env->init_founder();
    const auto founder = env->load_founder();
    cli::VaultClient client(env->bus_address());
    // The secret exists so Rotate/Delete would succeed for the founder.
    call_method(client, "PutSecret", make_proof(client, founder, "PutSecret", {kSecret}), founder.public_key, kSecret);

    for (const auto& method : kMethodCoverage) {
        if (method.is_public) {
            continue;
        }
        // A genuine founder proof, made by root, presented by uid 65534: the uid check must refuse it.
        std::optional<FounderProof> proof;
        if (std::string(method.name) != "GetNonce") {
            proof =
                make_proof(client, founder, method.name, signed_arguments(method.name, founder.public_key, kSecret));
        }
        const int code = run_as(kNobody, [&] {
            cli::VaultClient as_nobody(env->bus_address());
            return exit_code_of([&] { call_method(as_nobody, method.name, proof, founder.public_key, kSecret); });
        });
        cr_expect_eq(code, kDenied, "%s as uid 65534: expected PermissionDenied (exit %d), got %d", method.name,
                     kDenied, code);
    }
    // Nothing changed: the secret is still there at version 1.
    const auto listed = client.list_secrets(founder);
    cr_assert_eq(listed.size(), 1u);
    cr_expect_eq(listed[0].version, 1u);
}

Test(founder_access, vaultctl_as_unprivileged_user_is_denied)
{
    require_root();
    env->init_founder();
    const auto result =
        env->vaultctl({"secret", "ls"}, {.stdin_data = "", .passphrase = kPassphrase, .as_uid = kNobody});
    // uid 65534 cannot read root's key file, or, given one, is refused by the daemon.
    cr_expect_neq(result.exit_code, 0);
    const int code = run_as(kNobody, [&] {
        cli::VaultClient as_nobody(env->bus_address());
        return exit_code_of([&] { (void)as_nobody.get_nonce(); });
    });
    cr_expect_eq(code, kDenied);
}

Test(founder_access, enroll_is_denied_to_an_unprivileged_uid_before_init)
{
    require_root();
    const int code = run_as(kNobody, [&] {
        cli::VaultClient as_nobody(env->bus_address());
        const auto key = stranger_key();
        return exit_code_of([&] { as_nobody.enroll(key); });
    });
    cr_expect_eq(code, kDenied);
    const auto status = env->vaultctl({"status"});
    cr_expect(status.out.find("state: uninitialized") != std::string::npos, "%s", status.out.c_str());
}

Test(founder_access, founder_methods_as_root_without_the_founder_key_are_denied)
{
    env->init_founder();
    const auto founder = env->load_founder();
    const auto stranger = stranger_key();
    cli::VaultClient client(env->bus_address());
    call_method(client, "PutSecret", make_proof(client, founder, "PutSecret", {kSecret}), founder.public_key, kSecret);

    for (const auto& method : kMethodCoverage) {
        if (method.is_public || std::string(method.name) == "GetNonce") {
            continue;  // GetNonce is open to the founder uid by design: a nonce grants nothing alone
        }
        const auto arguments = signed_arguments(method.name, stranger.public_key, kSecret);
        // Unsigned: no proof at all.
        cr_expect_eq(
            exit_code_of([&] { call_method(client, method.name, std::nullopt, stranger.public_key, kSecret); }),
            kDenied, "%s unsigned", method.name);
        // Signed by a key that is not the founder's.
        const auto wrong = make_proof(client, stranger, method.name, arguments);
        cr_expect_eq(exit_code_of([&] { call_method(client, method.name, wrong, stranger.public_key, kSecret); }),
                     kDenied, "%s signed by another key", method.name);
        // The founder's signature, but over different arguments than the ones sent.
        if (!arguments.empty() && std::string(method.name) != "Enroll") {
            const auto other = make_proof(client, founder, method.name, {"another-secret"});
            cr_expect_eq(exit_code_of([&] { call_method(client, method.name, other, founder.public_key, kSecret); }),
                         kDenied, "%s signed for other arguments", method.name);
        }
    }
    cr_expect_eq(client.list_secrets(founder).size(), 1u);
}

Test(founder_access, a_replayed_signed_call_is_denied)
{
    env->init_founder();
    const auto founder = env->load_founder();
    cli::VaultClient client(env->bus_address());
    const auto proof = make_proof(client, founder, "PutSecret", {kSecret});
    call_method(client, "PutSecret", proof, founder.public_key, kSecret);
    call_method(client, "DeleteSecret", make_proof(client, founder, "DeleteSecret", {kSecret}), founder.public_key,
                kSecret);
    // The same signed call again, byte for byte: the nonce was consumed.
    cr_expect_eq(exit_code_of([&] { call_method(client, "PutSecret", proof, founder.public_key, kSecret); }), kDenied);
    cr_expect_eq(client.list_secrets(founder).size(), 0u);
}

Test(founder_access, expired_and_overlong_proofs_are_denied)
{
    env->init_founder();
    const auto founder = env->load_founder();
    cli::VaultClient client(env->bus_address());
    const std::vector<std::string> arguments{kSecret};
    const auto expired = make_proof(client, founder, "PutSecret", arguments, -1'000'000);
    cr_expect_eq(exit_code_of([&] { call_method(client, "PutSecret", expired, founder.public_key, kSecret); }),
                 kExpired);
    const auto too_far = make_proof(client, founder, "PutSecret", arguments, 120'000'000);
    cr_expect_eq(exit_code_of([&] { call_method(client, "PutSecret", too_far, founder.public_key, kSecret); }),
                 kDenied);
    cr_expect_eq(client.list_secrets(founder).size(), 0u);
}

Test(founder_access, a_second_enrollment_is_denied)
{
    env->init_founder();
    cli::VaultClient client(env->bus_address());
    const auto stranger = stranger_key();
    cr_expect_eq(exit_code_of([&] { client.enroll(stranger); }), kDenied);
    // The original founder still works.
    const auto founder = env->load_founder();
    cr_expect_eq(client.list_secrets(founder).size(), 0u);
}

// Issue 10, item 10: a caller of the founder uid without the founder key (root) mints nonces. Each
// nonce belongs to the connection that asked for it, and a connection keeps at most a few, so the
// flood only replaces the attacker's own: the founder's nonce, taken before the flood, still works.
Test(founder_access, a_flood_of_nonces_from_root_without_the_key_does_not_crowd_out_the_founders_nonce)
{
    env->init_founder();
    const auto founder = env->load_founder();
    cli::VaultClient client(env->bus_address());
    const auto proof = make_proof(client, founder, "PutSecret", {kSecret});
    cli::VaultClient attacker(env->bus_address());
    cr_assert_eq(mint_nonces(attacker, 1000), 1000, "the attacker's GetNonce calls were not all answered");
    cr_expect_eq(exit_code_of([&] { call_method(client, "PutSecret", proof, founder.public_key, kSecret); }), 0,
                 "the founder's call failed after the flood");
    cr_expect_eq(client.list_secrets(founder).size(), 1u);
}

// Issue 10, item 10, the other half: each mint wrote two unfolded records, so a nonce flood grew
// the log without bound. GetNonce records are informational and fold: 1,000 mints cost a handful
// of records, and the folded repeats still account for every one.
Test(founder_access, a_flood_of_nonces_writes_a_bounded_number_of_records_that_count_every_mint)
{
    env->init_founder();
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));  // set-up's folds written
    const auto tail = [] {
        const auto r = env->vaultctl({"audit", "tail", "--dir", env->state_dir() + "/audit", "--json", "-n", "100000",
                                      "--action", "founder.nonce"});
        cr_assert_eq(r.exit_code, 0, "audit tail: %s", r.err.c_str());
        std::vector<nlohmann::json> records;
        std::istringstream in(r.out);
        for (std::string line; std::getline(in, line);) {
            if (!line.empty()) {
                records.push_back(nlohmann::json::parse(line));
            }
        }
        return records;
    };
    const std::size_t before = tail().size();
    constexpr int kMints = 1000;
    {
        cli::VaultClient attacker(env->bus_address());
        cr_assert_eq(mint_nonces(attacker, kMints), kMints);
    }
    std::size_t added = 0;
    std::uint64_t counted = 0;
    for (int attempt = 0; attempt < 40 && counted < kMints; ++attempt) {
        std::this_thread::sleep_for(std::chrono::milliseconds(250));  // the window's folded repeats
        const auto records = tail();
        added = records.size() - before;
        counted = 0;
        for (std::size_t i = before; i < records.size(); ++i) {
            counted += records[i]["event"] == "folded-repeats" ? records[i].value("repeat_count", std::uint64_t{0}) : 1;
        }
    }
    cr_expect_lt(added, 100U, "%zu records for %d nonces", added, kMints);
    cr_expect_eq(counted, static_cast<std::uint64_t>(kMints), "the records account for %llu of %d mints",
                 static_cast<unsigned long long>(counted), kMints);
}

// A nonce seen on the bus (a monitor reads every GetNonce reply) is no use on another connection,
// and presenting it there does not spend it: the connection that asked can still use it.
Test(founder_access, a_nonce_is_refused_on_any_connection_but_the_one_that_asked_for_it)
{
    env->init_founder();
    const auto founder = env->load_founder();
    cli::VaultClient asked(env->bus_address());
    cli::VaultClient other(env->bus_address());
    const auto proof = make_proof(asked, founder, "PutSecret", {kSecret});
    cr_expect_eq(exit_code_of([&] { call_method(other, "PutSecret", proof, founder.public_key, kSecret); }), kDenied,
                 "another connection spent the nonce");
    cr_expect_eq(other.list_secrets(founder).size(), 0u);
    cr_expect_eq(exit_code_of([&] { call_method(asked, "PutSecret", proof, founder.public_key, kSecret); }), 0,
                 "the asking connection lost its nonce");
    cr_expect_eq(asked.list_secrets(founder).size(), 1u);
}
