// Zeroes memory that held secret bytes before it is released. memset is called through a
// volatile function pointer, so the compiler cannot prove the stores dead and drop them. A copy a
// reallocation leaves behind is out of its reach: buffers that hold secret bytes are sized once
// (reserve), or grow through WipingAllocator.
#pragma once

#include <cstddef>
#include <cstring>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

namespace codexvault::redact {

inline void wipe_bytes(void* data, std::size_t size) noexcept
{
    void* (*volatile zero)(void*, int, std::size_t) = std::memset;
    if (size != 0) {
        zero(data, 0, size);
    }
}

// The whole buffer, not only the live bytes: a string that was moved from (its small-string
// buffer keeps the old bytes) or shrunk still holds secret bytes past its size.
inline void wipe(std::string& text) noexcept
{
    text.resize(text.capacity());  // never reallocates; the standard way to reach every byte
    wipe_bytes(text.data(), text.size());
    text.clear();
}

template <typename T, typename Allocator>
requires std::is_trivially_copyable_v<T>
void wipe(std::vector<T, Allocator>& items) noexcept
{
    wipe_bytes(items.data(), items.size() * sizeof(T));
    items.clear();
}

inline void wipe(std::vector<std::string>& texts) noexcept
{
    for (auto& text : texts) {
        wipe(text);
    }
    texts.clear();
}

// For containers that grow while they hold secret bytes: every buffer they give back, including
// the ones a reallocation leaves behind, is zeroed first.
template <typename T>
struct WipingAllocator {
    using value_type = T;
    WipingAllocator() = default;
    template <typename U>
    WipingAllocator(const WipingAllocator<U>& /*other*/) noexcept  // NOLINT(google-explicit-constructor): rebinding
    {
    }
    T* allocate(std::size_t n) { return std::allocator<T>{}.allocate(n); }
    void deallocate(T* p, std::size_t n) noexcept
    {
        wipe_bytes(p, n * sizeof(T));
        std::allocator<T>{}.deallocate(p, n);
    }
    template <typename U>
    bool operator==(const WipingAllocator<U>& /*other*/) const noexcept
    {
        return true;
    }
};

}  // namespace codexvault::redact
