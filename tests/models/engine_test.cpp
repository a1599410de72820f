// Tests for models/engine.h, the rollout engine: greedy tokens and log-probs against models::generate for both
// architectures, batch invariance (every sample bit-identical to its solo run, with prefix sharing, chunked prefill
// and a small running batch), the KV blocks prefix sharing saves (exact counts), stop tokens and callbacks, the
// sampling distribution against softmax, weight reloads and errors.
#include "models/engine.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>

#include "core/errors.h"
#include "models/engine_kernels.h"
#include "models/generation.h"
#include "models/quant.h"

namespace troupe::models {
namespace engine_test {

GptConfig config(bool llama) {
  GptConfig c;
  c.arch = llama ? Arch::kLlama : Arch::kGpt2;
  c.n_layer = 2;
  c.n_head = 4;
  c.n_kv_head = llama ? 2 : 0;
  c.n_embd = 32;
  c.intermediate_size = 40;
  c.block_size = 96;
  c.vocab_size = 37;
  c.tie_embeddings = !llama;
  c.qkv_bias = llama;
  c.sliding_window = llama ? 24 : 0;
  return c;
}

Gpt model(bool llama, uint64_t seed = 7) {
  torch::manual_seed(seed);
  Gpt m(config(llama));
  torch::NoGradGuard no_grad;
  for (auto& p : m->parameters()) p.add_(torch::randn_like(p) * 0.3);  // varied tokens
  m->eval();
  return m;
}

std::vector<int64_t> prompt(int64_t length, int64_t salt) {
  std::vector<int64_t> p;
  for (int64_t i = 0; i < length; ++i) p.push_back((i * 7 + salt * 13 + 3) % 37);
  return p;
}

TEST(RolloutEngine, GreedyTokensAndLogprobsMatchGenerateForBothArchitectures) {
  for (bool llama : {false, true}) {
    SCOPED_TRACE(llama ? "llama" : "gpt2");
    Gpt m = model(llama);
    RolloutEngine engine(m);
    std::vector<RolloutRequest> requests;
    std::vector<std::vector<int64_t>> prompts;
    for (int64_t i = 0; i < 5; ++i) {
      RolloutRequest r;
      r.prompt = prompt(5 + 7 * i, i);
      r.params.max_new_tokens = 30;
      requests.push_back(r);
      prompts.push_back(r.prompt);
    }
    const auto samples = engine.run(requests);
    ASSERT_EQ(samples.size(), 5u);
    for (size_t i = 0; i < 5; ++i) {
      GenerationConfig g;
      g.max_new_tokens = 30;
      g.engine = GenerationEngine::kSimple;  // the padded-batch loop on the model's own forward
      const GenerationOutput ref = generate(m, {prompts[i]}, g);
      EXPECT_EQ(samples[i].tokens, ref.tokens[0]) << "prompt " << i;
      ASSERT_EQ(samples[i].logprobs.size(), ref.logprobs[0].size());
      for (size_t t = 0; t < ref.logprobs[0].size(); ++t) EXPECT_NEAR(samples[i].logprobs[t], ref.logprobs[0][t], 1e-4);
    }
  }
}

// Every sample of a mixed batch (shared prompts, chunked prefill, a running batch smaller than the work, several
// threads) equals the same (prompt, seed) run alone, to the bit.
TEST(RolloutEngine, EachSampleEqualsItsSoloRunBitForBit) {
  for (int variant = 0; variant < 4; ++variant) {
    const bool llama = variant > 0, bf16 = variant == 2, int8 = variant == 3;
    SCOPED_TRACE(int8 ? "llama, int8 codes" : bf16 ? "llama, bf16 weights" : llama ? "llama" : "gpt2");
    Gpt m = model(llama, 11);
    if (int8) quantize_gpt(m, GptQuantConfig{QuantOptions{QuantScheme::kInt8}, {"model.*", "lm_head"}, false, false});
    std::vector<RolloutRequest> requests;
    for (int64_t i = 0; i < 10; ++i) {
      RolloutRequest r;
      r.prompt = prompt(3 + 5 * i, i);
      r.params.do_sample = true;
      r.params.max_new_tokens = 12 + i;
      r.params.temperature = 0.7 + 0.1 * static_cast<double>(i % 3);
      r.params.top_k = i % 3 == 1 ? 5 : 0;
      r.params.top_p = i % 3 == 2 ? 0.8 : 1.0;
      r.params.stop_tokens = {static_cast<int64_t>(i % 4)};
      r.seeds = {100 + static_cast<uint64_t>(i), 200 + static_cast<uint64_t>(i), 300 + static_cast<uint64_t>(i)};
      requests.push_back(r);
    }
    EngineOptions batched;
    batched.block_size = 4;
    batched.max_batch = 16;
    batched.max_step_tokens = 13;
    batched.bf16_weights = bf16;
    RolloutEngine engine(m, batched);
    const auto together = engine.run(requests);
    ASSERT_EQ(together.size(), 30u);
    EngineOptions solo_options;
    solo_options.block_size = 16;
    solo_options.prefix_sharing = false;
    solo_options.bf16_weights = bf16;
    RolloutEngine solo(m, solo_options);
    int64_t differing_samples = 0;
    for (const RolloutSample& s : together) {
      RolloutRequest alone = requests[s.request];
      alone.seeds = {requests[s.request].seeds[s.sample]};
      const RolloutSample ref = solo.run({alone}).at(0);
      EXPECT_EQ(s.tokens, ref.tokens) << "request " << s.request << " sample " << s.sample;
      EXPECT_EQ(s.logprobs, ref.logprobs) << "request " << s.request << " sample " << s.sample;
      EXPECT_EQ(s.stopped, ref.stopped);
      if (s.sample > 0 && s.tokens != together[s.request * 3].tokens) ++differing_samples;
    }
    EXPECT_GT(differing_samples, 10);  // the seeds matter: samples of one prompt differ
  }
}

TEST(RolloutEngine, Bf16WeightsTrackTheFp32Engine) {
  Gpt m = model(true, 13);
  RolloutRequest r;
  r.prompt = prompt(20, 3);
  r.params.max_new_tokens = 16;
  EngineOptions o;
  RolloutEngine fp32(m, o);
  o.bf16_weights = true;
  RolloutEngine bf16(m, o);
  const RolloutSample a = fp32.run({r}).at(0), b = bf16.run({r}).at(0);
  // teacher-forced comparison on fp32's tokens: the first token's log-prob agrees to bf16 precision
  EXPECT_NEAR(a.logprobs[0], b.logprobs[0], 0.05);
  EXPECT_NE(a.logprobs[0], b.logprobs[0]);  // it did run in bf16
  int same = 0;
  for (size_t i = 0; i < a.tokens.size(); ++i) same += a.tokens[i] == b.tokens[i] ? 1 : 0;
  EXPECT_GE(same, 4);
}

TEST(RolloutEngine, Int8CodesMatchTheQuantizedModelsOwnForward) {
  Gpt m = model(true, 17);
  quantize_gpt(m, GptQuantConfig{QuantOptions{QuantScheme::kInt8}, {"model.*", "lm_head"}, false, false});
  RolloutRequest r;
  r.prompt = prompt(12, 5);
  r.params.max_new_tokens = 12;
  RolloutEngine engine(m);
  const RolloutSample s = engine.run({r}).at(0);
  GenerationConfig g;
  g.max_new_tokens = 12;
  g.engine = GenerationEngine::kSimple;  // the quantized layers' own kernels
  const GenerationOutput ref = generate(m, {r.prompt}, g);
  EXPECT_EQ(s.tokens, ref.tokens[0]);
  for (size_t t = 0; t < s.logprobs.size(); ++t) EXPECT_NEAR(s.logprobs[t], ref.logprobs[0][t], 2e-4);
}

// The fp32 matrix kernel gives the same bits on the AVX-512, AVX2 and portable paths (what this machine has of them),
// the same for a row alone as in a batch of 37 (tiles of 8, 4, 2 and 1 rows; 2 panels, the second partial).
TEST(EngineKernels, Fp32PathsAgreeBitForBitAndMatchADoubleReference) {
  torch::manual_seed(23);
  const int64_t M = 37, K = 70, N = 29;
  const torch::Tensor x = torch::randn({M, K}), w = torch::randn({N, K}), b = torch::randn({N});
  std::vector<std::vector<float>> results;
  for (int isa : {2, 1, 0}) {
    engine_kernels::force_isa(isa);
    std::vector<float> panels(static_cast<size_t>((N + 15) / 16 * K * 16));
    engine_kernels::pack_panels(w.data_ptr<float>(), N, K, panels.data());
    std::vector<float> y(static_cast<size_t>(M * N)), rows;
    engine_kernels::linear(x.data_ptr<float>(), M, K, panels.data(), N, b.data_ptr<float>(), y.data());
    for (int64_t m = 0; m < M; ++m) {  // each row alone, and without the bias
      std::vector<float> one(static_cast<size_t>(N));
      engine_kernels::linear(x.data_ptr<float>() + m * K, 1, K, panels.data(), N, nullptr, one.data());
      for (int64_t n = 0; n < N; ++n) one[static_cast<size_t>(n)] += b[n].item<float>();
      rows.insert(rows.end(), one.begin(), one.end());
    }
    EXPECT_EQ(rows, y) << "a row alone differs from the row in a batch (isa " << isa << ")";
    results.push_back(y);
  }
  engine_kernels::force_isa(2);
  EXPECT_EQ(results[0], results[1]);
  EXPECT_EQ(results[0], results[2]);
  const torch::Tensor ref = torch::addmm(b.to(torch::kDouble), x.to(torch::kDouble), w.to(torch::kDouble).t());
  const torch::Tensor got = torch::from_blob(results[0].data(), {M, N}, torch::kFloat32).to(torch::kDouble);
  EXPECT_LT((got - ref).abs().max().item<double>(), 1e-4);
}

TEST(RolloutEngine, PrefixSharingStoresAPromptOnce) {
  Gpt m = model(true);
  RolloutRequest r;
  r.prompt = prompt(40, 1);
  r.params.do_sample = true;
  r.params.max_new_tokens = 8;
  r.seeds = {1, 2, 3, 4, 5, 6, 7, 8};
  EngineOptions o;
  o.block_size = 4;
  RolloutEngine shared(m, o);
  const auto a = shared.run({r});
  // 10 prompt blocks once, then 2 blocks of new tokens per sample
  EXPECT_EQ(shared.stats().peak_kv_blocks, 10 + 8 * 2);
  EXPECT_EQ(shared.stats().prompt_tokens, 40);
  o.prefix_sharing = false;
  RolloutEngine separate(m, o);
  const auto b = separate.run({r});
  EXPECT_EQ(separate.stats().peak_kv_blocks, 8 * 12);
  EXPECT_EQ(separate.stats().prompt_tokens, 8 * 40);
  EXPECT_EQ(separate.stats().kv_block_bytes, 2 * 2 * 4 * 2 * 8 * 4);  // k+v, layers, slots, kv heads, head dim, fp32
  for (size_t i = 0; i < 8; ++i) EXPECT_EQ(a[i].tokens, b[i].tokens);
  r.prompt = prompt(42, 1);  // the partial 11th block is copied per sample: 10 shared + 3 own (50 positions)
  RolloutEngine partial(m, EngineOptions{4, 512, 2048, 0, true});
  partial.run({r});
  EXPECT_EQ(partial.stats().peak_kv_blocks, 10 + 8 * 3);
}

TEST(RolloutEngine, SharedWeightsGiveTheSameSamplesAsCopies) {
  Gpt m = model(true, 29);
  RolloutRequest r;
  r.prompt = prompt(9, 1);
  r.params.do_sample = true;
  r.params.max_new_tokens = 10;
  r.seeds = {5, 6, 7};
  EngineOptions shared;
  shared.share_weights = true;
  RolloutEngine a(m), b(m, shared);
  const auto x = a.run({r}), y = b.run({r});
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(x[i].tokens, y[i].tokens);
    EXPECT_EQ(x[i].logprobs, y[i].logprobs);
  }
}

TEST(RolloutEngine, StopTokensCallbacksAndLengthEndSamples) {
  Gpt m = model(false);
  RolloutEngine engine(m);
  RolloutRequest r;
  r.prompt = prompt(6, 2);
  r.params.max_new_tokens = 20;
  const auto free_run = engine.run({r}).at(0);
  ASSERT_EQ(free_run.tokens.size(), 20u);
  EXPECT_FALSE(free_run.stopped);
  r.params.stop_tokens = {free_run.tokens[4]};
  const auto stopped = engine.run({r}).at(0);
  const auto first =
      std::find(free_run.tokens.begin(), free_run.tokens.end(), free_run.tokens[4]) - free_run.tokens.begin();
  EXPECT_EQ(stopped.tokens, std::vector<int64_t>(free_run.tokens.begin(), free_run.tokens.begin() + first + 1));
  EXPECT_TRUE(stopped.stopped);
  r.params.stop_tokens.clear();
  const auto called =
      engine.run({r}, [](size_t, size_t, const std::vector<int64_t>& t) { return t.size() == 3; }).at(0);
  EXPECT_EQ(called.tokens.size(), 3u);
  EXPECT_TRUE(called.stopped);
}

// The bf16 matrix kernel: a row alone equals the row in a batch of 37 (every tile shape, an odd K, a partial
// panel), the AVX512_BF16 and portable paths agree, and the result is the fp32 product of the bf16-rounded operands
// within fp32 rounding.
TEST(EngineKernels, Bf16PanelsAreBatchInvariantAndMatchTheRoundedProduct) {
  torch::manual_seed(31);
  const int64_t M = 37, K = 71, N = 29;
  const torch::Tensor x = torch::randn({M, K}), w = torch::randn({N, K}).to(torch::kBFloat16), b = torch::randn({N});
  std::vector<uint32_t> panels(static_cast<size_t>((N + 15) / 16 * ((K + 1) / 2) * 16));
  engine_kernels::pack_panels_bf16(reinterpret_cast<const uint16_t*>(w.data_ptr<at::BFloat16>()), N, K, panels.data());
  std::vector<std::vector<float>> results;
  for (int isa : {2, 0}) {
    engine_kernels::force_isa(isa);
    std::vector<float> y(static_cast<size_t>(M * N)), rows;
    engine_kernels::linear_bf16(x.data_ptr<float>(), M, K, panels.data(), N, b.data_ptr<float>(), y.data());
    for (int64_t m = 0; m < M; ++m) {
      std::vector<float> one(static_cast<size_t>(N));
      engine_kernels::linear_bf16(x.data_ptr<float>() + m * K, 1, K, panels.data(), N, b.data_ptr<float>(), one.data());
      rows.insert(rows.end(), one.begin(), one.end());
    }
    EXPECT_EQ(rows, y) << "a row alone differs from the row in a batch (isa " << isa << ")";
    results.push_back(y);
  }
  engine_kernels::force_isa(2);
  EXPECT_EQ(results[0], results[1]);
  const torch::Tensor xr = x.to(torch::kBFloat16).to(torch::kDouble), wr = w.to(torch::kDouble);
  const torch::Tensor ref = torch::addmm(b.to(torch::kDouble), xr, wr.t());
  const torch::Tensor got = torch::from_blob(results[0].data(), {M, N}, torch::kFloat32).to(torch::kDouble);
  EXPECT_LT((got - ref).abs().max().item<double>(), 1e-4);
}

// The int8 matrix kernel (codes with per-row scales): a row alone equals the row in a batch, the AVX-512 and portable
// paths give the same bits, and the result is scale * (x . codes) + bias within fp32 rounding.
TEST(EngineKernels, Int8PanelsAreBatchInvariantAndMatchTheScaledProduct) {
  torch::manual_seed(37);
  const int64_t M = 37, K = 70, N = 29;
  const torch::Tensor x = torch::randn({M, K}), b = torch::randn({N});
  const torch::Tensor codes = torch::randint(-127, 128, {N, K}).to(torch::kChar), scale = torch::rand({N}) * 0.02;
  std::vector<int8_t> panels(static_cast<size_t>((N + 15) / 16 * K * 16));
  engine_kernels::pack_panels_int8(codes.data_ptr<int8_t>(), N, K, panels.data());
  std::vector<std::vector<float>> results;
  for (int isa : {2, 0}) {
    engine_kernels::force_isa(isa);
    std::vector<float> y(static_cast<size_t>(M * N)), rows;
    engine_kernels::linear_int8(x.data_ptr<float>(), M, K, panels.data(), scale.data_ptr<float>(), N,
                                b.data_ptr<float>(), y.data());
    for (int64_t m = 0; m < M; ++m) {
      std::vector<float> one(static_cast<size_t>(N));
      engine_kernels::linear_int8(x.data_ptr<float>() + m * K, 1, K, panels.data(), scale.data_ptr<float>(), N,
                                  b.data_ptr<float>(), one.data());
      rows.insert(rows.end(), one.begin(), one.end());
    }
    EXPECT_EQ(rows, y) << "a row alone differs from the row in a batch (isa " << isa << ")";
    results.push_back(y);
  }
  engine_kernels::force_isa(2);
  EXPECT_EQ(results[0], results[1]);
  const torch::Tensor w = codes.to(torch::kDouble) * scale.to(torch::kDouble).unsqueeze(1);
  const torch::Tensor ref = torch::addmm(b.to(torch::kDouble), x.to(torch::kDouble), w.t());
  const torch::Tensor got = torch::from_blob(results[0].data(), {M, N}, torch::kFloat32).to(torch::kDouble);
  EXPECT_LT((got - ref).abs().max().item<double>(), 1e-4);
}

// The attention kernels: scores against transposed keys and the weighted values give the same bits on the AVX-512
// and portable paths for any number of query rows, lanes and head sizes (tails included), and match double sums.
TEST(EngineKernels, AttentionKernelsAgreeAcrossPathsAndMatchADoubleReference) {
  torch::manual_seed(29);
  for (const int64_t hd : {32, 20, 48}) {
    const int64_t nq = 7, lanes = 13, stride = 16, count = 21, ld = 24;
    const torch::Tensor q = torch::randn({nq, hd}), kt = torch::randn({hd, stride});
    const torch::Tensor p = torch::rand({nq, ld}), v = torch::randn({count, hd});
    std::vector<const float*> rows;
    for (int64_t j = 0; j < count; ++j) rows.push_back(v.data_ptr<float>() + j * hd);
    std::vector<std::vector<float>> results;
    for (int isa : {2, 0}) {
      engine_kernels::force_isa(isa);
      std::vector<float> scores(static_cast<size_t>(nq * ld), -1.0f), out(static_cast<size_t>(nq * hd));
      engine_kernels::key_scores(q.data_ptr<float>(), nq, hd, kt.data_ptr<float>(), stride, lanes, scores.data(), ld);
      engine_kernels::weighted_values(p.data_ptr<float>(), nq, ld, rows.data(), count, hd, out.data());
      for (int64_t i = 0; i < nq; ++i)
        for (int64_t j = lanes; j < ld; ++j) EXPECT_EQ(scores[static_cast<size_t>(i * ld + j)], -1.0f) << "lane " << j;
      scores.insert(scores.end(), out.begin(), out.end());
      results.push_back(scores);
    }
    engine_kernels::force_isa(2);
    EXPECT_EQ(results[0], results[1]) << "head size " << hd;
    const torch::Tensor want_scores = q.to(torch::kDouble).matmul(kt.to(torch::kDouble)).slice(1, 0, lanes);
    const torch::Tensor got_scores = torch::from_blob(results[0].data(), {nq, ld}, torch::kFloat32).slice(1, 0, lanes);
    EXPECT_LT((got_scores.to(torch::kDouble) - want_scores).abs().max().item<double>(), 1e-4);
    const torch::Tensor want_out = p.slice(1, 0, count).to(torch::kDouble).matmul(v.to(torch::kDouble));
    const torch::Tensor got_out = torch::from_blob(results[0].data() + nq * ld, {nq, hd}, torch::kFloat32);
    EXPECT_LT((got_out.to(torch::kDouble) - want_out).abs().max().item<double>(), 1e-4);
  }
}

// max_value skips NaNs; exp_sum's block sums add up to its total.
TEST(EngineKernels, MaxValueAndExpSumBlocks) {
  std::vector<float> x(37);
  for (size_t i = 0; i < x.size(); ++i) x[i] = std::sin(static_cast<float>(i)) * 3.0f;
  x[30] = 5.5f;
  x[7] = std::numeric_limits<float>::quiet_NaN();
  for (int isa : {2, 0}) {
    engine_kernels::force_isa(isa);
    EXPECT_EQ(engine_kernels::max_value(x.data(), 37), 5.5f);
    EXPECT_EQ(engine_kernels::max_value(x.data(), 30), *std::max_element(x.begin() + 8, x.begin() + 30));
    std::vector<float> e(37), blocks(3);
    const float total = engine_kernels::exp_sum(x.data() + 8, 29, 5.5f, 0.5f, e.data(), blocks.data());
    double sum = 0.0;
    for (int i = 0; i < 29; ++i) {
      EXPECT_NEAR(e[static_cast<size_t>(i)], std::exp((x[static_cast<size_t>(i) + 8] - 5.5) * 0.5), 1e-6);
      sum += e[static_cast<size_t>(i)];
    }
    EXPECT_NEAR(total, sum, 1e-5);
    EXPECT_NEAR(static_cast<double>(blocks[0]) + blocks[1], sum, 1e-5);
    EXPECT_EQ(engine_kernels::max_value(x.data(), 0), -std::numeric_limits<float>::infinity());
  }
  engine_kernels::force_isa(2);
}

TEST(RolloutEngine, FirstTokenFrequenciesFollowTheSoftmaxAndTopK) {
  Gpt m = model(true, 3);
  const std::vector<int64_t> p = prompt(9, 4);
  torch::NoGradGuard no_grad;
  const torch::Tensor probs = torch::softmax(m->forward(torch::tensor(p).unsqueeze(0))[0][-1] / 1.5, -1);
  RolloutRequest r;
  r.prompt = p;
  r.params.do_sample = true;
  r.params.temperature = 1.5;
  r.params.max_new_tokens = 1;
  r.seeds.clear();
  for (uint64_t s = 0; s < 4000; ++s) r.seeds.push_back(s);
  RolloutEngine engine(m);
  std::map<int64_t, int> counts;
  for (const auto& s : engine.run({r})) ++counts[s.tokens[0]];
  for (int64_t t = 0; t < 37; ++t) {
    const double expected = probs[t].item<double>();
    const double sd = std::sqrt(expected * (1 - expected) / 4000.0);
    EXPECT_NEAR(counts[t] / 4000.0, expected, 4.5 * sd + 1e-4) << "token " << t;
  }
  r.params.top_k = 2;
  counts.clear();
  for (const auto& s : engine.run({r})) ++counts[s.tokens[0]];
  const torch::Tensor top = std::get<1>(probs.topk(2));
  EXPECT_EQ(counts.size(), 2u);
  EXPECT_EQ(counts.count(top[0].item<int64_t>()) + counts.count(top[1].item<int64_t>()), 2u);
}

TEST(RolloutEngine, LoadWeightsFollowsTheModelAndErrorsAreClear) {
  Gpt m = model(true);
  RolloutEngine engine(m);
  RolloutRequest r;
  r.prompt = prompt(5, 0);
  r.params.max_new_tokens = 10;
  const auto before = engine.run({r}).at(0).tokens;
  {
    torch::NoGradGuard no_grad;
    for (auto& p : m->parameters()) p.add_(torch::randn_like(p) * 0.3);
  }
  engine.load_weights(m);
  GenerationConfig g;
  g.max_new_tokens = 10;
  g.engine = GenerationEngine::kSimple;
  const auto after = engine.run({r}).at(0).tokens;
  EXPECT_EQ(after, generate(m, {r.prompt}, g).tokens[0]);
  EXPECT_NE(after, before);
  RolloutRequest bad = r;
  bad.prompt.clear();
  EXPECT_THROW(engine.run({bad}), ConfigError);
  bad = r;
  bad.params.max_new_tokens = 95;
  EXPECT_THROW(engine.run({bad}), ConfigError);
  bad = r;
  bad.seeds.clear();
  EXPECT_THROW(engine.run({bad}), ConfigError);
  GptConfig dynamic = config(true);
  dynamic.rope_scaling = RopeScaling::kDynamic;
  dynamic.rope_factor = 2.0;
  Gpt dm(dynamic);
  EXPECT_THROW(RolloutEngine{dm}, ConfigError);
}

}  // namespace engine_test
}  // namespace troupe::models
