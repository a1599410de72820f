// A very small DPO-frontier reproduction through the CLI, as experiments/dpo_frontier/run.sh runs it: a reference
// pretrained on a token file, `troupe eval exact` of the reference against itself (KL 0; its reward equals the
// expectation enumerated from its own --dump-csv), pre-tokenised preference pairs with no tokenizer, a DPO sweep
// over two betas, and exact evaluation of both: the smaller beta moves further from the reference.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "tests/support/test_support.h"

namespace troupe {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using testing::run_process;
using testing::ScratchDir;
using testing::write_file;

constexpr int kVocab = 4;
const std::vector<int> kPattern = {1, 2, 3};  // r* = fraction of the 3 response tokens matching

// A troupe token file (uint16 + sidecar) cycling 0 1 2 3 with every 5th token replaced by a pseudo-random one.
void write_token_file(const fs::path& path, int count) {
  std::string bytes;
  uint32_t state = 7;
  for (int i = 0; i < count; ++i) {
    state = state * 1103515245u + 12345u;
    const uint16_t id = static_cast<uint16_t>(i % 5 == 0 ? (state >> 16) % kVocab : i % kVocab);
    bytes.push_back(static_cast<char>(id & 0xff));
    bytes.push_back(static_cast<char>(id >> 8));
  }
  write_file(path, bytes);
  write_file(fs::path(path.string() + ".json"),
             "{\"format\": \"troupe-tokens\", \"version\": 1, \"dtype\": \"uint16\", \"count\": " +
                 std::to_string(count) + ", \"vocab_size\": " + std::to_string(kVocab) + "}\n");
}

double reward_of(const std::vector<int>& y) {
  int hits = 0;
  for (size_t i = 0; i < kPattern.size(); ++i) hits += y[i] == kPattern[i];
  return static_cast<double>(hits) / static_cast<double>(kPattern.size());
}

std::vector<int> ids_of(const std::string& spaced) {
  std::vector<int> out;
  std::istringstream in(spaced);
  for (int id; in >> id;) out.push_back(id);
  return out;
}

std::string json_ids(const std::vector<int>& ids) {
  std::string s = "[";
  for (size_t i = 0; i < ids.size(); ++i) s += (i ? ", " : "") + std::to_string(ids[i]);
  return s + "]";
}

nlohmann::json read_json(const fs::path& p) { return nlohmann::json::parse(testing::read_file(p)); }

TEST(ExactFrontierCli, ReferenceIsExactlyItselfAndSmallerDpoBetaMovesFurther) {
  ScratchDir dir;
  const std::string cli = testing::cli_path();
  const auto minutes = std::chrono::seconds(120);
  write_token_file(dir / "tokens.bin", 4000);
  write_file(dir / "ref.yaml",
             "kind: pretrain\nseed: 5\nrun: {name: ref, dir: " + dir.path().string() +
                 "}\nruntime: {threads: 1}\n"
                 "model: {n_layer: 1, n_head: 2, n_embd: 16, block_size: 8, vocab_size: 4, dropout: 0.0}\n"
                 "optim: {lr: 3.0e-3, warmup_steps: 0, schedule: constant}\n"
                 "train: {steps: 30, batch_size: 16, eval_every: 100, log_every: 10}\n"
                 "data: {train: " +
                 (dir / "tokens.bin").string() + "}\n");
  auto r = run_process({cli, "train", "pretrain", (dir / "ref.yaml").string()}, minutes);
  ASSERT_EQ(r.exit_code, 0) << r.output;

  // 1. The reference against itself: KL exactly 0, reward = Σ_y π_ref(y|x) r*(y) from its own distribution dump.
  const std::vector<std::string> exact = {"--all-prompts", "1",     "--response-length", "3",
                                          "--pattern",     "1,2,3", "--threads",         "1"};
  auto eval = [&](const fs::path& policy, const fs::path& json, std::vector<std::string> extra) {
    std::vector<std::string> a = {cli,      "eval",       "exact", "-c", policy.string(), "-r", (dir / "ref").string(),
                                  "--json", json.string()};
    a.insert(a.end(), exact.begin(), exact.end());
    a.insert(a.end(), extra.begin(), extra.end());
    return run_process(a, minutes);
  };
  r = eval(dir / "ref", dir / "ref.json", {"--beta", "0.25", "--dump-csv", (dir / "ref.csv").string()});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("3 prompts x 64 responses of 3 tokens"));
  const nlohmann::json ref = read_json(dir / "ref.json");
  EXPECT_NEAR(ref["policy"]["kl"].get<double>(), 0.0, 1e-12);
  EXPECT_LT(ref["max_mass_error"].get<double>(), 1e-5);

  std::ifstream csv(dir / "ref.csv");
  std::string line;
  std::getline(csv, line);
  EXPECT_EQ(line, "prompt,response,logp_policy,logp_reference,reward");
  double expected = 0;
  int rows = 0;
  std::vector<std::string> pairs;  // deterministic preferences: the better of two responses of one prompt wins
  std::vector<std::pair<std::string, std::vector<int>>> responses;
  while (std::getline(csv, line)) {
    std::vector<std::string> f;
    std::istringstream in(line);
    for (std::string cell; std::getline(in, cell, ',');) f.push_back(cell);
    ASSERT_EQ(f.size(), 5u) << line;
    const std::vector<int> y = ids_of(f[1]);
    EXPECT_DOUBLE_EQ(std::stod(f[4]), reward_of(y)) << line;
    EXPECT_EQ(f[2], f[3]) << "policy = reference";
    expected += std::exp(std::stod(f[3])) * reward_of(y);
    responses.emplace_back(f[0], y);
    ++rows;
  }
  EXPECT_EQ(rows, 3 * 64);
  EXPECT_NEAR(ref["policy"]["reward"].get<double>(), expected / 3.0, 1e-9);
  EXPECT_NEAR(ref["reference"]["reward"].get<double>(), expected / 3.0, 1e-9);
  ASSERT_EQ(ref["optimum"].size(), 1u);
  EXPECT_GT(ref["optimum"][0]["reward"].get<double>(), expected / 3.0);

  // 2. Pre-tokenised preference pairs (no tokenizer anywhere): response i vs response i + 17 of each prompt.
  std::string prefs;
  for (size_t i = 0; i < responses.size(); ++i) {
    const auto& [prompt, a] = responses[i];
    const auto& b = responses[(i / 64) * 64 + (i % 64 + 17) % 64].second;
    if (reward_of(a) == reward_of(b)) continue;
    const bool a_wins = reward_of(a) > reward_of(b);
    prefs += "{\"prompt_ids\": " + json_ids(ids_of(prompt)) + ", \"chosen_ids\": " + json_ids(a_wins ? a : b) +
             ", \"rejected_ids\": " + json_ids(a_wins ? b : a) + "}\n";
  }
  write_file(dir / "prefs.jsonl", prefs);
  write_file(dir / "dpo.yaml", "kind: dpo\nseed: 9\nrun: {name: dpo, dir: " + dir.path().string() +
                                   "}\nruntime: {threads: 1}\n"
                                   "init_from: " +
                                   (dir / "ref").string() +
                                   "\n"
                                   "optim: {lr: 3.0e-3, warmup_steps: 0, schedule: constant}\n"
                                   "train: {steps: 40, batch_size: 16, eval_every: 100, log_every: 20}\n"
                                   "data: {train: " +
                                   (dir / "prefs.jsonl").string() +
                                   ", max_length: 8}\n"
                                   "sweep:\n  grid:\n    dpo.beta: [0.1, 2.0]\n");
  r = run_process({cli, "run", (dir / "dpo.yaml").string()}, minutes);
  ASSERT_EQ(r.exit_code, 0) << r.output;

  // 3. Exact evaluation of both: both gain reward; the smaller beta is further from the reference.
  r = eval(dir / "dpo" / "0_beta-0.1", dir / "small.json", {});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = eval(dir / "dpo" / "1_beta-2.0", dir / "large.json", {});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const nlohmann::json small = read_json(dir / "small.json"), large = read_json(dir / "large.json");
  const double kl_small = small["policy"]["kl"].get<double>(), kl_large = large["policy"]["kl"].get<double>();
  EXPECT_GT(kl_large, 0.0);
  EXPECT_GT(kl_small, kl_large) << "beta 0.1 should move further from the reference than beta 2";
  EXPECT_GT(small["policy"]["reward"].get<double>(), expected / 3.0);
  EXPECT_GT(large["policy"]["reward"].get<double>(), expected / 3.0);
  EXPECT_NEAR(small["reference"]["kl"].get<double>(), 0.0, 1e-12);
}

}  // namespace
}  // namespace troupe
