// `troupe data prepare` as a user runs it: a few small files -> train.bin and val.bin, checked with
// tokenizers::TokenFile against the tokenizer; the seeded split; and its errors and exit codes.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <set>

#include "tests/support/test_support.h"
#include "tokenizers/bpe_tokenizer.h"
#include "tokenizers/token_file.h"
#include "tokenizers/tokenizer_file.h"

namespace troupe {
namespace {

namespace fs = std::filesystem;
using testing::cli_path;
using ::testing::HasSubstr;
using testing::run_process;
using testing::ScratchDir;
using testing::source_dir;
using testing::write_file;

std::string gpt2_path() { return (source_dir() / "tests/fixtures/tokenizers/gpt2.tiktoken").string(); }

std::vector<int64_t> all_ids(const tokenizers::TokenFile& file) {
  std::vector<int64_t> ids(file.size());
  file.read(0, file.size(), ids.data());
  return ids;
}

// Five documents, each a few lines of distinct text.
void write_corpus(const fs::path& dir) {
  for (int i = 0; i < 5; ++i) {
    std::string text;
    for (int line = 0; line <= i; ++line)
      text += "Document " + std::to_string(i) + ", line " + std::to_string(line) + ".\n";
    write_file(dir / ("doc" + std::to_string(i) + ".txt"), text);
  }
}

TEST(DataCli, PrepareWritesTrainAndValTokenFilesSplitByDocument) {
  ScratchDir dir;
  write_corpus(dir / "corpus");
  auto r = testing::run_troupe({"data", "prepare", "-t", gpt2_path(), "--input", (dir / "corpus").string(), "--output",
                                (dir / "out").string(), "--val-fraction", "0.2", "--seed", "7", "--threads", "2"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("train.bin: 4 documents"));
  EXPECT_THAT(r.output, HasSubstr("val.bin: 1 documents"));
  EXPECT_THAT(r.output, HasSubstr("uint16"));

  const tokenizers::BpeTokenizer tok = tokenizers::open_tokenizer(gpt2_path());
  const tokenizers::TokenFile train(dir / "out/train.bin"), val(dir / "out/val.bin");
  EXPECT_EQ(train.info().documents, 4u);
  EXPECT_EQ(val.info().documents, 1u);
  std::set<std::string> sources;
  for (const auto* file : {&train, &val}) {
    EXPECT_EQ(file->info().dtype, "uint16");
    EXPECT_EQ(file->info().vocab_size, 50257);
    EXPECT_EQ(file->info().separator.value_or(-1), 50256);
    // The file is exactly its documents' ids, each followed by <|endoftext|>, in sorted order.
    std::vector<int64_t> expected;
    for (const std::string& source : file->info().sources) {
      EXPECT_TRUE(sources.insert(source).second) << source << " in both splits";
      for (int id : tok.encode_ordinary(testing::read_file(source))) expected.push_back(id);
      expected.push_back(50256);
    }
    EXPECT_EQ(all_ids(*file), expected);
    EXPECT_TRUE(std::is_sorted(file->info().sources.begin(), file->info().sources.end()));
  }
  EXPECT_EQ(sources.size(), 5u);

  // Same seed, same split; the split changes with the seed (five seeds cannot all pick the same document).
  auto again = testing::run_troupe({"data", "prepare", "-t", gpt2_path(), "--input", (dir / "corpus").string(),
                                    "--output", (dir / "again").string(), "--val-fraction", "0.2", "--seed", "7"});
  ASSERT_EQ(again.exit_code, 0) << again.output;
  EXPECT_EQ(testing::read_file(dir / "again/val.bin"), testing::read_file(dir / "out/val.bin"));
  EXPECT_EQ(testing::read_file(dir / "again/train.bin"), testing::read_file(dir / "out/train.bin"));
  std::set<std::string> val_docs;
  for (int seed = 1; seed <= 5; ++seed) {
    const fs::path out = dir / ("seed" + std::to_string(seed));
    auto s = testing::run_troupe({"data", "prepare", "-t", gpt2_path(), "--input", (dir / "corpus").string(),
                                  "--output", out.string(), "--val-fraction", "0.2", "--seed", std::to_string(seed)});
    ASSERT_EQ(s.exit_code, 0) << s.output;
    val_docs.insert(tokenizers::TokenFile(out / "val.bin").info().sources.at(0));
  }
  EXPECT_GT(val_docs.size(), 1u);
}

TEST(DataCli, PrepareKeepsAtLeastOneDocumentPerSplitAndHonoursSeparatorNone) {
  ScratchDir dir;
  write_corpus(dir / "corpus");
  // 0.005 * 5 rounds to 0, but val still gets one document; a fraction near 1 still leaves one for train.
  for (const char* fraction : {"0.005", "0.99"}) {
    auto r =
        testing::run_troupe({"data", "prepare", "-t", gpt2_path(), "--input", (dir / "corpus").string(), "--output",
                             (dir / "out").string(), "--val-fraction", fraction, "--separator", "none"});
    ASSERT_EQ(r.exit_code, 0) << r.output;
    const tokenizers::TokenFile train(dir / "out/train.bin"), val(dir / "out/val.bin");
    EXPECT_GE(train.info().documents, 1u);
    EXPECT_GE(val.info().documents, 1u);
    EXPECT_EQ(train.info().documents + val.info().documents, 5u);
    EXPECT_FALSE(train.info().separator.has_value());
  }
  // --val-fraction 0: everything in train.bin, and no val.bin (an old one is removed).
  auto r = testing::run_troupe({"data", "prepare", "-t", gpt2_path(), "--input", (dir / "corpus").string(), "--output",
                                (dir / "out").string(), "--val-fraction", "0"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(tokenizers::TokenFile(dir / "out/train.bin").info().documents, 5u);
  EXPECT_FALSE(fs::exists(dir / "out/val.bin"));
  EXPECT_FALSE(fs::exists(dir / "out/val.bin.json"));
}

TEST(DataCli, PrepareErrorsAreClearWithExitCodeTwo) {
  ScratchDir dir;
  write_file(dir / "one.txt", "A single document.\n");
  auto one = testing::run_troupe({"data", "prepare", "-t", gpt2_path(), "--input", (dir / "one.txt").string(),
                                  "--output", (dir / "out").string()});
  EXPECT_EQ(one.exit_code, 2) << one.output;
  EXPECT_THAT(one.output, HasSubstr("only one document"));
  EXPECT_FALSE(fs::exists(dir / "out/train.bin"));
  auto single_ok = testing::run_troupe({"data", "prepare", "-t", gpt2_path(), "--input", (dir / "one.txt").string(),
                                        "--output", (dir / "out").string(), "--val-fraction", "0"});
  EXPECT_EQ(single_ok.exit_code, 0) << single_ok.output;

  auto fraction = testing::run_troupe({"data", "prepare", "-t", gpt2_path(), "--input", (dir / "one.txt").string(),
                                       "--output", (dir / "out").string(), "--val-fraction", "1"});
  EXPECT_EQ(fraction.exit_code, 2) << fraction.output;
  EXPECT_THAT(fraction.output, HasSubstr("--val-fraction"));
  auto separator =
      testing::run_troupe({"data", "prepare", "-t", gpt2_path(), "--input", (dir / "one.txt").string(), "--output",
                           (dir / "out").string(), "--val-fraction", "0", "--separator", "<|nope|>"});
  EXPECT_EQ(separator.exit_code, 2) << separator.output;
  EXPECT_THAT(separator.output, HasSubstr("<|nope|>"));
  auto missing = testing::run_troupe({"data", "prepare", "-t", gpt2_path(), "--input", (dir / "nothing").string(),
                                      "--output", (dir / "out").string()});
  EXPECT_NE(missing.exit_code, 0);
  EXPECT_THAT(missing.output, HasSubstr("nothing"));
  write_file(dir / "file", "x");
  auto not_dir = testing::run_troupe({"data", "prepare", "-t", gpt2_path(), "--input", (dir / "one.txt").string(),
                                      "--output", (dir / "file").string(), "--val-fraction", "0"});
  EXPECT_EQ(not_dir.exit_code, 2) << not_dir.output;
  EXPECT_NE(testing::run_troupe({"data", "prepare", "--input", (dir / "one.txt").string()}).exit_code, 0);
  auto help = testing::run_troupe({"data", "prepare", "--help"});
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_THAT(help.output, HasSubstr("--val-fraction"));
}

}  // namespace
}  // namespace troupe
