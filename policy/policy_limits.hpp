// Bounds on policy input. Everything the parser accepts fits within these, so a hostile or
// broken policy file costs bounded memory and time and cannot crash the parser.
#pragma once

#include <cstddef>
#include <cstdint>

namespace codexvault::policy::limits {

inline constexpr std::size_t kMaxDocumentBytes = 1024 * 1024;  // one policy file
inline constexpr std::size_t kMaxDocuments = 1024;             // files in one policy set
inline constexpr std::size_t kMaxEntriesPerDocument = 10'000;  // principals + providers + grants
inline constexpr std::size_t kMaxEntriesTotal = 100'000;       // the same, over the whole set
inline constexpr std::size_t kMaxErrors = 100;                 // diagnostics kept per load
inline constexpr std::size_t kMaxDocumentNameBytes = 4096;

// Pre-scan bounds (see document_shape.hpp): toml++ recurses once per key segment, so a key
// such as a.a.a.(...300,000 times) would exhaust the stack; no valid policy line needs more.
inline constexpr std::size_t kMaxDotsPerLine = 32;
inline constexpr std::size_t kMaxBracketDepth = 32;
inline constexpr std::size_t kMaxAssignmentsPerDocument = 200'000;

inline constexpr std::size_t kMaxNameLength = 64;  // principal, provider, grant, secret names
inline constexpr std::size_t kMaxPathLength = 4096;
inline constexpr std::size_t kMaxUnitLength = 256;
inline constexpr std::size_t kMaxDescriptionLength = 1024;
inline constexpr std::size_t kMaxRequestPatterns = 256;  // per provider and per grant
inline constexpr std::size_t kMaxRequestPathLength = 2048;
inline constexpr std::size_t kMaxHostLength = 253;
inline constexpr std::size_t kMaxHeaderNameLength = 64;
inline constexpr std::size_t kMaxTemplateLength = 256;
inline constexpr std::size_t kMaxBodyDigestLength = 128;
inline constexpr std::size_t kMaxInjectTargetLength = 4096;
inline constexpr std::size_t kMaxPrincipalSpecLength = 8192;

inline constexpr std::uint64_t kMaxUses = 1'000'000'000;
inline constexpr std::uint32_t kMaxRateCount = 1'000'000;

// Runtime state bounds.
inline constexpr std::size_t kMaxRuntimeGrants = 250'000;
inline constexpr std::size_t kMaxOnceInstancesPerGrant = 256;
inline constexpr std::size_t kMaxStateBytes = 256 * 1024 * 1024;  // persisted JSON

}  // namespace codexvault::policy::limits
