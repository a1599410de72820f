// The Llama-family trunk of models/gpt.h (arch: llama): token embedding, pre-RMSNorm blocks of rotary grouped-query
// attention and a SwiGLU MLP, final RMSNorm, named and computed as transformers' LlamaForCausalLM (Qwen2's q/k/v
// biases and Mistral's sliding window are config options). Not the paged rollout engine (models/engine.h).
#include <torch/torch.h>

#include <cmath>

#include "models/attention.h"
#include "models/gpt.h"

namespace troupe::models {

namespace llama_modules {

struct WeightImpl : torch::nn::Module {  // an embedding or a norm: one "weight" parameter
  explicit WeightImpl(std::vector<int64_t> shape) { weight = register_parameter("weight", torch::ones(shape)); }
  torch::Tensor weight;
};
TORCH_MODULE(Weight);

struct AttentionImpl : torch::nn::Module {
  explicit AttentionImpl(const GptConfig& c)
      : q_proj(register_module("q_proj", Linear(c.n_embd, c.n_head * c.head_dim(), c.qkv_bias))),
        k_proj(register_module("k_proj", Linear(c.n_embd, c.kv_heads() * c.head_dim(), c.qkv_bias))),
        v_proj(register_module("v_proj", Linear(c.n_embd, c.kv_heads() * c.head_dim(), c.qkv_bias))),
        o_proj(register_module("o_proj", Linear(c.n_head * c.head_dim(), c.n_embd, c.o_bias))) {}
  Linear q_proj, k_proj, v_proj, o_proj;
};
TORCH_MODULE(Attention);

struct MlpImpl : torch::nn::Module {
  explicit MlpImpl(const GptConfig& c)
      : gate_proj(register_module("gate_proj", Linear(c.n_embd, c.mlp_width(), c.mlp_bias))),
        up_proj(register_module("up_proj", Linear(c.n_embd, c.mlp_width(), c.mlp_bias))),
        down_proj(register_module("down_proj", Linear(c.mlp_width(), c.n_embd, c.mlp_bias))) {}
  Linear gate_proj, up_proj, down_proj;
};
TORCH_MODULE(Mlp);

struct LayerImpl : torch::nn::Module {
  explicit LayerImpl(const GptConfig& c)
      : self_attn(register_module("self_attn", Attention(c))),
        mlp(register_module("mlp", Mlp(c))),
        input_layernorm(register_module("input_layernorm", Weight(std::vector<int64_t>{c.n_embd}))),
        post_attention_layernorm(register_module("post_attention_layernorm", Weight(std::vector<int64_t>{c.n_embd}))) {}
  Attention self_attn;
  Mlp mlp;
  Weight input_layernorm, post_attention_layernorm;
};
TORCH_MODULE(Layer);

}  // namespace llama_modules

struct GptImpl::LlamaTrunk : torch::nn::Module {
  explicit LlamaTrunk(const GptConfig& c)
      : embed_tokens(
            register_module("embed_tokens", llama_modules::Weight(std::vector<int64_t>{c.vocab_size, c.n_embd}))),
        layers(register_module("layers", torch::nn::ModuleList())),
        norm(register_module("norm", llama_modules::Weight(std::vector<int64_t>{c.n_embd}))) {
    for (int64_t i = 0; i < c.n_layer; ++i) {
      blocks.push_back(llama_modules::Layer(c));
      layers->push_back(blocks.back());
    }
  }
  llama_modules::Weight embed_tokens;
  torch::nn::ModuleList layers;
  llama_modules::Weight norm;
  std::vector<llama_modules::Layer> blocks;
};

namespace {

// transformers' LlamaRMSNorm: normalise in fp32, cast back to the input dtype, then scale.
torch::Tensor rms_norm(const torch::Tensor& x, const torch::Tensor& weight, double eps) {
  const torch::Tensor h = x.to(torch::kFloat32);
  const torch::Tensor normed = h * torch::rsqrt(h.pow(2).mean(-1, /*keepdim=*/true) + eps);
  return weight * normed.to(x.scalar_type());
}

// cos and sin [B or 1, 1, T, head_dim] for positions [B or 1, T]: angles position * inverse frequency in fp32,
// the half-width table repeated twice (transformers' rotate_half layout).
std::pair<torch::Tensor, torch::Tensor> rope_tables(const GptConfig& c, const torch::Tensor& positions) {
  const int64_t max_position = c.rope_scaling == RopeScaling::kDynamic ? positions.max().item<int64_t>() : 0;
  const std::vector<double> inv = rope_inverse_frequencies(c, max_position);
  std::vector<float> inv_f(inv.begin(), inv.end());
  const torch::Tensor freq =
      torch::from_blob(inv_f.data(), {static_cast<int64_t>(inv_f.size())}, torch::kFloat32).to(positions.device());
  const torch::Tensor angles = positions.to(torch::kFloat32).unsqueeze(-1) * freq;  // [B, T, hd/2]
  const torch::Tensor emb = torch::cat({angles, angles}, -1).unsqueeze(1);
  return {emb.cos(), emb.sin()};
}

torch::Tensor rotate(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin) {
  const int64_t half = x.size(-1) / 2;
  const torch::Tensor rotated = torch::cat({-x.narrow(-1, half, half), x.narrow(-1, 0, half)}, -1);
  return x * cos.to(x.scalar_type()) + rotated * sin.to(x.scalar_type());
}

}  // namespace

void GptImpl::build_llama() {
  llama_ = register_module("model", std::make_shared<LlamaTrunk>(config_));
  wte_ = llama_->embed_tokens->weight;
  wte_module_ = llama_->embed_tokens.ptr();
  dtype_ref_ = llama_->norm->weight;
}

void GptImpl::reset_llama() {
  // transformers' LlamaPreTrainedModel: N(0, initializer_range = 0.02) for every matrix, zero biases, unit norms.
  wte_.normal_(0.0, 0.02);
  for (auto& [name, layer] : linear_layers()) {
    if (name.rfind("model.", 0) != 0) continue;
    layer->weight.normal_(0.0, 0.02);
    if (layer->bias.defined()) layer->bias.zero_();
  }
  for (auto& b : llama_->blocks) {
    b->input_layernorm->weight.fill_(1.0);
    b->post_attention_layernorm->weight.fill_(1.0);
  }
  llama_->norm->weight.fill_(1.0);
}

torch::Tensor GptImpl::llama_hidden(torch::Tensor x, const torch::Tensor& positions, void* attention_plan,
                                    KvCache* cache, int64_t past) {
  auto& plan = *static_cast<attention::Plan*>(attention_plan);
  const int64_t B = x.size(0), T = x.size(1), S = past + T;
  const int64_t H = config_.n_head, Hkv = config_.kv_heads(), hd = config_.head_dim();
  const double eps = config_.layer_norm_eps, scale = 1.0 / std::sqrt(static_cast<double>(hd));
  const auto [cos, sin] = rope_tables(config_, positions);
  for (size_t l = 0; l < llama_->blocks.size(); ++l) {
    auto& b = llama_->blocks[l];
    const torch::Tensor h = rms_norm(x, b->input_layernorm->weight, eps);
    torch::Tensor q = b->self_attn->q_proj(h).view({B, T, H, hd}).transpose(1, 2);
    torch::Tensor k = b->self_attn->k_proj(h).view({B, T, Hkv, hd}).transpose(1, 2);
    torch::Tensor v = b->self_attn->v_proj(h).view({B, T, Hkv, hd}).transpose(1, 2);
    q = rotate(q, cos, sin) * scale;
    k = rotate(k, cos, sin);
    if (cache != nullptr) {
      cache->k[l].narrow(2, past, T).copy_(k);
      cache->v[l].narrow(2, past, T).copy_(v);
      k = cache->k[l].narrow(2, 0, S);
      v = cache->v[l].narrow(2, 0, S);
    }
    torch::Tensor y = attention::attend(plan, q, k, v, is_training());
    y = b->self_attn->o_proj(y.transpose(1, 2).reshape({B, T, H * hd}));
    if (config_.dropout > 0) y = torch::dropout(y, config_.dropout, is_training());
    x = x + y;
    const torch::Tensor h2 = rms_norm(x, b->post_attention_layernorm->weight, eps);
    torch::Tensor m = b->mlp->down_proj(torch::silu(b->mlp->gate_proj(h2)) * b->mlp->up_proj(h2));
    if (config_.dropout > 0) m = torch::dropout(m, config_.dropout, is_training());
    x = x + m;
  }
  // fp32 out, as the GPT-2 trunk gives: the heads and the LM head take what they always took.
  return rms_norm(x, llama_->norm->weight, eps).to(torch::kFloat32);
}

}  // namespace troupe::models
