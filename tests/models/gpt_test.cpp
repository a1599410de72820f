// Tests for models/gpt.h and models/generation.h: names and counts, KV cache and padding equivalence, heads,
// LoRA and freezing, and generation (cache vs no cache, beam 1 vs greedy, seeds, stop tokens, log-probs).
// Parity with a Python reference forward is in gpt_parity_test.cpp.
#include "models/gpt.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "core/errors.h"
#include "models/generation.h"

namespace troupe::models {
namespace {

using ::testing::ElementsAre;

GptConfig tiny_config() {
  GptConfig c;
  c.n_layer = 2;
  c.n_head = 2;
  c.n_embd = 16;
  c.block_size = 32;
  c.vocab_size = 23;
  return c;
}

Gpt tiny_model(GptHeads heads = GptHeads(), uint64_t seed = 3) {
  torch::manual_seed(seed);
  Gpt model(tiny_config(), heads);
  model->eval();
  return model;
}

torch::Tensor ids_of(std::vector<int64_t> v) { return torch::tensor(v, torch::kLong).unsqueeze(0); }

TEST(Gpt, ParametersHaveHuggingFaceNamesAndTheCountedSize) {
  GptConfig c = tiny_config();
  Gpt model(c);
  std::vector<std::string> names;
  int64_t total = 0;
  for (const auto& p : model->named_parameters()) {
    names.push_back(p.key());
    total += p.value().numel();
  }
  EXPECT_EQ(total, c.parameter_count());
  EXPECT_THAT(std::vector<std::string>(names.begin(), names.begin() + 4),
              ElementsAre("transformer.wte.weight", "transformer.wpe.weight", "transformer.h.0.ln_1.weight",
                          "transformer.h.0.ln_1.bias"));
  EXPECT_EQ(model->named_parameters()["transformer.h.1.attn.c_attn.weight"].sizes(), (std::vector<int64_t>{48, 16}));
  EXPECT_EQ(model->named_parameters()["transformer.h.1.mlp.c_proj.weight"].sizes(), (std::vector<int64_t>{16, 64}));
  EXPECT_EQ(names.back(), "transformer.ln_f.bias");
  c.tie_embeddings = false;
  c.bias = false;
  Gpt untied(c);
  int64_t untied_total = 0;
  for (const auto& p : untied->parameters()) untied_total += p.numel();
  EXPECT_EQ(untied_total, c.parameter_count());
  EXPECT_TRUE(untied->named_parameters().contains("lm_head.weight"));
  // GPT-2 small: 124,439,808 parameters (the Hugging Face count with tied embeddings).
  GptConfig small;
  ASSERT_TRUE(gpt2_preset("gpt2", small));
  EXPECT_EQ(small.parameter_count(), 124439808);
}

TEST(Gpt, KvCacheStepsEqualTheFullForward) {
  Gpt model = tiny_model();
  torch::NoGradGuard no_grad;
  const torch::Tensor ids = torch::randint(0, 23, {3, 12}, torch::kLong);
  const torch::Tensor full = model->forward(ids);
  KvCache cache(model->config(), 3, 12);
  GptInput first;
  first.ids = ids.slice(1, 0, 5);
  first.cache = &cache;
  std::vector<torch::Tensor> parts{model->logits(model->hidden(first))};
  for (int64_t t = 5; t < 12; ++t) {
    GptInput step;
    step.ids = ids.slice(1, t, t + 1);
    step.cache = &cache;
    parts.push_back(model->logits(model->hidden(step)));
  }
  EXPECT_EQ(cache.length, 12);
  EXPECT_TRUE(torch::allclose(torch::cat(parts, 1), full, 1e-5, 1e-5));
}

TEST(Gpt, LeftPaddingDoesNotChangeARowsLogits) {
  Gpt model = tiny_model();
  torch::NoGradGuard no_grad;
  const std::vector<int64_t> short_prompt{4, 9, 1}, long_prompt{7, 7, 2, 5, 11, 3};
  const PaddedBatch batch = left_pad({short_prompt, long_prompt}, 0);
  GptInput in;
  in.ids = batch.ids;
  in.attention_mask = batch.mask;
  in.positions = batch.positions;
  const torch::Tensor padded = model->logits(model->hidden(in));
  const torch::Tensor alone = model->forward(ids_of(short_prompt));
  EXPECT_TRUE(torch::allclose(padded[0].slice(0, 3, 6), alone[0], 1e-5, 1e-5));
  EXPECT_TRUE(torch::allclose(padded[1], model->forward(ids_of(long_prompt))[0], 1e-5, 1e-5));
  EXPECT_FALSE(torch::isnan(padded).any().item<bool>());  // fully padded query rows stay finite
}

// scaled_dot_product_attention and Troupe's matmul + masked-softmax kernel path agree: plain causal, left padding
// (with a fully masked pad row), KV-cache steps, and gradients; and greedy generation picks the same tokens.
TEST(Gpt, SdpaAndKernelAttentionAgree) {
  Gpt a = tiny_model({}, 8), b = tiny_model({}, 8);
  a->set_attention_kernel(AttentionKernel::kSdpa);
  b->set_attention_kernel(AttentionKernel::kTroupe);
  torch::manual_seed(1);
  const torch::Tensor ids = torch::randint(0, 23, {3, 12}, torch::kLong);
  {
    torch::NoGradGuard no_grad;
    EXPECT_LT((a->forward(ids) - b->forward(ids)).abs().max().item<double>(), 1e-5);
    GptInput in;
    in.ids = ids;
    in.attention_mask = torch::ones({3, 12}, torch::kLong);
    in.attention_mask.index_put_({0, torch::indexing::Slice(0, 5)}, 0);  // row 0 left-padded by 5
    const torch::Tensor ha = a->hidden(in), hb = b->hidden(in);
    EXPECT_FALSE(ha.isnan().any().item<bool>());
    EXPECT_LT((ha - hb).abs().max().item<double>(), 1e-5);
    KvCache ca(a->config(), 3, 12), cb(b->config(), 3, 12);
    GptInput step;
    step.ids = ids.narrow(1, 0, 7);
    step.cache = &ca;
    a->hidden(step);
    step.cache = &cb;
    b->hidden(step);
    step.ids = ids.narrow(1, 7, 5);
    step.cache = &ca;
    const torch::Tensor sa = a->hidden(step);
    step.cache = &cb;
    EXPECT_LT((sa - b->hidden(step)).abs().max().item<double>(), 1e-5);
  }
  a->train();
  b->train();
  a->forward(ids).pow(2).sum().backward();
  b->forward(ids).pow(2).sum().backward();
  auto pb = b->named_parameters();
  for (auto& [name, p] : a->named_parameters().pairs())
    EXPECT_LT((p.grad() - pb[name].grad()).abs().max().item<double>(), 1e-4) << name;
  a->eval();
  b->eval();
  GenerationConfig g;
  g.max_new_tokens = 10;
  EXPECT_EQ(generate(a, {{1, 2, 3}, {4}}, g).tokens, generate(b, {{1, 2, 3}, {4}}, g).tokens);
}

TEST(Gpt, HeadsReadTheRightPositions) {
  Gpt model = tiny_model(GptHeads{true, true});
  torch::NoGradGuard no_grad;
  const torch::Tensor ids = torch::tensor({{5, 6, 7, 0, 0}, {1, 2, 3, 4, 8}}, torch::kLong);
  const torch::Tensor mask = torch::tensor({{1, 1, 1, 0, 0}, {1, 1, 1, 1, 1}}, torch::kLong);
  GptInput in;
  in.ids = ids;
  in.attention_mask = mask;
  const torch::Tensor h = model->hidden(in);
  const torch::Tensor values = model->values(h);
  EXPECT_EQ(values.sizes(), (std::vector<int64_t>{2, 5}));
  const torch::Tensor r = model->reward(h, mask);
  // Right padding: row 0's reward is read at position 2, the last real token; row 1 at position 4.
  GptInput alone;
  alone.ids = ids_of({5, 6, 7});
  const torch::Tensor h0 = model->hidden(alone);
  EXPECT_NEAR(r[0].item<float>(), model->reward(h0, torch::Tensor())[0].item<float>(), 1e-5);
  EXPECT_NE(r[0].item<float>(), model->reward(h, torch::Tensor())[0].item<float>());
  EXPECT_THROW(tiny_model()->values(h), ConfigError);
}

TEST(Lora, MergedEqualsUnmergedAndOnlyAdaptersTrain) {
  Gpt model = tiny_model();
  LoraConfig lora;
  lora.rank = 4;
  lora.alpha = 8;
  lora.targets = {"*.attn.c_attn", "*.mlp.c_fc"};
  const auto adapted = apply_lora(model, lora);
  EXPECT_THAT(adapted, ElementsAre("transformer.h.0.attn.c_attn", "transformer.h.0.mlp.c_fc",
                                   "transformer.h.1.attn.c_attn", "transformer.h.1.mlp.c_fc"));
  EXPECT_EQ(trainable_parameter_count(*model), 2 * (4 * 16 + 48 * 4) + 2 * (4 * 16 + 64 * 4));
  std::map<std::string, torch::Tensor> before;
  for (const auto& p : model->named_parameters()) before[p.key()] = p.value().detach().clone();

  model->train();
  torch::optim::AdamW opt(model->parameters(), torch::optim::AdamWOptions(1e-2));
  const torch::Tensor ids = torch::randint(0, 23, {4, 10}, torch::kLong);
  for (int step = 0; step < 3; ++step) {
    opt.zero_grad();
    const torch::Tensor logits = model->forward(ids.slice(1, 0, 9));
    torch::nn::functional::cross_entropy(logits.reshape({-1, 23}), ids.slice(1, 1, 10).reshape({-1})).backward();
    opt.step();
  }
  for (const auto& p : model->named_parameters()) {
    const bool adapter = p.key().find(".lora_") != std::string::npos;
    EXPECT_EQ(!torch::equal(before[p.key()], p.value()), adapter) << p.key();
  }
  model->eval();
  torch::NoGradGuard no_grad;
  const torch::Tensor unmerged = model->forward(ids);
  merge_lora(model);
  EXPECT_TRUE(torch::allclose(model->forward(ids), unmerged, 1e-5, 1e-5));
  EXPECT_THROW(merge_lora(model), Error);
  unmerge_lora(model);
  EXPECT_TRUE(torch::allclose(model->forward(ids), unmerged, 1e-5, 1e-5));
  LoraConfig none;
  none.targets = {"*.nothing"};
  Gpt other = tiny_model();
  EXPECT_THROW(apply_lora(other, none), ConfigError);
}

TEST(Freeze, PatternsFreezeWhatTheyNameAndNothingElse) {
  Gpt model = tiny_model();
  const auto frozen = freeze_parameters(*model, {"transformer.h.0.*", "transformer.wpe.*"});
  EXPECT_EQ(frozen.size(), 13u);  // 12 tensors in block 0 + wpe
  for (const auto& p : model->named_parameters()) {
    const bool should_freeze = p.key().rfind("transformer.h.0.", 0) == 0 || p.key() == "transformer.wpe.weight";
    EXPECT_EQ(p.value().requires_grad(), !should_freeze) << p.key();
  }
  EXPECT_THROW(freeze_parameters(*model, {"transformer.h.9.*"}), ConfigError);
}

// ---- generation ------------------------------------------------------------------------------------------------

std::vector<std::vector<int64_t>> prompts() { return {{3, 1, 4, 1, 5}, {9, 2}, {6, 5, 3, 5}}; }

TEST(Generation, CacheAndNoCacheGiveTheSameTokensAndLogprobs) {
  Gpt model = tiny_model();
  for (bool sample : {false, true}) {
    GenerationConfig c;
    c.max_new_tokens = 12;
    c.do_sample = sample;
    c.temperature = 0.8;
    c.top_k = 10;
    c.top_p = 0.9;
    c.repetition_penalty = 1.3;
    c.seed = 42;
    const GenerationOutput cached = generate(model, prompts(), c);
    c.use_cache = false;
    const GenerationOutput plain = generate(model, prompts(), c);
    EXPECT_EQ(cached.tokens, plain.tokens) << "sample=" << sample;
    for (size_t b = 0; b < cached.logprobs.size(); ++b) {
      for (size_t i = 0; i < cached.logprobs[b].size(); ++i) {
        EXPECT_NEAR(cached.logprobs[b][i], plain.logprobs[b][i], 1e-5);
      }
    }
  }
}

TEST(Generation, BeamOneIsGreedyAndBeamsMatchWithoutCache) {
  Gpt model = tiny_model();
  GenerationConfig greedy;
  greedy.max_new_tokens = 10;
  greedy.stop_tokens = {7};
  GenerationConfig beam1 = greedy;
  beam1.num_beams = 1;
  const auto g = generate(model, prompts(), greedy);
  const auto b1 = generate(model, prompts(), beam1);
  EXPECT_EQ(g.tokens, b1.tokens);
  GenerationConfig beam3 = greedy;
  beam3.num_beams = 3;
  const auto cached = generate(model, prompts(), beam3);
  beam3.use_cache = false;
  EXPECT_EQ(generate(model, prompts(), beam3).tokens, cached.tokens);
  // A beam's total log-probability is at least greedy's for the same length (here: no stop token, length 10).
  GenerationConfig no_stop;
  no_stop.max_new_tokens = 6;
  no_stop.length_penalty = 0.0;
  GenerationConfig wide = no_stop;
  wide.num_beams = 4;
  const auto gg = generate(model, prompts(), no_stop);
  const auto bb = generate(model, prompts(), wide);
  for (size_t i = 0; i < gg.tokens.size(); ++i) {
    double sg = 0, sb = 0;
    for (float v : gg.logprobs[i]) sg += v;
    for (float v : bb.logprobs[i]) sb += v;
    EXPECT_GE(sb, sg - 1e-4) << i;
  }
}

TEST(Generation, LogprobsEqualAFullForwardAndSeedsReproduce) {
  Gpt model = tiny_model();
  GenerationConfig c;
  c.max_new_tokens = 8;
  c.do_sample = true;
  c.temperature = 0.7;
  c.seed = 5;
  const auto out = generate(model, prompts(), c);
  EXPECT_EQ(generate(model, prompts(), c).tokens, out.tokens);
  c.seed = 6;
  EXPECT_NE(generate(model, prompts(), c).tokens, out.tokens);
  torch::NoGradGuard no_grad;
  for (size_t b = 0; b < out.tokens.size(); ++b) {
    std::vector<int64_t> seq = prompts()[b];
    seq.insert(seq.end(), out.tokens[b].begin(), out.tokens[b].end());
    const torch::Tensor lp = torch::log_softmax(model->forward(ids_of(seq))[0] / 0.7, -1);
    for (size_t i = 0; i < out.tokens[b].size(); ++i) {
      const int64_t at = static_cast<int64_t>(prompts()[b].size() + i) - 1;
      EXPECT_NEAR(out.logprobs[b][i], lp[at][out.tokens[b][i]].item<float>(), 1e-5);
    }
  }
}

TEST(Generation, StopTokensTopKOneAndErrors) {
  Gpt model = tiny_model();
  GenerationConfig greedy;
  greedy.max_new_tokens = 10;
  const auto g = generate(model, prompts(), greedy);
  // Stop at the token greedy emits third for row 0: row 0 ends there (stop token kept), others may continue.
  GenerationConfig stop = greedy;
  stop.stop_tokens = {g.tokens[0][2]};
  const auto s = generate(model, prompts(), stop);
  const auto first = std::find(g.tokens[0].begin(), g.tokens[0].end(), g.tokens[0][2]) - g.tokens[0].begin();
  EXPECT_EQ(s.tokens[0], std::vector<int64_t>(g.tokens[0].begin(), g.tokens[0].begin() + first + 1));
  EXPECT_TRUE(s.stopped[0]);
  GenerationConfig topk1 = greedy;
  topk1.do_sample = true;
  topk1.top_k = 1;
  EXPECT_EQ(generate(model, prompts(), topk1).tokens, g.tokens);
  GenerationConfig bad = greedy;
  bad.max_new_tokens = 30;
  EXPECT_THROW(generate(model, prompts(), bad), ConfigError);  // 5 + 30 > block_size 32
  EXPECT_THROW(generate(model, {{}}, greedy), ConfigError);
  EXPECT_THROW(generate(model, {{99}}, greedy), ConfigError);
  bad = greedy;
  bad.num_beams = 2;
  bad.do_sample = true;
  EXPECT_THROW(generate(model, prompts(), bad), ConfigError);
}

TEST(Generation, StopWhenEndsARowWhereTheCallbackSaysSo) {
  Gpt model = tiny_model();
  GenerationConfig greedy;
  greedy.max_new_tokens = 10;
  const auto g = generate(model, prompts(), greedy);
  // Row 1 stops once it has 4 tokens (as a stop string found in its decoded text would end it); the others run on.
  GenerationConfig stop = greedy;
  std::vector<size_t> calls(prompts().size(), 0);
  stop.stop_when = [&](size_t row, const std::vector<int64_t>& tokens) {
    ++calls[row];
    return row == 1 && tokens.size() == 4;
  };
  const auto s = generate(model, prompts(), stop);
  EXPECT_EQ(s.tokens[1], std::vector<int64_t>(g.tokens[1].begin(), g.tokens[1].begin() + 4));
  EXPECT_TRUE(s.stopped[1]);
  EXPECT_EQ(calls[1], 4u);
  EXPECT_EQ(s.tokens[0], g.tokens[0]);
  EXPECT_EQ(s.stopped[0], g.stopped[0]);
  stop.num_beams = 2;
  EXPECT_THROW(generate(model, prompts(), stop), ConfigError);
}

TEST(Generation, RowSeedsMakeARowsSampleIndependentOfItsBatch) {
  Gpt model = tiny_model();
  GenerationConfig c;
  c.max_new_tokens = 8;
  c.do_sample = true;
  c.temperature = 1.5;
  const auto all = prompts();
  c.row_seeds = {11, 12, 13};
  c.row_seeds.resize(all.size(), 14);
  const auto batch = generate(model, all, c);
  EXPECT_EQ(generate(model, all, c).tokens, batch.tokens);
  // Each row alone, with its own seed, samples what it sampled in the batch.
  for (size_t b = 0; b < all.size(); ++b) {
    GenerationConfig one = c;
    one.row_seeds = {c.row_seeds[b]};
    EXPECT_EQ(generate(model, {all[b]}, one).tokens[0], batch.tokens[b]) << b;
  }
  // The same prompt twice with two seeds: two draws (at temperature 1.5 over 8 tokens they differ).
  c.row_seeds = {1, 2};
  const auto twice = generate(model, {all[0], all[0]}, c);
  EXPECT_NE(twice.tokens[0], twice.tokens[1]);
  c.row_seeds = {1};
  EXPECT_THROW(generate(model, all, c), ConfigError);  // one seed per prompt
}

}  // namespace
}  // namespace troupe::models
