// The run finder's vector kernel (runs.hpp): AVX2, chosen at run time, so the library still
// runs on any x86-64 (and builds elsewhere, where the portable finder is all there is).
#include "lib/scan/runs.hpp"

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define CODEX_VAULT_RUNS_AVX2 1
#endif

namespace codexvault::scan::detail {

namespace {

// One run's first `min` bytes fit in two 64-byte words.
constexpr std::size_t kMaxVectorMin = 64;
// As the portable finder.
constexpr std::size_t kMaxAnchors = 4;

#if CODEX_VAULT_RUNS_AVX2
bool cpu_has_avx2() noexcept
{
    static const bool has = [] {
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx2") != 0;
    }();
    return has;
}
#endif

#if CODEX_VAULT_RUNS_AVX2

// Adds a byte set to the nibble tables, one bit per distinct row shape from `next_bit` on;
// returns the bits it used, or 0 when it needs more than are left (or the set is empty).
std::uint8_t add_nibble_set(const ByteTable& set, unsigned& next_bit, std::array<std::uint8_t, 16>& lo,
                            std::array<std::uint8_t, 16>& hi)
{
    std::array<std::uint16_t, 16> rows{};
    for (std::size_t c = 0; c < 256; ++c) {
        if (set[c]) {
            rows[c >> 4] = static_cast<std::uint16_t>(rows[c >> 4] | (1u << (c & 15)));
        }
    }
    std::array<std::uint16_t, 8> shapes{};
    std::array<unsigned, 8> bits{};
    std::size_t shape_count = 0;
    std::uint8_t used = 0;
    for (std::size_t row = 0; row < 16; ++row) {
        if (rows[row] == 0) {
            continue;
        }
        std::size_t shape = 0;
        while (shape < shape_count && shapes[shape] != rows[row]) {
            ++shape;
        }
        if (shape == shape_count) {
            if (next_bit == 8) {
                return 0;
            }
            shapes[shape_count] = rows[row];
            bits[shape_count++] = next_bit++;
        }
        const auto bit = static_cast<std::uint8_t>(1u << bits[shape]);
        hi[row] = static_cast<std::uint8_t>(hi[row] | bit);
        used = static_cast<std::uint8_t>(used | bit);
    }
    for (std::size_t shape = 0; shape < shape_count; ++shape) {
        for (std::size_t column = 0; column < 16; ++column) {
            if ((shapes[shape] >> column) & 1u) {
                lo[column] = static_cast<std::uint8_t>(lo[column] | (1u << bits[shape]));
            }
        }
    }
    return used;
}

struct Masks {
    std::uint64_t in_class;
    std::uint64_t anchor;
};

class Classifier {
public:
    __attribute__((target("avx2"))) explicit Classifier(const VectorRunsPlan& plan)
        : lo_(_mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(plan.lo.data())))),
          hi_(_mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(plan.hi.data())))),
          class_bits_(_mm256_set1_epi8(static_cast<char>(plan.class_bits))),
          anchor_bits_(_mm256_set1_epi8(static_cast<char>(plan.anchor_bits)))
    {
    }

    // Class and anchor bits of the 64 bytes at p (all readable).
    __attribute__((target("avx2"), always_inline)) Masks classify(const unsigned char* p) const
    {
        std::uint32_t class_low = 0;
        std::uint32_t class_high = 0;
        std::uint32_t anchor_low = 0;
        std::uint32_t anchor_high = 0;
        half(p, class_low, anchor_low);
        half(p + 32, class_high, anchor_high);
        return {class_low | (std::uint64_t{class_high} << 32), anchor_low | (std::uint64_t{anchor_high} << 32)};
    }

private:
    // Two lookups give each byte its shape bits; a byte is in a set when any of the set's bits
    // is on, which a saturating add of 0x7F moves to the top bit that movemask collects.
    __attribute__((target("avx2"), always_inline)) void half(const unsigned char* q, std::uint32_t& in_class,
                                                             std::uint32_t& anchor) const
    {
        const __m256i nibble = _mm256_set1_epi8(0x0F);
        const __m256i top = _mm256_set1_epi8(0x7F);
        const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q));
        const __m256i low = _mm256_shuffle_epi8(lo_, _mm256_and_si256(v, nibble));
        const __m256i high = _mm256_shuffle_epi8(hi_, _mm256_and_si256(_mm256_srli_epi16(v, 4), nibble));
        const __m256i shapes = _mm256_and_si256(low, high);
        in_class = static_cast<std::uint32_t>(
            _mm256_movemask_epi8(_mm256_adds_epu8(_mm256_and_si256(shapes, class_bits_), top)));
        anchor = static_cast<std::uint32_t>(
            _mm256_movemask_epi8(_mm256_adds_epu8(_mm256_and_si256(shapes, anchor_bits_), top)));
    }

    __m256i lo_;
    __m256i hi_;
    __m256i class_bits_;
    __m256i anchor_bits_;
};

// Bits of the 64 bytes at `at`, where fewer than 64 are left (bytes past the end are neither
// class nor anchor). Out of line: the main loop's words are whole.
__attribute__((target("avx2"), noinline)) Masks classify_tail(const Classifier& classifier, const unsigned char* bytes,
                                                              std::size_t size, std::size_t at)
{
    if (at >= size) {
        return {0, 0};
    }
    alignas(32) std::array<unsigned char, 64> tail{};
    std::memcpy(tail.data(), bytes + at, size - at);
    Masks masks = classifier.classify(tail.data());
    const std::uint64_t valid = (std::uint64_t{1} << (size - at)) - 1;
    masks.in_class &= valid;
    masks.anchor &= valid;
    return masks;
}

__attribute__((target("avx2"), always_inline)) inline Masks classify_at(const Classifier& classifier,
                                                                        const unsigned char* bytes, std::size_t size,
                                                                        std::size_t at)
{
    return at < size && size - at >= 64 ? classifier.classify(bytes + at) : classify_tail(classifier, bytes, size, at);
}

#endif

// Non-zero when some aligned `chunk`-bit lane of `bits` is all ones (chunk 8, 16 or 32; any
// other chunk: always non-zero). The word-at-a-time zero-lane test: exact about whether there is
// one.
inline std::uint64_t full_chunks(std::uint64_t bits, unsigned chunk) noexcept
{
    const std::uint64_t zeros = ~bits;
    switch (chunk) {
    case 8:
        return (zeros - 0x0101010101010101ULL) & ~zeros & 0x8080808080808080ULL;
    case 16:
        return (zeros - 0x0001000100010001ULL) & ~zeros & 0x8000800080008000ULL;
    case 32:
        return (zeros - 0x0000000100000001ULL) & ~zeros & 0x8000000080000000ULL;
    default:
        return 1;
    }
}

}  // namespace

}  // namespace codexvault::scan::detail

namespace codexvault::scan {

RunsAfterPlan plan_runs_after(std::string_view after, const ByteTable& in_class, std::size_t min,
                              std::size_t max) noexcept
{
    using namespace detail;
    RunsAfterPlan plan;
    after = after.substr(0, std::min(after.size(), kMaxAnchors));
    // No cap is the whole text: no run is longer.
    const std::size_t cap = max == 0 ? SIZE_MAX : max + 1;
#if CODEX_VAULT_RUNS_AVX2
    if (after.empty() || min == 0 || min > kMaxVectorMin || cap < min || !cpu_has_avx2()) {
        return plan;
    }
    ByteTable anchors{};
    for (const char c : after) {
        const auto byte = static_cast<unsigned char>(c);
        // An anchor inside the class could sit inside a run; the portable finder handles that.
        if (in_class[byte]) {
            return plan;
        }
        anchors[byte] = true;
    }
    unsigned next_bit = 0;
    plan.class_bits = add_nibble_set(in_class, next_bit, plan.lo, plan.hi);
    plan.anchor_bits = add_nibble_set(anchors, next_bit, plan.lo, plan.hi);
    if (plan.class_bits == 0 || plan.anchor_bits == 0) {
        return plan;
    }
    plan.min = min;
    plan.cap = cap;
    // The widest aligned chunk every run of `min` bytes must hold whole: any 2g - 1 bytes in a
    // row hold an aligned g.
    for (const unsigned chunk : {32u, 16u, 8u}) {
        if (2 * chunk - 1 <= min) {
            plan.chunk = chunk;
            break;
        }
    }
    plan.usable = true;
#else
    (void)in_class;
    (void)min;
    (void)cap;
#endif
    return plan;
}

}  // namespace codexvault::scan

namespace codexvault::scan::detail {

#if CODEX_VAULT_RUNS_AVX2

__attribute__((target("avx2"))) void vector_runs_after(const VectorRunsPlan& plan, std::string_view text, EmitRun emit,
                                                       void* context)
{
    const auto* bytes = reinterpret_cast<const unsigned char*>(text.data());
    const std::size_t size = text.size();
    const Classifier classifier(plan);
    const std::uint64_t first_min = plan.min == 64 ? ~std::uint64_t{0} : (std::uint64_t{1} << plan.min) - 1;
    Masks current = classify_at(classifier, bytes, size, 0);
    std::uint64_t anchor_carry = 0;  // the last byte of the previous word was an anchor
    for (std::size_t base = 0; base < size; base += 64) {
        const Masks next = classify_at(classifier, bytes, size, base + 64);
        // A run can begin where the byte before is an anchor and the byte itself is in the class.
        std::uint64_t starts = ((current.anchor << 1) | anchor_carry) & current.in_class;
        anchor_carry = current.anchor >> 63;
        // A run of `min` starting in this word holds a whole aligned chunk of this word or the
        // next: without one, no start here can be the beginning of a run (the common case in
        // code, where quotes abound and class bytes come in words).
        starts = (full_chunks(current.in_class, plan.chunk) | full_chunks(next.in_class, plan.chunk)) != 0 ? starts : 0;
        while (starts != 0) {
            const auto bit = static_cast<unsigned>(__builtin_ctzll(starts));
            starts &= starts - 1;
            // The class bits of the 64 bytes from here, and of the 64 - bit after those (the
            // rest of the next word).
            const std::uint64_t ahead =
                bit == 0 ? current.in_class : (current.in_class >> bit) | (next.in_class << (64 - bit));
            if ((ahead & first_min) != first_min) {
                continue;
            }
            // Its length: class bits from here, through later words while they are all set, up
            // to the cap.
            const std::size_t begin = base + bit;
            std::size_t length = 0;
            if (~ahead != 0) {
                length = static_cast<std::size_t>(__builtin_ctzll(~ahead));
            } else {
                const std::uint64_t valid = bit == 0 ? ~std::uint64_t{0} : (std::uint64_t{1} << (64 - bit)) - 1;
                const std::uint64_t later = (next.in_class >> bit) & valid;
                if (later != valid) {
                    length = 64 + static_cast<std::size_t>(__builtin_ctzll(~later));
                } else {
                    length = 128 - bit;
                    std::size_t at = begin + length;
                    while (length < plan.cap && at < size) {
                        const std::uint64_t more = classify_at(classifier, bytes, size, at).in_class;
                        if (more != ~std::uint64_t{0}) {
                            length += static_cast<std::size_t>(__builtin_ctzll(~more));
                            break;
                        }
                        length += 64;
                        at += 64;
                    }
                }
            }
            length = length < plan.cap ? length : plan.cap;
            if (begin + length > size) {
                length = size - begin;
            }
            if (!emit(context, begin, begin + length)) {
                return;
            }
        }
        current = next;
    }
}

#else

void vector_runs_after(const VectorRunsPlan& /*plan*/, std::string_view /*text*/, EmitRun /*emit*/, void* /*context*/)
{
}

#endif

}  // namespace codexvault::scan::detail
