// The encoders behind the needles, on known vectors: which renderings each produces, and that a
// plain token gets no redundant ones.
#include <criterion/criterion.h>

#include <algorithm>
#include <string>
#include <vector>

#include "lib/redact/encodings.hpp"
#include "lib/redact/needle_set.hpp"

using namespace codexvault::redact;

namespace {

bool has(const std::vector<std::string>& renderings, const std::string& wanted)
{
    return std::find(renderings.begin(), renderings.end(), wanted) != renderings.end();
}

}  // namespace

Test(encodings, a_plain_token_has_one_json_and_one_url_rendering_equal_to_itself)
{
    const std::vector<std::string> expected{"sk-proj_AbC.123~xyz"};
    cr_assert(json_renderings(bytes_of("sk-proj_AbC.123~xyz")) == expected);
    cr_assert(url_renderings(bytes_of("sk-proj_AbC.123~xyz")).front() == expected.front());
}

Test(encodings, json_renderings_start_with_the_minimal_escaping)
{
    const auto renderings = json_renderings(bytes_of("a\"b\\c\n\t\x01\x1f/\xc3\xa9"));
    cr_assert(renderings.front() == "a\\\"b\\\\c\\n\\t\\u0001\\u001f/\xc3\xa9", "got %s", renderings.front().c_str());
}

Test(encodings, json_renderings_cover_the_styles_of_php_python_go_and_jackson)
{
    const auto renderings = json_renderings(bytes_of("k/\xc3\xa9<\x01\f\xf0\x9f\x94\x91"));
    cr_assert(has(renderings, "k/\xc3\xa9<\\u0001\\f\xf0\x9f\x94\x91"));            // minimal
    cr_assert(has(renderings, "k\\/\\u00e9<\\u0001\\f\\ud83d\\udd11"));             // PHP default
    cr_assert(has(renderings, "k/\\u00e9<\\u0001\\f\\ud83d\\udd11"));               // Python default
    cr_assert(has(renderings, "k/\xc3\xa9\\u003c\\u0001\\u000c\xf0\x9f\x94\x91"));  // Go
    cr_assert(has(renderings, "k/\\u00E9<\\u0001\\f\\uD83D\\uDD11"));               // upper-case hex
}

Test(encodings, invalid_utf8_gets_no_unicode_escape_rendering)
{
    const auto renderings = json_renderings(bytes_of("abc\xc3(defg\xff"));
    cr_assert(renderings.size() == 1);
    cr_assert(renderings.front() == "abc\xc3(defg\xff");
}

Test(encodings, url_renderings_cover_each_encoder_with_both_hex_cases_and_plus_for_space)
{
    const auto renderings = url_renderings(bytes_of("a b/~*\xc3\xa9"));
    cr_assert(has(renderings, "a%20b%2F~%2A%C3%A9"));  // RFC 3986
    cr_assert(has(renderings, "a%20b%2f~%2a%c3%a9"));
    cr_assert(has(renderings, "a+b%2F~%2A%C3%A9"));
    cr_assert(has(renderings, "a%20b/~%2A%C3%A9"));  // Python quote()
    cr_assert(has(renderings, "a%20b%2F~*%C3%A9"));  // encodeURIComponent
    cr_assert(has(renderings, "a+b%2F%7E*%C3%A9"));  // HTML form
    cr_assert(has(renderings, "a+b%2f%7e*%c3%a9"));
}

Test(encodings, a_base64_fragment_keeps_only_the_characters_fixed_by_the_value)
{
    // base64("foobar") = Zm9vYmFy; base64("\0foobar") = AGZvb2Jhcg==; base64("\0\0foobar") = AABmb29iYXI=
    cr_assert(base64_fragment(bytes_of("foobar"), 0, false) == "Zm9vYmFy");
    cr_assert(base64_fragment(bytes_of("foobar"), 1, false) == "Zvb2Jhc");
    cr_assert(base64_fragment(bytes_of("foobar"), 2, false) == "mb29iYX");
    cr_assert(base64_fragment(bytes_of("fooba"), 0, false) == "Zm9vYm");
    cr_assert(base64_fragment(bytes_of("\xfb\xff\xfe\xfb\xff\xfe"), 0, false) == "+//++//+");
    cr_assert(base64_fragment(bytes_of("\xfb\xff\xfe\xfb\xff\xfe"), 0, true) == "-__--__-");
}

Test(encodings, hex_comes_in_both_cases)
{
    cr_assert(hex(bytes_of("\x01\xab\xff"), false) == "01abff");
    cr_assert(hex(bytes_of("\x01\xab\xff"), true) == "01ABFF");
}
