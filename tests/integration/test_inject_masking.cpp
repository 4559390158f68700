// Output masking of vaultctl exec end to end: each encoding of the value (raw, base64 at each
// alignment, URL-encoded with upper- and lower-case hex, JSON-escaped) written by the command one
// byte per write, so the stream is cut at every byte boundary of every form (how vaultctl's reads
// regroup the bytes is up to the pipe; tests/unit/redact proves every split of the redactor
// itself); --no-mask passes the same bytes unchanged; the value is nowhere else.
#include <unistd.h>

#include <criterion/criterion.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "tests/integration/inject_support.hpp"
#include "tests/support/harness.hpp"

using namespace codexvault;
using namespace codexvault::test;
using namespace codexvault::test::inject;

namespace {

std::string base64(const std::string& in)
{
    static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    std::size_t i = 0;
    for (; i + 2 < in.size(); i += 3) {
        const unsigned v = (static_cast<unsigned char>(in[i]) << 16U) | (static_cast<unsigned char>(in[i + 1]) << 8U) |
                           static_cast<unsigned char>(in[i + 2]);
        out += kAlphabet[(v >> 18U) & 63U];
        out += kAlphabet[(v >> 12U) & 63U];
        out += kAlphabet[(v >> 6U) & 63U];
        out += kAlphabet[v & 63U];
    }
    if (i + 1 == in.size()) {
        const unsigned v = static_cast<unsigned char>(in[i]) << 16U;
        out += kAlphabet[(v >> 18U) & 63U];
        out += kAlphabet[(v >> 12U) & 63U];
        out += "==";
    } else if (i + 2 == in.size()) {
        const unsigned v = (static_cast<unsigned char>(in[i]) << 16U) | (static_cast<unsigned char>(in[i + 1]) << 8U);
        out += kAlphabet[(v >> 18U) & 63U];
        out += kAlphabet[(v >> 12U) & 63U];
        out += kAlphabet[(v >> 6U) & 63U];
        out += '=';
    }
    return out;
}

// RFC 3986: everything but A-Za-z0-9-._~ as %XX.
std::string url_encoded(const std::string& in, bool upper)
{
    const char* hex = upper ? "0123456789ABCDEF" : "0123456789abcdef";
    std::string out;
    for (const char c : in) {
        const auto u = static_cast<unsigned char>(c);
        if (std::isalnum(u) != 0 || c == '-' || c == '.' || c == '_' || c == '~') {
            out += c;
        } else {
            out += '%';
            out += hex[u >> 4U];
            out += hex[u & 15U];
        }
    }
    return out;
}

// RFC 8259's minimal escaping, as most encoders write it (non-ASCII left as UTF-8).
std::string json_escaped(const std::string& in)
{
    std::string out;
    for (const char c : in) {
        if (c == '"' || c == '\\') {
            out += '\\';
        }
        out += c;
    }
    return out;
}

struct Form {
    std::string name;
    std::string bytes;
    bool base64 = false;  // its edges may keep a character that mixes value bits with a neighbour's
};

// A value whose URL and JSON forms differ from the raw one.
std::string value_with_specials()
{
    return random_canary() + "/\"+ &=?\\\xc3\xa9";
}

std::vector<Form> forms_of(const std::string& value)
{
    return {
        {"raw", value, false},
        {"base64 at alignment 0", base64(value), true},
        {"base64 at alignment 1", base64("x" + value), true},
        {"base64 at alignment 2", base64("xy" + value), true},
        {"URL-encoded, upper-case hex", url_encoded(value, true), false},
        {"URL-encoded, lower-case hex", url_encoded(value, false), false},
        {"JSON-escaped", json_escaped(value), false},
    };
}

std::string put_value(const std::string& name, const std::string& value)
{
    const auto r = env->vaultctl({"secret", "put", name, "--founder-key", env->founder_key(), "--passphrase-fd", "3"},
                                 {.stdin_data = value, .passphrase = kPassphrase, .as_uid = std::nullopt});
    cr_assert_eq(r.exit_code, 0, "secret put: %s", r.err.c_str());
    return value;
}

// Writes each form to a file of its own; the command prints them one byte per write(2), one
// form per line.
std::vector<std::string> command_printing(const std::vector<Form>& forms, const std::string& dir)
{
    std::filesystem::create_directories(dir);
    std::string script;
    for (std::size_t i = 0; i < forms.size(); ++i) {
        const std::string path = dir + "/form-" + std::to_string(i);
        std::ofstream(path, std::ios::binary) << forms[i].bytes;
        std::filesystem::permissions(path, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
        script += "dd if=" + path + " bs=1 status=none; echo; ";
    }
    return {"sh", "-c", script};
}

std::vector<std::string> lines_of(const std::string& text)
{
    std::vector<std::string> out;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) {
        out.push_back(line);
    }
    return out;
}

}  // namespace

TestSuite(inject_masking, .init = start_env_with_founder, .fini = stop_env, .timeout = 120);

Test(inject_masking, each_encoding_written_a_byte_at_a_time_is_masked)
{
    require_root();
    require_monitor();
    const std::string value = put_value("demo", value_with_specials());
    issue_inject_grant("demo");
    const auto forms = forms_of(value);
    const std::string dir = env->root() + "/forms";
    std::vector<std::string> args{"exec", "--secret", "demo=TOKEN", "--"};
    for (auto& a : command_printing(forms, dir)) {
        args.push_back(std::move(a));
    }
    const auto r = env->vaultctl(args);
    std::filesystem::remove_all(dir);
    cr_assert_eq(r.exit_code, 0, "%s", r.err.c_str());
    const auto lines = lines_of(r.out);
    cr_assert_eq(lines.size(), forms.size(), "one line per form, got %zu", lines.size());
    for (std::size_t i = 0; i < forms.size(); ++i) {
        const std::string& line = lines[i];
        const Form& form = forms[i];
        cr_expect(!contains(line, form.bytes), "the %s form passed unmasked", form.name.c_str());
        cr_expect(!contains(line, value), "the value passed unmasked in the %s line", form.name.c_str());
        const auto at = line.find("<redacted:demo>");
        cr_expect_neq(at, std::string::npos, "the %s form was masked", form.name.c_str());
        if (!form.base64) {
            cr_expect_eq(line, "<redacted:demo>", "the %s form is exactly one marker (line of %zu bytes)",
                         form.name.c_str(), line.size());
        } else {
            // At most the two characters at each edge that mix the value's bits with a neighbour's.
            cr_expect_leq(line.size(), std::string("<redacted:demo>").size() + 4U, "the %s line keeps %zu bytes",
                          form.name.c_str(), line.size());
            cr_expect_eq(line.find("<redacted:demo>", at + 1), std::string::npos);
        }
    }
    expect_canary_contained(value);
}

Test(inject_masking, no_mask_passes_every_form_through_byte_for_byte)
{
    require_root();
    require_monitor();
    const std::string value = put_value("demo", value_with_specials());
    issue_inject_grant("demo");
    const auto forms = forms_of(value);
    const std::string dir = env->root() + "/forms-unmasked";
    std::vector<std::string> args{"exec", "--no-mask", "--secret", "demo=TOKEN", "--"};
    for (auto& a : command_printing(forms, dir)) {
        args.push_back(std::move(a));
    }
    const auto r = env->vaultctl(args);
    std::filesystem::remove_all(dir);
    cr_assert_eq(r.exit_code, 0, "%s", r.err.c_str());
    std::string expected;
    for (const auto& f : forms) {
        expected += f.bytes + "\n";
    }
    cr_expect(r.out == expected, "--no-mask changed the output (%zu bytes, expected %zu)", r.out.size(),
              expected.size());
    expect_canary_contained(value);
}
