// Secrets, founder only: put, rotate, delete, list metadata. There is deliberately no get:
// no reply of any method carries a secret value.
#include "common/limits.hpp"
#include "common/vault_error.hpp"
#include "daemon/monotonic_clock.hpp"
#include "daemon/pipeline/message_io.hpp"
#include "daemon/pipeline/methods.hpp"
#include "daemon/pipeline/value_input.hpp"
#include "daemon/vault_service.hpp"

namespace codexvault::daemon::methods {
namespace {

std::string read_secret_name(sd_bus_message* message)
{
    std::string name = io::read_string(message);
    if (!limits::is_valid_secret_name(name)) {
        // The name is echoed only when it is short and printable, so the error cannot be
        // used to smuggle control characters into a terminal or log.
        throw VaultError(
            ErrorCode::InvalidArgument,
            "invalid secret name: use 1-64 characters from [A-Za-z0-9._-], starting with a letter or digit");
    }
    return name;
}

PreparedCall decode_value_write(sd_bus_message* message, bool rotate)
{
    PreparedCall call;
    std::string name = read_secret_name(message);
    auto fd = std::make_shared<UniqueFd>(io::read_fd(message));
    call.proof = io::read_founder_proof(message);
    call.signed_arguments = {name};
    call.object = name;
    // The descriptor is read only here, after authorization: an unauthorized caller cannot
    // make the daemon read from a descriptor of its choosing. It holds the value sealed to the
    // daemon's transport key (value_input.hpp), never the value itself.
    call.act = [name, fd, rotate](RequestContext& context, sd_bus_message* reply) {
        const store::SecureBuffer value = read_sealed_value(fd->get(), context.vault.transport_key());
        fd->reset();
        auto& secrets = context.vault.secrets();
        const auto now = clock::realtime_usec();
        const auto metadata = rotate ? secrets.rotate(name, value.span(), now) : secrets.put(name, value.span(), now);
        io::check(sd_bus_message_append(reply, "u", metadata.version), "append version");
    };
    return call;
}

}  // namespace

PreparedCall decode_put_secret(sd_bus_message* message)
{
    return decode_value_write(message, false);
}

PreparedCall decode_rotate_secret(sd_bus_message* message)
{
    return decode_value_write(message, true);
}

PreparedCall decode_delete_secret(sd_bus_message* message)
{
    PreparedCall call;
    std::string name = read_secret_name(message);
    call.proof = io::read_founder_proof(message);
    call.signed_arguments = {name};
    call.object = name;
    call.act = [name](RequestContext& context, sd_bus_message* /*reply*/) {
        context.vault.secrets().remove(name);
    };
    return call;
}

PreparedCall decode_list_secrets(sd_bus_message* message)
{
    PreparedCall call;
    call.proof = io::read_founder_proof(message);
    call.act = [](RequestContext& context, sd_bus_message* reply) {
        io::check(sd_bus_message_open_container(reply, 'a', "(suttbb)"), "open list");
        for (const auto& entry : context.vault.secrets().list()) {
            io::check(sd_bus_message_append(reply, "(suttbb)", entry.name.c_str(), entry.version, entry.created_usec,
                                            entry.rotated_usec, static_cast<int>(entry.integrity_ok),
                                            static_cast<int>(entry.rotation_required)),
                      "append secret metadata");
        }
        io::check(sd_bus_message_close_container(reply), "close list");
    };
    return call;
}

}  // namespace codexvault::daemon::methods
