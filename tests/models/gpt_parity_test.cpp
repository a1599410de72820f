// Parity of Troupe's GPT with an independent Python reference (tests/models/gpt2_reference.py, Debian's torch):
// a random model is exported as a Hugging Face directory, Python computes the logits in float64 from the
// safetensors file alone, and Troupe's float32 logits must agree within 1e-4. Also: the exported directory
// loads back into an identical model.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <fstream>

#include "models/gpt_io.h"
#include "tests/support/tensor_files.h"
#include "tests/support/test_support.h"

namespace troupe::models {
namespace {

using testing::ScratchDir;

// Every parameter gets noise, so LayerNorm gains and biases are exercised too (not just the GPT-2 init).
Gpt random_model(GptConfig c, uint64_t seed) {
  torch::manual_seed(seed);
  Gpt model(c);
  torch::NoGradGuard no_grad;
  for (auto& p : model->parameters()) p.add_(torch::randn_like(p) * 0.05);
  model->eval();
  return model;
}

torch::Tensor python_logits(const std::filesystem::path& model_dir, const torch::Tensor& ids, const ScratchDir& dir,
                            int64_t vocab) {
  testing::write_ids(dir / "ids.bin", ids);
  const auto r =
      testing::run_process({TROUPE_PYTHON, (testing::source_dir() / "tests/models/gpt2_reference.py").string(),
                            model_dir.string(), (dir / "ids.bin").string(), (dir / "logits.bin").string()});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  return testing::read_logits(dir / "logits.bin", ids, vocab);
}

TEST(GptParity, LogitsEqualAPythonReferenceWithin1e4) {
  for (bool tied : {true, false}) {
    ScratchDir dir;
    GptConfig c;
    c.n_layer = 3;
    c.n_head = 4;
    c.n_embd = 32;
    c.block_size = 64;
    c.vocab_size = 101;
    c.tie_embeddings = tied;
    Gpt model = random_model(c, tied ? 11 : 12);
    save_hf_gpt2(dir / "hf", model);
    const torch::Tensor ids = torch::randint(0, 101, {2, 40}, torch::kLong);
    torch::NoGradGuard no_grad;
    const torch::Tensor ours = model->forward(ids);
    const torch::Tensor ref = python_logits(dir / "hf", ids, dir, 101);
    const double max_diff = (ours - ref).abs().max().item<double>();
    EXPECT_LT(max_diff, 1e-4) << "tied=" << tied;
    EXPECT_GT(ref.abs().max().item<double>(), 0.1);  // not trivially zero

    // The directory loads back into the same model.
    Gpt loaded = load_hf_gpt2(dir / "hf");
    loaded->eval();
    EXPECT_TRUE(torch::equal(loaded->forward(ids), ours));
  }
}

TEST(GptParity, LoraIsFoldedIntoExportedWeights) {
  ScratchDir dir;
  GptConfig c;
  c.n_layer = 2;
  c.n_head = 2;
  c.n_embd = 16;
  c.block_size = 16;
  c.vocab_size = 29;
  Gpt model = random_model(c, 5);
  LoraConfig lora;
  lora.rank = 2;
  lora.targets = {"*.c_attn", "*.mlp.c_proj"};
  apply_lora(model, lora);
  torch::NoGradGuard no_grad;
  for (auto& p : model->parameters()) p.add_(torch::randn_like(p) * 0.05);  // non-zero B
  const torch::Tensor ids = torch::randint(0, 29, {1, 12}, torch::kLong);
  const torch::Tensor ours = model->forward(ids);
  save_hf_gpt2(dir / "hf", model);
  EXPECT_LT((python_logits(dir / "hf", ids, dir, 29) - ours).abs().max().item<double>(), 1e-4);
}

}  // namespace
}  // namespace troupe::models
