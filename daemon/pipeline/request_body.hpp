// The body of a Request, made the daemon's own before the call is authorized: an approval with
// approval = "each" is bound to the SHA-256 of the body, so the bytes hashed must be the bytes
// sent. A caller could rewrite a file or an unsealed memfd it still holds between the hash and
// the upload, so the daemon copies the body into a memfd of its own (hashing as it copies); a
// memfd the caller sealed against every change (F_SEAL_WRITE, F_SEAL_GROW, F_SEAL_SHRINK) is
// hashed in place and used as it is.
//
// The daemon never waits on the caller's descriptor (value_input.hpp: the same kinds are
// accepted): a pipe must hold the whole body with its write end closed when the call is made;
// a regular file must be on a local disk or memory file system. Sockets, directories, devices
// are refused (InvalidArgument).
#pragma once

#include <cstdint>
#include <string>

#include "lib/fileio/unique_fd.hpp"

namespace codexvault::daemon {

// Largest body a Request takes, whatever the provider allows: the copy and the hash run on the
// event loop (a provider's max_request_bytes lowers it; the egress engine checks that one).
inline constexpr std::uint64_t kMaxRequestBodyBytes = 64ULL * 1024 * 1024;

struct RequestBody {
    UniqueFd fd;             // a memfd (or sealed caller memfd), read from offset 0; invalid: no body
    std::uint64_t size = 0;  // bytes
    std::string sha256_hex;  // of the body; of the empty string when there is none
};

// Throws VaultError(InvalidArgument) for a refused descriptor, a pipe still open for writing or
// a body over kMaxRequestBodyBytes; std::system_error when the daemon's own memfd fails.
RequestBody take_request_body(int fd);
// The empty body.
RequestBody no_request_body();

}  // namespace codexvault::daemon
