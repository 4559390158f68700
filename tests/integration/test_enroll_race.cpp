// Issue 10, item 7: two Enroll calls authorized in the same commit round. Both are pre-signed
// (each with its own key, as proof of possession requires), then sent back to back without
// waiting, so the daemon authorizes both while the vault is still uninitialized and applies them
// in one round. The first applied must win; the second must be refused and its denial recorded;
// Status must name the winner's key id, so a founder whose `init` lost can tell.
#include <nlohmann/json.hpp>
#include <sodium.h>
#include <systemd/sd-bus.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include <cstring>
#include <string>
#include <vector>

#include "cli/cli_support.hpp"
#include "cli/founder_key.hpp"
#include "cli/vault_client.hpp"
#include "common/bus_contract.hpp"
#include "common/bytes.hpp"
#include "common/vault_error.hpp"
#include "tests/support/harness.hpp"

using namespace codexvault;
using namespace codexvault::test;

namespace {

struct Reply {
    bool done = false;
    bool ok = false;
    std::string error;
};

int on_reply(sd_bus_message* m, void* userdata, sd_bus_error* /*error*/)
{
    auto* reply = static_cast<Reply*>(userdata);
    reply->done = true;
    const sd_bus_error* e = sd_bus_message_get_error(m);
    reply->ok = e == nullptr;
    if (e != nullptr && e->name != nullptr) {
        reply->error = e->name;
    }
    return 0;
}

cli::FounderKeyPair new_key(const std::string& name)
{
    const std::string passphrase = kPassphrase;
    return cli::create_founder_key_file(
        env->root() + "/" + name + ".key",
        std::span(reinterpret_cast<const std::uint8_t*>(passphrase.data()), passphrase.size()));
}

// An Enroll call for `key`, signed with `key`, ready to send.
bus::MessagePtr enroll_call(cli::VaultClient& client, const cli::FounderKeyPair& key)
{
    const FounderProof proof = client.prove(key, bus::method::kEnroll, {bytes::to_hex(key.public_key)});
    sd_bus_message* raw = nullptr;
    cr_assert_geq(sd_bus_message_new_method_call(client.bus(), &raw, bus::kBusName, bus::kObjectPath, bus::kInterface,
                                                 bus::method::kEnroll),
                  0);
    bus::MessagePtr message(raw);
    cr_assert_geq(sd_bus_message_append_array(message.get(), 'y', key.public_key.data(), key.public_key.size()), 0);
    cli::append_proof(message.get(), proof);
    return message;
}

}  // namespace

TestSuite(enroll_race, .init = start_env, .fini = stop_env, .timeout = 60);

Test(enroll_race, two_enrolments_in_one_commit_round_enrol_only_the_first_and_status_names_it)
{
    if (::geteuid() != 0) {
        cr_skip_test("needs root: the founder uid of the test daemon is the uid running it");
    }
    cli::VaultClient client(env->bus_address());
    const cli::FounderKeyPair first = new_key("first");
    const cli::FounderKeyPair second = new_key("second");
    bus::MessagePtr call_first = enroll_call(client, first);
    bus::MessagePtr call_second = enroll_call(client, second);

    // Both on the wire before the daemon answers either: one read of the socket, one round.
    Reply replies[2];
    sd_bus_slot* slots[2] = {nullptr, nullptr};
    cr_assert_geq(sd_bus_call_async(client.bus(), &slots[0], call_first.get(), on_reply, &replies[0], 0), 0);
    cr_assert_geq(sd_bus_call_async(client.bus(), &slots[1], call_second.get(), on_reply, &replies[1], 0), 0);
    cr_assert_geq(sd_bus_flush(client.bus()), 0);
    for (int i = 0; i < 400 && !(replies[0].done && replies[1].done); ++i) {
        while (sd_bus_process(client.bus(), nullptr) > 0) {
        }
        if (!(replies[0].done && replies[1].done)) {
            (void)sd_bus_wait(client.bus(), 50'000);
        }
    }
    sd_bus_slot_unref(slots[0]);
    sd_bus_slot_unref(slots[1]);
    cr_assert(replies[0].done && replies[1].done, "both Enroll calls must be answered");

    const int succeeded = (replies[0].ok ? 1 : 0) + (replies[1].ok ? 1 : 0);
    cr_assert_eq(succeeded, 1, "BUG: %d of two racing enrolments succeeded (errors: '%s', '%s')", succeeded,
                 replies[0].error.c_str(), replies[1].error.c_str());
    const Reply& loser = replies[0].ok ? replies[1] : replies[0];
    cr_expect_eq(loser.error, std::string(error_info(ErrorCode::PermissionDenied).bus_name), "the loser's error: %s",
                 loser.error.c_str());

    // Status names the key that won, by the id `vaultctl init` prints for its own key.
    const cli::FounderKeyPair& winner = replies[0].ok ? first : second;
    const auto status = env->vaultctl({"status", "--json"});
    cr_assert_eq(status.exit_code, 0, "%s", status.err.c_str());
    const auto s = nlohmann::json::parse(status.out);
    cr_expect_eq(s.value("founder_key_id", ""), cli::founder_key_id(winner.public_key), "status: %s",
                 status.out.c_str());
    cr_expect_eq(s.value("founder_key_id", "").size(), 16U);

    // The winner is the founder: its proofs work; the loser's key is nobody's.
    cr_expect_eq(exit_code_of([&] { (void)client.list_secrets(winner); }), 0);
    const cli::FounderKeyPair& other = replies[0].ok ? second : first;
    cr_expect_eq(exit_code_of([&] { (void)client.list_secrets(other); }),
                 error_info(ErrorCode::PermissionDenied).exit_code);

    // The refusal is an audited denial: an outcome record of founder.enroll, decision deny.
    const auto tail = env->vaultctl({"audit", "tail", "--dir", env->state_dir() + "/audit", "--action",
                                     "founder.enroll", "--decision", "deny", "-n", "10", "--json"});
    cr_assert_eq(tail.exit_code, 0, "audit tail: %s", tail.err.c_str());
    cr_expect(tail.out.find("a founder is already enrolled") != std::string::npos,
              "the refused enrolment must be recorded as a denial: %s", tail.out.c_str());
}

Test(enroll_race, init_prints_the_enrolled_key_id_which_status_shows)
{
    CommandOptions options;
    options.passphrase = kPassphrase;
    const auto init =
        env->vaultctl({"init", "--founder-key", env->founder_key(), "--passphrase-fd", "3", "--json"}, options);
    cr_assert_eq(init.exit_code, 0, "init: %s", init.err.c_str());
    const auto printed = nlohmann::json::parse(init.out);
    const std::string id = printed.value("founder_key_id", "");
    cr_expect_eq(id, cli::founder_key_id(env->load_founder().public_key), "init output: %s", init.out.c_str());
    const auto status = nlohmann::json::parse(env->vaultctl({"status", "--json"}).out);
    cr_expect_eq(status.value("founder_key_id", ""), id);
}
