#include "tests/support/founder_calls.hpp"

#include <fcntl.h>
#include <sodium.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/bytes.hpp"
#include "lib/fileio/unique_fd.hpp"

namespace codexvault::test {

std::string hex(const std::array<std::uint8_t, 32>& key)
{
    return bytes::to_hex(key);
}

std::vector<std::string> signed_arguments(const std::string& method, const std::array<std::uint8_t, 32>& enroll_key,
                                          const std::string& secret_name)
{
    if (method == "Enroll") {
        return {hex(enroll_key)};
    }
    if (method == "PutSecret" || method == "RotateSecret" || method == "DeleteSecret" || method == "RevokeGrant" ||
        method == "Approve" || method == "Deny") {
        return {secret_name};
    }
    if (method == "Lock" || method == "Unlock" || method == "Incident") {
        return {"test"};
    }
    if (method == "Explain") {
        return {"audit:read", "uid=0"};
    }
    if (method == "IssueGrant") {
        return {"uid=0", "audit:read", "1h", "0", "", "none", ""};
    }
    return {};
}

FounderProof make_proof(cli::VaultClient& client, const cli::FounderKeyPair& key, const std::string& method,
                        const std::vector<std::string>& arguments, std::int64_t expires_in_usec)
{
    struct timespec ts {};
    ::clock_gettime(CLOCK_REALTIME, &ts);
    const auto now = static_cast<std::int64_t>(ts.tv_sec) * 1000000 + ts.tv_nsec / 1000;
    FounderProof proof;
    proof.nonce = client.get_nonce();
    proof.expires_realtime_usec = static_cast<std::uint64_t>(now + expires_in_usec);
    proof.signature =
        cli::sign_detached(key, founder_signing_payload(method, arguments, proof.nonce, proof.expires_realtime_usec));
    return proof;
}

cli::FounderKeyPair stranger_key()
{
    cli::FounderKeyPair key;
    crypto_sign_keypair(key.public_key.data(), key.secret_key.data());
    return key;
}

int pipe_holding(const std::string& value)
{
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) {
        return -1;
    }
    UniqueFd write_end(fds[1]);
    if (!value.empty() && ::write(write_end.get(), value.data(), value.size()) != static_cast<ssize_t>(value.size())) {
        UniqueFd(fds[0]).reset();
        return -1;
    }
    return fds[0];
}

int sealed_pipe_holding(const cli::TransportPublicKey& transport_key, const std::string& value)
{
    const auto* bytes = reinterpret_cast<const std::uint8_t*>(value.data());
    return cli::sealed_value_pipe(transport_key, std::span(bytes, value.size())).release();
}

void call_method(cli::VaultClient& client, const std::string& method, const std::optional<FounderProof>& proof,
                 const std::array<std::uint8_t, 32>& enroll_key, const std::string& secret_name, int value_fd)
{
    UniqueFd own_value;
    if ((method == "PutSecret" || method == "RotateSecret") && value_fd < 0) {
        own_value.reset(sealed_pipe_holding(client.transport_key(), "value"));
    }
    const FounderProof empty{};
    const FounderProof& p = proof ? *proof : empty;
    client.call(method.c_str(), [&](sd_bus_message* m) {
        if (method == "Enroll") {
            cli::check_local(sd_bus_message_append_array(m, 'y', enroll_key.data(), enroll_key.size()), "key");
            cli::append_proof(m, p);
        } else if (method == "PutSecret" || method == "RotateSecret") {
            cli::check_local(
                sd_bus_message_append(m, "sh", secret_name.c_str(), value_fd < 0 ? own_value.get() : value_fd), "args");
            cli::append_proof(m, p);
        } else if (method == "DeleteSecret") {
            cli::check_local(sd_bus_message_append(m, "s", secret_name.c_str()), "args");
            cli::append_proof(m, p);
        } else if (method == "ListSecrets" || method == "ReloadPolicy" || method == "ListGrants" ||
                   method == "RevokeAllGrants" || method == "ListApprovals") {
            cli::append_proof(m, p);
        } else if (method == "RevokeGrant" || method == "Approve" || method == "Deny") {
            cli::check_local(sd_bus_message_append(m, "s", secret_name.c_str()), "args");
            cli::append_proof(m, p);
        } else if (method == "Lock" || method == "Unlock" || method == "Incident") {
            cli::check_local(sd_bus_message_append(m, "s", "test"), "args");
            cli::append_proof(m, p);
        } else if (method == "AuditTail") {
            cli::check_local(sd_bus_message_append(m, "a{sv}", 0), "args");
            cli::append_proof(m, p);
        } else if (method == "Inject") {
            int pair[2] = {-1, -1};
            cli::check_local(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) == 0 ? 0 : -errno,
                             "socketpair");
            const UniqueFd ours(pair[0]);
            const UniqueFd theirs(pair[1]);
            cli::check_local(sd_bus_message_append(m, "sa{sv}h", secret_name.c_str(), 0, theirs.get()), "args");
        } else if (method == "Check" || method == "Use") {
            cli::check_local(sd_bus_message_append(m, "sa{sv}", "audit:read", 0), "args");
        } else if (method == "Request") {
            // A provider request without any grant: refused before anything is sent.
            cli::check_local(sd_bus_message_append(m, "sssa(ss)ah", "test", "GET", "/v1/models", 0, 0), "args");
        } else if (method == "RequestOutcome") {
            cli::check_local(sd_bus_message_append(m, "t", std::uint64_t{1}), "args");
        } else if (method == "Explain") {
            cli::check_local(sd_bus_message_append(m, "sa{sv}", "audit:read", 1, "uid", "u", 0U), "args");
            cli::append_proof(m, p);
        } else if (method == "Ingest") {
            UniqueFd directory(::open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
            cli::check_local(sd_bus_message_append(m, "ha{sv}", directory.get(), 0), "args");
            cli::append_proof(m, p);
        } else if (method == "IssueGrant") {
            cli::check_local(
                sd_bus_message_append(m, "ssstssass", "uid=0", "audit:read", "1h", std::uint64_t{0}, "", "none", 0, ""),
                "args");
            cli::append_proof(m, p);
        }
    });
}

}  // namespace codexvault::test
