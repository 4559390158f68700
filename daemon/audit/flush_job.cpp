#include "daemon/audit/flush_job.hpp"

#include <unistd.h>

#include <cerrno>
#include <exception>
#include <span>
#include <system_error>

#include "lib/auditcore/segment_dir.hpp"
#include "lib/fileio/files.hpp"

namespace codexvault::audit {

FlushResult run_flush_job(const FlushJob& job) noexcept
{
    FlushResult result;
    result.mark = job.mark;
    try {
        if (::fdatasync(job.segment_fd) != 0) {
            const int error = errno;
            // After a failed fdatasync the kernel may have dropped the dirty pages: nothing written
            // since the last successful flush can be trusted to be on disk.
            result.failure = "audit log fdatasync failed: " + std::generic_category().message(error) + " (segment " +
                             job.segment_name + ")";
            return result;
        }
        if (job.head) {
            // Only now: a head ahead of the log would make a crash look like a removed tail.
            try {
                fileio::write_file_atomically(job.dir_fd, kHeadFileName, std::span<const std::uint8_t>(*job.head),
                                              0600);
            } catch (const std::exception& e) {
                result.failure = std::string("audit log: cannot update the head file: ") + e.what();
                return result;
            }
        }
        result.durable = true;
        if (job.state) {
            try {
                fileio::write_file_atomically(
                    job.state->dir_fd, job.state->name,
                    std::span(reinterpret_cast<const std::uint8_t*>(job.state->bytes.data()), job.state->bytes.size()),
                    0600);
                result.state = StateWriteOutcome::Written;
            } catch (const std::exception& e) {
                result.state = StateWriteOutcome::Failed;
                result.state_failure = e.what();
            }
        }
    } catch (...) {
        // Only the failure text could not be built (out of memory): `durable` is still false.
    }
    return result;
}

}  // namespace codexvault::audit
