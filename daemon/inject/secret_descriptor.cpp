#include "daemon/inject/secret_descriptor.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <system_error>

#include "lib/fileio/files.hpp"

namespace codexvault::inject {
namespace {

[[noreturn]] void fail(int error, const std::string& step)
{
    throw std::system_error(error, std::generic_category(), "injection descriptor: " + step);
}

void fill_secret_memory(int fd, std::span<const std::uint8_t> value)
{
    if (::ftruncate(fd, static_cast<off_t>(value.size())) != 0) {
        fail(errno, "ftruncate memfd_secret");
    }
    // secretmem has no read/write: the only way in is a shared mapping.
    void* map = ::mmap(nullptr, value.size(), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (map == MAP_FAILED) {
        fail(errno, "mmap memfd_secret");
    }
    std::memcpy(map, value.data(), value.size());
    ::munmap(map, value.size());
}

void fill_sealed_memfd(int fd, std::span<const std::uint8_t> value)
{
    try {
        fileio::write_all(fd, value, "the sealed memfd");
    } catch (const std::system_error& e) {
        fail(e.code().value(), "write sealed memfd");
    }
    // Nobody, the recipient included, can change or resize it afterwards.
    if (::fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) != 0) {
        fail(errno, "seal memfd");
    }
}

}  // namespace

std::string_view to_string(DescriptorKind kind) noexcept
{
    return kind == DescriptorKind::SecretMemory ? "memfd_secret" : "sealed memfd";
}

SecretDescriptor make_secret_descriptor(std::span<const std::uint8_t> value)
{
    if (value.empty()) {
        fail(EINVAL, "the secret is empty");
    }
    SecretDescriptor out;
    out.size = value.size();
    const long secret = ::syscall(SYS_memfd_secret, static_cast<unsigned>(O_CLOEXEC));
    if (secret >= 0) {
        out.fd.reset(static_cast<int>(secret));
        out.kind = DescriptorKind::SecretMemory;
        fill_secret_memory(out.fd.get(), value);
    } else if (errno == ENOSYS) {
        // Only a kernel without secretmem falls back (secretmem.enable=0 or not built).
        const int fd = ::memfd_create("codex-vault-injection", MFD_CLOEXEC | MFD_ALLOW_SEALING);
        if (fd < 0) {
            fail(errno, "memfd_create");
        }
        out.fd.reset(fd);
        out.kind = DescriptorKind::SealedMemfd;
        fill_sealed_memfd(fd, value);
    } else {
        fail(errno, "memfd_secret");
    }
    struct stat st {};
    if (::fstat(out.fd.get(), &st) != 0) {
        fail(errno, "fstat");
    }
    out.dev = st.st_dev;
    out.ino = st.st_ino;
    return out;
}

}  // namespace codexvault::inject
