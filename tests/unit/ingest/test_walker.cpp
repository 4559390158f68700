// The ingest walker against the bad inputs an uploaded project can hold: links out of the
// tree, loops, special files, huge and growing files, odd bytes, unreadable entries, many and
// deep entries, and a tree that changes while it is walked. Each test builds the tree it needs.
#include <grp.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include <atomic>
#include <cerrno>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "daemon/ingest/beneath.hpp"
#include "tests/unit/ingest/tree.hpp"

using namespace ingest_test;

namespace {

// A walk that blocks (on a fifo, say) fails the test instead of hanging the suite. Not a timing
// assertion: no walk here comes anywhere near it.
void guard_against_hangs()
{
    ::alarm(120);
}

}  // namespace

Test(ingest_walker, reads_every_regular_file_with_its_relative_path_in_byte_order)
{
    Tree tree;
    tree.file("b.txt", "bee");
    tree.dir("a");
    tree.file("a/z.py", "print(1)\n");
    tree.dir("a/deeper");
    tree.file("a/deeper/x", "");
    std::vector<Visited> files;
    const WalkSummary summary = walk_all(tree.fd(), WalkLimits{}, files);
    cr_assert_eq(files.size(), 3u);
    cr_expect_str_eq(files[0].path.c_str(), "a/deeper/x");
    cr_expect_str_eq(files[1].path.c_str(), "a/z.py");
    cr_expect_str_eq(files[1].content.c_str(), "print(1)\n");
    cr_expect_str_eq(files[2].path.c_str(), "b.txt");
    cr_expect_eq(summary.directories, 3u);
    cr_expect(summary.complete());
}

Test(ingest_walker, a_symlink_to_etc_shadow_is_skipped_and_never_opened)
{
    Tree tree;
    tree.symlink("/etc/shadow", "shadow");
    tree.symlink("/etc", "etc");
    tree.symlink("../../../../../../etc/passwd", "passwd");
    tree.file("ok.txt", "fine");
    std::vector<Visited> files;
    const WalkSummary summary = walk_all(tree.fd(), WalkLimits{}, files);
    cr_assert_eq(files.size(), 1u);
    cr_expect_str_eq(files[0].path.c_str(), "ok.txt");
    for (const char* name : {"shadow", "etc", "passwd"}) {
        const Skip* skip = skipped(summary, name);
        cr_assert_not_null(skip, "%s not reported", name);
        cr_expect(skip->reason == SkipReason::Symlink, "%s: %s", name, to_string(skip->reason).data());
    }
    cr_expect(!summary.complete(), "a walk that skipped something says so");
}

Test(ingest_walker, symlink_loops_are_skipped_without_looping)
{
    guard_against_hangs();
    Tree tree;
    tree.symlink("b", "a");
    tree.symlink("a", "b");
    tree.symlink(".", "self");
    tree.dir("d");
    tree.symlink("..", "d/up");
    std::vector<Visited> files;
    const WalkSummary summary = walk_all(tree.fd(), WalkLimits{}, files);
    cr_expect(files.empty());
    cr_expect_eq(summary.skipped, 4u);
    cr_expect_eq(summary.directories, 2u);
}

Test(ingest_walker, the_openers_refuse_symlinks_parent_steps_and_paths)
{
    Tree tree;
    tree.dir("real");
    tree.symlink("/etc", "to-etc");
    tree.symlink("real", "to-real");
    cr_expect_eq(open_directory_beneath(tree.fd(), "to-etc").error, ELOOP);
    cr_expect_eq(open_directory_beneath(tree.fd(), "to-real").error, ELOOP, "even a symlink that stays inside");
    cr_expect_eq(open_file_beneath(tree.fd(), "..").error, EINVAL);
    cr_expect_eq(open_file_beneath(tree.fd(), "real/../..").error, EINVAL);
    cr_expect_eq(open_file_beneath(tree.fd(), "").error, EINVAL);
    cr_expect_eq(open_directory_beneath(tree.fd(), "real").error, 0);
}

Test(ingest_walker, a_directory_swapped_for_a_symlink_to_root_after_listing_is_not_entered)
{
    // The attack: the walker lists "sub" as a directory; before it gets there, "sub" becomes a
    // symlink to /. Opening "sub" must not follow it.
    Tree tree;
    tree.file("a.txt", "first");
    tree.dir("sub");
    tree.file("sub/inner.txt", "inner");
    std::vector<Visited> files;
    bool swapped = false;
    const WalkSummary summary = walk(tree.fd(), WalkLimits{}, [&](const FileVisit& file) {
        files.push_back({std::string(file.path), {}, 0, false, 0});
        if (!swapped) {
            swapped = true;
            check(::rename(tree.at("sub").c_str(), tree.at("moved").c_str()) == 0, "rename");
            tree.symlink("/", "sub");
        }
    });
    cr_expect(swapped);
    for (const auto& file : files) {
        cr_expect(file.path == "a.txt" || file.path.rfind("moved/", 0) == 0, "visited %s", file.path.c_str());
    }
    const Skip* skip = skipped(summary, "sub");
    cr_assert_not_null(skip);
    cr_expect(skip->reason == SkipReason::Symlink);
}

Test(ingest_walker, a_hardlink_to_a_file_outside_the_tree_is_skipped_unless_allowed)
{
    // Nothing on a file says where its other names are: st_nlink > 1 is all there is to see, so
    // every hard-linked file is treated as possibly outside.
    Tree outside;
    outside.file("private.key", "outside secret bytes");
    Tree tree;
    check(::link(outside.at("private.key").c_str(), tree.at("linked.key").c_str()) == 0, "link");
    tree.file("own.txt", "own");
    std::vector<Visited> files;
    const WalkSummary summary = walk_all(tree.fd(), WalkLimits{}, files);
    cr_assert_eq(files.size(), 1u);
    cr_expect_str_eq(files[0].path.c_str(), "own.txt");
    const Skip* skip = skipped(summary, "linked.key");
    cr_assert_not_null(skip);
    cr_expect(skip->reason == SkipReason::Hardlinked);

    WalkLimits allow;
    allow.read_hardlinked = true;
    files.clear();
    walk_all(tree.fd(), allow, files);
    cr_assert_eq(files.size(), 2u);
    cr_expect_eq(files[0].links, 2u);
}

Test(ingest_walker, a_sparse_10_gib_file_is_read_only_up_to_the_file_limit)
{
    Tree tree;
    tree.file("sparse.bin", "");
    {
        UniqueFd fd(::open(tree.at("sparse.bin").c_str(), O_WRONLY | O_CLOEXEC));
        check(fd.valid() && ::ftruncate(fd.get(), 10LL * 1024 * 1024 * 1024) == 0, "ftruncate");
    }
    WalkLimits limits;
    limits.max_file_bytes = 1024 * 1024;
    std::vector<Visited> files;
    const WalkSummary summary = walk_all(tree.fd(), limits, files);
    cr_assert_eq(files.size(), 1u);
    cr_expect_eq(files[0].content.size(), 1024u * 1024u);
    cr_expect_eq(files[0].size, 10ULL * 1024 * 1024 * 1024);
    cr_expect(files[0].truncated);
    cr_expect_eq(summary.bytes_read, 1024u * 1024u);
    cr_expect_eq(summary.truncated_files, 1u);
}

Test(ingest_walker, binary_content_and_names_that_are_not_utf8_are_read_as_bytes)
{
    Tree tree;
    const std::string binary(
        "\x7f"
        "ELF\0\0\xff\xfe\x80",
        9);
    tree.file("prog.bin", binary);
    const std::string odd_name("caf\xe9\xff.txt");
    tree.file(odd_name, "x");
    std::vector<Visited> files;
    const WalkSummary summary = walk_all(tree.fd(), WalkLimits{}, files);
    cr_assert_eq(files.size(), 2u);
    cr_expect(files[0].path == odd_name);
    cr_expect(files[1].content == binary);
    cr_expect(summary.complete());
}

Test(ingest_walker, a_fifo_is_skipped_and_never_blocks)
{
    guard_against_hangs();
    Tree tree;
    check(::mkfifo(tree.at("pipe").c_str(), 0644) == 0, "mkfifo");
    tree.file("after.txt", "after");
    std::vector<Visited> files;
    const WalkSummary summary = walk_all(tree.fd(), WalkLimits{}, files);
    cr_assert_eq(files.size(), 1u);
    const Skip* skip = skipped(summary, "pipe");
    cr_assert_not_null(skip);
    cr_expect(skip->reason == SkipReason::Fifo);
    // Opened directly (as after a race that put a fifo where a file was listed), the open
    // returns at once instead of waiting for a writer.
    const auto opened = open_file_beneath(tree.fd(), "pipe");
    cr_expect_eq(opened.error, 0);
}

Test(ingest_walker, a_file_replaced_by_a_fifo_after_listing_is_skipped_as_changed)
{
    guard_against_hangs();
    Tree tree;
    tree.file("a.txt", "first");
    tree.file("b.txt", "second");
    bool swapped = false;
    std::vector<std::string> paths;
    const WalkSummary summary = walk(tree.fd(), WalkLimits{}, [&](const FileVisit& file) {
        paths.emplace_back(file.path);
        if (!swapped) {
            swapped = true;
            check(::unlink(tree.at("b.txt").c_str()) == 0, "unlink");
            check(::mkfifo(tree.at("b.txt").c_str(), 0644) == 0, "mkfifo");
        }
    });
    cr_assert_eq(paths.size(), 1u);
    const Skip* skip = skipped(summary, "b.txt");
    cr_assert_not_null(skip);
    cr_expect(skip->reason == SkipReason::Changed);
}

Test(ingest_walker, unreadable_files_and_directories_are_skipped_with_permission_denied)
{
    Tree tree;
    ::chmod(tree.path().c_str(), 0755);
    tree.file("secret.txt", "no", 0000);
    tree.dir("locked");
    tree.file("locked/inside.txt", "no");
    ::chmod(tree.at("locked").c_str(), 0000);
    tree.file("open.txt", "yes");
    // Root reads everything; the walk runs as nobody in a child so that permissions apply.
    const pid_t child = ::fork();
    cr_assert_geq(child, 0);
    if (child == 0) {
        if (::geteuid() == 0 && (::setgroups(0, nullptr) != 0 || ::setresgid(65534, 65534, 65534) != 0 ||
                                 ::setresuid(65534, 65534, 65534) != 0)) {
            ::_exit(10);
        }
        std::vector<Visited> files;
        const WalkSummary summary = walk_all(tree.fd(), WalkLimits{}, files);
        const Skip* file = skipped(summary, "secret.txt");
        const Skip* dir = skipped(summary, "locked");
        const bool ok = files.size() == 1 && files[0].path == "open.txt" && file != nullptr &&
                        file->reason == SkipReason::PermissionDenied && dir != nullptr &&
                        dir->reason == SkipReason::PermissionDenied;
        ::_exit(ok ? 0 : 11);
    }
    int status = 0;
    cr_assert_eq(::waitpid(child, &status, 0), child);
    cr_assert(WIFEXITED(status));
    cr_expect_neq(WEXITSTATUS(status), 10, "could not drop to nobody");
    cr_expect_eq(WEXITSTATUS(status), 0, "the walk as nobody did not skip both with permission denied");
}

Test(ingest_walker, many_tiny_files_stop_at_the_file_limit)
{
    Tree tree;
    constexpr int kFiles = 100000;
    for (int d = 0; d < 100; ++d) {
        const std::string dir = "d" + std::to_string(d);
        tree.dir(dir);
        UniqueFd dir_fd(::openat(tree.fd(), dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
        check(dir_fd.valid(), "open dir");
        for (int f = 0; f < kFiles / 100; ++f) {
            const std::string name = "f" + std::to_string(f);
            UniqueFd out(::openat(dir_fd.get(), name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
            check(out.valid() && ::write(out.get(), "x", 1) == 1, "create tiny file");
        }
    }
    WalkLimits limits;
    limits.max_files = 60000;
    std::uint64_t seen = 0;
    const WalkSummary summary = walk(tree.fd(), limits, [&](const FileVisit&) { ++seen; });
    cr_expect_eq(seen, 60000u);
    cr_expect(summary.stopped == StopReason::FileLimit);
    cr_expect(!summary.complete());

    limits.max_files = kFiles;
    limits.max_entries = 5000;
    seen = 0;
    const WalkSummary entries = walk(tree.fd(), limits, [&](const FileVisit&) { ++seen; });
    cr_expect(entries.stopped == StopReason::EntryLimit);
    cr_expect_leq(entries.entries, 5000u);
}

Test(ingest_walker, nesting_4096_deep_stops_at_the_depth_limit)
{
    Tree tree;
    {
        UniqueFd at(::dup(tree.fd()));
        for (int depth = 1; depth <= 4096; ++depth) {
            check(::mkdirat(at.get(), "d", 0755) == 0, "mkdirat");
            UniqueFd next(::openat(at.get(), "d", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
            check(next.valid(), "open level");
            if (depth == 10 || depth == 4096) {
                UniqueFd out(::openat(next.get(), "leaf.txt", O_WRONLY | O_CREAT | O_CLOEXEC, 0644));
                check(out.valid(), "leaf");
            }
            at = std::move(next);
        }
    }
    WalkLimits limits;
    limits.max_depth = 64;
    std::vector<Visited> files;
    const WalkSummary summary = walk_all(tree.fd(), limits, files);
    cr_assert_eq(files.size(), 1u, "only the leaf at depth 10");
    cr_expect_eq(summary.directories, 65u);
    cr_assert_eq(summary.skips.size(), 1u);
    cr_expect(summary.skips[0].reason == SkipReason::TooDeep);

    // Asking for more than the walker's own ceiling gets the ceiling.
    limits.max_depth = 100000;
    files.clear();
    const WalkSummary capped = walk_all(tree.fd(), limits, files);
    cr_expect_eq(capped.directories, kMaxDepthLimit + 1);
}

Test(ingest_walker, a_file_that_grows_while_read_is_cut_at_the_file_limit)
{
    Tree tree;
    tree.file("log.txt", std::string(2 * 1024 * 1024, 'a'));
    std::atomic<bool> done{false};
    std::thread writer([&] {
        UniqueFd out(::open(tree.at("log.txt").c_str(), O_WRONLY | O_APPEND | O_CLOEXEC));
        const std::string chunk(64 * 1024, 'b');
        while (!done.load() && out.valid()) {
            if (::write(out.get(), chunk.data(), chunk.size()) < 0) {
                break;
            }
        }
    });
    WalkLimits limits;
    limits.max_file_bytes = 1024 * 1024;
    std::vector<Visited> files;
    const WalkSummary summary = walk_all(tree.fd(), limits, files);
    done = true;
    writer.join();
    cr_assert_eq(files.size(), 1u);
    cr_expect_eq(files[0].content.size(), 1024u * 1024u);
    cr_expect(files[0].truncated);
    cr_expect_eq(summary.bytes_read, 1024u * 1024u);
}

Test(ingest_walker, a_directory_renamed_during_the_walk_is_reported_or_followed_by_descriptor)
{
    Tree tree;
    tree.dir("a");
    tree.file("a/1.txt", "one");
    tree.file("a/2.txt", "two");
    tree.dir("b");
    tree.file("b/3.txt", "three");
    bool renamed = false;
    std::vector<std::string> paths;
    const WalkSummary summary = walk(tree.fd(), WalkLimits{}, [&](const FileVisit& file) {
        paths.emplace_back(file.path);
        if (!renamed) {
            renamed = true;
            // The directory being walked moves (its descriptor still reads it), and one not yet
            // entered moves away from the name that was listed.
            check(::rename(tree.at("a").c_str(), tree.at("z").c_str()) == 0, "rename a");
            check(::rename(tree.at("b").c_str(), tree.at("c").c_str()) == 0, "rename b");
        }
    });
    cr_assert_eq(paths.size(), 2u);
    cr_expect_str_eq(paths[0].c_str(), "a/1.txt");
    cr_expect_str_eq(paths[1].c_str(), "a/2.txt");
    const Skip* skip = skipped(summary, "b");
    cr_assert_not_null(skip);
    cr_expect(skip->reason == SkipReason::Vanished);
}

Test(ingest_walker, the_total_byte_limit_stops_the_walk)
{
    Tree tree;
    tree.file("a", std::string(1000, 'a'));
    tree.file("b", std::string(1000, 'b'));
    tree.file("c", std::string(1000, 'c'));
    WalkLimits limits;
    limits.max_total_bytes = 1500;
    std::vector<Visited> files;
    const WalkSummary summary = walk_all(tree.fd(), limits, files);
    cr_assert_eq(files.size(), 2u);
    cr_expect_eq(files[1].content.size(), 500u);
    cr_expect(files[1].truncated);
    cr_expect(summary.stopped == StopReason::TotalBytesLimit);
    cr_expect_eq(summary.bytes_read, 1500u);
}

Test(ingest_walker, a_root_that_is_not_a_directory_is_refused)
{
    Tree tree;
    tree.file("f", "x");
    UniqueFd file(::open(tree.at("f").c_str(), O_RDONLY | O_CLOEXEC));
    cr_assert(file.valid());
    bool thrown = false;
    try {
        (void)walk(file.get(), WalkLimits{}, [](const FileVisit&) {});
    } catch (const std::system_error& e) {
        thrown = e.code().value() == ENOTDIR;
    }
    cr_expect(thrown);
}
