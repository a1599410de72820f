// Tests for data/ranking_data.h with the GPT-2 tokenizer: a rankings file read into examples (skipped and all-tied
// records counted and left out), every malformed-record error naming file:line, truncation, and the pairs each
// data.ranking_pairs choice takes checked against hand enumerations.
#include "data/ranking_data.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>

#include "core/config_binder.h"
#include "core/errors.h"
#include "tests/support/test_support.h"
#include "tokenizers/tokenizer_file.h"

namespace troupe::data::ranking_tests {
namespace {

using ::testing::HasSubstr;
using testing::ScratchDir;
using testing::write_file;
using Pairs = std::vector<std::pair<int, int>>;

constexpr int kEot = 50256;

const tokenizers::BpeTokenizer& gpt2() {
  static const tokenizers::BpeTokenizer tok =
      tokenizers::open_tokenizer((testing::source_dir() / "tests/fixtures/tokenizers/gpt2.tiktoken").string());
  return tok;
}

TextDatasetOptions options() {
  TextDatasetOptions o;
  o.eos_id = eos_id_of(gpt2());
  o.threads = 2;
  return o;
}

std::vector<int> ids(const std::string& text) { return gpt2().encode_ordinary(text); }
std::vector<int> with_eot(const std::string& text) {
  auto v = ids(text);
  v.push_back(kEot);
  return v;
}

// A record as `troupe label` writes it.
std::string record(const std::string& prompt, const std::string& responses, const std::string& ranks) {
  return R"({"id": "r", "labeller": "ann", "prompt": ")" + prompt + R"(", "responses": )" + responses +
         R"(, "ranks": )" + ranks + R"(, "ratings": [6, 4], "flags": [[], []], "comment": "", "time": "t", )" +
         R"("seconds": 12.5})" + "\n";
}

TEST(RankingData, ReadsRankingsAndLeavesOutSkippedAndAllTiedRecords) {
  ScratchDir dir;
  write_file(dir / "r.jsonl",
             record("Q1", R"([" good", " bad", " fine", " awful"])", "[1, 2, 1, 3]") +
                 R"({"id": "s", "labeller": "bob", "prompt": "Q2", "responses": [" a", " b"], "skipped": true})" +
                 "\n\n" + record("Q3", R"([" x", " y"])", "[2, 2]") + record("Q1", R"([" good", " bad"])", "[2, 1]"));
  const RankingDataset d = load_ranking_jsonl(gpt2(), dir / "r.jsonl", options());
  ASSERT_EQ(d.examples.size(), 2u);  // the second labeller's record of Q1 is its own ranking
  EXPECT_EQ(d.stats.lines, 4);
  EXPECT_EQ(d.skipped, 1);
  EXPECT_EQ(d.all_tied, 1);
  EXPECT_EQ(d.responses, 6);
  EXPECT_EQ(d.comparisons, 5 + 1);
  const RankingExample& a = d.examples[0];
  EXPECT_EQ(a.prompt, ids("Q1"));
  ASSERT_EQ(a.responses.size(), 4u);
  EXPECT_EQ(a.responses[1], with_eot(" bad"));
  EXPECT_EQ(a.responses[3], with_eot(" awful"));
  EXPECT_EQ(a.ranks, (std::vector<int64_t>{1, 2, 1, 3}));
  EXPECT_EQ(d.examples[1].ranks, (std::vector<int64_t>{2, 1}));
  EXPECT_EQ(d.stats.tokens,
            static_cast<int64_t>(2 * ids("Q1").size() + with_eot(" good").size() * 2 + with_eot(" bad").size() * 2 +
                                 with_eot(" fine").size() + with_eot(" awful").size()));
}

TEST(RankingData, MalformedRecordsAreErrorsNamingFileAndLine) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {record("Q", R"([" a", " b", " c"])", "[1, 2]"), "field 'ranks' has 2 entries for 3 responses"},
      {record("Q", R"([" a", " b"])", "[1, 0]"), "field 'ranks'[1] must be an integer >= 1 (1 = best), got 0"},
      {record("Q", R"([" a", " b"])", "[1, 1.5]"), "'ranks'[1] must be an integer >= 1 (1 = best), got the number 1.5"},
      {record("Q", R"([" a", " b"])", R"([1, "2"])"), "'ranks'[1] must be an integer >= 1 (1 = best), got string"},
      {record("Q", R"([" a", " b"])", "3"), "field 'ranks' must be an array of integers >= 1"},
      {record("Q", R"([" a"])", "[1]"), "field 'responses' has 1 entries: a ranking needs at least 2 responses"},
      {record("Q", R"([" a", 7])", "[1, 2]"), "field 'responses'[1] must be a string, got the number 7"},
      {record("Q", R"(" a")", "[1, 2]"), "field 'responses' must be an array of strings, got string"},
      {R"({"responses": [" a", " b"], "ranks": [1, 2]})"
       "\n",
       "missing field 'prompt'"},
      {R"({"prompt": "Q", "responses": [" a", " b"]})"
       "\n",
       "missing field 'ranks'"},
      {R"({"prompt": "Q", "responses": [" a", " b"], "ranks": [1, 2], "skipped": "no"})"
       "\n",
       "field 'skipped' must be true or false"},
      {"{\"prompt\": \"Q\",\n", "invalid JSON"},
  };
  for (const auto& [line, message] : cases) {
    ScratchDir dir;
    write_file(dir / "r.jsonl", record("ok", R"([" a", " b"])", "[1, 2]") + line);
    try {
      load_ranking_jsonl(gpt2(), dir / "r.jsonl", options());
      ADD_FAILURE() << "no error for " << line;
    } catch (const DataError& e) {
      EXPECT_THAT(e.what(), HasSubstr((dir / "r.jsonl").string() + ":2: ")) << line;
      EXPECT_THAT(e.what(), HasSubstr(message)) << line;
    }
  }
}

TEST(RankingData, NothingToTrainOnIsAnErrorNamingTheFile) {
  ScratchDir dir;
  write_file(dir / "r.jsonl", R"({"prompt": "Q", "responses": [" a", " b"], "skipped": true})"
                              "\n" +
                                  record("Q", R"([" a", " b"])", "[1, 1]"));
  try {
    load_ranking_jsonl(gpt2(), dir / "r.jsonl", options());
    ADD_FAILURE() << "no error";
  } catch (const DataError& e) {
    EXPECT_THAT(e.what(), HasSubstr("r.jsonl: no rankings to train on (2 records: 1 skipped, 1 all tied"));
  }
  EXPECT_THROW(load_ranking_jsonl(gpt2(), dir / "missing.jsonl", options()), IoError);
}

TEST(RankingData, LongRankingsAreTruncatedToOneBudgetOrDropped) {
  ScratchDir dir;
  std::string long_text;
  for (int i = 0; i < 20; ++i) long_text += " word";
  write_file(dir / "r.jsonl", record("A prompt", "[\"" + long_text + "\", \" short\"]", "[1, 2]") +
                                  record("Q", R"([" a", " b"])", "[2, 1]"));
  TextDatasetOptions o = options();
  o.max_length = 8;
  const RankingDataset d = load_ranking_jsonl(gpt2(), dir / "r.jsonl", o);
  EXPECT_EQ(d.stats.truncated, 1);
  const RankingExample& ex = d.examples[0];
  for (const auto& r : ex.responses) EXPECT_LE(ex.prompt.size() + r.size(), 8u);
  EXPECT_EQ(ex.responses[1], with_eot(" short"));  // within the budget: kept whole
  o.overlong = Overlong::kDrop;
  const RankingDataset dropped = load_ranking_jsonl(gpt2(), dir / "r.jsonl", o);
  EXPECT_EQ(dropped.stats.dropped, 1);
  ASSERT_EQ(dropped.examples.size(), 1u);
  EXPECT_EQ(dropped.examples[0].prompt, ids("Q"));
}

TEST(RankingPairsTest, HeaderExampleByHand) {
  // ranks [1, 2, 1, 3] for responses a=0, b=1, c=2, d=3 (a and c tied best).
  const std::vector<int64_t> ranks = {1, 2, 1, 3};
  EXPECT_EQ(ranking_pairs(ranks, RankingPairs::kAll), (Pairs{{0, 1}, {0, 3}, {1, 3}, {2, 1}, {2, 3}}));
  EXPECT_EQ(ranking_pairs(ranks, RankingPairs::kBestVsRest), (Pairs{{0, 1}, {0, 3}, {2, 1}, {2, 3}}));
  EXPECT_EQ(ranking_pairs(ranks, RankingPairs::kAdjacent), (Pairs{{0, 1}, {1, 3}, {2, 1}}));
}

TEST(RankingPairsTest, StrictRankingOfFour) {
  // Order best to worst: 2, 0, 3, 1 (rank numbers with gaps: only the order matters).
  const std::vector<int64_t> ranks = {2, 9, 1, 5};
  EXPECT_EQ(ranking_pairs(ranks, RankingPairs::kAll), (Pairs{{0, 1}, {0, 3}, {2, 0}, {2, 1}, {2, 3}, {3, 1}}));
  EXPECT_EQ(ranking_pairs(ranks, RankingPairs::kBestVsRest), (Pairs{{2, 0}, {2, 1}, {2, 3}}));
  EXPECT_EQ(ranking_pairs(ranks, RankingPairs::kAdjacent), (Pairs{{0, 3}, {2, 0}, {3, 1}}));
  EXPECT_TRUE(ranking_pairs({3, 3, 3}, RankingPairs::kAll).empty());
}

TEST(RankingPairsTest, ExpansionGivesEachPairItsPromptAndResponses) {
  ScratchDir dir;
  write_file(dir / "r.jsonl", record("Q1", R"([" good", " bad", " fine", " awful"])", "[1, 2, 1, 3]") +
                                  record("Q2", R"([" x", " y"])", "[2, 1]"));
  const RankingDataset d = load_ranking_jsonl(gpt2(), dir / "r.jsonl", options());
  const std::vector<std::string> q1 = {" good", " bad", " fine", " awful"};
  for (const RankingPairs which : {RankingPairs::kAll, RankingPairs::kBestVsRest, RankingPairs::kAdjacent}) {
    const PreferenceDataset p = expand_rankings(d, which);
    // Hand enumeration (the header's example for Q1, then Q2's one pair y > x).
    const std::map<RankingPairs, Pairs> q1_pairs = {{RankingPairs::kAll, {{0, 1}, {0, 3}, {1, 3}, {2, 1}, {2, 3}}},
                                                    {RankingPairs::kBestVsRest, {{0, 1}, {0, 3}, {2, 1}, {2, 3}}},
                                                    {RankingPairs::kAdjacent, {{0, 1}, {1, 3}, {2, 1}}}};
    const Pairs& expected = q1_pairs.at(which);
    ASSERT_EQ(p.examples.size(), expected.size() + 1) << core::enum_name(which);
    EXPECT_EQ(p.stats.examples, static_cast<int64_t>(expected.size() + 1));
    for (size_t i = 0; i < expected.size(); ++i) {
      EXPECT_EQ(p.examples[i].prompt, ids("Q1"));
      EXPECT_EQ(p.examples[i].chosen, with_eot(q1[static_cast<size_t>(expected[i].first)])) << i;
      EXPECT_EQ(p.examples[i].rejected, with_eot(q1[static_cast<size_t>(expected[i].second)])) << i;
    }
    EXPECT_EQ(p.examples.back().prompt, ids("Q2"));
    EXPECT_EQ(p.examples.back().chosen, with_eot(" y"));
    EXPECT_EQ(p.examples.back().rejected, with_eot(" x"));
  }
}

}  // namespace
}  // namespace troupe::data::ranking_tests
