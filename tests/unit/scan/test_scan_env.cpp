// Env files (recognised by name; variable names listed, values never) and the environment
// variables a source file reads.
#include <criterion/criterion.h>

#include <string>
#include <string_view>
#include <vector>

#include "lib/scan/env_files.hpp"
#include "lib/scan/env_reads.hpp"
#include "tests/unit/scan/scan_support.hpp"

using namespace codexvault::scan;

namespace {

constexpr std::string_view kCanary = "CANARYvalue";

void expect_names(const std::vector<std::string>& got, const std::vector<std::string>& want, const char* what)
{
    cr_expect_eq(got.size(), want.size(), "%s: %zu names, expected %zu", what, got.size(), want.size());
    for (std::size_t i = 0; i < got.size() && i < want.size(); ++i) {
        cr_expect(got[i] == want[i], "%s: name %zu is '%s', expected '%s'", what, i, got[i].c_str(), want[i].c_str());
    }
}

void expect_no_canary(const std::vector<std::string>& names)
{
    for (const auto& name : names) {
        cr_expect(name.find(kCanary) == std::string::npos && name.find("canary") == std::string::npos,
                  "a value leaked into the names: '%s'", name.c_str());
    }
}

}  // namespace

Test(scan_env, env_file_names)
{
    for (const char* name :
         {".env", ".env.local", ".env.production", ".env.development.local", "prod.env", "docker.env", ".envrc",
          ".flaskenv", ".dev.vars", "app/config/.env", "/srv/site/.ENV", ".env-staging", ".env.vault"}) {
        cr_expect(env_file_kind(name) == EnvFileKind::Env, "%s is not an env file", name);
    }
    for (const char* name : {".env.example", ".env.sample", ".env.template", ".env.dist", ".env.local.example",
                             "example.env", "sample.env", "config.env.example", ".env-sample"}) {
        cr_expect(env_file_kind(name) == EnvFileKind::Template, "%s is not an env template", name);
    }
    for (const char* name : {"env", "environment.py", "README.md", ".environment", "dotenv.js", "venv", ".envy",
                             "my.env.d/x.py", "env.sh", ""}) {
        cr_expect(env_file_kind(name) == EnvFileKind::NotEnv, "%s taken for an env file", name);
    }
}

Test(scan_env, variable_names_only)
{
    const std::string content =
        std::string("# a comment with NOT_A_NAME=1\n") + "OPENAI_API_KEY=sk-" + std::string(kCanary) + "\n" +
        "export DB_PASSWORD='" + std::string(kCanary) + "'\n" + "  SPACED = \"" + std::string(kCanary) + "\"\r\n" +
        "EMPTY=\n" + "dotted.name=" + std::string(kCanary) + "\n" + "OPENAI_API_KEY=again-" + std::string(kCanary) +
        "\n" + "not an assignment\n" + "=" + std::string(kCanary) + "\n" + "lower_case=" + std::string(kCanary);
    const auto names = env_file_variable_names(content);
    expect_names(names, {"OPENAI_API_KEY", "DB_PASSWORD", "SPACED", "EMPTY", "dotted.name", "lower_case"}, "basic");
    expect_no_canary(names);
}

Test(scan_env, quoted_values_spanning_lines_are_skipped_whole)
{
    // The PEM body lines look like assignments ("MIIB...=") and must not become names.
    const std::string content =
        "PRIVATE_KEY=\"-----BEGIN PRIVATE KEY-----\n"
        "MIIBVAIBADANBgkqhkiG9w0BAQEFAASCAT4wggE6AgEAAkEA0canaryXYZ=\n"
        "FAKE_NAME=canary\n"
        "-----END PRIVATE KEY-----\"\n"
        "AFTER=1\n"
        "ESCAPED=\"a \\\" quote\nINSIDE=canary\"\n"
        "SINGLE='it''s'\n"
        "LAST=ok\n";
    const auto names = env_file_variable_names(content);
    expect_names(names, {"PRIVATE_KEY", "AFTER", "ESCAPED", "SINGLE", "LAST"}, "multi-line");
    expect_no_canary(names);
}

Test(scan_env, an_unclosed_quote_ends_the_parse)
{
    const std::string content = "FIRST=1\nBROKEN=\"never closed\nMIIBVAIBADANBgkqhkiG9w0canary=\nLATER=2\n";
    const auto names = env_file_variable_names(content);
    expect_names(names, {"FIRST", "BROKEN"}, "unclosed");
    expect_no_canary(names);
}

Test(scan_env, binary_and_empty_content)
{
    cr_expect(env_file_variable_names("").empty());
    const std::string binary("\0\xff\xfe=\x01\nA\0B=1\n\x80X=2\n", 16);
    const auto names = env_file_variable_names(binary);
    for (const auto& name : names) {
        for (const char c : name) {
            cr_expect((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
                      c == '.');
        }
    }
}

Test(scan_env, reads_in_each_language)
{
    const std::string source = R"(
import os
a = os.environ["PY_INDEX"]
b = os.environ.get('PY_GET', 'default')
c = os.getenv("PY_GETENV")
const d = process.env.JS_DOT;
const e = process.env["JS_INDEX"];
const f = process.env?.JS_OPTIONAL;
const g = import.meta.env.VITE_KEY;
const h = Deno.env.get("DENO_KEY");
char* i = getenv("C_GETENV");
auto j = std::getenv("CPP_GETENV");
char* k = secure_getenv("C_SECURE");
let l = std::env::var("RUST_VAR");
let m = env::var_os("RUST_VAR_OS");
n = ENV["RUBY_INDEX"]
o = ENV.fetch("RUBY_FETCH")
String p = System.getenv("JAVA_GETENV");
q := os.Getenv("GO_GETENV")
r, ok := os.LookupEnv("GO_LOOKUP")
var s = Environment.GetEnvironmentVariable("CSHARP_VAR");
$t = getenv('PHP_GETENV'); $u = $_ENV['PHP_ENV']; $v = env('LARAVEL_KEY');
w = os.environ["PY_INDEX"]  # a repeat is listed once
)";
    // The scanner finds the same names in the same order in its own first-stage pass.
    ScanOptions options;
    options.env_reads = true;
    expect_names(scan_test::scan(source, "src/app.py", options).env_reads, env_var_reads(source), "the scanner's pass");
    cr_expect(scan_test::scan(source).env_reads.empty(), "names listed without being asked for");
    expect_names(env_var_reads(source),
                 {"PY_INDEX",    "PY_GET",     "PY_GETENV",  "JS_DOT",      "JS_INDEX",  "JS_OPTIONAL",
                  "VITE_KEY",    "DENO_KEY",   "C_GETENV",   "CPP_GETENV",  "C_SECURE",  "RUST_VAR",
                  "RUST_VAR_OS", "RUBY_INDEX", "RUBY_FETCH", "JAVA_GETENV", "GO_GETENV", "GO_LOOKUP",
                  "CSHARP_VAR",  "PHP_GETENV", "PHP_ENV",    "LARAVEL_KEY"},
                 "languages");
}

Test(scan_env, reads_not_reported)
{
    const std::string source = R"(
name = "KEY"; v = os.environ[name]          # dynamic
my_getenv("CUSTOM")                           # another function
MY_ENV["NOT_ENV"]                             # another map
x = env('lower_case_setting')                 # generic env(): upper case only
os.environ["BAD NAME"]
getenv("unterminated)
process.env.
)";
    const auto names = env_var_reads(source);
    cr_expect(names.empty(), "%zu names, first '%s'", names.size(), names.empty() ? "" : names[0].c_str());
    ScanOptions options;
    options.env_reads = true;
    cr_expect(scan_test::scan(source, "src/app.py", options).env_reads.empty());
}
