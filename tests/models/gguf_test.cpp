// GGUF export (models/gguf_export.h) against the `gguf` package and llama.cpp: for GPT-2, Llama with grouped-query
// attention and Qwen2-style biases, in f32/f16/bf16/q8_0, the file parses with GGUFReader, its metadata, tensor names,
// shapes and types are what convert_hf_to_gguf.py would write, and its data are Troupe's weights (bit-exact encodings;
// tests/models/gguf_reference.py). With llama-cpp-python installed, llama.cpp runs the f32 files with Troupe's greedy
// continuation and logits (q8_0 measured). Not a test of the writer's scalar encodings
// (tests/core/gguf_writer_test.cpp).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "core/errors.h"
#include "core/utf8.h"
#include "models/generation.h"
#include "models/gguf_export.h"
#include "models/gpt_checkpoint.h"
#include "models/gpt_io.h"
#include "tests/support/test_support.h"

namespace troupe::models::gguf_test {

using testing::ScratchDir;
namespace fs = std::filesystem;

constexpr int64_t kVocab = 300;

// A byte-level vocabulary of kVocab tokens in GGUF's "gpt2" form: the 256 bytes in GPT-2's byte-to-unicode spelling,
// two-letter merges ("a b" -> "ab", ...) and <|endoftext|> last. Enough for llama.cpp to load; tests feed ids.
std::vector<core::GgufKeyValue> test_vocab() {
  std::vector<std::string> tokens, merges;
  std::vector<int32_t> types;
  int unprintable = 0;
  for (int b = 0; b < 256; ++b) {  // GPT-2's bytes_to_unicode: unprintable bytes map to 256, 257, ... in order
    const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
    tokens.emplace_back();
    core::append_utf8(tokens.back(), static_cast<char32_t>(printable ? b : 256 + unprintable++));
    types.push_back(1);
  }
  for (int64_t k = 0; static_cast<int64_t>(tokens.size()) < kVocab - 1; ++k) {
    const std::string l(1, static_cast<char>('a' + k % 26)), r(1, static_cast<char>('a' + k / 26));
    tokens.push_back(l + r);
    types.push_back(1);
    merges.push_back(l + " " + r);
  }
  tokens.emplace_back("<|endoftext|>");
  types.push_back(3);
  return {{"tokenizer.ggml.model", std::string("gpt2")},
          {"tokenizer.ggml.pre", std::string("gpt-2")},
          {"tokenizer.ggml.tokens", tokens},
          {"tokenizer.ggml.token_type", types},
          {"tokenizer.ggml.merges", merges},
          {"tokenizer.ggml.bos_token_id", static_cast<uint32_t>(kVocab - 1)},
          {"tokenizer.ggml.eos_token_id", static_cast<uint32_t>(kVocab - 1)}};
}

GptConfig gpt2_config() {
  GptConfig c;
  c.n_layer = 2;
  c.n_head = 4;
  c.n_embd = 64;
  c.block_size = 64;
  c.vocab_size = kVocab;
  return c;
}

GptConfig llama_config(bool qwen2) {
  GptConfig c = gpt2_config();
  c.arch = Arch::kLlama;
  c.n_kv_head = 2;  // grouped-query
  c.intermediate_size = 96;
  c.bias = false;
  c.tie_embeddings = qwen2;
  c.qkv_bias = qwen2;
  c.rope_theta = qwen2 ? 1000000.0 : 10000.0;
  c.layer_norm_eps = 1e-6;
  return c;
}

// A "trained-looking" model: weights large enough that logits spread (greedy tokens vary), norms and biases away
// from their initial 1 / 0.
Gpt noisy_model(const GptConfig& c, uint64_t seed) {
  torch::manual_seed(seed);
  Gpt model(c);
  torch::NoGradGuard no_grad;
  for (auto& p : model->named_parameters()) {
    torch::Tensor& t = p.value();
    const bool bias = p.key().size() > 5 && p.key().substr(p.key().size() - 5) == ".bias";
    if (t.dim() >= 2) {
      t.normal_(0.0, 1.0 / std::sqrt(static_cast<double>(t.size(1))));
      if (p.key().find("wte") != std::string::npos || p.key().find("embed_tokens") != std::string::npos) t.mul_(3.0);
    } else if (bias) {
      t.normal_(0.0, 0.1);
    } else {
      t.normal_(1.0, 0.1);
    }
  }
  model->eval();
  return model;
}

nlohmann::json tokenizer_json(const std::vector<core::GgufKeyValue>& kvs) {
  nlohmann::json j;
  for (const auto& kv : kvs) std::visit([&](const auto& v) { j[kv.key] = v; }, kv.value);
  return j;
}

// Exports `model` as `type` into `dir` with the files gguf_reference.py's `check` reads.
GgufExportSummary export_for_check(Gpt& model, GgufFileType type, const fs::path& dir) {
  const GptConfig& c = model->config();
  GgufExportOptions options;
  options.type = type;
  options.name = "gguf-test";
  const auto summary = export_gguf(model, test_vocab(), options, dir / "model.gguf");
  save_safetensors(dir / "troupe.safetensors", gpt_trunk_parameters(model));
  nlohmann::json meta = {{"config", nlohmann::json::parse(gpt_config_json(c))},
                         {"arch", summary.architecture},
                         {"type", gguf_file_type_name(type)},
                         {"name", options.name},
                         {"n_kv_head", c.kv_heads()},
                         {"head_dim", c.head_dim()},
                         {"mlp_width", c.mlp_width()},
                         {"tokenizer", tokenizer_json(test_vocab())}};
  std::ofstream(dir / "meta.json") << meta.dump();
  return summary;
}

testing::ProcessResult reference(const std::string& mode, const std::vector<fs::path>& dirs) {
  std::vector<std::string> argv = {TROUPE_PYTHON, (testing::source_dir() / "tests/models/gguf_reference.py").string(),
                                   mode};
  for (const auto& d : dirs) argv.push_back(d.string());
  return testing::run_process(argv, std::chrono::seconds(240));
}

struct Case {
  std::string label;
  GptConfig config;
  std::string arch;
};

std::vector<Case> cases() {
  GptConfig untied_gpt2 = gpt2_config();
  untied_gpt2.tie_embeddings = false;
  untied_gpt2.bias = false;
  GptConfig llama3 = llama_config(false);
  llama3.rope_scaling = RopeScaling::kLlama3;
  llama3.rope_factor = 8.0;
  llama3.rope_original_context = 32;
  GptConfig linear = llama_config(false);
  linear.rope_scaling = RopeScaling::kLinear;
  linear.rope_factor = 2.0;
  GptConfig biases = llama_config(true);  // q/k/v, output and MLP biases: the llama architecture, q/k biases permuted
  biases.o_bias = true;
  biases.mlp_bias = true;
  return {{"gpt2", gpt2_config(), "gpt2"},
          {"gpt2 untied, no biases", untied_gpt2, "gpt2"},
          {"llama gqa", llama_config(false), "llama"},
          {"qwen2", llama_config(true), "qwen2"},
          {"llama3 rope", llama3, "llama"},
          {"linear rope", linear, "llama"},
          {"llama all biases", biases, "llama"}};
}

TEST(GgufExport, FilesMatchTheConverterUnderGgufReaderForEachArchAndType) {
  ScratchDir root;
  std::vector<fs::path> dirs;
  for (const auto& c : cases()) {
    Gpt model = noisy_model(c.config, 7);
    for (GgufFileType type : {GgufFileType::kF32, GgufFileType::kF16, GgufFileType::kBF16, GgufFileType::kQ8_0}) {
      if (c.label != "gpt2" && c.label != "llama gqa" && c.label != "qwen2" && type != GgufFileType::kF32) continue;
      SCOPED_TRACE(c.label + " " + gguf_file_type_name(type));
      dirs.push_back(root / (std::to_string(dirs.size()) + "-" + c.arch + "-" + gguf_file_type_name(type)));
      fs::create_directories(dirs.back());
      const auto summary = export_for_check(model, type, dirs.back());
      EXPECT_EQ(summary.architecture, c.arch);
      EXPECT_TRUE(summary.fallbacks.empty());
    }
  }
  ASSERT_EQ(dirs.size(), 16u);  // 3 cases x 4 types + 4 cases in f32
  const auto r = reference("check", dirs);
  EXPECT_EQ(r.exit_code, 0) << r.output;
  std::cout << r.output;
}

TEST(GgufExport, Q8MatricesWithRowsNotAMultipleOf32FallBackToF16) {
  GptConfig c = llama_config(false);
  c.intermediate_size = 80;  // ffn_down rows are 80 long; gate/up rows 64
  Gpt model = noisy_model(c, 3);
  ScratchDir dir;
  const auto summary = export_for_check(model, GgufFileType::kQ8_0, dir.path());
  EXPECT_EQ(summary.fallbacks, (std::vector<std::string>{"blk.0.ffn_down.weight", "blk.1.ffn_down.weight"}));
  const auto r = reference("check", {dir.path()});  // the reference also expects F16 there (gguf's QuantError)
  EXPECT_EQ(r.exit_code, 0) << r.output;
}

TEST(GgufExport, RejectsWhatLlamaCppWouldRunDifferently) {
  EXPECT_THROW(parse_gguf_file_type("q4_0"), ConfigError);
  EXPECT_EQ(parse_gguf_file_type("bf16"), GgufFileType::kBF16);
  GptConfig dynamic = llama_config(false);
  dynamic.rope_scaling = RopeScaling::kDynamic;
  dynamic.rope_factor = 2.0;
  EXPECT_THROW(gguf_architecture(dynamic), ConfigError);
  GptConfig window = llama_config(false);
  window.sliding_window = 16;
  EXPECT_THROW(gguf_architecture(window), ConfigError);
  GptConfig biased = llama_config(true);
  biased.o_bias = true;  // qwen2 has no output bias in llama.cpp: the llama architecture loads it
  EXPECT_EQ(gguf_architecture(biased), "llama");
  ScratchDir dir;
  Gpt model = noisy_model(gpt2_config(), 1);
  auto vocab = test_vocab();
  std::get<std::vector<std::string>>(vocab[2].value).pop_back();  // 299 tokens for vocab_size 300
  EXPECT_THROW(export_gguf(model, vocab, {}, dir / "x.gguf"), ConfigError);
  EXPECT_THROW(export_gguf(model, {}, {}, dir / "x.gguf"), ConfigError);
  EXPECT_FALSE(fs::exists(dir / "x.gguf"));
}

// ---- llama.cpp parity (skipped with the reason when llama-cpp-python is not installed) ----

bool llama_cpp_available(std::string& why) {
  const auto r = testing::run_process({TROUPE_PYTHON, "-c", "import llama_cpp"});
  why = r.output;
  return r.exit_code == 0;
}

std::vector<std::vector<int64_t>> parity_prompts() {
  return {{1, 2, 3}, {17, 250, 42, 9, 100}, {299}, {5, 5, 5, 5}, {120, 33, 87, 64, 200, 11, 7}, {260, 270}};
}

constexpr int64_t kNew = 16;

struct Parity {
  int same_tokens = 0;            // prompts whose 16 greedy tokens all agree
  std::vector<int64_t> diverged;  // per prompt that differed: the index of the first different new token
  double max_logit_diff = 0.0;    // over all positions of prompts that agreed
  double max_logit = 0.0;         // largest |logit| there (for scale)
};

// Exports `model`, runs llama.cpp on it (KV cache in `kv_cache`: "f32" or llama.cpp's default "f16") and compares
// with Troupe's greedy continuation and logits.
Parity run_parity(Gpt& model, GgufFileType type, const std::string& kv_cache, const fs::path& dir) {
  GgufExportOptions options;
  options.type = type;
  export_gguf(model, test_vocab(), options, dir / "model.gguf");
  const auto prompts = parity_prompts();
  std::ofstream(dir / "prompts.json")
      << nlohmann::json{{"prompts", prompts}, {"n_new", kNew}, {"n_ctx", 64}, {"kv_cache", kv_cache}}.dump();
  const auto r = reference("llama", {dir});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  const auto got = nlohmann::json::parse(std::ifstream(dir / "llama.json"));
  Parity p;
  GenerationConfig g;
  g.max_new_tokens = kNew;
  for (size_t i = 0; i < prompts.size(); ++i) {
    const auto ours = generate(model, {prompts[i]}, g).tokens.at(0);
    const auto theirs = got[i]["tokens"].get<std::vector<int64_t>>();
    EXPECT_EQ(theirs, got[i]["generate"].get<std::vector<int64_t>>()) << "eval+argmax vs Llama.generate";
    if (ours != theirs) {
      p.diverged.push_back(std::mismatch(ours.begin(), ours.end(), theirs.begin()).first - ours.begin());
      continue;
    }
    ++p.same_tokens;
    std::vector<int64_t> seq = prompts[i];
    seq.insert(seq.end(), ours.begin(), ours.end());  // llama.cpp evaluated every new token too
    torch::NoGradGuard no_grad;
    const torch::Tensor logits = model->forward(torch::tensor(seq).unsqueeze(0))[0];
    const auto flat = got[i]["logits"].get<std::vector<float>>();
    const torch::Tensor ref = torch::tensor(flat).view({static_cast<int64_t>(seq.size()), kVocab});
    p.max_logit_diff = std::max(p.max_logit_diff, (logits - ref).abs().max().item<double>());
    p.max_logit = std::max(p.max_logit, ref.abs().max().item<double>());
  }
  return p;
}

std::vector<Case> parity_cases() {
  return {{"gpt2", gpt2_config(), "gpt2"},
          {"llama gqa", llama_config(false), "llama"},
          {"qwen2", llama_config(true), "qwen2"}};
}

void print(const std::string& label, const Parity& p) {
  std::cout << label << ": " << p.same_tokens << "/" << parity_prompts().size()
            << " prompts with all 16 greedy tokens equal; there max |logit diff| " << p.max_logit_diff
            << " (max |logit| " << p.max_logit << ")";
  if (!p.diverged.empty()) std::cout << "; first different token at " << ::testing::PrintToString(p.diverged);
  std::cout << "\n";
}

// Measured (llama-cpp-python 0.3.36, 2-core CPU), max |logit diff| over every position of 6 prompts + 16 tokens:
// with an f32 KV cache 2.7e-6 (llama, |logits| <= 5.1) and 6.2e-6 (qwen2, <= 13), but 4.3e-3 for gpt2 (<= 18): ggml's
// CPU GELU is a lookup table of fp16 values (GGML_GELU_FP16 in ggml-cpu/vec.h). With llama.cpp's default f16 KV
// cache: 5.7e-3 (gpt2), 2.6e-3 (llama), 4.7e-3 (qwen2). Greedy tokens equal everywhere.
TEST(GgufLlamaCpp, F32GreedyContinuationAndLogitsEqualTroupes) {
  std::string why;
  if (!llama_cpp_available(why)) GTEST_SKIP() << "llama-cpp-python is not importable in TROUPE_PYTHON: " << why;
  for (const auto& c : parity_cases()) {
    SCOPED_TRACE(c.label);
    Gpt model = noisy_model(c.config, 11);
    for (const std::string kv : {"f32", "f16"}) {
      ScratchDir dir;
      const Parity p = run_parity(model, GgufFileType::kF32, kv, dir.path());
      print(c.label + " f32 weights, " + kv + " KV cache", p);
      EXPECT_EQ(p.same_tokens, static_cast<int>(parity_prompts().size()));
      EXPECT_LT(p.max_logit_diff, kv == "f16" ? 2e-2 : c.arch == "gpt2" ? 1e-2 : 1e-4);
    }
  }
}

// RoPE scaling as llama.cpp applies it (linear through rope.scaling.factor, llama3 through the rope_freqs tensor) and a
// llama model with every bias (permuted q/k biases). Measured max |logit diff| (f32 KV cache): linear 3.3e-6, llama3
// 3.0e-6, all biases 7.4e-6.
TEST(GgufLlamaCpp, ScaledRopeAndBiasedLlamaEqualTroupes) {
  std::string why;
  if (!llama_cpp_available(why)) GTEST_SKIP() << "llama-cpp-python is not importable in TROUPE_PYTHON: " << why;
  for (const auto& c : cases()) {
    if (c.config.rope_scaling == RopeScaling::kNone && c.label != "llama all biases") continue;
    SCOPED_TRACE(c.label);
    Gpt model = noisy_model(c.config, 13);
    ScratchDir dir;
    const Parity p = run_parity(model, GgufFileType::kF32, "f32", dir.path());
    print(c.label + " f32, f32 KV cache", p);
    EXPECT_EQ(p.same_tokens, static_cast<int>(parity_prompts().size()));
    EXPECT_LT(p.max_logit_diff, 1e-4);
  }
}

// gpt_trunk_parameters folds unmerged LoRA adapters into the exported weights: llama.cpp, which knows nothing of them,
// computes the adapted model. Measured max |logit diff| (f32 KV cache): 4.3e-6.
TEST(GgufLlamaCpp, UnmergedLoraAdaptersAreFoldedIntoTheFile) {
  std::string why;
  if (!llama_cpp_available(why)) GTEST_SKIP() << "llama-cpp-python is not importable in TROUPE_PYTHON: " << why;
  Gpt model = noisy_model(llama_config(false), 17);
  LoraConfig lora;
  lora.rank = 4;
  lora.targets = {"*.q_proj", "*.v_proj", "*.down_proj"};
  apply_lora(model, lora);
  torch::NoGradGuard no_grad;
  for (auto& [name, layer] : model->linear_layers()) {
    if (layer->has_lora()) layer->lora_B.normal_(0.0, 0.5);  // B starts at 0: make the adapters matter
  }
  ScratchDir dir;
  const Parity p = run_parity(model, GgufFileType::kF32, "f32", dir.path());
  print("llama gqa + LoRA f32, f32 KV cache", p);
  EXPECT_EQ(p.same_tokens, static_cast<int>(parity_prompts().size()));
  EXPECT_LT(p.max_logit_diff, 1e-4);
  for (auto& [name, layer] : model->linear_layers()) EXPECT_FALSE(layer->merged()) << name;  // left as it was
  Gpt plain = noisy_model(llama_config(false), 17);  // the same weights without adapters
  const torch::Tensor ids = torch::tensor(parity_prompts()[1]).unsqueeze(0);
  EXPECT_GT((model->forward(ids) - plain->forward(ids)).abs().max().item<double>(), 0.1);  // the adapters matter
}

TEST(GgufLlamaCpp, Q8GreedyContinuationMostlyEqualsTroupes) {
  std::string why;
  if (!llama_cpp_available(why)) GTEST_SKIP() << "llama-cpp-python is not importable in TROUPE_PYTHON: " << why;
  int same = 0, total = 0;
  for (const auto& c : parity_cases()) {
    SCOPED_TRACE(c.label);
    Gpt model = noisy_model(c.config, 11);
    ScratchDir dir;
    const Parity p = run_parity(model, GgufFileType::kQ8_0, "f32", dir.path());
    print(c.label + " q8_0, f32 KV cache", p);
    same += p.same_tokens;
    total += static_cast<int>(parity_prompts().size());
  }
  // Measured: gpt2 6/6, qwen2 6/6, llama 2/6 (its logits span only ~5, so q8_0's error of ~0.15 flips near-ties; the
  // first different token came at new token 1, 1, 2 and 15).
  EXPECT_GE(2 * same, total);
}

}  // namespace troupe::models::gguf_test
