// One scan: Vectorscan reports keyword or match ends, and the run finder long runs (first
// stage); nearby triggers of one rule merge into a chain; each chain's window is searched by the
// rule's own pattern (second stage) to find the secret's span; candidates then pass the verifier, the placeholder
// policy, the entropy floor and the ignore patterns; overlapping findings keep the most confident one.
#include <hs/hs.h>

#include <algorithm>
#include <climits>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <map>
#include <memory>
#include <new>
#include <numeric>
#include <span>
#include <stdexcept>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

#include "lib/scan/entropy.hpp"
#include "lib/scan/env_reads.hpp"
#include "lib/scan/file_glob.hpp"
#include "lib/scan/finding_details.hpp"
#include "lib/scan/matcher.hpp"
#include "lib/scan/placeholder.hpp"
#include "lib/scan/runs.hpp"

namespace codexvault::scan {

namespace {

constexpr std::uint32_t kNoChain = UINT32_MAX;
// Pattern-rule ends this close together are one chain: a pattern like `sk-[A-Za-z0-9]{20,}`
// reports an end at every byte past its minimum, and one search covers them all.
constexpr std::size_t kMergeGap = 64;
// A chain stops growing at this span, so no single search window grows without bound.
constexpr std::size_t kMaxChainSpan = 64 * 1024;
// Chains are verified in batches of this many, which bounds their memory on hit-dense input.
constexpr std::size_t kFlushChains = 4096;
// Candidates kept before overlap removal, as a multiple of max_findings.
constexpr std::size_t kCandidateFactor = 4;
constexpr std::size_t kNone = static_cast<std::size_t>(-1);
// Start ranges this short are checked against the pattern's first bytes before a chain is made.
constexpr std::size_t kPrecheckStarts = 16;

}  // namespace

Scanner::Scanner(std::shared_ptr<const Matcher> matcher) : matcher_(std::move(matcher))
{
    if (matcher_->first_.database == nullptr) {
        return;
    }
    hs_scratch_t* scratch = nullptr;
    if (hs_alloc_scratch(matcher_->first_.database.get(), &scratch) != HS_SUCCESS) {
        throw std::bad_alloc();
    }
    scratch_.reset(scratch);
}

ScanResult Scanner::scan(std::string_view content, std::string_view file_name,
                         std::span<const std::uint8_t, kFingerprintKeyBytes> key, const ScanOptions& options)
{
    ScanResult result;
    const auto& rules = matcher_->rules_.rules();
    const std::size_t rule_count = rules.size();
    content_ = content;
    stats_ = &result.stats;
    truncation_ = Truncation::None;
    stopped_ = false;
    const std::size_t max_findings = std::clamp<std::size_t>(options.max_findings, 1, kMaxFindingsLimit);
    candidate_cap_ = kCandidateFactor * max_findings;
    const std::uint64_t per_byte = options.budget_per_byte;
    const std::uint64_t size = content.size();
    budget_.left = size != 0 && per_byte > (UINT64_MAX - options.budget_floor) / size
                       ? UINT64_MAX
                       : options.budget_floor + per_byte * size;
    const std::uint64_t budget_at_start = budget_.left;
    active_.assign(rule_count, 1);
    for (std::size_t i = 0; i < rule_count; ++i) {
        active_[i] = file_filter_matches(rules[i].files, file_name) ? 1 : 0;
    }
    open_.assign(rule_count, kNoChain);
    chains_.clear();
    candidates_.clear();
    seen_.clear();
    std::vector<std::string_view> reads;
    env_reads_ = options.env_reads ? &reads : nullptr;

    std::size_t length = content.size();
    if (length > UINT_MAX) {
        length = UINT_MAX;
        truncation_ = Truncation::InputSize;
    }
    if (matcher_->first_.database != nullptr) {
        // Vectorscan wants a non-null pointer even for an empty buffer.
        const char* data = content.empty() ? "" : content.data();
        const hs_error_t status = hs_scan(matcher_->first_.database.get(), data, static_cast<unsigned int>(length), 0,
                                          scratch_.get(), &Scanner::on_match, this);
        if (status != HS_SUCCESS && status != HS_SCAN_TERMINATED) {
            throw std::runtime_error("hs_scan failed with error " + std::to_string(status));
        }
    }
    // Rules that do not use Vectorscan; their chains join the same batches.
    const auto& compiled = matcher_->compiled_;
    for (std::uint32_t i = 0; i < rule_count && !stopped_; ++i) {
        if (active_[i] == 0) {
            continue;
        }
        const Matcher::Compiled& rule = compiled[i];
        if (rule.trigger == Trigger::Runs) {
            const auto found = [&](std::size_t begin, std::size_t end) {
                if (rule.run_max == 0 || end - begin <= rule.run_max) {
                    add(i, begin - std::min<std::size_t>(begin, rule.before), begin + 1, end + rule.window);
                }
                return !stopped_;
            };
            if (rule.run_after.empty()) {
                for_each_run(content.substr(0, length), rule.run_class, rule.run_min, found);
            } else {
                for_each_run_after(content.substr(0, length), rule.run_after, rule.run_class, rule.run_min,
                                   rule.run_max, rule.run_plan, found);
            }
        } else if (rule.trigger == Trigger::WholeFile) {
            add(i, 0, length, length);
        }
    }
    if (!stopped_) {
        flush();
    }
    result.truncation = truncation_;
    finish(result, key);
    result.stats.budget_spent = budget_at_start - budget_.left;
    // In the order the markers end (Vectorscan's report order), each name once.
    for (const std::string_view name : reads) {
        if (std::find(result.env_reads.begin(), result.env_reads.end(), name) == result.env_reads.end()) {
            result.env_reads.emplace_back(name);
        }
    }
    env_reads_ = nullptr;
    content_ = {};
    stats_ = nullptr;
    chains_.clear();
    candidates_.clear();
    seen_.clear();
    return result;
}

int Scanner::on_match(unsigned int id, unsigned long long /*from*/, unsigned long long to, unsigned int /*flags*/,
                      void* context)
{
    auto& self = *static_cast<Scanner*>(context);
    const Expression& expression = self.matcher_->first_.expressions[id];
    if (expression.marker != Expression::kNoMarker) {
        if (self.env_reads_ != nullptr) {
            const std::string_view name = env_read_at(self.content_, expression.marker, static_cast<std::size_t>(to));
            if (!name.empty()) {
                self.env_reads_->push_back(name);
            }
        }
        return 0;
    }
    if (self.active_[expression.rule] == 0) {
        return 0;
    }
    const auto end = static_cast<std::size_t>(to);
    if (expression.keyword_length == 0) {
        // A pattern rule's match ends where Vectorscan reports one.
        self.add(expression.rule, end - std::min<std::size_t>(end, expression.look_back), end, end);
    } else {
        // A keyword rule's match starts at most `before` bytes before the keyword and may run on
        // past it.
        const Matcher::Compiled& rule = self.matcher_->compiled_[expression.rule];
        if (rule.gate != nullptr && !rule.gate(self.content_, end)) {
            ++self.stats_->hits;
            ++self.stats_->gated;
            return 0;
        }
        const std::size_t keyword = end - std::min<std::size_t>(end, expression.keyword_length);
        self.add(expression.rule, keyword - std::min<std::size_t>(keyword, rule.before), keyword + 1,
                 end + rule.window);
    }
    return self.stopped_ ? 1 : 0;
}

void Scanner::add(std::uint32_t rule, std::size_t from, std::size_t start_end, std::size_t limit)
{
    ++stats_->hits;
    limit = std::min(limit, content_.size());
    start_end = std::min(start_end, limit);
    // Most triggers allow only a few starts (a token prefix: one); when no byte there can begin
    // a match, there is nothing to search.
    if (start_end - std::min(start_end, from) <= kPrecheckStarts) {
        const re::Regex& pattern = matcher_->compiled_[rule].pattern;
        bool possible = false;
        for (std::size_t i = from; i < start_end && !possible; ++i) {
            possible = pattern.can_start_with(static_cast<unsigned char>(content_[i]));
        }
        if (!possible) {
            return;
        }
    }
    std::uint32_t& open = open_[rule];
    if (open != kNoChain) {
        Chain& chain = chains_[open];
        // Pattern rules merge across small gaps (one match reports many ends); keyword and run
        // triggers pin their starts exactly, so they merge only when the start ranges touch.
        const std::size_t gap = matcher_->compiled_[rule].trigger == Trigger::Pattern ? kMergeGap : 0;
        if (from >= chain.from && from <= chain.start_end + gap && start_end - chain.from <= kMaxChainSpan) {
            chain.start_end = std::max(chain.start_end, start_end);
            chain.limit = std::max(chain.limit, limit);
            return;
        }
    }
    open = static_cast<std::uint32_t>(chains_.size());
    chains_.push_back({rule, from, start_end, limit});
    if (chains_.size() >= kFlushChains) {
        flush();
    }
}

void Scanner::flush()
{
    for (const Chain& chain : chains_) {
        if (stopped_) {
            break;
        }
        verify(chain);
    }
    for (const Chain& chain : chains_) {
        open_[chain.rule] = kNoChain;
    }
    chains_.clear();
}

void Scanner::verify(const Chain& chain)
{
    const Matcher::Compiled& rule = matcher_->compiled_[chain.rule];
    std::size_t pos = chain.from;
    while (pos < chain.start_end && !stopped_) {
        const re::Outcome outcome =
            rule.pattern.search(content_, pos, chain.start_end, chain.limit, spans_, budget_, re_scratch_);
        if (outcome == re::Outcome::OutOfBudget) {
            stop(Truncation::Budget);
            return;
        }
        if (outcome == re::Outcome::LimitHit) {
            // This window gave up at its own limit; the rest of the input is still searched.
            ++stats_->limit_hits;
            note(Truncation::SearchLimit);
            return;
        }
        if (outcome == re::Outcome::NotFound) {
            return;
        }
        const re::Span whole = spans_[0];
        const bool grouped = spans_.size() > 1 && spans_[1].begin != kNone && spans_[1].end != kNone;
        consider(chain.rule, grouped ? spans_[1] : whole);
        pos = std::max(whole.end, whole.begin + 1);
    }
}

void Scanner::consider(std::uint32_t rule_index, re::Span secret)
{
    ++stats_->candidates;
    const Matcher::Compiled& compiled = matcher_->compiled_[rule_index];
    const Rule& rule = matcher_->rules_.rules()[rule_index];
    if (compiled.verifier != nullptr) {
        const auto checked = compiled.verifier(content_, secret);
        if (!checked) {
            ++stats_->rejected;
            return;
        }
        secret = *checked;
    }
    if (secret.size() == 0) {
        return;
    }
    // Cheapest checks first.
    const std::string_view value = content_.substr(secret.begin, secret.size());
    const double entropy = shannon_entropy(value);
    if (entropy < rule.min_entropy) {
        ++stats_->low_entropy;
        return;
    }
    for (const auto& ignore : compiled.ignore) {
        const re::Outcome outcome = ignore.contains(value, budget_, re_scratch_);
        if (outcome == re::Outcome::Found) {
            ++stats_->rejected;
            return;
        }
        // An ignore pattern that could not decide does not drop the candidate: a false
        // positive is the safe side.
        if (outcome == re::Outcome::OutOfBudget) {
            note(Truncation::Budget);
        } else if (outcome == re::Outcome::LimitHit) {
            ++stats_->limit_hits;
            note(Truncation::SearchLimit);
        }
    }
    if (is_placeholder(value, rule.public_prefix)) {
        ++stats_->placeholders;
        return;
    }
    const std::uint64_t key = (std::uint64_t{rule_index} << 44) ^ static_cast<std::uint64_t>(secret.begin);
    if (!seen_.insert(key).second) {
        return;
    }
    candidates_.push_back({rule_index, secret.begin, secret.size(), entropy});
    if (candidates_.size() >= candidate_cap_) {
        stop(Truncation::FindingCap);
    }
}

void Scanner::stop(Truncation reason)
{
    stopped_ = true;
    note(reason);
}

void Scanner::note(Truncation reason)
{
    if (truncation_ == Truncation::None) {
        truncation_ = reason;
    }
}

void Scanner::finish(ScanResult& result, std::span<const std::uint8_t, kFingerprintKeyBytes> key)
{
    const auto& rules = matcher_->rules_.rules();
    // Most confident first, then longest, then rule order: a finding is kept when it overlaps
    // none kept before it.
    std::vector<std::size_t> order(candidates_.size());
    std::iota(order.begin(), order.end(), std::size_t{0});
    std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
        const Candidate& x = candidates_[a];
        const Candidate& y = candidates_[b];
        const auto cx = rules[x.rule].confidence;
        const auto cy = rules[y.rule].confidence;
        if (cx != cy) {
            return cx > cy;
        }
        if (x.length != y.length) {
            return x.length > y.length;
        }
        if (x.rule != y.rule) {
            return x.rule < y.rule;
        }
        return x.offset < y.offset;
    });
    std::map<std::size_t, std::size_t> taken;  // begin -> end of kept spans (disjoint)
    std::vector<Candidate> kept;
    for (const std::size_t index : order) {
        const Candidate& candidate = candidates_[index];
        const std::size_t end = candidate.offset + candidate.length;
        auto next = taken.upper_bound(candidate.offset);
        bool overlaps = next != taken.end() && next->first < end;
        if (!overlaps && next != taken.begin()) {
            overlaps = std::prev(next)->second > candidate.offset;
        }
        if (overlaps) {
            ++result.stats.overlapped;
            continue;
        }
        taken.emplace(candidate.offset, end);
        kept.push_back(candidate);
    }
    std::sort(kept.begin(), kept.end(), [](const Candidate& a, const Candidate& b) {
        return a.offset != b.offset ? a.offset < b.offset : a.rule < b.rule;
    });
    const std::size_t max_findings = candidate_cap_ / kCandidateFactor;
    if (kept.size() > max_findings) {
        kept.resize(max_findings);
        if (result.truncation == Truncation::None) {
            result.truncation = Truncation::FindingCap;
        }
    }
    LinePositions positions(content_);
    result.findings.reserve(kept.size());
    for (const Candidate& candidate : kept) {
        const Rule& rule = rules[candidate.rule];
        const std::string_view secret = content_.substr(candidate.offset, candidate.length);
        Finding finding;
        finding.rule_id = rule.id;
        finding.family = rule.family;
        finding.provider = rule.provider;
        finding.confidence = rule.confidence;
        std::tie(finding.line, finding.column) = positions.locate(candidate.offset);
        finding.offset = candidate.offset;
        finding.length = candidate.length;
        finding.preview = redacted_preview(secret, rule.public_prefix);
        finding.entropy = candidate.entropy;
        finding.fingerprint = keyed_fingerprint(secret, key);
        result.findings.push_back(std::move(finding));
    }
}

}  // namespace codexvault::scan
