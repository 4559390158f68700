#include "daemon/identity/subject.hpp"

#include <array>
#include <string_view>

namespace codexvault::identity {

std::string unit_from_cgroup(const std::string& cgroup_path)
{
    static constexpr std::array<std::string_view, 3> kUnitSuffixes{".service", ".scope", ".socket"};
    std::string_view rest(cgroup_path);
    std::string unit;
    while (!rest.empty()) {
        const auto slash = rest.find('/');
        const auto component = rest.substr(0, slash);
        for (auto suffix : kUnitSuffixes) {
            if (component.size() > suffix.size() && component.substr(component.size() - suffix.size()) == suffix) {
                unit = std::string(component);
            }
        }
        if (slash == std::string_view::npos) {
            break;
        }
        rest.remove_prefix(slash + 1);
    }
    return unit;
}

}  // namespace codexvault::identity
