// `troupe train rm` and `troupe train dpo` on K-wise rankings (data.format: rankings) as a user runs them, on
// rankings a rule orders (four sentiment levels, K = 2..4, ties included): the reward model's first-step loss equals
// the InstructGPT loss Python torch computes from the same initial rewards, its loss falls, it orders held-out
// responses far better than chance, two MPI ranks reproduce one rank's losses, and DPO trains on the pairs the
// rankings imply.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "core/run_log.h"
#include "data/ranking_data.h"
#include "models/gpt_checkpoint.h"
#include "tests/support/test_support.h"
#include "tokenizers/tokenizer_file.h"

namespace troupe::ranking_cli_tests {
namespace {

using ::testing::HasSubstr;
using testing::run_process;
using testing::ScratchDir;
using testing::write_file;

// Responses of four sentiment levels (3 = best); a ranking orders its responses by level, equal levels tied.
const char* kPhrases[4][2] = {{" an awful mess", " truly terrible"},
                              {" rather dull", " a bit boring"},
                              {" quite nice", " pretty good"},
                              {" a wonderful joy", " truly great fun"}};

struct Rankings {
  std::string jsonl;
  int64_t rankings = 0, responses = 0, comparisons = 0;
};

// n rankings of K = 2, 3, 4 responses (levels from a fixed LCG), plus a skipped and an all-tied record when `extra`.
Rankings rankings_jsonl(int n, int offset, bool extra) {
  Rankings out;
  uint32_t state = 12345u + static_cast<uint32_t>(offset);
  auto draw = [&](uint32_t m) {
    state = state * 1664525u + 1013904223u;
    return (state >> 16) % m;
  };
  for (int i = 0; i < n; ++i) {
    const int K = 2 + i % 3;
    std::vector<int> levels;
    while (true) {
      levels.clear();
      for (int k = 0; k < K; ++k) levels.push_back(static_cast<int>(draw(4)));
      if (std::any_of(levels.begin(), levels.end(), [&](int l) { return l != levels[0]; })) break;
    }
    nlohmann::json responses = nlohmann::json::array(), ranks = nlohmann::json::array();
    for (int k = 0; k < K; ++k) {
      responses.push_back(kPhrases[levels[static_cast<size_t>(k)]][draw(2)]);
      int rank = 1;
      for (int other : levels) rank += other > levels[static_cast<size_t>(k)] ? 1 : 0;
      ranks.push_back(rank);
      for (int j = k + 1; j < K; ++j)
        out.comparisons += levels[static_cast<size_t>(j)] != levels[static_cast<size_t>(k)];
    }
    const nlohmann::json rec = {
        {"id", std::to_string(i)}, {"labeller", "rule"}, {"prompt", "Item " + std::to_string(i + offset) + " was"},
        {"responses", responses},  {"ranks", ranks},     {"comment", ""},
        {"seconds", 1.5}};
    out.jsonl += rec.dump() + "\n";
    out.rankings += 1;
    out.responses += K;
  }
  if (extra) {
    out.jsonl +=
        R"({"id": "s", "labeller": "rule", "prompt": "Item x was", "responses": [" a", " b"], "skipped": true})"
        "\n";
    out.jsonl +=
        R"({"id": "t", "labeller": "rule", "prompt": "Item y was", "responses": [" quite nice", " pretty good"], "ranks": [1, 1]})"
        "\n";
  }
  return out;
}

class RankingCli : public ::testing::Test {
 protected:
  void SetUp() override {
    train_ = rankings_jsonl(30, 0, true);
    write_file(dir_ / "train.jsonl", train_.jsonl);
    write_file(dir_ / "val.jsonl", rankings_jsonl(24, 100, false).jsonl);
    base_ =
        "seed: 3\n"
        "run: {dir: " +
        dir_.path().string() +
        "/runs}\n"
        "runtime: {threads: 1}\n"
        "model: {n_layer: 1, n_head: 2, n_embd: 32, block_size: 32, vocab_size: 50257, dropout: 0.0}\n"
        "data: {format: rankings, train: " +
        (dir_ / "train.jsonl").string() + ", val: " + (dir_ / "val.jsonl").string() + ", tokenizer: " + tokenizer() +
        "}\n";
  }
  static std::string tokenizer() {
    return (testing::source_dir() / "tests/fixtures/tokenizers/gpt2.tiktoken").string();
  }
  std::vector<std::string> args(const std::string& kind, const std::string& yaml, std::vector<std::string> extra) {
    write_file(dir_ / (kind + ".yaml"), "kind: " + kind + "\n" + base_ + yaml);
    std::vector<std::string> a = {testing::cli_path(), "train", kind, (dir_ / (kind + ".yaml")).string()};
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  }
  testing::ProcessResult train(const std::string& kind, const std::string& yaml, std::vector<std::string> extra) {
    return run_process(args(kind, yaml, std::move(extra)), std::chrono::seconds(300));
  }
  std::filesystem::path run(const std::string& name) const { return dir_ / "runs" / name; }
  ScratchDir dir_;
  Rankings train_;
  std::string base_;
};

// The (B, K) rewards `rm` gives the training rankings, one response at a time, with their ranks and mask as JSON
// for tests/rlhf/ranking_loss_reference.py.
nlohmann::json rewards_json(models::Gpt& rm, const data::RankingDataset& d) {
  torch::NoGradGuard no_grad;
  rm->eval();
  nlohmann::json rewards = nlohmann::json::array(), ranks = nlohmann::json::array(), mask = nlohmann::json::array();
  for (const data::RankingExample& ex : d.examples) {
    nlohmann::json r = nlohmann::json::array(), k = nlohmann::json::array(), m = nlohmann::json::array();
    for (size_t i = 0; i < 4; ++i) {
      const bool real = i < ex.responses.size();
      double reward = 0.0;
      if (real) {
        std::vector<int64_t> ids(ex.prompt.begin(), ex.prompt.end());
        ids.insert(ids.end(), ex.responses[i].begin(), ex.responses[i].end());
        models::GptInput in;
        in.ids = torch::tensor(ids, torch::kLong).unsqueeze(0);
        in.attention_mask = torch::ones_like(in.ids);
        reward = rm->reward(rm->hidden(in), in.attention_mask).item<double>();
      }
      r.push_back(reward);
      k.push_back(real ? ex.ranks[i] : 0);
      m.push_back(real ? 1 : 0);
    }
    rewards.push_back(r);
    ranks.push_back(k);
    mask.push_back(m);
  }
  return {{"rewards", rewards}, {"ranks", ranks}, {"mask", mask}};
}

TEST_F(RankingCli, FirstStepLossEqualsPythonTorchOnTheSameInitialRewards) {
  // One full-batch step at a vanishing learning rate: the final checkpoint holds the initial model (a 1e-30 step
  // is below float32 resolution), and step 1's loss is the mean over all 30 rankings.
  auto r =
      train("rm", "optim: {lr: 1.0e-30, min_lr: 0, warmup_steps: 0}\ntrain: {steps: 1, batch_size: 30, log_every: 1}\n",
            {"run.name=first"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("rm data: 30 rankings (" + std::to_string(train_.responses) + " responses, " +
                                  std::to_string(train_.comparisons) +
                                  " comparisons; 1 skipped, 1 all tied, 0 truncated, 0 dropped)"));
  core::RunLogReader log(run("first") / "log.h5");
  EXPECT_EQ(log.metric("train/comparisons").values.at(0), static_cast<double>(train_.comparisons));
  EXPECT_EQ(log.metric("train/rankings").values.at(0), 30.0);

  const core::CheckpointState state = models::load_checkpoint_at(run("first"));
  models::Gpt rm = models::gpt_from_checkpoint(state, "model");
  data::TextDatasetOptions o;
  const auto tok = tokenizers::open_tokenizer(tokenizer());
  o.eos_id = data::eos_id_of(tok);
  o.max_length = 32;
  const data::RankingDataset d = data::load_ranking_jsonl(tok, dir_ / "train.jsonl", o);
  write_file(dir_ / "rewards.json", rewards_json(rm, d).dump());
  const auto py = run_process({TROUPE_PYTHON, (testing::source_dir() / "tests/rlhf/ranking_loss_reference.py").string(),
                               (dir_ / "rewards.json").string(), (dir_ / "loss.json").string()});
  ASSERT_EQ(py.exit_code, 0) << py.output;
  const double expected = nlohmann::json::parse(testing::read_file(dir_ / "loss.json"))["loss"].get<double>();
  EXPECT_NEAR(log.metric("train/loss").values.at(0), expected, 1e-6);  // 1.3e-9 measured (float32 rewards)
  EXPECT_GT(std::abs(expected - std::log(2.0)), 1e-4) << "the random head must not score every response alike";
}

TEST_F(RankingCli, RewardModelLearnsTheRankingAndTwoRanksMatchOne) {
  const std::string yaml =
      "optim: {lr: 3.0e-3, warmup_steps: 2, schedule: constant}\n"  // constant: a 6-step run's lr = a 40-step one's
      "train: {steps: 40, batch_size: 8, eval_every: 20, log_every: 10}\n";
  auto r = train("rm", yaml, {"run.name=rm"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("rankings/s"));
  core::RunLogReader log(run("rm") / "log.h5");
  const auto loss = log.metric("train/loss");
  ASSERT_EQ(loss.values.size(), 40u);
  EXPECT_LT(loss.values.back(), 0.5 * loss.values.front());
  const auto acc = log.metric("eval/accuracy");
  ASSERT_EQ(acc.steps, (std::vector<int64_t>{20, 40}));
  EXPECT_GE(acc.values.back(), 0.9) << "held-out pairwise accuracy over the non-tied pairs (chance 0.5)";
  for (double c : log.metric("train/comparisons").values) {
    EXPECT_GE(c, 8.0);   // every ranking has at least one comparison
    EXPECT_LE(c, 48.0);  // at most 6 (K = 4 without ties) each
  }
  const core::CheckpointState state = models::load_checkpoint_at(run("rm"));
  EXPECT_GT(state.get<double>("reward.std"), 0.0);

  // Two ranks, each half of the same global batch of 8 rankings (sharded by ranking), log the same losses.
  std::vector<std::string> two = {TROUPE_MPIEXEC, "--allow-run-as-root", "--oversubscribe", "-np", "2", "--mca",
                                  "btl",          "self,vader"};
  for (const auto& a : args("rm", yaml, {"run.name=rm2", "train.steps=6"})) two.push_back(a);
  auto r2 = run_process(two, std::chrono::seconds(300));
  ASSERT_EQ(r2.exit_code, 0) << r2.output;
  core::RunLogReader log2(run("rm2") / "log.h5");
  const auto loss2 = log2.metric("train/loss");
  ASSERT_EQ(loss2.values.size(), 6u);
  for (size_t i = 0; i < 6; ++i) EXPECT_NEAR(loss.values[i], loss2.values[i], 1e-5) << i;
  EXPECT_EQ(log.metric("train/comparisons").values.at(0), log2.metric("train/comparisons").values.at(0));
  EXPECT_NEAR(log.metric("train/accuracy").values.at(0), log2.metric("train/accuracy").values.at(0), 1e-12);
}

TEST_F(RankingCli, DpoTrainsOnThePairsTheRankingsImplyAndBadRecordsNameTheirLine) {
  const std::string yaml = "optim: {lr: 1.0e-2, warmup_steps: 2}\ntrain: {steps: 4, batch_size: 8, log_every: 2}\n";
  auto all = train("dpo", yaml, {"run.name=dpo"});
  ASSERT_EQ(all.exit_code, 0) << all.output;
  EXPECT_THAT(all.output, HasSubstr("dpo data: " + std::to_string(train_.comparisons) +
                                    " pairs from the rankings (data.ranking_pairs all)"));
  EXPECT_NEAR(core::RunLogReader(run("dpo") / "log.h5").metric("train/loss").values.front(), std::log(2.0), 1e-5);
  auto adjacent = train("dpo", yaml, {"run.name=adj", "data.ranking_pairs=adjacent"});
  ASSERT_EQ(adjacent.exit_code, 0) << adjacent.output;
  EXPECT_THAT(adjacent.output, HasSubstr("(data.ranking_pairs adjacent)"));

  auto unknown = train("dpo", yaml, {"run.name=bad", "data.ranking_pairs=nearby"});
  EXPECT_EQ(unknown.exit_code, 2);
  EXPECT_THAT(unknown.output, HasSubstr("all, best_vs_rest or adjacent"));
  auto margin = train("rm", yaml, {"run.name=margin", "rm.margin=0.5"});
  EXPECT_EQ(margin.exit_code, 2);
  EXPECT_THAT(margin.output, HasSubstr("rm.margin = 0.5: expected 0 with data.format rankings"));
  auto sft = train("sft", yaml, {"run.name=sft"});
  EXPECT_EQ(sft.exit_code, 2);
  EXPECT_THAT(sft.output, HasSubstr("data.format = rankings: expected pairs: rankings are for rm and dpo only"));
  write_file(dir_ / "train.jsonl", train_.jsonl + R"({"prompt": "Q", "responses": [" a", " b", " c"], "ranks": [1, 2]})"
                                                  "\n");
  auto bad = train("rm", "train: {steps: 1}\n", {"run.name=badline"});
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_THAT(bad.output, HasSubstr("train.jsonl:33: field 'ranks' has 2 entries for 3 responses"));
}

}  // namespace
}  // namespace troupe::ranking_cli_tests
