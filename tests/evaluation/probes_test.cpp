// evaluation/probes.h: the perturbations' properties, the bias probe against its definition (log-likelihoods from
// score_continuations, itself checked against Hugging Face).
#include "evaluation/probes.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "core/errors.h"
#include "evaluation/loglikelihood.h"
#include "metrics/unicode.h"
#include "tests/support/test_support.h"
#include "tokenizers/tokenizer_file.h"

namespace troupe::evaluation {
namespace {

const std::string kText = "The quick brown fox jumps over the lazy dog near the river bank today";

TEST(Perturbations, RateZeroIsIdentityAndEachKindKeepsWhatItShould) {
  for (const std::string kind : {"typos", "case", "whitespace", "distractor"}) {
    EXPECT_EQ(perturb_text(kText, {kind, 0.0, 1}, 3), kText) << kind;
    const std::string once = perturb_text(kText, {kind, 0.5, 1}, 3);
    EXPECT_EQ(perturb_text(kText, {kind, 0.5, 1}, 3), once) << kind << ": seeded";
    EXPECT_NE(once, kText) << kind;
    bool differs = false;  // another document or seed perturbs differently
    for (uint64_t doc = 4; doc < 10; ++doc) differs = differs || perturb_text(kText, {kind, 0.5, 1}, doc) != once;
    EXPECT_TRUE(differs) << kind;
  }
  // case: the same text ignoring case; whitespace: the same words.
  EXPECT_EQ(metrics::lower(perturb_text(kText, {"case", 1.0, 7}, 0)), metrics::lower(kText));
  EXPECT_EQ(metrics::split_whitespace(perturb_text(kText, {"whitespace", 1.0, 7}, 0)),
            metrics::split_whitespace(kText));
  // distractor at rate 1: the text intact, one sentence added before or after.
  const std::string d = perturb_text(kText, {"distractor", 1.0, 7}, 0);
  EXPECT_NE(d.find(kText), std::string::npos);
  EXPECT_GT(d.size(), kText.size() + 10);
  // typos touch letters only: digits and punctuation stay, and at rate 1 most words change.
  const std::string t = perturb_text("abc 123, def!", {"typos", 1.0, 7}, 0);
  EXPECT_NE(t.find("123, "), std::string::npos) << t;
  EXPECT_EQ(t.back(), '!');
  EXPECT_EQ(parse_perturbation("typos:0.25").rate, 0.25);
  EXPECT_EQ(parse_perturbation("case").kind, "case");
  EXPECT_THROW(parse_perturbation("shuffle:0.1"), ConfigError);
  EXPECT_THROW(parse_perturbation("typos:2"), ConfigError);
  EXPECT_THROW(parse_perturbation("typos:x"), ConfigError);
}

TEST(BiasProbe, IsTheMeanHeMinusSheLogLikelihoodOverOccupationsAndTemplates) {
  const auto tok =
      tokenizers::open_tokenizer((testing::source_dir() / "tests/fixtures/tokenizers/gpt2.tiktoken").string());
  torch::manual_seed(5);
  models::GptConfig c{.n_layer = 1, .n_head = 2, .n_embd = 16, .block_size = 32, .vocab_size = tok.vocab_size()};
  models::Gpt model(c);
  const std::vector<std::string> occupations = {"nurse", "carpenter", "teacher"};
  const std::vector<std::string> templates = {"The {occupation} said that", "Yesterday the {occupation} left as"};
  const BiasProbeResult r = gender_occupation_probe(model, tok, occupations, templates);
  ASSERT_EQ(r.rows.size(), 3u);
  auto ids = [&](const std::string& s) {
    const auto v = tok.encode_ordinary(s);
    return std::vector<int64_t>(v.begin(), v.end());
  };
  double mean = 0, abs_mean = 0, he = 0;
  for (size_t o = 0; o < occupations.size(); ++o) {
    double diff = 0;
    for (const std::string& prefix :
         {"The " + occupations[o] + " said that", "Yesterday the " + occupations[o] + " left as"}) {
      const auto s = score_continuations(model, {{ids(prefix), ids(" he")}, {ids(prefix), ids(" she")}});
      diff += s[0].logprob - s[1].logprob;
    }
    EXPECT_NEAR(r.rows[o].difference(), diff, 1e-4) << occupations[o];
    mean += diff / 2 / 3;
    abs_mean += std::fabs(diff / 2) / 3;
    he += diff > 0 ? 1.0 / 3 : 0;
  }
  EXPECT_NEAR(r.mean_difference, mean, 1e-4);
  EXPECT_NEAR(r.mean_abs_difference, abs_mean, 1e-4);
  EXPECT_NEAR(r.he_share, he, 1e-12);
  EXPECT_EQ(default_occupations().size(), 40u);
  EXPECT_THROW(gender_occupation_probe(model, tok, occupations, {"no placeholder"}), ConfigError);
}

}  // namespace
}  // namespace troupe::evaluation
