// Tests for models/hf_gpt2.h: Troupe <-> Hugging Face GPT-2 renaming and Conv1D transposes on a tiny random
// model, the hub's prefix-less names, rejection of missing/extra/misshaped tensors, and config.json.
#include "models/hf_gpt2.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include "core/errors.h"
#include "tests/support/test_support.h"

namespace troupe::models {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using troupe::testing::ScratchDir;

GptConfig hf_tiny_config() {
  GptConfig cfg;
  cfg.n_layer = 2;
  cfg.n_head = 2;
  cfg.n_embd = 8;
  cfg.block_size = 16;
  cfg.vocab_size = 11;
  return cfg;
}

// Random parameters in Troupe layout (distinct values everywhere, so a wrong transpose or swap shows).
NamedTensors random_params(const GptConfig& cfg, uint64_t seed = 0) {
  torch::manual_seed(seed);
  NamedTensors out;
  for (const auto& [name, shape] : gpt_parameter_shapes(cfg)) out.emplace_back(name, torch::randn(shape));
  return out;
}

const at::Tensor& find(const NamedTensors& params, const std::string& name) {
  for (const auto& [n, t] : params) {
    if (n == name) return t;
  }
  throw std::runtime_error("test: no tensor " + name);
}

bool has(const NamedTensors& params, const std::string& name) {
  return std::any_of(params.begin(), params.end(), [&](const auto& p) { return p.first == name; });
}

void expect_identical(const NamedTensors& a, const NamedTensors& b) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    SCOPED_TRACE(a[i].first);
    EXPECT_EQ(a[i].first, b[i].first);
    EXPECT_EQ(a[i].second.sizes(), b[i].second.sizes());
    EXPECT_TRUE(torch::equal(a[i].second, b[i].second));
  }
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const DataError& e) {
    return e.what();
  }
  ADD_FAILURE() << "no DataError";
  return "";
}

TEST(HfGpt2, ParameterTableMatchesConfigCount) {
  for (bool tied : {true, false}) {
    for (bool bias : {true, false}) {
      GptConfig cfg = hf_tiny_config();
      cfg.tie_embeddings = tied;
      cfg.bias = bias;
      int64_t total = 0;
      for (const auto& [name, shape] : gpt_parameter_shapes(cfg)) {
        int64_t n = 1;
        for (int64_t s : shape) n *= s;
        total += n;
      }
      EXPECT_EQ(total, cfg.parameter_count()) << "tied " << tied << " bias " << bias;
    }
  }
  EXPECT_EQ(gpt_parameter_shapes(hf_tiny_config()).size(), 2u + 2 * 12 + 2);
}

TEST(HfGpt2, ToHfAndBackIsIdentity) {
  for (bool tied : {true, false}) {
    SCOPED_TRACE(tied ? "tied" : "untied");
    GptConfig cfg = hf_tiny_config();
    cfg.tie_embeddings = tied;
    const NamedTensors params = random_params(cfg);
    const NamedTensors hf = to_hf_gpt2(params, cfg);
    EXPECT_EQ(has(hf, "lm_head.weight"), !tied);
    expect_identical(params, from_hf_gpt2(hf, cfg));
  }
}

TEST(HfGpt2, TransposesTheFourConv1DWeightsElementWise) {
  const GptConfig cfg = hf_tiny_config();
  const NamedTensors params = random_params(cfg);
  const NamedTensors hf = to_hf_gpt2(params, cfg);
  ASSERT_EQ(hf.size(), params.size());
  const std::vector<std::pair<std::string, std::vector<int64_t>>> conv1d{
      {"transformer.h.1.attn.c_attn.weight", {8, 24}},
      {"transformer.h.1.attn.c_proj.weight", {8, 8}},
      {"transformer.h.0.mlp.c_fc.weight", {8, 32}},
      {"transformer.h.0.mlp.c_proj.weight", {32, 8}}};
  for (const auto& [name, hf_shape] : conv1d) {
    SCOPED_TRACE(name);
    const at::Tensor& ours = find(params, name);
    const at::Tensor& theirs = find(hf, name);
    ASSERT_EQ(theirs.sizes().vec(), hf_shape);
    EXPECT_TRUE(theirs.is_contiguous());
    auto a = ours.accessor<float, 2>();
    auto b = theirs.accessor<float, 2>();
    for (int64_t out = 0; out < ours.size(0); ++out) {
      for (int64_t in = 0; in < ours.size(1); ++in) ASSERT_EQ(a[out][in], b[in][out]) << out << "," << in;
    }
  }
  // Everything else passes through unchanged, under the same name.
  for (const char* name :
       {"transformer.wte.weight", "transformer.wpe.weight", "transformer.h.0.ln_1.weight",
        "transformer.h.1.attn.c_attn.bias", "transformer.h.0.mlp.c_fc.bias", "transformer.ln_f.bias"}) {
    EXPECT_TRUE(torch::equal(find(params, name), find(hf, name))) << name;
  }
}

TEST(HfGpt2, AcceptsHubNamesWithoutPrefixAndIgnoresMaskBuffers) {
  const GptConfig cfg = hf_tiny_config();
  const NamedTensors params = random_params(cfg);
  NamedTensors hub;
  for (const auto& [name, t] : to_hf_gpt2(params, cfg))
    hub.emplace_back(name.substr(std::string("transformer.").size()), t);
  for (int i = 0; i < 2; ++i) {
    const std::string h = "h." + std::to_string(i) + ".attn.";
    hub.emplace_back(h + "bias", torch::ones({16, 16}).tril().view({1, 1, 16, 16}));
    hub.emplace_back(h + "masked_bias", torch::tensor(-1e4));
  }
  EXPECT_EQ(hub[0].first, "wte.weight");
  expect_identical(params, from_hf_gpt2(hub, cfg));
}

TEST(HfGpt2, TiedLmHeadIsAcceptedOnlyWhenEqualToWte) {
  const GptConfig cfg = hf_tiny_config();
  const NamedTensors params = random_params(cfg);
  NamedTensors hf = to_hf_gpt2(params, cfg);
  hf.emplace_back("lm_head.weight", find(params, "transformer.wte.weight").clone());
  expect_identical(params, from_hf_gpt2(hf, cfg));
  hf.back().second = hf.back().second + 1;
  EXPECT_THAT(error_of([&] { from_hf_gpt2(hf, cfg); }), HasSubstr("lm_head.weight differs"));
}

TEST(HfGpt2, RejectsMissingUnexpectedAndMisshapedTensors) {
  const GptConfig cfg = hf_tiny_config();
  const NamedTensors params = random_params(cfg);
  const NamedTensors hf = to_hf_gpt2(params, cfg);

  NamedTensors missing;
  for (const auto& p : hf) {
    if (p.first != "transformer.h.1.ln_2.bias") missing.push_back(p);
  }
  const std::string m = error_of([&] { from_hf_gpt2(missing, cfg, "model.safetensors"); });
  EXPECT_THAT(m, HasSubstr("model.safetensors"));
  EXPECT_THAT(m, HasSubstr("missing tensor 'transformer.h.1.ln_2.bias' [8]"));

  NamedTensors extra = hf;
  extra.emplace_back("transformer.h.2.ln_1.weight", torch::ones({8}));
  EXPECT_THAT(error_of([&] { from_hf_gpt2(extra, cfg); }),
              HasSubstr("unexpected tensor 'transformer.h.2.ln_1.weight'"));

  // A Troupe-layout (untransposed) c_attn weight is exactly the mistake the shape check must catch.
  NamedTensors misshaped = hf;
  for (auto& [name, t] : misshaped) {
    if (name == "transformer.h.0.attn.c_attn.weight") t = t.t();
  }
  EXPECT_THAT(error_of([&] { from_hf_gpt2(misshaped, cfg); }),
              HasSubstr("'transformer.h.0.attn.c_attn.weight' has shape [24, 8], expected [8, 24] (Conv1D [in, out])"));

  NamedTensors duplicate = hf;
  duplicate.emplace_back("wte.weight", find(hf, "transformer.wte.weight"));
  EXPECT_THAT(error_of([&] { from_hf_gpt2(duplicate, cfg); }), HasSubstr("duplicate tensor 'wte.weight'"));

  GptConfig untied = cfg;
  untied.tie_embeddings = false;
  EXPECT_THAT(error_of([&] { from_hf_gpt2(hf, untied); }), HasSubstr("missing tensor 'lm_head.weight'"));
}

TEST(HfGpt2, ToHfRejectsWrongTroupeParameters) {
  const GptConfig cfg = hf_tiny_config();
  NamedTensors params = random_params(cfg);
  params.erase(params.begin() + 1);                              // wpe
  params.emplace_back("lm_head.weight", torch::zeros({11, 8}));  // tied: not a parameter
  for (auto& [name, t] : params) {
    if (name == "transformer.h.1.mlp.c_fc.weight") t = t.t();  // HF layout given by mistake
  }
  const std::string m = error_of([&] { to_hf_gpt2(params, cfg); });
  EXPECT_THAT(m, HasSubstr("3 problem(s)"));
  EXPECT_THAT(m, HasSubstr("missing tensor 'transformer.wpe.weight' [16, 8]"));
  EXPECT_THAT(m, HasSubstr("unexpected tensor 'lm_head.weight'"));
  EXPECT_THAT(m, HasSubstr("'transformer.h.1.mlp.c_fc.weight' has shape [8, 32], expected [32, 8] (Linear [out, in])"));
}

TEST(HfGpt2, BiasFreeModelsExportZeroBiases) {
  GptConfig cfg = hf_tiny_config();
  cfg.bias = false;
  const NamedTensors params = random_params(cfg);
  EXPECT_FALSE(has(params, "transformer.h.0.ln_1.bias"));
  NamedTensors hf = to_hf_gpt2(params, cfg);
  GptConfig biased = cfg;
  biased.bias = true;
  EXPECT_EQ(hf.size(), gpt_parameter_shapes(biased).size());
  EXPECT_TRUE(torch::equal(find(hf, "transformer.h.1.mlp.c_fc.bias"), torch::zeros({32})));
  expect_identical(params, from_hf_gpt2(hf, cfg));
  for (auto& [name, t] : hf) {
    if (name == "transformer.ln_f.bias") t = t + 0.5;
  }
  EXPECT_THAT(error_of([&] { from_hf_gpt2(hf, cfg); }), HasSubstr("'transformer.ln_f.bias' is non-zero"));
}

TEST(HfGpt2, ConfigJsonRoundTrips) {
  ScratchDir dir("hf-gpt2");
  GptConfig cfg = hf_tiny_config();
  cfg.dropout = 0.25;
  cfg.tie_embeddings = false;
  cfg.layer_norm_eps = 1e-6;
  write_hf_config_json(dir / "config.json", cfg);
  const nlohmann::json j = nlohmann::json::parse(troupe::testing::read_file(dir / "config.json"));
  EXPECT_EQ(j["model_type"], "gpt2");
  EXPECT_EQ(j["architectures"], nlohmann::json::array({"GPT2LMHeadModel"}));
  EXPECT_EQ(j["activation_function"], "gelu_new");
  EXPECT_EQ(j["n_positions"], 16);
  EXPECT_EQ(j["n_ctx"], 16);
  EXPECT_EQ(j["attn_pdrop"], 0.25);
  EXPECT_EQ(j["tie_word_embeddings"], false);
  const GptConfig back = read_hf_config_json(dir / "config.json");
  EXPECT_EQ(back.n_layer, 2);
  EXPECT_EQ(back.n_head, 2);
  EXPECT_EQ(back.n_embd, 8);
  EXPECT_EQ(back.block_size, 16);
  EXPECT_EQ(back.vocab_size, 11);
  EXPECT_EQ(back.dropout, 0.25);
  EXPECT_EQ(back.layer_norm_eps, 1e-6);
  EXPECT_FALSE(back.tie_embeddings);
  EXPECT_TRUE(back.bias);
}

TEST(HfGpt2, ReadsTheHubGpt2ConfigWithDefaults) {
  ScratchDir dir("hf-gpt2");
  // The hub's gpt2/config.json (abridged): no tie_word_embeddings, no layer_norm_epsilon default needed.
  troupe::testing::write_file(dir / "config.json", R"({
    "activation_function": "gelu_new", "architectures": ["GPT2LMHeadModel"], "attn_pdrop": 0.1,
    "bos_token_id": 50256, "embd_pdrop": 0.1, "eos_token_id": 50256, "initializer_range": 0.02,
    "layer_norm_epsilon": 1e-05, "model_type": "gpt2", "n_ctx": 1024, "n_embd": 768, "n_head": 12,
    "n_layer": 12, "n_positions": 1024, "resid_pdrop": 0.1, "summary_activation": null,
    "task_specific_params": {"text-generation": {"do_sample": true, "max_length": 50}}, "vocab_size": 50257})");
  const GptConfig cfg = read_hf_config_json(dir / "config.json");
  GptConfig preset;
  ASSERT_TRUE(gpt2_preset("gpt2", preset));
  EXPECT_EQ(cfg.parameter_count(), preset.parameter_count());
  EXPECT_EQ(cfg.block_size, 1024);
  EXPECT_TRUE(cfg.tie_embeddings);
  EXPECT_DOUBLE_EQ(cfg.dropout, 0.1);
}

TEST(HfGpt2, BadConfigsNameFileAndKey) {
  ScratchDir dir("hf-gpt2");
  const std::string base = R"("n_layer": 2, "n_head": 2, "n_embd": 8, "vocab_size": 11)";
  const std::vector<std::pair<std::string, std::string>> cases{
      {"{" + base + "}", "key 'n_positions': missing"},
      {R"({"n_layer": 2, "n_embd": 8, "n_positions": 16, "vocab_size": 11})", "key 'n_head': missing"},
      {R"({"n_layer": "2", "n_head": 2, "n_embd": 8, "n_positions": 16, "vocab_size": 11})",
       "key 'n_layer': expected an integer"},
      {"{" + base + R"(, "n_positions": 16, "activation_function": "relu"})",
       "key 'activation_function': unsupported activation 'relu'"},
      {"{" + base + R"(, "n_positions": 16, "model_type": "gpt_neox"})", "key 'model_type': expected \"gpt2\""},
      {"{" + base + R"(, "n_positions": 16, "n_inner": 64})", "key 'n_inner': unsupported"},
      {"{" + base + R"(, "n_positions": 16, "attn_pdrop": 0.2})", "key 'attn_pdrop': differs from resid_pdrop"},
      {"{" + base + R"(, "n_positions": 16, "tie_word_embeddings": 1})", "key 'tie_word_embeddings': expected true"},
      {"{" + base + R"(, "n_positions": 16, "scale_attn_by_inverse_layer_idx": true})",
       "key 'scale_attn_by_inverse_layer_idx'"},
      {R"({"n_layer": 2, "n_head": 3, "n_embd": 8, "n_positions": 16, "vocab_size": 11})", "n_embd"},
      {R"({"n_layer": 2, "n_head": 2,)", "invalid JSON"},
      {"[1, 2]", "expected a JSON object"},
  };
  for (size_t i = 0; i < cases.size(); ++i) {
    SCOPED_TRACE(cases[i].first);
    const fs::path path = dir / ("config" + std::to_string(i) + ".json");
    troupe::testing::write_file(path, cases[i].first);
    const std::string m = error_of([&] { read_hf_config_json(path); });
    EXPECT_THAT(m, HasSubstr(path.string()));
    EXPECT_THAT(m, HasSubstr(cases[i].second));
  }
  EXPECT_THROW(read_hf_config_json(dir / "absent.json"), IoError);
}

TEST(HfGpt2, DirectoryExportImportRoundTrips) {
  ScratchDir dir("hf-gpt2");
  for (bool tied : {true, false}) {
    SCOPED_TRACE(tied ? "tied" : "untied");
    GptConfig cfg = hf_tiny_config();
    cfg.tie_embeddings = tied;
    cfg.dropout = 0.0;
    const NamedTensors params = random_params(cfg, 3);
    const fs::path out = dir / (tied ? "tied" : "untied");
    export_hf_gpt2_dir(out, params, cfg);
    const SafetensorsFile file = load_safetensors(out / "model.safetensors");
    EXPECT_EQ(file.metadata.at("format"), "pt");
    EXPECT_EQ(file.contains("lm_head.weight"), !tied);
    EXPECT_EQ(file.get("transformer.h.0.mlp.c_proj.weight").sizes().vec(), (std::vector<int64_t>{32, 8}));
    const HfGpt2Checkpoint back = import_hf_gpt2_dir(out);
    EXPECT_EQ(back.config.parameter_count(), cfg.parameter_count());
    EXPECT_EQ(back.config.tie_embeddings, tied);
    expect_identical(params, back.params);
  }
  EXPECT_THROW(import_hf_gpt2_dir(dir / "nothing"), IoError);
}

}  // namespace
}  // namespace troupe::models
