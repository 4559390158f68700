// The secret value's way in: the transport key's sealed boxes, and the value descriptor read that
// never waits (daemon/pipeline/value_input.hpp, daemon/store/transport_key.hpp).
#include <fcntl.h>
#include <linux/magic.h>
#include <sodium.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "common/limits.hpp"
#include "common/vault_error.hpp"
#include "daemon/pipeline/value_input.hpp"
#include "daemon/store/keyring.hpp"
#include "daemon/store/secure_buffer.hpp"
#include "daemon/store/transport_key.hpp"
#include "lib/fileio/unique_fd.hpp"
#include "tests/unit/daemon/store_test_support.hpp"

namespace fs = std::filesystem;
using codexvault::ErrorCode;
using codexvault::UniqueFd;
using codexvault::VaultError;
using codexvault::daemon::read_sealed_value;
using codexvault::daemon::read_value_descriptor;
using codexvault::daemon::value_descriptor_refusal;
using codexvault::store::Keyring;
using codexvault::store::SecureBuffer;
using codexvault::store::TransportKey;

using namespace codexvault::scratch;

namespace {

constexpr std::size_t kMax = codexvault::limits::kMaxSecretBytes;

TransportKey key_from(std::uint8_t fill)
{
    const Bytes seed(32, fill);
    return TransportKey::from_seed(seed);
}

Bytes seal(const Bytes& value, const TransportKey::PublicKey& recipient)
{
    Bytes box(value.size() + crypto_box_SEALBYTES);
    cr_assert_eq(crypto_box_seal(box.data(), value.data(), value.size(), recipient.data()), 0);
    return box;
}

UniqueFd open_file_with(const Bytes& content, int flags = O_RDONLY)
{
    const fs::path path = g_root / "value";
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(content.data()), static_cast<std::streamsize>(content.size()));
    out.close();
    cr_assert(!out.fail());
    UniqueFd fd(::open(path.c_str(), flags | O_CLOEXEC));
    cr_assert(fd.valid());
    return fd;
}

struct Pipe {
    UniqueFd read_end;
    UniqueFd write_end;
    Pipe()
    {
        int fds[2];
        cr_assert_eq(::pipe2(fds, O_CLOEXEC), 0);
        read_end.reset(fds[0]);
        write_end.reset(fds[1]);
        cr_assert_geq(::fcntl(write_end.get(), F_SETPIPE_SZ, 256 * 1024), 0);
    }
    void write(const Bytes& content)
    {
        cr_assert_eq(::write(write_end.get(), content.data(), content.size()), static_cast<ssize_t>(content.size()));
    }
};

// The InvalidArgument message a read threw; fails the test for anything else.
std::string refusal_of(const std::function<void()>& read)
{
    try {
        read();
    } catch (const VaultError& error) {
        cr_assert(error.code() == ErrorCode::InvalidArgument, "refused, but not with InvalidArgument");
        return error.what();
    }
    cr_assert_fail("the descriptor was not refused");
    return {};
}

std::string sealed_refusal_of(int fd, const TransportKey& key)
{
    return refusal_of([&] { (void)read_sealed_value(fd, key); });
}

}  // namespace

// --- the transport key ----------------------------------------------------------------------

TestSuite(transport_key, .init = make_sodium_root, .fini = remove_root);

Test(transport_key, a_sealed_value_opens_to_the_same_bytes)
{
    const TransportKey key = key_from(7);
    const Bytes value = random_bytes(300);
    const std::optional<SecureBuffer> opened = key.open(seal(value, key.public_key()));
    cr_assert(opened.has_value());
    cr_assert(same(*opened, value));
}

Test(transport_key, an_altered_box_a_box_for_another_key_and_plaintext_do_not_open)
{
    const TransportKey key = key_from(7);
    const TransportKey other = key_from(8);
    cr_assert(key.public_key() != other.public_key());
    const Bytes value = bytes_of("sk-canary-value-0123456789");
    for (std::size_t i = 0; i < value.size() + crypto_box_SEALBYTES; i += 7) {
        Bytes altered = seal(value, key.public_key());
        altered[i] ^= 0x01;
        cr_assert_not(key.open(altered).has_value(), "a box with byte %zu flipped opened", i);
    }
    cr_assert_not(key.open(seal(value, other.public_key())).has_value(), "a box for another key opened");
    Bytes long_plaintext = random_bytes(200);
    cr_assert_not(key.open(long_plaintext).has_value(), "plaintext opened");
    cr_assert_not(key.open(value).has_value(), "short plaintext opened");
    cr_assert_not(key.open(Bytes{}).has_value());
}

Test(transport_key, the_vaults_key_is_derived_from_the_master_key_and_stable_across_loads)
{
    const fs::path state = g_root / "state";
    fs::create_directory(state);
    fs::permissions(state, fs::perms::owner_all);
    const TransportKey first = TransportKey::derive(Keyring::load(state, std::nullopt));
    const TransportKey second = TransportKey::derive(Keyring::load(state, std::nullopt));
    cr_assert(first.public_key() == second.public_key(), "a restart must present the pinned key again");
    const Bytes value = bytes_of("value");
    cr_assert(second.open(seal(value, first.public_key())).has_value());

    const fs::path other_state = g_root / "other";
    fs::create_directory(other_state);
    fs::permissions(other_state, fs::perms::owner_all);
    const TransportKey other = TransportKey::derive(Keyring::load(other_state, std::nullopt));
    cr_assert(other.public_key() != first.public_key(), "another master key gives another transport key");
}

// --- which descriptors are read -------------------------------------------------------------

Test(value_descriptor, pipes_and_files_on_local_file_systems_are_read_everything_else_is_refused)
{
    cr_assert_not(value_descriptor_refusal(S_IFIFO | 0600, 0).has_value());
    const std::vector<std::int64_t> local{EXT4_SUPER_MAGIC, XFS_SUPER_MAGIC,           BTRFS_SUPER_MAGIC,
                                          F2FS_SUPER_MAGIC, std::int64_t{TMPFS_MAGIC}, RAMFS_MAGIC};
    for (const std::int64_t fs_type : local) {
        cr_assert_not(value_descriptor_refusal(S_IFREG | 0600, fs_type).has_value(), "fs 0x%llx refused",
                      static_cast<unsigned long long>(fs_type));
    }
    const std::vector<std::int64_t> waiting{PROC_SUPER_MAGIC, SYSFS_MAGIC,   0x65735546 /* FUSE */, NFS_SUPER_MAGIC,
                                            DEBUGFS_MAGIC,    TRACEFS_MAGIC, ANON_INODE_FS_MAGIC,   0};
    for (const std::int64_t fs_type : waiting) {
        const auto refusal = value_descriptor_refusal(S_IFREG | 0400, fs_type);
        cr_assert(refusal.has_value(), "fs 0x%llx accepted", static_cast<unsigned long long>(fs_type));
        cr_assert(contains(*refusal, "file system whose reads may wait"), "%s", refusal->c_str());
    }
    cr_assert(contains(*value_descriptor_refusal(S_IFDIR | 0700, EXT4_SUPER_MAGIC), "a directory"));
    cr_assert(contains(*value_descriptor_refusal(S_IFCHR | 0600, 0), "a character device"));
    cr_assert(contains(*value_descriptor_refusal(0600, ANON_INODE_FS_MAGIC), "special descriptor"));
}

TestSuite(value_input, .init = make_sodium_root, .fini = remove_root, .timeout = 30);

Test(value_input, reads_a_sealed_value_from_a_regular_file)
{
    const TransportKey key = key_from(1);
    const Bytes value = random_bytes(300);
    const UniqueFd fd = open_file_with(seal(value, key.public_key()));
    const SecureBuffer read = read_sealed_value(fd.get(), key);
    cr_assert(same(read, value));
    cr_assert_eq(read.kind(), codexvault::store::SecureMemoryKind::SodiumMalloc);
}

Test(value_input, reads_a_sealed_value_from_a_pipe_whose_writer_closed_and_restores_its_flags)
{
    const TransportKey key = key_from(1);
    Pipe pipe;
    const Bytes value = bytes_of("ghp_exampletoken");
    pipe.write(seal(value, key.public_key()));
    pipe.write_end.reset();
    const int flags_before = ::fcntl(pipe.read_end.get(), F_GETFL);
    cr_assert(same(read_sealed_value(pipe.read_end.get(), key), value));
    cr_assert_eq(::fcntl(pipe.read_end.get(), F_GETFL), flags_before, "the caller's file status flags changed");
}

Test(value_input, refuses_a_value_sent_in_the_clear_or_sealed_to_another_key)
{
    const TransportKey key = key_from(1);
    const TransportKey other = key_from(2);
    const UniqueFd clear = open_file_with(bytes_of("a plaintext value that is long enough to be a box maybe"));
    cr_assert(contains(sealed_refusal_of(clear.get(), key), "not sealed to this vault's transport key"));
    const UniqueFd foreign = open_file_with(seal(bytes_of("value"), other.public_key()));
    cr_assert(contains(sealed_refusal_of(foreign.get(), key), "not sealed to this vault's transport key"));
}

Test(value_input, refuses_a_pipe_still_open_for_writing_at_once)
{
    const TransportKey key = key_from(1);
    Pipe pipe;
    pipe.write(bytes_of("partial"));
    // Without the non-blocking read this call would hang until the suite's timeout fails it.
    cr_assert(contains(sealed_refusal_of(pipe.read_end.get(), key), "value pipe still open for writing"));
    Pipe empty;
    cr_assert(contains(sealed_refusal_of(empty.read_end.get(), key), "value pipe still open for writing"));
}

Test(value_input, refuses_a_file_on_procfs_and_event_descriptors)
{
    const TransportKey key = key_from(1);
    UniqueFd proc(::open("/proc/self/status", O_RDONLY | O_CLOEXEC));
    cr_assert(proc.valid());
    cr_assert(contains(sealed_refusal_of(proc.get(), key), "file system whose reads may wait (type 0x9fa0"));
    UniqueFd event(::eventfd(0, EFD_CLOEXEC));
    cr_assert(event.valid());
    cr_assert(contains(sealed_refusal_of(event.get(), key), "pass a pipe or regular file"));
}

Test(value_input, refuses_directories_sockets_and_devices)
{
    const TransportKey key = key_from(1);
    UniqueFd dir(::open(g_root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    cr_assert(
        contains(sealed_refusal_of(dir.get(), key), "value descriptor is a directory; pass a pipe or regular file"));
    int pair[2];
    cr_assert_eq(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair), 0);
    const UniqueFd a(pair[0]);
    const UniqueFd b(pair[1]);
    cr_assert(contains(sealed_refusal_of(a.get(), key), "value descriptor is a socket"));
    UniqueFd null(::open("/dev/null", O_RDONLY | O_CLOEXEC));
    cr_assert(contains(sealed_refusal_of(null.get(), key), "character device"));
    cr_assert(contains(sealed_refusal_of(-1, key), "cannot inspect value descriptor"));
}

Test(value_input, refuses_write_only_and_path_descriptors)
{
    const TransportKey key = key_from(1);
    const UniqueFd write_only = open_file_with(bytes_of("value"), O_WRONLY);
    cr_assert(contains(sealed_refusal_of(write_only.get(), key), "value descriptor is not readable"));
    UniqueFd path_only(::open((g_root / "value").c_str(), O_PATH | O_CLOEXEC));
    cr_assert(contains(sealed_refusal_of(path_only.get(), key), "value descriptor is not readable"));
    Pipe pipe;
    cr_assert(contains(sealed_refusal_of(pipe.write_end.get(), key), "value descriptor is not readable"));
}

Test(value_input, refuses_empty_values)
{
    const TransportKey key = key_from(1);
    const UniqueFd empty_file = open_file_with(Bytes{});
    cr_assert(contains(sealed_refusal_of(empty_file.get(), key), "secret value is empty"));
    Pipe pipe;
    pipe.write_end.reset();
    cr_assert(contains(sealed_refusal_of(pipe.read_end.get(), key), "secret value is empty"));
}

Test(value_input, the_size_limit_applies_to_the_plaintext)
{
    const TransportKey key = key_from(1);
    const Bytes largest = random_bytes(kMax);
    const UniqueFd fd = open_file_with(seal(largest, key.public_key()));
    const SecureBuffer read = read_sealed_value(fd.get(), key);
    cr_assert_eq(read.size(), 65536u);
    cr_assert(same(read, largest));

    const UniqueFd over = open_file_with(seal(random_bytes(kMax + 1), key.public_key()));
    cr_assert(contains(sealed_refusal_of(over.get(), key), "secret value exceeds 65536 bytes"));
}

Test(value_input, reads_at_most_one_byte_past_the_limit_whatever_the_descriptor_holds)
{
    const UniqueFd fd = open_file_with(random_bytes(4096));
    const SecureBuffer read = read_value_descriptor(fd.get(), 100);
    cr_assert_eq(read.size(), 101u);
}
