// The descriptor an injection hands to its recipient: a memfd_secret holding the value (its pages
// are removed from the kernel's direct map, so neither the kernel nor another process can read
// them without mapping the descriptor), or, only where the kernel lacks secretmem, a sealed memfd
// (recorded as the weaker kind: its pages are ordinary page cache).
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

#include "lib/fileio/unique_fd.hpp"

namespace codexvault::inject {

enum class DescriptorKind { SecretMemory, SealedMemfd };
std::string_view to_string(DescriptorKind kind) noexcept;  // "memfd_secret", "sealed memfd"

struct SecretDescriptor {
    UniqueFd fd;
    DescriptorKind kind = DescriptorKind::SecretMemory;
    std::uint64_t dev = 0;  // st_dev, st_ino: what the monitor tracks
    std::uint64_t ino = 0;
    std::uint64_t size = 0;
};

// Creates the descriptor and writes `value` into it (an empty value is refused: a recipient
// could not map it). Throws std::system_error naming the step.
SecretDescriptor make_secret_descriptor(std::span<const std::uint8_t> value);

}  // namespace codexvault::inject
