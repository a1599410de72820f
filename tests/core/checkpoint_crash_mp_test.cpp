// Crash tests for CheckpointManager::save with a real process: SIGKILL the writer in the middle
// of saving step 2 and check that step 1 is what recovery finds. Not a test of disk power loss:
// fsync ordering is exercised only as far as a killed process can show.
#include <gtest/gtest.h>
#include <signal.h>
#include <torch/torch.h>

#include <algorithm>

#include "core/checkpoint.h"
#include "tests/support/test_support.h"

namespace troupe::core {
namespace {
namespace fs = std::filesystem;
using namespace std::chrono_literals;
using troupe::testing::ChildProcess;
using troupe::testing::ScratchDir;

std::vector<fs::path> temporaries(const fs::path& root) {
  std::vector<fs::path> out;
  for (const auto& e : fs::directory_iterator(root)) {
    if (e.path().filename().string().rfind(".tmp-", 0) == 0) out.push_back(e.path());
  }
  return out;
}

// Starts the helper, waits until it reports `line_part`, kills it, returns its output.
std::string kill_writer_after(const fs::path& root, const std::string& mode, const std::string& line_part,
                              const fs::path& log) {
  ChildProcess writer({troupe::testing::helper_path("checkpoint_writer_helper"), root.string(), mode}, log);
  const bool reached =
      troupe::testing::wait_until([&] { return writer.output().find(line_part) != std::string::npos; }, 120s);
  EXPECT_TRUE(reached) << "helper output:\n" << writer.output();
  writer.kill(SIGKILL);
  EXPECT_EQ(writer.wait(30s), 128 + SIGKILL) << writer.output();
  return writer.output();
}

CheckpointManager manager_at(const fs::path& root, int keep_last) {
  CheckpointOptions options;
  options.root = root;
  options.keep_last = keep_last;
  return CheckpointManager(options);
}

// What every scenario must find after the kill: step 1, exactly, and nothing else.
void expect_only_step_one(const fs::path& root) {
  CheckpointManager manager = manager_at(root, /*keep_last=*/3);
  const auto loaded = manager.load_latest();
  ASSERT_TRUE(loaded.has_value());
  EXPECT_EQ(loaded->step, 1);
  EXPECT_TRUE(
      torch::equal(loaded->tensor_groups.at("model").at("w"), torch::tensor({{0.0f, 0.5f, 1.0f}, {1.5f, 2.0f, 2.5f}})));
  EXPECT_EQ(loaded->get<std::string>("marker"), "complete");
  EXPECT_EQ(manager.latest_hint(), "step_00000001");
  EXPECT_EQ(manager.complete_steps(), (std::vector<int64_t>{1}));
  EXPECT_FALSE(fs::exists(root / "step_00000002"));
}

// A new manager can save step 2 over the wreckage, and remove_stale_temporaries cleans up.
void expect_recovery(const fs::path& root) {
  CheckpointManager manager = manager_at(root, /*keep_last=*/0);
  CheckpointState s;
  s.step = 2;
  s.tensor_groups["model"]["w"] = torch::full({2, 3}, 7.0f);
  manager.save(s);
  EXPECT_EQ(manager.complete_steps(), (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(manager.load_latest()->step, 2);
  EXPECT_FALSE(temporaries(root).empty()) << "the killed writer's temporary directory should remain";
  manager.remove_stale_temporaries();
  EXPECT_TRUE(temporaries(root).empty());
  EXPECT_EQ(manager.complete_steps(), (std::vector<int64_t>{1, 2}));
}

TEST(CheckpointCrash, KilledAfterFirstFileLeavesStepOne) {
  ScratchDir dir("ckpt-crash");
  const fs::path root = dir / "checkpoints";
  const std::string out = kill_writer_after(root, "first", "wrote ", dir / "writer.log");
  EXPECT_NE(out.find("saved 1"), std::string::npos) << out;
  EXPECT_NE(out.find("big_a.pt"), std::string::npos) << out;
  EXPECT_EQ(out.find("big_b.pt"), std::string::npos) << out;
  expect_only_step_one(root);
  expect_recovery(root);
}

TEST(CheckpointCrash, KilledBeforeManifestLeavesStepOne) {
  ScratchDir dir("ckpt-crash");
  const fs::path root = dir / "checkpoints";
  const std::string out = kill_writer_after(root, "before-manifest", "big_c.pt", dir / "writer.log");
  EXPECT_EQ(out.find("manifest"), std::string::npos) << out;
  // Every data file of step 2 is on disk, complete, but uncommitted: no manifest.bin.
  const auto tmps = temporaries(root);
  ASSERT_EQ(tmps.size(), 1u);
  for (const char* file : {"big_a.pt", "big_b.pt", "big_c.pt"}) {
    EXPECT_GT(fs::file_size(tmps[0] / file), 20'000'000u) << file;
  }
  EXPECT_FALSE(fs::exists(tmps[0] / "manifest.bin"));
  expect_only_step_one(root);
  expect_recovery(root);
}

}  // namespace
}  // namespace troupe::core
