// Hugging Face Llama-family interop without Python (models/hf_llama.h, models/safetensors_shards.h): config.json
// written and read back, transformers' legacy keys and class defaults, what is rejected (naming file and key), the
// class chosen on export, bounded shards with an index, half-precision files, tied heads, and the errors for missing
// shards and bad tensors. Parity against the real transformers package is hf_llama_test.cpp.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <set>

#include "core/errors.h"
#include "models/gpt_checkpoint.h"
#include "models/gpt_io.h"
#include "models/hf_llama.h"
#include "models/safetensors_shards.h"
#include "tests/models/hf_llama_cases.h"
#include "tests/support/test_support.h"

namespace troupe::models {
namespace hf_llama_files_test {

namespace fs = std::filesystem;
using namespace hf_llama_cases;
using testing::ScratchDir;

// ---- config.json, without Python --------------------------------------------------------------------------------

void expect_same_model(const GptConfig& a, const GptConfig& b) {
  EXPECT_EQ(a.arch, b.arch);
  EXPECT_EQ(a.n_layer, b.n_layer);
  EXPECT_EQ(a.n_head, b.n_head);
  EXPECT_EQ(a.kv_heads(), b.kv_heads());
  EXPECT_EQ(a.n_embd, b.n_embd);
  EXPECT_EQ(a.head_dim(), b.head_dim());
  EXPECT_EQ(a.mlp_width(), b.mlp_width());
  EXPECT_EQ(a.vocab_size, b.vocab_size);
  EXPECT_EQ(a.tie_embeddings, b.tie_embeddings);
  EXPECT_EQ(a.layer_norm_eps, b.layer_norm_eps);
  EXPECT_EQ(a.rope_theta, b.rope_theta);
  EXPECT_EQ(a.rope_scaling, b.rope_scaling);
  if (a.rope_scaling != RopeScaling::kNone) {
    EXPECT_EQ(a.rope_factor, b.rope_factor);
  }
  if (a.rope_scaling == RopeScaling::kLlama3) {
    EXPECT_EQ(a.rope_low_freq_factor, b.rope_low_freq_factor);
    EXPECT_EQ(a.rope_high_freq_factor, b.rope_high_freq_factor);
  }
  EXPECT_EQ(a.qkv_bias, b.qkv_bias);
  EXPECT_EQ(a.o_bias, b.o_bias);
  EXPECT_EQ(a.mlp_bias, b.mlp_bias);
  EXPECT_EQ(a.sliding_window, b.sliding_window);
}

TEST(HfLlamaConfig, WrittenConfigReadsBackAsTheSameModel) {
  ScratchDir dir;
  for (const auto& c : export_cases()) {
    SCOPED_TRACE(c.name);
    const HfLlamaType type = default_hf_llama_type(c.config);
    write_hf_llama_config(dir / "config.json", c.config, type);
    const auto j = nlohmann::json::parse(std::ifstream(dir / "config.json"));
    EXPECT_EQ(j["architectures"][0], c.expected_class);
    EXPECT_EQ(j["rope_parameters"]["rope_theta"], c.config.rope_theta);
    const GptConfig back = read_hf_llama_config(dir / "config.json");
    expect_same_model(c.config, back);
    if (c.config.rope_scaling == RopeScaling::kDynamic) {  // max_position_embeddings = the threshold, 16
      EXPECT_EQ(j["max_position_embeddings"], 16);
      EXPECT_EQ(back.rope_original_context, 16);
      EXPECT_EQ(back.block_size, 32);  // 16 * factor 2
    } else {
      EXPECT_EQ(back.block_size, c.config.block_size);
      EXPECT_EQ(back.rope_scaling == RopeScaling::kLlama3 ? back.rope_original_context : 0,
                c.config.rope_scaling == RopeScaling::kLlama3 ? c.config.rope_original_context : 0);
    }
  }
}

void write_json(const fs::path& path, const nlohmann::json& j) { testing::write_file(path, j.dump(2)); }

nlohmann::json llama_json() {
  return {{"model_type", "llama"},  {"architectures", {"LlamaForCausalLM"}},
          {"hidden_size", 32},      {"intermediate_size", 64},
          {"num_hidden_layers", 2}, {"num_attention_heads", 4},
          {"vocab_size", 97},       {"max_position_embeddings", 64}};
}

TEST(HfLlamaConfig, ReadsLegacyRopeKeysAndClassDefaultsAsTransformersDoes) {
  ScratchDir dir;
  const fs::path path = dir / "config.json";
  nlohmann::json j = llama_json();  // transformers 4.x style: top-level rope_theta, rope_scaling with "type"
  j["rope_theta"] = 500000.0;
  j["rope_scaling"] = {{"type", "linear"}, {"factor", 4.0}};
  j["rope_parameters"] = {{"rope_type", "default"}, {"rope_theta", 1.0}};  // a non-empty rope_scaling wins
  write_json(path, j);
  GptConfig c = read_hf_llama_config(path);
  EXPECT_EQ(c.rope_scaling, RopeScaling::kLinear);
  EXPECT_EQ(c.rope_factor, 4.0);
  EXPECT_EQ(c.rope_theta, 500000.0);
  EXPECT_EQ(c.kv_heads(), 4);         // LlamaConfig: num_key_value_heads = num_attention_heads
  EXPECT_EQ(c.layer_norm_eps, 1e-6);  // rms_norm_eps default
  EXPECT_FALSE(c.tie_embeddings);     // tie_word_embeddings default
  j.erase("rope_scaling");
  j["rope_parameters"] = {{"rope_type", "llama3"},
                          {"factor", 8.0},
                          {"low_freq_factor", 1.0},
                          {"high_freq_factor", 4.0},
                          {"original_max_position_embeddings", 8}};
  j["original_max_position_embeddings"] = 16;  // a top-level key wins (standardize_rope_params)
  write_json(path, j);
  c = read_hf_llama_config(path);
  EXPECT_EQ(c.rope_scaling, RopeScaling::kLlama3);
  EXPECT_EQ(c.rope_original_context, 16);
  EXPECT_EQ(c.rope_theta, 500000.0);  // from the top level: rope_parameters has none
  nlohmann::json m = llama_json();
  m.erase("model_type");
  m["architectures"] = {"MistralForCausalLM"};  // the class alone tells the type
  m["num_attention_heads"] = 8;
  write_json(path, m);
  EXPECT_EQ(read_hf_llama_config(path).sliding_window, 4096);  // MistralConfig's default
  EXPECT_EQ(read_hf_llama_config(path).kv_heads(), 8);         // MistralConfig's default
  m["sliding_window"] = nullptr;
  write_json(path, m);
  EXPECT_EQ(read_hf_llama_config(path).sliding_window, 0);
  nlohmann::json q = llama_json();
  q["model_type"] = "qwen2";
  q["architectures"] = {"Qwen2ForCausalLM"};
  q["num_key_value_heads"] = 2;
  q["use_sliding_window"] = true;
  q["sliding_window"] = 8;  // max_window_layers 28 >= 2 layers: no layer slides
  write_json(path, q);
  c = read_hf_llama_config(path);
  EXPECT_EQ(c.sliding_window, 0);
  EXPECT_TRUE(c.qkv_bias && !c.o_bias);
}

// read_hf_llama_config's DataError for `edit` applied to a valid config names the file and `key`.
void expect_rejected(const std::function<void(nlohmann::json&)>& edit, const std::string& key) {
  SCOPED_TRACE(key);
  ScratchDir dir;
  nlohmann::json j = llama_json();
  edit(j);
  write_json(dir / "config.json", j);
  try {
    read_hf_llama_config(dir / "config.json");
    ADD_FAILURE() << "no error";
  } catch (const DataError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find((dir / "config.json").string()), std::string::npos) << msg;
    EXPECT_NE(msg.find(key), std::string::npos) << msg;
  }
}

TEST(HfLlamaConfig, RejectsWhatTroupeCannotRepresentNamingFileAndKey) {
  expect_rejected([](auto& j) { j["hidden_act"] = "gelu"; }, "key 'hidden_act'");
  expect_rejected(
      [](auto& j) {
        j["rope_parameters"] = {{"rope_type", "yarn"}, {"factor", 4.0}};
      },
      "key 'rope_parameters.rope_type': unsupported RoPE type 'yarn'");
  expect_rejected(
      [](auto& j) {
        j["rope_scaling"] = {{"type", "longrope"}, {"factor", 4.0}};
      },
      "key 'rope_scaling.rope_type'");
  expect_rejected([](auto& j) { j["partial_rotary_factor"] = 0.5; }, "key 'partial_rotary_factor'");
  expect_rejected(
      [](auto& j) {
        j["rope_parameters"] = {{"full_attention", {{"rope_type", "default"}}}};
      },
      "key 'rope_parameters'");
  expect_rejected([](auto& j) { j["rope_parameters"] = {{"rope_type", "linear"}}; }, "key 'rope_parameters.factor'");
  expect_rejected([](auto& j) { j["model_type"] = "qwen3"; }, "key 'model_type'");
  expect_rejected([](auto& j) { j["architectures"] = {"Qwen2ForCausalLM"}; }, "key 'architectures'");
  expect_rejected([](auto& j) { j["attention_dropout"] = 0.1; }, "key 'attention_dropout'");
  expect_rejected([](auto& j) { j["quantization_config"] = {{"quant_method", "gptq"}}; }, "key 'quantization_config'");
  expect_rejected([](auto& j) { j["num_key_value_heads"] = 3; }, "key 'num_key_value_heads'");
  expect_rejected([](auto& j) { j["head_dim"] = 7; }, "key 'head_dim'");
  expect_rejected([](auto& j) { j["hidden_size"] = 30; }, "key 'hidden_size'");
  expect_rejected([](auto& j) { j.erase("vocab_size"); }, "key 'vocab_size': missing");
  expect_rejected(
      [](auto& j) {
        j["model_type"] = "qwen2";
        j["architectures"] = {"Qwen2ForCausalLM"};
        j["num_key_value_heads"] = 2;  // Qwen2Config's default is 32
        j["use_sliding_window"] = true;
        j["max_window_layers"] = 1;  // layer 0 full, layer 1 sliding
      },
      "key 'max_window_layers'");
}

TEST(HfLlamaConfig, ExportPicksTheClassThatRepresentsTheConfig) {
  GptConfig c = tiny();
  EXPECT_EQ(default_hf_llama_type(c), HfLlamaType::kLlama);
  c.qkv_bias = true;
  EXPECT_EQ(default_hf_llama_type(c), HfLlamaType::kQwen2);
  c.sliding_window = 8;
  EXPECT_EQ(default_hf_llama_type(c), HfLlamaType::kQwen2);  // Qwen2 with use_sliding_window
  c.qkv_bias = false;
  EXPECT_EQ(default_hf_llama_type(c), HfLlamaType::kMistral);
  c.mlp_bias = true;  // a window and an MLP bias: no class has both
  EXPECT_THROW(default_hf_llama_type(c), ConfigError);
  c = tiny();
  c.o_bias = true;  // o_proj bias without q/k/v biases
  EXPECT_THROW(default_hf_llama_type(c), ConfigError);
  ScratchDir dir;
  Gpt model(tiny());
  HfExportOptions options;
  options.type = HfLlamaType::kQwen2;  // Qwen2 always has q/k/v biases
  EXPECT_THROW(save_hf_llama(dir / "hf", model, options), ConfigError);
  EXPECT_FALSE(fs::exists(dir / "hf"));  // nothing written
  GptConfig gpt2;
  gpt2.n_layer = 1;
  gpt2.n_embd = 32;
  gpt2.vocab_size = 50;
  Gpt g(gpt2);
  EXPECT_THROW(save_hf_llama(dir / "hf", g), ConfigError);
}

// ---- weight files, without Python --------------------------------------------------------------------------------

// The tensors of every weight file in `dir`, by name.
std::map<std::string, torch::Tensor> all_tensors(const fs::path& dir) {
  std::map<std::string, torch::Tensor> out;
  for_each_safetensors_file(dir, [&](SafetensorsFile& f) {
    for (auto& [name, t] : f.tensors) out[name] = t;
  });
  return out;
}

// Rewrites a safetensors file with `edit` applied to its tensors (metadata kept).
void rewrite(const fs::path& file, const std::function<void(NamedTensors&)>& edit) {
  SafetensorsFile f = load_safetensors(file);
  edit(f.tensors);
  save_safetensors(file, f.tensors, f.metadata);
}

void expect_data_error(const std::function<void()>& fn, const std::vector<std::string>& parts) {
  try {
    fn();
    ADD_FAILURE() << "no error";
  } catch (const DataError& e) {
    for (const auto& p : parts) EXPECT_NE(std::string(e.what()).find(p), std::string::npos) << e.what();
  }
}

TEST(HfLlamaFiles, ShardedExportHasBoundedShardsAnIndexAndRoundTripsExactly) {
  ScratchDir dir;
  Gpt model = noisy_model(tiny(), 7);
  HfExportOptions options;
  options.max_shard_bytes = 9000;
  save_hf_llama(dir / "hf", model, options);
  const auto index = nlohmann::json::parse(std::ifstream(dir / "hf" / kSafetensorsIndex));
  std::set<std::string> files;
  for (const auto& [tensor, file] : index["weight_map"].items()) files.insert(file.get<std::string>());
  EXPECT_GE(files.size(), 3u);
  uint64_t total = 0;
  for (const auto& file : files) {
    const SafetensorsFile f = load_safetensors(dir / "hf" / file);
    EXPECT_EQ(f.metadata.at("format"), "pt");
    uint64_t bytes = 0;
    for (const auto& [name, t] : f.tensors) bytes += t.numel() * t.element_size();
    EXPECT_TRUE(bytes <= 9000 || f.tensors.size() == 1) << file << ": " << bytes;  // a larger tensor stands alone
    total += bytes;
  }
  EXPECT_EQ(index["metadata"]["total_size"].get<uint64_t>(), total);
  EXPECT_FALSE(fs::exists(dir / "hf" / kSafetensorsSingle));
  Gpt loaded = load_hf_model(dir / "hf");
  const NamedTensors ours = gpt_trunk_parameters(model), theirs = gpt_trunk_parameters(loaded);
  ASSERT_EQ(ours.size(), theirs.size());
  for (size_t i = 0; i < ours.size(); ++i) {
    EXPECT_EQ(ours[i].first, theirs[i].first);
    EXPECT_TRUE(torch::equal(ours[i].second, theirs[i].second)) << ours[i].first;
  }
  save_hf_llama(dir / "hf", model);  // one file now: the old shards and index go
  size_t weight_files = 0;
  for (const auto& e : fs::directory_iterator(dir / "hf")) weight_files += e.path().extension() == ".safetensors";
  EXPECT_EQ(weight_files, 1u);
  EXPECT_FALSE(fs::exists(dir / "hf" / kSafetensorsIndex));
}

TEST(HfLlamaFiles, MissingShardIsADataErrorNamingTheIndexAndTheTensor) {
  ScratchDir dir;
  Gpt model = noisy_model(tiny(), 8);
  HfExportOptions options;
  options.max_shard_bytes = 9000;
  save_hf_llama(dir / "hf", model, options);
  const auto index = nlohmann::json::parse(std::ifstream(dir / "hf" / kSafetensorsIndex));
  const std::string shard = index["weight_map"]["model.norm.weight"];
  fs::remove(dir / "hf" / shard);
  expect_data_error([&] { load_hf_model(dir / "hf"); },
                    {(dir / "hf" / kSafetensorsIndex).string(), "key 'weight_map.", shard, "does not exist"});
}

TEST(HfLlamaFiles, MisshapenUnexpectedMissingAndNonFloatTensorsAreDataErrorsNamingFileAndTensor) {
  ScratchDir dir;
  Gpt model = noisy_model(tiny(), 9);
  save_hf_llama(dir / "hf", model);
  const fs::path file = dir / "hf" / kSafetensorsSingle;
  const std::string k = "model.layers.1.self_attn.k_proj.weight";
  rewrite(file, [&](NamedTensors& ts) {
    for (auto& [name, t] : ts)
      if (name == k) t = torch::zeros({t.size(0) + 8, t.size(1)});  // as if num_key_value_heads were 3
  });
  expect_data_error([&] { load_hf_model(dir / "hf"); }, {file.string(), k, "[24, 32]", "[16, 32]"});
  save_hf_llama(dir / "hf", model);
  rewrite(file, [](NamedTensors& ts) { ts.emplace_back("model.layers.0.self_attn.q_norm.weight", torch::ones({8})); });
  expect_data_error([&] { load_hf_model(dir / "hf"); }, {file.string(), "q_norm.weight", "not a parameter"});
  save_hf_llama(dir / "hf", model);
  rewrite(file, [](NamedTensors& ts) {
    ts.erase(std::remove_if(ts.begin(), ts.end(), [](const auto& p) { return p.first == "lm_head.weight"; }), ts.end());
  });
  expect_data_error([&] { load_hf_model(dir / "hf"); }, {"missing tensor 'lm_head.weight'"});  // untied needs it
  save_hf_llama(dir / "hf", model);
  rewrite(file, [](NamedTensors& ts) { ts[0].second = ts[0].second.to(torch::kLong); });
  expect_data_error([&] { load_hf_model(dir / "hf"); }, {file.string(), "model.embed_tokens.weight", "floating"});
}

TEST(HfLlamaFiles, HalfPrecisionFilesLoadAsFloat32AndATiedHeadMustEqualTheEmbedding) {
  ScratchDir dir;
  GptConfig c = tiny();
  c.tie_embeddings = true;
  Gpt model = noisy_model(c, 10);
  HfExportOptions options;
  options.max_shard_bytes = 9000;
  save_hf_llama(dir / "hf", model, options);
  bool half = false;
  for (const auto& e : fs::directory_iterator(dir / "hf")) {
    if (e.path().extension() != ".safetensors") continue;
    const auto dtype = half ? torch::kHalf : torch::kBFloat16;  // shards alternate bf16 / fp16
    half = !half;
    rewrite(e.path(), [&](NamedTensors& ts) {
      for (auto& [name, t] : ts) t = t.to(dtype);
    });
  }
  Gpt loaded = load_hf_model(dir / "hf");
  EXPECT_EQ(loaded->parameters()[0].scalar_type(), torch::kFloat32);
  const auto stored = all_tensors(dir / "hf");
  std::set<torch::ScalarType> dtypes;
  for (const auto& [name, t] : gpt_trunk_parameters(loaded)) {
    dtypes.insert(stored.at(name).scalar_type());
    EXPECT_TRUE(torch::equal(t, stored.at(name).to(torch::kFloat32))) << name;  // the file's values, widened
  }
  EXPECT_EQ(dtypes, (std::set<torch::ScalarType>{torch::kBFloat16, torch::kHalf}));
  const torch::Tensor original = gpt_trunk_parameters(model).front().second;
  const torch::Tensor widened = gpt_trunk_parameters(loaded).front().second;
  EXPECT_FALSE(torch::equal(original, widened));  // rounded on the way
  EXPECT_TRUE(torch::allclose(original, widened, 1e-2, 1e-3));
  // A tied model's file may carry lm_head.weight too (some exporters write it): accepted when it equals the
  // embedding, a DataError naming the file otherwise.
  save_hf_llama(dir / "hf", model);
  const fs::path file = dir / "hf" / kSafetensorsSingle;
  rewrite(file, [](NamedTensors& ts) { ts.emplace_back("lm_head.weight", ts[0].second.clone()); });
  EXPECT_NO_THROW(load_hf_model(dir / "hf"));
  rewrite(file, [](NamedTensors& ts) { ts.back().second = ts.back().second + 1; });
  expect_data_error([&] { load_hf_model(dir / "hf"); }, {file.string(), "lm_head.weight", "tie_word_embeddings"});
}

TEST(HfLlamaFiles, LoadPretrainedGptAndTheDispatcherTakeEveryHuggingFaceClass) {
  ScratchDir dir;
  Gpt model = noisy_model(tiny(), 11);
  HfExportOptions options;
  options.max_shard_bytes = 9000;
  save_hf_model(dir / "llama", model, options);
  Gpt loaded = load_pretrained_gpt(dir / "llama", GptHeads{true, false});  // a sharded directory, a fresh value head
  EXPECT_TRUE(loaded->config().llama());
  EXPECT_TRUE(loaded->heads().value);
  const torch::Tensor ids = torch::randint(0, 97, {1, 12}, torch::kLong);
  torch::NoGradGuard no_grad;
  loaded->eval();
  EXPECT_TRUE(torch::allclose(loaded->forward(ids), model->forward(ids)));
  GptConfig gpt2;
  gpt2.n_layer = 1;
  gpt2.n_head = 2;
  gpt2.n_embd = 32;
  gpt2.block_size = 16;
  gpt2.vocab_size = 50;
  Gpt g(gpt2);
  save_hf_model(dir / "gpt2", g);
  EXPECT_EQ(nlohmann::json::parse(std::ifstream(dir / "gpt2/config.json"))["model_type"], "gpt2");
  EXPECT_FALSE(load_pretrained_gpt(dir / "gpt2")->config().llama());
  // GPT-2 reads shards too: the same tensors split into an index and shards load to the same weights.
  const SafetensorsFile single = load_safetensors(dir / "gpt2" / kSafetensorsSingle);
  EXPECT_GE(save_safetensors_shards(dir / "gpt2", single.tensors, 5000).size(), 3u);
  EXPECT_FALSE(fs::exists(dir / "gpt2" / kSafetensorsSingle));
  Gpt resharded = load_pretrained_gpt(dir / "gpt2");
  const torch::Tensor gids = torch::randint(0, 50, {1, 8}, torch::kLong);
  g->eval();
  resharded->eval();
  EXPECT_TRUE(torch::equal(resharded->forward(gids), g->forward(gids)));
  testing::write_file(dir / "other/config.json", R"({"model_type": "gemma"})");
  testing::write_file(dir / "other/model.safetensors", "");
  expect_data_error([&] { load_hf_model(dir / "other"); }, {"config.json", "key 'model_type'", "gemma"});
}

}  // namespace hf_llama_files_test
}  // namespace troupe::models
