// The sources and knobs of `troupe data clean` (dataprep/clean_reader.h, clean_pipeline.h): token files decoded with
// a tokenizer and cut at their separator (the sidecar's or `separator_token`), the reader thread's batches in input
// order with a reader error after the batches before it, and the dedup stage's scheme and LSH weights.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <random>

#include "core/errors.h"
#include "dataprep/clean_pipeline.h"
#include "dataprep/clean_reader.h"
#include "tests/support/test_support.h"
#include "tests/support/tokenizer_test_data.h"
#include "tokenizers/token_file.h"

namespace troupe::dataprep {
namespace {

const std::vector<std::string> kDocs = {
    "The first document, with words of its own.\nAnd a second line.",
    "Der zweite Text: caf\xc3\xa9, na\xc3\xafve \xe2\x80\x94 and an emoji \xf0\x9f\x99\x82.",
    "A third one, short.",
};

// The documents as gpt2 ids, <|endoftext|> after each when `separator`, or written between them as plain ids (the
// sidecar naming no separator) when not.
void write_tokens(const std::filesystem::path& path, bool separator) {
  const auto& tok = testing::gpt2_tokenizer();
  const int eot = tok.spec().special_tokens.at("<|endoftext|>");
  tokenizers::TokenFileWriter writer(path, tok.vocab_size(), "gpt2");
  if (separator) writer.set_separator(eot);
  for (size_t i = 0; i < kDocs.size(); ++i) {
    if (!separator && i > 0) writer.append({eot});
    writer.append(tok.encode_ordinary(kDocs[i]));
    if (separator) writer.end_document();
  }
  writer.finish();
}

std::vector<std::string> output_texts(const std::filesystem::path& file) {
  std::vector<std::string> out;
  std::istringstream in(testing::read_file(file));
  for (std::string line; std::getline(in, line);) out.push_back(nlohmann::json::parse(line)["text"]);
  return out;
}

std::string gpt2_path() { return (testing::tokenizer_data_dir() / "gpt2.tiktoken").string(); }

TEST(CleanSources, TokenFileIsDecodedAndCutAtItsSeparator) {
  testing::ScratchDir dir("troupe-clean-src");
  write_tokens(dir / "c.bin", true);
  testing::write_file(dir / "t.yaml", "inputs: [c.bin]\noutput: out.jsonl\ntokenizer: " + gpt2_path() +
                                          "\nthreads: 2\nchunk_size: 1\nstages: [normalize]\n");
  const CleanReport report = run_clean(load_clean_config(dir / "t.yaml"));
  EXPECT_EQ(report.documents_in, 3);
  EXPECT_EQ(output_texts(dir / "out.jsonl"), kDocs);
}

TEST(CleanSources, SeparatorTokenCutsAFileWhoseSidecarNamesNone) {
  testing::ScratchDir dir("troupe-clean-src");
  write_tokens(dir / "c.bin", false);
  const std::string head = "inputs: [c.bin]\noutput: out.jsonl\ntokenizer: " + gpt2_path() + "\n";
  testing::write_file(dir / "one.yaml", head + "stages: [normalize]\n");
  const auto whole = run_clean(load_clean_config(dir / "one.yaml"));
  EXPECT_EQ(whole.documents_in, 1);  // no separator: the file is one document, <|endoftext|> decoded as text
  EXPECT_NE(output_texts(dir / "out.jsonl").at(0).find("<|endoftext|>"), std::string::npos);
  testing::write_file(dir / "cut.yaml", head + "separator_token: <|endoftext|>\nstages: [normalize]\n");
  EXPECT_EQ(run_clean(load_clean_config(dir / "cut.yaml")).documents_in, 3);
  EXPECT_EQ(output_texts(dir / "out.jsonl"), kDocs);
  testing::write_file(dir / "bad.yaml", head + "separator_token: <|eot|>\nstages: [normalize]\n");
  EXPECT_THROW(run_clean(load_clean_config(dir / "bad.yaml")), ConfigError);
}

TEST(CleanSources, TokenFileWithoutATokenizerIsAConfigError) {
  testing::ScratchDir dir("troupe-clean-src");
  write_tokens(dir / "c.bin", true);
  testing::write_file(dir / "t.yaml", "inputs: [c.bin]\noutput: out.jsonl\nstages: [normalize]\n");
  try {
    run_clean(load_clean_config(dir / "t.yaml"));
    FAIL() << "no error";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("set `tokenizer`"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(std::filesystem::exists(dir / "out.jsonl"));  // checked before the output is created
}

TEST(CleanSources, PrefetchedBatchesComeInOrderAndAReadErrorAfterThem) {
  testing::ScratchDir dir("troupe-clean-src");
  std::string lines;
  for (int i = 0; i < 10; ++i) lines += "line " + std::to_string(i) + "\n";
  testing::write_file(dir / "a.txt", lines);
  SourceOptions options;
  options.split = TextSplit::kLines;
  {
    BatchPrefetcher reader(DocumentReader({(dir / "a.txt").string()}, options), 3, 1);
    std::vector<std::string> seen;
    std::vector<size_t> sizes;
    int64_t bytes = 0;
    for (auto batch = reader.next(bytes); !batch.empty(); batch = reader.next(bytes)) {
      sizes.push_back(batch.size());
      for (auto& d : batch) seen.push_back(parse_document(std::move(d), options).text);
    }
    EXPECT_EQ(sizes, (std::vector<size_t>{3, 3, 3, 1}));
    ASSERT_EQ(seen.size(), 10u);
    EXPECT_EQ(seen[7], "line 7");
    EXPECT_EQ(bytes, static_cast<int64_t>(lines.size()));
  }
  BatchPrefetcher failing(DocumentReader({(dir / "a.txt").string(), (dir / "missing.txt").string()}, options), 4);
  int64_t bytes = 0;
  size_t documents = 0;
  EXPECT_THROW(
      {
        for (auto batch = failing.next(bytes); !batch.empty(); batch = failing.next(bytes)) documents += batch.size();
      },
      IoError);
  EXPECT_EQ(documents, 8u);  // the two full batches of a.txt; the third broke on the missing file
  // A consumer that stops early leaves no thread behind: the destructor stops the reader.
  BatchPrefetcher abandoned(DocumentReader({(dir / "a.txt").string()}, options), 1, 1);
  EXPECT_EQ(abandoned.next(bytes).size(), 1u);
}

TEST(CleanSources, DedupSchemeAndLshWeightsBind) {
  testing::ScratchDir dir("troupe-clean-src");
  testing::write_file(dir / "d.yaml",
                      "inputs: [a.jsonl]\noutput: out.jsonl\nstages:\n"
                      "  - dedup: {scheme: legacy, fp_weight: 0.2, fn_weight: 0.8, threshold: 0.7}\n");
  const DedupConfig c = load_clean_config(dir / "d.yaml").stages.at(0).dedup;
  EXPECT_EQ(c.scheme, MinHashScheme::kLegacy);
  EXPECT_DOUBLE_EQ(c.fp_weight, 0.2);
  EXPECT_DOUBLE_EQ(c.fn_weight, 0.8);
  const Deduplicator d(c);  // the weights choose the banding, as datasketch's MinHashLSH(weights=(0.2, 0.8)) does
  EXPECT_EQ(d.lsh().bands, optimal_lsh_params(0.7, 128, 0.2, 0.8).bands);
  EXPECT_NE(optimal_lsh_params(0.7, 128, 0.2, 0.8).bands, optimal_lsh_params(0.7, 128).bands);
  auto error = [&](const std::string& options) {
    testing::write_file(dir / "e.yaml",
                        "inputs: [a.jsonl]\noutput: out.jsonl\nstages:\n  - html\n  - dedup: " + options + "\n");
    try {
      load_clean_config(dir / "e.yaml");
    } catch (const ConfigError& e) {
      const std::string msg = e.what();
      return msg.substr(msg.find("e.yaml"));
    }
    return std::string("no error");
  };
  EXPECT_EQ(error("{scheme: affine64}").rfind("e.yaml:5:", 0), 0u) << error("{scheme: affine64}");
  EXPECT_NE(error("{scheme: affine64}").find("affine32 or legacy"), std::string::npos);
  EXPECT_EQ(error("{fp_weight: 0.7}").rfind("e.yaml:5:", 0), 0u) << error("{fp_weight: 0.7}");
  EXPECT_NE(error("{fp_weight: 0.7}").find("sum to 1"), std::string::npos);
  EXPECT_EQ(error("{fp_weight: -0.5, fn_weight: 1.5}").rfind("e.yaml:5:", 0), 0u);
}

TEST(CleanSources, SketchedAddEqualsAddOfTheText) {
  std::mt19937 rng(3);
  std::vector<std::string> docs;
  for (int i = 0; i < 60; ++i) {
    std::string d;
    for (int w = 0; w < 40; ++w) d += "w" + std::to_string(rng() % (i % 3 == 0 ? 50 : 400)) + " ";
    docs.push_back(d);
  }
  docs.push_back(docs[4]);
  DedupConfig config;
  config.threshold = 0.5;
  Deduplicator by_text(config), by_sketch(config);
  for (const auto& d : docs) {
    by_text.add(d);
    by_sketch.add(by_sketch.sketch(d));
  }
  const DedupResult a = by_text.finish(), b = by_sketch.finish();
  EXPECT_EQ(a.kept, b.kept);
  EXPECT_EQ(a.cluster, b.cluster);
  EXPECT_EQ(a.exact_removed, 1u);
}

}  // namespace
}  // namespace troupe::dataprep
