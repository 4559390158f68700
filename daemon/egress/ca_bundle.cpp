#include "daemon/egress/ca_bundle.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "lib/fileio/unique_fd.hpp"

namespace codexvault::egress {

policy::Result<std::string> read_ca_bundle(const std::string& path)
{
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY));
    if (!fd.valid()) {
        return policy::make_error("ca_file " + path + " cannot be opened: " + std::strerror(errno));
    }
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) {
        return policy::make_error("ca_file " + path + " cannot be examined: " + std::strerror(errno));
    }
    if (!S_ISREG(st.st_mode)) {
        return policy::make_error("ca_file " + path + " is not a regular file");
    }
    if (st.st_uid != 0 || (st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
        return policy::make_error("ca_file " + path + " must be owned by root and not writable by group or others");
    }
    if (static_cast<std::uint64_t>(st.st_size) > kMaxCaBundleBytes) {
        return policy::make_error("ca_file " + path + " is larger than 1 MiB");
    }
    std::string bytes(static_cast<std::size_t>(st.st_size), '\0');
    std::size_t done = 0;
    while (done < bytes.size()) {
        const ssize_t n = ::read(fd.get(), bytes.data() + done, bytes.size() - done);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return policy::make_error("ca_file " + path + " could not be read");
        }
        done += static_cast<std::size_t>(n);
    }
    return bytes;
}

}  // namespace codexvault::egress
