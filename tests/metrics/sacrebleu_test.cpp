// BLEU, chrF/chrF++ and TER against sacreBLEU 2.6.0 (tests/metrics/sacrebleu_reference.py runs sacrebleu on the
// shared seeded corpus with 1, 2 and 4 references), sacreBLEU's tokenizers line by line, hand-computed cases and
// the error cases. Not a benchmark.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/errors.h"
#include "metrics/bleu.h"
#include "metrics/chrf.h"
#include "metrics/sacrebleu_tokenizers.h"
#include "metrics/ter.h"
#include "tests/support/test_support.h"

namespace troupe::metrics {
namespace {

using nlohmann::json;
using Refs = std::vector<std::vector<std::string>>;

constexpr double kTolerance = 1e-9;

// ---- The reference: sacrebleu_reference.py, one section per test ----

// Runs the reference script for `section` and returns its JSON, or null after a test failure with its output.
json reference(const std::string& section) {
  const std::string python = TROUPE_PYTHON;
  if (python.empty() || !std::filesystem::exists(python)) {
    ADD_FAILURE() << "no " << python << ": run `make deps`";
    return nullptr;
  }
  troupe::testing::ScratchDir dir("sacrebleu");
  const auto out = dir / "reference.json";
  const auto script = troupe::testing::source_dir() / "tests" / "metrics" / "sacrebleu_reference.py";
  const auto result =
      troupe::testing::run_process({python, script.string(), out.string(), section}, std::chrono::seconds(280));
  if (result.exit_code != 0) {
    ADD_FAILURE() << "sacrebleu_reference.py " << section << " failed:\n" << result.output;
    return nullptr;
  }
  json parsed = json::parse(troupe::testing::read_file(out));
  EXPECT_EQ(parsed.at("version"), "2.6.0") << "the reference is another sacrebleu version";
  return parsed;
}

// A string as a C literal: quotes, backslashes and control bytes escaped (UTF-8 kept), for failure messages.
std::string escaped(const std::string& s) {
  std::string out = "\"";
  for (const char c : s) {
    const auto b = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (b < 0x20 || b == 0x7F) {
      out += fmt::format("\\x{:02x}", b);
    } else {
      out += c;
    }
  }
  return out + "\"";
}

std::string describe(const std::string& hyp, const std::vector<std::string>& refs) {
  std::string out = "hyp " + escaped(hyp);
  for (size_t r = 0; r < refs.size(); ++r) out += fmt::format("\n  ref[{}] {}", r, escaped(refs[r]));
  return out;
}

// Counts mismatches and reports the first few in full (field, both values, where); the test fails if any.
class Mismatches {
 public:
  ~Mismatches() {
    EXPECT_EQ(count_, 0) << count_ << " of " << checked_ << " values differ from sacrebleu";
    EXPECT_GT(checked_, 0) << "nothing was compared";
  }
  void near(double got, double want, std::string_view field, const std::function<std::string()>& where) {
    ++checked_;
    if (std::abs(got - want) <= kTolerance) return;
    report(fmt::format("{}: got {:.17g}, sacrebleu {:.17g}", field, got, want), where);
  }
  void near(const std::vector<double>& got, const std::vector<double>& want, std::string_view field,
            const std::function<std::string()>& where) {
    bool same = got.size() == want.size();
    for (size_t k = 0; same && k < got.size(); ++k) same = std::abs(got[k] - want[k]) <= kTolerance;
    ++checked_;
    if (!same) report(fmt::format("{}: got {}, sacrebleu {}", field, json(got).dump(), json(want).dump()), where);
  }
  template <class T>
  void equal(const T& got, const T& want, std::string_view field, const std::function<std::string()>& where) {
    ++checked_;
    if (got == want) return;
    report(fmt::format("{}: got {}, sacrebleu {}", field, json(got).dump(), json(want).dump()), where);
  }
  int checked() const { return checked_; }

 private:
  void report(const std::string& what, const std::function<std::string()>& where) {
    if (++count_ <= 8) ADD_FAILURE() << what << "\n  at " << where();
  }
  int count_ = 0;
  int checked_ = 0;
};

BleuOptions bleu_options(const json& j) {
  BleuOptions o;
  o.tokenize = j.at("tokenize").get<std::string>();
  o.lowercase = j.at("lowercase").get<bool>();
  o.smooth_method = j.at("smooth_method").get<std::string>();
  if (!j.at("smooth_value").is_null()) o.smooth_value = j.at("smooth_value").get<double>();
  o.max_ngram_order = j.at("max_ngram_order").get<int>();
  o.effective_order = j.at("effective_order").get<bool>();
  return o;
}

ChrfOptions chrf_options(const json& j) {
  ChrfOptions o;
  o.char_order = j.at("char_order").get<int>();
  o.word_order = j.at("word_order").get<int>();
  o.beta = j.at("beta").get<double>();
  o.lowercase = j.at("lowercase").get<bool>();
  o.whitespace = j.at("whitespace").get<bool>();
  o.eps_smoothing = j.at("eps_smoothing").get<bool>();
  return o;
}

TerOptions ter_options(const json& j) {
  TerOptions o;
  o.normalized = j.at("normalized").get<bool>();
  o.no_punct = j.at("no_punct").get<bool>();
  o.asian_support = j.at("asian_support").get<bool>();
  o.case_sensitive = j.at("case_sensitive").get<bool>();
  return o;
}

void compare_bleu(const BleuScore& got, const json& want, Mismatches& m, const std::function<std::string()>& where) {
  m.near(got.score, want.at("score").get<double>(), "score", where);
  m.equal(got.counts, want.at("counts").get<std::vector<int64_t>>(), "counts", where);
  m.equal(got.totals, want.at("totals").get<std::vector<int64_t>>(), "totals", where);
  m.near(got.precisions, want.at("precisions").get<std::vector<double>>(), "precisions", where);
  m.near(got.bp, want.at("bp").get<double>(), "bp", where);
  m.equal(got.sys_len, want.at("sys_len").get<int64_t>(), "sys_len", where);
  m.equal(got.ref_len, want.at("ref_len").get<int64_t>(), "ref_len", where);
  m.equal(got.format(), want.at("format").get<std::string>(), "format", where);
}

void compare_ter(const TerScore& got, const json& want, Mismatches& m, const std::function<std::string()>& where) {
  m.near(got.score, want.at("score").get<double>(), "score", where);
  m.equal(got.num_edits, want.at("num_edits").get<int64_t>(), "num_edits", where);
  m.near(got.ref_length, want.at("ref_length").get<double>(), "ref_length", where);
  m.equal(got.format(), want.at("format").get<std::string>(), "format", where);
}

// Calls body(variant name, hyps, refs, results) for each corpus variant of the section; returns the pair count.
size_t for_each_variant(
    const json& ref,
    const std::function<void(const std::string&, const std::vector<std::string>&, const Refs&, const json&)>& body) {
  size_t pairs = 0;
  for (const json& v : ref.at("variants")) {
    const auto hyps = v.at("hyps").get<std::vector<std::string>>();
    const auto refs = v.at("refs").get<Refs>();
    pairs += hyps.size();
    body(v.at("name").get<std::string>(), hyps, refs, v.at("results"));
  }
  return pairs;
}

// ---- Tokenizers ----

void compare_tokenizer(const std::string& name, const std::function<std::string(const std::string&)>& tokenize) {
  const json ref = reference("tokenizers");
  ASSERT_FALSE(ref.is_null());
  const auto lines = ref.at("tokenizers").at("lines").get<std::vector<std::string>>();
  const auto want = ref.at("tokenizers").at(name).get<std::vector<std::string>>();
  ASSERT_EQ(lines.size(), want.size());
  EXPECT_GT(lines.size(), 1000u);
  Mismatches m;
  for (size_t i = 0; i < lines.size(); ++i) {
    m.equal(tokenize(lines[i]), want[i], name, [&] { return "line " + escaped(lines[i]); });
  }
}

TEST(SacrebleuTokenizers, Tokenizer13aMatchesSacrebleuOnEveryCorpusLine) { compare_tokenizer("13a", tokenize_13a); }
TEST(SacrebleuTokenizers, TokenizerIntlMatchesSacrebleuOnEveryCorpusLine) { compare_tokenizer("intl", tokenize_intl); }
TEST(SacrebleuTokenizers, TokenizerCharMatchesSacrebleuOnEveryCorpusLine) { compare_tokenizer("char", tokenize_char); }

TEST(SacrebleuTokenizers, TercomTokenizerMatchesSacrebleuOnEveryCorpusLine) {
  const json ref = reference("tokenizers");
  ASSERT_FALSE(ref.is_null());
  const auto lines = ref.at("tokenizers").at("lines").get<std::vector<std::string>>();
  Mismatches m;
  for (const json& variant : ref.at("tokenizers").at("tercom")) {
    const TerOptions options = ter_options(variant.at("options"));
    const auto want = variant.at("tokens").get<std::vector<std::string>>();
    for (size_t i = 0; i < lines.size(); ++i) {
      m.equal(tokenize_tercom(lines[i], options), want[i], "tercom",
              [&] { return variant.at("options").dump() + " line " + escaped(lines[i]); });
    }
  }
}

TEST(SacrebleuTokenizers, HandCases) {
  EXPECT_EQ(tokenize_13a("Hello, world! It's 3.14 or 1,000-2."), "Hello , world ! It's 3.14 or 1,000 - 2 .");
  EXPECT_EQ(tokenize_13a("a<skipped>b &amp;lt; x-\ny"), "ab < xy");  // entities are replaced one after another
  EXPECT_EQ(tokenize_intl("Hello, world! $5"), "Hello , world ! $ 5");
  EXPECT_EQ(tokenize_char("ab c"), "a b   c");
  EXPECT_EQ(tokenize_tercom("Hello, World!"), "hello, world!");
  EXPECT_EQ(tokenize_tercom("Hello, World!", {.normalized = true}), "hello , world !");
  EXPECT_EQ(tokenize_tercom("Hello, (World)!", {.no_punct = true, .case_sensitive = true}), "Hello World");
  EXPECT_THROW(tokenize_13a("bad \xff byte"), DataError);
}

// ---- BLEU ----

TEST(Bleu, CorpusBleuMatchesSacrebleuForEveryOptionSet) {
  const json ref = reference("bleu_corpus");
  ASSERT_FALSE(ref.is_null());
  Mismatches m;
  const size_t pairs =
      for_each_variant(ref, [&](const std::string& name, const auto& hyps, const Refs& refs, const json& results) {
        for (const json& want : results) {
          const BleuOptions options = bleu_options(want.at("options"));
          const auto where = [&] { return name + " " + want.at("options").dump(); };
          const BleuScore got = corpus_bleu(hyps, refs, options);
          compare_bleu(got, want, m, where);
          m.equal(got.signature, want.at("signature").get<std::string>(), "signature", where);
        }
      });
  EXPECT_GE(pairs, 500u);
}

TEST(Bleu, SentenceBleuMatchesSacrebleuOnEveryPair) {
  const json ref = reference("bleu_sentence");
  ASSERT_FALSE(ref.is_null());
  Mismatches m;
  const size_t pairs =
      for_each_variant(ref, [&](const std::string& name, const auto& hyps, const Refs& refs, const json& results) {
        for (const json& set : results) {
          const BleuOptions options = bleu_options(set.at("options"));
          const auto& scores = set.at("scores");
          ASSERT_EQ(scores.size(), hyps.size());
          for (size_t i = 0; i < hyps.size(); ++i) {
            const auto where = [&] {
              return fmt::format("{} pair {} {}\n  {}", name, i, set.at("options").dump(), describe(hyps[i], refs[i]));
            };
            const BleuScore got = sentence_bleu(hyps[i], refs[i], options);
            compare_bleu(got, scores[i], m, where);
            if (i == 0) m.equal(got.signature, set.at("signature").get<std::string>(), "signature", where);
          }
        }
      });
  EXPECT_GE(pairs, 500u);
}

// Worked example: every n-gram of a 4-token hypothesis matches, the reference has 6 tokens.
// BP = exp(1 - 6/4) = exp(-0.5); BLEU = 100 * BP.
TEST(Bleu, BrevityPenaltyOfAShortPerfectHypothesis) {
  const BleuScore s = corpus_bleu({"a b c d"}, {{"a b c d e f"}});
  EXPECT_EQ(s.counts, (std::vector<int64_t>{4, 3, 2, 1}));
  EXPECT_EQ(s.totals, (std::vector<int64_t>{4, 3, 2, 1}));
  EXPECT_NEAR(s.bp, std::exp(-0.5), 1e-15);
  EXPECT_NEAR(s.score, 100 * std::exp(-0.5), 1e-12);
  EXPECT_EQ(s.sys_len, 4);
  EXPECT_EQ(s.ref_len, 6);
  EXPECT_EQ(s.format(), "BLEU = 60.65 100.0/100.0/100.0/100.0 (BP = 0.607 ratio = 0.667 hyp_len = 4 ref_len = 6)");
  EXPECT_EQ(s.signature, "nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0");
}

// Papineni et al.'s example: "the" is clipped to its largest count in one reference (2), not the sum (3).
TEST(Bleu, ClipsCountsToTheMostGenerousReference) {
  const BleuScore s = corpus_bleu({"the the the the the the the"},
                                  {{"the cat is on the mat", "there is a cat on the mat"}}, {.smooth_method = "none"});
  EXPECT_EQ(s.counts, (std::vector<int64_t>{2, 0, 0, 0}));
  EXPECT_EQ(s.totals, (std::vector<int64_t>{7, 6, 5, 4}));
  EXPECT_NEAR(s.precisions[0], 200.0 / 7, 1e-12);
  EXPECT_EQ(s.score, 0.0);
  EXPECT_EQ(s.ref_len, 7);  // |7 - 7| beats |7 - 6|
  EXPECT_EQ(s.signature, "nrefs:2|case:mixed|eff:no|tok:13a|smooth:none|version:2.6.0");
}

TEST(Bleu, ClosestReferenceLengthTakesTheShorterOnATie) {
  EXPECT_EQ(corpus_bleu({"a b c d e"}, {{"a b c d", "a b c d e f"}}).ref_len, 4);
  EXPECT_EQ(corpus_bleu({"a b c d e"}, {{"a b c d e f", "a b c d"}}).ref_len, 4);
}

// counts (3, 2, 1, 0) of totals (4, 3, 2, 1): exp halves the missing 4-gram's count, floor puts 0.1 there, add-k adds
// 1 to orders >= 2.
TEST(Bleu, SmoothingMethodsOnAMissingOrder) {
  const std::vector<std::string> hyps{"a b c x"};
  const Refs refs{{"a b c d"}};
  const BleuScore exp = corpus_bleu(hyps, refs);
  EXPECT_NEAR(exp.precisions[3], 100.0 / 2, 1e-12);
  EXPECT_NEAR(exp.score, 100 * std::pow(0.75 * (2.0 / 3) * 0.5 * 0.5, 0.25), 1e-9);
  const BleuScore floor = corpus_bleu(hyps, refs, {.smooth_method = "floor"});
  EXPECT_NEAR(floor.precisions[3], 10.0, 1e-12);
  EXPECT_NEAR(floor.score, 100 * std::pow(0.75 * (2.0 / 3) * 0.5 * 0.1, 0.25), 1e-9);
  EXPECT_EQ(floor.signature, "nrefs:1|case:mixed|eff:no|tok:13a|smooth:floor[0.10]|version:2.6.0");
  const BleuScore add_k = corpus_bleu(hyps, refs, {.smooth_method = "add-k"});
  EXPECT_EQ(add_k.counts, (std::vector<int64_t>{3, 3, 2, 1}));
  EXPECT_EQ(add_k.totals, (std::vector<int64_t>{4, 4, 3, 2}));
  EXPECT_NEAR(add_k.score, 100 * std::pow(0.75 * 0.75 * (2.0 / 3) * 0.5, 0.25), 1e-9);
  EXPECT_EQ(add_k.signature, "nrefs:1|case:mixed|eff:no|tok:13a|smooth:add-k[1.00]|version:2.6.0");
  EXPECT_EQ(corpus_bleu(hyps, refs, {.smooth_method = "none"}).score, 0.0);
}

TEST(Bleu, SentenceBleuUsesEffectiveOrder) {
  const BleuScore s = sentence_bleu("a b", {"a b"});
  EXPECT_NEAR(s.score, 100.0, 1e-12);  // orders 1 and 2 only
  EXPECT_EQ(s.signature, "nrefs:1|case:mixed|eff:yes|tok:13a|smooth:exp|version:2.6.0");
  BleuOptions no_eff;
  EXPECT_EQ(sentence_bleu("a b", {"a b"}, no_eff).score, 0.0);  // orders 3 and 4 have no n-grams: log floored
}

TEST(Bleu, EmptyHypothesisAndReferences) {
  const BleuScore empty_hyp = corpus_bleu({""}, {{"a b"}});
  EXPECT_EQ(empty_hyp.score, 0.0);
  EXPECT_EQ(empty_hyp.bp, 0.0);
  EXPECT_EQ(empty_hyp.format(), "BLEU = 0.00 0.0/0.0/0.0/0.0 (BP = 0.000 ratio = 0.000 hyp_len = 0 ref_len = 2)");
  const BleuScore both_empty = corpus_bleu({"  "}, {{""}});
  EXPECT_EQ(both_empty.score, 0.0);
  EXPECT_EQ(both_empty.bp, 1.0);
  EXPECT_EQ(both_empty.format(), "BLEU = 0.00 0.0/0.0/0.0/0.0 (BP = 1.000 ratio = 0.000 hyp_len = 0 ref_len = 0)");
}

TEST(Bleu, LowercaseAndTokenizerOptions) {
  EXPECT_NEAR(corpus_bleu({"The Cat sat."}, {{"the cat sat ."}}, {.lowercase = true}).score, 100.0, 1e-12);
  EXPECT_LT(corpus_bleu({"The Cat sat."}, {{"the cat sat ."}}).score, 100.0);
  // "none" splits on whitespace only: "cat." is one token.
  EXPECT_EQ(corpus_bleu({"the cat."}, {{"the cat ."}}, {.tokenize = "none"}).counts[0], 1);
  EXPECT_EQ(corpus_bleu({"the cat."}, {{"the cat ."}}, {.tokenize = "char"}).totals[0], 7);
}

TEST(Bleu, SegmentStatisticsSumToTheCorpusScore) {
  const std::vector<std::string> hyps{"the cat sat", "on the mat .", ""};
  const Refs refs{{"the cat sat down"}, {"on a mat ."}, {"x"}};
  BleuStats sum;
  sum.counts.assign(4, 0);
  sum.totals.assign(4, 0);
  for (const BleuStats& s : bleu_segment_stats(hyps, refs)) sum += s;
  const BleuScore from_stats = bleu_from_stats(sum, {}, 1);
  const BleuScore corpus = corpus_bleu(hyps, refs);
  EXPECT_EQ(from_stats.score, corpus.score);
  EXPECT_EQ(from_stats.counts, corpus.counts);
  EXPECT_EQ(from_stats.format(), corpus.format());
}

TEST(Bleu, RejectsBadInputsAndOptions) {
  EXPECT_THROW(corpus_bleu({}, {}), DataError);
  EXPECT_THROW(corpus_bleu({"a", "b"}, {{"a"}}), DataError);
  EXPECT_THROW(corpus_bleu({"a", "b"}, {{"a"}, {"b", "c"}}), DataError);
  EXPECT_THROW(corpus_bleu({"a"}, {{}}), DataError);
  EXPECT_THROW(sentence_bleu("a", {}), DataError);
  EXPECT_THROW(corpus_bleu({"a"}, {{"\xc3("}}), DataError);
  EXPECT_THROW(corpus_bleu({"a"}, {{"a"}}, {.tokenize = "zh"}), ConfigError);
  EXPECT_THROW(corpus_bleu({"a"}, {{"a"}}, {.smooth_method = "add-one"}), ConfigError);
  EXPECT_THROW(corpus_bleu({"a"}, {{"a"}}, {.max_ngram_order = 0}), ConfigError);
  EXPECT_THROW(corpus_bleu({"a"}, {{"a"}}, {.smooth_method = "add-k", .smooth_value = 0.5}), ConfigError);
  EXPECT_THROW(corpus_bleu({"a"}, {{"a"}}, {.smooth_method = "floor", .smooth_value = -1}), ConfigError);
}

// ---- chrF ----

TEST(Chrf, CorpusChrfMatchesSacrebleuForEveryOptionSet) {
  const json ref = reference("chrf_corpus");
  ASSERT_FALSE(ref.is_null());
  Mismatches m;
  const size_t pairs =
      for_each_variant(ref, [&](const std::string& name, const auto& hyps, const Refs& refs, const json& results) {
        for (const json& want : results) {
          const ChrfOptions options = chrf_options(want.at("options"));
          const auto where = [&] { return name + " " + want.at("options").dump(); };
          const ChrfScore got = corpus_chrf(hyps, refs, options);
          m.near(got.score, want.at("score").get<double>(), "score", where);
          m.equal(got.format(), want.at("format").get<std::string>(), "format", where);
          m.equal(got.signature, want.at("signature").get<std::string>(), "signature", where);
        }
      });
  EXPECT_GE(pairs, 500u);
}

TEST(Chrf, SentenceChrfMatchesSacrebleuOnEveryPair) {
  const json ref = reference("chrf_sentence");
  ASSERT_FALSE(ref.is_null());
  Mismatches m;
  const size_t pairs =
      for_each_variant(ref, [&](const std::string& name, const auto& hyps, const Refs& refs, const json& results) {
        for (const json& set : results) {
          const ChrfOptions options = chrf_options(set.at("options"));
          const auto& scores = set.at("scores");
          ASSERT_EQ(scores.size(), hyps.size());
          for (size_t i = 0; i < hyps.size(); ++i) {
            const auto where = [&] {
              return fmt::format("{} pair {} {}\n  {}", name, i, set.at("options").dump(), describe(hyps[i], refs[i]));
            };
            const ChrfScore got = sentence_chrf(hyps[i], refs[i], options);
            m.near(got.score, scores[i].at("score").get<double>(), "score", where);
            m.equal(got.format(), scores[i].at("format").get<std::string>(), "format", where);
            if (i == 0) m.equal(got.signature, set.at("signature").get<std::string>(), "signature", where);
          }
        }
      });
  EXPECT_GE(pairs, 500u);
}

// char_order 2, "ab" against "abc": unigrams P = 2/2, R = 2/3; bigrams P = 1/1, R = 1/2. Averages P = 1, R = 7/12;
// F2 = 5 P R / (4 P + R) = (35/12) / (55/12) = 7/11.
TEST(Chrf, WorkedExampleWithTwoCharacterOrders) {
  const ChrfScore s = sentence_chrf("ab", {"abc"}, {.char_order = 2});
  EXPECT_NEAR(s.score, 100.0 * 7 / 11, 1e-12);
  EXPECT_EQ(s.format(), "chrF2 = 63.64");
  EXPECT_EQ(s.signature, "nrefs:1|case:mixed|eff:yes|nc:2|nw:0|space:no|version:2.6.0");
}

TEST(Chrf, WhitespaceIsRemovedUnlessAsked) {
  EXPECT_NEAR(sentence_chrf("a b c", {"abc"}).score, 100.0, 1e-12);
  EXPECT_LT(sentence_chrf("a b c", {"abc"}, {.whitespace = true}).score, 100.0);
}

TEST(Chrf, ChrfPlusPlusSplitsPunctuationOffWords) {
  // "hello," is the words "hello" and ","; the characters agree once whitespace is gone.
  const ChrfScore s = sentence_chrf("hello, world", {"hello , world"}, {.word_order = 2});
  EXPECT_NEAR(s.score, 100.0, 1e-12);
  EXPECT_EQ(s.format(), "chrF2++ = 100.00");
  EXPECT_LT(sentence_chrf("hello world", {"world hello"}, {.word_order = 2}).score,
            sentence_chrf("hello world", {"world hello"}).score);
}

TEST(Chrf, BestReferenceAndEmptyCases) {
  EXPECT_NEAR(sentence_chrf("the cat", {"zzz", "the cat"}).score, 100.0, 1e-12);
  EXPECT_EQ(sentence_chrf("", {"abc"}).score, 0.0);
  EXPECT_EQ(sentence_chrf("abc", {""}).score, 0.0);
  EXPECT_EQ(sentence_chrf("", {""}).score, 0.0);
}

TEST(Chrf, RejectsBadOptionsAndInputs) {
  EXPECT_THROW(corpus_chrf({"a"}, {{"a"}}, {.char_order = -1}), ConfigError);
  EXPECT_THROW(corpus_chrf({"a"}, {{"a"}}, {.char_order = 0, .word_order = 0}), ConfigError);
  EXPECT_THROW(corpus_chrf({"a"}, {{"a"}}, {.beta = -1}), ConfigError);
  EXPECT_THROW(corpus_chrf({"a", "b"}, {{"a"}}), DataError);
  EXPECT_THROW(corpus_chrf({"\xe2\x82"}, {{"a"}}), DataError);
}

// ---- TER ----

TEST(Ter, CorpusTerMatchesSacrebleuForEveryOptionSet) {
  const json ref = reference("ter_corpus");
  ASSERT_FALSE(ref.is_null());
  Mismatches m;
  const size_t pairs =
      for_each_variant(ref, [&](const std::string& name, const auto& hyps, const Refs& refs, const json& results) {
        for (const json& want : results) {
          const TerOptions options = ter_options(want.at("options"));
          const auto where = [&] { return name + " " + want.at("options").dump(); };
          const TerScore got = corpus_ter(hyps, refs, options);
          compare_ter(got, want, m, where);
          m.equal(got.signature, want.at("signature").get<std::string>(), "signature", where);
        }
      });
  EXPECT_GE(pairs, 500u);
}

TEST(Ter, SentenceTerMatchesSacrebleuOnEveryPair) {
  const json ref = reference("ter_sentence");
  ASSERT_FALSE(ref.is_null());
  Mismatches m;
  const size_t pairs =
      for_each_variant(ref, [&](const std::string& name, const auto& hyps, const Refs& refs, const json& results) {
        for (const json& set : results) {
          const TerOptions options = ter_options(set.at("options"));
          const auto& scores = set.at("scores");
          ASSERT_EQ(scores.size(), hyps.size());
          for (size_t i = 0; i < hyps.size(); ++i) {
            const auto where = [&] {
              return fmt::format("{} pair {} {}\n  {}", name, i, set.at("options").dump(), describe(hyps[i], refs[i]));
            };
            const TerScore got = sentence_ter(hyps[i], refs[i], options);
            compare_ter(got, scores[i], m, where);
            if (i == 0) m.equal(got.signature, set.at("signature").get<std::string>(), "signature", where);
          }
        }
      });
  EXPECT_GE(pairs, 500u);
}

TEST(Ter, HandCases) {
  EXPECT_EQ(sentence_ter("a b c", {"a b c"}).score, 0.0);
  // One shift moves "c" to the end: 1 edit over 3 reference words (the edit distance alone says 2).
  EXPECT_EQ(translation_edits({3, 1, 2}, {1, 2, 3}), 1);
  EXPECT_NEAR(sentence_ter("c a b", {"a b c"}).score, 100.0 / 3, 1e-12);
  EXPECT_EQ(translation_edits({}, {1, 2}), 2);
  EXPECT_EQ(sentence_ter("", {"a b"}).score, 100.0);
  const TerScore empty_ref = sentence_ter("a b", {""});
  EXPECT_EQ(empty_ref.num_edits, 2);
  EXPECT_EQ(empty_ref.ref_length, 0.0);
  EXPECT_EQ(empty_ref.score, 100.0);
  EXPECT_EQ(sentence_ter("", {""}).score, 0.0);
  // Two references: the fewer edits, over the average reference length (2 + 4) / 2.
  const TerScore two = sentence_ter("a b", {"a b", "a b c d"});
  EXPECT_EQ(two.num_edits, 0);
  EXPECT_EQ(two.ref_length, 3.0);
  EXPECT_EQ(two.signature, "nrefs:2|case:lc|tok:tercom|norm:no|punct:yes|asian:no|version:2.6.0");
  EXPECT_EQ(sentence_ter("A", {"a"}).score, 0.0);
  EXPECT_EQ(sentence_ter("A", {"a"}, {.case_sensitive = true}).format(), "TER = 100.00");
  EXPECT_THROW(corpus_ter({"a"}, {{"a"}, {"b"}}), DataError);
}

// sacreBLEU tokenizes a TER reference twice, and normalisation is not idempotent: "it's\tx" becomes "it's x" and
// only then "it 's x". The hypothesis is tokenized once.
TEST(Ter, ReferencesAreTokenizedTwiceAsInSacrebleu) {
  EXPECT_EQ(tokenize_tercom("it's\tx", {.normalized = true}), "it's x");
  EXPECT_EQ(sentence_ter("it 's x", {"it's\tx"}, {.normalized = true}).score, 0.0);
  EXPECT_EQ(sentence_ter("it's\tx", {"it 's x"}, {.normalized = true}).num_edits, 2);
}

}  // namespace
}  // namespace troupe::metrics
