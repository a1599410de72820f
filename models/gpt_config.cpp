// Implementation of models/gpt_config.h: validation, parameter and FLOP counts, GPT-2 presets.
#include "models/gpt_config.h"

#include <cmath>

#include "core/errors.h"

namespace troupe::models {

void GptConfig::validate(core::ConfigValidator& v) const {
  v.require(n_layer >= 1, "n_layer", n_layer, "an integer >= 1");
  v.require(n_head >= 1, "n_head", n_head, "an integer >= 1");
  v.require(n_embd >= 1 && (n_embd % n_head == 0 || (llama() && head_size > 0)), "n_embd", n_embd,
            "a positive multiple of n_head (or set head_size)");
  v.require(block_size >= 1, "block_size", block_size, "an integer >= 1");
  v.require(vocab_size >= 1, "vocab_size", vocab_size, "an integer >= 1");
  v.require(dropout >= 0.0 && dropout < 1.0, "dropout", dropout, "a number in [0, 1)");
  v.require(layer_norm_eps > 0.0, "layer_norm_eps", layer_norm_eps, "a positive number");
  if (!llama()) return;
  v.require(n_kv_head >= 0 && (n_kv_head == 0 || n_head % n_kv_head == 0), "n_kv_head", n_kv_head,
            "0 (= n_head) or a divisor of n_head");
  v.require(head_size >= 0 && head_dim() % 2 == 0, "head_size", head_size,
            "0 (= n_embd / n_head) or a positive even number (RoPE rotates pairs)");
  v.require(intermediate_size >= 0, "intermediate_size", intermediate_size, "an integer >= 0 (0 = default)");
  v.require(rope_theta > 0, "rope_theta", rope_theta, "a positive number");
  v.require(rope_factor > 0 && (rope_scaling == RopeScaling::kNone || rope_factor >= 1.0), "rope_factor", rope_factor,
            "a number >= 1");
  v.require(rope_original_context >= 0, "rope_original_context", rope_original_context, "an integer >= 0");
  v.require(rope_low_freq_factor > 0, "rope_low_freq_factor", rope_low_freq_factor, "a positive number");
  v.require(rope_scaling != RopeScaling::kLlama3 || rope_high_freq_factor > rope_low_freq_factor,
            "rope_high_freq_factor", rope_high_freq_factor, "a number > rope_low_freq_factor");
  v.require(sliding_window >= 0, "sliding_window", sliding_window, "an integer >= 0 (0 = off)");
}

int64_t GptConfig::mlp_width() const {
  if (!llama()) return 4 * n_embd;
  if (intermediate_size > 0) return intermediate_size;
  return (8 * n_embd / 3 + 31) / 32 * 32;
}

std::vector<double> rope_inverse_frequencies(const GptConfig& c, int64_t max_position) {
  const int64_t dim = c.head_dim();
  const int64_t original = c.rope_original_context > 0 ? c.rope_original_context : c.block_size;
  double base = c.rope_theta;
  if (c.rope_scaling == RopeScaling::kDynamic) {
    const double seq_len = static_cast<double>(std::max(max_position + 1, original));
    const double f = c.rope_factor;
    base *= std::pow(f * seq_len / static_cast<double>(original) - (f - 1.0),
                     static_cast<double>(dim) / static_cast<double>(dim - 2));
  }
  std::vector<double> inv(static_cast<size_t>(dim / 2));
  for (int64_t i = 0; i < dim / 2; ++i) {
    // float32 as transformers computes it (base ** (arange(0, dim, 2).float() / dim) in fp32)
    const float exponent = static_cast<float>(2 * i) / static_cast<float>(dim);
    inv[static_cast<size_t>(i)] = 1.0 / static_cast<double>(std::pow(static_cast<float>(base), exponent));
  }
  if (c.rope_scaling == RopeScaling::kLinear) {
    for (double& f : inv) f /= c.rope_factor;
  } else if (c.rope_scaling == RopeScaling::kLlama3) {
    const double factor = c.rope_factor, lo = c.rope_low_freq_factor, hi = c.rope_high_freq_factor;
    const double old_context = static_cast<double>(original);
    const double low_freq_wavelen = old_context / lo, high_freq_wavelen = old_context / hi;
    for (double& f : inv) {
      const double wavelen = 2.0 * M_PI / f;
      const double scaled = wavelen > low_freq_wavelen ? f / factor : f;
      const double smooth = (old_context / wavelen - lo) / (hi - lo);
      const bool medium = !(wavelen < high_freq_wavelen) && !(wavelen > low_freq_wavelen);
      f = medium ? (1.0 - smooth) * scaled / factor + smooth * scaled : scaled;
    }
  }
  return inv;
}

void LoraSection::validate(core::ConfigValidator& v) const {
  v.require(rank >= 0, "rank", rank, "an integer >= 0 (0 = off)");
  v.require(alpha > 0, "alpha", alpha, "a number > 0");
  v.require(dropout >= 0 && dropout < 1, "dropout", dropout, "a number in [0, 1)");
  v.require(rank == 0 || !targets.empty(), "targets", targets, "at least one pattern when rank > 0");
}

void GptConfig::check() const {
  core::OriginMap origins;
  core::ConfigValidator validator(origins, "model");
  validate(validator);
}

int64_t GptConfig::parameter_count() const {
  if (llama()) {
    const int64_t d = n_embd, q = n_head * head_dim(), kv = kv_heads() * head_dim(), f = mlp_width();
    const int64_t attn = d * q + 2 * d * kv + q * d + (qkv_bias ? q + 2 * kv : 0) + (o_bias ? d : 0);
    const int64_t mlp = 3 * d * f + (mlp_bias ? 2 * f + d : 0);
    int64_t total = vocab_size * d + n_layer * (attn + mlp + 2 * d) + d;
    if (!tie_embeddings) total += vocab_size * d;
    return total;
  }
  const int64_t d = n_embd;
  const int64_t b = bias ? 1 : 0;
  const int64_t ln = bias ? 2 * d : d;
  const int64_t per_block =
      ln + (d * 3 * d + b * 3 * d) + (d * d + b * d) + ln + (d * 4 * d + b * 4 * d) + (4 * d * d + b * d);
  int64_t total = vocab_size * d + block_size * d + n_layer * per_block + ln;
  if (!tie_embeddings) total += vocab_size * d;
  return total;
}

double GptConfig::training_flops_per_token(int64_t context) const {
  if (llama()) {
    const double d = static_cast<double>(n_embd), q = static_cast<double>(n_head * head_dim());
    const double kv = static_cast<double>(kv_heads() * head_dim()), f = static_cast<double>(mlp_width());
    const double matmul =
        static_cast<double>(n_layer) * (2.0 * d * q + 2.0 * d * kv + 3.0 * d * f) + static_cast<double>(vocab_size) * d;
    // attention scores and weighted values: 2 matmuls of q-width per key, forward x3
    return 6.0 * matmul + 6.0 * static_cast<double>(n_layer) * 2.0 * q * static_cast<double>(context);
  }
  const double d = static_cast<double>(n_embd);
  const double matmul_params = static_cast<double>(n_layer) * 12.0 * d * d + static_cast<double>(vocab_size) * d;
  return 6.0 * matmul_params + 12.0 * static_cast<double>(n_layer) * d * static_cast<double>(context);
}

bool gpt2_preset(const std::string& name, GptConfig& out) {
  GptConfig c;
  c.vocab_size = 50257;
  c.block_size = 1024;
  c.bias = true;
  c.tie_embeddings = true;
  if (name == "gpt2") {
    c.n_layer = 12, c.n_head = 12, c.n_embd = 768;
  } else if (name == "gpt2-medium") {
    c.n_layer = 24, c.n_head = 16, c.n_embd = 1024;
  } else if (name == "gpt2-large") {
    c.n_layer = 36, c.n_head = 20, c.n_embd = 1280;
  } else if (name == "gpt2-xl") {
    c.n_layer = 48, c.n_head = 25, c.n_embd = 1600;
  } else {
    return false;
  }
  out = c;
  return true;
}

}  // namespace troupe::models
