// Memory for key material: memfd_secret pages when the kernel offers them (not in swap, not in
// core dumps, not in the kernel's direct map), otherwise libsodium's guarded, locked pages.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace codexvault::store {

enum class SecureMemoryKind { MemfdSecret, SodiumMalloc };

const char* to_string(SecureMemoryKind kind) noexcept;  // "memfd_secret" or "sodium_malloc"

// sodium_init() once per process (idempotent, thread-safe); throws std::runtime_error if it fails.
void ensure_sodium_initialized();

// Move-only. Contents are zeroed before the memory is released. Throws std::system_error
// (with the failing call named) when neither kind of memory can be had.
class SecureBuffer {
public:
    // Tries memfd_secret first; falls back to sodium_malloc only when memfd_secret is not
    // implemented or not enabled (ENOSYS/EINVAL/EPERM/ENOMEM from the syscall). The memfd is
    // closed once mapped: the mapping keeps the pages alive and no descriptor to them remains.
    static SecureBuffer allocate(std::size_t size);
    // Guarded sodium_malloc memory: for short-lived values (a secret being sealed).
    static SecureBuffer allocate_guarded(std::size_t size);

    SecureBuffer() noexcept = default;
    SecureBuffer(SecureBuffer&& other) noexcept;
    SecureBuffer& operator=(SecureBuffer&& other) noexcept;
    SecureBuffer(const SecureBuffer&) = delete;
    SecureBuffer& operator=(const SecureBuffer&) = delete;
    ~SecureBuffer();

    [[nodiscard]] std::uint8_t* data() noexcept { return data_; }
    [[nodiscard]] const std::uint8_t* data() const noexcept { return data_; }
    [[nodiscard]] std::size_t size() const noexcept { return size_; }
    [[nodiscard]] std::span<std::uint8_t> span() noexcept { return {data_, size_}; }
    [[nodiscard]] std::span<const std::uint8_t> span() const noexcept { return {data_, size_}; }
    [[nodiscard]] SecureMemoryKind kind() const noexcept { return kind_; }
    // Shrinks the logical size (e.g. after reading fewer bytes than allocated); never grows.
    void truncate(std::size_t new_size) noexcept;

private:
    void release() noexcept;

    std::uint8_t* data_ = nullptr;
    std::size_t size_ = 0;
    std::size_t mapped_size_ = 0;  // bytes mapped (memfd_secret) or passed to sodium_malloc
    SecureMemoryKind kind_ = SecureMemoryKind::SodiumMalloc;
};

}  // namespace codexvault::store
