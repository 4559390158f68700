// libFuzzer target: the bytes are one policy document (untrusted text from policy.d) fed
// through the whole policy-set parser; a document that loads is then evaluated against, so the
// engine sees every shape of policy the parser accepts.
//
//   clang++ -std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -I. $(pkg-config --cflags tomlplusplus)
//           policy/*.cpp tests/fuzz/policy_parser_fuzz.cpp -ltomlplusplus -o build/fuzz/policy_parser_fuzz
//   build/fuzz/policy_parser_fuzz -max_total_time=60 -max_len=4096 tests/fuzz/corpus/policy_parser
//
// (libFuzzer comes with clang; on Debian 12 the runtime is in libclang-rt-14-dev.)
//
// With g++ and no libFuzzer, tests/fuzz/replay_main.cpp replays the corpus through this target.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <string_view>

#include "policy/engine.hpp"
#include "policy/policy_parser.hpp"

namespace {

using namespace codexvault::policy;

void require(bool condition)
{
    if (!condition) {
        std::abort();
    }
}

void exercise(const std::shared_ptr<const PolicySet>& policy)
{
    Engine engine;
    engine.set_policy(policy);
    const std::uint32_t groups[] = {27, 1500};
    SubjectView subject;
    subject.gid = 1500;
    subject.groups = groups;
    subject.unit = "agent.service";
    subject.cgroup = "/system.slice/agent.service";
    subject.exe = "/usr/bin/python3";
    RequestContext request;
    request.method = "POST";
    request.path = "/v1/chat/completions";
    request.target = "pid=1";
    for (const auto& grant : policy->grants()) {
        subject.uid = grant.principal.uid.value_or(1000);
        const Decision checked = engine.check(subject, grant.capability, request, 0);
        const Decision used = engine.evaluate(subject, grant.capability, request, 0, Mode::Use, IdSeed{1, 2, 3, 4});
        require(checked.verdict == used.verdict);
        (void)engine.explain(subject, grant.capability, request, 0).text();
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    const std::string_view content(reinterpret_cast<const char*>(data), size);
    const PolicyDocument document{"fuzz.toml", content};
    const LoadResult result = load_policy(std::span<const PolicyDocument>(&document, 1));
    require(result.ok() == result.errors.empty());
    for (const auto& diagnostic : result.errors) {
        require(diagnostic.where.line >= 1 && !diagnostic.message.empty());
    }
    if (result.ok()) {
        exercise(result.policy);
    }
    return 0;
}
