// `troupe run` with kind ppo on the target-pattern task (vocabulary 8, the reward is the fraction of the 4
// response tokens that match a fixed pattern, so the optimum is 1 and a uniform policy scores 1/8):
//  - all roles in one process (inproc) learn: the mean reward of the first iteration is below 0.35 and that of
//    the last five above 0.8, within 40 iterations;
//  - the same config with the four roles as separate `troupe worker` processes logs identical metrics, and so
//    does reward + reference sharing one process over tcp;
//  - kill -9 of the critic process mid-run: the controller exits non-zero within 30 s naming the critic, no
//    worker is left running, and `--resume` completes the run with metrics identical to the uninterrupted one.
#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>

#include "core/run_log.h"
#include "tests/support/pattern_task.h"
#include "tests/support/test_support.h"

namespace troupe {
namespace {

using testing::ChildProcess;
using ::testing::HasSubstr;
using testing::last_iteration_printed;
using testing::run_process;
using testing::ScratchDir;
using testing::write_file;

bool process_alive(int pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  if (!stat) return false;
  std::string line;
  std::getline(stat, line);
  const auto close = line.rfind(')');
  return close != std::string::npos && close + 2 < line.size() && line[close + 2] != 'Z';
}

class PpoCli : public ::testing::Test {
 protected:
  // The learning rate decays (cosine) over the 40 iterations: at a constant 3e-3 the policy reaches reward ~1 by
  // iteration 25 and then, for some seeds, collapses for a few iterations (seen with ATen's and the fused kernels'
  // last-bit numerics alike), which made "the last five iterations average > 0.8" a coin flip. Decayed, 6 of 6
  // seeds tried end above 0.97.
  void SetUp() override {
    testing::PatternTask task;
    task.critic_optim = "{lr: 3.0e-3, warmup_steps: 0, schedule: cosine}";
    task.ppo = "{iterations: 40, rollout_batch: 32, minibatch: 8, epochs: 2, kl: {init_coef: 0.02}}";
    write_file(dir_ / "ppo.yaml", testing::pattern_task_yaml(dir_ / "runs", task));
  }
  std::vector<std::string> args(const std::string& name, std::vector<std::string> extra = {}) const {
    return testing::run_args(dir_ / "ppo.yaml", name, extra);
  }
  std::filesystem::path run(const std::string& name) const { return dir_ / "runs" / name; }
  static void expect_same_metrics(const std::filesystem::path& a, const std::filesystem::path& b) {
    testing::expect_same_metrics(a, b,
                                 {"reward/mean", "kl/mean", "actor/policy_loss", "actor/approx_kl", "critic/value_loss",
                                  "critic/explained_variance", "response/length_mean"});
  }
  ScratchDir dir_;
};

// The sampled completions (eval.log_samples, default 4 per iteration): steps 1..40, and each row's raw reward is the
// pattern reward of its completion, recomputed here from the ids (synthetic prompts: no tokenizer, so the table
// holds "ids: 3 5 1 6").
void expect_pattern_samples(const std::map<std::string, std::vector<std::string>>& samples) {
  ASSERT_EQ(samples.at("step").size(), 160u);
  const std::vector<int64_t> pattern = {3, 5, 1, 6};
  for (size_t row = 0; row < 160; ++row) {
    EXPECT_EQ(samples.at("step")[row], std::to_string(row / 4 + 1));
    EXPECT_EQ(samples.at("prompt")[row].rfind("ids: ", 0), 0u) << samples.at("prompt")[row];
    std::istringstream ids(samples.at("completion")[row].substr(4));
    int64_t id = 0, hits = 0;
    for (size_t i = 0; ids >> id; ++i) hits += i < pattern.size() && id == pattern[i] ? 1 : 0;
    EXPECT_EQ(samples.at("raw_reward")[row], fmt::format("{:.6g}", static_cast<double>(hits) / 4)) << row;
  }
}

TEST_F(PpoCli, LearnsThePatternAndWorkerProcessesMatchInproc) {
  auto inproc = run_process(args("inproc"), std::chrono::seconds(300));
  ASSERT_EQ(inproc.exit_code, 0) << inproc.output;
  core::RunLogReader log(run("inproc") / "log.h5");
  const auto reward = log.metric("reward/mean");
  ASSERT_EQ(reward.steps.size(), 40u);
  EXPECT_LT(reward.values.front(), 0.35);
  double tail = 0;
  for (size_t i = 35; i < 40; ++i) tail += reward.values[i] / 5;
  EXPECT_GT(tail, 0.8) << "mean reward of the last five iterations";
  // The first minibatch of every update saw ratio 1 exactly (the actor asserts it; the log shows it).
  EXPECT_EQ(log.metric("policy/version").values.back(), 40.0);
  expect_pattern_samples(log.table("samples"));
  // The run directory is a model `troupe generate` can use: greedy continuations follow the pattern.
  auto gen = run_process({testing::cli_path(), "generate", "-c", run("inproc").string(), "--prompt-ids", "2,4", "-n",
                          "4", "--no-stop", "--json"});
  ASSERT_EQ(gen.exit_code, 0) << gen.output;
  const auto ids = nlohmann::json::parse(gen.output)[0]["ids"].get<std::vector<int64_t>>();
  ASSERT_EQ(ids.size(), 4u);
  const std::vector<int64_t> pattern = {3, 5, 1, 6};
  int matches = 0;
  for (size_t i = 0; i < 4; ++i) matches += ids[i] == pattern[i] ? 1 : 0;
  EXPECT_GE(matches, 3) << gen.output;

  auto processes = run_process(args("processes", {"placement.mode=processes"}), std::chrono::seconds(300));
  ASSERT_EQ(processes.exit_code, 0) << processes.output;
  EXPECT_TRUE(std::filesystem::exists(run("processes") / "workers" / "critic.log"));
  expect_same_metrics(run("inproc"), run("processes"));

  // Reward and reference sharing one process, over tcp on loopback: the same metrics again.
  auto shared = run_process(args("shared", {"placement.mode=processes", "placement.transport=tcp",
                                            "placement.colocate=[\"reward,reference\"]"}),
                            std::chrono::seconds(300));
  ASSERT_EQ(shared.exit_code, 0) << shared.output;
  EXPECT_TRUE(std::filesystem::exists(run("shared") / "workers" / "reward+reference.log"));
  EXPECT_THAT(testing::read_file(run("shared") / "workers" / "critic.endpoint"), HasSubstr("tcp://127.0.0.1:"));
  expect_same_metrics(run("inproc"), run("shared"));
}

TEST_F(PpoCli, KilledCriticStopsTheRunAndResumeMatchesAnUninterruptedRun) {
  auto whole = run_process(args("whole"), std::chrono::seconds(300));
  ASSERT_EQ(whole.exit_code, 0) << whole.output;

  std::vector<int> pids;
  {
    ChildProcess controller(args("cut", {"placement.mode=processes"}), dir_ / "cut.out");
    ASSERT_TRUE(testing::wait_until([&] { return last_iteration_printed(controller.output()) >= 12; },
                                    std::chrono::seconds(120)))
        << controller.output();
    for (const char* role : {"actor", "critic", "reward", "reference"}) {
      std::ifstream in(run("cut") / "workers" / (std::string(role) + ".pid"));
      int pid = -1;
      in >> pid;
      ASSERT_GT(pid, 0) << role;
      pids.push_back(pid);
    }
    ASSERT_EQ(::kill(pids[1], SIGKILL), 0);
    const auto start = std::chrono::steady_clock::now();
    const int code = controller.wait(std::chrono::seconds(30));
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(30));
    EXPECT_NE(code, 0);
    EXPECT_THAT(controller.output(), HasSubstr("role critic rank 0"));
    EXPECT_THAT(controller.output(), HasSubstr("signal 9"));
    EXPECT_LT(last_iteration_printed(controller.output()), 40) << "the kill must land mid-run";
  }
  for (int pid : pids) EXPECT_FALSE(process_alive(pid)) << "worker " << pid << " left running";

  auto resumed = run_process(args("cut", {"placement.mode=processes", "--resume"}), std::chrono::seconds(300));
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  EXPECT_THAT(resumed.output, HasSubstr("resumed at iteration"));
  expect_same_metrics(run("whole"), run("cut"));
  // The samples table was rolled back with the metrics (RunLog::truncate_after): the same rows as uninterrupted.
  EXPECT_EQ(core::RunLogReader(run("cut") / "log.h5").table("samples"),
            core::RunLogReader(run("whole") / "log.h5").table("samples"));
}

// A stopped (SIGSTOP) role is alive but silent: the controller's liveness check names it within a few heartbeats
// (placement.heartbeat_s = 2) instead of waiting out placement.request_timeout_s (120 s); its checkpoint survives.
TEST_F(PpoCli, StoppedCriticIsAnErrorWithinSecondsNotAtTheRequestTimeout) {
  int critic = -1;
  ChildProcess controller(args("stopped", {"placement.mode=processes", "ppo.iterations=400"}), dir_ / "stopped.out");
  ASSERT_TRUE(
      testing::wait_until([&] { return last_iteration_printed(controller.output()) >= 11; }, std::chrono::seconds(120)))
      << controller.output();
  {
    std::ifstream in(run("stopped") / "workers" / "critic.pid");
    in >> critic;
  }
  ASSERT_GT(critic, 0);
  ASSERT_EQ(::kill(critic, SIGSTOP), 0);
  const auto start = std::chrono::steady_clock::now();
  const int code = controller.wait(std::chrono::seconds(60));
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(20));
  EXPECT_NE(code, 0);
  EXPECT_THAT(controller.output(), HasSubstr("worker role critic rank 0"));
  EXPECT_THAT(controller.output(), HasSubstr("is stopped"));
  EXPECT_FALSE(process_alive(critic)) << "the stopped worker was left behind";
  EXPECT_TRUE(std::filesystem::exists(run("stopped") / "checkpoints" / "step_00000010"))
      << "the last checkpoint is kept";
}

// Actor, critic and reference as data-parallel groups of 2 MPI ranks each (each group its own mpirun): every rank
// takes half of each minibatch and gradients are all-reduced, so the first iterations reproduce the one-rank run
// up to float summation order (the same rollouts, losses within 1e-5); later, sampling amplifies the last-bit
// differences, so the run is then only required to learn.
TEST_F(PpoCli, DataParallelRoleGroupsMatchOneRankAndLearn) {
  auto one = run_process(args("one", {"placement.mode=processes"}), std::chrono::seconds(300));
  ASSERT_EQ(one.exit_code, 0) << one.output;
  auto two = run_process(args("two", {"placement.mode=processes", "placement.actor_ranks=2", "placement.critic_ranks=2",
                                      "placement.reference_ranks=2"}),
                         std::chrono::seconds(300));
  ASSERT_EQ(two.exit_code, 0) << two.output;
  EXPECT_THAT(testing::read_file(run("two") / "workers" / "actor.log"), HasSubstr("actor (2 ranks) serving on"));
  core::RunLogReader a(run("one") / "log.h5"), b(run("two") / "log.h5");
  const auto ra = a.metric("reward/mean"), rb = b.metric("reward/mean");
  for (size_t i = 0; i < 3; ++i) EXPECT_EQ(ra.values[i], rb.values[i]) << "iteration " << i + 1;
  for (const char* m : {"actor/policy_loss", "actor/approx_kl", "critic/value_loss"}) {
    const auto ma = a.metric(m), mb = b.metric(m);
    for (size_t i = 0; i < 3; ++i) EXPECT_NEAR(ma.values[i], mb.values[i], 1e-5) << m << " iteration " << i + 1;
  }
  double tail = 0;
  for (size_t i = 35; i < 40; ++i) tail += rb.values[i] / 5;
  EXPECT_GT(tail, 0.8);
}

}  // namespace
}  // namespace troupe
