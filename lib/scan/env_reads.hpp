// Which environment variables a piece of source code reads, by name only: a hint for "this
// project expects OPENAI_API_KEY; the vault can provide it" without reading any value.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace codexvault::scan {

// Names read through a literal, in first-seen order, without duplicates:
//   Python   os.environ["X"], os.environ.get("X"), os.getenv("X"), environ["X"]
//   JS/TS    process.env.X, process.env["X"], import.meta.env.X, Deno.env.get("X")
//   C/C++    getenv("X"), std::getenv("X"), secure_getenv("X")
//   Rust     std::env::var("X"), env::var_os("X")
//   Ruby     ENV["X"], ENV.fetch("X")
//   Java     System.getenv("X");  Go  os.Getenv("X"), os.LookupEnv("X");  C#  GetEnvironmentVariable("X")
//   PHP      getenv('X'), $_ENV['X'], env('X') (Laravel; upper-case names only)
// Names are [A-Za-z_][A-Za-z0-9_]*, at most 128 bytes; dynamic reads (a variable, not a
// literal) are not reported.
std::vector<std::string> env_var_reads(std::string_view source);

// The same reads found by a scan's own first stage (Scanner, ScanOptions::env_reads): the
// markers ("getenv(", "process.env.", ...) as literals, and the name read at a marker that ends
// at `end` in `source` (empty when that occurrence reads no literal name).
std::size_t env_read_marker_count() noexcept;
std::string_view env_read_marker(std::size_t marker) noexcept;
std::string_view env_read_at(std::string_view source, std::size_t marker, std::size_t end);

}  // namespace codexvault::scan
