// Tests for data/text_datasets.h with the GPT-2 tokenizer: SFT and preference examples and their labels checked
// position by position, truncation and drop counts, every malformed-line error (file:line), and the resumable
// shuffling epoch iterator.
#include "data/text_datasets.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <set>

#include "core/errors.h"
#include "tests/support/test_support.h"
#include "tokenizers/tokenizer_file.h"

namespace troupe::data {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using testing::ScratchDir;
using testing::write_file;
using tokenizers::BpeTokenizer;
using tokenizers::open_tokenizer;

constexpr int kEot = 50256;
constexpr int kPad = 50256;  // GPT-2 has no pad token; padding is masked out anyway
constexpr int64_t kI = kIgnoreIndex;

const BpeTokenizer& gpt2() {
  static const BpeTokenizer tok =
      open_tokenizer((testing::source_dir() / "tests/fixtures/tokenizers/gpt2.tiktoken").string());
  return tok;
}

TextDatasetOptions gpt2_options() {
  TextDatasetOptions o;
  o.eos_id = eos_id_of(gpt2());
  o.threads = 2;
  return o;
}

std::vector<int64_t> row(const at::Tensor& t, int64_t b) {
  const at::Tensor r = t[b].contiguous();
  return std::vector<int64_t>(r.data_ptr<int64_t>(), r.data_ptr<int64_t>() + r.numel());
}

std::string repeat(const std::string& s, int n) {
  std::string out;
  for (int i = 0; i < n; ++i) out += s;
  return out;
}

TEST(TextDatasets, SftExampleIsPromptThenResponseThenEosWithThePromptMasked) {
  ScratchDir dir;
  write_file(dir / "sft.jsonl",
             "{\"prompt\": \"Hello,\", \"response\": \" world\"}\n"
             "\n"
             "{\"prompt\": \"Hi\", \"response\": \" there, my friend\", \"extra\": 3}\n");
  ASSERT_EQ(eos_id_of(gpt2()), kEot);
  const SftDataset data = load_sft_jsonl(gpt2(), dir / "sft.jsonl", gpt2_options());
  ASSERT_EQ(data.examples.size(), 2u);
  EXPECT_EQ(data.examples[0].prompt, (std::vector<int>{15496, 11}));
  EXPECT_EQ(data.examples[0].response, (std::vector<int>{995, kEot}));
  EXPECT_EQ(data.stats.lines, 2);  // the blank line is skipped
  EXPECT_EQ(data.stats.examples, 2);
  EXPECT_EQ(data.stats.truncated, 0);
  EXPECT_EQ(data.stats.dropped, 0);

  const std::vector<int> hi = gpt2().encode_ordinary("Hi");
  std::vector<int> there = gpt2().encode_ordinary(" there, my friend");
  there.push_back(kEot);
  EXPECT_EQ(data.examples[1].prompt, hi);
  EXPECT_EQ(data.examples[1].response, there);
  EXPECT_EQ(data.stats.tokens, static_cast<int64_t>(4 + hi.size() + there.size()));

  const TextBatch batch = collate_sft(data.examples, kPad);
  const int64_t L = static_cast<int64_t>(hi.size() + there.size());
  ASSERT_EQ(batch.input_ids.sizes(), (std::vector<int64_t>{2, L}));
  for (const auto* t : {&batch.input_ids, &batch.attention_mask, &batch.labels}) {
    EXPECT_EQ(t->scalar_type(), torch::kInt64);
    EXPECT_EQ(t->sizes(), batch.input_ids.sizes());
  }
  std::vector<int64_t> ids0{15496, 11, 995, kEot}, mask0{1, 1, 1, 1}, labels0{kI, kI, 995, kEot};
  for (int64_t t = 4; t < L; ++t) {
    ids0.push_back(kPad);
    mask0.push_back(0);
    labels0.push_back(kI);
  }
  EXPECT_EQ(row(batch.input_ids, 0), ids0);
  EXPECT_EQ(row(batch.attention_mask, 0), mask0);
  EXPECT_EQ(row(batch.labels, 0), labels0);
  // Row 1 fills L exactly: prompt masked, every response id (and EOS) a label.
  std::vector<int64_t> ids1(hi.begin(), hi.end()), labels1(hi.size(), kI);
  ids1.insert(ids1.end(), there.begin(), there.end());
  labels1.insert(labels1.end(), there.begin(), there.end());
  EXPECT_EQ(row(batch.input_ids, 1), ids1);
  EXPECT_EQ(row(batch.labels, 1), labels1);
  EXPECT_EQ(batch.attention_mask[1].sum().item<int64_t>(), L);
}

TEST(TextDatasets, EosIsOptionalAndFieldNamesAreConfigurable) {
  ScratchDir dir;
  write_file(dir / "q.jsonl", "{\"q\": \"Hello,\", \"a\": \" world\"}\n");
  TextDatasetOptions o;
  o.prompt_field = "q";
  o.response_field = "a";
  const SftDataset data = load_sft_jsonl(gpt2(), dir / "q.jsonl", o);
  EXPECT_EQ(data.examples[0].response, (std::vector<int>{995}));
  // Special-token text is ordinary text unless allowed.
  write_file(dir / "s.jsonl", "{\"q\": \"x\", \"a\": \"<|endoftext|>\"}\n");
  EXPECT_GT(load_sft_jsonl(gpt2(), dir / "s.jsonl", o).examples[0].response.size(), 1u);
  o.allow_special = true;
  EXPECT_EQ(load_sft_jsonl(gpt2(), dir / "s.jsonl", o).examples[0].response, (std::vector<int>{kEot}));
}

// " a" and " b" are single GPT-2 tokens, so " a" * n is n tokens.
TEST(TextDatasets, OverlongExamplesAreTruncatedOrDroppedAndCounted) {
  const int a = gpt2().encode_ordinary(" a").at(0), b = gpt2().encode_ordinary(" b").at(0);
  ScratchDir dir;
  auto line = [](const std::string& p, const std::string& r) {
    return "{\"prompt\": \"" + p + "\", \"response\": \"" + r + "\"}\n";
  };
  write_file(dir / "sft.jsonl", line(repeat(" a", 10), repeat(" b", 10)) +  // 10 + 11 > 8: both cut
                                    line(repeat(" a", 2), " b") +           // 2 + 2 fits
                                    line(" a", repeat(" b", 20)));          // 1 + 21: response cut
  TextDatasetOptions o = gpt2_options();
  o.max_length = 8;  // max_prompt_length 0 -> 4
  const SftDataset cut = load_sft_jsonl(gpt2(), dir / "sft.jsonl", o);
  ASSERT_EQ(cut.examples.size(), 3u);
  // Prompt keeps its last max(8 - 11, 4) = 4 tokens, the response its first 8 - 4 = 4 (the EOS is lost).
  EXPECT_EQ(cut.examples[0].prompt, std::vector<int>(4, a));
  EXPECT_EQ(cut.examples[0].response, std::vector<int>(4, b));
  EXPECT_EQ(cut.examples[1].response, (std::vector<int>{b, kEot}));
  EXPECT_EQ(cut.examples[2].prompt, std::vector<int>(1, a));
  EXPECT_EQ(cut.examples[2].response, std::vector<int>(7, b));
  EXPECT_EQ(cut.stats.examples, 3);
  EXPECT_EQ(cut.stats.truncated, 2);
  EXPECT_EQ(cut.stats.dropped, 0);
  EXPECT_EQ(cut.stats.tokens, 8 + 4 + 8);

  o.overlong = Overlong::kDrop;
  const SftDataset dropped = load_sft_jsonl(gpt2(), dir / "sft.jsonl", o);
  ASSERT_EQ(dropped.examples.size(), 1u);
  EXPECT_EQ(dropped.examples[0].prompt, std::vector<int>(2, a));
  EXPECT_EQ(dropped.stats.examples, 1);
  EXPECT_EQ(dropped.stats.truncated, 0);
  EXPECT_EQ(dropped.stats.dropped, 2);
  EXPECT_EQ(dropped.stats.tokens, 4);

  o.max_length = 3;  // everything is too long: nothing left is an error, not an empty dataset
  try {
    load_sft_jsonl(gpt2(), dir / "sft.jsonl", o);
    ADD_FAILURE() << "no DataError";
  } catch (const DataError& e) {
    EXPECT_THAT(e.what(), HasSubstr((dir / "sft.jsonl").string()));
    EXPECT_THAT(e.what(), HasSubstr("dropped"));
  }
  o.max_length = 8;
  o.max_prompt_length = 8;
  EXPECT_THROW(load_sft_jsonl(gpt2(), dir / "sft.jsonl", o), ConfigError);
  o.max_prompt_length = 0;
  o.max_length = -1;
  EXPECT_THROW(load_sft_jsonl(gpt2(), dir / "sft.jsonl", o), ConfigError);
}

TEST(TextDatasets, PreferencePairsShareThePromptAndPadToOneLength) {
  ScratchDir dir;
  write_file(dir / "pref.jsonl",
             "{\"prompt\": \"Hello,\", \"chosen\": \" world\", \"rejected\": \" a b c\"}\n"
             "{\"prompt\": \" a a a a a a a a\", \"chosen\": \" b b b b b b\", \"rejected\": \" b\"}\n");
  TextDatasetOptions o = gpt2_options();
  o.max_length = 10;  // second pair: 8 + 7 > 10 -> prompt keeps max(10 - 7, 5) = 5, responses 5
  const PreferenceDataset data = load_preference_jsonl(gpt2(), dir / "pref.jsonl", o);
  ASSERT_EQ(data.examples.size(), 2u);
  const int a = gpt2().encode_ordinary(" a").at(0), b = gpt2().encode_ordinary(" b").at(0),
            c = gpt2().encode_ordinary(" c").at(0);
  const PreferenceExample& first = data.examples[0];
  EXPECT_EQ(first.prompt, (std::vector<int>{15496, 11}));
  EXPECT_EQ(first.chosen, (std::vector<int>{995, kEot}));
  EXPECT_EQ(first.rejected, (std::vector<int>{a, b, c, kEot}));
  const PreferenceExample& second = data.examples[1];
  EXPECT_EQ(second.prompt, std::vector<int>(5, a));
  EXPECT_EQ(second.chosen, std::vector<int>(5, b));
  EXPECT_EQ(second.rejected, (std::vector<int>{b, kEot}));
  EXPECT_EQ(data.stats.truncated, 1);
  EXPECT_EQ(data.stats.tokens, (2 + 2 + 4) + (5 + 5 + 2));

  const PreferenceBatch batch = collate_preference(data.examples, kPad);
  ASSERT_EQ(batch.chosen.input_ids.sizes(), (std::vector<int64_t>{2, 10}));
  ASSERT_EQ(batch.rejected.input_ids.sizes(), (std::vector<int64_t>{2, 10}));
  EXPECT_EQ(row(batch.chosen.input_ids, 0),
            (std::vector<int64_t>{15496, 11, 995, kEot, kPad, kPad, kPad, kPad, kPad, kPad}));
  EXPECT_EQ(row(batch.chosen.labels, 0), (std::vector<int64_t>{kI, kI, 995, kEot, kI, kI, kI, kI, kI, kI}));
  EXPECT_EQ(row(batch.chosen.attention_mask, 0), (std::vector<int64_t>{1, 1, 1, 1, 0, 0, 0, 0, 0, 0}));
  EXPECT_EQ(row(batch.rejected.input_ids, 0), (std::vector<int64_t>{15496, 11, a, b, c, kEot, kPad, kPad, kPad, kPad}));
  EXPECT_EQ(row(batch.rejected.labels, 0), (std::vector<int64_t>{kI, kI, a, b, c, kEot, kI, kI, kI, kI}));
  EXPECT_EQ(row(batch.rejected.labels, 1), (std::vector<int64_t>{kI, kI, kI, kI, kI, b, kEot, kI, kI, kI}));
  EXPECT_EQ(row(batch.chosen.labels, 1), (std::vector<int64_t>{kI, kI, kI, kI, kI, b, b, b, b, b}));
  EXPECT_EQ(batch.chosen.attention_mask[1].sum().item<int64_t>(), 10);
  EXPECT_THROW(collate_preference({}, kPad), ConfigError);
  EXPECT_THROW(collate_sft({}, kPad), ConfigError);
}

// Hand-packed: capacity 6; examples of 4, 3, 5 and 2 tokens need 3, 2, 4 and 1 positions: first-fit puts the first
// two in row 0 (5 of 6), the third in row 1, the fourth in row 0's last position.
TEST(PackSft, PlacesExamplesFirstFitWithShiftedTargetsAndRestartingPositions) {
  const std::vector<SftExample> examples = {
      {{10, 11}, {12, 13}, {}}, {{20}, {21, 22}, {}}, {{30, 31, 32}, {33, 34}, {}}, {{}, {40, 41}, {}}};
  const PackedSftBatch p = pack_sft(examples, 6, kPad);
  const int64_t I = kIgnoreIndex;
  ASSERT_EQ(p.inputs.sizes(), (std::vector<int64_t>{2, 6}));
  EXPECT_EQ(row(p.inputs, 0), (std::vector<int64_t>{10, 11, 12, 20, 21, 40}));
  EXPECT_EQ(row(p.targets, 0), (std::vector<int64_t>{I, 12, 13, 21, 22, 41}));
  EXPECT_EQ(row(p.positions, 0), (std::vector<int64_t>{0, 1, 2, 0, 1, 0}));
  EXPECT_EQ(row(p.segment_ids, 0), (std::vector<int64_t>{1, 1, 1, 2, 2, 4}));
  EXPECT_EQ(row(p.inputs, 1), (std::vector<int64_t>{30, 31, 32, 33, kPad, kPad}));
  EXPECT_EQ(row(p.targets, 1), (std::vector<int64_t>{I, I, 33, 34, I, I}));
  EXPECT_EQ(row(p.positions, 1), (std::vector<int64_t>{0, 1, 2, 3, 0, 0}));
  EXPECT_EQ(row(p.segment_ids, 1), (std::vector<int64_t>{3, 3, 3, 3, 0, 0}));
  // The targets are the padded batch's shifted labels, example by example: the same tokens carry a loss.
  const TextBatch padded = collate_sft(examples, kPad);
  EXPECT_EQ((p.targets != I).sum().item<int64_t>(), (padded.labels.slice(1, 1) != I).sum().item<int64_t>());
  EXPECT_THROW(pack_sft(examples, 3, kPad), ConfigError);  // the third example needs 4 positions
  EXPECT_THROW(pack_sft({}, 6, kPad), ConfigError);
}

// Loads `text` as SFT (or preference) data and expects a DataError naming `where` and saying `what`.
void expect_bad(const std::string& text, int line, const std::string& what, bool preference = false) {
  ScratchDir dir;
  const fs::path path = dir / "bad.jsonl";
  write_file(path, text);
  const std::string where = path.string() + (line > 0 ? ":" + std::to_string(line) : "");
  try {
    if (preference)
      load_preference_jsonl(gpt2(), path, gpt2_options());
    else
      load_sft_jsonl(gpt2(), path, gpt2_options());
    ADD_FAILURE() << "no DataError for " << text;
  } catch (const DataError& e) {
    EXPECT_THAT(e.what(), HasSubstr(where)) << text;
    EXPECT_THAT(e.what(), HasSubstr(what)) << text;
  }
}

TEST(TextDatasets, BadLinesAreDataErrorsNamingFileAndLine) {
  const std::string good = "{\"prompt\": \"p\", \"response\": \"r\"}\n";
  expect_bad(good + "\n{\"prompt\": \"p\", \"response\": \n", 3, "invalid JSON");
  // A number beyond double range is nlohmann's out_of_range, not a parse_error (found by fuzz/fuzz_jsonl).
  expect_bad(good + "{\"prompt\": \"p\", \"response\": \"r\", \"x\": 999e991}\n", 2, "invalid JSON");
  expect_bad("1e999\n", 1, "invalid JSON", true);
  expect_bad(good + "[1, 2]\n", 2, "expected a JSON object");
  expect_bad(good + "\"text\"\n", 2, "expected a JSON object");
  expect_bad(good + good + "{\"prompt\": \"p\"}\n", 3, "missing field 'response'");
  expect_bad("{\"prompt\": 3, \"response\": \"r\"}\n", 1, "field 'prompt' must be a string");
  expect_bad("{\"prompt\": \"p\", \"response\": null}\n", 1, "field 'response' must be a string");
  expect_bad("", 0, "no examples");
  expect_bad("\n  \n\n", 0, "no examples");
  expect_bad("{\"prompt\": \"p\", \"chosen\": \"c\"}\n", 1, "missing field 'rejected'", true);
  expect_bad("{\"prompt\": \"p\", \"chosen\": \"c\", \"rejected\": [\"r\"]}\n", 1, "field 'rejected' must be a string",
             true);
  // Without an EOS an empty response has nothing to learn from.
  ScratchDir dir;
  write_file(dir / "e.jsonl", good + "{\"prompt\": \"p\", \"response\": \"\"}\n");
  try {
    load_sft_jsonl(gpt2(), dir / "e.jsonl", TextDatasetOptions{});
    ADD_FAILURE() << "no DataError";
  } catch (const DataError& e) {
    EXPECT_THAT(e.what(), HasSubstr((dir / "e.jsonl").string() + ":2"));
  }
  EXPECT_THROW(load_sft_jsonl(gpt2(), dir / "missing.jsonl", TextDatasetOptions{}), IoError);
}

TEST(TextDatasets, ShufflerVisitsEveryIndexOncePerEpochDeterministically) {
  EpochShuffler a(10, 3, 5), b(10, 3, 5), c(10, 3, 6);
  EXPECT_EQ(a.batches_per_epoch(), 4u);
  std::vector<int64_t> epoch0, epoch1;
  for (int i = 0; i < 4; ++i) {
    auto batch = a.next();
    EXPECT_EQ(batch.size(), i < 3 ? 3u : 1u);
    EXPECT_EQ(batch, b.next());
    epoch0.insert(epoch0.end(), batch.begin(), batch.end());
  }
  EXPECT_EQ(a.epoch(), 1u);
  for (int i = 0; i < 4; ++i) {
    auto batch = a.next();
    epoch1.insert(epoch1.end(), batch.begin(), batch.end());
  }
  EXPECT_EQ(epoch0, a.order(0));
  EXPECT_EQ(epoch1, a.order(1));
  EXPECT_EQ(std::set<int64_t>(epoch0.begin(), epoch0.end()).size(), 10u);
  EXPECT_EQ(std::set<int64_t>(epoch1.begin(), epoch1.end()).size(), 10u);
  EXPECT_NE(epoch0, epoch1);
  EXPECT_NE(a.order(0), c.order(0));
  EXPECT_EQ(EpochShuffler(4, 2, 5, /*shuffle=*/false).order(3), (std::vector<int64_t>{0, 1, 2, 3}));

  EpochShuffler d(10, 3, 5, true, /*drop_last=*/true);
  EXPECT_EQ(d.batches_per_epoch(), 3u);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(d.next().size(), 3u);
  EXPECT_EQ(d.epoch(), 1u);
  EXPECT_THROW(EpochShuffler(0, 1, 1), ConfigError);
  EXPECT_THROW(EpochShuffler(3, 0, 1), ConfigError);
  EXPECT_THROW(EpochShuffler(3, 4, 1, true, true), ConfigError);
}

TEST(TextDatasets, RestoredShufflerContinuesExactly) {
  EpochShuffler a(7, 2, 99);
  for (int i = 0; i < 5; ++i) a.next();  // into the second epoch
  const ShuffleState saved = a.state();
  EXPECT_EQ(saved.epoch, 1u);
  EXPECT_EQ(saved.cursor, 2u);
  std::vector<std::vector<int64_t>> expected;
  for (int i = 0; i < 9; ++i) expected.push_back(a.next());
  EpochShuffler b(7, 2, 99);
  b.restore(ShuffleState::from_vector(saved.to_vector()));
  for (const auto& e : expected) EXPECT_EQ(b.next(), e);
  EXPECT_EQ(b.state(), a.state());
  EXPECT_THROW(b.restore({0, 8}), DataError);
  EXPECT_THROW(ShuffleState::from_vector({1}), DataError);
}

TEST(TextDatasets, PreferenceIdsAreTakenVerbatimWithoutEosOrTokenizer) {
  ScratchDir dir;
  write_file(dir / "ids.jsonl",
             "{\"prompt_ids\": [3, 1], \"chosen_ids\": [3, 5, 1, 6], \"rejected_ids\": [0, 5, 2, 2]}\n\n"
             "{\"prompt_ids\": [7], \"chosen_ids\": [1], \"rejected_ids\": [2, 7]}\n");
  TextDatasetOptions o;
  o.eos_id = 7;  // would be appended to text responses; never to ids
  o.vocab_size = 8;
  const PreferenceDataset data = load_preference_jsonl(nullptr, dir / "ids.jsonl", o);
  ASSERT_EQ(data.examples.size(), 2u);
  EXPECT_EQ(data.examples[0].prompt, (std::vector<int>{3, 1}));
  EXPECT_EQ(data.examples[0].chosen, (std::vector<int>{3, 5, 1, 6}));
  EXPECT_EQ(data.examples[0].rejected, (std::vector<int>{0, 5, 2, 2}));
  EXPECT_EQ(data.examples[1].rejected, (std::vector<int>{2, 7}));
  EXPECT_EQ(data.stats.lines, 2);
  EXPECT_EQ(data.stats.tokens, 10 + 4);
  // Collated exactly like text pairs: prompt masked, response labelled, padded to the longest.
  const PreferenceBatch b = collate_preference(data.examples, 0);
  EXPECT_EQ(row(b.chosen.labels, 0), (std::vector<int64_t>{kI, kI, 3, 5, 1, 6}));
  EXPECT_EQ(row(b.rejected.input_ids, 1), (std::vector<int64_t>{7, 2, 7, 0, 0, 0}));
  // Ids lines are truncated like text lines: max_length 4 keeps prompt [3, 1] (budget 2) and 2 response tokens.
  o.max_length = 4;
  const PreferenceDataset cut = load_preference_jsonl(nullptr, dir / "ids.jsonl", o);
  EXPECT_EQ(cut.stats.truncated, 1);
  EXPECT_EQ(cut.examples[0].chosen, (std::vector<int>{3, 5}));
}

TEST(TextDatasets, PreferenceFilesMayMixTextLinesAndIdsLines) {
  ScratchDir dir;
  write_file(dir / "mixed.jsonl",
             "{\"prompt\": \"Hello,\", \"chosen\": \" world\", \"rejected\": \" you\"}\n"
             "{\"prompt_ids\": [15496], \"chosen_ids\": [995], \"rejected_ids\": [345]}\n");
  TextDatasetOptions o = gpt2_options();
  o.vocab_size = 50257;
  const PreferenceDataset data = load_preference_jsonl(&gpt2(), dir / "mixed.jsonl", o);
  ASSERT_EQ(data.examples.size(), 2u);
  EXPECT_EQ(data.examples[0].chosen, (std::vector<int>{995, kEot}));  // text: EOS appended
  EXPECT_EQ(data.examples[1].chosen, (std::vector<int>{995}));        // ids: verbatim
  // Without a tokenizer the text line is the error, naming its line.
  try {
    load_preference_jsonl(nullptr, dir / "mixed.jsonl", o);
    ADD_FAILURE() << "no DataError";
  } catch (const DataError& e) {
    EXPECT_THAT(e.what(), HasSubstr((dir / "mixed.jsonl").string() + ":1"));
    EXPECT_THAT(e.what(), HasSubstr("need a tokenizer"));
  }
}

// Loads `text` as ids preference data over an 8-id vocabulary and expects a DataError naming file:line and `what`.
void expect_bad_ids(const std::string& text, int line, const std::string& what) {
  ScratchDir dir;
  const fs::path path = dir / "bad.jsonl";
  write_file(path, text);
  TextDatasetOptions o;
  o.vocab_size = 8;
  try {
    load_preference_jsonl(nullptr, path, o);
    ADD_FAILURE() << "no DataError for " << text;
  } catch (const DataError& e) {
    EXPECT_THAT(e.what(), HasSubstr(path.string() + ":" + std::to_string(line))) << text;
    EXPECT_THAT(e.what(), HasSubstr(what)) << text;
  }
}

TEST(TextDatasets, BadPreferenceIdsAreDataErrorsNamingFileAndLine) {
  const std::string good = "{\"prompt_ids\": [1, 2], \"chosen_ids\": [3], \"rejected_ids\": [4]}\n";
  expect_bad_ids(good + "{\"prompt_ids\": [1, 2], \"chosen_ids\": [8], \"rejected_ids\": [4]}\n", 2,
                 "field 'chosen_ids'[0] = 8 is outside the vocabulary [0, 8)");
  expect_bad_ids("{\"prompt_ids\": [1, -1], \"chosen_ids\": [3], \"rejected_ids\": [4]}\n", 1,
                 "'prompt_ids'[1] = -1 is outside");
  expect_bad_ids("{\"prompt_ids\": [1, 2.5], \"chosen_ids\": [3], \"rejected_ids\": [4]}\n", 1,
                 "'prompt_ids'[1] must be an integer id, got a non-integer number 2.5");
  expect_bad_ids("{\"prompt_ids\": [1], \"chosen_ids\": [\"3\"], \"rejected_ids\": [4]}\n", 1,
                 "'chosen_ids'[0] must be an integer id, got string");
  expect_bad_ids("{\"prompt_ids\": [1], \"chosen_ids\": [true], \"rejected_ids\": [4]}\n", 1,
                 "must be an integer id, got boolean");
  expect_bad_ids("{\"prompt_ids\": [1], \"chosen_ids\": 3, \"rejected_ids\": [4]}\n", 1,
                 "field 'chosen_ids' must be an array of integer ids, got number");
  expect_bad_ids(good + good + "{\"prompt_ids\": [1], \"chosen_ids\": [3]}\n", 3, "missing field 'rejected_ids'");
  expect_bad_ids("{\"prompt_ids\": [1], \"chosen\": \"c\", \"chosen_ids\": [3], \"rejected_ids\": [4]}\n", 1,
                 "both text and ids forms on one line");
  expect_bad_ids("{\"prompt\": \"p\", \"chosen_ids\": [3], \"rejected_ids\": [4]}\n", 1,
                 "both text and ids forms on one line");
  expect_bad_ids("{\"prompt_ids\": [], \"chosen_ids\": [3], \"rejected_ids\": [4]}\n", 1,
                 "field 'prompt_ids' is empty");
  expect_bad_ids("{\"prompt_ids\": [1], \"chosen_ids\": [3], \"rejected_ids\": []}\n", 1,
                 "field 'rejected_ids' is empty");
}

}  // namespace
}  // namespace troupe::data
