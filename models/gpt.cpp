// Implementation of models/gpt.h: the module tree (named like Hugging Face GPT-2), attention with an optional
// KV cache and padding mask, heads, initialisation, LoRA and freezing.
#include "models/gpt.h"

#include <ATen/Parallel.h>
#include <ATen/autocast_mode.h>
#include <fnmatch.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>

#include "core/errors.h"
#include "models/attention.h"
#include "models/kernels.h"

namespace troupe::models {

// ---- Linear with LoRA ------------------------------------------------------------------------------------------

namespace {
bool autocast_bf16() {
  return at::autocast::is_autocast_enabled(at::kCPU) && at::autocast::get_autocast_dtype(at::kCPU) == at::kBFloat16;
}

// W x for one row on the CPU with every ATen thread: blocks of W's rows, one gemv each. torch 2.15's CPU gemv (MKL)
// runs on one thread whatever the thread count (11.7 GB/s at 1 and 2 threads for the 50257 x 768 LM head here), and
// batch-1 decoding is nothing but gemvs bound by memory bandwidth. Inference only (no autograd through mv_out).
torch::Tensor parallel_mv(const torch::Tensor& weight, const torch::Tensor& x) {
  const int64_t rows = weight.size(0);
  torch::Tensor y = torch::empty({rows}, x.options());
  const int64_t grain = std::max<int64_t>(64, (int64_t{1} << 16) / std::max<int64_t>(weight.size(1), 1));
  at::parallel_for(0, rows, grain, [&](int64_t begin, int64_t end) {
    torch::NoGradGuard no_grad;  // grad mode is per thread: the pool's threads do not inherit the caller's
    torch::Tensor part = y.slice(0, begin, end);
    at::mv_out(part, weight.slice(0, begin, end), x);
  });
  return y;
}

// x W^T + b. One row (batch-1 decoding) goes through gemv: OpenBLAS's gemv is ~2x faster than its gemm with m = 1
// on wide layers such as the LM head (measured in Python torch 1.13 too: 7.9 ms vs 17 ms for 50257 x 384); without
// gradients and with several threads, through parallel_mv.
torch::Tensor linear_rows(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias) {
  const int64_t in = weight.size(1);
  if (x.numel() != in || x.dim() < 1) return torch::linear(x, weight, bias);
  std::vector<int64_t> shape = x.sizes().vec();
  shape.back() = weight.size(0);
  const bool parallel = at::get_num_threads() > 1 && weight.is_cpu() && weight.is_contiguous() &&
                        weight.scalar_type() == torch::kFloat32 && x.scalar_type() == torch::kFloat32 &&
                        !(torch::GradMode::is_enabled() && (weight.requires_grad() || x.requires_grad()));
  torch::Tensor y = parallel ? parallel_mv(weight, x.reshape({in}).contiguous()) : torch::mv(weight, x.reshape({in}));
  if (bias.defined()) y = y + bias;
  return y.view(shape);
}
}  // namespace

LinearImpl::LinearImpl(int64_t in, int64_t out, bool with_bias) : in_features(in), out_features(out) {
  weight = register_parameter("weight", torch::empty({out, in}));
  if (with_bias) bias = register_parameter("bias", torch::zeros({out}));
  torch::NoGradGuard no_grad;
  weight.normal_(0.0, 0.02);
}

torch::Tensor LinearImpl::forward(const torch::Tensor& x) {
  torch::Tensor y;
  if (quantized()) {
    y = quantized_linear(x, qw_, bias);
  } else if (fake_.scheme != QuantScheme::kNone) {
    y = torch::linear(x, fake_quantize(weight, fake_), bias);
  } else {
    // Under bf16 autocast, batches (not single-row decoding) take the cast-free bf16 kernel.
    const bool bf16_path = autocast_bf16() && x.numel() != in_features && x.dim() >= 2 &&
                           weight.scalar_type() == torch::kFloat32 &&
                           (x.scalar_type() == torch::kFloat32 || x.scalar_type() == torch::kBFloat16);
    y = bf16_path ? kernels::linear_bf16(x, weight, bias) : linear_rows(x, weight, bias);
  }
  if (lora_A.defined() && !merged_) {
    const torch::Tensor in = lora_dropout_ > 0 ? torch::dropout(x, lora_dropout_, is_training()) : x;
    y = y + torch::linear(torch::linear(in, lora_A), lora_B) * lora_scale_;
  }
  return y;
}

void LinearImpl::enable_lora(int64_t rank, double alpha, double dropout) {
  if (rank < 1) throw ConfigError("lora.rank must be >= 1, got " + std::to_string(rank));
  if (lora_A.defined()) throw ConfigError("LoRA is already enabled on this layer");
  lora_A = register_parameter("lora_A", torch::empty({rank, in_features}, weight.options()));
  lora_B = register_parameter("lora_B", torch::zeros({out_features, rank}, weight.options()));
  torch::NoGradGuard no_grad;
  torch::nn::init::kaiming_uniform_(lora_A, std::sqrt(5.0));  // PEFT's default for A
  lora_scale_ = alpha / static_cast<double>(rank);
  lora_dropout_ = dropout;
}

void LinearImpl::merge_lora() {
  if (!lora_A.defined()) return;
  if (quantized()) throw Error("merge_lora: the weight is quantized (gpt_trunk_parameters folds adapters instead)");
  if (merged_) throw Error("merge_lora: adapter already merged");
  torch::NoGradGuard no_grad;
  weight.add_(torch::matmul(lora_B, lora_A) * lora_scale_);
  merged_ = true;
}

void LinearImpl::unmerge_lora() {
  if (!lora_A.defined()) return;
  if (!merged_) throw Error("unmerge_lora: adapter is not merged");
  torch::NoGradGuard no_grad;
  weight.sub_(torch::matmul(lora_B, lora_A) * lora_scale_);
  merged_ = false;
}

// ---- quantized weights -------------------------------------------------------------------------------------------

namespace {

// The stored tensors of q as buffers of `m` (the handles share storage with q's tensors).
void register_quant_buffers(torch::nn::Module& m, QuantizedMatrix& q, torch::Tensor& qweight, torch::Tensor& qscale,
                            torch::Tensor& qmin, torch::Tensor& qabsmax, torch::Tensor& qabsmax_scale,
                            torch::Tensor& qabsmax_offset) {
  qweight = m.register_buffer("qweight", q.data);
  if (q.absmax_code.defined()) {
    qabsmax = m.register_buffer("qabsmax", q.absmax_code);
    qabsmax_scale = m.register_buffer("qabsmax_scale", q.absmax_scale);
    qabsmax_offset = m.register_buffer("qabsmax_offset",
                                       torch::tensor(static_cast<float>(q.absmax_offset), q.absmax_scale.options()));
  } else {
    qscale = m.register_buffer("qscale", q.scale);
  }
  if (q.minimum.defined()) qmin = m.register_buffer("qmin", q.minimum);
}

// What is derived from the buffers: nf4's fp32 absmax from its double-quantized form, int8_dynamic's row sums.
void refresh_derived(QuantizedMatrix& q, const torch::Tensor& qabsmax_offset) {
  torch::NoGradGuard no_grad;
  if (q.absmax_code.defined()) {
    const float offset = qabsmax_offset.item<float>();
    q.absmax_offset = offset;
    const torch::Tensor absmax = dynamic_dequantize_blocks({q.absmax_code, q.absmax_scale}, 256) + offset;
    q.scale = absmax.to(q.data.device());
  }
  if (q.scheme == QuantScheme::kInt8Dynamic)
    q.row_sums = q.data.to(torch::kInt32).sum(1, false, torch::kInt32).contiguous();
}

// Drops a weight's storage, keeping the parameter (an empty, frozen tensor on the same device).
void release_weight(torch::Tensor& weight) {
  torch::NoGradGuard no_grad;
  weight.set_data(torch::empty({0}, weight.options()));
  weight.set_requires_grad(false);
}

}  // namespace

void LinearImpl::quantize(const QuantOptions& options) {
  if (quantized()) throw Error("quantize: layer is already quantized");
  if (merged_) throw Error("quantize: unmerge the LoRA adapter first");
  qw_ = quantize_matrix(weight, options);
  register_quant_buffers(*this, qw_, qweight_, qscale_, qmin_, qabsmax_, qabsmax_scale_, qabsmax_offset_);
  release_weight(weight);
}

void LinearImpl::refresh_quantized() {
  if (quantized()) refresh_derived(qw_, qabsmax_offset_);
}

void LinearImpl::set_fake_quant(QuantScheme scheme, int64_t group) {
  if (quantized() && scheme != QuantScheme::kNone) throw Error("set_fake_quant: layer is already quantized");
  fake_ = QuantOptions{scheme, group, false};
}

// The fused kernels are CPU loops over fp32 and bf16; anything else (double in a test, a CUDA tensor) goes through
// ATen.
bool fused_dtype(const torch::Tensor& t) {
  return t.device().is_cpu() && (t.scalar_type() == torch::kFloat32 || t.scalar_type() == torch::kBFloat16);
}

// LayerNorm with fp32 parameters through the fused kernel. `bf16_out`: under bf16 autocast the block's norms hand
// bf16 straight to the next matmul (autocast would cast the fp32 output there anyway).
torch::Tensor norm(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias, double eps,
                   bool bf16_out) {
  const bool fp32_params =
      weight.scalar_type() == torch::kFloat32 && (!bias.defined() || bias.scalar_type() == torch::kFloat32);
  if (!fused_dtype(x) || !fp32_params) return torch::layer_norm(x, {x.size(-1)}, weight, bias, eps);
  const bool bf16 = bf16_out || x.scalar_type() == torch::kBFloat16;
  return kernels::layer_norm(x, weight, bias, eps, bf16 ? torch::kBFloat16 : torch::kFloat32);
}

torch::Tensor gelu_tanh(const torch::Tensor& x) {
  return fused_dtype(x) ? kernels::gelu_tanh(x) : torch::gelu(x, "tanh");
}

// ---- KV cache --------------------------------------------------------------------------------------------------

KvCache::KvCache(const GptConfig& config, int64_t batch, int64_t cap, torch::Dtype dtype, torch::Device device)
    : capacity(cap) {
  const auto options = torch::TensorOptions().dtype(dtype).device(device);
  for (int64_t l = 0; l < config.n_layer; ++l) {
    k.push_back(torch::zeros({batch, config.kv_heads(), cap, config.head_dim()}, options));
    v.push_back(torch::zeros({batch, config.kv_heads(), cap, config.head_dim()}, options));
  }
}

void KvCache::reorder(const torch::Tensor& rows) {
  for (size_t l = 0; l < k.size(); ++l) {
    k[l] = k[l].index_select(0, rows);
    v[l] = v[l].index_select(0, rows);
  }
}

// ---- the module tree -------------------------------------------------------------------------------------------

// Named, not anonymous: GptImpl::Trunk (declared in gpt.h) holds these modules as fields.
namespace gpt_modules {

struct EmbeddingImpl : torch::nn::Module {
  EmbeddingImpl(int64_t n, int64_t d) { weight = register_parameter("weight", torch::empty({n, d})); }
  torch::Tensor weight;
};
TORCH_MODULE(Embedding);

struct LayerNormImpl : torch::nn::Module {
  LayerNormImpl(int64_t d, bool with_bias) {
    weight = register_parameter("weight", torch::ones({d}));
    if (with_bias) bias = register_parameter("bias", torch::zeros({d}));
  }
  torch::Tensor weight, bias;
};
TORCH_MODULE(LayerNorm);

struct AttentionImpl : torch::nn::Module {
  AttentionImpl(const GptConfig& c)
      : c_attn(register_module("c_attn", Linear(c.n_embd, 3 * c.n_embd, c.bias))),
        c_proj(register_module("c_proj", Linear(c.n_embd, c.n_embd, c.bias))) {}
  Linear c_attn, c_proj;
};
TORCH_MODULE(Attention);

struct MlpImpl : torch::nn::Module {
  MlpImpl(const GptConfig& c)
      : c_fc(register_module("c_fc", Linear(c.n_embd, 4 * c.n_embd, c.bias))),
        c_proj(register_module("c_proj", Linear(4 * c.n_embd, c.n_embd, c.bias))) {}
  Linear c_fc, c_proj;
};
TORCH_MODULE(Mlp);

struct BlockImpl : torch::nn::Module {
  BlockImpl(const GptConfig& c)
      : ln_1(register_module("ln_1", LayerNorm(c.n_embd, c.bias))),
        attn(register_module("attn", Attention(c))),
        ln_2(register_module("ln_2", LayerNorm(c.n_embd, c.bias))),
        mlp(register_module("mlp", Mlp(c))) {}
  LayerNorm ln_1;
  Attention attn;
  LayerNorm ln_2;
  Mlp mlp;
};
TORCH_MODULE(Block);

}  // namespace gpt_modules

using gpt_modules::Block;
using gpt_modules::Embedding;
using gpt_modules::LayerNorm;

struct GptImpl::Trunk : torch::nn::Module {
  explicit Trunk(const GptConfig& c)
      : wte(register_module("wte", Embedding(c.vocab_size, c.n_embd))),
        wpe(register_module("wpe", Embedding(c.block_size, c.n_embd))),
        h(register_module("h", torch::nn::ModuleList())),
        ln_f(register_module("ln_f", LayerNorm(c.n_embd, c.bias))) {
    for (int64_t i = 0; i < c.n_layer; ++i) {
      blocks.push_back(Block(c));
      h->push_back(blocks.back());
    }
  }
  Embedding wte, wpe;
  torch::nn::ModuleList h;
  LayerNorm ln_f;
  std::vector<Block> blocks;
};

namespace {
constexpr int64_t kMaxCausalMask = 4096;  // positions of the precomputed causal mask at most
}  // namespace

GptImpl::GptImpl(GptConfig config, Heads heads) : config_(std::move(config)), heads_(heads) {
  config_.check();
  if (config_.llama()) {
    build_llama();
  } else {
    trunk_ = register_module("transformer", std::make_shared<Trunk>(config_));
    wte_ = trunk_->wte->weight;
    wte_module_ = trunk_->wte.ptr();
    dtype_ref_ = trunk_->wpe->weight;
  }
  if (!config_.tie_embeddings) lm_head_ = register_module("lm_head", Linear(config_.n_embd, config_.vocab_size, false));
  if (heads_.value) value_head_ = register_module("value_head", Linear(config_.n_embd, 1, true));
  if (heads_.reward) reward_head_ = register_module("reward_head", Linear(config_.n_embd, 1, true));
  // Capped: a 131072-position Llama 3 context would need 16 GiB; attention::plan builds the mask of longer passes.
  const int64_t mask = std::min<int64_t>(config_.block_size, kMaxCausalMask);
  causal_ = register_buffer("causal_mask", torch::ones({mask, mask}, torch::kBool).tril());
  reset_parameters();
}

void GptImpl::reset_parameters() {
  torch::NoGradGuard no_grad;
  auto reset_linear = [](Linear& l, double std) {
    l->weight.normal_(0.0, std);
    if (l->bias.defined()) l->bias.zero_();
  };
  const double head_std = 1.0 / std::sqrt(static_cast<double>(config_.n_embd) + 1.0);
  if (value_head_) reset_linear(value_head_, head_std);
  if (reward_head_) reset_linear(reward_head_, head_std);
  if (config_.llama()) {
    reset_llama();
    if (lm_head_) reset_linear(lm_head_, 0.02);
    return;
  }
  const double residual_std = 0.02 / std::sqrt(2.0 * static_cast<double>(config_.n_layer));
  trunk_->wte->weight.normal_(0.0, 0.02);
  trunk_->wpe->weight.normal_(0.0, 0.02);
  auto reset_ln = [](LayerNorm& ln) {
    ln->weight.fill_(1.0);
    if (ln->bias.defined()) ln->bias.zero_();
  };
  for (Block& b : trunk_->blocks) {
    reset_ln(b->ln_1);
    reset_ln(b->ln_2);
    reset_linear(b->attn->c_attn, 0.02);
    reset_linear(b->attn->c_proj, residual_std);
    reset_linear(b->mlp->c_fc, 0.02);
    reset_linear(b->mlp->c_proj, residual_std);
  }
  reset_ln(trunk_->ln_f);
  if (lm_head_) reset_linear(lm_head_, 0.02);
}

torch::Device GptImpl::device() const { return wte_.device(); }

torch::Dtype GptImpl::dtype() const { return dtype_ref_.scalar_type(); }

torch::Tensor GptImpl::hidden(const GptInput& in) {
  // Inputs made on the CPU (data loaders, messages) go to the model's device here, once: a no-op on the CPU.
  const torch::Device dev = device();
  const torch::Tensor ids = in.ids.to(dev);
  if (ids.dim() != 2) throw ConfigError("GPT input ids must be [batch, time]");
  const int64_t B = ids.size(0), T = ids.size(1);
  const int64_t C = config_.n_embd, H = config_.n_head, hd = config_.head_dim();
  KvCache* cache = in.cache;
  const int64_t past = cache != nullptr ? cache->length : 0;
  const int64_t S = past + T;
  if (cache != nullptr && (S > cache->capacity || cache->k.empty() || cache->k[0].size(0) != B)) {
    throw ConfigError("KV cache: needs room for " + std::to_string(S) + " positions and batch " + std::to_string(B) +
                      ", has " + std::to_string(cache->capacity));
  }
  torch::Tensor positions = in.positions.defined() ? in.positions.to(dev) : torch::Tensor();
  if (!positions.defined()) {
    if (S > config_.block_size) {
      throw ConfigError("sequence of " + std::to_string(S) + " positions exceeds block_size " +
                        std::to_string(config_.block_size));
    }
    positions = torch::arange(past, S, torch::TensorOptions(torch::kLong).device(ids.device())).unsqueeze(0);
  }
  torch::Tensor x = wte_q_.defined() ? wte_q_.dequantize_rows(ids) : torch::embedding(wte_, ids);
  attention::Plan plan = attention::plan(in, causal_, B, T, past, config_.llama() ? config_.sliding_window : 0,
                                         attention::use_sdpa(attention_, ids.device()), config_.dropout, dev);
  if (config_.llama()) {
    if (config_.dropout > 0) x = torch::dropout(x, config_.dropout, is_training());
    x = llama_hidden(x, positions, &plan, cache, past);
    if (cache != nullptr) cache->length = S;
    return x;
  }
  x = x + torch::embedding(trunk_->wpe->weight, positions);
  if (config_.dropout > 0) x = torch::dropout(x, config_.dropout, is_training());

  const double scale = 1.0 / std::sqrt(static_cast<double>(hd));
  const bool bf16_norm_out = autocast_bf16();
  for (size_t l = 0; l < trunk_->blocks.size(); ++l) {
    Block& b = trunk_->blocks[l];
    const torch::Tensor h1 = norm(x, b->ln_1->weight, b->ln_1->bias, config_.layer_norm_eps, bf16_norm_out);
    const auto qkv = b->attn->c_attn(h1).split(C, 2);
    const torch::Tensor q = (qkv[0] * scale).view({B, T, H, hd}).transpose(1, 2);
    torch::Tensor k = qkv[1].view({B, T, H, hd}).transpose(1, 2);
    torch::Tensor v = qkv[2].view({B, T, H, hd}).transpose(1, 2);
    if (cache != nullptr) {
      cache->k[l].narrow(2, past, T).copy_(k);
      cache->v[l].narrow(2, past, T).copy_(v);
      k = cache->k[l].narrow(2, 0, S);
      v = cache->v[l].narrow(2, 0, S);
    }
    torch::Tensor y = attention::attend(plan, q, k, v, is_training());  // [B, H, T, hd]
    y = y.transpose(1, 2).reshape({B, T, C});
    y = b->attn->c_proj(y);
    if (config_.dropout > 0) y = torch::dropout(y, config_.dropout, is_training());
    x = x + y;
    const torch::Tensor h2 = norm(x, b->ln_2->weight, b->ln_2->bias, config_.layer_norm_eps, bf16_norm_out);
    torch::Tensor m = b->mlp->c_proj(gelu_tanh(b->mlp->c_fc(h2)));
    if (config_.dropout > 0) m = torch::dropout(m, config_.dropout, is_training());
    x = x + m;
  }
  if (cache != nullptr) cache->length = S;
  // fp32 out (as autocast's layer_norm gives): the heads and the LM head take what they always took.
  return norm(x, trunk_->ln_f->weight, trunk_->ln_f->bias, config_.layer_norm_eps, false);
}

torch::Tensor GptImpl::logits(const torch::Tensor& hidden) {
  if (lm_head_) return lm_head_(hidden);
  if (wte_q_.defined()) return quantized_linear(hidden, wte_q_, torch::Tensor());
  return linear_rows(hidden, wte_, torch::Tensor());
}

torch::Tensor GptImpl::lm_loss_sum(const torch::Tensor& hidden, const torch::Tensor& targets, int64_t ignore_index) {
  const torch::Tensor h = hidden.reshape({-1, hidden.size(-1)});
  const torch::Tensor y = targets.reshape({-1}).to(h.device());
  const Linear& head = lm_head_;
  const bool plain_head = !head || (!head->bias.defined() && !head->lora_A.defined());
  if (fused_dtype(h) && plain_head && !(head && head->fake_quant() != QuantScheme::kNone)) {
    // a quantized head (frozen) enters the fused kernel dequantized
    const torch::Tensor w = head ? (head->quantized() ? head->quantized_weight().dequantize() : head->weight)
                                 : (wte_q_.defined() ? wte_q_.dequantize() : wte_);
    return kernels::linear_cross_entropy_sum(h, w, y, ignore_index, autocast_bf16());
  }
  const torch::Tensor logits = this->logits(h).to(torch::kFloat32);
  return torch::nn::functional::cross_entropy(
      logits, y, torch::nn::functional::CrossEntropyFuncOptions().ignore_index(ignore_index).reduction(torch::kSum));
}

torch::Tensor GptImpl::values(const torch::Tensor& hidden) {
  if (!value_head_) throw ConfigError("this GPT has no value head");
  return value_head_(hidden).squeeze(-1);
}

torch::Tensor GptImpl::reward(const torch::Tensor& hidden, const torch::Tensor& attention_mask) {
  if (!reward_head_) throw ConfigError("this GPT has no reward head");
  const int64_t B = hidden.size(0), T = hidden.size(1);
  torch::Tensor last;
  if (attention_mask.defined()) {
    const torch::Tensor mask =
        attention_mask.narrow(1, attention_mask.size(1) - T, T).to(hidden.device(), torch::kLong);
    last = (mask * torch::arange(T, mask.options()).unsqueeze(0)).argmax(1);
  } else {
    last = torch::full({B}, T - 1, torch::TensorOptions(torch::kLong).device(hidden.device()));
  }
  const torch::Tensor h = hidden.index({torch::arange(B, last.options()), last});
  return reward_head_(h).squeeze(-1);
}

std::vector<std::pair<std::string, Linear>> GptImpl::linear_layers() {
  std::vector<std::pair<std::string, Linear>> out;
  for (const auto& item : named_modules("", /*include_self=*/false)) {
    if (auto lin = std::dynamic_pointer_cast<LinearImpl>(item.value())) out.emplace_back(item.key(), Linear(lin));
  }
  return out;
}

namespace {
bool glob_match(const std::string& pattern, const std::string& name) {
  return ::fnmatch(pattern.c_str(), name.c_str(), 0) == 0;
}
}  // namespace

void GptImpl::quantize_embedding(const QuantOptions& options) {
  if (!config_.tie_embeddings) throw ConfigError("quantize: the embedding is quantized only when tied to the LM head");
  if (wte_q_.defined()) throw Error("quantize: the embedding is already quantized");
  wte_q_ = quantize_matrix(wte_, options);
  torch::Tensor qweight, qscale, qmin, qabsmax, qabsmax_scale;
  register_quant_buffers(*wte_module_, wte_q_, qweight, qscale, qmin, qabsmax, qabsmax_scale, wte_qabsmax_offset_);
  release_weight(wte_);
}

void GptImpl::refresh_quantized_embedding() {
  if (wte_q_.defined()) refresh_derived(wte_q_, wte_qabsmax_offset_);
}

std::string GptQuantConfig::to_json() const {
  const nlohmann::ordered_json j{{"scheme", quant_scheme_name(options.scheme)},
                                 {"group", options.group},
                                 {"double_quant", options.double_quant},
                                 {"targets", targets},
                                 {"embedding", embedding},
                                 {"fake", fake}};
  return j.dump();
}

GptQuantConfig GptQuantConfig::from_json(const std::string& text) {
  try {
    const auto j = nlohmann::json::parse(text);
    GptQuantConfig c;
    c.options.scheme = parse_quant_scheme(j.at("scheme").get<std::string>());
    c.options.group = j.at("group").get<int64_t>();
    c.options.double_quant = j.at("double_quant").get<bool>();
    c.targets = j.at("targets").get<std::vector<std::string>>();
    c.embedding = j.at("embedding").get<bool>();
    c.fake = j.value("fake", false);
    return c;
  } catch (const nlohmann::json::exception& e) {
    throw DataError(std::string("quantization record: ") + e.what());
  } catch (const ConfigError& e) {
    throw DataError(std::string("quantization record: ") + e.what());
  }
}

std::vector<std::string> quantize_gpt(Gpt& model, const GptQuantConfig& config) {
  std::vector<std::string> done;
  if (!config.enabled()) return done;
  if (config.fake) {
    enable_fake_quant(model, config.options.scheme, config.options.group, config.targets);
    return done;
  }
  if (model->quant_config().enabled() && !model->quant_config().fake)
    throw Error("quantize: the model is already quantized");
  torch::NoGradGuard no_grad;
  for (auto& [name, layer] : model->linear_layers()) layer->set_fake_quant(QuantScheme::kNone);  // QAT -> real
  for (auto& [name, layer] : model->linear_layers()) {
    if (name == "value_head" || name == "reward_head") continue;
    const bool match = std::any_of(config.targets.begin(), config.targets.end(),
                                   [&](const std::string& p) { return glob_match(p, name); });
    if (!match) continue;
    layer->quantize(config.options);
    done.push_back(name);
  }
  const bool embedding = config.embedding && model->config().tie_embeddings;
  if (embedding) {
    model->quantize_embedding(config.options);
    done.emplace_back(model->embedding_name());
  }
  if (done.empty())
    throw ConfigError(
        "quantize: the targets match no linear layer (names look like transformer.h.0.attn.c_attn or "
        "model.layers.0.self_attn.q_proj)");
  GptQuantConfig applied = config;
  applied.embedding = embedding;
  model->set_quant_config(applied);
  return done;
}

std::vector<std::string> enable_fake_quant(Gpt& model, QuantScheme scheme, int64_t group,
                                           const std::vector<std::string>& targets) {
  std::vector<std::string> done;
  for (auto& [name, layer] : model->linear_layers()) {
    if (name == "value_head" || name == "reward_head") continue;
    if (!std::any_of(targets.begin(), targets.end(), [&](const std::string& p) { return glob_match(p, name); }))
      continue;
    layer->set_fake_quant(scheme, group);
    done.push_back(name);
  }
  if (done.empty()) throw ConfigError("quantization.targets match no linear layer");
  GptQuantConfig record;
  record.options = QuantOptions{scheme, group, false};
  record.targets = targets;
  record.embedding = false;
  record.fake = true;
  model->set_quant_config(record);
  return done;
}

void refresh_quantized(Gpt& model) {
  for (auto& [name, layer] : model->linear_layers()) layer->refresh_quantized();
  model->refresh_quantized_embedding();
}

int64_t gpt_weight_bytes(Gpt& model) {
  int64_t total = 0;
  for (const auto& p : model->named_parameters()) total += p.value().numel() * p.value().element_size();
  for (const auto& b : model->named_buffers()) {
    if (b.key() == "causal_mask" || !b.value().defined()) continue;
    total += b.value().numel() * b.value().element_size();
  }
  return total;
}

// ---- freezing and LoRA -----------------------------------------------------------------------------------------

std::vector<std::string> freeze_parameters(torch::nn::Module& module, const std::vector<std::string>& patterns) {
  std::vector<std::string> frozen;
  std::vector<bool> used(patterns.size(), false);
  for (auto& item : module.named_parameters(true)) {
    for (size_t i = 0; i < patterns.size(); ++i) {
      if (glob_match(patterns[i], item.key())) {
        item.value().set_requires_grad(false);
        frozen.push_back(item.key());
        used[i] = true;
        break;
      }
    }
  }
  for (size_t i = 0; i < patterns.size(); ++i) {
    if (!used[i]) throw ConfigError("freeze pattern '" + patterns[i] + "' matches no parameter");
  }
  return frozen;
}

std::vector<std::string> apply_lora(Gpt& model, const LoraConfig& config, bool train_heads) {
  if (config.alpha <= 0) throw ConfigError("lora.alpha must be positive");
  if (config.dropout < 0 || config.dropout >= 1) throw ConfigError("lora.dropout must be in [0, 1)");
  std::vector<std::string> adapted;
  for (auto& [name, layer] : model->linear_layers()) {
    if (name.rfind("value_head", 0) == 0 || name.rfind("reward_head", 0) == 0) continue;
    for (const auto& pattern : config.targets) {
      if (glob_match(pattern, name)) {
        layer->enable_lora(config.rank, config.alpha, config.dropout);
        adapted.push_back(name);
        break;
      }
    }
  }
  if (adapted.empty())
    throw ConfigError(
        "lora.targets match no linear layer (names look like transformer.h.0.attn.c_attn or "
        "model.layers.0.self_attn.q_proj)");
  for (auto& item : model->named_parameters(true)) {
    const std::string& name = item.key();
    const bool adapter = name.find(".lora_") != std::string::npos;
    const bool head = name.rfind("value_head", 0) == 0 || name.rfind("reward_head", 0) == 0;
    item.value().set_requires_grad(adapter || (train_heads && head));
  }
  return adapted;
}

void merge_lora(Gpt& model) {
  for (auto& [name, layer] : model->linear_layers()) layer->merge_lora();
}

void unmerge_lora(Gpt& model) {
  for (auto& [name, layer] : model->linear_layers()) layer->unmerge_lora();
}

int64_t trainable_parameter_count(torch::nn::Module& module) {
  int64_t n = 0;
  for (const auto& p : module.parameters(true)) {
    if (p.requires_grad()) n += p.numel();
  }
  return n;
}

}  // namespace troupe::models
