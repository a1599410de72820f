// Hugging Face Llama-family interop (models/hf_llama.h) against the real `transformers` package (the venv's;
// tests/models/hf_llama_reference.py, one Python process per family): random LlamaForCausalLM,
// Qwen2ForCausalLM and MistralForCausalLM models saved with save_pretrained (some sharded) load in Troupe with fp32
// logits within 1e-4 and the same 16-token greedy continuation, and Troupe exports load with from_pretrained with the
// same logits and tokens. Not the config.json mapping, sharding and errors (hf_llama_files_test.cpp, without Python),
// the llama architecture itself (llama_test.cpp) or GPT-2 interop (hf_transformers_test.cpp, hf_gpt2_test.cpp).
#include "models/hf_llama.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <set>

#include "core/errors.h"
#include "models/generation.h"
#include "models/gpt_checkpoint.h"
#include "models/gpt_io.h"
#include "models/safetensors_shards.h"
#include "tests/models/hf_llama_cases.h"
#include "tests/support/tensor_files.h"
#include "tests/support/test_support.h"

namespace troupe::models {
namespace hf_llama_test {

namespace fs = std::filesystem;
using namespace hf_llama_cases;
using testing::ScratchDir;

// Troupe's greedy continuation of `prompt` (16 new tokens, KV cache on).
std::vector<int64_t> greedy(Gpt& model, const std::vector<int64_t>& prompt) {
  GenerationConfig g;
  g.max_new_tokens = 16;
  return generate(model, {prompt}, g).tokens.at(0);
}

// One Python process per family (transformers takes seconds to import; ctest runs each test in its own process):
// the family's save_pretrained variants are made and its Troupe exports loaded with from_pretrained.
class HfLlamaParity : public ::testing::Test {
 protected:
  void run(const std::vector<std::string>& hf_variants, const std::vector<std::string>& exports) {
    std::vector<std::string> argv = {
        TROUPE_PYTHON, (testing::source_dir() / "tests/models/hf_llama_reference.py").string(), dir_.path().string()};
    for (const auto& name : hf_variants) argv.push_back("make:" + name);
    int seed = 40;
    for (const auto& c : export_cases()) {
      ++seed;
      if (std::find(exports.begin(), exports.end(), c.name) == exports.end()) continue;
      Gpt model = noisy_model(c.config, seed);
      HfExportOptions options;
      options.max_shard_bytes = c.max_shard_bytes;
      save_hf_llama(dir_ / c.name / "hf", model, options);
      testing::write_ids(dir_ / c.name / "ids.bin", torch::randint(0, c.config.vocab_size, {2, 24}, torch::kLong));
      exported_.emplace(c.name, std::make_pair(model, c.expected_class));
      argv.push_back("run:" + c.name);
    }
    ASSERT_EQ(exported_.size(), exports.size());
    const auto r = testing::run_process(argv, std::chrono::seconds(300));
    ASSERT_EQ(r.exit_code, 0) << r.output;
  }

  nlohmann::json greedy_json(const std::string& name) const {
    return nlohmann::json::parse(std::ifstream(dir_ / name / "greedy.json"));
  }

  // save_pretrained -> Troupe.
  void check_import(const std::string& name, const std::string& expected_class) {
    SCOPED_TRACE(name);
    Gpt model = load_hf_model(dir_ / name / "hf");
    model->eval();
    const torch::Tensor ids = testing::read_ids(dir_ / name / "ids.bin");
    torch::NoGradGuard no_grad;
    const torch::Tensor ref = testing::read_logits(dir_ / name / "logits.bin", ids, model->config().vocab_size);
    const double diff = (model->forward(ids) - ref).abs().max().item<double>();
    EXPECT_LT(diff, 1e-4);
    EXPECT_GT(ref.abs().max().item<double>(), 1.0);  // non-trivial logits
    const auto expected = greedy_json(name);
    EXPECT_EQ(expected["class"], expected_class);
    const auto tokens = greedy(model, expected["prompt"].get<std::vector<int64_t>>());
    EXPECT_EQ(tokens, expected["tokens"].get<std::vector<int64_t>>());
    EXPECT_GT(std::set<int64_t>(tokens.begin(), tokens.end()).size(), 2u);  // not one token repeated
    std::cout << "[ parity ] " << name << " (save_pretrained -> Troupe): max |logit diff| " << diff << "\n";
  }

  // Troupe export -> from_pretrained, for every export run() made.
  void check_exports() {
    for (auto& [name, item] : exported_) {
      SCOPED_TRACE(name);
      Gpt& model = item.first;
      const torch::Tensor ids = testing::read_ids(dir_ / name / "ids.bin");
      torch::NoGradGuard no_grad;
      const torch::Tensor ref = testing::read_logits(dir_ / name / "logits.bin", ids, model->config().vocab_size);
      const double diff = (model->forward(ids) - ref).abs().max().item<double>();
      EXPECT_LT(diff, 1e-4);
      EXPECT_GT(ref.abs().max().item<double>(), 1.0);
      const auto expected = greedy_json(name);
      EXPECT_EQ(expected["class"], item.second);
      EXPECT_TRUE(expected["loading"].empty()) << expected["loading"].dump();  // no missing or unexpected keys
      const auto prompt = expected["prompt"].get<std::vector<int64_t>>();
      EXPECT_EQ(prompt, std::vector<int64_t>(ids[0].data_ptr<int64_t>(), ids[0].data_ptr<int64_t>() + 8));
      const auto tokens = greedy(model, prompt);
      EXPECT_EQ(tokens, expected["tokens"].get<std::vector<int64_t>>());
      EXPECT_GT(std::set<int64_t>(tokens.begin(), tokens.end()).size(), 2u);
      std::cout << "[ parity ] " << name << " (Troupe -> from_pretrained): max |logit diff| " << diff << "\n";
    }
  }

  // Max |logit difference| to the reference of variant `name`'s weights in a model whose config `change` edits: a
  // feature the parity covers must move the logits by much more than its tolerance.
  double diff_without(const std::string& name, const std::function<void(GptConfig&)>& change) {
    Gpt loaded = load_hf_model(dir_ / name / "hf");
    GptConfig c = loaded->config();
    change(c);
    Gpt other(c);
    load_gpt_trunk_parameters(other, gpt_trunk_parameters(loaded), name);
    other->eval();
    const torch::Tensor ids = testing::read_ids(dir_ / name / "ids.bin");
    torch::NoGradGuard no_grad;
    const torch::Tensor ref = testing::read_logits(dir_ / name / "logits.bin", ids, c.vocab_size);
    return (other->forward(ids) - ref).abs().max().item<double>();
  }

  GptConfig loaded_config(const std::string& name) const { return load_hf_model(dir_ / name / "hf")->config(); }

  ScratchDir dir_{"troupe-hf-llama"};
  std::map<std::string, std::pair<Gpt, std::string>> exported_;  // name -> (model, the class transformers must build)
};

TEST_F(HfLlamaParity, LlamaBothWaysGiveEqualLogitsAndGreedyTokens) {
  const std::vector<std::string> variants = {"llama_gqa",    "llama_tied",    "llama_bias",
                                             "llama_linear", "llama_dynamic", "llama_llama3"};
  ASSERT_NO_FATAL_FAILURE(run(variants, {"t_llama", "t_llama_tied_dynamic", "t_llama_bias_llama3"}));
  for (const auto& name : variants) check_import(name, "LlamaForCausalLM");
  check_exports();
  EXPECT_TRUE(fs::exists(dir_ / "llama_gqa/hf" / kSafetensorsIndex));  // sharded both ways
  EXPECT_TRUE(fs::exists(dir_ / "t_llama/hf" / kSafetensorsIndex));
  const GptConfig tied = loaded_config("llama_tied");
  EXPECT_TRUE(tied.tie_embeddings);
  EXPECT_EQ(tied.kv_heads(), 4);
  const GptConfig biased = loaded_config("llama_bias");
  EXPECT_TRUE(biased.qkv_bias && biased.o_bias && biased.mlp_bias);
  EXPECT_EQ(biased.head_dim(), 16);
  const GptConfig dynamic = loaded_config("llama_dynamic");
  EXPECT_EQ(dynamic.rope_scaling, RopeScaling::kDynamic);
  EXPECT_EQ(dynamic.rope_original_context, 16);
  EXPECT_EQ(dynamic.block_size, 32);
  const GptConfig llama3 = loaded_config("llama_llama3");
  EXPECT_EQ(llama3.rope_scaling, RopeScaling::kLlama3);
  EXPECT_EQ(llama3.rope_original_context, 16);
  EXPECT_EQ(llama3.rope_factor, 8.0);
  for (const char* name : {"llama_linear", "llama_dynamic", "llama_llama3"}) {  // the scaling matters
    EXPECT_GT(diff_without(name, [](GptConfig& c) { c.rope_scaling = RopeScaling::kNone; }), 1e-2) << name;
  }
}

TEST_F(HfLlamaParity, Qwen2BothWaysGiveEqualLogitsAndGreedyTokens) {
  ASSERT_NO_FATAL_FAILURE(run({"qwen2", "qwen2_window"}, {"t_qwen2_window"}));
  check_import("qwen2", "Qwen2ForCausalLM");
  check_import("qwen2_window", "Qwen2ForCausalLM");
  check_exports();
  EXPECT_TRUE(fs::exists(dir_ / "qwen2/hf" / kSafetensorsIndex));
  EXPECT_TRUE(fs::exists(dir_ / "t_qwen2_window/hf" / kSafetensorsIndex));
  const GptConfig c = loaded_config("qwen2");
  EXPECT_TRUE(c.qkv_bias && !c.o_bias && !c.mlp_bias);
  EXPECT_EQ(c.sliding_window, 0);
  EXPECT_EQ(loaded_config("qwen2_window").sliding_window, 5);
  EXPECT_GT(diff_without("qwen2_window", [](GptConfig& c) { c.sliding_window = 0; }), 1e-2);
}

TEST_F(HfLlamaParity, MistralBothWaysGiveEqualLogitsAndGreedyTokens) {
  ASSERT_NO_FATAL_FAILURE(run({"mistral"}, {"t_mistral"}));
  check_import("mistral", "MistralForCausalLM");
  check_exports();
  EXPECT_EQ(loaded_config("mistral").sliding_window, 6);
  EXPECT_GT(diff_without("mistral", [](GptConfig& c) { c.sliding_window = 0; }), 1e-2);
}

TEST_F(HfLlamaParity, MultiQueryBothWaysGiveEqualLogitsAndGreedyTokens) {
  ASSERT_NO_FATAL_FAILURE(run({"mqa"}, {"t_mqa_linear"}));
  check_import("mqa", "LlamaForCausalLM");
  check_exports();
  EXPECT_EQ(loaded_config("mqa").kv_heads(), 1);
}

}  // namespace hf_llama_test
}  // namespace troupe::models
