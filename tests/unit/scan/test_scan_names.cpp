// The name a generic value is assigned to: its words, how it is found in front of the value, and
// which names say the value is not the secret itself.
#include <criterion/criterion.h>

#include <string>
#include <string_view>
#include <vector>

#include "lib/scan/secret_names.hpp"

using codexvault::scan::assigned_name;
using codexvault::scan::name_words;
using codexvault::scan::names_a_non_secret;

namespace {

std::string joined(std::string_view name)
{
    std::string out;
    for (const auto& word : name_words(name)) {
        out += out.empty() ? "" : " ";
        out += word;
    }
    return out;
}

}  // namespace

Test(scan_names, words_split_at_separators_digits_and_case_humps)
{
    cr_expect_eq(joined("db_password"), "db password");
    cr_expect_eq(joined("BetaAnalyticsTokenType"), "beta analytics token type");
    cr_expect_eq(joined("HTTPServerURL2"), "http server url");
    cr_expect_eq(joined("spring.datasource.password"), "spring datasource password");
    cr_expect_eq(joined("TOKEN_ENDPOINT"), "token endpoint");
    cr_expect_eq(joined("api-key-v2"), "api key v");
    cr_expect_eq(joined(""), "");
    cr_expect_eq(joined("__--..99"), "");
}

Test(scan_names, the_name_is_found_behind_quotes_blanks_and_the_operator)
{
    const auto at_value = [](std::string_view text) {
        return std::string(assigned_name(text, text.find('V')));
    };
    cr_expect_eq(at_value("db_password = \"V"), "db_password");
    cr_expect_eq(at_value("\"client_secret\": \"V"), "client_secret");
    cr_expect_eq(at_value("export GITEA_TOKEN=V"), "GITEA_TOKEN");
    cr_expect_eq(at_value("  token := 'V"), "token");
    cr_expect_eq(at_value(":api_key => 'V"), "api_key");
    cr_expect_eq(at_value("token ||= \"V"), "token");
    cr_expect_eq(at_value("V"), "");
    cr_expect_eq(at_value("(  V"), "");
    cr_expect_eq(std::string(assigned_name("abc", 99)), "abc");  // past the end: clamped
}

Test(scan_names, a_word_after_the_secret_word_that_names_something_else_is_not_a_secret)
{
    for (const char* name :
         {"TOKEN_ENDPOINT", "BetaAnalyticsTokenType", "password_file", "secret_path", "token_url", "api_key_header",
          "PASSWORD_MIN_LENGTH", "token_ttl", "secretName", "auth_token_env", "passwordless_mode", "tokenizer_path"}) {
        cr_expect(names_a_non_secret(name), "%s", name);
    }
    for (const char* name :
         {"db_password", "client_secret", "API_KEY", "secret_key_base", "token", "githubToken", "AWS_SECRET_ACCESS_KEY",
          "secret_id", "password_hash", "type_of_token", "name_token", "url_secret", "", "x"}) {
        cr_expect(!names_a_non_secret(name), "%s", name);
    }
}
