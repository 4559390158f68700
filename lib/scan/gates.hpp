// Gates: cheap hand-written checks of what follows a keyword, named from the rules file
// (`gate = "assignment"`), run at each first-stage keyword report before the second stage.
// A gate is a necessary condition of the rule's pattern, never a judgement of the secret: it
// may let through places the pattern then rejects, never stop one the pattern would match
// (every rule's examples run through it in `make check`). Its only job is to spare a PCRE2
// search where a keyword is common in code ("token", "secret", "https://") and almost never
// followed by what the pattern needs: a keyword report costs a few nanoseconds, a search a
// hundred or more.
#pragma once

#include <cstddef>
#include <span>
#include <string_view>

namespace codexvault::scan {

// input: the whole buffer; keyword_end: the offset just past the keyword. Reads at most a
// few hundred bytes from there.
using Gate = bool (*)(std::string_view input, std::size_t keyword_end);

// nullptr when no gate has that name.
Gate find_gate(std::string_view name) noexcept;
std::span<const std::string_view> gate_names() noexcept;

}  // namespace codexvault::scan
