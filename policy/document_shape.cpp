#include "policy/document_shape.hpp"

#include "policy/policy_limits.hpp"
#include "policy/text.hpp"

namespace codexvault::policy {

namespace {

enum class Lex { Normal, Comment, Basic, Literal, MultiBasic, MultiLiteral };

struct Position {
    std::uint32_t line = 1;
    std::uint32_t column = 1;
};

// Line and column (in code points, as toml++ counts them) of a byte offset.
Position position_of(std::string_view content, std::size_t offset) noexcept
{
    Position at;
    for (std::size_t i = 0; i < offset && i < content.size(); ++i) {
        const auto byte = static_cast<unsigned char>(content[i]);
        if (byte == '\n') {
            ++at.line;
            at.column = 1;
        } else if ((byte & 0xC0) != 0x80) {
            ++at.column;
        }
    }
    return at;
}

ShapeError error_at(std::string_view content, std::size_t offset, std::string message)
{
    const Position at = position_of(content, offset);
    return ShapeError{at.line, at.column, std::move(message)};
}

bool starts(std::string_view content, std::size_t i, std::string_view what) noexcept
{
    return content.substr(i, what.size()) == what;
}

}  // namespace

std::optional<ShapeError> check_document_shape(std::string_view content)
{
    if (content.size() > limits::kMaxDocumentBytes) {
        return ShapeError{1, 1,
                          "document is " + std::to_string(content.size()) + " bytes; a policy file may be at most " +
                              std::to_string(limits::kMaxDocumentBytes) + " bytes (1 MiB)"};
    }
    if (const auto bad = find_invalid_utf8(content)) {
        return error_at(content, *bad, "document is not valid UTF-8");
    }
    Lex state = Lex::Normal;
    std::size_t dots_on_line = 0;
    std::size_t depth = 0;
    std::size_t assignments = 0;
    for (std::size_t i = 0; i < content.size(); ++i) {
        const char c = content[i];
        if (c == '\0') {
            return error_at(content, i, "document contains a NUL byte");
        }
        if (c == '\n') {
            dots_on_line = 0;
            if (state == Lex::Comment || state == Lex::Basic || state == Lex::Literal) {
                state = Lex::Normal;  // single-line strings cannot span lines; toml++ reports it
            }
            continue;
        }
        switch (state) {
        case Lex::Comment:
            break;
        case Lex::Basic:
            if (c == '\\') {
                ++i;
            } else if (c == '"') {
                state = Lex::Normal;
            }
            break;
        case Lex::Literal:
            if (c == '\'') {
                state = Lex::Normal;
            }
            break;
        case Lex::MultiBasic:
            if (c == '\\') {
                ++i;
            } else if (starts(content, i, "\"\"\"")) {
                state = Lex::Normal;
                i += 2;
            }
            break;
        case Lex::MultiLiteral:
            if (starts(content, i, "'''")) {
                state = Lex::Normal;
                i += 2;
            }
            break;
        case Lex::Normal:
            switch (c) {
            case '#':
                state = Lex::Comment;
                break;
            case '"':
                if (starts(content, i, "\"\"\"")) {
                    state = Lex::MultiBasic;
                    i += 2;
                } else {
                    state = Lex::Basic;
                }
                break;
            case '\'':
                if (starts(content, i, "'''")) {
                    state = Lex::MultiLiteral;
                    i += 2;
                } else {
                    state = Lex::Literal;
                }
                break;
            case '.':
                if (++dots_on_line > limits::kMaxDotsPerLine) {
                    return error_at(content, i,
                                    "line has more than " + std::to_string(limits::kMaxDotsPerLine) +
                                        " dotted-key separators; policy keys are never that deep");
                }
                break;
            case '[':
            case '{':
                if (++depth > limits::kMaxBracketDepth) {
                    return error_at(
                        content, i,
                        "arrays and tables nested more than " + std::to_string(limits::kMaxBracketDepth) + " deep");
                }
                break;
            case ']':
            case '}':
                if (depth > 0) {
                    --depth;
                }
                break;
            case '=':
                if (++assignments > limits::kMaxAssignmentsPerDocument) {
                    return error_at(content, i,
                                    "more than " + std::to_string(limits::kMaxAssignmentsPerDocument) +
                                        " key/value pairs in one document");
                }
                break;
            default:
                break;
            }
            break;
        }
    }
    return std::nullopt;
}

}  // namespace codexvault::policy
