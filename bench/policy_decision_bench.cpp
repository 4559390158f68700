// Policy decision latency: p50/p99 of one decision (Check and Use) with 10, 1,000 and 100,000
// runtime grants spread over 1,000 principals, random subjects that match about half the time.
// Prints figures and growth ratios; never pass/fail (target: p50 <= 1 us at 100,000 grants,
// growing no faster than log n).
//
//   policy_decision_bench [--queries N]   (default 200000 per size)
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <random>
#include <string>
#include <vector>

#include "policy/engine.hpp"
#include "policy/policy_set.hpp"

using namespace codexvault::policy;

// Counts heap allocations, to show the evaluation path makes none.
static std::uint64_t g_allocations = 0;

void* operator new(std::size_t size)
{
    ++g_allocations;
    if (void* p = std::malloc(size == 0 ? 1 : size)) {
        return p;
    }
    throw std::bad_alloc();
}
void operator delete(void* p) noexcept
{
    std::free(p);
}
void operator delete(void* p, std::size_t) noexcept
{
    std::free(p);
}

namespace {

constexpr std::size_t kPrincipals = 1000;
constexpr std::uint64_t kNow = 1'800'000'000ULL * 1'000'000ULL;

struct Identity {
    std::uint32_t uid = 0;
    std::string unit;
    std::string exe;
};

// Principal i: uid 10000+i (1 in 100 has no uid and is matched by unit: the index's fallback
// list), its own unit, one of ten programs.
Identity identity_of(std::size_t i)
{
    return Identity{static_cast<std::uint32_t>(10000 + i), "svc-" + std::to_string(i) + ".service",
                    "/usr/bin/agent-" + std::to_string(i % 10)};
}

std::string spec_of(std::size_t i)
{
    const Identity id = identity_of(i);
    if (i % 100 == 0) {
        return "unit=" + id.unit + ",exe=" + id.exe;
    }
    return "uid=" + std::to_string(id.uid) + ",unit=" + id.unit + ",exe=" + id.exe;
}

// Grant j: principal j % 1000, capability number j / 1000 (so every principal holds at most one
// grant per capability); even capability numbers are secrets to inject, odd ones providers.
Capability capability_of(std::size_t number)
{
    const std::string name = "c-" + std::to_string(number);
    return number % 2 == 0 ? Capability::secret_inject(name) : Capability::provider_request(name);
}

struct Query {
    Identity subject;
    Capability capability;
    bool should_match;
};

struct Figures {
    double p50 = 0;
    double p99 = 0;
    double p50_match = 0;     // queries whose subject the grant's principal matches (allowed)
    double p50_mismatch = 0;  // the others (denied: same uid and unit, another program)
    double allowed = 0;
    double allocations_per_call = 0;
};

double overhead_ns()
{
    using Clock = std::chrono::steady_clock;
    std::vector<double> samples;
    for (int i = 0; i < 100000; ++i) {
        const auto a = Clock::now();
        const auto b = Clock::now();
        samples.push_back(std::chrono::duration<double, std::nano>(b - a).count());
    }
    std::nth_element(samples.begin(), samples.begin() + samples.size() / 2, samples.end());
    return samples[samples.size() / 2];
}

double percentile(std::vector<double>& samples, double p)
{
    const auto at = static_cast<std::size_t>(p * static_cast<double>(samples.size() - 1));
    std::nth_element(samples.begin(), samples.begin() + static_cast<std::ptrdiff_t>(at), samples.end());
    return samples[at];
}

Figures measure(Engine& engine, const std::vector<Query>& queries, Mode mode, double overhead)
{
    using Clock = std::chrono::steady_clock;
    std::vector<double> samples(queries.size());
    std::size_t allowed = 0;
    RequestContext request;
    request.method = "POST";
    request.path = "/v1/chat/completions";
    request.body_digest = "5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8";
    request.target = "pid=4242 start=1 exe=/usr/bin/agent";
    const IdSeed seed{};
    const std::uint32_t groups[] = {27};
    // Warm-up.
    for (std::size_t i = 0; i < std::min<std::size_t>(queries.size(), 20000); ++i) {
        const Query& q = queries[i];
        SubjectView s;
        s.uid = q.subject.uid;
        s.unit = q.subject.unit;
        s.exe = std::string_view(q.subject.exe);
        (void)engine.evaluate(s, q.capability, request, kNow, Mode::Check, seed);
    }
    const std::uint64_t allocations_before = g_allocations;
    for (std::size_t i = 0; i < queries.size(); ++i) {
        const Query& q = queries[i];
        SubjectView s;
        s.uid = q.subject.uid;
        s.gid = q.subject.uid;
        s.groups = groups;
        s.pid = 4242;
        s.start_time = 1;
        s.unit = q.subject.unit;
        s.cgroup = "/system.slice/agent.service";
        s.exe = std::string_view(q.subject.exe);
        const auto start = Clock::now();
        const Decision d = engine.evaluate(s, q.capability, request, kNow, mode, seed);
        const auto end = Clock::now();
        samples[i] = std::max(0.0, std::chrono::duration<double, std::nano>(end - start).count() - overhead);
        allowed += d.allowed() ? 1 : 0;
        if (d.allowed() != q.should_match) {
            std::fprintf(stderr, "bench: unexpected decision (%s) for query %zu\n",
                         std::string(d.reason_text()).c_str(), i);
            std::exit(1);
        }
    }
    Figures f;
    std::vector<double> match;
    std::vector<double> mismatch;
    for (std::size_t i = 0; i < queries.size(); ++i) {
        (queries[i].should_match ? match : mismatch).push_back(samples[i]);
    }
    f.p50_match = match.empty() ? 0 : percentile(match, 0.50);
    f.p50_mismatch = mismatch.empty() ? 0 : percentile(mismatch, 0.50);
    f.allocations_per_call =
        static_cast<double>(g_allocations - allocations_before) / static_cast<double>(queries.size());
    f.p50 = percentile(samples, 0.50);
    f.p99 = percentile(samples, 0.99);
    f.allowed = 100.0 * static_cast<double>(allowed) / static_cast<double>(queries.size());
    return f;
}

struct Row {
    std::size_t grants;
    double build_ms;
    Figures check;
    Figures use;
};

Row run(std::size_t grants, std::size_t query_count, double overhead)
{
    const auto build_start = std::chrono::steady_clock::now();
    auto policy = std::make_shared<PolicySet>();
    for (std::size_t i = 0; i < kPrincipals; ++i) {
        Principal principal;
        principal.name = "p-" + std::to_string(i);
        principal.conditions = parse_inline_conditions(spec_of(i)).value();
        (void)policy->add_principal(std::move(principal)).value();
    }
    const std::size_t capabilities = (grants + kPrincipals - 1) / kPrincipals;
    for (std::size_t c = 1; c < capabilities; c += 2) {
        Provider provider;
        provider.name = "c-" + std::to_string(c);
        provider.origin = parse_origin("https://api.example.com").value();
        provider.allow = {parse_request_pattern("POST /v1/*").value()};
        provider.secret = "k";
        provider.inject = parse_injection("Authorization", "Bearer {secret}").value();
        (void)policy->add_provider(std::move(provider)).value();
    }
    Engine engine;
    engine.set_policy(policy);
    for (std::size_t j = 0; j < grants; ++j) {
        GrantRequest request;
        request.principal = "p-" + std::to_string(j % kPrincipals);
        request.capability = capability_of(j / kPrincipals).to_string();
        request.ttl = "7d";
        IdSeed seed{};
        for (std::size_t b = 0; b < 8; ++b) {
            seed[b] = static_cast<std::uint8_t>((j + 1) >> (8 * b));
        }
        if (!engine.issue(request, seed, kNow - 1).ok()) {
            std::fprintf(stderr, "bench: issue failed\n");
            std::exit(1);
        }
    }
    const double build_ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - build_start).count();

    std::mt19937_64 random(42 + grants);
    std::vector<Query> queries;
    queries.reserve(query_count);
    for (std::size_t q = 0; q < query_count; ++q) {
        const std::size_t j = random() % grants;
        const std::size_t i = j % kPrincipals;
        Query query{identity_of(i), capability_of(j / kPrincipals), random() % 2 == 0};
        if (!query.should_match) {
            query.subject.exe = "/usr/bin/other";  // same uid and unit, another program
        }
        queries.push_back(std::move(query));
    }
    Row row{grants, build_ms, {}, {}};
    row.check = measure(engine, queries, Mode::Check, overhead);
    row.use = measure(engine, queries, Mode::Use, overhead);
    return row;
}

}  // namespace

int main(int argc, char** argv)
{
    std::size_t queries = 200000;
    for (int i = 1; i < argc; ++i) {
        if (std::strcmp(argv[i], "--queries") == 0 && i + 1 < argc) {
            queries = std::strtoul(argv[++i], nullptr, 10);
        } else {
            std::fprintf(stderr, "usage: %s [--queries N]\n", argv[0]);
            return 2;
        }
    }
    if (queries < 1000) {
        queries = 1000;
    }
    const double overhead = overhead_ns();
    std::printf("== policy decision latency (%zu principals, %zu random queries per size, ~half match) ==\n",
                kPrincipals, queries);
    std::printf(
        "clock overhead %.0f ns per reading pair, subtracted from every sample; "
        "p50 allowed/denied are the check p50s of the two halves; allocs = heap allocations per decision\n\n",
        overhead);
    std::printf("%8s %10s %10s %10s %10s %13s %13s %8s %7s %11s\n", "grants", "check p50", "check p99", "use p50",
                "use p99", "p50 allowed", "p50 denied", "allowed", "allocs", "build (ms)");
    std::vector<Row> rows;
    for (std::size_t grants : {std::size_t{10}, std::size_t{1000}, std::size_t{100000}}) {
        rows.push_back(run(grants, queries, overhead));
        const Row& r = rows.back();
        std::printf("%8zu %8.0fns %8.0fns %8.0fns %8.0fns %11.0fns %11.0fns %7.1f%% %7.2f %11.0f\n", r.grants,
                    r.check.p50, r.check.p99, r.use.p50, r.use.p99, r.check.p50_match, r.check.p50_mismatch,
                    r.check.allowed, r.check.allocations_per_call + r.use.allocations_per_call, r.build_ms);
    }
    std::printf("\ngrowth of p50 (log n would allow: 10->1k x%.2f, 1k->100k x%.2f)\n",
                std::log(1000.0) / std::log(10.0), std::log(100000.0) / std::log(1000.0));
    auto ratio = [](double a, double b) {
        return b > 0 ? a / b : 0.0;
    };
    std::printf("  check  10->1k x%.2f   1k->100k x%.2f   10->100k x%.2f\n",
                ratio(rows[1].check.p50, rows[0].check.p50), ratio(rows[2].check.p50, rows[1].check.p50),
                ratio(rows[2].check.p50, rows[0].check.p50));
    std::printf("  use    10->1k x%.2f   1k->100k x%.2f   10->100k x%.2f\n", ratio(rows[1].use.p50, rows[0].use.p50),
                ratio(rows[2].use.p50, rows[1].use.p50), ratio(rows[2].use.p50, rows[0].use.p50));
    std::printf("target: p50 <= 1000 ns at 100000 grants (check %.0f ns, use %.0f ns); information only\n",
                rows[2].check.p50, rows[2].use.p50);
    return 0;
}
