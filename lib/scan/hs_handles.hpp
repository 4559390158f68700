// Owning handles for Vectorscan objects. A database is immutable and may be shared by any
// number of threads; a scratch belongs to one thread at a time (Vectorscan keeps per-scan
// state in it), so every Scanner allocates its own.
#pragma once

#include <hs/hs.h>

#include <memory>

namespace codexvault::scan {

struct HsDatabaseDeleter {
    void operator()(hs_database_t* database) const noexcept { hs_free_database(database); }
};
using HsDatabase = std::unique_ptr<hs_database_t, HsDatabaseDeleter>;

struct HsScratchDeleter {
    void operator()(hs_scratch_t* scratch) const noexcept { hs_free_scratch(scratch); }
};
using HsScratch = std::unique_ptr<hs_scratch_t, HsScratchDeleter>;

}  // namespace codexvault::scan
