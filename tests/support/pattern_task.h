// The pattern task as a `kind: ppo` config, shared by the PPO and GRPO CLI tests (tests/cli/ppo_cli_mp_test.cpp,
// grpo_cli_mp_test.cpp, grpo_invariance_test.cpp): the reward pays for emitting 3 5 1 6, prompts are 64 synthetic
// pairs, the GPT is one layer over a vocabulary of 8. What the tests vary is in PatternTask; everything else is
// fixed here, so the tests cannot drift apart by accident. Header-only (torch-free: core::RunLogReader).
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "core/run_log.h"
#include "tests/support/test_support.h"

namespace troupe::testing {

struct PatternTask {
  std::string seed = "7";
  std::string runtime = "{threads: 1}";
  std::string checkpoint = "{every: 5, keep_last: 0}";
  std::string generation = "{max_new_tokens: 4, do_sample: true}";
  std::string ppo;           // the ppo: section (a flow map)
  std::string critic_optim;  // the critic's optim: section; empty = no critic: line
};

// The YAML of `task`, its runs under `runs_dir`.
inline std::string pattern_task_yaml(const std::filesystem::path& runs_dir, const PatternTask& task) {
  return "kind: ppo\n"
         "seed: " +
         task.seed + "\nrun: {dir: " + runs_dir.string() + "}\nruntime: " + task.runtime +
         "\ncheckpoint: " + task.checkpoint +
         "\nactor:\n"
         "  model: {n_layer: 1, n_head: 2, n_embd: 32, block_size: 16, vocab_size: 8, dropout: 0.0}\n"
         "  optim: {lr: 3.0e-3, warmup_steps: 0, schedule: cosine}\n" +
         (task.critic_optim.empty() ? "" : "critic: {optim: " + task.critic_optim + "}\n") +
         "reward: {function: {type: pattern, pattern: [3, 5, 1, 6]}}\n"
         "prompts: {synthetic_count: 64, synthetic_length: 2}\n"
         "generation: " +
         task.generation + "\nppo: " + task.ppo + "\nplacement: {heartbeat_s: 0.2}\n";
}

// `troupe run CONFIG run.name=NAME extra...`
inline std::vector<std::string> run_args(const std::filesystem::path& config, const std::string& name,
                                         const std::vector<std::string>& extra = {}) {
  std::vector<std::string> a = {cli_path(), "run", config.string(), "run.name=" + name};
  a.insert(a.end(), extra.begin(), extra.end());
  return a;
}

// The `metrics` of two runs are equal, step by step and bit for bit.
inline void expect_same_metrics(const std::filesystem::path& a, const std::filesystem::path& b,
                                const std::vector<std::string>& metrics) {
  core::RunLogReader la(a / "log.h5"), lb(b / "log.h5");
  for (const std::string& m : metrics) {
    const auto ma = la.metric(m), mb = lb.metric(m);
    EXPECT_EQ(ma.steps, mb.steps) << m;
    EXPECT_EQ(ma.values, mb.values) << m;
  }
}

}  // namespace troupe::testing
