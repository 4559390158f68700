#include "daemon/egress/engine.hpp"

#include <algorithm>
#include <stdexcept>
#include <vector>

#include "daemon/egress/tls_read_ahead.hpp"
#include "daemon/egress/transfer.hpp"
#include "lib/log/log.hpp"

namespace codexvault::egress {

namespace {

// curl_global_init is not thread-safe; the daemon is single-threaded and creates engines on the
// loop's thread, so a flag is enough.
void global_init()
{
    static bool done = false;
    if (!done) {
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
            throw std::runtime_error("libcurl could not be initialised");
        }
        done = true;
    }
}

// Rounds of read_buffered() per turn of the loop: beyond it the rest waits for the next turn, so
// one fast stream does not keep the loop from its other sources.
constexpr int kMaxReadRounds = 64;

void check_multi(CURLMcode code, const char* what)
{
    if (code != CURLM_OK) {
        throw std::runtime_error(std::string("libcurl multi ") + what + ": " + curl_multi_strerror(code));
    }
}

}  // namespace

Engine::Engine(sd_event* event, EngineOptions options) : event_(event), options_(options)
{
    global_init();
    read_ahead_ = options_.read_ahead && tls::openssl_backend();
    multi_.reset(curl_multi_init());
    if (!multi_) {
        throw std::runtime_error("libcurl could not create a multi handle");
    }
    CURLM* multi = multi_.get();
    check_multi(curl_multi_setopt(multi, CURLMOPT_SOCKETFUNCTION, &Engine::on_socket), "SOCKETFUNCTION");
    check_multi(curl_multi_setopt(multi, CURLMOPT_SOCKETDATA, static_cast<void*>(this)), "SOCKETDATA");
    check_multi(curl_multi_setopt(multi, CURLMOPT_TIMERFUNCTION, &Engine::on_timer), "TIMERFUNCTION");
    check_multi(curl_multi_setopt(multi, CURLMOPT_TIMERDATA, static_cast<void*>(this)), "TIMERDATA");
    // Kept-alive connections: up to 128 per origin in use (a model stream holds its connection for
    // minutes, so a low bound would queue every stream behind the ones running), 64 cached in all.
    check_multi(curl_multi_setopt(multi, CURLMOPT_MAX_HOST_CONNECTIONS, 128L), "MAX_HOST_CONNECTIONS");
    check_multi(curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS, 64L), "MAXCONNECTS");

    sd_event_source* source = nullptr;
    // Accuracy 1 us: curl asks for "now" (0 ms) after every new transfer and state change, and
    // sd-event's default coalescing would add up to a millisecond to each request.
    if (sd_event_add_time(event_, &source, CLOCK_MONOTONIC, UINT64_MAX, 1, &Engine::on_timer_due, this) < 0) {
        throw std::runtime_error("cannot create the egress timer");
    }
    timer_.reset(source);
    (void)sd_event_source_set_enabled(source, SD_EVENT_OFF);
    if (sd_event_add_defer(event_, &source, &Engine::on_reap, this) < 0) {
        throw std::runtime_error("cannot create the egress reaper");
    }
    reaper_.reset(source);
    (void)sd_event_source_set_enabled(source, SD_EVENT_OFF);
    if (sd_event_add_defer(event_, &source, &Engine::on_kick, this) < 0) {
        throw std::runtime_error("cannot create the egress kick source");
    }
    kick_.reset(source);
    (void)sd_event_source_set_enabled(source, SD_EVENT_OFF);
}

Engine::~Engine()
{
    // Transfers first (they remove their handles from the multi), then the sockets curl watches.
    for (auto& [id, transfer] : transfers_) {
        curl_multi_remove_handle(multi_.get(), transfer->easy());
    }
    transfers_.clear();
    multi_.reset();
    sockets_.clear();
}

policy::Result<std::uint64_t> Engine::start(ExchangeRequest request, std::span<const std::uint8_t> secret,
                                            ExchangeCallbacks callbacks)
{
    const std::uint64_t id = next_id_++;
    auto transfer = std::make_unique<Transfer>(*this, id, std::move(callbacks), read_ahead_);
    auto prepared = transfer->prepare(request, secret);
    if (!prepared) {
        return prepared.error();
    }
    const CURLMcode added = curl_multi_add_handle(multi_.get(), transfer->easy());
    if (added != CURLM_OK) {
        return policy::make_error(std::string("libcurl could not start the transfer: ") + curl_multi_strerror(added));
    }
    transfers_.emplace(id, std::move(transfer));
    return id;
}

void Engine::cancel(std::uint64_t id, std::string reason)
{
    cancels_.emplace_back(id, std::move(reason));
    wake_reaper();
}

void Engine::cancel_all(const std::string& reason)
{
    for (const auto& [id, transfer] : transfers_) {
        cancels_.emplace_back(id, reason);
    }
    wake_reaper();
}

void Engine::cut_all_now(const std::string& reason)
{
    cancel_all(reason);
    reap();
}

void Engine::finished(std::uint64_t id)
{
    ended_.push_back(id);
    wake_reaper();
}

void Engine::flush_later(std::uint64_t id)
{
    unflushed_.push_back(id);
}

void Engine::flush_deferred()
{
    auto ids = std::move(unflushed_);
    unflushed_.clear();
    for (const std::uint64_t id : ids) {
        const auto found = transfers_.find(id);
        if (found != transfers_.end()) {
            found->second->flush_deferred();
        }
    }
}

void Engine::wake_reaper()
{
    (void)sd_event_source_set_enabled(reaper_.get(), SD_EVENT_ONESHOT);
}

int Engine::on_reap(sd_event_source* /*source*/, void* engine) noexcept
{
    try {
        static_cast<Engine*>(engine)->reap();
    } catch (...) {
        log::error("egress: internal error on the event loop");
    }
    return 0;
}

void Engine::reap()
{
    // Runs outside every curl callback, so handles may be removed here.
    auto cancels = std::move(cancels_);
    cancels_.clear();
    for (auto& [id, reason] : cancels) {
        const auto found = transfers_.find(id);
        if (found != transfers_.end()) {
            found->second->cut(End::Cancelled, std::move(reason));
        }
    }
    auto ended = std::move(ended_);
    ended_.clear();
    for (const std::uint64_t id : ended) {
        transfers_.erase(id);
    }
}

// ---- libcurl <-> sd-event -------------------------------------------------------------------------

int Engine::on_socket(CURL* easy, curl_socket_t socket, int what, void* engine, void* /*socket_data*/) noexcept
{
    void* self = nullptr;
    if (curl_easy_getinfo(easy, CURLINFO_PRIVATE, &self) == CURLE_OK && self != nullptr) {
        static_cast<Transfer*>(self)->set_socket(what == CURL_POLL_REMOVE ? CURL_SOCKET_BAD : socket);
    }
    try {
        return static_cast<Engine*>(engine)->watch_socket(socket, what);
    } catch (...) {
        return -1;
    }
}

int Engine::watch_socket(curl_socket_t socket, int what)
{
    if (what == CURL_POLL_REMOVE) {
        sockets_.erase(socket);
        return 0;
    }
    uint32_t events = 0;
    if (what == CURL_POLL_IN || what == CURL_POLL_INOUT) {
        events |= EPOLLIN;
    }
    if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT) {
        events |= EPOLLOUT;
    }
    const auto found = sockets_.find(socket);
    if (found != sockets_.end()) {
        return sd_event_source_set_io_events(found->second.get(), events) < 0 ? -1 : 0;
    }
    sd_event_source* source = nullptr;
    if (sd_event_add_io(event_, &source, socket, events, &Engine::on_socket_ready, this) < 0) {
        return -1;
    }
    sockets_.emplace(socket, bus::EventSourcePtr(source));
    return 0;
}

int Engine::on_timer(CURLM* /*multi*/, long timeout_ms, void* engine) noexcept
{
    static_cast<Engine*>(engine)->set_timer(timeout_ms);
    return 0;
}

void Engine::set_timer(long timeout_ms)
{
    // curl may not be re-entered from here; the timer source calls it on the next turn.
    if (timeout_ms < 0) {
        (void)sd_event_source_set_enabled(timer_.get(), SD_EVENT_OFF);
        return;
    }
    if (timeout_ms == 0) {
        // "Now" (after every new transfer and state change): a defer source runs on the next
        // turn without arming the timerfd.
        (void)sd_event_source_set_enabled(timer_.get(), SD_EVENT_OFF);
        (void)sd_event_source_set_enabled(kick_.get(), SD_EVENT_ONESHOT);
        return;
    }
    std::uint64_t now = 0;
    (void)sd_event_now(event_, CLOCK_MONOTONIC, &now);
    (void)sd_event_source_set_time(timer_.get(), now + static_cast<std::uint64_t>(timeout_ms) * 1000);
    (void)sd_event_source_set_enabled(timer_.get(), SD_EVENT_ONESHOT);
}

int Engine::on_socket_ready(sd_event_source* /*source*/, int fd, uint32_t events, void* engine) noexcept
{
    int flags = 0;
    if ((events & EPOLLIN) != 0) {
        flags |= CURL_CSELECT_IN;
    }
    if ((events & EPOLLOUT) != 0) {
        flags |= CURL_CSELECT_OUT;
    }
    if ((events & (EPOLLERR | EPOLLHUP)) != 0) {
        flags |= CURL_CSELECT_ERR;
    }
    try {
        static_cast<Engine*>(engine)->drive(fd, flags);
    } catch (...) {
        log::error("egress: internal error on the event loop");
    }
    return 0;
}

int Engine::on_timer_due(sd_event_source* /*source*/, uint64_t /*usec*/, void* engine) noexcept
{
    try {
        static_cast<Engine*>(engine)->drive(CURL_SOCKET_TIMEOUT, 0);
    } catch (...) {
        log::error("egress: internal error on the event loop");
    }
    return 0;
}

int Engine::on_kick(sd_event_source* /*source*/, void* engine) noexcept
{
    try {
        static_cast<Engine*>(engine)->drive(CURL_SOCKET_TIMEOUT, 0);
    } catch (...) {
        log::error("egress: internal error on the event loop");
    }
    return 0;
}

void Engine::drive(curl_socket_t socket, int flags)
{
    act(socket, flags);
    if (read_ahead_ && !read_buffered()) {
        (void)sd_event_source_set_enabled(kick_.get(), SD_EVENT_ONESHOT);
    }
    flush_deferred();
}

void Engine::act(curl_socket_t socket, int flags)
{
    int running = 0;
    const CURLMcode code = curl_multi_socket_action(multi_.get(), socket, flags, &running);
    if (code != CURLM_OK) {
        log::error(std::string("egress: curl_multi_socket_action: ") + curl_multi_strerror(code));
    }
    collect_done();
}

bool Engine::read_buffered()
{
    std::vector<curl_socket_t> ready;
    for (int round = 0; round < kMaxReadRounds; ++round) {
        ready.clear();
        for (const auto& [id, transfer] : transfers_) {
            if (const auto socket = transfer->buffered_socket()) {
                ready.push_back(*socket);
            }
        }
        if (ready.empty()) {
            return true;
        }
        const std::uint64_t before = tls::records_processed();
        std::sort(ready.begin(), ready.end());
        ready.erase(std::unique(ready.begin(), ready.end()), ready.end());
        for (const curl_socket_t socket : ready) {
            act(socket, CURL_CSELECT_IN);  // as if the socket were readable: curl reads its TLS
        }
        if (tls::records_processed() == before) {
            return true;  // partial records only: the socket wakes the loop for their rest
        }
    }
    return false;
}

void Engine::collect_done()
{
    int left = 0;
    while (CURLMsg* message = curl_multi_info_read(multi_.get(), &left)) {
        if (message->msg != CURLMSG_DONE) {
            continue;
        }
        void* self = nullptr;
        curl_easy_getinfo(message->easy_handle, CURLINFO_PRIVATE, &self);
        const CURLcode result = message->data.result;
        // The message is only valid until the handle is removed, which curl_done does.
        if (self != nullptr) {
            static_cast<Transfer*>(self)->curl_done(result);
        }
    }
}

}  // namespace codexvault::egress
