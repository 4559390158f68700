// SecureBuffer: key material lands in memfd_secret pages on this kernel (not readable through
// /proc/PID/mem, excluded from core dumps, no descriptor left behind), guarded sodium_malloc
// memory otherwise, and the ownership rules of a move-only buffer.
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <utility>

#include "daemon/store/secure_buffer.hpp"
#include "lib/fileio/unique_fd.hpp"

using codexvault::UniqueFd;
using codexvault::store::SecureBuffer;
using codexvault::store::SecureMemoryKind;

namespace {

// Skips (rather than fails) on a kernel without secret memory; any other answer is a failure
// of ours, because the daemon must then not claim memfd_secret.
void require_memfd_secret()
{
    UniqueFd probe(static_cast<int>(::syscall(SYS_memfd_secret, O_CLOEXEC)));
    if (!probe) {
        const int error = errno;
        if (error == ENOSYS) {
            cr_skip_test("memfd_secret is not available on this kernel (ENOSYS)");
        }
        cr_skip_test("memfd_secret is not usable here (%s)", std::strerror(error));
    }
}

// The VmFlags line of the /proc/self/smaps entry that contains `address`.
std::string vm_flags_of(const void* address)
{
    const auto target = reinterpret_cast<std::uintptr_t>(address);
    std::ifstream smaps("/proc/self/smaps");
    std::string line;
    bool inside = false;
    while (std::getline(smaps, line)) {
        unsigned long start = 0;
        unsigned long end = 0;
        if (std::sscanf(line.c_str(), "%lx-%lx ", &start, &end) == 2 && line.find(':') > line.find(' ')) {
            inside = target >= start && target < end;
            continue;
        }
        if (inside && line.rfind("VmFlags:", 0) == 0) {
            return line;
        }
    }
    return {};
}

int count_secretmem_descriptors()
{
    int count = 0;
    DIR* dir = ::opendir("/proc/self/fd");
    cr_assert_not_null(dir);
    while (const dirent* entry = ::readdir(dir)) {
        char target[256] = {};
        const std::string link = std::string("/proc/self/fd/") + entry->d_name;
        if (::readlink(link.c_str(), target, sizeof target - 1) > 0 && std::strstr(target, "secretmem") != nullptr) {
            ++count;
        }
    }
    ::closedir(dir);
    return count;
}

}  // namespace

Test(secure_buffer, allocate_uses_memfd_secret_on_this_kernel)
{
    require_memfd_secret();
    SecureBuffer buffer = SecureBuffer::allocate(32);
    cr_assert_eq(buffer.kind(), SecureMemoryKind::MemfdSecret, "allocate() fell back to %s although memfd_secret works",
                 codexvault::store::to_string(buffer.kind()));
    cr_assert_eq(buffer.size(), 32u);
    cr_assert_not_null(buffer.data());
    std::memset(buffer.data(), 0xa5, buffer.size());  // the pages are writable
    cr_assert_eq(buffer.data()[31], 0xa5);
}

Test(secure_buffer, memfd_secret_pages_are_not_readable_through_proc_mem)
{
    require_memfd_secret();
    SecureBuffer secret = SecureBuffer::allocate(64);
    SecureBuffer guarded = SecureBuffer::allocate_guarded(64);
    std::memset(secret.data(), 0x5a, secret.size());
    std::memset(guarded.data(), 0x5a, guarded.size());

    UniqueFd mem(::open("/proc/self/mem", O_RDONLY | O_CLOEXEC));
    cr_assert(mem.valid());
    std::uint8_t copy[64];
    // The control: ordinary (even locked) memory is readable by anyone with ptrace access.
    cr_assert_eq(
        ::pread(mem.get(), copy, sizeof copy, static_cast<off_t>(reinterpret_cast<std::uintptr_t>(guarded.data()))),
        64);
    // Secret memory is not in the kernel's direct map: the kernel itself cannot copy it out.
    const ssize_t n =
        ::pread(mem.get(), copy, sizeof copy, static_cast<off_t>(reinterpret_cast<std::uintptr_t>(secret.data())));
    cr_assert_lt(n, 0, "read %zd bytes of memfd_secret memory through /proc/self/mem", n);
}

Test(secure_buffer, mappings_are_excluded_from_core_dumps)
{
    require_memfd_secret();
    SecureBuffer secret = SecureBuffer::allocate(100);
    SecureBuffer guarded = SecureBuffer::allocate_guarded(100);
    const std::string secret_flags = vm_flags_of(secret.data());
    const std::string guarded_flags = vm_flags_of(guarded.data());
    cr_assert(secret_flags.find(" dd") != std::string::npos, "memfd_secret mapping lacks MADV_DONTDUMP: '%s'",
              secret_flags.c_str());
    cr_assert(guarded_flags.find(" dd") != std::string::npos, "guarded mapping lacks MADV_DONTDUMP: '%s'",
              guarded_flags.c_str());
}

Test(secure_buffer, no_memfd_descriptor_is_left_open)
{
    require_memfd_secret();
    const int before = count_secretmem_descriptors();
    SecureBuffer a = SecureBuffer::allocate(32);
    SecureBuffer b = SecureBuffer::allocate(5000);
    cr_assert_eq(count_secretmem_descriptors(), before);
}

Test(secure_buffer, allocate_guarded_is_sodium_malloc_with_guard_page, .signal = SIGSEGV)
{
    SecureBuffer buffer = SecureBuffer::allocate_guarded(100);
    cr_assert_eq(buffer.kind(), SecureMemoryKind::SodiumMalloc);
    cr_assert_eq(buffer.size(), 100u);
    // sodium_malloc puts the end of the buffer against a PROT_NONE guard page.
    volatile std::uint8_t* past_end = buffer.data() + buffer.size();
    *past_end = 1;
}

Test(secure_buffer, spans_memory_larger_than_one_page)
{
    SecureBuffer buffer = SecureBuffer::allocate(3 * 4096 + 17);
    cr_assert_eq(buffer.size(), 3u * 4096 + 17);
    std::memset(buffer.data(), 0x11, buffer.size());
    cr_assert_eq(buffer.span().back(), 0x11);
}

Test(secure_buffer, zero_size_is_valid)
{
    SecureBuffer a = SecureBuffer::allocate(0);
    SecureBuffer b = SecureBuffer::allocate_guarded(0);
    cr_assert_eq(a.size(), 0u);
    cr_assert_eq(b.size(), 0u);
    cr_assert(a.span().empty());
}

Test(secure_buffer, move_transfers_ownership)
{
    SecureBuffer a = SecureBuffer::allocate(16);
    std::memset(a.data(), 7, a.size());
    const std::uint8_t* address = a.data();
    const SecureMemoryKind kind = a.kind();

    SecureBuffer b(std::move(a));
    cr_assert_null(a.data());  // NOLINT(bugprone-use-after-move): the moved-from state is the subject
    cr_assert_eq(a.size(), 0u);
    cr_assert_eq(b.data(), address);
    cr_assert_eq(b.kind(), kind);
    cr_assert_eq(b.data()[15], 7);

    SecureBuffer c = SecureBuffer::allocate_guarded(8);
    c = std::move(b);  // releases c's own memory, takes b's
    cr_assert_null(b.data());
    cr_assert_eq(c.data(), address);
    cr_assert_eq(c.size(), 16u);
    c = std::move(c);  // self-move must not free
    cr_assert_eq(c.data(), address);
}

Test(secure_buffer, truncate_shrinks_clears_tail_and_never_grows)
{
    SecureBuffer buffer = SecureBuffer::allocate_guarded(32);
    std::memset(buffer.data(), 0xff, buffer.size());
    buffer.truncate(10);
    cr_assert_eq(buffer.size(), 10u);
    cr_assert_eq(buffer.data()[9], 0xff);
    for (std::size_t i = 10; i < 32; ++i) {
        cr_assert_eq(buffer.data()[i], 0, "byte %zu past the new end was not cleared", i);
    }
    buffer.truncate(20);
    cr_assert_eq(buffer.size(), 10u);
}

Test(secure_buffer, kind_names_match_status_vocabulary)
{
    cr_assert_str_eq(codexvault::store::to_string(SecureMemoryKind::MemfdSecret), "memfd_secret");
    cr_assert_str_eq(codexvault::store::to_string(SecureMemoryKind::SodiumMalloc), "sodium_malloc");
}

Test(secure_buffer, key_pages_are_absent_from_forked_children)
{
    auto buffer = codexvault::store::SecureBuffer::allocate(32);
    if (buffer.kind() != codexvault::store::SecureMemoryKind::MemfdSecret) {
        cr_skip_test("memfd_secret is not available on this kernel");
    }
    buffer.data()[0] = 0x5a;
    const pid_t child = ::fork();
    cr_assert(child >= 0);
    if (child == 0) {
        // With MADV_DONTFORK the page is not mapped here: touching it must fault.
        volatile std::uint8_t value = buffer.data()[0];
        (void)value;
        _exit(0);
    }
    int status = 0;
    cr_assert_eq(::waitpid(child, &status, 0), child);
    cr_expect(WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV, "child read key memory (status %d)", status);
}
