// The placeholder policy: documentation values, templates and indirections are not findings,
// both judged directly and through a whole scan in the places they usually appear.
#include <criterion/criterion.h>

#include <string>
#include <string_view>

#include "lib/scan/placeholder.hpp"
#include "tests/unit/scan/scan_support.hpp"

using namespace scan_test;

Test(scan_placeholders, markers_and_words)
{
    for (const char* value : {"AKIAIOSFODNN7EXAMPLE",
                              "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
                              "sk-proj-YOUR_API_KEY_GOES_HERE_0123",
                              "your-token-here-1234",
                              "<your-api-key>",
                              "<API_KEY>",
                              "${OPENAI_API_KEY}",
                              "$(cat /run/secrets/key)",
                              "{{ secrets.TOKEN }}",
                              "process.env.OPENAI_API_KEY",
                              "os.environ['KEY']",
                              "os.getenv(\"KEY\")",
                              "getenv(\"KEY\")",
                              "ENV['KEY']",
                              "changeme",
                              "CHANGEME123",
                              "change_me_please",
                              "placeholder-value-1",
                              "redacted-4f9a",
                              "dummy-token-9f8e7d",
                              "sk-ant-api03-...",
                              "********",
                              "%(password)s",
                              "{password}",
                              "%DB_PASSWORD%",
                              "$DB_PASSWORD",
                              "replace_me_with_token",
                              "sample_key_123",
                              "insert-key-here9"}) {
        cr_expect(is_placeholder(value, 0), "'%s' is not seen as a placeholder", value);
    }
    for (const char* value : {"password", "secret", "token", "null", "undefined", "none", "test", "xxx"}) {
        cr_expect(is_placeholder(value, 0), "word '%s' is not seen as a placeholder", value);
    }
}

Test(scan_placeholders, repetition_and_sequences)
{
    for (const char* value :
         {"xxxxxxxxxxxxxxxx", "XXXXXXXXXXXXXXXXXXXX", "xxx123abcDEF", "aaaaaaaaaaaaaaaaaaaa", "0000000000000000",
          "abcabcabcabcabc", "1234123412341234", "123456789", "abcdefghijklmnopqrstuvwxyz",
          "0123456789abcdef0123456789abcdef", "9876543210", "ABCDEFGHIJKLMNOP"}) {
        cr_expect(is_placeholder(value, 0), "'%s' is not seen as a placeholder", value);
    }
    // The public prefix is not part of the repetition check: "ghp_" + 36 x's is a placeholder,
    // and so is a prefix with nothing after it.
    cr_expect(is_placeholder("ghp_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", 4));
    cr_expect(is_placeholder("ghp_", 4));
}

Test(scan_placeholders, real_looking_values_are_not_placeholders)
{
    Random random(7);
    for (int i = 0; i < 2000; ++i) {
        const std::string value = random.chars(kAlnum, 20 + static_cast<std::size_t>(i % 60));
        cr_expect(!is_placeholder(value, 0), "random value '%s' taken for a placeholder", value.c_str());
    }
    for (const char* value : {"hunter2-Zq8", "Xk29dkWmq2LpQz", "correct-Horse-9-battery", "s3cr3t!P4ss"}) {
        cr_expect(!is_placeholder(value, 0), "'%s' taken for a placeholder", value);
    }
}

Test(scan_placeholders, long_key_bodies_with_runs_of_a_are_kept)
{
    // DER inside OpenSSH and PEM bodies has long runs of 'A'; the run check is for token-sized values.
    std::string body = "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW";
    Random random(3);
    body += random.chars("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/", 400);
    cr_expect(!is_placeholder(body, 0));
}

Test(scan_placeholders, placeholders_in_context_produce_no_findings)
{
    for (const char* text : {
             "OPENAI_API_KEY=sk-proj-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n",
             "export ANTHROPIC_API_KEY=\"${ANTHROPIC_API_KEY}\"\n",
             "api_key = os.environ[\"OPENAI_API_KEY\"]\n",
             "const apiKey = process.env.OPENAI_API_KEY;\n",
             "token = getenv(\"GITHUB_TOKEN\")\n",
             "password: \"changeme\"\n",
             "GITHUB_TOKEN=ghp_XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX\n",
             "DATABASE_URL=postgres://app:<password>@db:5432/app\n",
             "DATABASE_URL=postgres://app:$(cat /run/secrets/db)@db:5432/app\n",
             "aws_access_key_id = AKIAIOSFODNN7EXAMPLE\n",
             "secret = \"aaaaaaaaaaaaaaaaaaaaaaaa\"\n",
             "api_key = \"1234567890abcdef\"\n",
             "STRIPE_SECRET_KEY=sk_live_YOUR_STRIPE_SECRET_KEY_HERE\n",
             "SLACK_BOT_TOKEN=xoxb-000000000000-0000000000000-xxxxxxxxxxxxxxxxxxxxxxxx\n",
         }) {
        for (const char* name : {"app.py", ".env"}) {
            const ScanResult result = scan(text, name);
            cr_expect(result.findings.empty(), "'%s' (as %s) gave %zu findings, first %s", text, name,
                      result.findings.size(), result.findings.empty() ? "" : result.findings[0].rule_id.c_str());
        }
    }
}
