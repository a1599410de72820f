// Tests for data/lm_data.h: hand-computed windows over a token file of ids 0..N-1 (targets == inputs + 1),
// the sequential pass, bit-exact resume, seeding, uint16/uint32 files and every file and option error.
#include "data/lm_data.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <numeric>
#include <set>

#include "core/errors.h"
#include "tests/support/test_support.h"

namespace troupe::data {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using testing::ScratchDir;
using testing::write_file;

// Writes ids first, first + 1, ..., first + n - 1 as a token file.
fs::path write_range(const fs::path& path, int n, int64_t vocab, int first = 0) {
  TokenFileWriter writer(path, vocab, "test");
  std::vector<int> ids(static_cast<size_t>(n));
  std::iota(ids.begin(), ids.end(), first);
  writer.append(ids);
  writer.end_document();
  writer.finish();
  return path;
}

LmBatchOptions opts(int64_t B, int64_t T, uint64_t seed = 7) {
  LmBatchOptions o;
  o.batch_size = B;
  o.block_size = T;
  o.seed = seed;
  return o;
}

bool same(const LmBatch& a, const LmBatch& b) {
  return torch::equal(a.input_ids, b.input_ids) && torch::equal(a.targets, b.targets);
}

TEST(LmData, RandomWindowsAreConsecutiveIdsAndTargetsAreInputsPlusOne) {
  ScratchDir dir;
  LmBatchSampler sampler(write_range(dir / "t.bin", 100, 100), opts(8, 4));
  std::set<int64_t> starts;
  for (int i = 0; i < 500; ++i) {
    const LmBatch batch = sampler.next_random();
    ASSERT_EQ(batch.input_ids.sizes(), (std::vector<int64_t>{8, 4}));
    ASSERT_EQ(batch.targets.sizes(), (std::vector<int64_t>{8, 4}));
    ASSERT_EQ(batch.input_ids.scalar_type(), torch::kInt64);
    ASSERT_EQ(batch.targets.scalar_type(), torch::kInt64);
    auto in = batch.input_ids.accessor<int64_t, 2>();
    auto tg = batch.targets.accessor<int64_t, 2>();
    for (int b = 0; b < 8; ++b) {
      starts.insert(in[b][0]);
      for (int t = 0; t < 4; ++t) {
        ASSERT_EQ(in[b][t], in[b][0] + t);
        ASSERT_EQ(tg[b][t], in[b][t] + 1);
      }
    }
  }
  // nanoGPT: starts uniform over [0, N - T - 1] = [0, 95]; 4,000 draws hit every one.
  EXPECT_EQ(starts.size(), 96u);
  EXPECT_EQ(*starts.begin(), 0);
  EXPECT_EQ(*starts.rbegin(), 95);
}

TEST(LmData, SequentialPassCoversFloorOfNMinusOneOverTWindowsInOrder) {
  ScratchDir dir;
  LmBatchSampler sampler(write_range(dir / "t.bin", 100, 100), opts(5, 4));
  ASSERT_EQ(sampler.sequential_windows(), 24u);  // floor(99 / 4)
  for (int pass = 0; pass < 2; ++pass) {
    std::vector<int64_t> sizes;
    int64_t k = 0;
    while (auto batch = sampler.next_sequential()) {
      sizes.push_back(batch->input_ids.size(0));
      auto in = batch->input_ids.accessor<int64_t, 2>();
      auto tg = batch->targets.accessor<int64_t, 2>();
      for (int64_t b = 0; b < batch->input_ids.size(0); ++b, ++k) {
        for (int t = 0; t < 4; ++t) {
          EXPECT_EQ(in[b][t], 4 * k + t);
          EXPECT_EQ(tg[b][t], 4 * k + t + 1);
        }
      }
    }
    EXPECT_EQ(k, 24);
    EXPECT_EQ(sizes, (std::vector<int64_t>{5, 5, 5, 5, 4}));
    EXPECT_EQ(sampler.epoch(), static_cast<uint64_t>(pass + 1));
  }
  // One more id fills the 25th window exactly (ids 96..100), still with targets inside the file.
  LmBatchSampler longer(write_range(dir / "u.bin", 101, 101), opts(100, 4));
  EXPECT_EQ(longer.sequential_windows(), 25u);
  auto all = longer.next_sequential();
  ASSERT_TRUE(all.has_value());
  EXPECT_EQ(all->targets[24][3].item<int64_t>(), 100);
}

TEST(LmData, RestoredSamplerContinuesBitExactly) {
  ScratchDir dir;
  const fs::path path = write_range(dir / "t.bin", 1000, 1000);
  LmBatchSampler a(path, opts(4, 16, 42));
  for (int i = 0; i < 3; ++i) a.next_random();
  for (int i = 0; i < 7; ++i) a.next_sequential();
  const LmBatchState saved = a.state();
  std::vector<LmBatch> expected_random, expected_seq;
  for (int i = 0; i < 5; ++i) expected_random.push_back(a.next_random());
  for (int i = 0; i < 20; ++i) {  // runs past the end of the pass (62 windows, 16 batches) into the next
    auto b = a.next_sequential();
    if (b) expected_seq.push_back(*b);
  }

  // Through each serialised form, into a sampler built with a different seed: the state is all that matters.
  for (const LmBatchState& state :
       {LmBatchState::from_vector(saved.to_vector()), LmBatchState::from_string(saved.to_string())}) {
    ASSERT_EQ(state, saved);
    LmBatchSampler b(path, opts(4, 16, 999));
    b.restore(state);
    for (const LmBatch& e : expected_random) EXPECT_TRUE(same(b.next_random(), e));
    std::vector<LmBatch> seq;
    for (int i = 0; i < 20; ++i) {
      auto batch = b.next_sequential();
      if (batch) seq.push_back(*batch);
    }
    ASSERT_EQ(seq.size(), expected_seq.size());
    for (size_t i = 0; i < seq.size(); ++i) EXPECT_TRUE(same(seq[i], expected_seq[i]));
    EXPECT_EQ(b.state(), a.state());
  }
  EXPECT_THROW(LmBatchState::from_string("rng=1 cursor=x epoch=0"), DataError);
  EXPECT_THROW(LmBatchState::from_vector({1, 2}), DataError);
  LmBatchState bad = saved;
  bad.cursor = 1000;
  EXPECT_THROW(a.restore(bad), DataError);
}

TEST(LmData, SameSeedSameBatchesOtherSeedOtherBatchesTorchRngUntouched) {
  ScratchDir dir;
  const fs::path path = write_range(dir / "t.bin", 5000, 5000);
  LmBatchSampler a(path, opts(4, 8, 1)), b(path, opts(4, 8, 1)), c(path, opts(4, 8, 2));
  torch::manual_seed(3);
  const torch::Tensor before = torch::rand({4});
  torch::manual_seed(3);
  bool any_difference = false;
  for (int i = 0; i < 10; ++i) {
    const LmBatch x = a.next_random();
    EXPECT_TRUE(same(x, b.next_random()));
    any_difference |= !same(x, c.next_random());
  }
  EXPECT_TRUE(any_difference);
  EXPECT_TRUE(torch::equal(torch::rand({4}), before));
}

TEST(LmData, ReadsUint32TokenFiles) {
  ScratchDir dir;
  LmBatchSampler sampler(write_range(dir / "big.bin", 50, 70000, 65530), opts(3, 10));
  EXPECT_EQ(sampler.info().dtype, "uint32");
  EXPECT_EQ(fs::file_size(dir / "big.bin"), 200u);
  auto batch = sampler.next_sequential();
  ASSERT_TRUE(batch.has_value());
  auto in = batch->input_ids.accessor<int64_t, 2>();
  for (int b = 0; b < 3; ++b)
    for (int t = 0; t < 10; ++t) EXPECT_EQ(in[b][t], 65530 + 10 * b + t);  // ids above 65535 intact
  LmBatchSampler small(write_range(dir / "small.bin", 50, 300), opts(3, 10));
  EXPECT_EQ(small.info().dtype, "uint16");
  EXPECT_EQ(fs::file_size(dir / "small.bin"), 100u);
  EXPECT_EQ(small.next_sequential()->input_ids[2][9].item<int64_t>(), 29);
}

TEST(LmData, BadOptionsAreConfigErrors) {
  ScratchDir dir;
  const fs::path path = write_range(dir / "t.bin", 100, 100);
  EXPECT_THROW(LmBatchSampler(path, opts(0, 4)), ConfigError);
  EXPECT_THROW(LmBatchSampler(path, opts(4, 0)), ConfigError);
  EXPECT_THROW(LmBatchSampler(path, opts(-1, 4)), ConfigError);
}

// Expects a DataError whose message contains every piece.
template <typename Fn>
void expect_lm_data_error(Fn&& fn, const std::vector<std::string>& pieces) {
  try {
    fn();
    ADD_FAILURE() << "no DataError";
  } catch (const DataError& e) {
    for (const auto& p : pieces) EXPECT_THAT(e.what(), HasSubstr(p));
  }
}

TEST(LmData, BadFilesAreDataErrorsNamingTheFile) {
  ScratchDir dir;
  const fs::path path = write_range(dir / "t.bin", 100, 100);
  const std::string name = path.string();
  // Too short for one window of T + 1 = 100 + 1 ids.
  expect_lm_data_error([&] { LmBatchSampler s(path, opts(1, 100)); }, {name, "100 tokens", "block_size + 1 = 101"});
  EXPECT_NO_THROW(LmBatchSampler s(path, opts(1, 99)));  // exactly T + 1 ids is enough
  // The file's vocabulary is larger than the model's.
  LmBatchOptions small_model = opts(1, 4);
  small_model.model_vocab_size = 50;
  expect_lm_data_error([&] { LmBatchSampler s(path, small_model); }, {name, "vocab_size 100", "50"});
  // Sidecar: wrong dtype, missing, and a dtype too narrow for the vocabulary.
  const std::string sidecar = testing::read_file(name + ".json");
  auto with = [&](const std::string& from, const std::string& to) {
    std::string s = sidecar;
    const size_t at = s.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    write_file(name + ".json", s.replace(at, from.size(), to));
  };
  with("\"uint16\"", "\"int8\"");
  expect_lm_data_error([&] { LmBatchSampler s(path, opts(1, 4)); }, {name, "dtype"});
  with("\"vocab_size\": 100", "\"vocab_size\": 70000");
  expect_lm_data_error([&] { LmBatchSampler s(path, opts(1, 4)); }, {name, "uint16", "70000"});
  with("\"count\": 100", "\"count\": 120");
  expect_lm_data_error([&] { LmBatchSampler s(path, opts(1, 4)); }, {name, "truncated"});
  // Found by fuzz/fuzz_token_file: a number too large for a double, and a version of the wrong type, were
  // nlohmann exceptions escaping as themselves instead of DataErrors naming the sidecar.
  with("\"count\": 100", "\"count\": 2E61102");
  expect_lm_data_error([&] { LmBatchSampler s(path, opts(1, 4)); }, {name + ".json", "invalid JSON"});
  // A count beyond uint64 parses as a double, which nlohmann's get<uint64_t>() cast (undefined behaviour, a UBSan
  // report in fuzz/fuzz_token_file); fractional and negative counts are refused too.
  with("\"count\": 100", "\"count\": 14444444444444444444444444444444444444444444444444444444444400");
  expect_lm_data_error([&] { LmBatchSampler s(path, opts(1, 4)); }, {name + ".json", "key 'count'", "integer"});
  with("\"count\": 100", "\"count\": 100.5");
  expect_lm_data_error([&] { LmBatchSampler s(path, opts(1, 4)); }, {name + ".json", "key 'count'"});
  with("\"vocab_size\": 100", "\"vocab_size\": -1e300");
  expect_lm_data_error([&] { LmBatchSampler s(path, opts(1, 4)); }, {name + ".json", "key 'vocab_size'"});
  with("\"version\": 1", "\"version\": \"one\"");
  expect_lm_data_error([&] { LmBatchSampler s(path, opts(1, 4)); }, {name + ".json", "version"});
  fs::remove(name + ".json");
  expect_lm_data_error([&] { LmBatchSampler s(path, opts(1, 4)); }, {name, "sidecar"});
  EXPECT_THROW(LmBatchSampler(dir / "missing.bin", opts(1, 4)), IoError);
}

}  // namespace
}  // namespace troupe::data
