#include "daemon/audit/segment_flusher.hpp"

#include <pthread.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <system_error>
#include <utility>

namespace codexvault::audit {

SegmentFlusher::SegmentFlusher() : event_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK))
{
    if (!event_) {
        throw std::system_error(errno, std::generic_category(), "audit flusher: eventfd");
    }
}

SegmentFlusher::~SegmentFlusher()
{
    stop();
}

void SegmentFlusher::start()
{
    if (running()) {
        return;
    }
    {
        const std::lock_guard lock(mutex_);
        stopping_ = false;
        idle_ = false;
    }
    thread_ = std::thread([this] { run(); });
    // Visible in /proc/PID/task/TID/comm (and so in ps, top and the hardening test). Best effort.
    (void)::pthread_setname_np(thread_.native_handle(), "audit-flush");
    std::unique_lock lock(mutex_);
    done_.wait(lock, [this] { return idle_; });
}

void SegmentFlusher::stop() noexcept
{
    if (!running()) {
        return;
    }
    {
        const std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    work_.notify_one();
    thread_.join();
}

void SegmentFlusher::submit(FlushJob job)
{
    busy_ = true;
    if (!running()) {
        FlushResult result = run_flush_job(job);
        {
            const std::lock_guard lock(mutex_);
            result_ = std::move(result);
        }
        signal_done();
        return;
    }
    {
        const std::lock_guard lock(mutex_);
        job_ = std::move(job);
    }
    work_.notify_one();
}

std::optional<FlushResult> SegmentFlusher::take_result()
{
    const std::lock_guard lock(mutex_);
    if (!result_) {
        return std::nullopt;
    }
    busy_ = false;
    return std::exchange(result_, std::nullopt);
}

FlushResult SegmentFlusher::wait()
{
    std::unique_lock lock(mutex_);
    done_.wait(lock, [this] { return result_.has_value(); });
    busy_ = false;
    FlushResult result = std::move(*result_);
    result_.reset();
    return result;
}

void SegmentFlusher::read_event() noexcept
{
    std::uint64_t count = 0;
    // EAGAIN: already drained (wait() took the result and an earlier read consumed the count).
    (void)!::read(event_.get(), &count, sizeof count);
}

void SegmentFlusher::signal_done() noexcept
{
    const std::uint64_t one = 1;
    // Cannot fail short of a counter overflow (2^64 - 2 unread completions); wait() does not
    // depend on it.
    (void)!::write(event_.get(), &one, sizeof one);
}

// The thread. Only futex (the mutex and condition variables), the job's calls and the eventfd
// write happen here once start() has returned.
void SegmentFlusher::run() noexcept
{
    std::unique_lock lock(mutex_);
    idle_ = true;
    done_.notify_all();
    for (;;) {
        work_.wait(lock, [this] { return job_.has_value() || stopping_; });
        if (!job_) {
            return;  // stopping, nothing left to flush
        }
        const FlushJob job = std::move(*job_);
        job_.reset();
        lock.unlock();
        FlushResult result = run_flush_job(job);
        lock.lock();
        result_ = std::move(result);
        done_.notify_all();
        // The loop wakes on the eventfd and takes the result under the mutex: signalled with the
        // mutex held, it woke only to block on it (two more futex calls and a switch per flush).
        lock.unlock();
        signal_done();
        lock.lock();
    }
}

}  // namespace codexvault::audit
