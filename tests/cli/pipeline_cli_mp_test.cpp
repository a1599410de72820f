// `kind: pipeline` and the commands the quickstart pipeline is built from, as a user runs them:
//  - `data split` cuts files at separator lines, skips binary files and duplicate links, drops documents outside
//    the word limits, and writes one file per document plus SFT pairs (first N words -> the next M) and prompts;
//  - a pipeline (split -> tokenizer -> tokens -> a 80-step pretrain -> eval policies) runs every stage, logs the
//    stage table and the summary table in log.h5, and the evaluation of a policy against itself gives KL 0;
//  - a failing stage stops the pipeline naming the stage and its log; --resume skips the finished stages;
//  - `data label-preferences` writes pairs whose chosen response scores higher under the lexicon than the rejected.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "core/run_log.h"
#include "rlhf/reward_functions.h"
#include "tests/support/test_support.h"

namespace troupe {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using testing::run_process;
using testing::ScratchDir;
using testing::write_file;

std::vector<nlohmann::json> read_jsonl(const fs::path& p) {
  std::vector<nlohmann::json> rows;
  std::ifstream in(p);
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) rows.push_back(nlohmann::json::parse(line));
  return rows;
}

size_t count_files(const fs::path& dir) {
  size_t n = 0;
  for (const auto& e : fs::directory_iterator(dir)) n += e.is_regular_file() ? 1 : 0;
  return n;
}

// Ten documents of 12 words (words w<doc>_<i>), one of 3 words, separated by '%' lines.
std::string small_corpus() {
  std::string s;
  for (int d = 0; d < 10; ++d) {
    for (int i = 0; i < 12; ++i) s += "w" + std::to_string(d) + "_" + std::to_string(i) + (i == 5 ? "\n" : " ");
    s += "\n%\n";
  }
  return s + "too short here\n%\n";
}

TEST(DataSplit, CutsAtSeparatorLinesAndWritesSftPairs) {
  ScratchDir dir("troupe-split");
  write_file(dir / "corpus/a.txt", small_corpus());
  write_file(dir / "corpus/a.dat", std::string("\0\1\2binary", 9));
  fs::create_symlink("a.txt", dir / "corpus/a.u8");  // fortunes' duplicate links: read once
  const auto r = run_process({testing::cli_path(), "data", "split", "--input", (dir / "corpus").string(), "-o",
                              (dir / "out").string(), "--min-words", "5", "--prompt-words", "3", "--response-words",
                              "4", "--val-fraction", "0.2", "--seed", "1"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("1 files (1 binary skipped): 10 documents (1 dropped by length): 8 train, 2 val; "
                                  "10 SFT pairs"));
  EXPECT_EQ(count_files(dir / "out/docs/train"), 8u);
  EXPECT_EQ(count_files(dir / "out/docs/val"), 2u);
  const auto train = read_jsonl(dir / "out/sft_train.jsonl");
  const auto val = read_jsonl(dir / "out/sft_val.jsonl");
  ASSERT_EQ(train.size(), 8u);
  ASSERT_EQ(val.size(), 2u);
  EXPECT_EQ(read_jsonl(dir / "out/prompts_train.jsonl").size(), 8u);
  std::set<std::string> docs_seen;
  for (const auto& row : train) {
    // "wD_0 wD_1 wD_2" -> " wD_3 wD_4 wD_5 wD_6" (the line break inside the document is just whitespace)
    const std::string p = row["prompt"], resp = row["response"];
    const std::string d = p.substr(1, p.find('_') - 1);
    EXPECT_EQ(p, "w" + d + "_0 w" + d + "_1 w" + d + "_2");
    EXPECT_EQ(resp, " w" + d + "_3 w" + d + "_4 w" + d + "_5 w" + d + "_6");
    docs_seen.insert(d);
  }
  for (const auto& row : val) docs_seen.insert(row["prompt"].get<std::string>().substr(1, 1));
  EXPECT_EQ(docs_seen.size(), 10u);  // every document exactly once across the split
  // A document file keeps its lines.
  const std::string first = testing::read_file(dir / "out/docs/train/000002.txt");
  EXPECT_EQ(std::count(first.begin(), first.end(), '\n'), 2);

  const auto bad = run_process({testing::cli_path(), "data", "split", "--input", (dir / "corpus").string(), "-o",
                                (dir / "out2").string(), "--min-words", "50"});
  EXPECT_EQ(bad.exit_code, 1) << bad.output;
  EXPECT_THAT(bad.output, HasSubstr("no documents left"));
}

class PipelineCli : public ::testing::Test {
 protected:
  void SetUp() override {
    // Sentences with lexicon words so that the labeller sees different scores.
    std::string corpus;
    const char* words[] = {"good", "bad", "happy", "sad", "great", "awful", "nice", "poor", "the", "a", "day", "cat"};
    for (int d = 0; d < 60; ++d) {
      for (int i = 0; i < 10; ++i) corpus += std::string(words[(d * 7 + i * 3) % 12]) + " ";
      corpus += "\n%\n";
    }
    write_file(dir_ / "corpus/c.txt", corpus);
    lexicon_ = (testing::source_dir() / "tests/fixtures/lexicons/afinn165.tsv").string();
  }

  std::string config(const std::string& input) const {
    return "kind: pipeline\n"
           "run: {name: pipe, dir: runs}\n"  // relative to this file, like every path in it
           "runtime: {threads: 1}\n"
           "summary: ${run}/summary.json\n"
           "stages:\n"
           "  - {name: corpus, command: [data, split, --input, " +
           input +
           ", -o, '${run}/data', --min-words, '4',"
           "     --prompt-words, '2', --response-words, '4', --val-fraction, '0.2']}\n"
           "  - {name: tokenizer, command: [tokenizer, train, --input, '${run}/data/docs/train', -o,"
           "     '${run}/tok.json', --vocab-size, '280', --special, '<|endoftext|>', --threads, '1']}\n"
           "  - {name: tokens, command: [data, prepare, -t, '${run}/tok.json', --input, '${run}/data/docs', -o,"
           "     '${run}/tokens', --val-fraction, '0.1', --threads, '1']}\n"
           "  - {name: pretrain, command: [train, pretrain, pretrain.yaml,"  // stages run in this file's directory
           "     'run.dir=${run}', 'data.train=${run}/tokens/train.bin']}\n"
           "  - {name: evaluate, command: [eval, policies, --reference, '${run}/pretrain', --policy,"
           "     'same=${run}/pretrain', -t, '${run}/tok.json', --prompts, '${run}/data/prompts_val.jsonl',"
           "     --samples, '3', --reward, lexicon, --lexicon, " +
           lexicon_ +
           ", -n, '6', --threads, '1',"
           "     --out, '${run}/summary.json']}\n";
  }
  void write_pretrain_config() const {
    write_file(dir_ / "pretrain.yaml",
               "kind: pretrain\nseed: 5\nrun: {name: pretrain}\nruntime: {threads: 1}\n"
               "model: {n_layer: 1, n_head: 2, n_embd: 32, block_size: 32, vocab_size: 281, dropout: 0.0}\n"
               "optim: {lr: 3.0e-3, warmup_steps: 2}\n"
               "train: {steps: 80, batch_size: 8, block_size: 16, log_every: 40}\n"
               "data: {train: tokens/train.bin}\n");
  }
  // From another working directory: every path in the configs resolves against the file that names it.
  testing::ProcessResult run(const std::vector<std::string>& extra = {}) const {
    std::vector<std::string> argv{testing::cli_path(), "run", (dir_ / "pipe.yaml").string()};
    argv.insert(argv.end(), extra.begin(), extra.end());
    fs::create_directories(dir_ / "elsewhere");
    return run_process(argv, std::chrono::seconds(240), {}, dir_ / "elsewhere");
  }
  fs::path run_dir() const { return dir_ / "runs/pipe"; }

  ScratchDir dir_{"troupe-pipeline"};
  std::string lexicon_;
};

TEST_F(PipelineCli, RunsEveryStageLogsStagesAndSummaryAndLabelsPreferences) {
  write_pretrain_config();
  write_file(dir_ / "pipe.yaml", config((dir_ / "corpus").string()));
  const auto r = run();
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("== stage 5/5 evaluate: ok"));
  EXPECT_THAT(r.output, HasSubstr("summary ("));
  for (const char* s : {"corpus", "tokenizer", "tokens", "pretrain", "evaluate"}) {
    EXPECT_TRUE(fs::exists(run_dir() / "stages" / (std::string(s) + ".done"))) << s;
    EXPECT_TRUE(fs::exists(run_dir() / "stages" / (std::string(s) + ".log"))) << s;
  }
  core::RunLogReader log(run_dir() / "log.h5");
  const auto stages = log.table("stages");
  ASSERT_EQ(stages.at("stage").size(), 5u);
  EXPECT_EQ(stages.at("stage")[3], "pretrain");
  EXPECT_EQ(stages.at("status")[4], "ok");
  EXPECT_EQ(log.metric("pipeline/stage_seconds").values.size(), 5u);
  const auto summary = log.table("summary");
  ASSERT_EQ(summary.at("policy").size(), 2u);
  EXPECT_EQ(summary.at("policy")[0], "reference");
  EXPECT_EQ(summary.at("policy")[1], "same");
  // The same model as policy and reference: the per-sequence log-ratio is 0 up to float rounding between the
  // KV-cache sampling pass and the full forward pass.
  const auto j = nlohmann::json::parse(testing::read_file(run_dir() / "summary.json"));
  EXPECT_NEAR(j["rows"][1][5].get<double>(), 0.0, 1e-3);
  EXPECT_EQ(j["rows"][0][5].get<double>(), 0.0);
  // The split's prompts carry their documents' continuations: ROUGE-L and BLEU of the samples against them.
  ASSERT_EQ(j["columns"].size(), 10u);
  EXPECT_EQ(j["columns"][8], "rougeL");
  EXPECT_EQ(j["columns"][9], "bleu");
  for (const auto& row : j["rows"]) {
    EXPECT_GE(row[8].get<double>(), 0.0);
    EXPECT_LE(row[8].get<double>(), 1.0);
    EXPECT_GE(row[9].get<double>(), 0.0);
    EXPECT_LE(row[9].get<double>(), 100.0);
  }
  EXPECT_EQ(summary.at("rougeL").size(), 2u);
  EXPECT_EQ(log.attribute("status").value_or(""), "finished");
  EXPECT_TRUE(fs::is_empty(dir_ / "elsewhere")) << "nothing is written to the working directory";

  // The labeller: chosen beats rejected under the same lexicon, for every pair written.
  const auto lp = run_process({testing::cli_path(),
                               "data",
                               "label-preferences",
                               "--policy",
                               (run_dir() / "pretrain").string(),
                               "-t",
                               (run_dir() / "tok.json").string(),
                               "--prompts",
                               (run_dir() / "data/prompts_train.jsonl").string(),
                               "-o",
                               (dir_ / "prefs").string(),
                               "--reward",
                               "lexicon",
                               "--lexicon",
                               lexicon_,
                               "-n",
                               "12",
                               "--val-fraction",
                               "0",
                               "--threads",
                               "1",
                               "--seed",
                               "2"});
  ASSERT_EQ(lp.exit_code, 0) << lp.output;
  const rlhf::LexiconSentimentReward lex(lexicon_);
  const auto pairs = read_jsonl(dir_ / "prefs/train.jsonl");
  ASSERT_GT(pairs.size(), 0u);
  for (const auto& p : pairs) {
    rlhf::RewardSample c, rj;
    c.response_text = p["chosen"];
    rj.response_text = p["rejected"];
    EXPECT_GT(lex.score(c), lex.score(rj)) << p.dump();
  }
  EXPECT_THAT(lp.output,
              HasSubstr(std::to_string(pairs.size()) + " pairs (" + std::to_string(pairs.size()) + " train, 0 val)"));
}

TEST_F(PipelineCli, AFailingStageStopsThePipelineAndResumeSkipsFinishedStages) {
  write_pretrain_config();
  write_file(dir_ / "pipe.yaml", config((dir_ / "late_corpus").string()));  // not there yet
  const auto failed = run();
  EXPECT_EQ(failed.exit_code, 1) << failed.output;
  EXPECT_THAT(failed.output, HasSubstr("stage 1 (corpus) exited with status 1"));
  EXPECT_THAT(failed.output, HasSubstr((run_dir() / "stages/corpus.log").string()));
  EXPECT_FALSE(fs::exists(run_dir() / "stages/corpus.done"));
  EXPECT_EQ(core::RunLogReader(run_dir() / "log.h5").attribute("status").value_or(""), "failed");

  fs::copy(dir_ / "corpus", dir_ / "late_corpus", fs::copy_options::recursive);
  fs::remove(dir_ / "pretrain.yaml");  // the pretrain stage will fail: stages 1-3 finish first
  const auto second = run({"--resume"});
  EXPECT_NE(second.exit_code, 0) << second.output;
  EXPECT_THAT(second.output, HasSubstr("stage 4 (pretrain) exited"));
  EXPECT_TRUE(fs::exists(run_dir() / "stages/tokens.done"));

  write_pretrain_config();
  const auto resumed = run({"--resume"});
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  for (const char* s : {"corpus", "tokenizer", "tokens"})
    EXPECT_THAT(resumed.output, HasSubstr(std::string(s) + ": done earlier, skipped"));
  EXPECT_THAT(resumed.output, HasSubstr("== stage 4/5 pretrain: ok"));
  EXPECT_EQ(core::RunLogReader(run_dir() / "log.h5").attribute("status").value_or(""), "finished");
}

}  // namespace
}  // namespace troupe
