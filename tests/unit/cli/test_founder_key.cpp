// The founder key file (sealing, loading, tamper and misuse handling) and the passphrase
// readers. Each Argon2id derivation costs ~64 MiB and a fraction of a second, so this file
// keeps the total to 14: files refused before any derivation are hand-made under a random key.
#include <fcntl.h>
#include <poll.h>
#include <sodium.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "cli/founder_key.hpp"
#include "lib/fileio/unique_fd.hpp"

using codexvault::UniqueFd;
using codexvault::cli::create_founder_key_file;
using codexvault::cli::FounderKeyError;
using codexvault::cli::FounderKeyPair;
using codexvault::cli::load_founder_key_file;
using codexvault::cli::read_passphrase_from_fd;
using codexvault::cli::read_passphrase_from_terminal;
using codexvault::cli::SensitiveBytes;
using codexvault::cli::sign_detached;
using Kind = codexvault::cli::FounderKeyError::Kind;

namespace {

// Offsets from the format comment in cli/founder_key.cpp.
constexpr std::size_t kOpsOffset = 8;
constexpr std::size_t kMemOffset = 16;
constexpr std::size_t kSaltOffset = 24;
constexpr std::size_t kPublicKeyOffset = 40;
constexpr std::size_t kNonceOffset = 72;
constexpr std::size_t kCiphertextOffset = 96;
constexpr std::size_t kFileBytes = 176;

class TempDir {
public:
    TempDir()
    {
        char name[] = "/tmp/cv-founder-key-XXXXXX";
        cr_assert_not_null(::mkdtemp(name), "mkdtemp: %s", std::strerror(errno));
        path_ = name;
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    ~TempDir()
    {
        std::error_code ignored;
        std::filesystem::remove_all(path_, ignored);
    }
    [[nodiscard]] const std::filesystem::path& path() const { return path_; }

private:
    std::filesystem::path path_;
};

std::span<const std::uint8_t> bytes_of(std::string_view text)
{
    return {reinterpret_cast<const std::uint8_t*>(text.data()), text.size()};
}

std::string text_of(const SensitiveBytes& bytes)
{
    return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
}

constexpr std::string_view kPassphrase = "correct horse battery staple";

std::vector<std::uint8_t> read_all(const std::filesystem::path& path)
{
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    cr_assert(fd.valid(), "open %s: %s", path.c_str(), std::strerror(errno));
    std::vector<std::uint8_t> out;
    std::array<std::uint8_t, 512> chunk{};
    for (;;) {
        const ssize_t got = ::read(fd.get(), chunk.data(), chunk.size());
        cr_assert_geq(got, 0);
        if (got == 0) {
            return out;
        }
        out.insert(out.end(), chunk.begin(), chunk.begin() + got);
    }
}

void write_all(const std::filesystem::path& path, std::span<const std::uint8_t> bytes)
{
    UniqueFd fd(::open(path.c_str(), O_WRONLY | O_TRUNC | O_CLOEXEC));
    cr_assert(fd.valid(), "open %s: %s", path.c_str(), std::strerror(errno));
    cr_assert_eq(::write(fd.get(), bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
}

bool contains(std::span<const std::uint8_t> haystack, std::span<const std::uint8_t> needle)
{
    return std::search(haystack.begin(), haystack.end(), needle.begin(), needle.end()) != haystack.end();
}

// Runs `action`, requires a FounderKeyError of `kind`, and returns its message.
std::string expect_error(Kind kind, const std::function<void()>& action)
{
    try {
        action();
    } catch (const FounderKeyError& error) {
        cr_assert_eq(error.kind(), kind, "unexpected kind %d: %s", static_cast<int>(error.kind()), error.what());
        return error.what();
    }
    cr_assert_fail("expected a FounderKeyError");
    return {};
}

// A pipe whose write end is filled and closed up front; the read end is what the test reads.
UniqueFd pipe_with(std::string_view content, bool close_writer = true)
{
    int ends[2];
    cr_assert_eq(::pipe2(ends, O_CLOEXEC), 0);
    UniqueFd reader(ends[0]);
    UniqueFd writer(ends[1]);
    cr_assert_eq(::write(writer.get(), content.data(), content.size()), static_cast<ssize_t>(content.size()));
    if (!close_writer) {
        (void)writer.release();  // deliberately leaked for the test's lifetime (process exits)
    }
    return reader;
}

// The test's own encoder, not common/bytes.hpp: this file pins the documented format
// independently of the code under test (and tests/unit/cli may not include common/ directly).
void put_u64_le(std::vector<std::uint8_t>& file, std::size_t offset, std::uint64_t value)
{
    for (std::size_t i = 0; i < 8; ++i) {
        file[offset + i] = static_cast<std::uint8_t>(value >> (8 * i));
    }
}

void create_with(const std::filesystem::path& path, std::span<const std::uint8_t> bytes)
{
    UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
    cr_assert(fd.valid(), "create %s: %s", path.c_str(), std::strerror(errno));
    cr_assert_eq(::write(fd.get(), bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
}

using Key32 = std::array<std::uint8_t, 32>;

struct CraftSpec {
    Key32 seed{};
    std::array<std::uint8_t, crypto_pwhash_SALTBYTES> salt{};
    std::uint64_t opslimit = crypto_pwhash_OPSLIMIT_INTERACTIVE;
    std::uint64_t memlimit = crypto_pwhash_MEMLIMIT_INTERACTIVE;
    std::optional<Key32> stored_public;       // the clear public key; default: the seed's
    std::optional<Key32> sealed_public_half;  // second half of the sealed secret key; default: the seed's
};

// Builds a key file straight from the format documented in cli/founder_key.cpp, without its
// code, so a test can pin the format and produce files create_founder_key_file() never would.
std::vector<std::uint8_t> craft_key_file(const CraftSpec& spec, const Key32& kek)
{
    Key32 public_key{};
    std::array<std::uint8_t, crypto_sign_SECRETKEYBYTES> secret_key{};
    crypto_sign_seed_keypair(public_key.data(), secret_key.data(), spec.seed.data());
    if (spec.sealed_public_half) {
        std::copy(spec.sealed_public_half->begin(), spec.sealed_public_half->end(), secret_key.begin() + 32);
    }
    const Key32 stored = spec.stored_public.value_or(public_key);

    std::vector<std::uint8_t> file(kFileBytes);
    std::memcpy(file.data(), "CVFKEY01", 8);
    put_u64_le(file, kOpsOffset, spec.opslimit);
    put_u64_le(file, kMemOffset, spec.memlimit);
    std::copy(spec.salt.begin(), spec.salt.end(), file.begin() + kSaltOffset);
    std::copy(stored.begin(), stored.end(), file.begin() + kPublicKeyOffset);
    randombytes_buf(file.data() + kNonceOffset, kCiphertextOffset - kNonceOffset);
    unsigned long long sealed_len = 0;
    crypto_aead_xchacha20poly1305_ietf_encrypt(file.data() + kCiphertextOffset, &sealed_len, secret_key.data(),
                                               secret_key.size(), file.data(), kNonceOffset, nullptr,
                                               file.data() + kNonceOffset, kek.data());
    cr_assert_eq(sealed_len, kFileBytes - kCiphertextOffset);
    sodium_memzero(secret_key.data(), secret_key.size());
    return file;
}

// A well-formed file under a random KEK: nobody's passphrase opens it, which is fine for checks
// that must refuse a file before any key derivation (and costs no Argon2id run to make).
std::vector<std::uint8_t> craft_unopenable_key_file()
{
    cr_assert_geq(sodium_init(), 0);
    CraftSpec spec;
    randombytes_buf(spec.seed.data(), spec.seed.size());
    randombytes_buf(spec.salt.data(), spec.salt.size());
    Key32 kek{};
    randombytes_buf(kek.data(), kek.size());
    return craft_key_file(spec, kek);
}

}  // namespace

Test(founder_key, documented_format_loads_and_mismatched_public_key_is_corrupt)
{
    cr_assert_geq(sodium_init(), 0);
    const TempDir dir;
    CraftSpec spec;
    randombytes_buf(spec.seed.data(), spec.seed.size());
    randombytes_buf(spec.salt.data(), spec.salt.size());
    Key32 kek{};
    cr_assert_eq(crypto_pwhash(kek.data(), kek.size(), kPassphrase.data(), kPassphrase.size(), spec.salt.data(),
                               crypto_pwhash_OPSLIMIT_INTERACTIVE, crypto_pwhash_MEMLIMIT_INTERACTIVE,
                               crypto_pwhash_ALG_ARGON2ID13),
                 0);

    const auto good_path = dir.path() / "good.key";
    create_with(good_path, craft_key_file(spec, kek));
    const FounderKeyPair loaded = load_founder_key_file(good_path, bytes_of(kPassphrase));
    Key32 expected_public{};
    std::array<std::uint8_t, crypto_sign_SECRETKEYBYTES> expected_secret{};
    crypto_sign_seed_keypair(expected_public.data(), expected_secret.data(), spec.seed.data());
    cr_assert(loaded.public_key == expected_public);
    cr_assert(std::equal(expected_secret.begin(), expected_secret.end(), loaded.secret_key.data()));

    // Authentic files (sealed under the right KEK, the clear key inside the AAD) whose public
    // key is not the one the secret key implies: only the loader's consistency check stops them.
    Key32 other_public{};
    std::array<std::uint8_t, crypto_sign_SECRETKEYBYTES> other_secret{};
    crypto_sign_keypair(other_public.data(), other_secret.data());

    CraftSpec clear_key_swapped = spec;
    clear_key_swapped.stored_public = other_public;
    const auto swapped_path = dir.path() / "swapped.key";
    create_with(swapped_path, craft_key_file(clear_key_swapped, kek));
    (void)expect_error(Kind::Corrupt, [&] { (void)load_founder_key_file(swapped_path, bytes_of(kPassphrase)); });

    CraftSpec both_halves_swapped = clear_key_swapped;  // secret key = our seed || their public key
    both_halves_swapped.sealed_public_half = other_public;
    const auto halves_path = dir.path() / "halves.key";
    create_with(halves_path, craft_key_file(both_halves_swapped, kek));
    (void)expect_error(Kind::Corrupt, [&] { (void)load_founder_key_file(halves_path, bytes_of(kPassphrase)); });
}

Test(founder_key, round_trip_signs_verifiably_and_stores_no_plaintext_key)
{
    const TempDir dir;
    const auto path = dir.path() / "nested" / "deeper" / "founder.key";
    const FounderKeyPair created = create_founder_key_file(path, bytes_of(kPassphrase));
    cr_assert_eq(created.secret_key.size(), static_cast<std::size_t>(crypto_sign_SECRETKEYBYTES));

    struct stat info {};
    cr_assert_eq(::lstat(path.c_str(), &info), 0);
    cr_assert(S_ISREG(info.st_mode));
    cr_assert_eq(info.st_mode & 07777, 0600u, "mode is %o", info.st_mode & 07777);
    for (const auto& folder : {dir.path() / "nested", dir.path() / "nested" / "deeper"}) {
        cr_assert_eq(::stat(folder.c_str(), &info), 0);
        cr_assert_eq(info.st_mode & 0077, 0u, "created folders are private (mode %o)", info.st_mode & 07777);
    }

    const std::vector<std::uint8_t> file = read_all(path);
    cr_assert_eq(file.size(), kFileBytes);
    // The documented header, byte for byte: magic, then opslimit 2 and memlimit 64 MiB (the
    // INTERACTIVE costs) as u64 little-endian.
    static_assert(crypto_pwhash_OPSLIMIT_INTERACTIVE == 2 && crypto_pwhash_MEMLIMIT_INTERACTIVE == 64U << 20);
    const std::array<std::uint8_t, kSaltOffset> header{'C', 'V', 'F', 'K', 'E', 'Y', '0', '1', 2, 0, 0, 0,
                                                       0,   0,   0,   0,   0,   0,   0,   4,   0, 0, 0, 0};
    cr_assert(std::equal(header.begin(), header.end(), file.begin()), "the key file header is not the documented one");
    cr_assert(std::equal(created.public_key.begin(), created.public_key.end(), file.begin() + kPublicKeyOffset));
    const std::span<const std::uint8_t> seed(created.secret_key.data(), crypto_sign_SEEDBYTES);
    cr_assert_not(contains(file, seed), "the private seed appears in the file in plaintext");
    cr_assert_not(contains(file, created.secret_key.span()), "the secret key appears in the file in plaintext");

    const FounderKeyPair loaded = load_founder_key_file(path, bytes_of(kPassphrase));
    cr_assert(loaded.public_key == created.public_key);
    cr_assert_eq(loaded.secret_key.size(), created.secret_key.size());
    cr_assert_eq(sodium_memcmp(loaded.secret_key.data(), created.secret_key.data(), created.secret_key.size()), 0);

    const std::string_view message = "founder operation payload";
    const std::vector<std::uint8_t> signature = sign_detached(loaded, bytes_of(message));
    cr_assert_eq(signature.size(), static_cast<std::size_t>(crypto_sign_BYTES));
    cr_assert_eq(crypto_sign_verify_detached(signature.data(), bytes_of(message).data(), message.size(),
                                             loaded.public_key.data()),
                 0, "signature verifies with the public key stored in the file");
}

Test(founder_key, wrong_passphrase_is_reported_as_such)
{
    const TempDir dir;
    const auto path = dir.path() / "founder.key";
    (void)create_founder_key_file(path, bytes_of(kPassphrase));
    const std::string message = expect_error(
        Kind::WrongPassphrase, [&] { (void)load_founder_key_file(path, bytes_of("correct horse battery stapler")); });
    cr_assert(message.find("wrong passphrase") != std::string::npos, "%s", message.c_str());
    cr_assert(message.find(path.string()) != std::string::npos, "the message names the file: %s", message.c_str());
}

Test(founder_key, a_flipped_byte_anywhere_is_never_accepted)
{
    const TempDir dir;
    const auto path = dir.path() / "founder.key";
    (void)create_founder_key_file(path, bytes_of(kPassphrase));
    const std::vector<std::uint8_t> original = read_all(path);

    struct Flip {
        std::size_t offset;
        std::uint8_t mask;
        const char* field;
    };
    // One byte in every field. The cost flips land out of range and are refused before any
    // derivation (an in-range change would derive a different KEK and fail like a wrong
    // passphrase); every other flip has to be caught by the AEAD.
    const Flip flips[] = {
        {0, 0x01, "magic"},
        {kOpsOffset + 7, 0x80, "opslimit"},
        {kMemOffset + 4, 0x01, "memlimit"},
        {kSaltOffset + 3, 0x01, "salt"},
        {kPublicKeyOffset + 5, 0x01, "public key"},
        {kNonceOffset + 11, 0x01, "nonce"},
        {kCiphertextOffset + 1, 0x01, "ciphertext"},
        {kFileBytes - 1, 0x01, "tag"},
    };
    for (const Flip& flip : flips) {
        std::vector<std::uint8_t> tampered = original;
        tampered[flip.offset] ^= flip.mask;
        write_all(path, tampered);
        try {
            (void)load_founder_key_file(path, bytes_of(kPassphrase));
            cr_assert_fail("a file with a flipped %s byte was accepted", flip.field);
        } catch (const FounderKeyError& error) {
            cr_assert(error.kind() == Kind::WrongPassphrase || error.kind() == Kind::Corrupt,
                      "flipped %s byte gave kind %d", flip.field, static_cast<int>(error.kind()));
        }
    }
}

Test(founder_key, truncated_or_extended_file_is_corrupt)
{
    const TempDir dir;
    const auto path = dir.path() / "founder.key";
    const std::vector<std::uint8_t> original = craft_unopenable_key_file();
    create_with(path, original);

    for (const std::size_t length :
         {kFileBytes - 1, kCiphertextOffset, kNonceOffset, std::size_t{8}, std::size_t{3}, std::size_t{0}}) {
        write_all(path, std::span(original).first(length));
        (void)expect_error(Kind::Corrupt, [&] { (void)load_founder_key_file(path, bytes_of(kPassphrase)); });
    }
    std::vector<std::uint8_t> extended = original;
    extended.push_back(0);
    write_all(path, extended);
    (void)expect_error(Kind::Corrupt, [&] { (void)load_founder_key_file(path, bytes_of(kPassphrase)); });

    // Larger than anything the loader reads: still refused, never read in full.
    std::vector<std::uint8_t> huge = original;
    huge.resize(1 << 20, 0x41);
    write_all(path, huge);
    (void)expect_error(Kind::Corrupt, [&] { (void)load_founder_key_file(path, bytes_of(kPassphrase)); });
}

Test(founder_key, crafted_costs_are_refused_before_derivation)
{
    const TempDir dir;
    const auto path = dir.path() / "founder.key";
    const std::vector<std::uint8_t> original = craft_unopenable_key_file();
    create_with(path, original);

    const auto refused = [&](std::size_t offset, std::uint64_t value) {
        std::vector<std::uint8_t> crafted = original;
        put_u64_le(crafted, offset, value);
        write_all(path, crafted);
        // Corrupt, not Io (a failed huge allocation) or WrongPassphrase (a derivation that ran
        // and then failed authentication): the bound is checked before any derivation.
        (void)expect_error(Kind::Corrupt, [&] { (void)load_founder_key_file(path, bytes_of(kPassphrase)); });
    };
    refused(kMemOffset, std::uint64_t{1} << 40);                              // 1 TiB
    refused(kMemOffset, std::uint64_t{crypto_pwhash_MEMLIMIT_MODERATE} + 1);  // just past the bound
    refused(kMemOffset, crypto_pwhash_MEMLIMIT_MIN);                          // below what we write
    refused(kOpsOffset, UINT64_MAX);
    refused(kOpsOffset, std::uint64_t{crypto_pwhash_OPSLIMIT_MODERATE} + 1);
}

Test(founder_key, existing_file_is_never_overwritten)
{
    const TempDir dir;
    const auto path = dir.path() / "founder.key";
    const std::vector<std::uint8_t> original = craft_unopenable_key_file();
    create_with(path, original);

    const std::string message =
        expect_error(Kind::AlreadyExists, [&] { (void)create_founder_key_file(path, bytes_of("another passphrase")); });
    cr_assert(message.find(path.string()) != std::string::npos, "%s", message.c_str());
    cr_assert(read_all(path) == original, "the existing file is untouched");

    // A symlink at the key path is not written through (and is not "the existing key" to delete).
    const auto target = dir.path() / "elsewhere";
    const auto link = dir.path() / "link.key";
    cr_assert_eq(::symlink(target.c_str(), link.c_str()), 0);
    (void)expect_error(Kind::AlreadyExists, [&] { (void)create_founder_key_file(link, bytes_of(kPassphrase)); });
    cr_assert_not(std::filesystem::exists(target));
    cr_assert(std::filesystem::is_symlink(link));
}

Test(founder_key, weak_passphrase_is_refused)
{
    const TempDir dir;
    const auto path = dir.path() / "sub" / "founder.key";
    for (const std::string_view weak : {std::string_view{}, std::string_view{"1234567"}}) {
        (void)expect_error(Kind::WeakPassphrase, [&] { (void)create_founder_key_file(path, bytes_of(weak)); });
    }
    cr_assert_not(std::filesystem::exists(path), "nothing is written for a refused passphrase");
}

Test(founder_key, load_refuses_missing_symlinked_and_special_files)
{
    const TempDir dir;
    const auto missing = dir.path() / "missing.key";
    const std::string message =
        expect_error(Kind::Io, [&] { (void)load_founder_key_file(missing, bytes_of(kPassphrase)); });
    cr_assert(message.find(missing.string()) != std::string::npos, "%s", message.c_str());

    const auto real = dir.path() / "real";
    {
        UniqueFd fd(::open(real.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600));
    }
    const auto link = dir.path() / "link.key";
    cr_assert_eq(::symlink(real.c_str(), link.c_str()), 0);
    (void)expect_error(Kind::Io, [&] { (void)load_founder_key_file(link, bytes_of(kPassphrase)); });

    // A FIFO must be refused, not block vaultctl waiting for a writer.
    const auto fifo = dir.path() / "fifo.key";
    cr_assert_eq(::mkfifo(fifo.c_str(), 0600), 0);
    (void)expect_error(Kind::Io, [&] { (void)load_founder_key_file(fifo, bytes_of(kPassphrase)); });

    (void)expect_error(Kind::Io, [&] { (void)load_founder_key_file(dir.path(), bytes_of(kPassphrase)); });
}

Test(founder_key, passphrase_from_a_pipe)
{
    {
        const UniqueFd fd = pipe_with("correct horse\nsecond line\r\nlast");
        cr_assert_eq(text_of(read_passphrase_from_fd(fd.get())), "correct horse");
        // One line only: the rest stays readable, and the descriptor is still open.
        cr_assert_neq(::fcntl(fd.get(), F_GETFD), -1);
        cr_assert_eq(text_of(read_passphrase_from_fd(fd.get())), "second line", "CRLF is stripped");
        cr_assert_eq(text_of(read_passphrase_from_fd(fd.get())), "last", "end of file ends the line");
        cr_assert_eq(read_passphrase_from_fd(fd.get()).size(), 0u);
    }
    {
        const UniqueFd fd = pipe_with("with\rinner\rreturns\r\n");
        cr_assert_eq(text_of(read_passphrase_from_fd(fd.get())), "with\rinner\rreturns");
    }
    {
        // The writer stays open: the reader must stop at the newline, not wait for EOF.
        const UniqueFd fd = pipe_with("no eof needed\n", false);
        cr_assert_eq(text_of(read_passphrase_from_fd(fd.get())), "no eof needed");
    }
    (void)expect_error(Kind::Io, [] { (void)read_passphrase_from_fd(-1); });
}

Test(founder_key, over_long_passphrase_is_refused)
{
    const std::string longest(1024, 'x');
    {
        const UniqueFd fd = pipe_with(longest + "\n");
        cr_assert_eq(read_passphrase_from_fd(fd.get()).size(), 1024u);
    }
    {
        const UniqueFd fd = pipe_with(longest + "\r\n");
        cr_assert_eq(read_passphrase_from_fd(fd.get()).size(), 1024u);
    }
    for (const std::string& too_long : {longest + "y\n", longest + "y", longest + "yy\r\n", std::string(5000, 'z')}) {
        const UniqueFd fd = pipe_with(too_long);
        const std::string message = expect_error(Kind::Io, [&] { (void)read_passphrase_from_fd(fd.get()); });
        cr_assert(message.find("1024") != std::string::npos, "%s", message.c_str());
        cr_assert(message.find("xxxx") == std::string::npos, "the message never echoes the input");
    }
}

Test(founder_key, sensitive_bytes_move_and_resize)
{
    SensitiveBytes a(16);
    cr_assert_eq(a.size(), 16u);
    cr_assert_eq(a.capacity(), 16u);
    std::memset(a.data(), 0x5a, a.size());
    a.resize(4);
    cr_assert_eq(a.size(), 4u);
    a.resize(16);
    cr_assert_eq(a.data()[8], 0, "bytes given up by a shrink are wiped");
    try {
        a.resize(17);
        cr_assert_fail("resize beyond capacity must throw");
    } catch (const std::length_error&) {
    }

    const std::uint8_t* storage = a.data();
    SensitiveBytes b(std::move(a));
    cr_assert_eq(b.data(), storage);
    cr_assert_null(a.data());  // NOLINT(bugprone-use-after-move): the moved-from state is the point
    cr_assert_eq(a.size(), 0u);

    SensitiveBytes c(1);
    c = std::move(b);
    cr_assert_eq(c.data(), storage);
    cr_assert_eq(c.capacity(), 16u);
    cr_assert_null(b.data());  // NOLINT(bugprone-use-after-move)
}

// --- terminal prompts, driven through a pseudo-terminal that a child adopts as its controlling tty

namespace {

struct Pty {
    UniqueFd master;
    UniqueFd slave;  // held by the parent too, so the terminal outlives the child and can be inspected
    std::string slave_name;
};

Pty open_pty()
{
    Pty pty;
    pty.master = UniqueFd(::posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC));
    cr_assert(pty.master.valid());
    cr_assert_eq(::grantpt(pty.master.get()), 0);
    cr_assert_eq(::unlockpt(pty.master.get()), 0);
    pty.slave_name = ::ptsname(pty.master.get());
    pty.slave = UniqueFd(::open(pty.slave_name.c_str(), O_RDWR | O_NOCTTY | O_CLOEXEC));
    cr_assert(pty.slave.valid());
    return pty;
}

// Child side: new session, the pty as controlling terminal, then `body`'s return is the exit code.
pid_t spawn_on_pty(const Pty& pty, const std::function<int()>& body)
{
    const pid_t pid = ::fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        int code = 100;
        // A failed assertion in the parent ends it without reaping us: never outlive it for
        // long, and do not hold the master open (its last close hangs the terminal up).
        ::alarm(10);
        ::close(pty.master.get());
        try {
            ::signal(SIGINT, SIG_DFL);
            if (::setsid() < 0) {
                ::_exit(101);
            }
            // A session leader without a terminal acquires the first one it opens.
            UniqueFd tty(::open(pty.slave_name.c_str(), O_RDWR | O_CLOEXEC));
            if (!tty) {
                ::_exit(102);
            }
            code = body();
        } catch (...) {
            code = 103;
        }
        ::_exit(code);
    }
    return pid;
}

// Reads the master until `needle` has appeared in the accumulated output (or 5 s pass).
void await_output(int master, std::string& seen, std::string_view needle)
{
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (seen.find(needle) == std::string::npos) {
        cr_assert_lt(std::chrono::steady_clock::now(), deadline, "no '%.*s' on the terminal; saw '%s'",
                     static_cast<int>(needle.size()), needle.data(), seen.c_str());
        pollfd waiter{master, POLLIN, 0};
        if (::poll(&waiter, 1, 100) > 0) {
            char chunk[256];
            const ssize_t got = ::read(master, chunk, sizeof chunk);
            if (got > 0) {
                seen.append(chunk, static_cast<std::size_t>(got));
            }
        }
    }
}

void drain(int master, std::string& seen)
{
    pollfd waiter{master, POLLIN, 0};
    while (::poll(&waiter, 1, 50) > 0) {
        char chunk[256];
        const ssize_t got = ::read(master, chunk, sizeof chunk);
        if (got <= 0) {
            return;
        }
        seen.append(chunk, static_cast<std::size_t>(got));
    }
}

int wait_for(pid_t pid)
{
    int status = 0;
    cr_assert_eq(::waitpid(pid, &status, 0), pid);
    return status;
}

void type_line(int master, std::string_view line)
{
    cr_assert_eq(::write(master, line.data(), line.size()), static_cast<ssize_t>(line.size()));
}

}  // namespace

Test(founder_key, terminal_prompt_hides_input_and_confirms, .timeout = 20)
{
    const Pty pty = open_pty();
    const pid_t child = spawn_on_pty(pty, [] {
        const SensitiveBytes passphrase = read_passphrase_from_terminal("Founder passphrase: ", true);
        return text_of(passphrase) == "tty secret 42" ? 0 : 1;
    });
    std::string seen;
    await_output(pty.master.get(), seen, "Founder passphrase: ");
    type_line(pty.master.get(), "tty secret 42\n");
    await_output(pty.master.get(), seen, "Repeat to confirm: ");
    type_line(pty.master.get(), "tty secret 42\r\n");
    const int status = wait_for(child);
    drain(pty.master.get(), seen);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %d", status);
    cr_assert(seen.find("tty secret") == std::string::npos, "the passphrase was echoed: '%s'", seen.c_str());

    termios settings{};
    cr_assert_eq(::tcgetattr(pty.slave.get(), &settings), 0);
    cr_assert(settings.c_lflag & ECHO, "echo is back on afterwards");
}

Test(founder_key, terminal_confirmation_mismatch_is_refused, .timeout = 20)
{
    const Pty pty = open_pty();
    const pid_t child = spawn_on_pty(pty, [] {
        try {
            (void)read_passphrase_from_terminal("Founder passphrase: ", true);
            return 1;
        } catch (const FounderKeyError& error) {
            return std::string_view(error.what()).find("do not match") != std::string_view::npos ? 0 : 2;
        }
    });
    std::string seen;
    await_output(pty.master.get(), seen, "Founder passphrase: ");
    type_line(pty.master.get(), "first attempt\n");
    await_output(pty.master.get(), seen, "Repeat to confirm: ");
    type_line(pty.master.get(), "first attempT\n");
    const int status = wait_for(child);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %d", status);
}

Test(founder_key, interrupt_at_the_prompt_restores_echo, .timeout = 20)
{
    const Pty pty = open_pty();
    const pid_t child = spawn_on_pty(pty, [] {
        (void)read_passphrase_from_terminal("Founder passphrase: ", false);
        return 1;  // not reached: ^C ends the process
    });
    std::string seen;
    await_output(pty.master.get(), seen, "Founder passphrase: ");
    termios during{};
    cr_assert_eq(::tcgetattr(pty.slave.get(), &during), 0);
    cr_assert_not(during.c_lflag & ECHO, "echo is off while the prompt waits");
    type_line(pty.master.get(), "half typed\x03");
    const int status = wait_for(child);
    cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGINT, "child status %d", status);

    termios after{};
    cr_assert_eq(::tcgetattr(pty.slave.get(), &after), 0);
    cr_assert(after.c_lflag & ECHO, "echo restored before the interrupt took effect");
}

Test(founder_key, no_terminal_points_to_passphrase_fd)
{
    const pid_t child = ::fork();
    cr_assert_neq(child, -1);
    if (child == 0) {
        int code = 1;
        try {
            if (::setsid() < 0) {  // a new session has no controlling terminal
                ::_exit(2);
            }
            (void)read_passphrase_from_terminal("Founder passphrase: ", false);
        } catch (const FounderKeyError& error) {
            code = std::string_view(error.what()).find("--passphrase-fd") != std::string_view::npos ? 0 : 3;
        } catch (...) {
            code = 4;
        }
        ::_exit(code);
    }
    const int status = wait_for(child);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %d", status);
}
