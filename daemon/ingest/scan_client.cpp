#include "daemon/ingest/scan_client.hpp"

#include <fcntl.h>
#include <sodium.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <system_error>
#include <vector>

#include "lib/fileio/descriptor_passing.hpp"
#include "lib/log/log.hpp"

namespace codexvault::ingest {

namespace {
// Records one stream may hold: findings (max_findings) plus notes, skips, env files, reads.
constexpr std::size_t kMaxRecords = 400000;
}  // namespace

ScanClient::ScanClient(sd_event* event, UniqueFd control) : event_(event), control_(std::move(control))
{
    const int r = sd_event_add_io(event_, &control_source_, control_.get(), EPOLLIN, &ScanClient::on_control, this);
    if (r < 0) {
        throw std::system_error(-r, std::generic_category(), "watch the ingest helper's socket");
    }
}

ScanClient::~ScanClient()
{
    for (auto& [id, scan] : scans_) {
        if (scan.source != nullptr) {
            sd_event_source_disable_unref(scan.source);
        }
    }
    if (control_source_ != nullptr) {
        sd_event_source_disable_unref(control_source_);
    }
}

void ScanClient::start(int dir_fd, ScanRequest& request, Done done)
{
    if (!control_) {
        throw std::runtime_error("the ingest helper is not running");
    }
    if (scans_.size() >= kMaxRunning) {
        throw std::runtime_error("too many scans in progress; try again when one has finished");
    }
    if (key_.size() != sizeof request.key) {
        throw std::runtime_error("the ingest fingerprint key is missing");
    }
    request.id = next_id_++;
    std::copy_n(key_.data(), sizeof request.key, request.key);
    struct Wipe {
        ScanRequest& r;
        ~Wipe() { sodium_memzero(r.key, sizeof r.key); }
    } wipe{request};
    const int fds[] = {dir_fd};
    const ssize_t n =
        fileio::send_with_descriptors(control_.get(), &request, sizeof request, fds, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n != static_cast<ssize_t>(sizeof request)) {
        throw std::runtime_error(std::string("the ingest helper did not take the request: ") +
                                 (n < 0 ? std::strerror(errno) : "short send"));
    }
    Scan scan;
    scan.done = std::move(done);
    scans_.emplace(request.id, std::move(scan));
}

int ScanClient::on_control(sd_event_source* /*source*/, int /*fd*/, std::uint32_t /*revents*/, void* userdata) noexcept
{
    auto* self = static_cast<ScanClient*>(userdata);
    try {
        self->read_control();
    } catch (const std::exception& e) {
        log::error(std::string("ingest helper: ") + e.what());
        self->helper_gone(e.what());
    }
    return 0;
}

void ScanClient::read_control()
{
    for (;;) {
        HelperMessage message{};
        auto received = fileio::receive_with_descriptors(control_.get(), &message, sizeof message, MSG_DONTWAIT);
        if (received.bytes < 0 && received.error == EAGAIN) {
            return;
        }
        if (received.bytes <= 0) {
            helper_gone(received.bytes == 0 ? "the ingest helper exited"
                                            : std::string("ingest helper socket: ") + std::strerror(received.error));
            return;
        }
        if (received.bytes != static_cast<ssize_t>(sizeof message) || received.truncated) {
            continue;
        }
        auto it = scans_.find(message.id);
        if (it == scans_.end()) {
            continue;
        }
        Scan& scan = it->second;
        if (message.kind == HelperMessage::Started && received.descriptors.size() == 2 && !scan.pipe) {
            scan.pipe = std::move(received.descriptors[0]);
            scan.overflow = std::move(received.descriptors[1]);
            const int flags = ::fcntl(scan.pipe.get(), F_GETFL);
            if (flags < 0 || ::fcntl(scan.pipe.get(), F_SETFL, flags | O_NONBLOCK) < 0) {
                scan.pipe.reset();
                scan.eof = true;
                continue;
            }
            const int r = sd_event_add_io(event_, &scan.source, scan.pipe.get(), EPOLLIN, &ScanClient::on_pipe, this);
            if (r < 0) {
                scan.pipe.reset();
                scan.eof = true;
                continue;
            }
            pipes_[scan.source] = message.id;
        } else if (message.kind == HelperMessage::Finished) {
            scan.finished = message;
            if (!scan.pipe) {
                scan.eof = true;  // never started
            }
            maybe_finish(message.id);
        }
    }
}

int ScanClient::on_pipe(sd_event_source* source, int /*fd*/, std::uint32_t /*revents*/, void* userdata) noexcept
{
    auto* self = static_cast<ScanClient*>(userdata);
    const auto it = self->pipes_.find(source);
    if (it == self->pipes_.end()) {
        return 0;
    }
    const std::uint64_t id = it->second;
    try {
        self->read_pipe(id);
    } catch (const std::exception& e) {
        log::error(std::string("ingest result: ") + e.what());
        auto scan = self->scans_.find(id);
        if (scan != self->scans_.end()) {
            scan->second.too_large = true;
            self->close_pipe(scan->second);
            self->maybe_finish(id);
        }
    }
    return 0;
}

void ScanClient::read_pipe(std::uint64_t id)
{
    auto it = scans_.find(id);
    if (it == scans_.end()) {
        return;
    }
    Scan& scan = it->second;
    char buffer[64 * 1024];
    for (int round = 0; round < 64; ++round) {  // a bounded share of the loop per wake-up
        const ssize_t n = ::read(scan.pipe.get(), buffer, sizeof buffer);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0 && errno == EAGAIN) {
            return;
        }
        if (n <= 0) {
            close_pipe(scan);
            maybe_finish(id);
            return;
        }
        if (scan.data.size() + static_cast<std::size_t>(n) > kMaxResultBytes) {
            // Closing the pipe ends the worker (EPIPE); what arrived so far is kept.
            scan.too_large = true;
            close_pipe(scan);
            maybe_finish(id);
            return;
        }
        scan.data.append(buffer, static_cast<std::size_t>(n));
    }
}

void ScanClient::close_pipe(Scan& scan)
{
    if (scan.source != nullptr) {
        pipes_.erase(scan.source);
        sd_event_source_disable_unref(scan.source);
        scan.source = nullptr;
    }
    scan.pipe.reset();
    scan.eof = true;
}

void ScanClient::maybe_finish(std::uint64_t id)
{
    auto it = scans_.find(id);
    if (it == scans_.end() || !it->second.eof || !it->second.finished) {
        return;
    }
    Scan scan = std::move(it->second);
    scans_.erase(it);
    ScanOutcome outcome;
    outcome.result = decode_stream(scan.data, kMaxRecords);
    outcome.end = scan.finished->end;
    outcome.status = scan.finished->status;
    outcome.peak_rss_kib = scan.finished->peak_rss_kib;
    outcome.cpu_usec = scan.finished->cpu_usec;
    outcome.result_too_large = scan.too_large;
    outcome.overflow = std::move(scan.overflow);
    scan.done(std::move(outcome));
}

void ScanClient::helper_gone(const std::string& why)
{
    if (control_source_ != nullptr) {
        sd_event_source_disable_unref(control_source_);
        control_source_ = nullptr;
    }
    control_.reset();
    auto scans = std::move(scans_);
    scans_.clear();
    for (auto& [id, scan] : scans) {
        close_pipe(scan);
        ScanOutcome outcome;
        outcome.result = decode_stream(scan.data, kMaxRecords);
        outcome.end = WorkerEnd::Failed;
        outcome.helper_failure = why;
        scan.done(std::move(outcome));
    }
}

}  // namespace codexvault::ingest
