// The transport key pin next to the founder key, and the sealed pipe a secret value travels in
// (cli/founder_key.hpp, cli/vault_client.hpp): only ciphertext goes into the pipe, and a pin is
// trusted only when the founder key signed it.
#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "cli/founder_key.hpp"
#include "cli/vault_client.hpp"
#include "lib/fileio/unique_fd.hpp"

using codexvault::UniqueFd;
using codexvault::cli::FounderKeyError;
using codexvault::cli::FounderKeyPair;
using codexvault::cli::load_transport_pin;
using codexvault::cli::sealed_value_pipe;
using codexvault::cli::transport_pin_path;
using codexvault::cli::TransportPublicKey;
using codexvault::cli::write_transport_pin;
using Kind = codexvault::cli::FounderKeyError::Kind;

namespace {

std::filesystem::path g_dir;

void make_dir()
{
    cr_assert_geq(sodium_init(), 0);
    char name[] = "/tmp/cv-transport-pin-XXXXXX";
    cr_assert_not_null(::mkdtemp(name), "mkdtemp: %s", std::strerror(errno));
    g_dir = name;
}

void remove_dir()
{
    std::error_code ignored;
    std::filesystem::remove_all(g_dir, ignored);
}

// A founder key pair in memory; the pin never needs the key file itself.
FounderKeyPair founder_pair()
{
    FounderKeyPair pair;
    crypto_sign_keypair(pair.public_key.data(), pair.secret_key.data());
    return pair;
}

struct BoxKeys {
    TransportPublicKey public_key{};
    std::array<std::uint8_t, crypto_box_SECRETKEYBYTES> secret_key{};
};

BoxKeys box_keys()
{
    BoxKeys keys;
    crypto_box_keypair(keys.public_key.data(), keys.secret_key.data());
    return keys;
}

Kind load_failure(const std::filesystem::path& founder_key, const FounderKeyPair& pair)
{
    try {
        (void)load_transport_pin(founder_key, pair);
    } catch (const FounderKeyError& error) {
        return error.kind();
    }
    cr_assert_fail("the pin loaded");
    return Kind::Io;
}

std::vector<std::uint8_t> read_all(int fd)
{
    std::vector<std::uint8_t> out;
    std::uint8_t chunk[4096];
    for (;;) {
        const ssize_t n = ::read(fd, chunk, sizeof chunk);
        cr_assert_geq(n, 0);
        if (n == 0) {
            return out;
        }
        out.insert(out.end(), chunk, chunk + n);
    }
}

}  // namespace

TestSuite(transport_pin, .init = make_dir, .fini = remove_dir);

Test(transport_pin, a_written_pin_loads_back_and_is_private)
{
    const FounderKeyPair founder = founder_pair();
    const auto founder_key = g_dir / "founder.key";
    const BoxKeys daemon = box_keys();
    write_transport_pin(founder_key, founder, daemon.public_key);
    cr_assert(load_transport_pin(founder_key, founder) == daemon.public_key);
    struct stat st {};
    cr_assert_eq(::stat(transport_pin_path(founder_key).c_str(), &st), 0);
    cr_assert_eq(st.st_mode & 07777, 0600u);
    cr_assert_eq(st.st_size, 104);

    const BoxKeys next = box_keys();
    write_transport_pin(founder_key, founder, next.public_key);
    cr_assert(load_transport_pin(founder_key, founder) == next.public_key, "a re-pin replaces the pin");
    cr_assert_not(std::filesystem::exists(g_dir / "founder.key.transport.tmp"), "a temp file was left behind");
}

Test(transport_pin, a_missing_pin_says_how_to_make_one)
{
    const FounderKeyPair founder = founder_pair();
    try {
        (void)load_transport_pin(g_dir / "founder.key", founder);
        cr_assert_fail("a missing pin loaded");
    } catch (const FounderKeyError& error) {
        cr_assert_eq(error.kind(), Kind::Io);
        cr_assert(std::string(error.what()).find("vaultctl pin-transport-key") != std::string::npos, "%s",
                  error.what());
    }
}

Test(transport_pin, a_pin_not_signed_by_this_founder_key_or_altered_is_refused)
{
    const FounderKeyPair founder = founder_pair();
    const FounderKeyPair stranger = founder_pair();
    const auto founder_key = g_dir / "founder.key";
    write_transport_pin(founder_key, stranger, box_keys().public_key);
    cr_assert_eq(load_failure(founder_key, founder), Kind::Corrupt);

    write_transport_pin(founder_key, founder, box_keys().public_key);
    const auto pin = transport_pin_path(founder_key);
    for (const std::size_t offset :
         {std::size_t{0}, std::size_t{8}, std::size_t{39}, std::size_t{40}, std::size_t{103}}) {
        std::fstream file(pin, std::ios::in | std::ios::out | std::ios::binary);
        char byte = 0;
        file.seekg(static_cast<std::streamoff>(offset));
        file.read(&byte, 1);
        byte = static_cast<char>(byte ^ 0x01);
        file.seekp(static_cast<std::streamoff>(offset));
        file.write(&byte, 1);
        file.close();
        cr_assert_eq(load_failure(founder_key, founder), Kind::Corrupt, "byte %zu altered", offset);
        file.open(pin, std::ios::in | std::ios::out | std::ios::binary);
        byte = static_cast<char>(byte ^ 0x01);
        file.seekp(static_cast<std::streamoff>(offset));
        file.write(&byte, 1);
    }
    cr_assert_no_throw((void)load_transport_pin(founder_key, founder), std::exception, "restored pin must load");
    std::filesystem::resize_file(pin, 103);
    cr_assert_eq(load_failure(founder_key, founder), Kind::Corrupt, "a truncated pin");
}

Test(transport_pin, a_symlink_at_the_pin_path_is_not_followed)
{
    const FounderKeyPair founder = founder_pair();
    const auto founder_key = g_dir / "founder.key";
    write_transport_pin(g_dir / "elsewhere", founder, box_keys().public_key);
    std::filesystem::create_symlink(transport_pin_path(g_dir / "elsewhere"), transport_pin_path(founder_key));
    cr_assert_eq(load_failure(founder_key, founder), Kind::Io);
}

TestSuite(sealed_value_pipe);

Test(sealed_value_pipe, the_pipe_holds_only_a_box_that_opens_to_the_value)
{
    cr_assert_geq(sodium_init(), 0);
    const BoxKeys daemon = box_keys();
    const std::string canary = "sk-canary-transport-0123456789abcdef";
    const std::vector<std::uint8_t> value(canary.begin(), canary.end());
    const UniqueFd pipe = sealed_value_pipe(daemon.public_key, value);
    const std::vector<std::uint8_t> box = read_all(pipe.get());  // EOF: the write end is closed
    cr_assert_eq(box.size(), value.size() + crypto_box_SEALBYTES);
    cr_assert(std::search(box.begin(), box.end(), value.begin(), value.end()) == box.end(), "the value is in the pipe");
    std::vector<std::uint8_t> opened(value.size());
    cr_assert_eq(
        crypto_box_seal_open(opened.data(), box.data(), box.size(), daemon.public_key.data(), daemon.secret_key.data()),
        0);
    cr_assert(opened == value);
}

Test(sealed_value_pipe, the_largest_value_fits_the_pipe_before_the_call)
{
    cr_assert_geq(sodium_init(), 0);
    const BoxKeys daemon = box_keys();
    const std::vector<std::uint8_t> value(64 * 1024, 0x5A);
    const UniqueFd pipe = sealed_value_pipe(daemon.public_key, value);  // would block if it did not fit
    cr_assert_eq(read_all(pipe.get()).size(), value.size() + crypto_box_SEALBYTES);
}
