// Replays fuzz corpora through a libFuzzer target without libFuzzer, so `make check` can run
// every seed and every crash reproducer with the ordinary compiler:
//
//   policy-fuzz-replay DIR_OR_FILE...
//
// Each regular file in each directory (not recursive, in name order) and each file named on
// the command line is passed once to LLVMFuzzerTestOneInput. A crash is a crash (the target
// aborts); otherwise exit 0 with a one-line count. Exit 2 on usage errors or unreadable input.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <system_error>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace {

bool replay(const std::filesystem::path& file)
{
    std::ifstream in(file, std::ios::binary);
    if (!in) {
        std::fprintf(stderr, "replay: cannot read %s\n", file.c_str());
        return false;
    }
    const std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size());
    return true;
}

}  // namespace

int main(int argc, char** argv)
{
    if (argc < 2) {
        std::fprintf(stderr, "usage: %s DIR_OR_FILE...\n", argv[0]);
        return 2;
    }
    std::size_t count = 0;
    for (int i = 1; i < argc; ++i) {
        const std::filesystem::path path(argv[i]);
        std::error_code error;
        if (std::filesystem::is_regular_file(path, error)) {
            if (!replay(path)) {
                return 2;
            }
            ++count;
            continue;
        }
        if (!std::filesystem::is_directory(path, error)) {
            std::fprintf(stderr, "replay: %s is neither a file nor a directory\n", argv[i]);
            return 2;
        }
        std::vector<std::filesystem::path> files;
        for (const auto& entry : std::filesystem::directory_iterator(path, error)) {
            if (entry.is_regular_file()) {
                files.push_back(entry.path());
            }
        }
        if (error) {
            std::fprintf(stderr, "replay: cannot list %s: %s\n", argv[i], error.message().c_str());
            return 2;
        }
        std::sort(files.begin(), files.end());
        for (const auto& file : files) {
            if (!replay(file)) {
                return 2;
            }
            ++count;
        }
    }
    std::printf("replay: %zu input(s) ran without a crash\n", count);
    return 0;
}
