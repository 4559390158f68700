#include "policy/diagnostic.hpp"

#include "policy/text.hpp"

namespace codexvault::policy {

std::string SourceLocation::to_string() const
{
    // Document names come from the caller (file names); anything unprintable is escaped.
    std::string name = quote(file, 512);
    name = name.substr(1, name.size() - 2);
    return name + ":" + std::to_string(line) + ":" + std::to_string(column);
}

std::string Diagnostic::to_string() const
{
    return where.to_string() + ": " + message;
}

}  // namespace codexvault::policy
