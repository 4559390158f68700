#include "daemon/egress/body_source.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace codexvault::egress {

policy::Result<BodySource> BodySource::open(UniqueFd fd, std::uint64_t max_bytes)
{
    BodySource source;
    source.max_bytes_ = max_bytes;
    if (!fd.valid()) {
        return source;
    }
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) {
        return policy::make_error(std::string("the body descriptor cannot be examined: ") + std::strerror(errno));
    }
    if (S_ISREG(st.st_mode)) {
        const auto size = static_cast<std::uint64_t>(st.st_size);
        if (size > max_bytes) {
            return policy::make_error("the body is " + std::to_string(size) + " bytes; this provider takes at most " +
                                      std::to_string(max_bytes));
        }
        source.kind_ = Kind::File;
        source.file_size_ = size;
        source.fd_ = std::move(fd);
        return source;
    }
    if (S_ISFIFO(st.st_mode)) {
        const std::string path = "/proc/self/fd/" + std::to_string(fd.get());
        UniqueFd reopened(::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC));
        if (!reopened.valid()) {
            return policy::make_error(std::string("the body pipe cannot be opened for reading: ") +
                                      std::strerror(errno));
        }
        source.kind_ = Kind::Pipe;
        source.fd_ = std::move(reopened);
        return source;
    }
    return policy::make_error(
        "the body must come through a pipe, a memfd or a regular file (not a socket, a "
        "directory or a device)");
}

std::optional<std::uint64_t> BodySource::size() const noexcept
{
    if (kind_ == Kind::None) {
        return 0;
    }
    if (kind_ == Kind::File) {
        return file_size_;
    }
    return std::nullopt;
}

BodySource::Status BodySource::read(char* buffer, std::size_t capacity, std::size_t& got, std::string& error) noexcept
{
    got = 0;
    if (kind_ == Kind::None) {
        return Status::End;
    }
    if (kind_ == Kind::File) {
        const std::uint64_t left = file_size_ - sent_;
        if (left == 0) {
            return Status::End;
        }
        const auto want = static_cast<std::size_t>(std::min<std::uint64_t>(left, capacity));
        ssize_t n = 0;
        do {
            n = ::pread(fd_.get(), buffer, want, static_cast<off_t>(sent_));
        } while (n < 0 && errno == EINTR);
        if (n <= 0) {
            error = n == 0 ? "the body file shrank while it was sent"
                           : std::string("reading the body: ") + std::strerror(errno);
            return Status::Failed;
        }
        got = static_cast<std::size_t>(n);
        sent_ += got;
        return Status::Data;
    }
    // A pipe: ask for one byte more than may still be sent, so a body over the limit is noticed.
    const std::uint64_t allowed = max_bytes_ - std::min(max_bytes_, sent_);
    const auto want = static_cast<std::size_t>(std::min<std::uint64_t>(allowed + 1, capacity));
    ssize_t n = 0;
    do {
        n = ::read(fd_.get(), buffer, want);
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            return Status::WouldBlock;
        }
        error = std::string("reading the body: ") + std::strerror(errno);
        return Status::Failed;
    }
    if (n == 0) {
        return Status::End;
    }
    if (static_cast<std::uint64_t>(n) > allowed) {
        error = "the body is larger than this provider's max_request_bytes (" + std::to_string(max_bytes_) + ")";
        return Status::TooLarge;
    }
    got = static_cast<std::size_t>(n);
    sent_ += got;
    return Status::Data;
}

}  // namespace codexvault::egress
