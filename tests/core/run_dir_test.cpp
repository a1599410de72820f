// core/run_dir.h's permissions: a new run directory is private to its owner (it holds the run's CURVE keys and the
// workers' rendezvous files), and write_file_atomic creates files with the mode it is given.
#include "core/run_dir.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include "tests/support/test_support.h"

namespace troupe::core {
namespace {

mode_t mode_of(const std::filesystem::path& path) {
  struct stat st {};
  EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
  return st.st_mode & 07777;
}

TEST(RunDirectory, NewRunDirectoryIsPrivate) {
  testing::ScratchDir scratch;
  RunSection section;
  section.dir = (scratch / "runs").string();
  section.name = "r1";
  const RunDirectory run = RunDirectory::open(section);
  EXPECT_EQ(mode_of(run.path()), 0700u);
  section.overwrite = true;
  section.name = "r2";
  EXPECT_EQ(mode_of(RunDirectory::open(section).path()), 0700u);
}

TEST(RunDirectory, WriteFileAtomicUsesTheGivenMode) {
  testing::ScratchDir scratch;
  write_file_atomic(scratch / "private", "x\n", 0600);
  EXPECT_EQ(mode_of(scratch / "private"), 0600u);
  EXPECT_EQ(testing::read_file(scratch / "private"), "x\n");
}

}  // namespace
}  // namespace troupe::core
