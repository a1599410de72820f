// Implementation of models/gpt_config.h: validation, parameter and FLOP counts, GPT-2 presets.
#include "models/gpt_config.h"

#include "core/errors.h"

namespace troupe::models {

void GptConfig::validate(core::ConfigValidator& v) const {
  v.require(n_layer >= 1, "n_layer", n_layer, "an integer >= 1");
  v.require(n_head >= 1, "n_head", n_head, "an integer >= 1");
  v.require(n_embd >= 1 && n_embd % n_head == 0, "n_embd", n_embd, "a positive multiple of n_head");
  v.require(block_size >= 1, "block_size", block_size, "an integer >= 1");
  v.require(vocab_size >= 1, "vocab_size", vocab_size, "an integer >= 1");
  v.require(dropout >= 0.0 && dropout < 1.0, "dropout", dropout, "a number in [0, 1)");
  v.require(layer_norm_eps > 0.0, "layer_norm_eps", layer_norm_eps, "a positive number");
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
