// Tests for the Llama-family architecture of models/gpt.h (arch: llama): names and counts, RoPE inverse
// frequencies against their closed forms, RoPE's relative-position invariance, grouped-query attention against
// multi-head attention with repeated key/value heads, the sliding window's reach, KV-cache decoding, padding, LoRA
// and checkpoint records. Parity with transformers' LlamaForCausalLM / Qwen2 / Mistral is hf_llama_test.cpp.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

#include "core/errors.h"
#include "models/generation.h"
#include "models/gpt.h"
#include "models/gpt_checkpoint.h"

namespace troupe::models {
namespace llama_test {

using ::testing::ElementsAre;

GptConfig llama_config() {
  GptConfig c;
  c.arch = Arch::kLlama;
  c.n_layer = 2;
  c.n_head = 4;
  c.n_kv_head = 2;
  c.n_embd = 32;
  c.intermediate_size = 48;
  c.block_size = 64;
  c.vocab_size = 29;
  c.tie_embeddings = false;
  c.layer_norm_eps = 1e-6;
  return c;
}

Gpt noisy_model(const GptConfig& c, uint64_t seed = 5) {
  torch::manual_seed(seed);
  Gpt model(c);
  torch::NoGradGuard no_grad;
  for (auto& p : model->parameters()) p.add_(torch::randn_like(p) * 0.2);  // norms and biases away from 1 and 0
  model->eval();
  return model;
}

torch::Tensor ids_of(std::vector<int64_t> v) { return torch::tensor(v, torch::kLong).unsqueeze(0); }

double max_diff(const torch::Tensor& a, const torch::Tensor& b) { return (a - b).abs().max().item<double>(); }

TEST(Llama, ParametersHaveLlamaForCausalLMNamesAndTheCountedSize) {
  GptConfig c = llama_config();
  c.qkv_bias = true;
  Gpt model(c);
  std::vector<std::string> names;
  int64_t total = 0;
  for (const auto& p : model->named_parameters()) {
    names.push_back(p.key());
    total += p.value().numel();
  }
  EXPECT_EQ(total, c.parameter_count());
  EXPECT_EQ(names.front(), "model.embed_tokens.weight");
  EXPECT_EQ(names.back(), "lm_head.weight");
  const auto params = model->named_parameters();
  EXPECT_EQ(params["model.layers.1.self_attn.q_proj.weight"].sizes(), (std::vector<int64_t>{32, 32}));
  EXPECT_EQ(params["model.layers.1.self_attn.k_proj.weight"].sizes(), (std::vector<int64_t>{16, 32}));
  EXPECT_EQ(params["model.layers.1.self_attn.k_proj.bias"].sizes(), (std::vector<int64_t>{16}));
  EXPECT_FALSE(params.contains("model.layers.1.self_attn.o_proj.bias"));
  EXPECT_EQ(params["model.layers.0.mlp.gate_proj.weight"].sizes(), (std::vector<int64_t>{48, 32}));
  EXPECT_EQ(params["model.layers.0.mlp.down_proj.weight"].sizes(), (std::vector<int64_t>{32, 48}));
  EXPECT_TRUE(params.contains("model.layers.0.post_attention_layernorm.weight"));
  EXPECT_TRUE(params.contains("model.norm.weight"));
  // Llama-2-7B's published count: 6,738,415,616.
  GptConfig l2 = llama_config();
  l2.n_layer = 32, l2.n_head = 32, l2.n_kv_head = 0, l2.n_embd = 4096, l2.intermediate_size = 11008;
  l2.vocab_size = 32000, l2.block_size = 4096;
  EXPECT_EQ(l2.parameter_count(), 6738415616);
  // the default SwiGLU width: 8/3 n_embd rounded up to a multiple of 32
  l2.intermediate_size = 0;
  l2.n_embd = 100;
  EXPECT_EQ(l2.mlp_width(), 288);
}

TEST(Llama, RopeInverseFrequenciesFollowTheirClosedForms) {
  GptConfig c = llama_config();  // head_dim 8
  c.rope_theta = 10000.0;
  std::vector<double> plain = rope_inverse_frequencies(c, 10);
  ASSERT_EQ(plain.size(), 4u);
  for (int i = 0; i < 4; ++i) EXPECT_NEAR(plain[i], std::pow(10000.0, -2.0 * i / 8.0), 1e-6 * plain[i]);
  c.rope_scaling = RopeScaling::kLinear;
  c.rope_factor = 4.0;
  std::vector<double> linear = rope_inverse_frequencies(c, 10);
  for (int i = 0; i < 4; ++i) EXPECT_DOUBLE_EQ(linear[i], plain[i] / 4.0);
  // dynamic NTK: unchanged within the original context, base * (f L / L0 - (f - 1))^(d / (d - 2)) beyond it
  c.rope_scaling = RopeScaling::kDynamic;
  c.rope_factor = 2.0;
  c.rope_original_context = 16;
  EXPECT_EQ(rope_inverse_frequencies(c, 15), plain);
  const double base = 10000.0 * std::pow(2.0 * 32 / 16 - 1.0, 8.0 / 6.0);
  std::vector<double> dynamic = rope_inverse_frequencies(c, 31);
  for (int i = 0; i < 4; ++i) EXPECT_NEAR(dynamic[i], std::pow(base, -2.0 * i / 8.0), 1e-6 * dynamic[i]);
  // llama3 (factor 8, low 1, high 4, L0 = 16): wavelengths 2 pi / f = 6.28, 62.8, 628, 6283 against the bounds
  // 16 / 4 = 4 and 16 / 1 = 16: the first is medium (smoothed), the other three low frequency (divided by 8).
  c.rope_scaling = RopeScaling::kLlama3;
  c.rope_factor = 8.0;
  c.rope_low_freq_factor = 1.0;
  c.rope_high_freq_factor = 4.0;
  std::vector<double> l3 = rope_inverse_frequencies(c, 10);
  const double wavelen0 = 2 * M_PI / plain[0];  // 6.28: between 16 / 4 and 16 / 1, smoothed
  const double smooth = (16.0 / wavelen0 - 1.0) / 3.0;
  EXPECT_NEAR(l3[0], (1 - smooth) * plain[0] / 8.0 + smooth * plain[0], 1e-9);
  EXPECT_NEAR(l3[1], plain[1] / 8.0, 1e-12);
  EXPECT_NEAR(l3[2], plain[2] / 8.0, 1e-12);
  EXPECT_NEAR(l3[3], plain[3] / 8.0, 1e-12);
}

TEST(Llama, RotaryAttentionDependsOnlyOnRelativePositions) {
  Gpt model = noisy_model(llama_config());
  torch::NoGradGuard no_grad;
  const torch::Tensor ids = ids_of({3, 17, 4, 9, 22, 1, 8});
  GptInput a, b;
  a.ids = b.ids = ids;
  a.positions = torch::arange(7).unsqueeze(0);
  b.positions = torch::arange(7).unsqueeze(0) + 13;  // shifted: every q-k offset is the same
  const torch::Tensor la = model->logits(model->hidden(a)), lb = model->logits(model->hidden(b));
  EXPECT_LT(max_diff(la, lb), 2e-5);
  GptInput c;  // a different relative layout changes the logits
  c.ids = ids;
  c.positions = torch::tensor({0, 1, 2, 3, 4, 5, 9}, torch::kLong).unsqueeze(0);
  EXPECT_GT(max_diff(la, model->logits(model->hidden(c))), 1e-3);
}

TEST(Llama, GroupedQueryAttentionEqualsMultiHeadWithRepeatedKeyValueHeads) {
  for (int64_t kv : {1, 2}) {
    SCOPED_TRACE(kv);
    GptConfig g = llama_config();
    g.n_kv_head = kv;
    g.qkv_bias = true;
    Gpt gqa = noisy_model(g);
    GptConfig m = g;
    m.n_kv_head = 0;  // 4 heads
    Gpt mha(m);
    mha->eval();
    torch::NoGradGuard no_grad;
    const int64_t hd = g.head_dim(), group = g.n_head / kv;
    auto mp = mha->named_parameters();
    for (const auto& p : gqa->named_parameters()) {
      const std::string& name = p.key();
      const bool kvproj = name.find("k_proj") != std::string::npos || name.find("v_proj") != std::string::npos;
      if (!kvproj) {
        mp[name].copy_(p.value());
        continue;
      }
      // key/value head j serves query heads j*group .. j*group+group-1
      const torch::Tensor heads = p.value().view({kv, hd, -1});
      mp[name].copy_(heads.repeat_interleave(group, 0).reshape(mp[name].sizes()));
    }
    const torch::Tensor ids = ids_of({1, 5, 2, 28, 7, 7, 3, 0, 11});
    EXPECT_LT(max_diff(gqa->forward(ids), mha->forward(ids)), 1e-5);
  }
}

TEST(Llama, SlidingWindowBoundsHowFarATokenReaches) {
  GptConfig c = llama_config();
  c.sliding_window = 3;  // 2 layers: position t sees tokens down to t - 2 * (3 - 1) = t - 4
  Gpt windowed = noisy_model(c);
  torch::NoGradGuard no_grad;
  const torch::Tensor a = ids_of({1, 2, 3, 4, 5, 6, 7, 8, 9, 10});
  torch::Tensor b = a.clone();
  b[0][2] = 20;
  const torch::Tensor la = windowed->forward(a), lb = windowed->forward(b);
  EXPECT_LT(max_diff(la.narrow(1, 7, 3), lb.narrow(1, 7, 3)), 1e-6);  // positions 7..9 cannot see position 2
  EXPECT_GT(max_diff(la.narrow(1, 6, 1), lb.narrow(1, 6, 1)), 1e-4);  // position 6 can
  c.sliding_window = 0;
  Gpt full = noisy_model(c);
  EXPECT_GT(max_diff(full->forward(a).narrow(1, 9, 1), full->forward(b).narrow(1, 9, 1)), 1e-4);
}

TEST(Llama, KvCacheStepsAndLeftPaddingEqualTheFullForward) {
  GptConfig c = llama_config();
  c.qkv_bias = true;
  c.sliding_window = 4;
  Gpt model = noisy_model(c);
  torch::NoGradGuard no_grad;
  const torch::Tensor ids = ids_of({4, 8, 15, 16, 23, 2, 6, 11});
  const torch::Tensor full = model->forward(ids);
  KvCache cache(c, 1, 16);
  GptInput first;
  first.ids = ids.narrow(1, 0, 3);
  first.cache = &cache;
  std::vector<torch::Tensor> parts{model->logits(model->hidden(first))};
  for (int64_t t = 3; t < 8; ++t) {
    GptInput step;
    step.ids = ids.narrow(1, t, 1);
    step.cache = &cache;
    parts.push_back(model->logits(model->hidden(step)));
  }
  EXPECT_LT(max_diff(torch::cat(parts, 1), full), 2e-5);
  EXPECT_EQ(cache.k[0].size(1), 2);  // cache holds the key/value heads only
  // a left-padded row with positions over its real tokens gives the unpadded logits
  GptInput padded;
  padded.ids = torch::cat({torch::zeros({1, 3}, torch::kLong), ids}, 1);
  padded.attention_mask = torch::cat({torch::zeros({1, 3}, torch::kLong), torch::ones({1, 8}, torch::kLong)}, 1);
  padded.positions = torch::cat({torch::zeros({1, 3}, torch::kLong), torch::arange(8).unsqueeze(0)}, 1);
  EXPECT_LT(max_diff(model->logits(model->hidden(padded)).narrow(1, 3, 8), full), 2e-5);
}

TEST(Llama, GenerationLoraAndCheckpointRecordsWork) {
  GptConfig c = llama_config();
  c.rope_scaling = RopeScaling::kLlama3;
  c.rope_factor = 8.0;
  c.rope_original_context = 32;
  Gpt model = noisy_model(c);
  GenerationConfig g;
  g.max_new_tokens = 6;
  GenerationConfig nocache = g;
  nocache.use_cache = false;
  EXPECT_EQ(generate(model, {{1, 2, 3}}, g).tokens, generate(model, {{1, 2, 3}}, nocache).tokens);
  LoraConfig lora;
  lora.rank = 2;
  lora.targets = {"*.self_attn.q_proj", "*.self_attn.v_proj"};
  EXPECT_EQ(apply_lora(model, lora).size(), 4u);
  EXPECT_THROW(apply_lora(model, LoraConfig()), ConfigError);  // the GPT-2 default names nothing here
  const std::string json = gpt_config_json(c);
  core::CheckpointState state;
  add_gpt_to_checkpoint(state, "model", model);
  Gpt back = gpt_from_checkpoint(state, "model");
  EXPECT_EQ(gpt_config_json(back->config()), json);
  EXPECT_EQ(back->config().rope_scaling, RopeScaling::kLlama3);
  EXPECT_EQ(back->config().n_kv_head, 2);
  torch::NoGradGuard no_grad;
  const torch::Tensor ids = ids_of({3, 1, 4, 1, 5});
  EXPECT_LT(max_diff(back->forward(ids), model->forward(ids)), 1e-6);
}

}  // namespace llama_test
}  // namespace troupe::models
