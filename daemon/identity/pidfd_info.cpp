#include "daemon/identity/pidfd_info.hpp"

#include <sys/ioctl.h>

namespace codexvault::identity {
namespace {

// include/uapi/linux/pidfd.h, the first version (PIDFD_INFO_SIZE_VER0, 64 bytes): Debian 12's
// headers predate it. The kernel accepts this size from every version on and fills what it knows.
struct PidfdInfo {
    std::uint64_t mask = 0;
    std::uint64_t cgroupid = 0;
    std::uint32_t pid = 0;
    std::uint32_t tgid = 0;
    std::uint32_t ppid = 0;
    std::uint32_t ruid = 0;
    std::uint32_t rgid = 0;
    std::uint32_t euid = 0;
    std::uint32_t egid = 0;
    std::uint32_t suid = 0;
    std::uint32_t sgid = 0;
    std::uint32_t fsuid = 0;
    std::uint32_t fsgid = 0;
    std::uint32_t spare0 = 0;
};
static_assert(sizeof(PidfdInfo) == 64);

constexpr std::uint64_t kInfoCreds = 1U << 1;     // PIDFD_INFO_CREDS
constexpr std::uint64_t kInfoCgroupId = 1U << 2;  // PIDFD_INFO_CGROUPID
constexpr unsigned long kPidfdGetInfo = _IOWR(0xFF, 11, PidfdInfo);
static_assert(kPidfdGetInfo == kPidfdGetInfoRequest);

}  // namespace

std::optional<std::uint64_t> cgroup_id_of(int pidfd) noexcept
{
    PidfdInfo info;
    info.mask = kInfoCgroupId;
    if (::ioctl(pidfd, kPidfdGetInfo, &info) != 0) {
        return std::nullopt;
    }
    if ((info.mask & kInfoCgroupId) == 0 || info.cgroupid == 0) {
        return std::nullopt;
    }
    return info.cgroupid;
}

std::optional<PidfdFacts> pidfd_facts(int pidfd) noexcept
{
    PidfdInfo info;
    info.mask = kInfoCreds | kInfoCgroupId;
    if (::ioctl(pidfd, kPidfdGetInfo, &info) != 0) {
        return std::nullopt;  // ESRCH once reaped: the caller's /proc read fails the same way
    }
    if ((info.mask & kInfoCreds) == 0) {
        return std::nullopt;
    }
    PidfdFacts facts;
    facts.real_uid = info.ruid;
    facts.effective_uid = info.euid;
    facts.effective_gid = info.egid;
    if ((info.mask & kInfoCgroupId) != 0 && info.cgroupid != 0) {
        facts.cgroup_id = info.cgroupid;
    }
    return facts;
}

}  // namespace codexvault::identity
