#include "daemon/store/state_file.hpp"

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

StateFileRead malformed(std::string detail)
{
    StateFileRead file;
    file.present = true;
    file.decoded.fault = StateFault::Malformed;
    file.decoded.detail = std::move(detail);
    return file;
}

}  // namespace

std::size_t max_state_file_bytes(StateKind kind) noexcept
{
    // The grant state holds every runtime grant and approval; a founder key is one line.
    return kind == StateKind::PolicyState ? std::size_t{64} << 20 : std::size_t{4096};
}

StateFileRead read_state_file(int state_dir_fd, StateKind kind, std::span<const std::uint8_t> key)
{
    const std::string name = file_name(kind);
    UniqueFd fd(::openat(state_dir_fd, name.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK));
    if (!fd) {
        if (errno == ENOENT) {
            return {};
        }
        if (errno == ELOOP) {
            return malformed("it is a symbolic link");
        }
        throw std::system_error(errno, std::generic_category(), "cannot open " + name);
    }
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) {
        throw std::system_error(errno, std::generic_category(), "cannot inspect " + name);
    }
    // Written 0600 by the daemon; anything else was put there by someone else, or opened up.
    if (!S_ISREG(st.st_mode)) {
        return malformed("it is not a regular file");
    }
    if (st.st_uid != ::geteuid() || (st.st_mode & 077) != 0) {
        return malformed("it is not private to the daemon's user");
    }
    if (static_cast<std::uint64_t>(st.st_size) > max_state_file_bytes(kind)) {
        return malformed("it is larger than " + std::to_string(max_state_file_bytes(kind)) + " bytes");
    }
    std::string text(static_cast<std::size_t>(st.st_size) + 1, '\0');  // one spare byte: grew meanwhile?
    const std::size_t got = fileio::read_until_eof(fd.get(), text.data(), text.size(), name);
    if (got != static_cast<std::size_t>(st.st_size)) {
        return malformed("it changed size while being read");  // the daemon only ever renames over it
    }
    text.resize(got);
    StateFileRead file;
    file.present = true;
    file.decoded = decode_sealed_state(text, kind, key);
    return file;
}

void write_state_file(int state_dir_fd, const SealedState& state, std::span<const std::uint8_t> key)
{
    const std::string text = encode_sealed_state(state, key);
    fileio::write_file_atomically(state_dir_fd, file_name(state.kind),
                                  std::span(reinterpret_cast<const std::uint8_t*>(text.data()), text.size()), 0600);
}

}  // namespace codexvault::store
