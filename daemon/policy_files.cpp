#include "daemon/policy_files.hpp"

#include <fcntl.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "lib/fileio/files.hpp"
#include "lib/fileio/unique_fd.hpp"

namespace codexvault::daemon {
namespace {

constexpr std::size_t kMaxPolicyFileBytes = 1024 * 1024;

// Root-owned and not writable by group or others: only root could have written it.
void require_root_controlled(const struct stat& st, const std::string& path)
{
    if (st.st_uid != 0) {
        throw std::runtime_error(path + " is owned by uid " + std::to_string(st.st_uid) +
                                 "; policy must be owned by root");
    }
    if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
        throw std::runtime_error(path + " is writable by group or others; policy must be writable by root only");
    }
}

std::string read_policy_file(int dir_fd, const std::string& name, const std::string& path)
{
    UniqueFd fd(::openat(dir_fd, name.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK));
    if (!fd) {
        throw std::runtime_error(path + ": " + std::strerror(errno));
    }
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) {
        throw std::runtime_error(path + ": " + std::strerror(errno));
    }
    if (!S_ISREG(st.st_mode)) {
        throw std::runtime_error(path + " is not a regular file");
    }
    require_root_controlled(st, path);
    std::string content(kMaxPolicyFileBytes + 1, '\0');
    const std::size_t got = fileio::read_until_eof(fd.get(), content.data(), content.size(), path);
    if (got > kMaxPolicyFileBytes) {
        throw std::runtime_error(path + " is larger than 1 MiB");
    }
    content.resize(got);
    return content;
}

}  // namespace

PolicyLoad load_policy_directory(const std::filesystem::path& dir)
{
    PolicyLoad load;
    const std::string dir_text = dir.string();
    struct stat st {};
    if (::lstat(dir_text.c_str(), &st) != 0) {
        if (errno != ENOENT) {
            load.summary = "not loaded: " + dir_text + ": " + std::strerror(errno);
            return load;
        }
        load.result = policy::load_policy({});
        load.summary = "loaded: no policy folder at " + dir_text + "; nothing is granted";
        return load;
    }
    std::vector<std::string> names;
    std::vector<std::string> contents;
    try {
        if (!S_ISDIR(st.st_mode)) {
            throw std::runtime_error(dir_text + " is not a directory");
        }
        require_root_controlled(st, dir_text);
        UniqueFd dir_fd = fileio::open_directory(dir);
        for (const auto& entry : std::filesystem::directory_iterator(dir)) {
            const std::string name = entry.path().filename().string();
            if (name.size() > 5 && name.compare(name.size() - 5, 5, ".toml") == 0 && name[0] != '.') {
                names.push_back(name);
            }
        }
        std::sort(names.begin(), names.end());
        for (const auto& name : names) {
            contents.push_back(read_policy_file(dir_fd.get(), name, (dir / name).string()));
        }
    } catch (const std::exception& e) {
        load.summary = std::string("not loaded: ") + e.what();
        return load;
    }
    std::vector<std::string> labels;
    std::vector<policy::PolicyDocument> documents;
    labels.reserve(names.size());
    for (std::size_t i = 0; i < names.size(); ++i) {
        labels.push_back((dir / names[i]).string());
    }
    for (std::size_t i = 0; i < names.size(); ++i) {
        documents.push_back({labels[i], contents[i]});
    }
    load.result = policy::load_policy(documents);
    if (load.result.ok()) {
        load.summary = "loaded: " + std::to_string(names.size()) + " file(s) from " + dir_text;
    } else {
        load.summary = "not loaded: " + load.result.error_text();
    }
    return load;
}

}  // namespace codexvault::daemon
