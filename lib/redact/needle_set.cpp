#include "lib/redact/needle_set.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <numeric>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "lib/redact/automaton.hpp"
#include "lib/redact/encodings.hpp"
#include "lib/redact/wipe.hpp"

namespace codexvault::redact {

namespace {

std::vector<Automaton::Pattern> patterns_of(const std::vector<Needle>& needles)
{
    std::vector<Automaton::Pattern> patterns;
    patterns.reserve(needles.size());
    for (const auto& needle : needles) {
        patterns.push_back({needle.bytes, needle.secret});
    }
    return patterns;
}

// Upper bound of the needles one form yields: raw, 32 JSON and 16 URL renderings, 6 base64
// fragments, 2 hex. The needle list is reserved for it, so it never reallocates (a reallocation
// would leave short needles' bytes behind in the old buffer).
constexpr std::size_t kMaxNeedlesPerForm = 1 + 32 + 16 + 6 + 2;

void add_forms(std::vector<Needle>& needles, std::uint32_t secret, std::span<const std::uint8_t> form)
{
    // A moved-from short string keeps its bytes: every source is wiped once it is moved.
    const auto add = [&](Encoding encoding, std::string&& bytes) {
        needles.push_back(Needle{std::move(bytes), secret, encoding});
        wipe(bytes);
    };
    add(Encoding::Raw, std::string(reinterpret_cast<const char*>(form.data()), form.size()));
    std::vector<std::string> renderings = json_renderings(form);
    for (auto& rendering : renderings) {
        add(Encoding::Json, std::move(rendering));
    }
    wipe(renderings);
    renderings = url_renderings(form);
    for (auto& rendering : renderings) {
        add(Encoding::Url, std::move(rendering));
    }
    wipe(renderings);
    for (unsigned alignment = 0; alignment < 3; ++alignment) {
        add(Encoding::Base64, base64_fragment(form, alignment, false));
        add(Encoding::Base64Url, base64_fragment(form, alignment, true));
    }
    add(Encoding::HexLower, hex(form, false));
    add(Encoding::HexUpper, hex(form, true));
}

// Keeps the first of each run of identical needles, in generation order, so a needle shared by
// two secrets is reported as the first secret's and the raw form wins over equal encodings.
std::vector<Needle> distinct(std::vector<Needle> needles)
{
    std::vector<std::size_t> order(needles.size());
    std::iota(order.begin(), order.end(), std::size_t{0});
    std::stable_sort(order.begin(), order.end(),
                     [&](std::size_t a, std::size_t b) { return needles[a].bytes < needles[b].bytes; });
    std::vector<bool> keep(needles.size(), true);
    for (std::size_t k = 1; k < order.size(); ++k) {
        if (needles[order[k]].bytes == needles[order[k - 1]].bytes) {
            keep[order[k]] = false;
        }
    }
    std::vector<Needle> out;
    out.reserve(needles.size());
    for (std::size_t k = 0; k < needles.size(); ++k) {
        if (keep[k]) {
            out.push_back(std::move(needles[k]));
        }
        wipe(needles[k].bytes);  // a duplicate, or what the move left in a short string
    }
    return out;
}

std::string check_length(const Secret& secret, std::span<const std::uint8_t> form, const char* what)
{
    if (form.size() >= kMinSecretLength && form.size() <= kMaxSecretLength) {
        return {};
    }
    return "secret '" + secret.name + "': " + what + " is " + std::to_string(form.size()) + " bytes; redaction needs " +
           std::to_string(kMinSecretLength) + " to " + std::to_string(kMaxSecretLength);
}

}  // namespace

NeedleSet::NeedleSet(Key /*key*/, std::vector<std::string> names, std::vector<Needle> needles)
    : names_(std::move(names)), needles_(std::move(needles)), automaton_(patterns_of(needles_))
{
    for (const auto& needle : needles_) {
        longest_ = std::max(longest_, needle.bytes.size());
    }
}

NeedleSet::~NeedleSet()
{
    for (auto& needle : needles_) {
        wipe(needle.bytes);
    }
}

BuildResult build_needle_set(std::span<const Secret> secrets)
{
    std::vector<std::string> names;
    std::vector<Needle> needles;
    std::size_t forms = 0;
    for (const Secret& secret : secrets) {
        forms += 1 + secret.renderings.size();
    }
    needles.reserve(forms * kMaxNeedlesPerForm);
    for (std::size_t i = 0; i < secrets.size(); ++i) {
        const Secret& secret = secrets[i];
        std::string error = check_length(secret, secret.value, "the value");
        for (std::size_t r = 0; error.empty() && r < secret.renderings.size(); ++r) {
            error = check_length(secret, secret.renderings[r], ("rendering " + std::to_string(r + 1)).c_str());
        }
        if (!error.empty()) {
            for (auto& needle : needles) {
                wipe(needle.bytes);
            }
            return {nullptr, std::move(error)};
        }
        const auto index = static_cast<std::uint32_t>(i);
        add_forms(needles, index, secret.value);
        for (const auto rendering : secret.renderings) {
            add_forms(needles, index, rendering);
        }
        names.push_back(secret.name);
    }
    return {std::make_shared<const NeedleSet>(NeedleSet::Key{}, std::move(names), distinct(std::move(needles))), {}};
}

}  // namespace codexvault::redact
