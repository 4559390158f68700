#include "daemon/inject/injection_service.hpp"

#include <fcntl.h>
#include <linux/magic.h>
#include <poll.h>
#include <signal.h>
#include <sodium.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <system_error>

#include "common/vault_error.hpp"
#include "daemon/audit/audit_trail.hpp"
#include "daemon/identity/subject.hpp"
#include "daemon/monitor/monitor.hpp"
#include "lib/fileio/files.hpp"
#include "lib/log/log.hpp"

namespace codexvault::inject {
namespace {

// Expiry, revocation, lock and a recipient's exit are noticed within this; a kill by the monitor
// at once (observe() fires the timer now).
constexpr std::uint64_t kTickUsec = 250'000;

std::uint64_t realtime_usec() noexcept
{
    timespec ts{};
    ::clock_gettime(CLOCK_REALTIME, &ts);
    return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000U + static_cast<std::uint64_t>(ts.tv_nsec) / 1'000U;
}

std::uint64_t random_id() noexcept
{
    std::uint64_t id = 0;
    while (id == 0) {
        randombytes_buf(&id, sizeof id);
    }
    return id;
}

std::string hex16(std::uint64_t value)
{
    char text[17];
    std::snprintf(text, sizeof text, "%016llx", static_cast<unsigned long long>(value));
    return text;
}

// /proc/PID/stat field 22, 0 when unreadable.
std::uint64_t start_ticks_of(pid_t pid)
{
    const std::string path = "/proc/" + std::to_string(pid) + "/stat";
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return 0;
    }
    char buffer[1024];
    const ssize_t n = ::read(fd, buffer, sizeof buffer - 1);
    ::close(fd);
    if (n <= 0) {
        return 0;
    }
    const std::string_view text(buffer, static_cast<std::size_t>(n));
    // The command name may hold spaces and parentheses: fields are counted after the last ')'.
    const auto close_paren = text.rfind(')');
    if (close_paren == std::string_view::npos) {
        return 0;
    }
    std::size_t pos = close_paren + 2;  // field 3 starts here
    for (int field = 3; field < 22; ++field) {
        pos = text.find(' ', pos);
        if (pos == std::string_view::npos) {
            return 0;
        }
        ++pos;
    }
    return std::strtoull(buffer + pos, nullptr, 10);
}

std::uint64_t clock_usec(clockid_t clock) noexcept
{
    timespec ts{};
    ::clock_gettime(clock, &ts);
    return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000U + static_cast<std::uint64_t>(ts.tv_nsec) / 1'000U;
}

// A CLOCK_BOOTTIME moment (the kernel's records) as CLOCK_REALTIME µs (the audit log's); 0 stays
// 0 (unknown). Off by as much as the wall clock was stepped since.
std::uint64_t boottime_to_realtime_usec(std::uint64_t boottime_ns) noexcept
{
    if (boottime_ns == 0) {
        return 0;
    }
    const std::uint64_t now_real = clock_usec(CLOCK_REALTIME);
    const std::uint64_t now_boot = clock_usec(CLOCK_BOOTTIME);
    const std::uint64_t ago = now_boot > boottime_ns / 1'000U ? now_boot - boottime_ns / 1'000U : 0;
    return now_real > ago ? now_real - ago : 0;
}

std::uint64_t ticks_to_realtime_usec(std::uint64_t ticks) noexcept
{
    const long hz = ::sysconf(_SC_CLK_TCK);
    if (ticks == 0 || hz <= 0) {
        return 0;
    }
    return boottime_to_realtime_usec(ticks * (1'000'000'000U / static_cast<std::uint64_t>(hz)));
}

// The file the caller asked to hold a copy: checked before its inode is tracked, so that nobody
// can have the kernel watch (and, under on_touch = "kill", kill the readers of) a file other than
// a fresh one of their own that only the value will fill.
std::pair<std::uint64_t, std::uint64_t> check_file_copy(int fd, std::uint32_t uid)
{
    struct stat st {};
    struct statfs fs {};
    if (::fstat(fd, &st) != 0 || ::fstatfs(fd, &fs) != 0) {
        throw VaultError(ErrorCode::InvalidArgument, std::string("the file descriptor: ") + std::strerror(errno));
    }
    const int flags = ::fcntl(fd, F_GETFL);
    if (!S_ISREG(st.st_mode) || st.st_size != 0 || st.st_nlink != 1 || st.st_uid != uid || fs.f_type != TMPFS_MAGIC ||
        flags < 0 || (flags & O_ACCMODE) == O_RDONLY) {
        throw VaultError(ErrorCode::InvalidArgument,
                         "the file must be an empty regular file of the caller's own, on tmpfs, with one link, "
                         "open for writing");
    }
    return {static_cast<std::uint64_t>(st.st_dev), static_cast<std::uint64_t>(st.st_ino)};
}

void write_file_copy(int fd, std::span<const std::uint8_t> value)
{
    try {
        fileio::write_all(fd, value, "the file");
    } catch (const std::system_error& e) {
        throw VaultError(ErrorCode::InvalidArgument, std::string("writing the file: ") + e.code().message());
    }
    struct stat st {};
    if (::fstat(fd, &st) != 0 || static_cast<std::size_t>(st.st_size) != value.size()) {
        throw VaultError(ErrorCode::InvalidArgument,
                         "the file must be empty and at offset 0: it holds more than the value");
    }
}

bool exited(int pidfd) noexcept
{
    pollfd p{pidfd, POLLIN, 0};
    return ::poll(&p, 1, 0) != 0;  // readable (exited) or an error: either way, not alive
}

int pidfd_open(pid_t pid) noexcept
{
    return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
}

int pidfd_send_signal(int pidfd, int signo) noexcept
{
    return static_cast<int>(::syscall(SYS_pidfd_send_signal, pidfd, signo, nullptr, 0));
}

std::string task_text(const monitor::Task& t)
{
    return "pid " + std::to_string(t.tgid) + ", uid " + std::to_string(t.uid) + ", euid " + std::to_string(t.euid) +
           ", comm '" + t.comm + "'";
}

identity::Subject subject_of(const monitor::Task& t, monitor::Monitor* m)
{
    identity::Subject s;
    s.uid = t.euid;
    s.pid = static_cast<pid_t>(t.tgid);
    s.start_time_ticks = t.start_ticks();
    if (m != nullptr) {
        if (const auto known = m->exe_of(static_cast<pid_t>(t.tgid), s.start_time_ticks)) {
            s.exe = known->path;
        }
    }
    s.exe_known = t.has_exe && !s.exe.empty();
    s.exe_device = t.exe_dev;
    s.exe_inode = t.exe_ino;
    return s;
}

}  // namespace

InjectionService::InjectionService(sd_event* event, audit::AuditTrail& audit, monitor::Monitor* monitor, Hooks hooks)
    : event_(event), audit_(audit), monitor_(monitor), hooks_(std::move(hooks))
{
    sd_event_source* raw = nullptr;
    const int r =
        sd_event_add_time_relative(event_, &raw, CLOCK_MONOTONIC, kTickUsec, 10'000, &InjectionService::on_tick, this);
    if (r < 0) {
        throw std::system_error(-r, std::generic_category(), "arm the injection timer");
    }
    timer_.reset(raw);
    (void)sd_event_source_set_enabled(raw, SD_EVENT_OFF);
}

// The audit log may be closed by now: main() calls close_all() before it closes the log.
InjectionService::~InjectionService() = default;

std::optional<std::string> InjectionService::unavailable_reason() const
{
    if (disabled_) {
        return disabled_;
    }
    if (monitor_ == nullptr) {
        return std::string("the eBPF monitor is not recording, so nobody could record where the secret goes");
    }
    return std::nullopt;
}

void InjectionService::record(std::string_view action, std::string_view object, std::string_view reason,
                              std::string_view grant, const identity::Subject* subject, bool informational,
                              const audit::ProcessLink* process) noexcept
{
    audit_.run_fail_closed("recording an injection event", [&] {
        (void)audit_.record(audit::AuditRecord{.type = audit::EventType::Monitor,
                                               .action = action,
                                               .object = object,
                                               .subject = subject,
                                               .sender = "inject",
                                               .decision = audit::Decision::None,
                                               .reason = reason,
                                               .grant = grant,
                                               .informational = informational,
                                               .process = process});
    });
}

InjectionService::MarkGroup& InjectionService::group_for(const InjectRequest& request, bool kill_on_touch)
{
    const identity::Subject& who = *request.recipient;
    // One mark per recipient: the kernel keeps one id per process, so a second injection into the
    // same process joins its mark (its reads of either secret stay routine).
    for (auto& [id, group] : groups_) {
        if (group.recipient == who.pid && !exited(group.pidfd.get())) {
            const auto mark = monitor_->mark_of(who.pid);
            if (mark && mark->id == id) {
                if (kill_on_touch && !group.kill_on_touch) {
                    if (const auto ec = monitor_->mark_process(who.pid, id, monitor::OnTouch::kill)) {
                        throw std::system_error(ec, "re-mark the recipient");
                    }
                    group.kill_on_touch = true;
                }
                return group;
            }
        }
    }
    // Pin the recipient: a pidfd, then its start time must still be the caller's, then it must
    // still be alive, so the pid cannot have been reused in between.
    UniqueFd pidfd(pidfd_open(who.pid));
    if (!pidfd) {
        throw VaultError(ErrorCode::PermissionDenied, "the caller exited before its injection");
    }
    if (start_ticks_of(who.pid) != who.start_time_ticks || exited(pidfd.get())) {
        throw VaultError(ErrorCode::PermissionDenied, "the caller exited before its injection");
    }
    MarkGroup group;
    group.id = random_id();
    group.recipient = who.pid;
    group.pidfd = std::move(pidfd);
    group.members.push_back(who.pid);
    group.known[who.pid] = Member{who.start_time_ticks, who.exe_known ? who.exe : std::string()};
    group.kill_on_touch = kill_on_touch;
    if (const auto ec = monitor_->mark_process(who.pid, group.id,
                                               kill_on_touch ? monitor::OnTouch::kill : monitor::OnTouch::record)) {
        throw std::system_error(ec, "mark the recipient");
    }
    const std::uint64_t id = group.id;
    return groups_.emplace(id, std::move(group)).first->second;
}

Injected InjectionService::inject(const InjectRequest& request, std::span<const std::uint8_t> value)
{
    if (const auto why = unavailable_reason()) {
        throw VaultError(ErrorCode::Unavailable, "injection unavailable: " + *why);
    }
    // Each live injection holds a descriptor and a slot of the monitor's tracked-inode map.
    if (injections_.size() >= kMaxInjections) {
        throw VaultError(ErrorCode::Unavailable,
                         "too many live injections (" + std::to_string(kMaxInjections) + "); wait for some to end");
    }
    const bool kill = request.options.on_touch == policy::InjectOnTouch::Kill;
    Injection injection;
    injection.id = "inj-" + hex16(random_id());
    injection.secret = request.secret;
    injection.grant_id = request.grant_id;
    injection.options = request.options;
    injection.descriptor = make_secret_descriptor(value);
    const std::uint64_t now = realtime_usec();
    std::uint64_t expires = request.grant_expires_usec.value_or(0);
    if (request.ttl_usec) {
        const std::uint64_t by_ttl = now + *request.ttl_usec;
        expires = expires == 0 ? by_ttl : std::min(expires, by_ttl);
    }
    injection.expires_usec = expires;

    MarkGroup& group = group_for(request, kill);
    injection.mark_id = group.id;
    const auto& d = injection.descriptor;
    if (const auto ec =
            monitor_->track_inode(d.dev, d.ino, group.id, kill ? monitor::OnTouch::kill : monitor::OnTouch::record)) {
        if (by_mark(group.id).empty()) {
            release_group(group.id);
        }
        throw std::system_error(ec, "track the injected inode");
    }
    // The file copy: tracked before the value is in it, so no reader comes between.
    if (request.file_fd >= 0) {
        try {
            const auto file = check_file_copy(request.file_fd, request.recipient->uid);
            if (by_inode(file.first, file.second) != nullptr) {
                throw VaultError(ErrorCode::InvalidArgument, "the file already holds an injection");
            }
            if (const auto ec = monitor_->track_inode(file.first, file.second, group.id,
                                                      kill ? monitor::OnTouch::kill : monitor::OnTouch::record)) {
                throw std::system_error(ec, "track the file's inode");
            }
            injection.file = file;
            write_file_copy(request.file_fd, value);
        } catch (...) {
            if (injection.file) {
                (void)monitor_->untrack_inode(injection.file->first, injection.file->second);
            }
            (void)monitor_->untrack_inode(d.dev, d.ino);
            if (by_mark(group.id).empty()) {
                release_group(group.id);
            }
            throw;
        }
    }
    Injected out;
    out.fd.reset(::fcntl(d.fd.get(), F_DUPFD_CLOEXEC, 0));
    if (!out.fd) {
        const int error = errno;
        (void)monitor_->untrack_inode(d.dev, d.ino);
        if (injection.file) {
            (void)monitor_->untrack_inode(injection.file->first, injection.file->second);
        }
        if (by_mark(group.id).empty()) {
            release_group(group.id);
        }
        throw std::system_error(error, std::generic_category(), "duplicate the injection descriptor");
    }
    out.id = injection.id;
    out.kind = d.kind;
    out.expires_usec = expires;
    out.mark_id = group.id;
    const std::string reason = "secret " + request.secret + " to pid " + std::to_string(request.recipient->pid) +
                               " as " + std::string(to_string(d.kind)) + " (inode " + std::to_string(d.dev) + ":" +
                               std::to_string(d.ino) + "), mark " + hex16(group.id) + ", on_touch " +
                               std::string(policy::inject_on_touch_name(request.options.on_touch)) + ", on_expiry " +
                               std::string(policy::inject_on_expiry_name(request.options.on_expiry)) +
                               (expires != 0 ? ", expires " + std::to_string(expires) : std::string(", no expiry")) +
                               (injection.file ? ", file copy (inode " + std::to_string(injection.file->first) + ":" +
                                                     std::to_string(injection.file->second) + ")"
                                               : std::string());
    // The root of the injection's tree of processes: the recipient, with no parent recorded.
    const audit::ProcessLink root{.start_ticks = request.recipient->start_time_ticks,
                                  .start_usec = ticks_to_realtime_usec(request.recipient->start_time_ticks)};
    record("inject.open", injection.id, reason, request.grant_id, request.recipient, false, &root);
    injections_.emplace(injection.id, std::move(injection));
    arm();
    return out;
}

void InjectionService::arm()
{
    sd_event_source* t = timer_.get();
    if (injections_.empty() && terminating_.empty()) {
        (void)sd_event_source_set_enabled(t, SD_EVENT_OFF);
        return;
    }
    int enabled = SD_EVENT_OFF;
    (void)sd_event_source_get_enabled(t, &enabled);
    if (enabled == SD_EVENT_OFF) {
        (void)sd_event_source_set_time_relative(t, kTickUsec);
        (void)sd_event_source_set_enabled(t, SD_EVENT_ONESHOT);
    }
}

int InjectionService::on_tick(sd_event_source* /*source*/, std::uint64_t /*usec*/, void* userdata) noexcept
{
    auto* self = static_cast<InjectionService*>(userdata);
    (void)sd_event_source_set_enabled(self->timer_.get(), SD_EVENT_OFF);
    self->tick();
    self->arm();
    return 0;
}

InjectionService::Injection* InjectionService::by_inode(std::uint64_t dev, std::uint64_t ino) noexcept
{
    for (auto& [id, injection] : injections_) {
        if ((injection.descriptor.dev == dev && injection.descriptor.ino == ino) ||
            (injection.file && injection.file->first == dev && injection.file->second == ino)) {
            return &injection;
        }
    }
    return nullptr;
}

std::vector<InjectionService::Injection*> InjectionService::by_mark(std::uint64_t mark_id) noexcept
{
    std::vector<Injection*> out;
    for (auto& [id, injection] : injections_) {
        if (injection.mark_id == mark_id) {
            out.push_back(&injection);
        }
    }
    return out;
}

void InjectionService::observe(const monitor::Event& event) noexcept
{
    try {
        if (const auto* mark = std::get_if<monitor::MarkEvent>(&event)) {
            observe_mark(*mark);
            return;
        }
        if (const auto* exec = std::get_if<monitor::ExecEvent>(&event)) {
            observe_exec(*exec);
            return;
        }
        const auto* access = std::get_if<monitor::AccessEvent>(&event);
        if (access == nullptr) {
            return;
        }
        std::vector<Injection*> concerned;
        if (access->is_attempt()) {
            concerned = by_mark(access->id);
        } else if (Injection* injection = by_inode(access->dev, access->ino)) {
            concerned.push_back(injection);
        }
        const identity::Subject subject = subject_of(access->actor, monitor_);
        const std::string kind(monitor::to_string(access->kind));
        const audit::ProcessLink link{.start_ticks = access->actor.start_ticks(),
                                      .start_usec = boottime_to_realtime_usec(access->actor.start_boottime_ns),
                                      .parent_pid = static_cast<std::int32_t>(access->actor.ppid),
                                      .event_usec = boottime_to_realtime_usec(access->time_ns)};
        for (Injection* injection : concerned) {
            const std::string reason =
                std::string(access->alert ? "ALERT " : "") + kind + " by " + task_text(access->actor) +
                ", actor mark " + hex16(access->actor_mark) +
                (access->is_attempt() ? ", on pid " + std::to_string(access->target_tgid) : std::string()) +
                (access->killed ? ", killed" : "");
            // A marked process using its own secret is routine and may fold; anyone else is an alert.
            record(access->alert ? "inject.alert" : "inject.touch", injection->id, reason, injection->grant_id,
                   &subject, !access->alert, &link);
            if (access->alert && hooks_.alert) {
                hooks_.alert(injection->id, injection->grant_id, kind);
            }
            if (access->killed && injection->options.on_touch == policy::InjectOnTouch::Kill) {
                pending_.push_back(
                    Pending{injection->id, injection->grant_id, "killed " + task_text(access->actor) + " for " + kind});
            }
        }
        if (!pending_.empty()) {
            // Revoke and close outside the monitor's drain (which is running now).
            (void)sd_event_source_set_time(timer_.get(), 0);
            (void)sd_event_source_set_enabled(timer_.get(), SD_EVENT_ONESHOT);
        }
    } catch (const std::exception& e) {
        log::error(std::string("injection: a monitor record could not be handled: ") + e.what());
    }
}

void InjectionService::observe_mark(const monitor::MarkEvent& mark)
{
    const auto found = groups_.find(mark.mark_id);
    if (found == groups_.end()) {
        return;
    }
    MarkGroup& group = found->second;
    const auto tgid = static_cast<pid_t>(mark.task.tgid);
    const auto parent = static_cast<pid_t>(mark.parent_tgid);
    identity::Subject subject = subject_of(mark.task, monitor_);
    audit::ProcessLink link{.start_ticks = mark.task.start_ticks(),
                            .start_usec = boottime_to_realtime_usec(mark.task.start_boottime_ns),
                            .parent_pid = static_cast<std::int32_t>(parent),
                            .event_usec = boottime_to_realtime_usec(mark.time_ns)};
    const auto parent_known = group.known.find(parent);
    if (parent_known != group.known.end()) {
        link.parent_start_ticks = parent_known->second.start_ticks;
    }
    // The exe a record names is the one the process ran at that moment: a child runs its parent's
    // until it execs (recorded as inject.exec), whatever the exec cache says by the time the ring
    // is drained.
    std::string exe;
    if (mark.change == monitor::MarkEvent::Change::inherited) {
        if (std::find(group.members.begin(), group.members.end(), tgid) == group.members.end()) {
            group.members.push_back(tgid);
        }
        if (parent_known != group.known.end()) {
            exe = parent_known->second.exe;
        }
        group.known[tgid] = Member{link.start_ticks, exe};
    } else if (const auto self = group.known.find(tgid); self != group.known.end()) {
        exe = self->second.exe;
        if (mark.change == monitor::MarkEvent::Change::removed) {
            group.known.erase(self);
        }
    } else if (mark.change == monitor::MarkEvent::Change::overflow && parent_known != group.known.end()) {
        exe = parent_known->second.exe;
    }
    subject.exe = exe;
    subject.exe_known = !exe.empty();
    const std::string change(monitor::to_string(mark.change));
    for (Injection* injection : by_mark(mark.mark_id)) {
        record(mark.alert ? "inject.alert" : "inject.mark." + change, injection->id,
               std::string(mark.alert ? "ALERT " : "") + "mark " + change + ": " + task_text(mark.task) + ", parent " +
                   std::to_string(mark.parent_tgid),
               injection->grant_id, &subject, false, &link);
        if (mark.alert && hooks_.alert) {
            hooks_.alert(injection->id, injection->grant_id, "mark-" + change);
        }
    }
}

void InjectionService::observe_exec(const monitor::ExecEvent& exec)
{
    if (exec.existing || groups_.empty()) {
        return;
    }
    const auto tgid = static_cast<pid_t>(exec.task.tgid);
    const std::uint64_t start = exec.task.start_ticks();
    for (auto& [id, group] : groups_) {
        const auto member = group.known.find(tgid);
        if (member == group.known.end() || member->second.start_ticks != start) {
            continue;
        }
        // The exec cache has this exec by now (Monitor::drain feeds it first), and believes its
        // path only while it still names the inode the kernel saw.
        identity::Subject subject = subject_of(exec.task, monitor_);
        member->second.exe = subject.exe_known ? subject.exe : std::string();
        audit::ProcessLink link{.start_ticks = start,
                                .start_usec = boottime_to_realtime_usec(exec.task.start_boottime_ns),
                                .parent_pid = static_cast<std::int32_t>(exec.task.ppid),
                                .event_usec = boottime_to_realtime_usec(exec.time_ns)};
        if (const auto parent = group.known.find(static_cast<pid_t>(exec.task.ppid)); parent != group.known.end()) {
            link.parent_start_ticks = parent->second.start_ticks;
        }
        const std::string reason =
            "exec " + (subject.exe_known ? subject.exe : std::string("(exe unknown)")) + ": " + task_text(exec.task);
        for (Injection* injection : by_mark(id)) {
            record("inject.exec", injection->id, reason, injection->grant_id, &subject, false, &link);
        }
        return;
    }
}

void InjectionService::tick() noexcept
{
    const std::uint64_t now = realtime_usec();
    // Kills the monitor made under on_touch = "kill": the grant goes, and with it the injection.
    std::vector<Pending> pending = std::move(pending_);
    pending_.clear();
    for (const auto& p : pending) {
        if (hooks_.revoke_grant) {
            hooks_.revoke_grant(p.grant_id, "injection " + p.injection_id + ": " + p.reason);
        }
        close(p.injection_id, "grant revoked: " + p.reason, false);
    }
    std::vector<std::pair<std::string, std::pair<std::string, bool>>> ending;
    for (auto& [id, injection] : injections_) {
        const bool terminate = injection.options.on_expiry == policy::InjectOnExpiry::Terminate;
        if (injection.expires_usec != 0 && now >= injection.expires_usec) {
            ending.push_back({id, {"expired", terminate}});
        } else if (auto why = hooks_.why_end ? hooks_.why_end(injection.grant_id) : std::nullopt) {
            ending.push_back({id, {*why, terminate}});
        } else if (const auto group = groups_.find(injection.mark_id);
                   group == groups_.end() || exited(group->second.pidfd.get())) {
            ending.push_back({id, {"the recipient exited", false}});
        }
    }
    // Records still in the ring (a fork or exec a moment before the recipient exited) belong to
    // the injection: read them while its mark is still known.
    if (!ending.empty() && hooks_.drain_monitor) {
        hooks_.drain_monitor();
    }
    for (const auto& [id, why] : ending) {
        close(id, why.first, why.second);
    }
    const std::uint64_t mono = [] {
        timespec ts{};
        ::clock_gettime(CLOCK_MONOTONIC, &ts);
        return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000U + static_cast<std::uint64_t>(ts.tv_nsec) / 1'000U;
    }();
    for (auto it = terminating_.begin(); it != terminating_.end();) {
        if (mono >= it->sigkill_at_usec) {
            if (hooks_.drain_monitor) {
                hooks_.drain_monitor();
            }
            signal_group(*it, SIGKILL);
            for (const pid_t member : it->members) {
                const auto mark = monitor_->mark_of(member);
                if (mark && mark->id == it->id) {
                    (void)monitor_->unmark(member);
                }
            }
            it = terminating_.erase(it);
        } else {
            ++it;
        }
    }
}

void InjectionService::signal_group(MarkGroup& group, int signo) noexcept
{
    std::string signalled;
    for (const pid_t member : group.members) {
        // Only a process the kernel still has under this mark: a pid reused since is not it.
        auto mark = monitor_->mark_of(member);
        if (!mark || mark->id != group.id) {
            continue;
        }
        const UniqueFd pidfd(pidfd_open(member));
        if (!pidfd) {
            continue;
        }
        mark = monitor_->mark_of(member);  // pinned now: still the marked process?
        if (!mark || mark->id != group.id) {
            continue;
        }
        if (pidfd_send_signal(pidfd.get(), signo) == 0) {
            signalled += (signalled.empty() ? "" : " ") + std::to_string(member);
        } else {
            log::warning("injection: " + std::string(signo == SIGKILL ? "SIGKILL" : "SIGTERM") + " to pid " +
                         std::to_string(member) + " failed: " + std::strerror(errno));
        }
    }
    record(signo == SIGKILL ? "inject.kill" : "inject.terminate", "mark " + hex16(group.id),
           std::string(signo == SIGKILL ? "SIGKILL" : "SIGTERM") +
               " to the marked processes: " + (signalled.empty() ? std::string("none left") : signalled),
           {}, nullptr, false);
}

void InjectionService::release_group(std::uint64_t mark_id) noexcept
{
    const auto group = groups_.find(mark_id);
    if (group == groups_.end()) {
        return;
    }
    for (const pid_t member : group->second.members) {
        const auto mark = monitor_->mark_of(member);
        if (mark && mark->id == mark_id) {
            (void)monitor_->unmark(member);
        }
    }
    groups_.erase(group);
}

void InjectionService::close(const std::string& id, const std::string& reason, bool terminate) noexcept
{
    const auto it = injections_.find(id);
    if (it == injections_.end()) {
        return;
    }
    Injection& injection = it->second;
    (void)monitor_->untrack_inode(injection.descriptor.dev, injection.descriptor.ino);
    if (injection.file) {
        (void)monitor_->untrack_inode(injection.file->first, injection.file->second);
    }
    record("inject.close", injection.id,
           "secret " + injection.secret + ": " + reason + (terminate ? "; terminating the marked processes" : ""),
           injection.grant_id, nullptr, false);
    const std::uint64_t mark_id = injection.mark_id;
    const std::string grant = injection.grant_id;
    injections_.erase(it);
    if (!by_mark(mark_id).empty()) {
        return;
    }
    const auto group = groups_.find(mark_id);
    if (group == groups_.end()) {
        return;
    }
    if (terminate) {
        if (hooks_.drain_monitor) {
            hooks_.drain_monitor();  // the marks inherited a moment ago
        }
        signal_group(group->second, SIGTERM);
        timespec ts{};
        ::clock_gettime(CLOCK_MONOTONIC, &ts);
        group->second.sigkill_at_usec = static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000U +
                                        static_cast<std::uint64_t>(ts.tv_nsec) / 1'000U + kTerminateGraceUsec;
        terminating_.push_back(std::move(group->second));
        groups_.erase(group);
    } else {
        release_group(mark_id);
    }
    (void)audit_.request_flush();
}

void InjectionService::close_all(const std::string& reason) noexcept
{
    std::vector<std::string> ids;
    for (const auto& [id, injection] : injections_) {
        ids.push_back(id);
    }
    for (const auto& id : ids) {
        close(id, reason, false);
    }
}

}  // namespace codexvault::inject
