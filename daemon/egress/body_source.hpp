// The request body a caller hands over as a descriptor. A regular file or memfd is read with
// pread from offset 0 (its size is known, so an oversize body is refused before any connection
// and the caller's file offset is left alone). A pipe is reopened through /proc/self/fd as a new,
// non-blocking open file description, so the daemon never blocks on it and never changes the
// O_NONBLOCK flag the caller's end shares. Sockets, directories and devices are refused: a socket
// could be connected to something else the caller wants the daemon to read from or block on.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "lib/fileio/unique_fd.hpp"
#include "policy/result.hpp"

namespace codexvault::egress {

class BodySource {
public:
    enum class Kind { None, File, Pipe };
    enum class Status { Data, End, WouldBlock, TooLarge, Failed };

    BodySource() = default;
    // Checks the descriptor's type and, for a file, its size against max_bytes.
    static policy::Result<BodySource> open(UniqueFd fd, std::uint64_t max_bytes);

    [[nodiscard]] Kind kind() const noexcept { return kind_; }
    // The size when known in advance (a file), for Content-Length; nullopt streams chunked.
    [[nodiscard]] std::optional<std::uint64_t> size() const noexcept;
    [[nodiscard]] int fd() const noexcept { return fd_.get(); }
    [[nodiscard]] std::uint64_t sent() const noexcept { return sent_; }

    // Reads up to `capacity` bytes; `got` is set on Data. `error` says why on Failed.
    Status read(char* buffer, std::size_t capacity, std::size_t& got, std::string& error) noexcept;

private:
    Kind kind_ = Kind::None;
    UniqueFd fd_;
    std::uint64_t file_size_ = 0;
    std::uint64_t max_bytes_ = 0;
    std::uint64_t sent_ = 0;
};

}  // namespace codexvault::egress
