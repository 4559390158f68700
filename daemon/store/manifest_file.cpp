#include "daemon/store/manifest_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <system_error>

#include "lib/fileio/files.hpp"
#include "lib/fileio/unique_fd.hpp"

namespace codexvault::store {
namespace {

ManifestFile malformed(std::string detail)
{
    ManifestFile file;
    file.present = true;
    file.decoded.fault = ManifestFault::Malformed;
    file.decoded.detail = std::move(detail);
    return file;
}

}  // namespace

ManifestFile read_manifest_file(int dir_fd, std::span<const std::uint8_t> key)
{
    UniqueFd fd(::openat(dir_fd, kManifestFileName, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK));
    if (!fd) {
        if (errno == ENOENT) {
            return {};
        }
        if (errno == ELOOP) {
            return malformed("the manifest is a symbolic link");
        }
        throw std::system_error(errno, std::generic_category(), "cannot open the store manifest");
    }
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) {
        throw std::system_error(errno, std::generic_category(), "cannot inspect the store manifest");
    }
    // We write it 0600; anything else was not written by us (or was opened up to others).
    if (!S_ISREG(st.st_mode)) {
        return malformed("the manifest is not a regular file");
    }
    if (st.st_uid != ::geteuid() || (st.st_mode & 077) != 0) {
        return malformed("the manifest is not private to the daemon's user");
    }
    if (static_cast<std::uint64_t>(st.st_size) > kMaxManifestBytes) {
        return malformed("the manifest is larger than " + std::to_string(kMaxManifestBytes) + " bytes");
    }
    std::string text(static_cast<std::size_t>(st.st_size) + 1, '\0');  // one spare byte: grew meanwhile?
    const std::size_t got = fileio::read_until_eof(fd.get(), text.data(), text.size(), "the store manifest");
    if (got != static_cast<std::size_t>(st.st_size)) {
        return malformed("the manifest changed size while being read");  // we only ever rename over it
    }
    text.resize(got);
    ManifestFile file;
    file.present = true;
    file.decoded = decode_manifest(text, key);
    return file;
}

void write_manifest_file(int dir_fd, const Manifest& manifest, std::span<const std::uint8_t> key)
{
    const std::string text = encode_manifest(manifest, key);
    fileio::write_file_atomically(dir_fd, kManifestFileName,
                                  std::span(reinterpret_cast<const std::uint8_t*>(text.data()), text.size()), 0600);
}

}  // namespace codexvault::store
