// The `troupe` CLI as a user runs it: help, info, config errors and exit codes, and the
// quickstart run spine (log, checkpoints, signals, bit-exact resume after kill -9).
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <csignal>
#include <regex>

#include "core/checkpoint.h"
#include "core/run_dir.h"
#include "core/run_log.h"
#include "tests/support/test_support.h"

namespace troupe {
namespace {

using testing::ChildProcess;
using testing::cli_path;
using ::testing::HasSubstr;
using testing::last_step_printed;
using testing::run_process;
using testing::ScratchDir;
using testing::source_dir;
using testing::write_file;

core::CheckpointManager checkpoints_of(const std::filesystem::path& run) {
  core::CheckpointOptions options;
  options.root = run / "checkpoints";
  return core::CheckpointManager(options);
}

std::string quickstart_config() { return (source_dir() / "experiments/quickstart/config.yaml").string(); }

TEST(Cli, HelpListsEverySubcommand) {
  auto r = testing::run_troupe({"--help"});
  EXPECT_EQ(r.exit_code, 0);
  for (const char* sub : {"info", "config", "bench", "run", "log", "tokenizer"}) EXPECT_THAT(r.output, HasSubstr(sub));
  for (auto sub : std::vector<std::vector<std::string>>{{"info", "--help"},
                                                        {"config", "show", "--help"},
                                                        {"config", "check", "--help"},
                                                        {"bench", "matmul", "--help"},
                                                        {"run", "--help"},
                                                        {"log", "--help"}}) {
    auto h = testing::run_troupe(sub);
    EXPECT_EQ(h.exit_code, 0) << sub[0] << ": " << h.output;
    EXPECT_THAT(h.output, HasSubstr("Usage"));
  }
  EXPECT_NE(testing::run_troupe({}).exit_code, 0);
  EXPECT_NE(testing::run_troupe({"frobnicate"}).exit_code, 0);
}

// The torch wheel's backends: MKL for BLAS, oneDNN, the CUDA build, and what this machine can see.
TEST(Cli, InfoShowsTheTorchBuildBackendsAndVersions) {
  auto r = testing::run_troupe({"info"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("libtorch            2.15.0"));
  EXPECT_THAT(r.output, HasSubstr("torch build         CUDA 13."));
  EXPECT_THAT(r.output, ::testing::ContainsRegex("blas +MKL "));
  EXPECT_THAT(r.output, ::testing::ContainsRegex("onednn +v3\\."));
  EXPECT_THAT(r.output, ::testing::ContainsRegex("aten cpu kernels +(AVX512|AVX2|DEFAULT)"));
  EXPECT_THAT(r.output, ::testing::ContainsRegex("devices +cpu"));
  EXPECT_THAT(r.output, HasSubstr(".venv/bin/python"));
  for (const char* lib : {"hdf5", "mpi", "zeromq", "cpu features", "threads"}) EXPECT_THAT(r.output, HasSubstr(lib));
}

TEST(Cli, ConfigCheckAcceptsTheQuickstart) {
  auto r = testing::run_troupe({"config", "check", quickstart_config()});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("OK (kind quickstart)"));
}

TEST(Cli, ConfigCheckAcceptsTheRlhfQuickstart) {
  auto r = testing::run_troupe({"config", "check", (source_dir() / "experiments/quickstart/ppo.yaml").string()});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("OK (kind ppo)"));
  ScratchDir dir;
  auto bad = testing::run_troupe(
      {"config", "check", (source_dir() / "experiments/quickstart/ppo.yaml").string(), "ppo.kl_mode=both"});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_THAT(bad.output, HasSubstr("ppo.kl_mode"));
  EXPECT_THAT(bad.output, HasSubstr("reward or loss"));
}

TEST(Cli, ConfigCheckAcceptsTheExampleTrainingConfigs) {
  for (const char* kind : {"pretrain", "sft"}) {
    auto r = testing::run_troupe(
        {"config", "check", (source_dir() / "experiments/lm" / (std::string(kind) + "_tiny.yaml")).string()});
    EXPECT_EQ(r.exit_code, 0) << r.output;
    EXPECT_THAT(r.output, HasSubstr(std::string("OK (kind ") + kind + ")"));
  }
}

TEST(Cli, ConfigErrorsExitWithTwoAndNameTheFileLineAndKey) {
  ScratchDir dir;
  write_file(dir / "bad.yaml", "kind: quickstart\ntask:\n  stpes: 10\n");
  auto r = testing::run_troupe({"config", "check", (dir / "bad.yaml").string()});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.output, HasSubstr((dir / "bad.yaml").string() + ":3:3: unknown key 'task.stpes'"));
  EXPECT_THAT(r.output, HasSubstr("did you mean 'task.steps'?"));

  write_file(dir / "kind.yaml", "kind: quickstrat\n");
  r = testing::run_troupe({"config", "check", (dir / "kind.yaml").string()});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.output, HasSubstr(":1:7: kind = quickstrat: unknown experiment kind (did you mean 'quickstart'?)"));

  r = testing::run_troupe({"config", "check", (dir / "missing.yaml").string()});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.output, HasSubstr("missing.yaml: no such config file"));

  r = testing::run_troupe({"run", quickstart_config(), "task.batch_size=0", "run.dir=" + dir.path().string()});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.output, HasSubstr("override 'task.batch_size=0': task.batch_size = 0: expected"));
}

TEST(Cli, TokenizerEncodeDecodeInspect) {
  const std::string gpt2 = (source_dir() / "tests/fixtures/tokenizers/gpt2.tiktoken").string();
  const std::string encoder_dir = (source_dir() / "tests/fixtures/tokenizers/gpt2-encoder").string();
  auto r = testing::run_troupe({"tokenizer", "encode", "-t", gpt2, "Hello, world"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output, "15496,11,995\n");  // GPT-2's ids, as tiktoken gives them
  EXPECT_EQ(testing::run_troupe({"tokenizer", "encode", "-t", encoder_dir, "Hello, world"}).output, "15496,11,995\n");
  EXPECT_EQ(testing::run_troupe({"tokenizer", "encode", "-t", gpt2, "--allow-special", "<|endoftext|>"}).output,
            "50256\n");
  EXPECT_EQ(testing::run_troupe({"tokenizer", "decode", "-t", gpt2, "15496,11,995"}).output, "Hello, world\n");
  auto insp = testing::run_troupe({"tokenizer", "inspect", "-t", gpt2, "Hello, world"});
  ASSERT_EQ(insp.exit_code, 0);
  EXPECT_THAT(insp.output, HasSubstr("\"Hello\""));
  EXPECT_THAT(insp.output, HasSubstr("[995]"));
  EXPECT_THAT(insp.output, HasSubstr("12 bytes, 3 tokens"));
  auto bad = testing::run_troupe({"tokenizer", "decode", "-t", gpt2, "1,x"});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_THAT(bad.output, HasSubstr("expected comma-separated integers, got 'x'"));
  EXPECT_EQ(testing::run_troupe({"tokenizer", "encode", "-t", "/nonexistent.txt", "a"}).exit_code, 2);
}

TEST(Cli, TokenizerTrainEncodeFilesAndJsonlRoundTrip) {
  ScratchDir dir;
  std::string text;
  for (int i = 0; i < 400; ++i) {
    text += "Line " + std::to_string(i) + ": the quick brown fox jumps over the lazy dog, again and again.\n";
  }
  write_file(dir / "corpus/a.txt", text);
  write_file(dir / "corpus/b.txt", "Another document <|endoftext|> with special text.\n");
  const std::string tok = (dir / "tok.json").string();
  auto r = testing::run_troupe({"tokenizer", "train", "--input", (dir / "corpus").string(), "--vocab-size", "300",
                                "--special", "<|endoftext|>", "-o", tok, "--threads", "2"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("44 merges, vocab 300 + 1 special"));

  // Text round trip through the trained file; the special is one id only when allowed.
  auto enc = testing::run_troupe({"tokenizer", "encode", "-t", tok, "--allow-special", "the fox<|endoftext|>"});
  ASSERT_EQ(enc.exit_code, 0) << enc.output;
  EXPECT_THAT(enc.output, HasSubstr(",300\n"));
  auto dec = testing::run_troupe({"tokenizer", "decode", "-t", tok, enc.output.substr(0, enc.output.size() - 1)});
  EXPECT_EQ(dec.output, "the fox<|endoftext|>\n");

  // Files -> token file -> text again (documents separated by <|endoftext|>).
  auto files = testing::run_troupe(
      {"tokenizer", "encode", "-t", tok, "--input", (dir / "corpus").string(), "-o", (dir / "tokens.bin").string()});
  ASSERT_EQ(files.exit_code, 0) << files.output;
  EXPECT_THAT(files.output, HasSubstr("2 files"));
  auto back = testing::run_troupe({"tokenizer", "decode", "-t", tok, "--input", (dir / "tokens.bin").string()});
  ASSERT_EQ(back.exit_code, 0) << back.output;
  EXPECT_EQ(back.output, text + "<|endoftext|>Another document <|endoftext|> with special text.\n<|endoftext|>");

  // JSONL with custom field names; a malformed line names file:line and exits 2.
  write_file(dir / "in.jsonl", "{\"prompt\": \"Hello, world\", \"k\": 1}\n");
  auto js = testing::run_troupe({"tokenizer", "encode", "-t",
                                 (source_dir() / "tests/fixtures/tokenizers/gpt2.tiktoken").string(), "--jsonl",
                                 (dir / "in.jsonl").string(), "--text-field", "prompt", "--ids-field", "input_ids",
                                 "-o", (dir / "out.jsonl").string()});
  ASSERT_EQ(js.exit_code, 0) << js.output;
  EXPECT_EQ(testing::read_file(dir / "out.jsonl"),
            "{\"input_ids\":[15496,11,995],\"k\":1,\"prompt\":\"Hello, world\"}\n");
  write_file(dir / "bad.jsonl", "{\"text\": \"a\"}\n{oops\n");
  auto bad = testing::run_troupe(
      {"tokenizer", "encode", "-t", tok, "--jsonl", (dir / "bad.jsonl").string(), "-o", (dir / "o.jsonl").string()});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_THAT(bad.output, HasSubstr((dir / "bad.jsonl").string() + ":2: invalid JSON"));
  auto sep = testing::run_troupe({"tokenizer", "encode", "-t", tok, "--input", (dir / "corpus").string(), "-o",
                                  (dir / "t2.bin").string(), "--separator", "<|nope|>"});
  EXPECT_EQ(sep.exit_code, 2);
  EXPECT_THAT(sep.output, HasSubstr("known: <|endoftext|>"));
}

TEST(Cli, ConfigShowPrintsOrigins) {
  auto r = testing::run_troupe({"config", "show", quickstart_config(), "task.lr=0.5"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("lr: 0.5"));
  EXPECT_THAT(r.output, HasSubstr("# override 'task.lr=0.5'"));
  EXPECT_THAT(r.output, HasSubstr("# default"));
  EXPECT_THAT(r.output, HasSubstr("config.yaml:6:7"));  // seed: 1234
}

class QuickstartRun : public ::testing::Test {
 protected:
  std::vector<std::string> run_args(const std::string& name, std::vector<std::string> extra) const {
    std::vector<std::string> args = {cli_path(),
                                     "run",
                                     quickstart_config(),
                                     "run.dir=" + dir_.path().string(),
                                     "run.name=" + name,
                                     "run.overwrite=false",
                                     "runtime.threads=1",
                                     "task.log_every=1",
                                     "task.train_samples=512",
                                     "task.eval_every=10",
                                     "task.sample_every=20",
                                     "checkpoint.every=10",
                                     "checkpoint.keep_last=0"};
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
  }
  std::filesystem::path run_path(const std::string& name) const { return dir_ / name; }
  ScratchDir dir_;
};

TEST_F(QuickstartRun, WritesLogCheckpointsAndRefusesToClobber) {
  auto r = run_process(run_args("a", {"task.steps=30"}));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  core::RunLogReader log(run_path("a") / "log.h5");
  auto loss = log.metric("train/loss");
  ASSERT_EQ(loss.steps.size(), 30u);
  EXPECT_EQ(loss.steps.front(), 1);
  EXPECT_EQ(loss.steps.back(), 30);
  EXPECT_EQ(log.metric("eval/mse").steps, (std::vector<int64_t>{10, 20, 30}));
  EXPECT_EQ(log.attribute("status"), "finished");
  EXPECT_THAT(log.config_yaml(), HasSubstr("steps: 30"));
  EXPECT_EQ(core::RunDirectory::read_status(run_path("a")), core::RunStatus::Finished);
  auto ckpt = checkpoints_of(run_path("a"));
  EXPECT_EQ(ckpt.complete_steps(), (std::vector<int64_t>{10, 20, 30}));

  auto again = run_process(run_args("a", {"task.steps=30"}));
  EXPECT_EQ(again.exit_code, 2);
  EXPECT_THAT(again.output, HasSubstr("already finished"));
}

// Kill -9 mid-run, resume: the result must equal an uninterrupted run bit for bit.
TEST_F(QuickstartRun, ResumeAfterKillIsBitExact) {
  auto whole = run_process(run_args("whole", {"task.steps=60"}));
  ASSERT_EQ(whole.exit_code, 0) << whole.output;

  {
    ChildProcess child(run_args("cut", {"task.steps=60"}), dir_ / "cut.out");
    ASSERT_TRUE(testing::wait_until([&] { return last_step_printed(child.output()) >= 35; }, std::chrono::seconds(120)))
        << child.output();
    child.kill(SIGKILL);
    EXPECT_EQ(child.wait(std::chrono::seconds(30)), 128 + SIGKILL);
  }
  EXPECT_EQ(core::RunDirectory::read_status(run_path("cut")), core::RunStatus::Running);
  auto resumed = run_process(run_args("cut", {"task.steps=60"}));
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  EXPECT_THAT(resumed.output, HasSubstr("resuming run"));

  core::RunLogReader a(run_path("whole") / "log.h5"), b(run_path("cut") / "log.h5");
  for (const char* metric : {"train/loss", "train/lr", "train/grad_norm", "eval/mse"}) {
    auto ma = a.metric(metric), mb = b.metric(metric);
    EXPECT_EQ(ma.steps, mb.steps) << metric;
    EXPECT_EQ(ma.values, mb.values) << metric;  // exact, not approximate
  }
  bool saw_resume = false;
  for (const auto& e : b.events()) saw_resume |= e.kind == "resume";
  EXPECT_TRUE(saw_resume);

  auto ca = checkpoints_of(run_path("whole")), cb = checkpoints_of(run_path("cut"));
  auto sa = ca.load_latest(), sb = cb.load_latest();
  ASSERT_TRUE(sa && sb);
  EXPECT_EQ(sa->step, 60);
  EXPECT_EQ(sb->step, 60);
  for (const auto& [name, tensor] : sa->tensor_groups.at("model"))
    EXPECT_TRUE(torch::equal(tensor, sb->tensor_groups.at("model").at(name))) << name;
}

TEST_F(QuickstartRun, SigintCheckpointsAndExitsWith130ThenResumes) {
  {
    ChildProcess child(run_args("int", {"task.steps=100000"}), dir_ / "int.out");
    ASSERT_TRUE(testing::wait_until([&] { return last_step_printed(child.output()) >= 5; }, std::chrono::seconds(120)))
        << child.output();
    // A second process must not write the same run while the first holds it.
    auto second = run_process(run_args("int", {"task.steps=100000"}));
    EXPECT_EQ(second.exit_code, 1);
    EXPECT_THAT(second.output, HasSubstr("in use by another troupe process"));

    child.kill(SIGINT);
    EXPECT_EQ(child.wait(std::chrono::seconds(60)), 130) << child.output();
  }
  EXPECT_EQ(core::RunDirectory::read_status(run_path("int")), core::RunStatus::Interrupted);
  int64_t last = 0;
  {
    // Scoped: HDF5 caches an open file per process, so this reader must close before the
    // resumed run rewrites the log.
    core::RunLogReader log(run_path("int") / "log.h5");
    last = log.metric("train/loss").steps.back();
    EXPECT_EQ(log.attribute("status"), "interrupted");
  }
  auto ckpt = checkpoints_of(run_path("int"));
  auto state = ckpt.load_latest();
  ASSERT_TRUE(state);
  EXPECT_EQ(state->step, last);  // checkpointed exactly where it stopped

  auto resumed = run_process(run_args("int", {"task.steps=" + std::to_string(last + 3)}));
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  EXPECT_EQ(core::RunLogReader(run_path("int") / "log.h5").metric("train/loss").steps.back(), last + 3);
}

TEST_F(QuickstartRun, SigtermExitsWith143) {
  ChildProcess child(run_args("term", {"task.steps=100000"}), dir_ / "term.out");
  ASSERT_TRUE(testing::wait_until([&] { return last_step_printed(child.output()) >= 2; }, std::chrono::seconds(120)));
  child.kill(SIGTERM);
  EXPECT_EQ(child.wait(std::chrono::seconds(60)), 143) << child.output();
  EXPECT_EQ(core::RunDirectory::read_status(run_path("term")), core::RunStatus::Interrupted);
}

// A run that dies on bad input exits non-zero with a clear error and keeps its log,
// its checkpoints and a "failed" event.
TEST_F(QuickstartRun, FailedResumeKeepsLogAndCheckpoints) {
  {
    ChildProcess child(run_args("f", {"task.steps=100000"}), dir_ / "f.out");
    ASSERT_TRUE(
        testing::wait_until([&] { return last_step_printed(child.output()) >= 12; }, std::chrono::seconds(120)));
    child.kill(SIGKILL);
    child.wait(std::chrono::seconds(30));
  }
  // Resuming with a different data size cannot restore the data cursor.
  auto r = run_process(run_args("f", {"task.steps=100000", "task.train_samples=1024"}));
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_THAT(r.output, HasSubstr("data.permutation has 512 entries but task.train_samples is 1024"));
  EXPECT_EQ(core::RunDirectory::read_status(run_path("f")), core::RunStatus::Failed);
  core::RunLogReader log(run_path("f") / "log.h5");
  EXPECT_GE(log.metric("train/loss").steps.size(), 10u);
  std::string events;
  for (const auto& e : log.events()) events += std::to_string(e.step) + " " + e.kind + "; ";
  EXPECT_EQ(log.events().back().kind, "failed") << events;
  EXPECT_FALSE(checkpoints_of(run_path("f")).complete_steps().empty());
}

TEST_F(QuickstartRun, SameSeedSameRunOtherSeedOtherRun) {
  for (auto [name, seed] : std::vector<std::pair<std::string, std::string>>{{"s1", "7"}, {"s2", "7"}, {"s3", "8"}})
    ASSERT_EQ(run_process(run_args(name, {"task.steps=10", "seed=" + seed})).exit_code, 0) << name;
  auto loss = [&](const std::string& name) {
    return core::RunLogReader(run_path(name) / "log.h5").metric("train/loss").values;
  };
  EXPECT_EQ(loss("s1"), loss("s2"));
  EXPECT_NE(loss("s1"), loss("s3"));
}

TEST_F(QuickstartRun, LogCommandReadsTheRun) {
  ASSERT_EQ(run_process(run_args("l", {"task.steps=20"})).exit_code, 0);
  auto r = testing::run_troupe({"log", run_path("l").string()});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("train/loss"));
  EXPECT_THAT(r.output, HasSubstr("finished"));
  auto csv = testing::run_troupe({"log", run_path("l").string(), "--metric", "eval/mse"});
  ASSERT_EQ(csv.exit_code, 0);
  EXPECT_THAT(csv.output, HasSubstr("step,value,wall_time\n10,"));
  auto missing = testing::run_troupe({"log", (dir_ / "nope").string()});
  EXPECT_EQ(missing.exit_code, 2);  // a bad argument, as `troupe report` says too
  EXPECT_THAT(missing.output, HasSubstr("no such run log"));
}

}  // namespace
}  // namespace troupe
