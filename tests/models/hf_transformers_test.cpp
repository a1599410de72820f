// Hugging Face interop against the real `transformers` package (the venv's; tests/models/hf_transformers_reference.py):
// a random GPT2LMHeadModel saved with save_pretrained loads in Troupe with logits within 1e-4 and the same greedy
// continuation, and a model Troupe exports loads with from_pretrained with the same logits and continuation.
// Not a test of the safetensors parser itself (safetensors_test.cpp) or of renaming (hf_gpt2_test.cpp).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "models/generation.h"
#include "models/gpt_io.h"
#include "tests/support/tensor_files.h"
#include "tests/support/test_support.h"

namespace troupe::models {
namespace {

using testing::ScratchDir;
namespace fs = std::filesystem;

void run_reference(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {TROUPE_PYTHON,
                                   (testing::source_dir() / "tests/models/hf_transformers_reference.py").string()};
  argv.insert(argv.end(), args.begin(), args.end());
  const auto r = testing::run_process(argv);
  ASSERT_EQ(r.exit_code, 0) << r.output;
}

using testing::read_ids;
using testing::read_logits;
using testing::write_ids;

// Troupe's greedy continuation of `prompt` (16 new tokens, KV cache on).
std::vector<int64_t> greedy(Gpt& model, const std::vector<int64_t>& prompt) {
  GenerationConfig g;
  g.max_new_tokens = 16;
  return generate(model, {prompt}, g).tokens.at(0);
}

TEST(HfTransformers, SavePretrainedModelLoadsWithEqualLogitsAndGreedyTokens) {
  for (bool tied : {true, false}) {
    SCOPED_TRACE(tied ? "tied" : "untied");
    ScratchDir dir;
    ASSERT_NO_FATAL_FAILURE(run_reference({"make", dir.path().string(), tied ? "7" : "8", tied ? "1" : "0"}));
    Gpt model = load_hf_gpt2(dir / "hf");
    model->eval();
    EXPECT_EQ(model->config().tie_embeddings, tied);
    const torch::Tensor ids = read_ids(dir / "ids.bin");
    torch::NoGradGuard no_grad;
    const torch::Tensor ours = model->forward(ids);
    const torch::Tensor ref = read_logits(dir / "logits.bin", ids, model->config().vocab_size);
    EXPECT_LT((ours - ref).abs().max().item<double>(), 1e-4);
    EXPECT_GT(ref.abs().max().item<double>(), 0.1);
    const auto expected = nlohmann::json::parse(std::ifstream(dir / "greedy.json"));
    EXPECT_EQ(greedy(model, expected["prompt"].get<std::vector<int64_t>>()),
              expected["tokens"].get<std::vector<int64_t>>());
  }
}

TEST(HfTransformers, TroupeExportLoadsWithFromPretrainedWithEqualLogitsAndGreedyTokens) {
  for (bool tied : {true, false}) {
    SCOPED_TRACE(tied ? "tied" : "untied");
    ScratchDir dir;
    GptConfig c;
    c.n_layer = 2;
    c.n_head = 4;
    c.n_embd = 32;
    c.block_size = 64;
    c.vocab_size = 89;
    c.tie_embeddings = tied;
    torch::manual_seed(tied ? 21 : 22);
    Gpt model(c);
    {
      torch::NoGradGuard no_grad;
      for (auto& p : model->parameters()) p.add_(torch::randn_like(p) * 0.3);  // varied greedy tokens
    }
    model->eval();
    save_hf_gpt2(dir / "hf", model);
    const torch::Tensor ids = torch::randint(0, c.vocab_size, {2, 24}, torch::kLong);
    write_ids(dir / "ids.bin", ids);
    ASSERT_NO_FATAL_FAILURE(run_reference({"run", dir.path().string()}));
    torch::NoGradGuard no_grad;
    const torch::Tensor ours = model->forward(ids);
    EXPECT_LT((ours - read_logits(dir / "logits.bin", ids, c.vocab_size)).abs().max().item<double>(), 1e-4);
    const auto expected = nlohmann::json::parse(std::ifstream(dir / "greedy.json"));
    const auto prompt = expected["prompt"].get<std::vector<int64_t>>();
    EXPECT_EQ(prompt, std::vector<int64_t>(ids[0].data_ptr<int64_t>(), ids[0].data_ptr<int64_t>() + 8));
    const auto tokens = greedy(model, prompt);
    EXPECT_EQ(tokens, expected["tokens"].get<std::vector<int64_t>>());
    EXPECT_GT(std::set<int64_t>(tokens.begin(), tokens.end()).size(), 2u);  // not one token repeated
  }
}

}  // namespace
}  // namespace troupe::models
