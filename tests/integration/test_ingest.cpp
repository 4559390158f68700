// Ingest through the real daemon, its helper and a real worker: vaultctl ingest opens the folder
// and passes the descriptor; every bad input ends without a hang, a crash or an escape, with a
// clear skip or stop reason; no value planted in the tree (a .env canary above all) comes back in
// any reply, the daemon's log or the audit log.
#include <fcntl.h>
#include <nlohmann/json.hpp>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include "cli/cli_support.hpp"
#include "lib/fileio/unique_fd.hpp"
#include "tests/support/harness.hpp"

using namespace codexvault;
using namespace codexvault::test;
namespace fs = std::filesystem;

namespace {

void write_file(const std::string& path, const std::string& content)
{
    fs::create_directories(fs::path(path).parent_path());
    std::ofstream out(path, std::ios::binary);
    out << content;
}

// A GitHub classic token whose body is random (so it is no placeholder), built at run time.
std::string github_token()
{
    const std::string canary = random_canary();
    std::string body;
    for (const char c : canary) {
        if (std::isalnum(static_cast<unsigned char>(c)) != 0) {
            body.push_back(c);
        }
    }
    while (body.size() < 36) {
        body += "Zq7";
    }
    return "ghp_" + body.substr(0, 36);
}

struct Scan {
    int exit_code = -1;
    nlohmann::json json;
    std::string text;  // stdout and stderr
};

Scan ingest(const std::string& dir, std::vector<std::string> extra = {})
{
    std::vector<std::string> args{"ingest", dir, "--json", "--founder-key", env->founder_key(), "--passphrase-fd", "3"};
    args.insert(args.end(), extra.begin(), extra.end());
    const auto r = env->vaultctl(args, {.stdin_data = "", .passphrase = kPassphrase, .as_uid = std::nullopt});
    Scan scan;
    scan.exit_code = r.exit_code;
    scan.text = r.out + r.err;
    if (!r.out.empty() && r.out[0] == '{') {
        scan.json = nlohmann::json::parse(r.out);
    }
    return scan;
}

// The raw call, for the limits vaultctl does not expose: the summary only.
nlohmann::json ingest_with(const std::string& dir, const std::vector<std::pair<std::string, std::uint32_t>>& options)
{
    cli::VaultClient client(env->bus_address());
    const auto founder = env->load_founder();
    std::vector<std::string> entries;
    for (const auto& [k, v] : options) {
        entries.push_back(k + "=" + std::to_string(v));
    }
    std::sort(entries.begin(), entries.end());
    const auto proof = client.prove(founder, "Ingest", entries);
    UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    cr_assert(fd.valid());
    auto reply = client.call(
        "Ingest",
        [&](sd_bus_message* m) {
            cli::check_local(sd_bus_message_append(m, "h", fd.get()), "fd");
            cli::check_local(sd_bus_message_open_container(m, 'a', "{sv}"), "open");
            for (const auto& [k, v] : options) {
                cli::check_local(sd_bus_message_append(m, "{sv}", k.c_str(), "u", v), "option");
            }
            cli::check_local(sd_bus_message_close_container(m), "close");
            cli::append_proof(m, proof);
        },
        600'000'000);
    return cli::read_dictionary(reply.get());
}

bool skipped_with(const nlohmann::json& scan, const std::string& path, const std::string& reason_part)
{
    for (const auto& s : scan["skips"]) {
        if (s["path"] == path && s["reason"].get<std::string>().find(reason_part) != std::string::npos) {
            return true;
        }
    }
    return false;
}

}  // namespace

TestSuite(ingest, .init = start_env_with_founder, .fini = stop_env, .timeout = 240);

Test(ingest, finds_planted_credentials_with_the_way_out_and_never_returns_a_value)
{
    const std::string root = env->root() + "/project";
    const std::string token = github_token();
    const std::string env_canary = random_canary();
    write_file(root + "/src/config.py",
               "import os\nGITHUB = \"" + token + "\"\nkey = os.environ[\"OPENAI_API_KEY\"]\n");
    write_file(root + "/src/other.js", "const t = '" + token + "';\n");
    write_file(root + "/.env", "DATABASE_PASSWORD=" + env_canary + "\nexport API_TOKEN=\"" + env_canary + "\"\n");
    write_file(root + "/README.md", "use ghp_EXAMPLEEXAMPLEEXAMPLEEXAMPLEEXAMPLE1 in docs\n");

    const Scan scan = ingest(root);
    cr_assert_eq(scan.exit_code, 0, "%s", scan.text.c_str());
    const auto& j = scan.json;
    cr_expect(j["summary"]["complete"].get<bool>(), "%s", scan.text.c_str());
    // The .env values are findings too (rule dotenv-secret): a preview of their length only.
    nlohmann::json github = nlohmann::json::array();
    nlohmann::json dotenv = nlohmann::json::array();
    for (const auto& f : j["findings"]) {
        (f["provider"] == "github" ? github : dotenv).push_back(f);
    }
    cr_assert_eq(github.size(), 2u, "%s", scan.text.c_str());
    cr_assert_eq(dotenv.size(), 2u, "%s", scan.text.c_str());
    cr_expect_eq(dotenv[0]["path"], ".env");
    // An env file's findings carry nothing computed from the value: no length, no fingerprint.
    for (const auto& f : dotenv) {
        cr_expect_eq(f["preview"], "\xE2\x80\xA6(withheld)");
        cr_expect_eq(f["length"], 0);
        cr_expect_eq(f["fingerprint"], "");
    }
    const auto& a = github[0];
    const auto& b = github[1];
    cr_expect_eq(a["path"], "src/config.py");
    cr_expect_eq(a["line"], 2);
    cr_expect_eq(a["provider"], "github");
    cr_expect(a["way_out"].get<std::string>().find("vaultctl secret put github-token") != std::string::npos);
    cr_expect(a["way_out"].get<std::string>().find("GITHUB_TOKEN") != std::string::npos);
    // The same value in two files is one secret.
    cr_expect_eq(a["fingerprint"], b["fingerprint"]);
    cr_expect_eq(j["env_files"].size(), 1u);
    cr_expect_eq(j["env_files"][0]["names"], nlohmann::json({"DATABASE_PASSWORD", "API_TOKEN"}));
    cr_expect(j["summary"]["env_reads"].dump().find("OPENAI_API_KEY") != std::string::npos);
    const std::string landlock = j["summary"]["landlock"].get<std::string>();
    cr_expect(!landlock.empty());

    // SARIF and the human form, and --fail-on-findings.
    const auto sarif = env->vaultctl(
        {"ingest", root, "--sarif", "--fail-on-findings", "--founder-key", env->founder_key(), "--passphrase-fd", "3"},
        {.stdin_data = "", .passphrase = kPassphrase, .as_uid = std::nullopt});
    cr_expect_eq(sarif.exit_code, 20, "%s", sarif.err.c_str());
    const auto sarif_json = nlohmann::json::parse(sarif.out);
    cr_expect_eq(sarif_json["version"], "2.1.0");
    cr_expect_eq(sarif_json["runs"][0]["results"].size(), 4u);
    const auto human = env->vaultctl({"ingest", root, "--founder-key", env->founder_key(), "--passphrase-fd", "3"},
                                     {.stdin_data = "", .passphrase = kPassphrase, .as_uid = std::nullopt});
    cr_expect_eq(human.exit_code, 0);
    cr_expect(human.out.find("src/config.py\n") != std::string::npos, "%s", human.out.c_str());
    cr_expect(human.out.find("way out: vaultctl secret put github-token") != std::string::npos);

    env->stop_daemon();
    const std::string everything = scan.text + sarif.out + sarif.err + human.out + human.err;
    const std::string log = env->daemon_log();
    const std::string state = read_tree(env->state_dir());  // the audit log included
    for (const std::string* value : {&token, &env_canary}) {
        cr_expect(everything.find(*value) == std::string::npos, "a value in vaultctl's output");
        cr_expect(log.find(*value) == std::string::npos, "a value in the daemon's log");
        cr_expect(state.find(*value) == std::string::npos, "a value in the state folder or audit log");
    }
    // The scan is audited with its size and counts.
    cr_expect(state.find("ingest.scan") != std::string::npos);
    cr_expect(state.find("4 findings in 3 files") != std::string::npos);
}

Test(ingest, bad_inputs_end_with_a_reason_and_never_escape)
{
    const std::string root = env->root() + "/hostile";
    const std::string outside = env->root() + "/outside-secret";
    fs::create_directories(root);
    write_file(outside, "token = \"" + github_token() + "\"\n");
    // Symlink loop, a symlink to /etc/shadow, a hard link to a file outside the tree.
    fs::create_symlink("loop-b", root + "/loop-a");
    fs::create_symlink("loop-a", root + "/loop-b");
    fs::create_symlink("/etc/shadow", root + "/shadow");
    fs::create_directory_symlink("/etc", root + "/etc-link");
    cr_assert_eq(::link(outside.c_str(), (root + "/hardlink").c_str()), 0);
    // A fifo (no reader would ever block the worker), a binary file, invalid UTF-8 (name and content).
    cr_assert_eq(::mkfifo((root + "/fifo").c_str(), 0600), 0);
    std::string binary(4096, '\0');
    for (std::size_t i = 0; i < binary.size(); ++i) {
        binary[i] = static_cast<char>(i * 37 % 256);
    }
    write_file(root + "/blob.bin", binary);
    write_file(root + "/bad\xff\xfename.txt", "caf\xc3\x28 \xff\xfe text\n");
    // An unreadable file: the worker holds no capability, so mode 000 keeps even root out.
    write_file(root + "/unreadable", "secret = 1\n");
    ::chmod((root + "/unreadable").c_str(), 0);
    // A 10 GB sparse file: only its first 8 MiB are read.
    {
        UniqueFd fd(::open((root + "/sparse").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644));
        cr_assert_eq(::ftruncate(fd.get(), 10LL * 1000 * 1000 * 1000), 0);
    }
    // 4,096-deep nesting.
    {
        std::string deep = root + "/deep";
        fs::create_directories(deep);
        UniqueFd dir(::open(deep.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
        for (int i = 0; i < 4096; ++i) {
            cr_assert_eq(::mkdirat(dir.get(), "d", 0755), 0);
            UniqueFd next(::openat(dir.get(), "d", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
            dir = std::move(next);
        }
        cr_assert_eq(::mkdirat(dir.get(), "bottom", 0755), 0);
    }

    const Scan scan = ingest(root);
    cr_assert(!scan.json.is_null(), "%s", scan.text.c_str());
    const auto& j = scan.json;
    // Incomplete: the sparse file was read only in part.
    cr_expect_eq(scan.exit_code, 21, "%s", scan.text.c_str());
    cr_expect_eq(j["summary"]["worker"], "completed");
    cr_expect(j["summary"]["incomplete_reason"].get<std::string>().find("partly scanned") != std::string::npos);
    cr_expect(skipped_with(j, "loop-a", "symlink"));
    cr_expect(skipped_with(j, "shadow", "symlink"));
    cr_expect(skipped_with(j, "etc-link", "symlink"));
    cr_expect(skipped_with(j, "hardlink", "hard-linked"));
    cr_expect(skipped_with(j, "fifo", "fifo"));
    cr_expect(skipped_with(j, "unreadable", "permission denied"), "%s", j["skips"].dump().c_str());
    bool too_deep = false;
    for (const auto& s : j["skips"]) {
        too_deep = too_deep || s["reason"].get<std::string>().find("depth") != std::string::npos;
    }
    cr_expect(too_deep, "the 4,096-deep tree stops at the depth limit");
    // Nothing from outside the tree: the hard-linked token is not a finding.
    cr_expect_eq(j["findings"].size(), 0u, "%s", j["findings"].dump().c_str());
}

Test(ingest, the_file_limit_stops_a_tree_of_many_files_with_the_reason)
{
    // 20,000 tiny files in tmpfs-backed /tmp would do; the limit is what is tested, not the count
    // (docs/ingest.md: a million files was measured separately).
    const std::string root = env->root() + "/many";
    fs::create_directories(root);
    for (int d = 0; d < 20; ++d) {
        const std::string dir = root + "/d" + std::to_string(d);
        fs::create_directories(dir);
        for (int i = 0; i < 100; ++i) {
            write_file(dir + "/f" + std::to_string(i), "x\n");
        }
    }
    const auto summary = ingest_with(root, {{"max_files", 500}});
    cr_expect_eq(summary["complete"], false);
    cr_expect_eq(summary["stopped"], "file limit", "%s", summary.dump().c_str());
    cr_expect_eq(summary["files"], 500);
    cr_expect_eq(summary["worker"], "completed");
}

Test(ingest, a_worker_over_its_time_limit_is_killed_and_the_scan_says_so)
{
    // A big enough tree that one second of wall time cannot cover it on a shared VM is not
    // deterministic; a worker that cannot end is: a file that never ends (a sparse 60 GB file
    // read under a total limit far above it) keeps it reading for longer than a second.
    const std::string root = env->root() + "/slow";
    fs::create_directories(root);
    for (int i = 0; i < 64; ++i) {
        UniqueFd fd(::open((root + "/sparse" + std::to_string(i)).c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644));
        cr_assert_eq(::ftruncate(fd.get(), 1LL << 36), 0);
    }
    const auto summary = ingest_with(root, {{"max_file_bytes", 64U << 20}, {"timeout_seconds", 1}});
    cr_expect_eq(summary["complete"], false);
    const std::string worker = summary["worker"];
    cr_expect(worker.find("time limit") != std::string::npos || worker == "completed", "%s", summary.dump().c_str());
}

Test(ingest, a_worker_over_its_cpu_limit_is_killed_and_the_scan_says_so)
{
    // 16 GiB of reading and scanning (256 sparse files, 64 MiB read of each) takes several CPU
    // seconds anywhere; the worker has one. The wall-clock limit is far away, so only the CPU
    // limit can end it: SIGXCPU at the soft limit (SIGKILL a second later at the hard one).
    const std::string root = env->root() + "/cpu";
    fs::create_directories(root);
    for (int i = 0; i < 256; ++i) {
        UniqueFd fd(::open((root + "/sparse" + std::to_string(i)).c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644));
        cr_assert_eq(::ftruncate(fd.get(), 1LL << 36), 0);
    }
    const auto summary = ingest_with(
        root, {{"max_file_bytes", 64U << 20}, {"max_total_mib", 16384}, {"cpu_seconds", 1}, {"timeout_seconds", 1800}});
    cr_expect_eq(summary["complete"], false);
    cr_expect_eq(summary["worker"], "killed at its CPU time limit", "%s", summary.dump().c_str());
    cr_expect(summary["incomplete_reason"].get<std::string>().find("CPU") != std::string::npos, "%s",
              summary.dump().c_str());
    // The daemon still serves.
    cr_expect_eq(env->vaultctl({"status"}).exit_code, 0);
}

Test(ingest, directories_renamed_in_and_out_of_the_tree_during_a_scan_end_it_normally_and_nothing_outside_is_read)
{
    // 40 folders of 300 files; while the daemon's worker walks them, folders are renamed inside
    // the tree and moved out of it and back, and a folder that was never in the tree (holding a
    // token) is moved in and out under a name the walk has listed. Whatever the interleaving: the
    // worker completes, every path is relative and inside, a folder gone when it was reached is
    // skipped with a reason, and no value appears anywhere.
    const std::string root = env->root() + "/renamed";
    const std::string outside = env->root() + "/renamed-outside";
    const std::string token = github_token();
    const std::string outside_token = github_token();
    for (int d = 0; d < 40; ++d) {
        const std::string dir = root + "/d" + std::to_string(d);
        for (int i = 0; i < 300; ++i) {
            write_file(dir + "/f" + std::to_string(i) + ".py", "x = " + std::to_string(i) + "\n");
        }
    }
    write_file(root + "/d7/key.py", "GITHUB = \"" + token + "\"\n");
    write_file(outside + "/stranger/outside-only.py", "GITHUB = \"" + outside_token + "\"\n");
    std::atomic<bool> stop{false};
    std::atomic<int> renames{0};
    std::thread mover([&] {
        while (!stop.load()) {
            for (int d = 0; d < 40 && !stop.load(); d += 3) {
                const std::string dir = root + "/d" + std::to_string(d);
                // Inside the tree and back.
                if (::rename(dir.c_str(), (dir + ".moved").c_str()) == 0) {
                    ::rename((dir + ".moved").c_str(), dir.c_str());
                    ++renames;
                }
            }
            // Out of the tree and back, and a stranger in under a listed name and out again.
            const std::string d13 = root + "/d13";
            if (::rename(d13.c_str(), (outside + "/d13").c_str()) == 0) {
                ::rename((outside + "/stranger").c_str(), d13.c_str());
                ::rename(d13.c_str(), (outside + "/stranger").c_str());
                ::rename((outside + "/d13").c_str(), d13.c_str());
                ++renames;
            }
        }
    });
    const Scan scan = ingest(root);
    stop = true;
    mover.join();
    cr_assert(!scan.json.is_null(), "%s", scan.text.c_str());
    const auto& j = scan.json;
    cr_expect_eq(j["summary"]["worker"], "completed", "%s", j["summary"].dump().c_str());
    cr_expect_gt(renames.load(), 0);
    for (const auto& f : j["findings"]) {
        const std::string path = f["path"];
        cr_expect(path.rfind("../", 0) != 0 && path.rfind('/', 0) != 0, "%s", path.c_str());
    }
    for (const auto& s : j["skips"]) {
        const std::string reason = s["reason"];
        cr_expect(reason.find("vanished") != std::string::npos ||
                      reason.find("permission denied") != std::string::npos ||
                      reason.find("changed") != std::string::npos,
                  "%s: %s", s["path"].get<std::string>().c_str(), reason.c_str());
    }
    // Nothing that only lived outside: its name is unique, and a file inside d13 (or the
    // stranger while it sat there) counts as read beneath the tree.
    bool stranger_read_outside = false;
    for (const auto& f : j["findings"]) {
        const std::string path = f["path"];
        stranger_read_outside =
            stranger_read_outside || (path.find("outside-only.py") != std::string::npos && path.rfind("d13/", 0) != 0);
    }
    cr_expect(!stranger_read_outside, "%s", j["findings"].dump().c_str());
    cr_expect(scan.text.find(token) == std::string::npos);
    cr_expect(scan.text.find(outside_token) == std::string::npos);
    cr_expect_eq(env->vaultctl({"status"}).exit_code, 0);
}

Test(ingest, a_worker_over_its_memory_limit_stops_and_the_scan_says_so)
{
    // A 64 MiB read buffer cannot fit in a 64 MiB address space that already holds the program:
    // the allocation fails under RLIMIT_AS, the worker exits, the daemon is unaffected.
    const std::string root = env->root() + "/mem";
    write_file(root + "/a.txt", "hello\n");
    const auto summary = ingest_with(root, {{"max_file_bytes", 64U << 20}, {"memory_mib", 64}});
    cr_expect_eq(summary["complete"], false);
    cr_expect_eq(summary["worker"], "stopped at its memory limit", "%s", summary.dump().c_str());
    // The daemon still serves.
    cr_expect_eq(env->vaultctl({"status"}).exit_code, 0);
}

Test(ingest, findings_past_the_first_thousand_come_through_the_overflow_descriptor)
{
    const std::string root = env->root() + "/crowded";
    const std::string token = github_token();
    std::string lines;
    for (int i = 0; i < 700; ++i) {
        lines += "t" + std::to_string(i) + " = \"" + token + "\"\n";
    }
    for (int f = 0; f < 2; ++f) {
        write_file(root + "/f" + std::to_string(f) + ".py", lines);
    }
    const Scan scan = ingest(root);
    cr_assert(!scan.json.is_null(), "%s", scan.text.substr(0, 2000).c_str());
    cr_expect_eq(scan.json["summary"]["inline_findings"], 1000);
    cr_expect_eq(scan.json["findings"].size(), 1400u);
    cr_expect_eq(scan.json["findings"][1399]["path"], "f1.py");
    cr_expect_eq(scan.json["findings"][1399]["line"], 700);
    cr_expect_eq(scan.json["findings"][1399]["fingerprint"], scan.json["findings"][0]["fingerprint"]);
    cr_expect(scan.text.find(token) == std::string::npos);
}

Test(ingest, an_ingest_scan_grant_lets_another_user_scan_without_a_key)
{
    const auto issued = env->vaultctl({"grant", "issue", "--principal", "uid=65534", "--cap", "ingest:scan", "--ttl",
                                       "1h", "--founder-key", env->founder_key(), "--passphrase-fd", "3"},
                                      {.stdin_data = "", .passphrase = kPassphrase, .as_uid = std::nullopt});
    cr_assert_eq(issued.exit_code, 0, "%s", issued.err.c_str());
    const std::string root = env->root() + "/shared";
    write_file(root + "/app.js", "const k = '" + github_token() + "';\n");
    const auto scan_as = [&](uid_t uid) {
        return run_as(uid, [&] {
            cli::VaultClient client(env->bus_address());
            UniqueFd fd(::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
            try {
                auto reply = client.call("Ingest", [&](sd_bus_message* m) {
                    cli::check_local(sd_bus_message_append(m, "ha{sv}", fd.get(), 0), "args");
                    cli::append_proof(m, FounderProof{});  // unsigned: the grant decides
                });
                const auto summary = cli::read_dictionary(reply.get());
                return summary["findings"] == 1 ? 0 : 100;
            } catch (const cli::CallError& e) {
                std::fprintf(stderr, "ingest as uid %u: %s\n", static_cast<unsigned>(uid), e.what());
                return e.exit_code();
            }
        });
    };
    cr_expect_eq(scan_as(kNobody), 0);
    // vaultctl as that user: no founder key, so the call is unsigned and the grant decides.
    const auto r = env->vaultctl({"ingest", root, "--json", "--founder-key", "/nonexistent/founder.key"},
                                 {.stdin_data = "", .passphrase = std::nullopt, .as_uid = kNobody});
    cr_expect_eq(r.exit_code, 0, "%s", r.err.c_str());
    // Another uid, without the grant: denied.
    const int other = scan_as(1);  // "daemon": a uid the bus knows (it refuses uids without a passwd entry)
    cr_expect_eq(other, 3, "exit %d", other);
}

Test(ingest, a_file_growing_while_the_worker_reads_it_ends_the_scan_normally)
{
    const std::string root = env->root() + "/growing";
    write_file(root + "/log.txt", std::string(1 << 20, 'a'));
    std::atomic<bool> stop{false};
    std::thread writer([&] {
        std::ofstream out(root + "/log.txt", std::ios::app | std::ios::binary);
        const std::string chunk(64 * 1024, 'b');
        while (!stop.load()) {
            out << chunk;
            out.flush();
            if (out.tellp() > (32LL << 20)) {
                out.seekp(0);
            }
        }
    });
    const Scan scan = ingest(root);
    stop = true;
    writer.join();
    cr_assert(!scan.json.is_null(), "%s", scan.text.c_str());
    cr_expect_eq(scan.json["summary"]["worker"], "completed");
    cr_expect_eq(scan.json["summary"]["files"], 1);
}

Test(ingest, an_unsigned_call_without_a_grant_is_denied)
{
    const std::string root = env->root() + "/p";
    fs::create_directories(root);
    cli::VaultClient client(env->bus_address());
    UniqueFd fd(::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    const int code = exit_code_of([&] {
        client.call("Ingest", [&](sd_bus_message* m) {
            cli::check_local(sd_bus_message_append(m, "ha{sv}", fd.get(), 0), "args");
            cli::append_proof(m, FounderProof{});
        });
    });
    cr_expect_eq(code, 3);
}

// The slow tier (`make slow-test`, run by `make check`): skipped unless CODEX_VAULT_SLOW_TESTS=1.
TestSuite(ingest_slow, .init = start_env_with_founder, .fini = stop_env, .timeout = 600);

Test(ingest_slow, one_million_tiny_files_end_at_the_file_limit_or_the_entry_limit_with_the_reason)
{
    const char* slow = std::getenv("CODEX_VAULT_SLOW_TESTS");
    if (slow == nullptr || std::string(slow) != "1") {
        cr_skip_test("slow tier: about a minute and 1.5 GB of kernel memory; run by make slow-test (make check)");
    }
    if (::geteuid() != 0) {
        cr_skip_test("needs root to mount the tmpfs that holds a million files (and is dropped at once afterwards)");
    }
    // A private tmpfs: a million inodes cost no disk, and unmounting frees them in seconds
    // (removing them one by one takes longer than making them). Empty files: a data page each
    // would be 4 GB.
    const std::string root = env->root() + "/million";
    fs::create_directories(root);
    cr_assert_eq(
        ::mount("tmpfs", root.c_str(), "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=64m,nr_inodes=1100000"), 0,
        "mount: %s", std::strerror(errno));
    struct Unmount {
        std::string path;
        ~Unmount() { ::umount2(path.c_str(), MNT_DETACH); }
    } unmount{root};
    UniqueFd top(::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    cr_assert(top.valid());
    char name[16];
    for (int d = 0; d < 1000; ++d) {
        std::snprintf(name, sizeof name, "d%03d", d);
        cr_assert_eq(::mkdirat(top.get(), name, 0755), 0);
        UniqueFd dir(::openat(top.get(), name, O_RDONLY | O_DIRECTORY | O_CLOEXEC));
        for (int i = 0; i < 1000; ++i) {
            std::snprintf(name, sizeof name, "f%03d", i);
            cr_assert_eq(::mknodat(dir.get(), name, S_IFREG | 0644, 0), 0);
        }
    }
    // The default file limit (100,000) stops the walk with its reason.
    const auto capped = ingest_with(root, {});
    cr_expect_eq(capped["worker"], "completed", "%s", capped.dump().c_str());
    cr_expect_eq(capped["stopped"], "file limit", "%s", capped.dump().c_str());
    cr_expect_eq(capped["files"], 100000);
    cr_expect_eq(capped["complete"], false);
    // The largest file limit lets it read on until the entry limit (1,000,000 entries: the
    // 1,000 folders and their files are 1,001,000).
    const auto all = ingest_with(root, {{"max_files", 1000000}, {"timeout_seconds", 600}, {"cpu_seconds", 600}});
    cr_expect_eq(all["worker"], "completed", "%s", all.dump().c_str());
    cr_expect_eq(all["stopped"], "entry limit", "%s", all.dump().c_str());
    cr_expect_gt(all["files"].get<std::uint64_t>(), 900000u, "%s", all.dump().c_str());
    cr_expect_eq(all["complete"], false);
    cr_expect_eq(env->vaultctl({"status"}).exit_code, 0);
}
