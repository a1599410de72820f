// Hugging Face Llama-family interop (models/hf_llama.h) against the real `transformers` package (the venv's;
// tests/models/hf_llama_reference.py, one Python process for every variant): random LlamaForCausalLM,
// Qwen2ForCausalLM and MistralForCausalLM models saved with save_pretrained (some sharded) load in Troupe with fp32
// logits within 1e-4 and the same 16-token greedy continuation, and Troupe exports load with from_pretrained with the
// same logits and tokens. Not the config.json mapping, sharding and errors (hf_llama_files_test.cpp, without Python),
// the llama architecture itself (llama_test.cpp) or GPT-2 interop (hf_transformers_test.cpp, hf_gpt2_test.cpp).
#include "models/hf_llama.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

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

const std::vector<std::string> kHfVariants = {"llama_gqa",     "llama_tied",   "llama_bias", "llama_linear",
                                              "llama_dynamic", "llama_llama3", "qwen2",      "qwen2_window",
                                              "mistral",       "mqa"};

// Every variant made and run by one Python process, shared by the parity tests below.
class HfLlamaParity : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    try {
      prepare();
    } catch (const std::exception& e) {
      python_output_ = std::string("preparing the exports failed: ") + e.what();
    }
  }
  static void prepare() {
    dir_ = std::make_unique<ScratchDir>("troupe-hf-llama");
    std::vector<std::string> argv = {
        TROUPE_PYTHON, (testing::source_dir() / "tests/models/hf_llama_reference.py").string(), dir_->path().string()};
    for (const auto& name : kHfVariants) argv.push_back("make:" + name);
    int seed = 40;
    for (const auto& c : export_cases()) {
      Gpt model = noisy_model(c.config, seed++);
      HfExportOptions options;
      options.max_shard_bytes = c.max_shard_bytes;
      save_hf_llama(*dir_ / c.name / "hf", model, options);
      torch::manual_seed(seed);
      testing::write_ids(*dir_ / c.name / "ids.bin", torch::randint(0, c.config.vocab_size, {2, 24}, torch::kLong));
      exported_.emplace(c.name, model);
      argv.push_back("run:" + c.name);
    }
    const auto r = testing::run_process(argv, std::chrono::seconds(300));
    python_output_ = r.exit_code == 0 ? "" : r.output;
  }
  static void TearDownTestSuite() {
    exported_.clear();
    dir_.reset();
  }
  void SetUp() override { ASSERT_EQ(python_output_, "") << "hf_llama_reference.py failed"; }

  static nlohmann::json greedy_json(const std::string& name) {
    return nlohmann::json::parse(std::ifstream(*dir_ / name / "greedy.json"));
  }

  // save_pretrained -> Troupe: returns the max |logit difference|.
  static double check_import(const std::string& name, const std::string& expected_class) {
    SCOPED_TRACE(name);
    Gpt model = load_hf_model(*dir_ / name / "hf");
    model->eval();
    const torch::Tensor ids = testing::read_ids(*dir_ / name / "ids.bin");
    torch::NoGradGuard no_grad;
    const torch::Tensor ref = testing::read_logits(*dir_ / name / "logits.bin", ids, model->config().vocab_size);
    const double diff = (model->forward(ids) - ref).abs().max().item<double>();
    EXPECT_LT(diff, 1e-4);
    EXPECT_GT(ref.abs().max().item<double>(), 1.0);  // non-trivial logits
    const auto expected = greedy_json(name);
    EXPECT_EQ(expected["class"], expected_class);
    const auto tokens = greedy(model, expected["prompt"].get<std::vector<int64_t>>());
    EXPECT_EQ(tokens, expected["tokens"].get<std::vector<int64_t>>());
    EXPECT_GT(std::set<int64_t>(tokens.begin(), tokens.end()).size(), 2u);  // not one token repeated
    std::cout << "[ parity ] " << name << " (save_pretrained -> Troupe): max |logit diff| " << diff << "\n";
    return diff;
  }

  // Troupe export -> from_pretrained.
  static void check_export(const std::string& name, const std::string& expected_class) {
    SCOPED_TRACE(name);
    Gpt& model = exported_.at(name);
    const torch::Tensor ids = testing::read_ids(*dir_ / name / "ids.bin");
    torch::NoGradGuard no_grad;
    const torch::Tensor ref = testing::read_logits(*dir_ / name / "logits.bin", ids, model->config().vocab_size);
    const double diff = (model->forward(ids) - ref).abs().max().item<double>();
    EXPECT_LT(diff, 1e-4);
    EXPECT_GT(ref.abs().max().item<double>(), 1.0);
    const auto expected = greedy_json(name);
    EXPECT_EQ(expected["class"], expected_class);
    EXPECT_TRUE(expected["loading"].empty()) << expected["loading"].dump();  // no missing or unexpected keys
    const auto prompt = expected["prompt"].get<std::vector<int64_t>>();
    EXPECT_EQ(prompt, std::vector<int64_t>(ids[0].data_ptr<int64_t>(), ids[0].data_ptr<int64_t>() + 8));
    const auto tokens = greedy(model, prompt);
    EXPECT_EQ(tokens, expected["tokens"].get<std::vector<int64_t>>());
    EXPECT_GT(std::set<int64_t>(tokens.begin(), tokens.end()).size(), 2u);
    std::cout << "[ parity ] " << name << " (Troupe -> from_pretrained): max |logit diff| " << diff << "\n";
  }

  // Max |logit difference| to the reference of variant `name`'s weights in a model whose config `change` edits: a
  // feature the parity above covers must move the logits by much more than its tolerance.
  static double diff_without(const std::string& name, const std::function<void(GptConfig&)>& change) {
    Gpt loaded = load_hf_model(*dir_ / name / "hf");
    GptConfig c = loaded->config();
    change(c);
    Gpt other(c);
    load_gpt_trunk_parameters(other, gpt_trunk_parameters(loaded), name);
    other->eval();
    const torch::Tensor ids = testing::read_ids(*dir_ / name / "ids.bin");
    torch::NoGradGuard no_grad;
    const torch::Tensor ref = testing::read_logits(*dir_ / name / "logits.bin", ids, c.vocab_size);
    return (other->forward(ids) - ref).abs().max().item<double>();
  }

  static inline std::unique_ptr<ScratchDir> dir_;
  static inline std::map<std::string, Gpt> exported_;
  static inline std::string python_output_;
};

TEST_F(HfLlamaParity, LlamaSavePretrainedLoadsWithEqualLogitsAndGreedyTokens) {
  for (const char* name : {"llama_gqa", "llama_tied", "llama_bias", "llama_linear", "llama_dynamic", "llama_llama3"})
    check_import(name, "LlamaForCausalLM");
  EXPECT_TRUE(fs::exists(*dir_ / "llama_gqa/hf" / kSafetensorsIndex));  // the sharded one
  const GptConfig tied = load_hf_model(*dir_ / "llama_tied/hf")->config();
  EXPECT_TRUE(tied.tie_embeddings);
  EXPECT_EQ(tied.kv_heads(), 4);
  const GptConfig biased = load_hf_model(*dir_ / "llama_bias/hf")->config();
  EXPECT_TRUE(biased.qkv_bias && biased.o_bias && biased.mlp_bias);
  EXPECT_EQ(biased.head_dim(), 16);
  const GptConfig dynamic = load_hf_model(*dir_ / "llama_dynamic/hf")->config();
  EXPECT_EQ(dynamic.rope_scaling, RopeScaling::kDynamic);
  EXPECT_EQ(dynamic.rope_original_context, 16);
  EXPECT_EQ(dynamic.block_size, 32);
  const GptConfig llama3 = load_hf_model(*dir_ / "llama_llama3/hf")->config();
  EXPECT_EQ(llama3.rope_scaling, RopeScaling::kLlama3);
  EXPECT_EQ(llama3.rope_original_context, 16);
  EXPECT_EQ(llama3.rope_factor, 8.0);
  for (const char* name : {"llama_linear", "llama_dynamic", "llama_llama3"}) {  // the scaling matters
    EXPECT_GT(diff_without(name, [](GptConfig& c) { c.rope_scaling = RopeScaling::kNone; }), 1e-2) << name;
  }
}

TEST_F(HfLlamaParity, Qwen2SavePretrainedLoadsWithEqualLogitsAndGreedyTokens) {
  check_import("qwen2", "Qwen2ForCausalLM");
  check_import("qwen2_window", "Qwen2ForCausalLM");
  EXPECT_TRUE(fs::exists(*dir_ / "qwen2/hf" / kSafetensorsIndex));
  const GptConfig c = load_hf_model(*dir_ / "qwen2/hf")->config();
  EXPECT_TRUE(c.qkv_bias && !c.o_bias && !c.mlp_bias);
  EXPECT_EQ(c.sliding_window, 0);
  EXPECT_EQ(load_hf_model(*dir_ / "qwen2_window/hf")->config().sliding_window, 5);
  EXPECT_GT(diff_without("qwen2_window", [](GptConfig& c) { c.sliding_window = 0; }), 1e-2);
}

TEST_F(HfLlamaParity, MistralSavePretrainedLoadsWithEqualLogitsAndGreedyTokens) {
  check_import("mistral", "MistralForCausalLM");
  EXPECT_EQ(load_hf_model(*dir_ / "mistral/hf")->config().sliding_window, 6);
  EXPECT_GT(diff_without("mistral", [](GptConfig& c) { c.sliding_window = 0; }), 1e-2);
}

TEST_F(HfLlamaParity, MultiQuerySavePretrainedLoadsWithEqualLogitsAndGreedyTokens) {
  check_import("mqa", "LlamaForCausalLM");
  EXPECT_EQ(load_hf_model(*dir_ / "mqa/hf")->config().kv_heads(), 1);
}

TEST_F(HfLlamaParity, LlamaExportLoadsWithFromPretrainedWithEqualLogitsAndGreedyTokens) {
  check_export("t_llama", "LlamaForCausalLM");
  check_export("t_llama_tied_dynamic", "LlamaForCausalLM");
  check_export("t_llama_bias_llama3", "LlamaForCausalLM");
  EXPECT_TRUE(fs::exists(*dir_ / "t_llama/hf" / kSafetensorsIndex));
}

TEST_F(HfLlamaParity, Qwen2ExportLoadsWithFromPretrainedWithEqualLogitsAndGreedyTokens) {
  check_export("t_qwen2_window", "Qwen2ForCausalLM");
  EXPECT_TRUE(fs::exists(*dir_ / "t_qwen2_window/hf" / kSafetensorsIndex));
}

TEST_F(HfLlamaParity, MistralExportLoadsWithFromPretrainedWithEqualLogitsAndGreedyTokens) {
  check_export("t_mistral", "MistralForCausalLM");
}

TEST_F(HfLlamaParity, MultiQueryExportLoadsWithFromPretrainedWithEqualLogitsAndGreedyTokens) {
  check_export("t_mqa_linear", "LlamaForCausalLM");
}

}  // namespace hf_llama_test
}  // namespace troupe::models
