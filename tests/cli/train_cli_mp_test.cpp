// `troupe train pretrain|sft` and `troupe eval perplexity` as a user runs them: learning on a learnable token
// stream, evaluation and export, bit-exact resume after kill -9 (dropout and gradient accumulation on), SFT on
// JSONL (text pairs and conversations through a chat template), and config errors.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/cuda.h>
#include <torch/torch.h>

#include <cmath>
#include <csignal>
#include <nlohmann/json.hpp>
#include <regex>

#include "core/checkpoint.h"
#include "core/run_dir.h"
#include "core/run_log.h"
#include "tests/support/test_support.h"
#include "tests/support/token_streams.h"
#include "tokenizers/token_file.h"

namespace troupe {
namespace {

using testing::ChildProcess;
using ::testing::HasSubstr;
using testing::last_step_printed;
using testing::run_process;
using testing::ScratchDir;
using testing::write_file;

class TrainCli : public ::testing::Test {
 protected:
  void SetUp() override {
    testing::write_learnable_tokens(dir_ / "train.bin", 20000, 1);
    testing::write_learnable_tokens(dir_ / "val.bin", 3000, 2);
    write_file(dir_ / "pre.yaml",
               "kind: pretrain\n"
               "seed: 5\n"
               "run: {dir: " +
                   dir_.path().string() +
                   "/runs}\n"
                   "runtime: {threads: 1}\n"
                   "checkpoint: {every: 10, keep_last: 0}\n"
                   "model: {n_layer: 2, n_head: 2, n_embd: 32, block_size: 32, vocab_size: 97, dropout: 0.1}\n"
                   "optim: {lr: 1.0e-2, min_lr: 1.0e-3, warmup_steps: 5}\n"
                   "train: {steps: 40, batch_size: 8, grad_accum: 2, eval_every: 10, eval_batches: 0, log_every: 1}\n"
                   "data: {train: " +
                   (dir_ / "train.bin").string() + ", val: " + (dir_ / "val.bin").string() + "}\n");
  }
  std::vector<std::string> args(const std::string& name, std::vector<std::string> extra = {}) const {
    std::vector<std::string> a = {testing::cli_path(), "train", "pretrain", (dir_ / "pre.yaml").string(),
                                  "run.name=" + name};
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  }
  std::filesystem::path run(const std::string& name) const { return dir_ / "runs" / name; }
  ScratchDir dir_;
};

TEST_F(TrainCli, PretrainLearnsEvaluatesAndExportsAModelThatEvalReproduces) {
  auto r = run_process(args("a"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("tokens/s, ETA"));
  core::RunLogReader log(run("a") / "log.h5");
  const auto loss = log.metric("train/loss");
  ASSERT_EQ(loss.steps.size(), 40u);
  EXPECT_LT(loss.values.back(), loss.values.front() - 1.5);  // ln 97 = 4.57 at the start
  const auto eval = log.metric("eval/loss");
  EXPECT_EQ(eval.steps, (std::vector<int64_t>{10, 20, 30, 40}));
  const auto ppl = log.metric("eval/ppl");
  EXPECT_NEAR(ppl.values.back(), std::exp(eval.values.back()), 1e-9);
  EXPECT_EQ(log.attribute("status"), "finished");
  ASSERT_TRUE(std::filesystem::exists(run("a") / "hf/model.safetensors"));

  // The exported model scores the validation file exactly as the last in-run evaluation did.
  auto e = run_process({testing::cli_path(), "eval", "perplexity", "-c", (run("a") / "hf").string(), "--data",
                        (dir_ / "val.bin").string(), "--batch-size", "8", "--threads", "1"});
  ASSERT_EQ(e.exit_code, 0) << e.output;
  std::smatch m;
  ASSERT_TRUE(std::regex_search(e.output, m, std::regex(R"(loss (\d+\.\d+))"))) << e.output;
  EXPECT_NEAR(std::stod(m[1]), eval.values.back(), 1e-4);
}

TEST_F(TrainCli, ResumeAfterKillIsBitExact) {
  // 120 steps, killed after step 25: the kill lands well before the end even on a fast machine.
  auto whole = run_process(args("whole", {"train.steps=120"}));
  ASSERT_EQ(whole.exit_code, 0) << whole.output;
  {
    ChildProcess child(args("cut", {"train.steps=120"}), dir_ / "cut.out");
    ASSERT_TRUE(testing::wait_until([&] { return last_step_printed(child.output()) >= 25; }, std::chrono::seconds(120)))
        << child.output();
    child.kill(SIGKILL);
    EXPECT_EQ(child.wait(std::chrono::seconds(30)), 128 + SIGKILL);
  }
  auto resumed = run_process(args("cut", {"train.steps=120"}));
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  EXPECT_THAT(resumed.output, HasSubstr("resumed at step"));
  core::RunLogReader a(run("whole") / "log.h5"), b(run("cut") / "log.h5");
  for (const char* metric : {"train/loss", "train/grad_norm", "train/lr", "eval/loss"}) {
    const auto ma = a.metric(metric), mb = b.metric(metric);
    EXPECT_EQ(ma.steps, mb.steps) << metric;
    EXPECT_EQ(ma.values, mb.values) << metric;  // exact
  }
}

TEST_F(TrainCli, SftTrainsOnResponsesAndKindMismatchesAreErrors) {
  std::string jsonl;
  for (int i = 0; i < 12; ++i) {
    jsonl += "{\"prompt\": \"Q: what is " + std::to_string(i) + " plus one?\\nA:\", \"response\": \" " +
             std::to_string(i + 1) + "\"}\n";
  }
  write_file(dir_ / "sft.jsonl", jsonl);
  write_file(dir_ / "sft.yaml",
             "kind: sft\n"
             "run: {dir: " +
                 dir_.path().string() +
                 "/runs, name: sft}\n"
                 "runtime: {threads: 1}\n"
                 "model: {n_layer: 1, n_head: 2, n_embd: 16, block_size: 32, vocab_size: 50257}\n"
                 "optim: {warmup_steps: 1}\n"
                 "train: {steps: 4, batch_size: 4, eval_every: 2, log_every: 1}\n"
                 "data: {train: " +
                 (dir_ / "sft.jsonl").string() + ", val: " + (dir_ / "sft.jsonl").string() + ", tokenizer: " +
                 (testing::source_dir() / "tests/fixtures/tokenizers/gpt2.tiktoken").string() + "}\n");
  auto r = run_process({testing::cli_path(), "train", "sft", (dir_ / "sft.yaml").string()});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("sft data: 12 examples (0 truncated, 0 dropped)"));
  core::RunLogReader log(run("sft") / "log.h5");
  EXPECT_EQ(log.metric("data/examples").values, std::vector<double>{12});
  EXPECT_EQ(log.metric("train/loss").steps.size(), 4u);
  EXPECT_EQ(log.metric("eval/loss").steps, (std::vector<int64_t>{2, 4}));

  // The run directory itself (its latest checkpoint) generates exactly what the exported HF directory does.
  const std::vector<std::string> gen = {"--prompt-ids", "48,25,644", "-n", "5", "--no-stop", "--json"};
  std::vector<std::string> from_run = {testing::cli_path(), "generate", "-c", run("sft").string()};
  std::vector<std::string> from_hf = {testing::cli_path(), "generate", "-c", (run("sft") / "hf").string()};
  from_run.insert(from_run.end(), gen.begin(), gen.end());
  from_hf.insert(from_hf.end(), gen.begin(), gen.end());
  auto g1 = run_process(from_run), g2 = run_process(from_hf);
  ASSERT_EQ(g1.exit_code, 0) << g1.output;
  ASSERT_EQ(g2.exit_code, 0) << g2.output;
  EXPECT_THAT(g1.output, HasSubstr("\"ids\""));
  EXPECT_EQ(g1.output, g2.output);

  // Data parallel SFT: two ranks, each half of the same global batch of 4, log the losses of one rank.
  std::vector<std::string> two = {
      TROUPE_MPIEXEC, "--allow-run-as-root", "--oversubscribe",   "-np",   "2",   "--mca",
      "btl",          "self,vader",          testing::cli_path(), "train", "sft", (dir_ / "sft.yaml").string(),
      "run.name=sft2"};
  auto r2 = run_process(two, std::chrono::seconds(180));
  ASSERT_EQ(r2.exit_code, 0) << r2.output;
  core::RunLogReader log2(run("sft2") / "log.h5");
  const auto la = log.metric("train/loss"), lb = log2.metric("train/loss");
  ASSERT_EQ(la.steps, lb.steps);
  for (size_t i = 0; i < la.values.size(); ++i) EXPECT_NEAR(la.values[i], lb.values[i], 1e-5) << "step " << la.steps[i];

  auto wrong = run_process({testing::cli_path(), "train", "sft", (dir_ / "pre.yaml").string()});
  EXPECT_EQ(wrong.exit_code, 2);
  EXPECT_THAT(wrong.output, HasSubstr("needs kind: sft"));
  auto bad = run_process(args("bad", {"train.grad_acum=2"}));
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_THAT(bad.output, HasSubstr("grad_accum"));
  auto missing = run_process(args("missing", {"data.train=" + (dir_ / "nope.bin").string()}));
  EXPECT_NE(missing.exit_code, 0);
  EXPECT_THAT(missing.output, HasSubstr("nope.bin"));
}

// SFT on TRL's conversational format: {"messages": [...]} lines rendered by a real chat template (Zephyr's), the
// loss on the assistant turns; without data.chat_template the first conversation line is a config error naming it.
TEST_F(TrainCli, SftTrainsOnConversationsThroughAChatTemplate) {
  std::string jsonl;
  for (int i = 0; i < 8; ++i) {
    const std::string n = std::to_string(i);
    jsonl += R"({"messages": [{"role": "user", "content": "what is )" + n +
             R"( plus one?"}, {"role": "assistant", "content": ")" + std::to_string(i + 1) +
             R"("}, {"role": "user", "content": "and plus two?"}, {"role": "assistant", "content": ")" +
             std::to_string(i + 2) + R"("}]})" + "\n";
  }
  write_file(dir_ / "chat.jsonl", jsonl);
  const std::string template_path =
      (testing::source_dir() / "tests/fixtures/chat_templates/zephyr_7b_beta.json").string();
  write_file(dir_ / "chat.yaml",
             "kind: sft\n"
             "run: {dir: " +
                 dir_.path().string() +
                 "/runs, name: chat}\n"
                 "runtime: {threads: 1}\n"
                 "model: {n_layer: 1, n_head: 2, n_embd: 16, block_size: 64, vocab_size: 50257}\n"
                 "optim: {warmup_steps: 1}\n"
                 "train: {steps: 3, batch_size: 4, eval_every: 3, log_every: 1}\n"
                 "data: {train: " +
                 (dir_ / "chat.jsonl").string() + ", val: " + (dir_ / "chat.jsonl").string() +
                 ", tokenizer: " + (testing::source_dir() / "tests/fixtures/tokenizers/gpt2.tiktoken").string() +
                 ", chat_template: " + template_path + "}\n");
  auto r = run_process({testing::cli_path(), "train", "sft", (dir_ / "chat.yaml").string()});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("sft data: 8 examples (0 truncated, 0 dropped)"));
  core::RunLogReader log(run("chat") / "log.h5");
  EXPECT_EQ(log.metric("train/loss").steps.size(), 3u);
  EXPECT_EQ(log.metric("eval/loss").steps, (std::vector<int64_t>{3}));
  EXPECT_TRUE(std::isfinite(log.metric("eval/loss").values.back()));

  auto packed = run_process(
      {testing::cli_path(), "train", "sft", (dir_ / "chat.yaml").string(), "run.name=packed", "data.pack=true"});
  ASSERT_EQ(packed.exit_code, 0) << packed.output;
  core::RunLogReader packed_log(run("packed") / "log.h5");
  // Packing changes the layout, not the loss: the first step's loss (same weights, same batch) agrees.
  EXPECT_NEAR(packed_log.metric("train/loss").values.front(), log.metric("train/loss").values.front(), 1e-4);

  auto missing = run_process(
      {testing::cli_path(), "train", "sft", (dir_ / "chat.yaml").string(), "run.name=none", "data.chat_template="});
  EXPECT_EQ(missing.exit_code, 2) << missing.output;
  EXPECT_THAT(missing.output, HasSubstr((dir_ / "chat.jsonl").string() + ":1"));
  EXPECT_THAT(missing.output, HasSubstr("set data.chat_template"));
}

// Data parallelism: mpirun -np 2 with the same global batch (each rank takes half) gives the losses of one rank.
TEST_F(TrainCli, SftRunsHarnessTasksDuringTrainingAsEvalRunScoresTheResult) {
  std::string jsonl, docs;
  for (int i = 0; i < 12; ++i) {
    jsonl += "{\"prompt\": \"Q: what is " + std::to_string(i) + " plus one?\\nA:\", \"response\": \" " +
             std::to_string(i + 1) + "\"}\n";
    docs += "{\"q\": \"what is " + std::to_string(i) + " plus one?\", \"choices\": [\"" + std::to_string(i + 1) +
            "\", \"" + std::to_string(i + 7) + "\"], \"answer\": 0}\n";
  }
  write_file(dir_ / "sft.jsonl", jsonl);
  write_file(dir_ / "docs.jsonl", docs);
  write_file(dir_ / "task.yaml",
             "task: plus_one\ndataset_path: json\ndataset_kwargs: {data_files: {test: docs.jsonl}}\n"
             "output_type: multiple_choice\ndoc_to_text: \"Q: {{q}}\\nA:\"\n"
             "doc_to_choice: choices\ndoc_to_target: answer\n");
  const std::string tok = (testing::source_dir() / "tests/fixtures/tokenizers/gpt2.tiktoken").string();
  write_file(dir_ / "sft.yaml", "kind: sft\nrun: {dir: " + dir_.path().string() +
                                    "/runs, name: sfteval}\nruntime: {threads: 1}\n"
                                    "model: {n_layer: 1, n_head: 2, n_embd: 16, block_size: 32, vocab_size: 50257}\n"
                                    "optim: {warmup_steps: 1}\ntrain: {steps: 4, batch_size: 4, eval_every: 2}\n"
                                    "eval: {tasks: task.yaml, every: 2, limit: 10}\n"
                                    "data: {train: sft.jsonl, val: sft.jsonl, tokenizer: " +
                                    tok + "}\n");
  auto r = run_process({testing::cli_path(), "train", "sft", (dir_ / "sft.yaml").string()});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  core::RunLogReader log(run("sfteval") / "log.h5");
  const auto acc = log.metric("eval/plus_one/acc");
  ASSERT_EQ(acc.steps, (std::vector<int64_t>{2, 4}));
  // The last evaluation saw the final weights: `troupe eval run` on the exported model gives the same numbers.
  auto e = run_process({testing::cli_path(), "eval", "run", (dir_ / "task.yaml").string(), "-c",
                        (run("sfteval") / "hf").string(), "-t", tok, "--limit", "10", "--quiet", "-o",
                        (dir_ / "evalout").string()});
  ASSERT_EQ(e.exit_code, 0) << e.output;
  const auto results = nlohmann::json::parse(testing::read_file(dir_ / "evalout/results.json"));
  EXPECT_DOUBLE_EQ(results["results"]["plus_one"]["metrics"]["acc"].get<double>(), acc.values[1]);
  EXPECT_DOUBLE_EQ(results["results"]["plus_one"]["metrics"]["acc_norm"].get<double>(),
                   log.metric("eval/plus_one/acc_norm").values[1]);

  // A task file that does not parse stops the run before it trains, naming the file and line.
  write_file(dir_ / "bad_task.yaml", "task: x\noutput_type: ranking\n");
  auto bad = run_process({testing::cli_path(), "train", "sft", (dir_ / "sft.yaml").string(),
                          "eval.tasks=" + (dir_ / "bad_task.yaml").string(), "run.name=sftbad"});
  EXPECT_EQ(bad.exit_code, 2) << bad.output;
  EXPECT_THAT(bad.output, HasSubstr("bad_task.yaml:2"));
}

TEST_F(TrainCli, TwoMpiRanksMatchOneRankOnTheSameGlobalBatch) {
  const std::vector<std::string> common = {"train.steps=12", "model.dropout=0.0", "checkpoint.every=6"};
  std::vector<std::string> one = args("one", common);
  auto r1 = run_process(one);
  ASSERT_EQ(r1.exit_code, 0) << r1.output;
  std::vector<std::string> two = {TROUPE_MPIEXEC,
                                  "--allow-run-as-root",
                                  "--oversubscribe",
                                  "-np",
                                  "2",
                                  "--mca",
                                  "btl",
                                  "self,vader",
                                  "-x",
                                  "OMPI_MCA_rmaps_base_oversubscribe=1"};
  const auto rest = args("two", common);
  two.insert(two.end(), rest.begin(), rest.end());
  auto r2 = run_process(two, std::chrono::seconds(180));
  ASSERT_EQ(r2.exit_code, 0) << r2.output;
  EXPECT_THAT(r2.output, HasSubstr("on 2 rank(s)"));
  core::RunLogReader a(run("one") / "log.h5"), b(run("two") / "log.h5");
  const auto la = a.metric("train/loss"), lb = b.metric("train/loss");
  ASSERT_EQ(la.steps, lb.steps);
  for (size_t i = 0; i < la.values.size(); ++i) EXPECT_NEAR(la.values[i], lb.values[i], 1e-5) << "step " << la.steps[i];
  const auto ea = a.metric("eval/loss"), eb = b.metric("eval/loss");
  ASSERT_EQ(ea.steps, eb.steps);
  EXPECT_NEAR(ea.values.back(), eb.values.back(), 1e-4);
  EXPECT_EQ(b.attribute("status"), "finished");
}

// Asking for a GPU where there is none is a config error naming the key, before any run directory is made.
TEST_F(TrainCli, AGpuDeviceWithoutAGpuIsAConfigError) {
  if (torch::cuda::device_count() > 0) GTEST_SKIP() << "a GPU is visible here: runtime.device=cuda is valid";
  auto r = run_process(args("nogpu", {"runtime.device=cuda", "train.steps=2"}));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.output, HasSubstr("runtime.device: 'cuda' asks for a GPU but this process sees none"));
  EXPECT_FALSE(std::filesystem::exists(run("nogpu")));
  auto bad = run_process(args("badspec", {"runtime.device=gpu0"}));
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_THAT(bad.output, HasSubstr("runtime.device"));
  EXPECT_THAT(bad.output, HasSubstr("one of auto, cpu, cuda, cuda:N"));
}

}  // namespace
}  // namespace troupe
