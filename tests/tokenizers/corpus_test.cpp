// Tests for the corpus-scale tokenizer pieces: Troupe's tokenizer file (tokenizers/tokenizer_file.h), token files
// (tokenizers/token_file.h), cut points, batch/parallel/streaming/JSONL encoding and BPE training on files
// (tokenizers/corpus.h). References: tiktoken's vectors (exact ids) and single-threaded encode_ordinary.
#include "tokenizers/corpus.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <random>

#include "core/errors.h"
#include "tests/support/test_support.h"
#include "tests/support/tokenizer_test_data.h"
#include "tokenizers/foreign_formats.h"
#include "tokenizers/pretokenizer.h"

namespace troupe::tokenizers {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using testing::read_file;
using testing::ScratchDir;
using testing::write_file;

using Vector = testing::TokenizerVector;

using testing::concat;
using testing::corpus_text;
using testing::error_message;

// ---- Troupe tokenizer file ---------------------------------------------------------------------------------

TEST(TokenizerFile, DerivesGpt2sFiftyThousandMergesFromItsRanks) {
  const auto merges = derive_merges(testing::gpt2_tokenizer().spec());
  // GPT-2's vocab.bpe has exactly 50000 merges: one per token above the 256 bytes.
  EXPECT_EQ(merges.size(), 50000u);
  const auto& tokens = testing::gpt2_tokenizer().spec().tokens_by_rank;
  for (const auto& [rank, left, right] : merges) {
    ASSERT_LT(left, rank);
    ASSERT_LT(right, rank);
    ASSERT_EQ(tokens[left] + tokens[right], tokens[rank]);
  }
  // " the" (rank 262) is built from " t" (256) and "he" (258), the first two GPT-2 merges.
  EXPECT_EQ(merges[6], (std::array<int, 3>{262, 256, 258}));
}

TEST(TokenizerFile, RoundTripsGpt2AndEncodesEveryVectorIdentically) {
  ScratchDir dir;
  TokenizerFile file;
  file.spec = testing::gpt2_tokenizer().spec();
  file.metadata = {{"source", "gpt2.tiktoken"}};
  save_tokenizer_file(dir / "gpt2.json", file);
  const TokenizerFile loaded = load_tokenizer_file(dir / "gpt2.json");
  EXPECT_EQ(loaded.spec.tokens_by_rank, file.spec.tokens_by_rank);
  EXPECT_EQ(loaded.spec.special_tokens, file.spec.special_tokens);
  EXPECT_EQ(loaded.spec.pattern, kGpt2Pattern);
  EXPECT_EQ(loaded.spec.name, "gpt2");
  EXPECT_EQ(loaded.metadata.at("source"), "gpt2.tiktoken");
  EXPECT_EQ(loaded.merges.size(), 50000u);
  const BpeTokenizer tok = open_tokenizer((dir / "gpt2.json").string());
  for (const Vector& v : testing::read_tokenizer_vectors("gpt2"))
    ASSERT_EQ(tok.encode_ordinary(v.text), v.ids) << v.text;
}

TEST(TokenizerFile, MalformedFilesNameTheLineOrKey) {
  ScratchDir dir;
  TokenizerFile file;
  file.spec = testing::gpt2_tokenizer().spec();
  save_tokenizer_file(dir / "t.json", file);
  const std::string good = read_file(dir / "t.json");

  write_file(dir / "trunc.json", good.substr(0, good.size() / 2));
  const size_t lines = static_cast<size_t>(std::count(good.begin(), good.begin() + good.size() / 2, '\n'));
  EXPECT_THAT(error_message([&] { load_tokenizer_file(dir / "trunc.json"); }),
              HasSubstr((dir / "trunc.json").string() + ":" + std::to_string(lines + 1) + ":"));

  auto edit = [&](const std::string& from, const std::string& to) {
    std::string text = good;
    const size_t at = text.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    text.replace(at, from.size(), to);
    write_file(dir / "bad.json", text);
    return error_message([&] { load_tokenizer_file(dir / "bad.json"); });
  };
  EXPECT_THAT(edit("\"version\": 1", "\"version\": 2"), HasSubstr("key 'version': unsupported version 2"));
  EXPECT_THAT(edit("\"format\": \"troupe-tokenizer\"", "\"format\": \"x\""), HasSubstr("key 'format'"));
  // tokens[3] is the byte '$' ("JA=="); make it invalid base64.
  EXPECT_THAT(edit("\"JA==\"", "\"J!==\""), HasSubstr("key 'tokens[3]': expected a non-empty base64 string"));
  EXPECT_THAT(edit("[262, 256, 258]", "[262, 256, 257]"), HasSubstr("key 'merges[6]': token 262 is not"));
  EXPECT_THAT(edit("[262, 256, 258]", "[262, 263, 258]"), HasSubstr("key 'merges[6]': left and right"));
  EXPECT_THAT(edit("\"pattern\": ", "\"patern\": "), HasSubstr("key 'pattern': missing"));
  // A duplicate token is caught by the tokenizer's own validation and still names the file.
  EXPECT_THAT(edit("\"JA==\"", "\"JQ==\""), HasSubstr((dir / "bad.json").string()));
  // A number beyond double range (found by fuzz/fuzz_tokenizer_file): nlohmann's out_of_range used to escape.
  EXPECT_THAT(edit("\"version\": 1", "\"version\": 1E400"), HasSubstr("invalid JSON"));
  EXPECT_THAT(error_message([&] { open_tokenizer((dir / "bad.json").string()); }),
              HasSubstr((dir / "bad.json").string()));
}

TEST(TokenizerFile, OpenTokenizerAcceptsEveryFormat) {
  ScratchDir dir;
  const std::vector<int> hello{15496, 11, 995};
  EXPECT_EQ(open_tokenizer((testing::tokenizer_data_dir() / "gpt2.tiktoken").string()).encode_ordinary("Hello, world"),
            hello);
  EXPECT_EQ(open_tokenizer((testing::tokenizer_data_dir() / "gpt2-encoder").string()).encode_ordinary("Hello, world"),
            hello);
  EXPECT_EQ(open_tokenizer((testing::tokenizer_data_dir() / "gpt2-encoder/encoder.json").string())
                .encode_ordinary("Hello, world"),
            hello);
  // A .tiktoken file without meta.json beside it: by --encoding, or by its stem when that is a known name.
  fs::copy_file(testing::tokenizer_data_dir() / "gpt2.tiktoken", dir / "ranks.tiktoken");
  const BpeTokenizer by_name = open_tokenizer((dir / "ranks.tiktoken").string(), "gpt2");
  EXPECT_EQ(by_name.encode_ordinary("Hello, world"), hello);
  EXPECT_EQ(by_name.spec().special_tokens.at("<|endoftext|>"), 50256);
  EXPECT_THAT(error_message([&] { open_tokenizer((dir / "ranks.tiktoken").string()); }), HasSubstr("--encoding"));
  EXPECT_THAT(error_message([&] { open_tokenizer((dir / "ranks.tiktoken").string(), "p99k"); }),
              HasSubstr("expected gpt2, r50k_base, p50k_base or cl100k_base"));
  EXPECT_THAT(error_message([&] { open_tokenizer((dir / "missing.json").string()); }),
              HasSubstr("no such file or directory"));
  write_file(dir / "x.txt", "hello");
  EXPECT_THAT(error_message([&] { open_tokenizer((dir / "x.txt").string()); }), HasSubstr("expected a Troupe"));
}

// ---- cut points ----------------------------------------------------------------------------------------------

TEST(Cuts, EveryCutOfEveryVectorEncodesLikeTheWhole) {
  for (const char* name : {"gpt2", "cl100k_base"}) {
    const BpeTokenizer& tok = std::string(name) == "gpt2" ? testing::gpt2_tokenizer() : testing::cl100k_tokenizer();
    ASSERT_TRUE(pattern_supports_cuts(tok.spec().pattern));
    size_t cuts = 0;
    for (const Vector& v : testing::read_tokenizer_vectors(name)) {
      for (size_t hi = v.text.size(); hi > 0;) {
        const size_t p = find_cut(v.text, 0, hi);
        if (p == std::string_view::npos) break;
        ASSERT_EQ(concat(tok.encode_ordinary(v.text.substr(0, p)), tok.encode_ordinary(v.text.substr(p))), v.ids)
            << name << " cut at " << p << " of: " << v.text;
        ++cuts;
        hi = p - 1;
      }
    }
    EXPECT_GT(cuts, 20u) << name;  // the vectors hold many multi-line texts
  }
}

TEST(Cuts, RefusesNewlinesNextToWhitespaceWhereANaiveCutChangesTheIds) {
  // With whitespace before the newline, GPT-2's `\s+(?!\S)` matches "<ws>\n" whole at the end of a first half,
  // where the whole text splits it as "<ws>" + "\n". Some of these change the ids; the cut rule refuses them all.
  size_t changed = 0;
  for (const std::string ws :
       {" ", "  ", "   ", "    ", "        ", "\t", "\t\t", " \t", "\n", "\r", " \r", "\xc2\xa0", "\xe3\x80\x80"}) {
    const std::string first = "foo" + ws + "\n";
    const std::string text = first + "bar";
    if (concat(testing::gpt2_tokenizer().encode_ordinary(first), testing::gpt2_tokenizer().encode_ordinary("bar")) !=
        testing::gpt2_tokenizer().encode_ordinary(text)) {
      ++changed;
    }
    EXPECT_EQ(find_cut(text, 0, text.size()), std::string_view::npos) << ws;
  }
  EXPECT_GT(changed, 0u);
  EXPECT_EQ(find_cut("ab\n\ncd", 0, 6), std::string_view::npos);
  EXPECT_EQ(find_cut("ab\ncd\nef", 0, 8), 6u);
  EXPECT_EQ(find_cut("ab\ncd\nef", 0, 5), 3u);
  EXPECT_EQ(find_cut("ab\ncd\nef", 3, 5), std::string_view::npos);  // p must be > lo
  EXPECT_FALSE(pattern_supports_cuts("\\w+|\\s+"));
}

// ---- parallel and batch encoding -----------------------------------------------------------------------------

TEST(ParallelEncode, MatchesSingleThreadedEncodeOnAnyThreadCount) {
  const std::string text = corpus_text(600 << 10);
  for (const BpeTokenizer* tok : {&testing::gpt2_tokenizer(), &testing::cl100k_tokenizer()}) {
    const std::vector<int> expected = tok->encode_ordinary(text);
    for (int threads : {1, 2, 3, 8}) {
      EXPECT_EQ(encode_ordinary_parallel(*tok, text, threads), expected) << tok->spec().name << " " << threads;
    }
  }
}

TEST(ParallelEncode, BatchKeepsOrderAndSpecialHandling) {
  const auto vectors = testing::read_tokenizer_vectors("cl100k_base");
  std::vector<std::string_view> texts;
  for (const Vector& v : vectors) texts.push_back(v.text);
  const auto out = encode_batch(testing::cl100k_tokenizer(), texts, 3);
  ASSERT_EQ(out.size(), vectors.size());
  for (size_t i = 0; i < vectors.size(); ++i) EXPECT_EQ(out[i], vectors[i].ids) << vectors[i].text;
  const auto special =
      encode_batch(testing::gpt2_tokenizer(), {"a<|endoftext|>b", "<|endoftext|>"}, 2, {"<|endoftext|>"});
  EXPECT_EQ(special[0], (std::vector<int>{64, 50256, 65}));
  EXPECT_EQ(special[1], (std::vector<int>{50256}));
  // Without allowing it, special text is ordinary text.
  EXPECT_EQ(encode_batch(testing::gpt2_tokenizer(), {"<|endoftext|>"}, 2)[0],
            testing::gpt2_tokenizer().encode_ordinary("<|endoftext|>"));
}

TEST(ParallelEncode, PieceCacheNeverMixesTokenizersOnOneThread) {
  // Alternate two vocabularies over the same words on one thread: each must keep its own ids.
  const std::string text = "tokenization tokenization internationalization internationalization";
  const std::vector<int> a = testing::gpt2_tokenizer().encode_ordinary(text);
  const std::vector<int> b = testing::cl100k_tokenizer().encode_ordinary(text);
  ASSERT_NE(a, b);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(testing::gpt2_tokenizer().encode_ordinary(text), a);
    EXPECT_EQ(testing::cl100k_tokenizer().encode_ordinary(text), b);
    // A fresh tokenizer for the same spec (new tables, maybe at a reused address) agrees too.
    EXPECT_EQ(BpeTokenizer(testing::gpt2_tokenizer().spec()).encode_ordinary(text), a);
  }
}
// ---- training on files ---------------------------------------------------------------------------------------

TEST(TrainOnFiles, DeterministicAcrossRunsAndThreadCountsAndRoundTrips) {
  ScratchDir dir;
  const std::string text = corpus_text(2300 << 10);  // > 2 units of 1 MiB, so threads split the counting
  write_file(dir / "corpus/a.txt", text.substr(0, text.size() / 2));
  write_file(dir / "corpus/b.txt", text.substr(text.size() / 2) + " <|endoftext|> <|endoftext|>");
  const auto files = list_text_files({(dir / "corpus").string()});
  BpeTrainingConfig config;
  config.vocab_size = 1000;
  config.pattern = kGpt2Pattern;
  config.special_tokens = {"<|endoftext|>", "<|pad|>"};
  BpeTrainingReport report;
  config.threads = 1;
  const TokenizerFile one = train_bpe_on_files(files, config, &report);
  config.threads = 3;
  const TokenizerFile three = train_bpe_on_files(files, config);
  const TokenizerFile again = train_bpe_on_files(files, config);
  EXPECT_EQ(one.spec.tokens_by_rank, three.spec.tokens_by_rank);
  EXPECT_EQ(three.spec.tokens_by_rank, again.spec.tokens_by_rank);
  EXPECT_EQ(one.merges, three.merges);
  ASSERT_EQ(one.spec.tokens_by_rank.size(), 1000u);
  EXPECT_EQ(one.merges.size(), 744u);
  EXPECT_EQ(report.files, 2u);
  EXPECT_EQ(report.bytes, text.size() + 28);
  EXPECT_EQ(one.spec.special_tokens, (std::map<std::string, int>{{"<|endoftext|>", 1000}, {"<|pad|>", 1001}}));
  for (const auto& token : one.spec.tokens_by_rank) {
    EXPECT_EQ(token.find("endoftext"), std::string::npos) << "special text was learned: " << token;
  }
  // Saved and reopened, it round-trips its own training text and encodes it shorter than bytes.
  save_tokenizer_file(dir / "tok.json", one);
  const BpeTokenizer tok = open_tokenizer((dir / "tok.json").string());
  const std::vector<int> ids = tok.encode_ordinary(text);
  EXPECT_EQ(tok.decode(ids), text);
  EXPECT_LT(ids.size() * 2, text.size());
  EXPECT_EQ(tok.encode("a<|pad|>", {"<|pad|>"}), (std::vector<int>{97, 1001}));
  // The merges it records are the ones the ranks imply.
  EXPECT_EQ(derive_merges(tok.spec()), one.merges);
}

TEST(TrainOnFiles, TextbookExampleThroughAFile) {
  ScratchDir dir;
  write_file(dir / "a.txt", "aaabdaaabac");
  BpeTrainingConfig config;
  config.vocab_size = 259;
  config.min_frequency = 1;
  config.pattern = kGpt2Pattern;  // one word: the whole string
  const TokenizerFile t = train_bpe_on_files({dir / "a.txt"}, config);
  ASSERT_EQ(t.spec.tokens_by_rank.size(), 259u);
  EXPECT_EQ(t.spec.tokens_by_rank[256], "aa");
  EXPECT_EQ(t.spec.tokens_by_rank[257], "ab");
  EXPECT_EQ(t.spec.tokens_by_rank[258], "aaab");
  config.pattern = "";
  EXPECT_THROW(train_bpe_on_files({dir / "a.txt"}, config), ConfigError);
  config.pattern = "(";
  EXPECT_THROW(train_bpe_on_files({dir / "a.txt"}, config), ConfigError);
  config.pattern = kGpt2Pattern;
  config.special_tokens = {"x", "x"};
  EXPECT_THROW(train_bpe_on_files({dir / "a.txt"}, config), ConfigError);
}

}  // namespace
}  // namespace troupe::tokenizers
