// EngineModel (models/engine_impl.h): the rollout engine's weights and its batched forward step over a flat list of
// tokens from many sequences — fused projections through the batch-invariant linear kernel, rotary or learned
// positions, keys and values written into paged pools, and attention of each token over its own sequence's blocks.
// Not the training forward (models/gpt.cpp, llama.cpp), which it matches within float rounding.
#include <ATen/Parallel.h>
#include <torch/torch.h>

#include <cmath>
#include <limits>
#include <map>

#include "core/errors.h"
#include "models/engine_impl.h"
#include "models/engine_kernels.h"
#include "models/gpt_checkpoint.h"
#include "models/gpt_io.h"

namespace troupe::models {

namespace ek = engine_kernels;

// ---- blocks ------------------------------------------------------------------------------------------------------

int64_t BlockAllocator::allocate() {
  int64_t b;
  if (!free_.empty()) {
    b = free_.back();
    free_.pop_back();
  } else {
    b = static_cast<int64_t>(refs_.size());
    refs_.push_back(0);
  }
  refs_[static_cast<size_t>(b)] = 1;
  peak_ = std::max(peak_, ++used_);
  return b;
}

void BlockAllocator::release(int64_t block) {
  if (--refs_[static_cast<size_t>(block)] == 0) {
    free_.push_back(block);
    --used_;
  }
}

// ---- weights -----------------------------------------------------------------------------------------------------

namespace {

// t as a contiguous fp32 CPU tensor: a copy, or (share) the same storage when it already is one.
torch::Tensor f32(const torch::Tensor& t, bool share) {
  if (!t.defined()) return t;
  const torch::Tensor c = t.detach().to(torch::kCPU, torch::kFloat32).contiguous();
  return share ? c : c.clone();
}

// A weight matrix as fp32 without a copy of its own: EngineModel::load packs (or converts) every matrix into new
// storage, so a clone here would be copied again and dropped.
torch::Tensor f32_matrix(const torch::Tensor& t) { return f32(t, true); }

const float* ptr(const torch::Tensor& t) { return t.defined() ? t.data_ptr<float>() : nullptr; }

// y [M, N] = x w^T + b through the batch-invariant kernel of w's form: fp32, bf16 pairs or int8 codes (with
// per-row scales s), packed in panels by pack_matrix below.
void matmul(const float* x, int64_t M, int64_t K, const torch::Tensor& w, const torch::Tensor& s,
            const torch::Tensor& b, int64_t N, float* y) {
  if (w.scalar_type() == torch::kChar) {
    engine_kernels::linear_int8(x, M, K, w.data_ptr<int8_t>(), ptr(s), N, ptr(b), y);
  } else if (w.scalar_type() == torch::kInt32) {  // bf16 pairs in panels
    engine_kernels::linear_bf16(x, M, K, reinterpret_cast<const uint32_t*>(w.data_ptr<int32_t>()), N, ptr(b), y);
  } else {
    engine_kernels::linear(x, M, K, w.data_ptr<float>(), N, ptr(b), y);
  }
}

// A matrix [N, K] in its kernel's 16-column panels: fp32 as [ceil(N / 16), K, 16] floats, int8 codes as
// [ceil(N / 16), K, 16] codes, bf16 as [ceil(N / 16), ceil(K / 2), 16] 32-bit pairs (int32).
void pack_matrix(torch::Tensor& w) {
  if (w.dim() != 2) return;
  const int64_t N = w.size(0), K = w.size(1);
  if (w.scalar_type() == torch::kFloat32) {
    torch::Tensor panels = torch::empty({(N + 15) / 16, K, 16}, torch::kFloat32);
    engine_kernels::pack_panels(w.data_ptr<float>(), N, K, panels.data_ptr<float>());
    w = panels;
  } else if (w.scalar_type() == torch::kChar) {
    torch::Tensor panels = torch::empty({(N + 15) / 16, K, 16}, torch::kChar);
    engine_kernels::pack_panels_int8(w.data_ptr<int8_t>(), N, K, panels.data_ptr<int8_t>());
    w = panels;
  } else if (w.scalar_type() == torch::kBFloat16) {
    torch::Tensor panels = torch::empty({(N + 15) / 16, (K + 1) / 2, 16}, torch::kInt32);
    engine_kernels::pack_panels_bf16(reinterpret_cast<const uint16_t*>(w.data_ptr<at::BFloat16>()), N, K,
                                     reinterpret_cast<uint32_t*>(panels.data_ptr<int32_t>()));
    w = panels;
  }
}

class WeightMap {
 public:
  explicit WeightMap(const NamedTensors& params) {
    for (const auto& [name, t] : params) map_[name] = t;
  }
  torch::Tensor get(const std::string& name) const {
    const auto it = map_.find(name);
    if (it == map_.end()) throw Error("rollout engine: the model has no tensor '" + name + "'");
    return it->second;
  }
  torch::Tensor maybe(const std::string& name) const {
    const auto it = map_.find(name);
    return it == map_.end() ? torch::Tensor() : it->second;
  }

 private:
  std::map<std::string, torch::Tensor> map_;
};

torch::Tensor cat_defined(const std::vector<torch::Tensor>& parts) {
  for (const auto& p : parts)
    if (!p.defined()) return torch::Tensor();
  return torch::cat(parts, 0);
}

EngineLayer llama_layer(const WeightMap& w, const std::string& p, bool share) {
  EngineLayer l;
  const auto f32 = [share](const torch::Tensor& t) { return troupe::models::f32(t, share); };
  const std::string a = p + "self_attn.", m = p + "mlp.";
  l.norm1_w = f32(w.get(p + "input_layernorm.weight"));
  l.norm2_w = f32(w.get(p + "post_attention_layernorm.weight"));
  l.qkv_w =
      f32_matrix(torch::cat({w.get(a + "q_proj.weight"), w.get(a + "k_proj.weight"), w.get(a + "v_proj.weight")}, 0));
  l.qkv_b = f32(cat_defined({w.maybe(a + "q_proj.bias"), w.maybe(a + "k_proj.bias"), w.maybe(a + "v_proj.bias")}));
  l.o_w = f32_matrix(w.get(a + "o_proj.weight"));
  l.o_b = f32(w.maybe(a + "o_proj.bias"));
  l.up_w = f32_matrix(torch::cat({w.get(m + "gate_proj.weight"), w.get(m + "up_proj.weight")}, 0));
  l.up_b = f32(cat_defined({w.maybe(m + "gate_proj.bias"), w.maybe(m + "up_proj.bias")}));
  l.down_w = f32_matrix(w.get(m + "down_proj.weight"));
  l.down_b = f32(w.maybe(m + "down_proj.bias"));
  return l;
}

EngineLayer gpt2_layer(const WeightMap& w, const std::string& p, bool share) {
  EngineLayer l;
  const auto f32 = [share](const torch::Tensor& t) { return troupe::models::f32(t, share); };
  l.norm1_w = f32(w.get(p + "ln_1.weight"));
  l.norm1_b = f32(w.maybe(p + "ln_1.bias"));
  l.norm2_w = f32(w.get(p + "ln_2.weight"));
  l.norm2_b = f32(w.maybe(p + "ln_2.bias"));
  l.qkv_w = f32_matrix(w.get(p + "attn.c_attn.weight"));
  l.qkv_b = f32(w.maybe(p + "attn.c_attn.bias"));
  l.o_w = f32_matrix(w.get(p + "attn.c_proj.weight"));
  l.o_b = f32(w.maybe(p + "attn.c_proj.bias"));
  l.up_w = f32_matrix(w.get(p + "mlp.c_fc.weight"));
  l.up_b = f32(w.maybe(p + "mlp.c_fc.bias"));
  l.down_w = f32_matrix(w.get(p + "mlp.c_proj.weight"));
  l.down_b = f32(w.maybe(p + "mlp.c_proj.bias"));
  return l;
}

}  // namespace

EngineModel::EngineModel(Gpt& model, int64_t block_size, bool bf16_weights, bool share_weights)
    : config_(model->config()),
      block_size_(block_size),
      bf16_(bf16_weights || model->dtype() == torch::kBFloat16),
      share_(share_weights) {
  if (config_.llama() && config_.rope_scaling == RopeScaling::kDynamic)
    throw ConfigError("rollout engine: dynamic NTK RoPE scaling is not batch-invariant; use models::generate");
  if (block_size < 1) throw ConfigError("rollout engine: block_size must be >= 1");
  if (config_.llama()) {
    const std::vector<double> inv = rope_inverse_frequencies(config_, 0);
    const int64_t half = static_cast<int64_t>(inv.size());
    std::vector<float> inv_f(inv.begin(), inv.end());
    // as models/llama.cpp: angle = float(position) * float(inverse frequency), cos and sin in fp32
    const torch::Tensor angles = torch::arange(config_.block_size, torch::kFloat32).unsqueeze(1) *
                                 torch::from_blob(inv_f.data(), {half}, torch::kFloat32).unsqueeze(0);
    rope_cos_ = angles.cos().contiguous();
    rope_sin_ = angles.sin().contiguous();
  }
  k_pool_.resize(static_cast<size_t>(config_.n_layer));
  v_pool_.resize(static_cast<size_t>(config_.n_layer));
  load(model);
}

void EngineModel::load(Gpt& model) {
  torch::NoGradGuard no_grad;
  const GptConfig& c = model->config();
  if (gpt_config_json(c) != gpt_config_json(config_))
    throw ConfigError("rollout engine: load_weights needs a model of the same architecture");
  const WeightMap w(gpt_trunk_parameters(model));
  layers_.clear();
  for (int64_t i = 0; i < c.n_layer; ++i) {
    const std::string n = std::to_string(i);
    layers_.push_back(c.llama() ? llama_layer(w, "model.layers." + n + ".", share_)
                                : gpt2_layer(w, "transformer.h." + n + ".", share_));
  }
  const auto f32 = [this](const torch::Tensor& t) { return troupe::models::f32(t, share_); };
  embed_ = f32(w.get(c.llama() ? "model.embed_tokens.weight" : "transformer.wte.weight"));
  positions_ = c.llama() ? torch::Tensor() : f32(w.get("transformer.wpe.weight"));
  final_w_ = f32(w.get(c.llama() ? "model.norm.weight" : "transformer.ln_f.weight"));
  final_b_ = c.llama() ? torch::Tensor() : f32(w.maybe("transformer.ln_f.bias"));
  head_ = c.tie_embeddings ? embed_ : f32_matrix(w.get("lm_head.weight"));
  head_s_ = torch::Tensor();
  if (!use_int8_codes(model) && bf16_) {
    auto to_bf16 = [](torch::Tensor& t) { t = t.to(torch::kBFloat16).contiguous(); };
    for (EngineLayer& l : layers_) {
      to_bf16(l.qkv_w);
      to_bf16(l.o_w);
      to_bf16(l.up_w);
      to_bf16(l.down_w);
    }
    to_bf16(head_);
  }
  for (EngineLayer& l : layers_) {  // fp32 and bf16 matrices into panels (a copy, shared or not)
    pack_matrix(l.qkv_w);
    pack_matrix(l.o_w);
    pack_matrix(l.up_w);
    pack_matrix(l.down_w);
  }
  pack_matrix(head_);
}

// Int8-quantized layers (Troupe's per-row int8) run on their codes: each fused matrix whose parts are all int8
// takes their codes and scales instead of the dequantized fp32 weights. True when any matrix did.
bool EngineModel::use_int8_codes(Gpt& model) {
  std::map<std::string, Linear> linear;
  for (auto& [name, layer] : model->linear_layers()) linear.emplace(name, layer);
  bool any = false;
  auto codes = [&](const std::vector<std::string>& names, torch::Tensor& w, torch::Tensor& s) {
    std::vector<torch::Tensor> q, scales;
    for (const std::string& n : names) {
      const auto it = linear.find(n);
      if (it == linear.end() || !it->second->quantized() ||
          it->second->quantized_weight().scheme != QuantScheme::kInt8 || it->second->has_lora())
        return;
      q.push_back(it->second->quantized_weight().data);
      scales.push_back(it->second->quantized_weight().scale.to(torch::kFloat32));
    }
    w = torch::cat(q, 0).cpu().contiguous();
    s = torch::cat(scales, 0).cpu().contiguous();
    any = true;
  };
  const bool llama = config_.llama();
  for (size_t i = 0; i < layers_.size(); ++i) {
    EngineLayer& l = layers_[i];
    const std::string p = (llama ? "model.layers." : "transformer.h.") + std::to_string(i) + ".";
    if (llama) {
      codes({p + "self_attn.q_proj", p + "self_attn.k_proj", p + "self_attn.v_proj"}, l.qkv_w, l.qkv_s);
      codes({p + "self_attn.o_proj"}, l.o_w, l.o_s);
      codes({p + "mlp.gate_proj", p + "mlp.up_proj"}, l.up_w, l.up_s);
      codes({p + "mlp.down_proj"}, l.down_w, l.down_s);
    } else {
      codes({p + "attn.c_attn"}, l.qkv_w, l.qkv_s);
      codes({p + "attn.c_proj"}, l.o_w, l.o_s);
      codes({p + "mlp.c_fc"}, l.up_w, l.up_s);
      codes({p + "mlp.c_proj"}, l.down_w, l.down_s);
    }
  }
  if (!config_.tie_embeddings) codes({"lm_head"}, head_, head_s_);
  return any;
}

int64_t EngineModel::block_bytes() const {
  return 2 * config_.n_layer * block_size_ * config_.kv_heads() * config_.head_dim() *
         static_cast<int64_t>(sizeof(float));
}

void EngineModel::ensure_capacity(int64_t blocks) {
  if (blocks <= blocks_) return;
  const int64_t grown = std::max(blocks, blocks_ * 2);
  const auto floats = static_cast<size_t>(grown * block_size_ * config_.kv_heads() * config_.head_dim());
  for (size_t l = 0; l < k_pool_.size(); ++l) {
    k_pool_[l].resize(floats);
    v_pool_[l].resize(floats);
  }
  blocks_ = grown;
}

void EngineModel::copy_block(int64_t from, int64_t to) {
  const int64_t n = block_size_ * config_.kv_heads() * config_.head_dim();
  for (size_t l = 0; l < k_pool_.size(); ++l) {
    std::copy_n(k_pool_[l].begin() + from * n, n, k_pool_[l].begin() + to * n);
    std::copy_n(v_pool_[l].begin() + from * n, n, v_pool_[l].begin() + to * n);
  }
}

// ---- the step ----------------------------------------------------------------------------------------------------

// Attention of each token over its own sequence's positions, one (token, key/value head) at a time with the query
// heads that share it (GQA): scores against the transposed key blocks 16 positions at a time, softmax, the weighted
// values. Every score and output element is a fixed chain of operations on that token's own data.
void EngineModel::attention(const std::vector<StepToken>& tokens, const float* qkv, int64_t layer, float* out) const {
  const int64_t H = config_.n_head, Hkv = config_.kv_heads(), hd = config_.head_dim(), group = H / Hkv;
  const int64_t D = (H + 2 * Hkv) * hd, N = static_cast<int64_t>(tokens.size()), bs = block_size_;
  const int64_t window = config_.llama() ? config_.sliding_window : 0;
  const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(hd)));
  const float* kp = k_pool_[static_cast<size_t>(layer)].data();
  const float* vp = v_pool_[static_cast<size_t>(layer)].data();
  at::parallel_for(0, N * Hkv, 4, [&](int64_t begin, int64_t end) {
    std::vector<float> scores, sums(static_cast<size_t>(group));
    std::vector<const float*> values;
    for (int64_t item = begin; item < end; ++item) {
      const int64_t t = item / Hkv, g = item % Hkv;
      const StepToken& tok = tokens[static_cast<size_t>(t)];
      const float* q = qkv + t * D + g * group * hd;  // the group's query heads, contiguous
      const int64_t first = window > 0 ? std::max<int64_t>(0, tok.position - window + 1) : 0;
      const int64_t count = tok.position - first + 1, ld = count + 16;
      scores.resize(static_cast<size_t>(group * ld));
      values.resize(static_cast<size_t>(count));
      for (int64_t j = 0; j < count;) {
        const int64_t pos = first + j, off = pos % bs;
        const int64_t block = (*tok.blocks)[static_cast<size_t>(pos / bs)];
        const int64_t lanes = std::min({int64_t{16}, bs - off, count - j});
        ek::key_scores(q, group, hd, kp + (block * Hkv + g) * hd * bs + off, bs, lanes, scores.data() + j, ld);
        for (int64_t l = 0; l < lanes; ++l)
          values[static_cast<size_t>(j + l)] = vp + ((block * bs + off + l) * Hkv + g) * hd;
        j += lanes;
      }
      float* s = scores.data();
      for (int64_t i = 0; i < group; ++i) {
        const float mx = ek::max_value(s + i * ld, count);
        sums[static_cast<size_t>(i)] = ek::exp_sum(s + i * ld, count, mx, scale, s + i * ld);
      }
      float* o = out + t * H * hd + g * group * hd;
      ek::weighted_values(s, group, ld, values.data(), count, hd, o);
      for (int64_t i = 0; i < group; ++i) {
        const float inv = 1.0f / sums[static_cast<size_t>(i)];
        for (int64_t d = 0; d < hd; ++d) o[i * hd + d] *= inv;
      }
    }
  });
}

namespace {

// f(row) for rows [0, n) on the intra-op threads: each row computed alone, so the split never changes a result.
template <class F>
void for_rows(int64_t n, const F& f) {
  at::parallel_for(0, n, 16, [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) f(r);
  });
}

}  // namespace

torch::Tensor EngineModel::step(const std::vector<StepToken>& tokens) {
  const GptConfig& c = config_;
  const bool llama = c.llama();
  const int64_t N = static_cast<int64_t>(tokens.size()), C = c.n_embd, H = c.n_head, Hkv = c.kv_heads();
  const int64_t hd = c.head_dim(), D = (H + 2 * Hkv) * hd, F = c.mlp_width(), up_rows = llama ? 2 * F : F;
  const double eps = c.layer_norm_eps;
  const auto opt = torch::TensorOptions(torch::kFloat32);
  torch::Tensor x = torch::empty({N, C}, opt), h = torch::empty({N, C}, opt), qkv = torch::empty({N, D}, opt);
  torch::Tensor att = torch::empty({N, H * hd}, opt), tmp = torch::empty({N, C}, opt);
  torch::Tensor up = torch::empty({N, up_rows}, opt), act = torch::empty({N, F}, opt);
  float *X = x.data_ptr<float>(), *Hn = h.data_ptr<float>(), *Q = qkv.data_ptr<float>();
  float *A = att.data_ptr<float>(), *T = tmp.data_ptr<float>(), *U = up.data_ptr<float>(), *Act = act.data_ptr<float>();
  for_rows(N, [&](int64_t r) {
    const StepToken& t = tokens[static_cast<size_t>(r)];
    std::copy_n(embed_.data_ptr<float>() + t.id * C, C, X + r * C);
    if (!llama) {
      const float* p = positions_.data_ptr<float>() + t.position * C;
      for (int64_t i = 0; i < C; ++i) X[r * C + i] += p[i];
    }
  });
  const int64_t half = hd / 2;
  for (size_t l = 0; l < layers_.size(); ++l) {
    const EngineLayer& w = layers_[l];
    for_rows(N,
             [&](int64_t r) { ek::norm_row(X + r * C, C, ptr(w.norm1_w), ptr(w.norm1_b), eps, !llama, Hn + r * C); });
    matmul(Hn, N, C, w.qkv_w, w.qkv_s, w.qkv_b, D, Q);
    float* kp = k_pool_[l].data();
    float* vp = v_pool_[l].data();
    for_rows(N, [&](int64_t r) {
      const StepToken& t = tokens[static_cast<size_t>(r)];
      float* row = Q + r * D;
      if (llama) {  // rotate q and k heads (rotate-half layout)
        const float* cs = rope_cos_.data_ptr<float>() + t.position * half;
        const float* sn = rope_sin_.data_ptr<float>() + t.position * half;
        for (int64_t head = 0; head < H + Hkv; ++head) {
          float* v = row + head * hd;
          for (int64_t i = 0; i < half; ++i) {
            const float x1 = v[i], x2 = v[i + half];
            v[i] = x1 * cs[i] - x2 * sn[i];
            v[i + half] = x2 * cs[i] + x1 * sn[i];
          }
        }
      }
      const int64_t block = (*t.blocks)[static_cast<size_t>(t.position / block_size_)];
      const int64_t off = t.position % block_size_;
      for (int64_t g = 0; g < Hkv; ++g)  // keys transposed: [block][kv head][head_dim][block_size]
        for (int64_t d = 0; d < hd; ++d) kp[((block * Hkv + g) * hd + d) * block_size_ + off] = row[(H + g) * hd + d];
      std::copy_n(row + (H + Hkv) * hd, Hkv * hd, vp + (block * block_size_ + off) * Hkv * hd);
    });
    attention(tokens, Q, static_cast<int64_t>(l), A);
    matmul(A, N, H * hd, w.o_w, w.o_s, w.o_b, C, T);
    for_rows(N, [&](int64_t r) {
      for (int64_t i = 0; i < C; ++i) X[r * C + i] += T[r * C + i];
      ek::norm_row(X + r * C, C, ptr(w.norm2_w), ptr(w.norm2_b), eps, !llama, Hn + r * C);
    });
    matmul(Hn, N, C, w.up_w, w.up_s, w.up_b, up_rows, U);
    for_rows(N, [&](int64_t r) {
      const float* u = U + r * up_rows;
      ek::activation(u, llama ? u + F : nullptr, F, Act + r * F);
    });
    matmul(Act, N, F, w.down_w, w.down_s, w.down_b, C, T);
    for_rows(N, [&](int64_t r) {
      for (int64_t i = 0; i < C; ++i) X[r * C + i] += T[r * C + i];
    });
  }
  std::vector<int64_t> rows;
  for (int64_t r = 0; r < N; ++r)
    if (tokens[static_cast<size_t>(r)].wants_logits) rows.push_back(r);
  const int64_t n = static_cast<int64_t>(rows.size()), V = c.vocab_size;
  torch::Tensor last = torch::empty({n, C}, opt), logits = torch::empty({n, V}, opt);
  float* L = last.data_ptr<float>();
  for_rows(n, [&](int64_t i) {
    ek::norm_row(X + rows[static_cast<size_t>(i)] * C, C, ptr(final_w_), ptr(final_b_), eps, !llama, L + i * C);
  });
  matmul(L, n, C, head_, head_s_, torch::Tensor(), V, logits.data_ptr<float>());
  return logits;
}

}  // namespace troupe::models
