// The audit log's flusher thread (docs/audit-log.md, "The flusher"): the only work of the daemon
// that runs off the event loop. It owns nothing but running one FlushJob at a time (fdatasync of
// the current segment, then the head file when a checkpoint rides along) and tells the loop that
// the job is done through an eventfd, which the loop watches with sd_event_add_io. Everything
// else (encoding, write(2), deciding who waits for which mark, replies) stays on the loop.
//
// Hardening: the thread is started by harden::apply_runtime_hardening() after every capability
// was dropped and no_new_privs set (both per thread and inherited), and before the seccomp filter,
// which is installed with TSYNC and so covers it too. start() returns only once the thread waits
// for work, so the thread makes none of glibc's thread set-up calls (rseq, set_robust_list, ...)
// under the filter; after that it makes only futex, fdatasync, write (the eventfd) and, for a
// head file, the state-write calls the loop already makes.
//
// Before start() (start-up, unit tests) a submitted job runs inline, and its result is delivered
// the same way (take_result(), the eventfd), so the log behaves the same with or without the
// thread.
#pragma once

#include <condition_variable>
#include <mutex>
#include <optional>
#include <thread>

#include "daemon/audit/flush_job.hpp"
#include "lib/fileio/unique_fd.hpp"

namespace codexvault::audit {

class SegmentFlusher {
public:
    // Creates the eventfd (non-blocking, close-on-exec); throws std::system_error.
    SegmentFlusher();
    SegmentFlusher(const SegmentFlusher&) = delete;
    SegmentFlusher& operator=(const SegmentFlusher&) = delete;
    ~SegmentFlusher();  // stop()

    // Starts the thread and waits until it is idle. Throws std::system_error.
    void start();
    // Lets the job in flight finish, then ends and joins the thread. Later jobs run inline.
    void stop() noexcept;
    [[nodiscard]] bool running() const noexcept { return thread_.joinable(); }

    // A job was submitted and its result not yet taken. Owned by the loop's thread.
    [[nodiscard]] bool busy() const noexcept { return busy_; }
    // Hands `job` to the thread (or runs it now, before start()). Precondition: !busy().
    void submit(FlushJob job);
    // The result of the submitted job if it is done, else nullopt. Clears busy().
    [[nodiscard]] std::optional<FlushResult> take_result();
    // Blocks until the submitted job is done and returns its result. Precondition: busy().
    [[nodiscard]] FlushResult wait();

    // Readable when a result is ready; read_event() drains it.
    [[nodiscard]] int event_fd() const noexcept { return event_.get(); }
    void read_event() noexcept;

private:
    void run() noexcept;
    void signal_done() noexcept;

    UniqueFd event_;
    bool busy_ = false;  // loop thread only

    std::mutex mutex_;              // guards everything below
    std::condition_variable work_;  // to the thread: a job, or stop
    std::condition_variable done_;  // to the loop: a result, or the thread is idle
    std::optional<FlushJob> job_;
    std::optional<FlushResult> result_;
    bool idle_ = false;
    bool stopping_ = false;
    std::thread thread_;
};

}  // namespace codexvault::audit
