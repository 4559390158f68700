// The authenticated state files on disk (format in sealed_state.hpp): read strictly, written
// atomically (temp file, fsync, rename, fsync of the folder), mode 0600.
#pragma once

#include <cstddef>
#include <span>

#include "daemon/store/sealed_state.hpp"

namespace codexvault::store {

struct StateFileRead {
    bool present = false;  // false: no such file in the state folder
    DecodedState decoded;  // meaningful when present
};

// A symlink, a non-regular file, a file not private to the daemon's user, or one over the kind's
// size limit is reported as Malformed (never followed or trusted). I/O errors other than ENOENT
// throw std::system_error naming the file.
StateFileRead read_state_file(int state_dir_fd, StateKind kind, std::span<const std::uint8_t> key);

// Throws std::system_error (I/O) or std::invalid_argument (see encode_sealed_state).
void write_state_file(int state_dir_fd, const SealedState& state, std::span<const std::uint8_t> key);

// Largest file accepted per kind.
std::size_t max_state_file_bytes(StateKind kind) noexcept;

}  // namespace codexvault::store
