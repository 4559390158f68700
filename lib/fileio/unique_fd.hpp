// Owning wrapper for a file descriptor: the one place a descriptor is closed.
#pragma once

#include <unistd.h>

#include <utility>

namespace codexvault {

class UniqueFd {
public:
    UniqueFd() noexcept = default;
    explicit UniqueFd(int fd) noexcept : fd_(fd) {}
    UniqueFd(const UniqueFd&) = delete;
    UniqueFd& operator=(const UniqueFd&) = delete;
    UniqueFd(UniqueFd&& other) noexcept : fd_(other.release()) {}
    UniqueFd& operator=(UniqueFd&& other) noexcept
    {
        if (this != &other) {
            reset(other.release());
        }
        return *this;
    }
    ~UniqueFd() { reset(); }

    [[nodiscard]] int get() const noexcept { return fd_; }
    [[nodiscard]] bool valid() const noexcept { return fd_ >= 0; }
    explicit operator bool() const noexcept { return valid(); }

    // Hands ownership to the caller, e.g. to an sd-bus call that takes the descriptor.
    [[nodiscard]] int release() noexcept { return std::exchange(fd_, -1); }

    void reset(int fd = -1) noexcept
    {
        const int old = std::exchange(fd_, fd);
        if (old >= 0) {
            // close() releases the descriptor even when it reports EINTR/EIO on Linux;
            // retrying would risk closing a descriptor another thread just received.
            (void)::close(old);
        }
    }

private:
    int fd_ = -1;
};

}  // namespace codexvault
