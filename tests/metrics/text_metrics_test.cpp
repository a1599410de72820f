// metrics/text_metrics.h: the by-name entry point gives what each metric's own (reference-tested) function gives.
#include "metrics/text_metrics.h"

#include <gtest/gtest.h>

#include "core/errors.h"
#include "metrics/bleu.h"
#include "metrics/chrf.h"
#include "metrics/meteor.h"
#include "metrics/rouge.h"
#include "metrics/squad.h"

namespace troupe::metrics {
namespace {

const std::vector<std::string> kHyps = {"the cat sat on the mat", "a quick brown fox", "", "hello there world"};
const std::vector<std::vector<std::string>> kRefs = {{"the cat is on the mat", "a cat sat on the mat"},
                                                     {"the quick brown fox jumps", "quick brown foxes"},
                                                     {"nothing here", "empty"},
                                                     {"hello world", "hello there, world"}};

TEST(TextMetrics, BleuAndChrfAreTheCorpusScoresWithSentenceScoresPerExample) {
  const TextMetricResult b = compute_text_metric("bleu", kHyps, kRefs);
  const BleuScore corpus = corpus_bleu(kHyps, kRefs);
  EXPECT_EQ(b.headline(), corpus.score);
  EXPECT_EQ(b.signature, corpus.signature);
  EXPECT_EQ(b.summary, corpus.format());
  ASSERT_EQ(b.per_example.size(), kHyps.size());
  for (size_t i = 0; i < kHyps.size(); ++i) EXPECT_DOUBLE_EQ(b.per_example[i], sentence_bleu(kHyps[i], kRefs[i]).score);
  const TextMetricResult c = compute_text_metric("chrf++", kHyps, kRefs);
  ChrfOptions pp;
  pp.word_order = 2;
  EXPECT_EQ(c.headline(), corpus_chrf(kHyps, kRefs, pp).score);
  for (size_t i = 0; i < kHyps.size(); ++i)
    EXPECT_DOUBLE_EQ(c.per_example[i], sentence_chrf(kHyps[i], kRefs[i], pp).score);
  TextMetricOptions lc;
  lc.lowercase = true;
  lc.tokenize = "none";
  EXPECT_NE(compute_text_metric("bleu", kHyps, kRefs, lc).signature, b.signature);
}

TEST(TextMetrics, RougeMeteorSquadExactMatchAndAccuracy) {
  const TextMetricResult r = compute_text_metric("rouge", kHyps, kRefs);
  const RougeScores mean = corpus_rouge(kRefs, kHyps);
  EXPECT_EQ(r.values[0].first, "rouge1");
  EXPECT_NEAR(r.values[0].second, mean.at("rouge1").fmeasure, 1e-15);
  EXPECT_NEAR(r.values[2].second, mean.at("rougeL").fmeasure, 1e-15);
  const TextMetricResult l = compute_text_metric("rougeL", kHyps, kRefs);
  for (size_t i = 0; i < kHyps.size(); ++i) {
    RougeOptions o;
    o.types = {"rougeL"};
    EXPECT_EQ(l.per_example[i], rouge_score_multi(kRefs[i], kHyps[i], o).at("rougeL").fmeasure);
  }
  EXPECT_NEAR(compute_text_metric("meteor", kHyps, kRefs).headline(), corpus_meteor(kRefs, kHyps), 1e-15);
  EXPECT_EQ(compute_text_metric("squad", kHyps, kRefs).headline(), squad_scores(kHyps, kRefs).exact_match);
  const TextMetricResult em = compute_text_metric("exact_match", {"a", "b", "c"}, {{"a"}, {"x", "b"}, {"C"}});
  EXPECT_EQ(em.per_example, (std::vector<double>{1, 1, 0}));
  EXPECT_NEAR(em.headline(), 2.0 / 3, 1e-15);
  const TextMetricResult acc = compute_text_metric("accuracy", {"pos", "neg", "pos"}, {{"pos"}, {"pos"}, {"pos"}});
  EXPECT_NEAR(acc.headline(), 2.0 / 3, 1e-15);
}

TEST(TextMetrics, ErrorsNameTheMetricAndTheProblem) {
  try {
    compute_text_metric("blue", kHyps, kRefs);
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("unknown metric 'blue'"), std::string::npos);
  }
  EXPECT_THROW(compute_text_metric("bleu", {"a"}, {}), DataError);
  EXPECT_THROW(compute_text_metric("rouge1", {"a"}, {{}}), DataError);
  EXPECT_THROW(compute_text_metric("accuracy", {"a"}, {{"a", "b"}}), DataError);
  EXPECT_THROW(compute_text_metric("meteor", {}, {}), DataError);
}

}  // namespace
}  // namespace troupe::metrics
