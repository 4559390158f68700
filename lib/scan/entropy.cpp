#include "lib/scan/entropy.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace codexvault::scan {

namespace {

// c * log2(c) for the counts short values have, computed once: H = log2(n) - sum(c log2 c) / n
// then needs no logarithm per distinct byte.
constexpr std::size_t kTableCounts = 4096;

const std::array<double, kTableCounts>& c_log_c()
{
    static const std::array<double, kTableCounts> table = [] {
        std::array<double, kTableCounts> out{};
        for (std::size_t c = 1; c < kTableCounts; ++c) {
            out[c] = static_cast<double>(c) * std::log2(static_cast<double>(c));
        }
        return out;
    }();
    return table;
}

}  // namespace

double shannon_entropy(std::string_view bytes) noexcept
{
    if (bytes.empty()) {
        return 0.0;
    }
    const auto& table = c_log_c();
    double sum = 0.0;
    if (bytes.size() < 256) {
        // Token-sized values: byte counts fit in a byte, and only the bytes present are summed
        // (each once: its count is cleared when it is added).
        std::array<std::uint8_t, 256> counts{};
        for (const char c : bytes) {
            ++counts[static_cast<unsigned char>(c)];
        }
        for (const char c : bytes) {
            auto& count = counts[static_cast<unsigned char>(c)];
            sum += table[count];
            count = 0;
        }
    } else {
        std::array<std::uint32_t, 256> counts{};
        for (const char c : bytes) {
            ++counts[static_cast<unsigned char>(c)];
        }
        for (const auto count : counts) {
            sum += count < kTableCounts ? table[count]
                                        : static_cast<double>(count) * std::log2(static_cast<double>(count));
        }
    }
    const double total = static_cast<double>(bytes.size());
    return std::max(0.0, std::log2(total) - sum / total);
}

}  // namespace codexvault::scan
