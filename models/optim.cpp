// Implementation of models/optim.h.
#include "models/optim.h"

#include <ATen/autocast_mode.h>
#include <torch/torch.h>

#include <cmath>

#include "core/errors.h"

namespace troupe::models {

void OptimConfig::validate(core::ConfigValidator& v) const {
  v.require(lr > 0, "lr", lr, "a number > 0");
  v.require(min_lr >= 0 && min_lr <= lr, "min_lr", min_lr, "a number in [0, lr]");
  v.require(warmup_steps >= 0, "warmup_steps", warmup_steps, "an integer >= 0");
  v.require(schedule == "cosine" || schedule == "linear" || schedule == "constant", "schedule", schedule,
            "cosine, linear or constant");
  v.require(weight_decay >= 0, "weight_decay", weight_decay, "a number >= 0");
  v.require(beta1 >= 0 && beta1 < 1, "beta1", beta1, "a number in [0, 1)");
  v.require(beta2 >= 0 && beta2 < 1, "beta2", beta2, "a number in [0, 1)");
  v.require(eps > 0, "eps", eps, "a number > 0");
  v.require(grad_clip >= 0, "grad_clip", grad_clip, "a number >= 0 (0 = off)");
}

std::unique_ptr<torch::optim::AdamW> make_adamw(torch::nn::Module& module, const OptimConfig& c) {
  std::vector<torch::Tensor> decay, no_decay;
  for (const auto& item : module.named_parameters(true)) {
    if (!item.value().requires_grad()) continue;
    const std::string& name = item.key();
    const bool embedding = name == "transformer.wte.weight" || name == "transformer.wpe.weight";
    const bool bias_or_norm = item.value().dim() < 2;
    const bool decays = embedding ? c.decay_embeddings : bias_or_norm ? c.decay_biases_and_norms : true;
    (decays ? decay : no_decay).push_back(item.value());
  }
  if (decay.empty() && no_decay.empty()) throw ConfigError("optimizer: the model has no trainable parameters");
  auto options = torch::optim::AdamWOptions(c.lr).betas({c.beta1, c.beta2}).eps(c.eps).weight_decay(c.weight_decay);
  std::vector<torch::optim::OptimizerParamGroup> groups;
  if (!decay.empty()) groups.emplace_back(decay, std::make_unique<torch::optim::AdamWOptions>(options));
  if (!no_decay.empty()) {
    auto no_decay_options = std::make_unique<torch::optim::AdamWOptions>(options);
    no_decay_options->weight_decay(0.0);
    groups.emplace_back(no_decay, std::move(no_decay_options));
  }
  return std::make_unique<torch::optim::AdamW>(groups, options);
}

double lr_at(const OptimConfig& c, int64_t step, int64_t total_steps) {
  if (step < c.warmup_steps) return c.lr * static_cast<double>(step + 1) / static_cast<double>(c.warmup_steps);
  if (c.schedule == "constant") return c.lr;
  const int64_t span = std::max<int64_t>(1, total_steps - 1 - c.warmup_steps);
  const double progress = std::min(1.0, static_cast<double>(step - c.warmup_steps) / static_cast<double>(span));
  const double factor = c.schedule == "cosine" ? 0.5 * (1.0 + std::cos(M_PI * progress)) : 1.0 - progress;
  return c.min_lr + (c.lr - c.min_lr) * factor;
}

void set_lr(torch::optim::Optimizer& optimizer, double lr) {
  for (auto& group : optimizer.param_groups()) static_cast<torch::optim::AdamWOptions&>(group.options()).lr(lr);
}

Bf16Autocast::Bf16Autocast(bool enabled) : enabled_(enabled) {
  if (!enabled_) return;
  previous_ = at::autocast::is_cpu_enabled();
  at::autocast::set_cpu_enabled(true);
  at::autocast::set_autocast_cpu_dtype(at::kBFloat16);
  at::autocast::increment_nesting();
}

Bf16Autocast::~Bf16Autocast() {
  if (!enabled_) return;
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
  at::autocast::set_cpu_enabled(previous_);
}

}  // namespace troupe::models
