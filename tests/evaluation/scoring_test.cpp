// evaluation/loglikelihood.h and evaluation/perplexity.h against Hugging Face transformers running the same GPT-2
// (tests/evaluation/hf_scoring_reference.py makes it and computes the reference values in the test).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include "core/errors.h"
#include "evaluation/loglikelihood.h"
#include "evaluation/perplexity.h"
#include "models/gpt_checkpoint.h"
#include "tests/support/test_support.h"

namespace troupe::evaluation {
namespace {

using nlohmann::json;

struct Reference {
  testing::ScratchDir dir{"troupe-eval-scoring"};
  json data;
  models::Gpt model{nullptr};
};

Reference& reference() {
  static Reference* ref = [] {
    auto* r = new Reference;
    const auto result = testing::run_process(
        {TROUPE_PYTHON, (testing::source_dir() / "tests/evaluation/hf_scoring_reference.py").string(),
         r->dir.path().string()},
        std::chrono::seconds(300));
    if (result.exit_code != 0) throw std::runtime_error("hf_scoring_reference.py failed:\n" + result.output);
    r->data = json::parse(testing::read_file(r->dir / "reference.json"));
    r->model = models::load_pretrained_gpt(r->dir / "hf");
    return r;
  }();
  return *ref;
}

std::vector<ContinuationRequest> requests_of(const json& data) {
  std::vector<ContinuationRequest> out;
  for (const auto& r : data["requests"]) {
    out.push_back({r["context"].get<std::vector<int64_t>>(), r["continuation"].get<std::vector<int64_t>>()});
  }
  return out;
}

TEST(ContinuationScores, EqualHuggingFaceLogLikelihoodsAndGreedyFlagsWithSharedContextsAndTruncation) {
  Reference& ref = reference();
  const auto requests = requests_of(ref.data);
  for (int64_t batch : {1, 3, 32}) {
    const auto scores = score_continuations(ref.model, requests, batch);
    ASSERT_EQ(scores.size(), requests.size());
    int greedy = 0, truncated = 0;
    for (size_t i = 0; i < requests.size(); ++i) {
      const json& r = ref.data["requests"][i];
      EXPECT_NEAR(scores[i].logprob, r["logprob"].get<double>(), 2e-4) << "request " << i << " batch " << batch;
      EXPECT_EQ(scores[i].is_greedy, r["is_greedy"].get<bool>()) << "request " << i;
      greedy += scores[i].is_greedy;
      truncated += requests[i].context.size() + requests[i].continuation.size() > 33;
    }
    EXPECT_GT(greedy, 10);    // the reference made one greedy continuation per context
    EXPECT_GT(truncated, 3);  // and contexts that only fit truncated
  }
}

TEST(ContinuationScores, BadRequestsAreErrors) {
  Reference& ref = reference();
  EXPECT_THROW(score_continuations(ref.model, {{{}, {1}}}), DataError);
  EXPECT_THROW(score_continuations(ref.model, {{{1}, {}}}), DataError);
  EXPECT_THROW(score_continuations(ref.model, {{{1}, std::vector<int64_t>(33, 1)}}), DataError);
}

TEST(Perplexity, SlidingWindowEqualsHuggingFaceAndStrideEqualWindowIsNonOverlapping) {
  Reference& ref = reference();
  const auto seq = ref.data["sequence"].get<std::vector<int64_t>>();
  for (const auto& p : ref.data["perplexity"]) {
    const int64_t window = p["window"], stride = p["stride"];
    for (int64_t batch : {1, 5}) {
      const PerplexityResult r = sliding_window_perplexity(ref.model, seq, window, stride, batch);
      EXPECT_EQ(r.tokens, p["tokens"].get<int64_t>()) << window << "/" << stride;
      // Every token from position 1 on is scored, but for stride = window the first of each later window.
      EXPECT_EQ(r.tokens, static_cast<int64_t>(seq.size()) - 1 - (stride == window ? r.windows - 1 : 0));
      EXPECT_NEAR(r.nll_sum, p["nll_sum"].get<double>(), 1e-6 * r.nll_sum) << window << "/" << stride;
    }
  }
  // stride = window: the sum over independent chunks of `window` tokens, each scoring its tokens 1..end.
  const int64_t window = 20;
  double chunks = 0;
  for (size_t begin = 0; begin < seq.size(); begin += window) {
    const size_t end = std::min(seq.size(), begin + window);
    if (end - begin < 2) continue;
    chunks += sliding_window_perplexity(ref.model, std::vector<int64_t>(seq.begin() + begin, seq.begin() + end),
                                        static_cast<int64_t>(end - begin), static_cast<int64_t>(end - begin))
                  .nll_sum;
  }
  const PerplexityResult whole = sliding_window_perplexity(ref.model, seq, window, window);
  EXPECT_NEAR(whole.nll_sum, chunks, 1e-6 * chunks);  // float32 sums, batched differently
  // More context per token cannot be worse on average here by much; mostly a sanity check that strides differ.
  EXPECT_NE(sliding_window_perplexity(ref.model, seq, 32, 4).nll_sum,
            sliding_window_perplexity(ref.model, seq, 32, 32).nll_sum);
  EXPECT_THROW(sliding_window_perplexity(ref.model, seq, 33, 1), ConfigError);
  EXPECT_THROW(sliding_window_perplexity(ref.model, seq, 8, 9), ConfigError);
  EXPECT_THROW(sliding_window_perplexity(ref.model, {1}, 8, 8), DataError);
}

}  // namespace
}  // namespace troupe::evaluation
