// What the store's unit tests share beyond tests/common/scratch_files.hpp: random canaries,
// comparing a SecureBuffer, and the VaultError a call threw.
#pragma once

#include <sodium.h>

#include <algorithm>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "common/vault_error.hpp"
#include "daemon/store/secure_buffer.hpp"
#include "tests/common/scratch_files.hpp"

namespace codexvault::scratch {

// make_root() for tests that use libsodium.
inline void make_sodium_root()
{
    cr_assert_geq(sodium_init(), 0);
    make_root();
}

inline Bytes random_bytes(std::size_t size)
{
    Bytes out(size);
    randombytes_buf(out.data(), out.size());
    return out;
}

inline bool same(const store::SecureBuffer& buffer, const Bytes& expected)
{
    return buffer.size() == expected.size() && std::equal(expected.begin(), expected.end(), buffer.data());
}

// The ErrorCode a call threw as VaultError, or nullopt when it did not throw one.
inline std::optional<ErrorCode> vault_error_of(const std::function<void()>& call, std::string* message = nullptr)
{
    try {
        call();
    } catch (const VaultError& error) {
        if (message != nullptr) {
            *message = error.what();
        }
        return error.code();
    }
    return std::nullopt;
}

}  // namespace codexvault::scratch
