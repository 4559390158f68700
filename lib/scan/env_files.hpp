// Env files (.env and friends): recognising them by name and listing the variables they set.
// Only names ever leave this module; values are skipped, never copied.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace codexvault::scan {

enum class EnvFileKind : std::uint8_t {
    NotEnv,
    Env,       // .env, .env.local, .env.production, prod.env, .envrc, .flaskenv, .dev.vars, ...
    Template,  // .env.example, .env.sample, .env.template, .env.dist, example.env, ... (usually placeholders)
};

// By base name, ASCII caseless: ".env"; ".env.<anything>" and ".env-<anything>"; "<name>.env";
// ".envrc" (direnv); ".flaskenv"; ".dev.vars" (Wrangler). Template when the part after ".env"
// (or before it, for "<name>.env") is example, sample, template, tmpl, tpl, dist or defaults.
EnvFileKind env_file_kind(std::string_view file_name) noexcept;

// Names assigned in env-file syntax ("NAME=value", "export NAME=value"), in first-seen order,
// without duplicates. Quoted values may span lines and are skipped whole; a quote that never
// closes ends the parse (the rest could be value lines that merely look like assignments).
// Names are [A-Za-z_][A-Za-z0-9_.]*, at most 256 bytes.
std::vector<std::string> env_file_variable_names(std::string_view content);

}  // namespace codexvault::scan
