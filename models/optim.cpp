// Implementation of models/optim.h.
#include "models/optim.h"

#include <ATen/autocast_mode.h>
#include <torch/torch.h>

#include <cmath>

#include "core/errors.h"
#include "models/kernels.h"

namespace troupe::models {

void OptimConfig::validate(core::ConfigValidator& v) const {
  v.require(lr > 0, "lr", lr, "a number > 0");
  v.require(min_lr >= 0 && min_lr <= lr, "min_lr", min_lr, "a number in [0, lr]");
  v.require(warmup_steps >= 0, "warmup_steps", warmup_steps, "an integer >= 0");
  v.require(weight_decay >= 0, "weight_decay", weight_decay, "a number >= 0");
  v.require(beta1 >= 0 && beta1 < 1, "beta1", beta1, "a number in [0, 1)");
  v.require(beta2 >= 0 && beta2 < 1, "beta2", beta2, "a number in [0, 1)");
  v.require(eps > 0, "eps", eps, "a number > 0");
  v.require(grad_clip >= 0, "grad_clip", grad_clip, "a number >= 0 (0 = off)");
}

namespace {

// torch::optim::AdamW (1.13) with the per-parameter arithmetic fused (kernels::adamw_update). Parameters it cannot
// take (amsgrad, non-fp32, non-contiguous, sparse) make the whole step fall back to torch's own.
class FusedAdamW final : public torch::optim::AdamW {
 public:
  using torch::optim::AdamW::AdamW;

  torch::Tensor step(LossClosure closure = nullptr) override {
    if (closure != nullptr || !fusable()) return torch::optim::AdamW::step(std::move(closure));
    torch::NoGradGuard no_grad;
    for (auto& group : param_groups_) {
      const auto& o = static_cast<const torch::optim::AdamWOptions&>(group.options());
      for (auto& p : group.params()) {
        if (!p.grad().defined()) continue;
        void* const key = p.unsafeGetTensorImpl();  // torch 2.x keys optimizer state by the TensorImpl pointer
        auto it = state_.find(key);
        if (it == state_.end()) {  // what torch's step creates, so save/load see the same state
          auto fresh = std::make_unique<torch::optim::AdamWParamState>();
          fresh->step(0);
          fresh->exp_avg(torch::zeros_like(p, torch::MemoryFormat::Preserve));
          fresh->exp_avg_sq(torch::zeros_like(p, torch::MemoryFormat::Preserve));
          it = state_.emplace(key, std::move(fresh)).first;
        }
        auto& st = static_cast<torch::optim::AdamWParamState&>(*it->second);
        st.step(st.step() + 1);
        kernels::adamw_update(p, p.grad(), st.exp_avg(), st.exp_avg_sq(), o.lr(), std::get<0>(o.betas()),
                              std::get<1>(o.betas()), o.eps(), o.weight_decay(), st.step());
      }
    }
    return {};
  }

 private:
  bool fusable() const {
    for (const auto& group : param_groups_) {
      if (static_cast<const torch::optim::AdamWOptions&>(group.options()).amsgrad()) return false;
      for (const auto& p : group.params()) {
        if (!p.grad().defined()) continue;
        if (p.scalar_type() != torch::kFloat32 || !p.is_contiguous() || p.grad().is_sparse() ||
            p.grad().scalar_type() != torch::kFloat32 || !p.grad().is_contiguous()) {
          return false;
        }
        const auto it = state_.find(p.unsafeGetTensorImpl());
        if (it != state_.end()) {
          const auto& st = static_cast<const torch::optim::AdamWParamState&>(*it->second);
          if (!st.exp_avg().is_contiguous() || !st.exp_avg_sq().is_contiguous()) return false;
        }
      }
    }
    return true;
  }
};

}  // namespace

std::unique_ptr<torch::optim::AdamW> make_adamw(torch::nn::Module& module, const OptimConfig& c) {
  std::vector<torch::Tensor> decay, no_decay;
  for (const auto& item : module.named_parameters(true)) {
    if (!item.value().requires_grad()) continue;
    const std::string& name = item.key();
    const bool embedding =
        name == "transformer.wte.weight" || name == "transformer.wpe.weight" || name == "model.embed_tokens.weight";
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
  return std::make_unique<FusedAdamW>(groups, options);
}

double lr_at(const OptimConfig& c, int64_t step, int64_t total_steps) {
  if (step < c.warmup_steps) return c.lr * static_cast<double>(step + 1) / static_cast<double>(c.warmup_steps);
  if (c.schedule == LrSchedule::kConstant) return c.lr;
  const int64_t span = std::max<int64_t>(1, total_steps - 1 - c.warmup_steps);
  const double progress = std::min(1.0, static_cast<double>(step - c.warmup_steps) / static_cast<double>(span));
  const double factor = c.schedule == LrSchedule::kCosine ? 0.5 * (1.0 + std::cos(M_PI * progress)) : 1.0 - progress;
  return c.min_lr + (c.lr - c.min_lr) * factor;
}

void set_lr(torch::optim::Optimizer& optimizer, double lr) {
  for (auto& group : optimizer.param_groups()) static_cast<torch::optim::AdamWOptions&>(group.options()).lr(lr);
}

Bf16Autocast::Bf16Autocast(bool enabled) : enabled_(enabled) {
  if (!enabled_) return;
  previous_ = at::autocast::is_autocast_enabled(at::kCPU);
  previous_cuda_ = at::autocast::is_autocast_enabled(at::kCUDA);
  previous_cuda_dtype_ = static_cast<int>(at::autocast::get_autocast_dtype(at::kCUDA));
  at::autocast::set_autocast_enabled(at::kCPU, true);
  at::autocast::set_autocast_dtype(at::kCPU, at::kBFloat16);
  at::autocast::set_autocast_enabled(at::kCUDA, true);  // a model on a GPU autocasts there; harmless on the CPU
  at::autocast::set_autocast_dtype(at::kCUDA, at::kBFloat16);
  at::autocast::increment_nesting();
}

Bf16Autocast::~Bf16Autocast() {
  if (!enabled_) return;
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
  at::autocast::set_autocast_enabled(at::kCPU, previous_);
  at::autocast::set_autocast_enabled(at::kCUDA, previous_cuda_);
  at::autocast::set_autocast_dtype(at::kCUDA, static_cast<at::ScalarType>(previous_cuda_dtype_));
}

}  // namespace troupe::models
