// Statistics and figure formatting shared by the benchmark programs (bus_bench, fdatasync_bench,
// audit_verify_bench): nearest-rank percentiles of one sample, the median over interleaved rounds,
// ratios, and the one-line figures with their targets that scripts/run-bench.sh shows as they are.
//
// A figure line reads "NAME: VALUE (target OP T) — met|not met"; a figure without a target has no
// parentheses, a note after it is set off by two blanks. The verdict compares the value as printed
// (rounded to the decimals shown), so a line never contradicts itself. Figures are information
// only: no program fails because a target is missed.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace codexvault::bench {

inline std::int64_t now_ns() noexcept
{
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

// Nearest-rank percentile p (0..100] of latencies sorted ascending, in nanoseconds; returned in
// microseconds, 0 for an empty sample.
inline double percentile_us(std::span<const std::int64_t> sorted_ns, double p) noexcept
{
    if (sorted_ns.empty()) {
        return 0.0;
    }
    auto rank = static_cast<std::size_t>(std::ceil(p / 100.0 * static_cast<double>(sorted_ns.size())));
    rank = std::clamp<std::size_t>(rank, 1, sorted_ns.size());
    return static_cast<double>(sorted_ns[rank - 1]) / 1000.0;
}

// The figures of one sample (one round of one measurement).
struct Sample {
    std::uint64_t calls = 0;   // successful calls (their latencies are the sample)
    std::uint64_t errors = 0;  // failed calls, not in the percentiles
    double wall_s = 0.0;
    double calls_per_s = 0.0;  // successful calls over the wall time
    double p50_us = 0.0;
    double p90_us = 0.0;
    double p99_us = 0.0;
    double max_us = 0.0;
};

// Sorts `latencies_ns` and summarises it.
inline Sample summarise(std::vector<std::int64_t>& latencies_ns, double wall_s, std::uint64_t errors)
{
    std::sort(latencies_ns.begin(), latencies_ns.end());
    Sample s;
    s.calls = latencies_ns.size();
    s.errors = errors;
    s.wall_s = wall_s;
    s.calls_per_s = wall_s > 0.0 ? static_cast<double>(s.calls) / wall_s : 0.0;
    s.p50_us = percentile_us(latencies_ns, 50.0);
    s.p90_us = percentile_us(latencies_ns, 90.0);
    s.p99_us = percentile_us(latencies_ns, 99.0);
    s.max_us = latencies_ns.empty() ? 0.0 : static_cast<double>(latencies_ns.back()) / 1000.0;
    return s;
}

// A figure that may be missing (a measurement that did not run or had no successful round).
using Value = std::optional<double>;

// The median of the values (the mean of the middle two for an even count); nullopt when empty.
inline Value median(std::vector<double> values)
{
    if (values.empty()) {
        return std::nullopt;
    }
    std::sort(values.begin(), values.end());
    const std::size_t n = values.size();
    return n % 2 == 1 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2.0;
}

// a / b when both are there and positive.
inline Value ratio(Value a, Value b)
{
    if (!a || !b || *a <= 0.0 || *b <= 0.0) {
        return std::nullopt;
    }
    return *a / *b;
}

inline Value difference(Value a, Value b)
{
    if (!a || !b) {
        return std::nullopt;
    }
    return *a - *b;
}

// The rounds of one measurement. A round that measured (at least one successful call, every
// client connected) contributes its figures; every round contributes its failed calls. Each
// figure is the median of the measured rounds' figures.
class Rounds {
public:
    void add(const Sample& sample)
    {
        samples_.push_back(sample);
        errors_ += sample.errors;
    }
    void add_failed(std::uint64_t errors) { errors_ += errors; }

    [[nodiscard]] std::size_t measured() const noexcept { return samples_.size(); }
    [[nodiscard]] std::uint64_t errors() const noexcept { return errors_; }
    [[nodiscard]] Value calls_per_s() const { return median_of(&Sample::calls_per_s); }
    [[nodiscard]] Value p50_us() const { return median_of(&Sample::p50_us); }
    [[nodiscard]] Value p90_us() const { return median_of(&Sample::p90_us); }
    [[nodiscard]] Value p99_us() const { return median_of(&Sample::p99_us); }
    // The lowest and highest round's calls/s.
    [[nodiscard]] std::optional<std::pair<double, double>> rate_range() const
    {
        if (samples_.empty()) {
            return std::nullopt;
        }
        const auto [lo, hi] =
            std::minmax_element(samples_.begin(), samples_.end(),
                                [](const Sample& a, const Sample& b) { return a.calls_per_s < b.calls_per_s; });
        return std::pair{lo->calls_per_s, hi->calls_per_s};
    }

private:
    [[nodiscard]] Value median_of(double Sample::*field) const
    {
        std::vector<double> values;
        values.reserve(samples_.size());
        for (const Sample& s : samples_) {
            values.push_back(s.*field);
        }
        return median(std::move(values));
    }

    std::vector<Sample> samples_;
    std::uint64_t errors_ = 0;
};

// ---- formatting -------------------------------------------------------------------------------

// printf-style formatting into a std::string.
template <typename... Args>
std::string format(const char* fmt, Args... args)
{
    const int n = std::snprintf(nullptr, 0, fmt, args...);
    if (n <= 0) {
        return {};
    }
    std::string out(static_cast<std::size_t>(n) + 1, '\0');
    std::snprintf(out.data(), out.size(), fmt, args...);
    out.resize(static_cast<std::size_t>(n));
    return out;
}

// The value with `decimals` decimals, or "n/a".
inline std::string fixed(Value v, int decimals = 1)
{
    return v ? format("%.*f", decimals, *v) : std::string("n/a");
}

// The value rounded as fixed() prints it.
inline double rounded(double v, int decimals)
{
    const double scale = std::pow(10.0, decimals);
    return std::round(v * scale) / scale;
}

struct Target {
    enum class Op { AtLeast, AtMost };
    Op op = Op::AtLeast;
    double value = 0.0;
};
inline Target at_least(double value)
{
    return Target{Target::Op::AtLeast, value};
}
inline Target at_most(double value)
{
    return Target{Target::Op::AtMost, value};
}

// A target's number as it reads best: no trailing zeros (3, 0.75, 1.2).
inline std::string target_number(double value)
{
    std::string text = format("%.6f", value);
    while (!text.empty() && text.back() == '0') {
        text.pop_back();
    }
    if (!text.empty() && text.back() == '.') {
        text.pop_back();
    }
    return text;
}

// One figure: NAME: VALUE[UNIT] [(target OP T[UNIT]) — met|not met][  NOTE]
struct Figure {
    std::string name;
    Value value;
    int decimals = 2;
    std::string unit;  // appended to the value and to the target: "x", " us", " MiB", " records/s"
    std::optional<Target> target;
    std::string note;  // information after the figure, e.g. "(information only)"
};

// "met", "not met", or "" when there is no target or no value.
inline std::string verdict(const Figure& f)
{
    if (!f.target || !f.value) {
        return {};
    }
    const double v = rounded(*f.value, f.decimals);
    const bool ok = f.target->op == Target::Op::AtLeast ? v >= f.target->value : v <= f.target->value;
    return ok ? "met" : "not met";
}

inline std::string to_line(const Figure& f)
{
    std::string line = f.name + ": " + fixed(f.value, f.decimals) + (f.value ? f.unit : std::string());
    if (f.target) {
        line += std::string(" (target ") + (f.target->op == Target::Op::AtLeast ? ">= " : "<= ") +
                target_number(f.target->value) + f.unit + ")";
        const std::string v = verdict(f);
        line += v.empty() ? std::string(" — no figure") : " — " + v;
    }
    if (!f.note.empty()) {
        line += "  " + f.note;
    }
    return line;
}

// What a program prints: section lines go to stdout as they come; figure lines and measurement
// rows are also kept for the run's summary, which append_summary() adds to a file that
// scripts/run-bench.sh prints at the end of the run (each program writes its own block).
class Report {
public:
    explicit Report(std::string summary_title) : title_(std::move(summary_title)) {}

    // A line of a section, indented by two blanks ("" prints an empty line).
    void line(const std::string& text)
    {
        if (text.empty()) {
            std::fputs("\n", stdout);
        } else {
            std::printf("  %s\n", text.c_str());
        }
        std::fflush(stdout);
    }
    // A section heading: "-- TEXT --".
    void heading(const std::string& text)
    {
        std::printf("-- %s --\n", text.c_str());
        std::fflush(stdout);
    }
    void figure(const Figure& f)
    {
        const std::string text = to_line(f);
        line(text);
        figures_.push_back(text);
    }
    // A row of the summary's table of measurements (not printed now).
    void row(std::string text) { rows_.push_back(std::move(text)); }
    // A warning for the summary (printed now, indented, and repeated there).
    void warning(const std::string& text)
    {
        line(text);
        warnings_.push_back(text);
    }

    // Appends this program's block to `path` (nothing when path is empty). Returns false when the
    // file cannot be written (the figures were printed anyway).
    bool append_summary(const std::string& path, const std::string& table_header) const
    {
        if (path.empty()) {
            return true;
        }
        std::FILE* out = std::fopen(path.c_str(), "a");
        if (out == nullptr) {
            return false;
        }
        std::fprintf(out, "-- %s --\n", title_.c_str());
        if (!rows_.empty()) {
            std::fprintf(out, "  %s\n", table_header.c_str());
            for (const std::string& r : rows_) {
                std::fprintf(out, "  %s\n", r.c_str());
            }
        }
        for (const std::string& f : figures_) {
            std::fprintf(out, "  %s\n", f.c_str());
        }
        for (const std::string& w : warnings_) {
            std::fprintf(out, "  %s\n", w.c_str());
        }
        std::fputs("\n", out);
        return std::fclose(out) == 0;
    }

private:
    std::string title_;
    std::vector<std::string> rows_;
    std::vector<std::string> figures_;
    std::vector<std::string> warnings_;
};

}  // namespace codexvault::bench
