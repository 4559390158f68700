// A cheap lexical pass over a policy document before toml++ sees it. toml++ rejects malformed
// TOML cleanly, but it recurses once per dotted-key segment and builds every value before we
// can look at it; this pass bounds what it is given: size, UTF-8, key depth, nesting and the
// number of assignments. A valid policy document never comes near these bounds.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace codexvault::policy {

struct ShapeError {
    std::uint32_t line = 1;
    std::uint32_t column = 1;
    std::string message;
};

std::optional<ShapeError> check_document_shape(std::string_view content);

}  // namespace codexvault::policy
