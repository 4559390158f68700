#include "daemon/store/secure_buffer.hpp"

#include <fcntl.h>
#include <sodium.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <stdexcept>
#include <system_error>
#include <utility>

#include "lib/fileio/unique_fd.hpp"

namespace codexvault::store {
namespace {

[[noreturn]] void throw_errno(int error, const char* what)
{
    throw std::system_error(error, std::generic_category(), what);
}

std::size_t page_size() noexcept
{
    static const std::size_t size = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
    return size;
}

std::size_t round_up_to_pages(std::size_t size) noexcept
{
    const std::size_t page = page_size();
    return (size + page - 1) / page * page;
}

// memfd_secret(2) takes O_CLOEXEC as its only flag. FD_CLOEXEC (1) is not a valid flag and
// fails with EINVAL -- which is one of the "not available" errors, so that mistake would
// silently downgrade every key to sodium_malloc memory.
int memfd_secret_syscall() noexcept
{
#ifdef SYS_memfd_secret
    return static_cast<int>(::syscall(SYS_memfd_secret, O_CLOEXEC));
#else
    errno = ENOSYS;
    return -1;
#endif
}

// Errors meaning "this kernel does not offer secret memory" (not built, secretmem.enable=0,
// blocked by a seccomp/container profile, or no memory): the only cases that may fall back.
bool means_unavailable(int error) noexcept
{
    return error == ENOSYS || error == EINVAL || error == EPERM || error == ENOMEM;
}

// Keeps the pages out of core dumps. Best effort: the pages are also mlocked (sodium) or
// removed from the direct map (memfd_secret), so a failure here loses no other protection.
void exclude_from_core_dumps(void* data, std::size_t size) noexcept
{
    const auto start = reinterpret_cast<std::uintptr_t>(data);
    const std::uintptr_t aligned = start & ~(static_cast<std::uintptr_t>(page_size()) - 1);
    (void)::madvise(reinterpret_cast<void*>(aligned), start + size - aligned, MADV_DONTDUMP);
}

}  // namespace

const char* to_string(SecureMemoryKind kind) noexcept
{
    switch (kind) {
    case SecureMemoryKind::MemfdSecret:
        return "memfd_secret";
    case SecureMemoryKind::SodiumMalloc:
        return "sodium_malloc";
    }
    return "sodium_malloc";
}

void ensure_sodium_initialized()
{
    // sodium_init() is itself idempotent and thread-safe; the static only saves the call.
    static const int result = ::sodium_init();
    if (result < 0) {
        throw std::runtime_error("sodium_init failed: libsodium cannot be used");
    }
}

SecureBuffer SecureBuffer::allocate(std::size_t size)
{
    UniqueFd memfd(memfd_secret_syscall());
    if (!memfd) {
        const int error = errno;
        if (means_unavailable(error)) {
            return allocate_guarded(size);
        }
        throw_errno(error, "memfd_secret");
    }
    // A zero-length mapping is invalid; an empty buffer still gets one page.
    const std::size_t mapped = round_up_to_pages(size == 0 ? 1 : size);
    if (::ftruncate(memfd.get(), static_cast<off_t>(mapped)) != 0) {
        throw_errno(errno, "ftruncate(memfd_secret)");
    }
    void* data = ::mmap(nullptr, mapped, PROT_READ | PROT_WRITE, MAP_SHARED, memfd.get(), 0);
    if (data == MAP_FAILED) {
        // Typically EAGAIN/ENOMEM: secret memory counts against RLIMIT_MEMLOCK.
        throw_errno(errno, "mmap(memfd_secret)");
    }
    // memfd goes out of scope here: the mapping alone keeps the pages, and no descriptor is
    // left that a forked child or a descriptor leak could hand to someone else.
    exclude_from_core_dumps(data, mapped);
    // A forked worker (the ingest scanner) must not inherit key material: the mapping is absent
    // in children, so a compromised worker has nothing of it to read.
    if (::madvise(data, mapped, MADV_DONTFORK) != 0) {
        const int error = errno;
        ::munmap(data, mapped);
        throw_errno(error, "madvise(MADV_DONTFORK)");
    }

    SecureBuffer buffer;
    buffer.data_ = static_cast<std::uint8_t*>(data);
    buffer.size_ = size;
    buffer.mapped_size_ = mapped;
    buffer.kind_ = SecureMemoryKind::MemfdSecret;
    return buffer;
}

SecureBuffer SecureBuffer::allocate_guarded(std::size_t size)
{
    ensure_sodium_initialized();  // sodium_malloc needs the page size sodium_init() records
    const std::size_t allocated = size == 0 ? 1 : size;
    // sodium_malloc: guard pages on both sides, a canary, mlock'ed (and MADV_DONTDUMP'ed by
    // libsodium itself on Linux; done again below so it does not depend on the build).
    void* data = ::sodium_malloc(allocated);
    if (data == nullptr) {
        throw_errno(errno != 0 ? errno : ENOMEM, "sodium_malloc");
    }
    exclude_from_core_dumps(data, allocated);

    SecureBuffer buffer;
    buffer.data_ = static_cast<std::uint8_t*>(data);
    buffer.size_ = size;
    buffer.mapped_size_ = allocated;
    buffer.kind_ = SecureMemoryKind::SodiumMalloc;
    return buffer;
}

SecureBuffer::SecureBuffer(SecureBuffer&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)),
      size_(std::exchange(other.size_, 0)),
      mapped_size_(std::exchange(other.mapped_size_, 0)),
      kind_(other.kind_)
{
}

SecureBuffer& SecureBuffer::operator=(SecureBuffer&& other) noexcept
{
    if (this != &other) {
        release();
        data_ = std::exchange(other.data_, nullptr);
        size_ = std::exchange(other.size_, 0);
        mapped_size_ = std::exchange(other.mapped_size_, 0);
        kind_ = other.kind_;
    }
    return *this;
}

SecureBuffer::~SecureBuffer()
{
    release();
}

void SecureBuffer::truncate(std::size_t new_size) noexcept
{
    if (new_size < size_) {
        // The bytes past the new end are no longer reachable through span(); clear them now
        // rather than leave them until release.
        ::sodium_memzero(data_ + new_size, size_ - new_size);
        size_ = new_size;
    }
}

void SecureBuffer::release() noexcept
{
    if (data_ == nullptr) {
        return;
    }
    // Zero the whole allocation, not just size_: truncate() may have shrunk the logical size.
    ::sodium_memzero(data_, mapped_size_);
    if (kind_ == SecureMemoryKind::MemfdSecret) {
        (void)::munmap(data_, mapped_size_);
    } else {
        ::sodium_free(data_);
    }
    data_ = nullptr;
    size_ = 0;
    mapped_size_ = 0;
}

}  // namespace codexvault::store
