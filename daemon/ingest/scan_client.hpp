// The daemon's side of the ingest helper, on the event loop: sends a scan request with the
// directory descriptor, reads the worker's result pipe through an sd-event io source (the loop
// never waits on a scan), and calls back once the pipe is at its end and the helper has said how
// the worker ended. The daemon's own seccomp filter allows all of this (sendmsg, recvmsg, read,
// fcntl, close); it creates no process, pipe or file itself.
#pragma once

#include <systemd/sd-event.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>

#include "daemon/ingest/protocol.hpp"
#include "lib/fileio/unique_fd.hpp"

namespace codexvault::ingest {

struct ScanOutcome {
    DecodedResult result;
    WorkerEnd end = WorkerEnd::Failed;
    std::int32_t status = 0;
    std::uint64_t peak_rss_kib = 0;
    std::uint64_t cpu_usec = 0;
    bool result_too_large = false;  // the daemon stopped reading at kMaxResultBytes
    std::string helper_failure;     // the helper went away before the worker ended
    UniqueFd overflow;              // an empty memfd (sealable) for findings too many for one reply
};

class ScanClient {
public:
    static constexpr std::size_t kMaxRunning = 2;                // one per core of the target VM
    static constexpr std::size_t kMaxResultBytes = 64ULL << 20;  // of one worker's stream

    using Done = std::function<void(ScanOutcome)>;

    ScanClient(sd_event* event, UniqueFd control);
    ~ScanClient();
    ScanClient(const ScanClient&) = delete;
    ScanClient& operator=(const ScanClient&) = delete;

    [[nodiscard]] bool available() const noexcept { return control_.valid() && !key_.empty(); }

    // The fingerprint key (vault sub-key 7), derived at start-up: the daemon's seccomp filter has
    // no memfd_secret, so no secure buffer can be made later. The caller keeps it alive.
    void set_fingerprint_key(std::span<const std::uint8_t> key) noexcept { key_ = key; }
    [[nodiscard]] std::size_t running() const noexcept { return scans_.size(); }

    // Sends the request (its id and key are filled in here, the key wiped after sending). Throws std::runtime_error
    // with a reason for the caller when the helper is gone or kMaxRunning scans run. `done` runs later, on the loop,
    // exactly once, never from inside start().
    void start(int dir_fd, ScanRequest& request, Done done);

private:
    struct Scan {
        Done done;
        UniqueFd pipe;
        sd_event_source* source = nullptr;
        std::string data;
        bool eof = false;
        bool too_large = false;
        std::optional<HelperMessage> finished;
        UniqueFd overflow;
    };

    static int on_control(sd_event_source* source, int fd, std::uint32_t revents, void* userdata) noexcept;
    static int on_pipe(sd_event_source* source, int fd, std::uint32_t revents, void* userdata) noexcept;
    void read_control();
    void read_pipe(std::uint64_t id);
    void close_pipe(Scan& scan);
    void maybe_finish(std::uint64_t id);
    void helper_gone(const std::string& why);

    sd_event* event_;
    UniqueFd control_;
    std::span<const std::uint8_t> key_;
    sd_event_source* control_source_ = nullptr;
    std::uint64_t next_id_ = 1;
    std::map<std::uint64_t, Scan> scans_;
    std::map<sd_event_source*, std::uint64_t> pipes_;
};

}  // namespace codexvault::ingest
