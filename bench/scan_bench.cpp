// Secret-scan throughput, recall and false positives on synthetic source-like text, end to end
// through the ingest walker (daemon/ingest) and the scanner (lib/scan). Prints figures; never
// pass/fail. `make bench` runs it with the defaults.
//
//   scan_bench [--mib N] [--runs R] [--dir PARENT] [--tree DIR] [--secretlint PATH|none]
//              [--secretlint-mib N]     (defaults: 1024 MiB, 3 runs, medians; secretlint on 64 MiB)
//
// The corpus is generated in memory (deterministic): files of 4-256 KiB mixing Python, JS, Go,
// C++, JSON, YAML, prose and HTML lines, base64 blobs (about a fifth of the bytes), and code
// that handles tokens and passwords without holding any, with about one planted secret per MiB
// from 16 rule families (generic assignments in five spellings and four kinds of random value,
// letters only among them). It is denser than real code in what costs the second stage, on
// purpose: about 1,500 generic keywords (password, secret, token, key, auth) per MiB against
// 130-240 in /usr/include, Python's stdlib or node_modules, and about 300 quoted 32-128 byte
// tokens (hashes, UUIDs) per MiB against 5-14 there.
//
// It is written to a fresh folder under PARENT (default $BENCH_STATE_PARENT, else /var/tmp) in 64
// package folders, walked once untimed (page cache), then timed: one thread walks it with
// openat2 beneath the folder's descriptor, reads every file and scans it through the whole
// pipeline (Vectorscan, PCRE2 second stage, placeholder and entropy checks, overlap removal,
// line/column, preview and keyed fingerprint, env names and env reads). Thread CPU time and wall
// time are both printed: on a shared machine the CPU figure is the cost of the scan itself. A
// forked process does one walk alone for the peak RSS a worker would have. For scale, each part
// alone is timed on the in-memory corpus: the first stage (Vectorscan with a callback that only
// counts), the run finder, the env-read listing and the scanner without the walk.
//
// Side by side: secretlint (bench/secretlint/run.sh: pinned, installed from npm into a cache)
// scans the first package folders of the same tree (about --secretlint-mib MiB; default
// bench/secretlint/run.sh from the source tree, `none` to leave it out), then this scanner the
// same folders: the throughput ratio, recall on the planted secrets there (secretlint: a report
// on the secret's line) and reports away from them. Without npm or the registry it prints why
// and no figure. The folder is removed at the end.
//
// --tree DIR also times the scanner (in memory) on the regular files under DIR (up to --mib;
// e.g. /usr/include) and prints how many findings they gave: real code, no recall.
#include <fcntl.h>
#include <hs/hs.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "daemon/ingest/ingest_scan.hpp"
#include "lib/scan/builtin_rules.hpp"
#include "lib/scan/env_reads.hpp"
#include "lib/scan/first_stage.hpp"
#include "lib/scan/matcher.hpp"

using namespace codexvault::scan;

namespace {

constexpr std::size_t kMiB = 1024 * 1024;

class Random {
public:
    explicit Random(std::uint64_t seed) : state_(seed) {}
    std::uint64_t next()
    {
        // splitmix64
        std::uint64_t z = (state_ += 0x9E3779B97F4A7C15ULL);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
        return z ^ (z >> 31);
    }
    std::size_t below(std::size_t n) { return static_cast<std::size_t>(next() % n); }
    std::string chars(std::string_view alphabet, std::size_t n)
    {
        std::string out(n, ' ');
        for (auto& c : out) {
            c = alphabet[below(alphabet.size())];
        }
        return out;
    }

private:
    std::uint64_t state_;
};

constexpr std::string_view kAlnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
constexpr std::string_view kLowerAlnum = "abcdefghijklmnopqrstuvwxyz0123456789";
constexpr std::string_view kUpper27 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
constexpr std::string_view kBase64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
constexpr std::string_view kBase64Url = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-";
constexpr std::string_view kHex = "0123456789abcdef";
constexpr std::string_view kDigits = "0123456789";

// Common identifier words; five of them (key, token, secret, password, auth) are the generic
// rule's keywords, which with the credential-handling lines below puts about 1,500 keywords in
// a MiB: about twice this repository's daemon/ and eight times /usr/include or Python's stdlib.
const std::vector<std::string_view> kWords = {
    "request", "response", "user",   "account",  "config", "handler", "client",   "server",  "buffer", "result",
    "value",   "index",    "count",  "session",  "cache",  "event",   "payload",  "message", "update", "record",
    "token",   "secret",   "key",    "password", "auth",   "header",  "query",    "filter",  "stream", "context",
    "item",    "list",     "map",    "name",     "path",   "file",    "status",   "error",   "retry",  "timeout",
    "node",    "tree",     "parent", "child",    "size",   "length",  "offset",   "start",   "end",    "begin",
    "data",    "input",    "output", "reader",   "writer", "parser",  "lexer",    "schema",  "model",  "view",
    "layout",  "widget",   "button", "label",    "text",   "line",    "column",   "row",     "table",  "entry",
    "field",   "option",   "flag",   "mode",     "state",  "action",  "task",     "job",     "queue",  "worker",
    "thread",  "lock",     "mutex",  "signal",   "socket", "port",    "host",     "address", "route",  "url",
    "method",  "format",   "encode", "decode",   "hash",   "digest",  "sign",     "verify",  "check",  "valid",
    "invalid", "default",  "local",  "global",   "remote", "source",  "target",   "dest",    "copy",   "move",
    "swap",    "sort",     "search", "find",     "match",  "replace", "split",    "join",    "merge",  "diff",
    "patch",   "apply",    "build",  "test",     "debug",  "log",     "trace",    "metric",  "report", "summary",
    "total",   "average",  "min",    "max",      "sum",    "left",    "right",    "top",     "bottom", "width",
    "height",  "color",    "style",  "theme",    "image",  "video",   "audio",    "frame",   "pixel",  "point",
    "vector",  "matrix",   "graph",  "edge",     "vertex", "weight",  "score",    "rank",    "order",  "price",
    "amount",  "date",     "time",   "clock",    "timer",  "delay",   "interval", "period",  "window", "scope",
    "module"};

std::string ident(Random& rng)
{
    std::string out(kWords[rng.below(kWords.size())]);
    if (rng.below(2) == 0) {
        out += '_';
        out += kWords[rng.below(kWords.size())];
    }
    return out;
}

std::string camel(Random& rng)
{
    std::string out(kWords[rng.below(kWords.size())]);
    std::string second(kWords[rng.below(kWords.size())]);
    second[0] = static_cast<char>(second[0] - 32);
    return out + second;
}

std::string prose(Random& rng, std::size_t words)
{
    std::string out;
    for (std::size_t i = 0; i < words; ++i) {
        out += i == 0 ? "" : " ";
        out += kWords[rng.below(kWords.size())];
    }
    return out;
}

std::string number(Random& rng)
{
    return std::to_string(rng.below(100000));
}

std::string uuid(Random& rng)
{
    return rng.chars(kHex, 8) + "-" + rng.chars(kHex, 4) + "-" + rng.chars(kHex, 4) + "-" + rng.chars(kHex, 4) + "-" +
           rng.chars(kHex, 12);
}

// One line of some kind of text; none holds a secret.
std::string line(Random& rng)
{
    // Rare kinds: lines that handle credentials (3, 4, 8, 22, 23, 24) and long quoted hashes and
    // ids (15, 16, 25), each 1 pick in 200.
    static constexpr int kCredentialCases[] = {3, 4, 8, 22, 23, 24, 15, 16, 25};
    std::size_t pick = rng.below(200);
    if (pick < std::size(kCredentialCases)) {
        pick = static_cast<std::size_t>(kCredentialCases[pick]);
    } else if (pick < std::size(kCredentialCases) + 4) {
        // Base64: a JSON data field or a wrapped block. Each is some 40 times longer than a line
        // of code, so they are rare picks; together they are about a tenth of the bytes.
        pick = pick % 2 == 0 ? 27 : 28;
    } else {
        do {
            pick = rng.below(32);
        } while (pick == 27 || pick == 28 ||
                 std::find(std::begin(kCredentialCases), std::end(kCredentialCases), static_cast<int>(pick)) !=
                     std::end(kCredentialCases));
    }
    switch (pick) {
    case 0:
        return "def " + ident(rng) + "(" + ident(rng) + ", " + ident(rng) + "=None):";
    case 1:
        return "    " + ident(rng) + " = " + ident(rng) + "." + ident(rng) + "(" + number(rng) + ")";
    case 2:
        return "    return " + ident(rng) + "[\"" + ident(rng) + "\"]";
    case 3:
        return "    token = request.headers.get(\"Authorization\", \"\").removeprefix(\"Bearer \")";
    case 4:
        return "    password = os.environ[\"DB_PASSWORD\"]  # " + prose(rng, 6);
    case 5:
        return "const " + camel(rng) + " = require('" + ident(rng) + "');";
    case 6:
        return "export function " + camel(rng) + "(" + camel(rng) + ") {";
    case 7:
        return "  if (" + camel(rng) + "." + camel(rng) + " === \"" + ident(rng) + "\") { return null; }";
    case 8:
        return "  const apiKey = process.env.API_KEY ?? config." + camel(rng) + ";";
    case 9:
        return "    std::vector<" + camel(rng) + "> " + ident(rng) + ";";
    case 10:
        return "    for (std::size_t i = 0; i < " + ident(rng) + ".size(); ++i) {";
    case 11:
        return "\t" + camel(rng) + ", err := " + ident(rng) + "." + camel(rng) + "(ctx, \"" + ident(rng) + "\")";
    case 12:
        return "\tif err != nil {\n\t\treturn fmt.Errorf(\"" + prose(rng, 4) + ": %w\", err)\n\t}";
    case 13:
        return "  \"" + camel(rng) + "\": \"" + prose(rng, 3) + "\",";
    case 14:
        return "  \"" + camel(rng) + "\": " + number(rng) + ",";
    case 15:
        return "  \"id\": \"" + uuid(rng) + "\",";
    case 16:
        return "  \"sha\": \"" + rng.chars(kHex, 40) + "\",";
    case 17:
        return "  " + ident(rng) + ": " + prose(rng, 2);
    case 18:
    case 19:
        return prose(rng, 8 + rng.below(12)) + ".";
    case 20:
        return "// " + prose(rng, 10);
    case 21:
        return "See https://" + ident(rng) + ".io/" + ident(rng) + "/" + number(rng) + " for details.";
    case 22:
        return "    if token is None or len(token) < " + number(rng) + ":";
    case 23:
        return "    secret_name = args.secret_name or \"" + ident(rng) + "\"";
    case 24:
        return "    password_hash = bcrypt.hashpw(password.encode(), bcrypt.gensalt())";
    case 25:
        return "  \"integrity\": \"sha512-" + rng.chars(kBase64, 86) + "==\",";
    case 26:
        return "    key = (" + ident(rng) + ", " + ident(rng) + ")";
    case 27:
        return "  \"data\": \"" + rng.chars(kBase64, 200 + rng.below(1800)) + "\",";
    case 28: {
        std::string blob;
        for (std::size_t i = 0, n = 4 + rng.below(40); i < n; ++i) {
            blob += rng.chars(kBase64, 76) + "\n";
        }
        return blob + "=";
    }
    case 29:
        return "    assert " + ident(rng) + " == " + number(rng) + ", \"" + prose(rng, 5) + "\"";
    case 30:
        return "<div class=\"" + ident(rng) + "\">" + prose(rng, 6) + "</div>";
    default:
        return "    self." + ident(rng) + " = " + ident(rng);
    }
}

struct Planted {
    std::string text;    // the line to insert
    std::size_t at = 0;  // offset of the secret within the line
    std::size_t length = 0;
    std::string rule;  // the rule expected to find it
};

Planted plant(Random& rng)
{
    Planted p;
    std::string prefix;
    std::string secret;
    switch (rng.below(16)) {
    case 0:
        prefix = "GITHUB_TOKEN = \"";
        secret = "ghp_" + rng.chars(kAlnum, 36);
        p.rule = "github-pat";
        break;
    case 1:
        prefix = "aws_access_key_id = ";
        secret = "AKIA" + rng.chars(kUpper27, 16);
        p.rule = "aws-access-key-id";
        break;
    case 2:
        prefix = "ANTHROPIC_API_KEY=";
        secret = "sk-ant-api03-" + rng.chars(kBase64Url, 93) + "AA";
        p.rule = "anthropic-api-key";
        break;
    case 3:
        prefix = "client = OpenAI(api_key=\"";
        secret = "sk-proj-" + rng.chars(kBase64Url, 60) + "T3BlbkFJ" + rng.chars(kBase64Url, 60);
        p.rule = "openai-project-key";
        break;
    case 4:
        prefix = "slack_token: ";
        secret = "xoxb-" + rng.chars(kDigits, 12) + "-" + rng.chars(kDigits, 13) + "-" + rng.chars(kAlnum, 24);
        p.rule = "slack-token";
        break;
    case 5:
        prefix = "stripe.api_key = '";
        secret = "sk_live_" + rng.chars(kAlnum, 99);
        p.rule = "stripe-secret-key";
        break;
    case 6:
        prefix = "    private_token: ";
        secret = "glpat-" + rng.chars(kBase64Url, 20);
        p.rule = "gitlab-pat";
        break;
    case 7:
        prefix = "//registry.npmjs.org/:_authToken=";
        secret = "npm_" + rng.chars(kAlnum, 36);
        p.rule = "npm-token";
        break;
    case 8:
        prefix = "HF_TOKEN=";
        secret = "hf_" + rng.chars(kAlnum.substr(0, 52), 34);
        p.rule = "huggingface-token";
        break;
    case 9:
        prefix = "Authorization: Bearer ";
        secret = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiI" + rng.chars(kBase64Url, 40) + "." +
                 rng.chars(kBase64Url, 43);
        p.rule = "jwt";
        break;
    case 10: {
        prefix = "";
        secret = "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA";
        for (int i = 0; i < 20; ++i) {
            secret += rng.chars(kBase64, 64) + "\n";
        }
        secret += "-----END RSA PRIVATE KEY-----";
        p.rule = "private-key";
        break;
    }
    case 11: {
        prefix = "DATABASE_URL=postgres://app:";
        secret = rng.chars(kAlnum, 20);
        p.rule = "database-uri-password";
        p.text = prefix + secret + "@db.internal:5432/app";
        break;
    }
    case 12:
        prefix = "  apiKey: \"";
        secret = "AIza" + rng.chars(kBase64Url, 35);
        p.rule = "google-api-key";
        break;
    case 13:
        prefix = "SENDGRID_API_KEY=";
        secret = "SG." + rng.chars(kBase64Url, 22) + "." + rng.chars(kBase64Url, 43);
        p.rule = "sendgrid-api-key";
        break;
    case 14:
        prefix = "DIGITALOCEAN_TOKEN=";
        secret = "dop_v1_" + rng.chars(kHex, 64);
        p.rule = "digitalocean-token";
        break;
    default: {
        // Generic assignments as they are written: five spellings of the name and operator,
        // values from four kinds of generator (random alphanumerics of 12-40, hex, base64url,
        // and letters only, which a generator of letters makes and an alphanumeric one makes
        // about once in 25 at 18 bytes).
        static constexpr std::array<const char*, 5> kForms = {"    db_password = \"", "  \"client_secret\": \"",
                                                              "  password: '", "const apiKey = \"",
                                                              "\tSessionToken := \""};
        static constexpr std::string_view kLetters = kAlnum.substr(0, 52);
        prefix = kForms[rng.below(kForms.size())];
        switch (rng.below(6)) {
        case 0:
            secret = rng.chars(kHex, 32);
            break;
        case 1:
            secret = rng.chars(kBase64Url, 24 + rng.below(17));
            break;
        case 2:
            secret = rng.chars(kLetters, 16 + rng.below(17));
            break;
        default:
            secret = rng.chars(kAlnum, 12 + rng.below(29));
            break;
        }
        p.rule = "generic-secret-assignment";
        break;
    }
    }
    if (p.text.empty()) {
        const bool quoted = !prefix.empty() && (prefix.back() == '"' || prefix.back() == '\'');
        p.text = prefix + secret + (quoted ? std::string(1, prefix.back()) : "");
    }
    p.at = prefix.size();
    p.length = secret.size();
    return p;
}

struct File {
    std::size_t offset;
    std::size_t size;
};

struct PlantedAt {
    std::size_t file;
    std::size_t offset;  // within the file
    std::size_t length;
    std::string rule;
    std::size_t line = 0;  // 1-based, where the secret starts
};

struct Corpus {
    std::string bytes;
    std::size_t base64_bytes = 0;
    std::vector<File> files;
    std::vector<PlantedAt> planted;
};

Corpus generate(std::size_t total)
{
    Random rng(0x5CA9);
    // A pool of lines keeps generation fast; files draw from it at random.
    std::vector<std::string> pool;
    std::vector<bool> is_base64;
    for (int i = 0; i < 50000; ++i) {
        pool.push_back(line(rng) + "\n");
        // The two base64 kinds are the only lines this long without a space.
        is_base64.push_back(pool.back().size() > 150 && pool.back().find(' ') > 150);
    }
    Corpus corpus;
    corpus.bytes.reserve(total + kMiB);
    std::size_t next_plant = rng.below(kMiB);
    while (corpus.bytes.size() < total) {
        const std::size_t file_begin = corpus.bytes.size();
        const std::size_t target = 4096 + rng.below(256 * 1024 - 4096);
        while (corpus.bytes.size() - file_begin < target) {
            if (corpus.bytes.size() >= next_plant) {
                const Planted p = plant(rng);
                const auto line = static_cast<std::size_t>(std::count(
                    corpus.bytes.begin() + static_cast<std::ptrdiff_t>(file_begin), corpus.bytes.end(), '\n'));
                corpus.planted.push_back(
                    {corpus.files.size(), corpus.bytes.size() - file_begin + p.at, p.length, p.rule, line + 1});
                corpus.bytes += p.text;
                corpus.bytes += '\n';
                next_plant += kMiB / 2 + rng.below(kMiB);
            }
            const std::size_t pick = rng.below(pool.size());
            corpus.bytes += pool[pick];
            corpus.base64_bytes += is_base64[pick] ? pool[pick].size() : 0;
        }
        corpus.files.push_back({file_begin, corpus.bytes.size() - file_begin});
    }
    return corpus;
}

// The regular files under root (sorted, so runs are comparable), up to `total` bytes.
Corpus read_tree(const std::string& root, std::size_t total)
{
    std::vector<std::filesystem::path> paths;
    std::error_code error;
    for (std::filesystem::recursive_directory_iterator
             it(root, std::filesystem::directory_options::skip_permission_denied, error),
         end;
         it != end; it.increment(error)) {
        if (!error && it->is_regular_file(error) && !it->is_symlink(error)) {
            paths.push_back(it->path());
        }
    }
    std::sort(paths.begin(), paths.end());
    Corpus corpus;
    for (const auto& path : paths) {
        if (corpus.bytes.size() >= total) {
            break;
        }
        std::ifstream in(path, std::ios::binary);
        const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        if (!bytes.empty()) {
            corpus.files.push_back({corpus.bytes.size(), bytes.size()});
            corpus.bytes += bytes;
        }
    }
    return corpus;
}

int count_only(unsigned int, unsigned long long, unsigned long long, unsigned int, void* context)
{
    ++*static_cast<std::uint64_t*>(context);
    return 0;
}

// CPU time of this thread: on a shared machine it counts what the scan costs, not what other
// processes took while it waited.
double thread_seconds()
{
    timespec now{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now);
    return static_cast<double>(now.tv_sec) + static_cast<double>(now.tv_nsec) * 1e-9;
}

double median(std::vector<double> values)
{
    std::sort(values.begin(), values.end());
    return values[values.size() / 2];
}

// The corpus on disk, as an upload would be: 64 package folders, each file named by its index.
std::string file_name(std::size_t index)
{
    static constexpr std::array<const char*, 6> kExtensions = {".py", ".js", ".go", ".cpp", ".json", ".yaml"};
    char name[64];
    std::snprintf(name, sizeof name, "pkg%02zu/module%06zu%s", index % 64, index, kExtensions[index % 6]);
    return name;
}

bool write_tree(const std::string& root, const Corpus& corpus)
{
    for (std::size_t d = 0; d < 64; ++d) {
        char dir[32];
        std::snprintf(dir, sizeof dir, "/pkg%02zu", d);
        if (::mkdir((root + dir).c_str(), 0755) != 0) {
            return false;
        }
    }
    for (std::size_t i = 0; i < corpus.files.size(); ++i) {
        std::ofstream out(root + "/" + file_name(i), std::ios::binary);
        out.write(corpus.bytes.data() + corpus.files[i].offset, static_cast<std::streamsize>(corpus.files[i].size));
        if (!out) {
            return false;
        }
    }
    return true;
}

void remove_tree(const std::string& root)
{
    std::error_code error;
    std::filesystem::remove_all(root, error);
}

// secretlint on some package folders of the tree, through bench/secretlint/run.sh (pinned, from
// npm, installed into a cache). Only positions are read from its report (--format unix:
// "PATH:LINE:COLUMN: message"; messages are masked); the report file is removed.
struct Secretlint {
    bool ran = false;
    std::string why;  // when it did not run
    double wall = 0;
    double cpu = 0;                                         // user + system of the whole process tree
    std::vector<std::pair<std::string, std::size_t>> hits;  // relative path, line
};

double child_cpu_seconds()
{
    rusage usage{};
    ::getrusage(RUSAGE_CHILDREN, &usage);
    return static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
           static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) * 1e-6;
}

Secretlint run_secretlint(const std::string& script, const std::string& root, std::size_t folders)
{
    Secretlint out;
    if (::access(script.c_str(), X_OK) != 0) {
        out.why = script + " not found (run the bench from the source tree, or pass --secretlint PATH)";
        return out;
    }
    const std::string report = root + ".secretlint-report";
    const std::string errors = root + ".secretlint-errors";
    std::vector<std::string> args = {script, "--format", "unix"};
    for (std::size_t d = 0; d < folders; ++d) {
        char glob[32];
        std::snprintf(glob, sizeof glob, "/pkg%02zu/**/*", d);
        args.push_back(root + glob);
    }
    const double cpu_start = child_cpu_seconds();
    const auto start = std::chrono::steady_clock::now();
    const pid_t child = ::fork();
    if (child == 0) {
        const int out_fd = ::open(report.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        const int err_fd = ::open(errors.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (out_fd < 0 || err_fd < 0 || ::dup2(out_fd, 1) < 0 || ::dup2(err_fd, 2) < 0) {
            ::_exit(126);
        }
        std::vector<char*> argv;
        for (auto& a : args) {
            argv.push_back(a.data());
        }
        argv.push_back(nullptr);
        ::execv(script.c_str(), argv.data());
        ::_exit(127);
    }
    int status = 0;
    if (child < 0 || ::waitpid(child, &status, 0) != child) {
        out.why = "could not start " + script;
        return out;
    }
    out.wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    out.cpu = child_cpu_seconds() - cpu_start;
    std::ifstream err_in(errors);
    std::string first_error;
    std::getline(err_in, first_error);
    const int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    if (code == 77) {
        out.why = first_error.empty() ? "npm or the registry is unavailable" : first_error;
    } else if (code != 0 && code != 1) {
        out.why = "secretlint failed (exit " + std::to_string(code) + "): " + first_error;
    } else {
        out.ran = true;
        std::ifstream in(report);
        std::string text;
        const std::string prefix = root + "/";
        while (std::getline(in, text)) {
            // PATH:LINE:COLUMN: ...; the corpus's paths hold no ':'.
            if (text.rfind(prefix, 0) != 0) {
                continue;
            }
            const auto colon = text.find(':', prefix.size());
            if (colon == std::string::npos) {
                continue;
            }
            const std::size_t line = std::strtoull(text.c_str() + colon + 1, nullptr, 10);
            out.hits.emplace_back(text.substr(prefix.size(), colon - prefix.size()), line);
        }
    }
    ::unlink(report.c_str());
    ::unlink(errors.c_str());
    return out;
}

}  // namespace

int main(int argc, char** argv)
{
    std::size_t mib = 1024;
    int runs = 3;
    std::string tree;
    std::string parent;
    std::string secretlint = "bench/secretlint/run.sh";
    std::size_t secretlint_mib = 64;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (std::strcmp(argv[i], "--mib") == 0) {
            mib = std::max<std::size_t>(1, static_cast<std::size_t>(std::strtoull(argv[i + 1], nullptr, 10)));
        } else if (std::strcmp(argv[i], "--runs") == 0) {
            runs = std::max(1, std::atoi(argv[i + 1]));
        } else if (std::strcmp(argv[i], "--tree") == 0) {
            tree = argv[i + 1];
        } else if (std::strcmp(argv[i], "--dir") == 0) {
            parent = argv[i + 1];
        } else if (std::strcmp(argv[i], "--secretlint") == 0) {
            secretlint = argv[i + 1];
        } else if (std::strcmp(argv[i], "--secretlint-mib") == 0) {
            secretlint_mib = static_cast<std::size_t>(std::strtoull(argv[i + 1], nullptr, 10));
        } else {
            std::fprintf(stderr,
                         "usage: %s [--mib N] [--runs R] [--dir PARENT] [--tree DIR] [--secretlint PATH|none] "
                         "[--secretlint-mib N]\n",
                         argv[0]);
            return 2;
        }
    }
    if (parent.empty()) {
        const char* tmp = std::getenv("BENCH_STATE_PARENT");
        parent = tmp != nullptr && *tmp != '\0' ? tmp : "/var/tmp";
    }
    auto matcher = Matcher::create(builtin_rules_text(), "rules.toml");
    if (!matcher) {
        std::fprintf(stderr, "scan_bench: %s\n", matcher.message().c_str());
        return 1;
    }
    const RuleSet& rules = matcher.value()->rule_set();
    std::printf("== scan_bench: ingest walk + scan ==\n%zu rules in %zu families\n", rules.rules().size(),
                rules.family_count());

    const auto gen_start = std::chrono::steady_clock::now();
    Corpus corpus = generate(mib * kMiB);
    const double gen_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - gen_start).count();
    const double gib = static_cast<double>(corpus.bytes.size()) / (1024.0 * kMiB);
    std::printf(
        "corpus: %.2f GiB in %zu files, %zu planted secrets, %.0f%% of bytes in base64 blobs (generated in "
        "%.1f s)\n",
        gib, corpus.files.size(), corpus.planted.size(),
        100.0 * static_cast<double>(corpus.base64_bytes) / static_cast<double>(corpus.bytes.size()), gen_seconds);

    Scanner scanner(matcher.value());
    std::array<std::uint8_t, kFingerprintKeyBytes> key{};
    key.fill(0x42);

    // First stage alone, in memory, for scale.
    auto first = compile_first_stage(rules);
    if (!first) {
        std::fprintf(stderr, "scan_bench: %s\n", first.message().c_str());
        return 1;
    }
    hs_scratch_t* raw_scratch = nullptr;
    if (hs_alloc_scratch(first.value().database.get(), &raw_scratch) != HS_SUCCESS) {
        std::fprintf(stderr, "scan_bench: hs_alloc_scratch failed\n");
        return 1;
    }
    HsScratch hs_scratch(raw_scratch);
    std::vector<double> first_cpu;
    std::uint64_t first_hits = 0;
    for (int run = 0; run < runs; ++run) {
        first_hits = 0;
        const double cpu_start = thread_seconds();
        for (const File& file : corpus.files) {
            hs_scan(first.value().database.get(), corpus.bytes.data() + file.offset, static_cast<unsigned>(file.size),
                    0, hs_scratch.get(), count_only, &first_hits);
        }
        first_cpu.push_back(thread_seconds() - cpu_start);
    }
    // Where the rest of the time goes, each part alone on the in-memory corpus: the run finder
    // of the rules with no literal, the env-read listing, and the whole scanner (both stages,
    // verifiers, findings) without the walk.
    std::vector<double> runs_cpu;
    std::vector<double> reads_cpu;
    std::vector<double> scan_cpu;
    std::uint64_t run_count = 0;
    std::uint64_t read_count = 0;
    for (int run = 0; run < runs; ++run) {
        run_count = 0;
        double cpu_start = thread_seconds();
        for (const auto& rule : rules.rules()) {
            if (rule.run_class.empty()) {
                continue;
            }
            const auto table = codexvault::scan::re::single_byte_class(rule.run_class);
            for (const File& file : corpus.files) {
                const std::string_view text(corpus.bytes.data() + file.offset, file.size);
                const auto count = [&](std::size_t, std::size_t) {
                    ++run_count;
                    return true;
                };
                if (rule.run_after.empty()) {
                    for_each_run(text, *table, rule.run_min, count);
                } else {
                    for_each_run_after(text, rule.run_after, *table, rule.run_min, rule.run_max, count);
                }
            }
        }
        runs_cpu.push_back(thread_seconds() - cpu_start);
        read_count = 0;
        cpu_start = thread_seconds();
        for (const File& file : corpus.files) {
            read_count += env_var_reads(std::string_view(corpus.bytes.data() + file.offset, file.size)).size();
        }
        reads_cpu.push_back(thread_seconds() - cpu_start);
        cpu_start = thread_seconds();
        for (std::size_t i = 0; i < corpus.files.size(); ++i) {
            const File& file = corpus.files[i];
            (void)scanner.scan(std::string_view(corpus.bytes.data() + file.offset, file.size), file_name(i), key);
        }
        scan_cpu.push_back(thread_seconds() - cpu_start);
    }

    // The corpus goes to disk; the in-memory copy is dropped so the walk's figures are its own.
    std::string root = parent + "/codex-vault-scan-bench.XXXXXX";
    if (::mkdtemp(root.data()) == nullptr) {
        std::fprintf(stderr, "scan_bench: cannot create a folder under %s: %s\n", parent.c_str(), std::strerror(errno));
        return 1;
    }
    if (!write_tree(root, corpus)) {
        std::fprintf(stderr, "scan_bench: cannot write the corpus under %s\n", root.c_str());
        remove_tree(root);
        return 1;
    }
    const std::size_t file_count = corpus.files.size();
    const std::vector<PlantedAt> planted = std::move(corpus.planted);
    std::string().swap(corpus.bytes);
    std::map<std::string, std::size_t> index_of;
    for (std::size_t i = 0; i < file_count; ++i) {
        index_of[file_name(i)] = i;
    }
    const int root_fd = ::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (root_fd < 0) {
        std::fprintf(stderr, "scan_bench: open %s: %s\n", root.c_str(), std::strerror(errno));
        remove_tree(root);
        return 1;
    }
    codexvault::ingest::IngestOptions options;
    options.include_low = true;
    options.limits.max_total_bytes = UINT64_MAX;
    options.limits.max_files = UINT64_MAX;

    // One untimed walk brings the files into the page cache.
    (void)codexvault::ingest::scan_tree(root_fd, scanner, key, options);

    // Peak RSS of a process that does only the walk and scan (what a worker would hold): a
    // child forked now, before the parent's timed runs, has nothing else of size in memory.
    long worker_rss_kib = -1;
    if (const pid_t child = ::fork(); child == 0) {
        (void)codexvault::ingest::scan_tree(root_fd, scanner, key, options);
        ::_exit(0);
    } else if (child > 0) {
        int status = 0;
        rusage usage{};
        if (::wait4(child, &status, 0, &usage) == child && WIFEXITED(status) && WEXITSTATUS(status) == 0) {
            worker_rss_kib = usage.ru_maxrss;
        }
    }

    std::vector<double> seconds;
    std::vector<double> cpu_seconds;
    codexvault::ingest::IngestReport report;
    for (int run = 0; run < runs; ++run) {
        const double cpu_start = thread_seconds();
        const auto start = std::chrono::steady_clock::now();
        report = codexvault::ingest::scan_tree(root_fd, scanner, key, options);
        seconds.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
        cpu_seconds.push_back(thread_seconds() - cpu_start);
    }
    // secretlint and this scanner on the same package folders (secretlint is too slow for the
    // whole corpus on a shared machine): the first `folders` of 64, about secretlint_mib.
    const std::size_t folders =
        std::clamp<std::size_t>((secretlint_mib * 64 + mib - 1) / std::max<std::size_t>(mib, 1), 1, 64);
    Secretlint theirs;
    std::vector<double> subset_cpu;
    std::uint64_t subset_bytes = 0;
    if (secretlint != "none" && secretlint_mib > 0) {
        theirs = run_secretlint(secretlint, root, folders);
        for (int run = 0; run < runs; ++run) {
            subset_bytes = 0;
            const double cpu_start = thread_seconds();
            for (std::size_t d = 0; d < folders; ++d) {
                char dir[32];
                std::snprintf(dir, sizeof dir, "pkg%02zu", d);
                const int fd = ::openat(root_fd, dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (fd >= 0) {
                    subset_bytes += codexvault::ingest::scan_tree(fd, scanner, key, options).walk.bytes_read;
                    ::close(fd);
                }
            }
            subset_cpu.push_back(thread_seconds() - cpu_start);
        }
    }
    ::close(root_fd);
    remove_tree(root);
    const double walked_gib = static_cast<double>(report.walk.bytes_read) / (1024.0 * kMiB);

    std::vector<std::vector<Finding>> findings(file_count);
    ScanStats totals;
    for (auto& file : report.files) {
        const auto at = index_of.find(file.path);
        if (at != index_of.end()) {
            findings[at->second] = std::move(file.findings);
        }
    }

    // Recall: a planted secret counts when a finding of the expected rule covers its first byte
    // (any rule, for the second figure).
    std::size_t found_rule = 0;
    std::size_t found_any = 0;
    std::map<std::string, std::pair<std::size_t, std::size_t>> per_rule;  // rule -> {found, planted}
    std::vector<std::vector<bool>> matched(file_count);
    for (std::size_t i = 0; i < file_count; ++i) {
        matched[i].assign(findings[i].size(), false);
    }
    for (const auto& p : planted) {
        bool rule_hit = false;
        bool any_hit = false;
        auto& list = findings[p.file];
        for (std::size_t k = 0; k < list.size(); ++k) {
            const Finding& f = list[k];
            if (f.offset <= p.offset && p.offset < f.offset + f.length) {
                any_hit = true;
                rule_hit = rule_hit || f.rule_id == p.rule;
                matched[p.file][k] = true;
            }
        }
        found_rule += rule_hit ? 1 : 0;
        found_any += any_hit ? 1 : 0;
        auto& entry = per_rule[p.rule];
        entry.first += rule_hit ? 1 : 0;
        ++entry.second;
    }
    std::map<std::string, std::size_t> unplanted;
    std::size_t unplanted_total = 0;
    for (std::size_t i = 0; i < file_count; ++i) {
        for (std::size_t k = 0; k < findings[i].size(); ++k) {
            if (!matched[i][k]) {
                ++unplanted[findings[i][k].rule_id];
                ++unplanted_total;
            }
        }
    }

    // Negative examples from the rules file, scanned as the unit tests do.
    std::size_t negatives = 0;
    std::size_t negative_findings = 0;
    for (const auto& rule : rules.rules()) {
        const std::string name = rule.files.empty() ? "example.txt" : ".env";
        for (const auto& example : rule.negative_examples) {
            ++negatives;
            negative_findings += scanner.scan(example, name, key).findings.size();
        }
    }

    std::printf(
        "first stage only (Vectorscan in memory, counting callback): %.2f GiB/s CPU (median of %d), %llu reports\n",
        gib / median(first_cpu), runs, static_cast<unsigned long long>(first_hits));
    std::printf("run finder only (rules with no literal, in memory): %.2f GiB/s CPU, %llu runs\n",
                gib / median(runs_cpu), static_cast<unsigned long long>(run_count));
    std::printf(
        "env-read listing as a pass of its own (in memory; the scan lists them in its first stage): %.2f GiB/s CPU, "
        "%llu names\n",
        gib / median(reads_cpu), static_cast<unsigned long long>(read_count));
    std::printf("scanner only (both stages and findings, in memory, no walk, no env reads): %.2f GiB/s CPU\n",
                gib / median(scan_cpu));
    std::printf(
        "end to end, one thread, page-cached (walk with openat2 + read + scan + findings + env names/reads):\n"
        "  %.2f GiB/s CPU, %.2f GiB/s wall (median of %d; target 1.5 GiB/s)\n",
        walked_gib / median(cpu_seconds), walked_gib / median(seconds), runs);
    std::printf("  runs, wall s:");
    for (const double s : seconds) {
        std::printf(" %.3f", s);
    }
    std::printf("   CPU s:");
    for (const double s : cpu_seconds) {
        std::printf(" %.3f", s);
    }
    std::printf("\n  walked: %llu files, %llu directories, %.2f GiB read, %llu skipped; complete: %s\n",
                static_cast<unsigned long long>(report.walk.files),
                static_cast<unsigned long long>(report.walk.directories), walked_gib,
                static_cast<unsigned long long>(report.walk.skipped), report.complete() ? "yes" : "no");
    if (worker_rss_kib >= 0) {
        std::printf("  peak RSS of a process doing only the walk and scan: %.1f MiB\n",
                    static_cast<double>(worker_rss_kib) / 1024.0);
    }
    (void)totals;
    std::printf("recall: %zu / %zu planted found by the expected rule (%.2f%%), %zu by any rule\n", found_rule,
                planted.size(), 100.0 * static_cast<double>(found_rule) / static_cast<double>(planted.size()),
                found_any);
    for (const auto& [rule, counts] : per_rule) {
        std::printf("  %-28s %4zu / %4zu\n", rule.c_str(), counts.first, counts.second);
    }
    std::printf("findings not at a planted secret: %zu\n", unplanted_total);
    for (const auto& [rule, count] : unplanted) {
        std::printf("  %-28s %zu\n", rule.c_str(), count);
    }
    std::printf("negative examples: %zu scanned, %zu findings\n", negatives, negative_findings);

    if (secretlint != "none" && secretlint_mib > 0) {
        const double subset_gib = static_cast<double>(subset_bytes) / (1024.0 * kMiB);
        std::printf("secretlint side by side (pkg00-pkg%02zu, %.2f GiB, %zu of 64 folders):\n", folders - 1, subset_gib,
                    folders);
        if (!theirs.ran) {
            std::printf("  secretlint: not run: %s (no figure)\n", theirs.why.c_str());
        } else {
            // Planted secrets in these folders, and the lines they start on.
            std::set<std::pair<std::size_t, std::size_t>> planted_lines;
            std::size_t in_subset = 0;
            std::size_t ours_found = 0;
            std::size_t theirs_found = 0;
            std::set<std::pair<std::size_t, std::size_t>> their_lines;
            for (const auto& [path, line] : theirs.hits) {
                const auto at = index_of.find(path);
                if (at != index_of.end()) {
                    their_lines.emplace(at->second, line);
                }
            }
            std::map<std::string, std::pair<std::size_t, std::size_t>> theirs_per_rule;
            for (std::size_t k = 0; k < planted.size(); ++k) {
                const auto& p = planted[k];
                if (p.file % 64 >= folders) {
                    continue;
                }
                ++in_subset;
                planted_lines.emplace(p.file, p.line);
                bool ours = false;
                for (const Finding& f : findings[p.file]) {
                    ours = ours || (f.rule_id == p.rule && f.offset <= p.offset && p.offset < f.offset + f.length);
                }
                ours_found += ours ? 1 : 0;
                const bool found = their_lines.contains({p.file, p.line});
                theirs_found += found ? 1 : 0;
                auto& entry = theirs_per_rule[p.rule];
                entry.first += found ? 1 : 0;
                ++entry.second;
            }
            std::size_t theirs_elsewhere = 0;
            for (const auto& hit : their_lines) {
                theirs_elsewhere += planted_lines.contains(hit) ? 0 : 1;
            }
            std::size_t ours_elsewhere = 0;
            for (std::size_t i = 0; i < file_count; ++i) {
                if (i % 64 < folders) {
                    for (std::size_t k = 0; k < findings[i].size(); ++k) {
                        ours_elsewhere += matched[i][k] ? 0 : 1;
                    }
                }
            }
            const double ours_cpu = subset_gib / median(subset_cpu);
            const double their_cpu = subset_gib / theirs.cpu;
            const double their_wall = subset_gib / theirs.wall;
            std::printf(
                "  throughput, CPU: ours %.2f GiB/s (median of %d), secretlint %.4f GiB/s (%.1f MiB/s; one run, "
                "%.1f s CPU, %.1f s wall, node start-up included): %.0fx (target 50x)\n",
                ours_cpu, runs, their_cpu, their_cpu * 1024.0, theirs.cpu, theirs.wall, ours_cpu / their_cpu);
            std::printf("  secretlint wall: %.1f MiB/s\n", their_wall * 1024.0);
            std::printf(
                "  recall on the %zu planted here: ours %zu (%.1f%%), secretlint %zu (%.1f%%; a report on the "
                "secret's line)\n",
                in_subset, ours_found, 100.0 * static_cast<double>(ours_found) / static_cast<double>(in_subset),
                theirs_found, 100.0 * static_cast<double>(theirs_found) / static_cast<double>(in_subset));
            for (const auto& [rule, counts] : theirs_per_rule) {
                std::printf("    secretlint %-28s %4zu / %4zu\n", rule.c_str(), counts.first, counts.second);
            }
            std::printf("  reports away from planted secrets: ours %zu, secretlint %zu (lines)\n", ours_elsewhere,
                        theirs_elsewhere);
        }
    }

    if (!tree.empty()) {
        const Corpus real = read_tree(tree, mib * kMiB);
        const double real_gib = static_cast<double>(real.bytes.size()) / (1024.0 * kMiB);
        std::vector<double> real_cpu;
        std::map<std::string, std::size_t> real_findings;
        for (int run = 0; run < runs; ++run) {
            real_findings.clear();
            const double cpu_start = thread_seconds();
            for (const File& file : real.files) {
                const ScanResult result =
                    scanner.scan(std::string_view(real.bytes).substr(file.offset, file.size), "file", key);
                for (const Finding& f : result.findings) {
                    ++real_findings[f.rule_id];
                }
            }
            real_cpu.push_back(thread_seconds() - cpu_start);
        }
        std::printf("tree %s: %.2f GiB in %zu files, scanned in memory: %.2f GiB/s CPU (median of %d); findings:",
                    tree.c_str(), real_gib, real.files.size(), real_gib / median(real_cpu), runs);
        for (const auto& [rule, count] : real_findings) {
            std::printf(" %s=%zu", rule.c_str(), count);
        }
        std::printf("\n");
    }
    return 0;
}
