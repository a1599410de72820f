// The tiny Llama-family models the Hugging Face interop tests export (hf_llama_test.cpp, hf_llama_files_test.cpp):
// configs for each class Troupe writes, and noisy random weights. Header-only test support, not a fixture.
#pragma once

#include <torch/torch.h>

#include <string>
#include <vector>

#include "models/gpt.h"

namespace troupe::models::hf_llama_cases {

// A Troupe model to export: a tiny llama-family config, random init plus noise on every parameter (norm gains too).
struct ExportCase {
  std::string name;
  GptConfig config;
  uint64_t max_shard_bytes = 2'000'000'000ULL;
  std::string expected_class;
};

inline GptConfig tiny(int64_t n_kv_head = 2) {
  GptConfig c;
  c.arch = Arch::kLlama;
  c.n_layer = 2;
  c.n_head = 4;
  c.n_kv_head = n_kv_head;
  c.n_embd = 32;
  c.intermediate_size = 64;
  c.block_size = 64;
  c.vocab_size = 97;
  c.tie_embeddings = false;
  c.layer_norm_eps = 1e-5;
  return c;
}

inline std::vector<ExportCase> export_cases() {
  std::vector<ExportCase> out;
  out.push_back({"t_llama", tiny(), 20000, "LlamaForCausalLM"});  // sharded: ~29 KB of weights
  GptConfig dynamic = tiny(4);
  dynamic.tie_embeddings = true;
  dynamic.rope_scaling = RopeScaling::kDynamic;
  dynamic.rope_factor = 2.0;
  dynamic.rope_original_context = 16;  // below the 24-token inputs, so that it acts
  out.push_back({"t_llama_tied_dynamic", dynamic, 2'000'000'000ULL, "LlamaForCausalLM"});
  GptConfig biased = tiny();
  biased.qkv_bias = biased.o_bias = biased.mlp_bias = true;
  biased.head_size = 16;
  biased.rope_scaling = RopeScaling::kLlama3;
  biased.rope_factor = 8.0;
  biased.rope_original_context = 16;
  out.push_back({"t_llama_bias_llama3", biased, 2'000'000'000ULL, "LlamaForCausalLM"});
  GptConfig qwen = tiny();
  qwen.qkv_bias = true;
  qwen.sliding_window = 5;
  out.push_back({"t_qwen2_window", qwen, 20000, "Qwen2ForCausalLM"});
  GptConfig mistral = tiny();
  mistral.sliding_window = 6;
  out.push_back({"t_mistral", mistral, 2'000'000'000ULL, "MistralForCausalLM"});
  GptConfig mqa = tiny(1);
  mqa.n_embd = 64;
  mqa.n_head = 8;
  mqa.intermediate_size = 96;
  mqa.rope_scaling = RopeScaling::kLinear;
  mqa.rope_factor = 2.0;
  out.push_back({"t_mqa_linear", mqa, 2'000'000'000ULL, "LlamaForCausalLM"});
  return out;
}

inline Gpt noisy_model(const GptConfig& c, int seed) {
  torch::manual_seed(seed);
  Gpt model(c);
  torch::NoGradGuard no_grad;
  for (auto& p : model->parameters()) p.add_(torch::randn_like(p) * 0.3);  // varied greedy tokens
  model->eval();
  return model;
}

}  // namespace troupe::models::hf_llama_cases
