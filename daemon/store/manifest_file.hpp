// The store manifest on disk: reading it strictly and writing it atomically (temp file, fsync,
// rename, fsync of the folder). The format and its checks are in manifest.hpp.
#pragma once

#include <cstdint>
#include <span>

#include "daemon/store/manifest.hpp"

namespace codexvault::store {

struct ManifestFile {
    bool present = false;     // false: no file named kManifestFileName in the folder
    DecodedManifest decoded;  // meaningful when present
};

// A symlink, a non-regular file, a file others can read or write, or one over
// kMaxManifestBytes is reported as Malformed (never followed or trusted). I/O errors other than
// ENOENT throw std::system_error naming the manifest.
ManifestFile read_manifest_file(int dir_fd, std::span<const std::uint8_t> key);

// Throws std::system_error (I/O) or std::invalid_argument (a manifest we would refuse to read).
void write_manifest_file(int dir_fd, const Manifest& manifest, std::span<const std::uint8_t> key);

}  // namespace codexvault::store
