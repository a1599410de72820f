// Training pieces shared by every trainer: AdamW with decay / no-decay parameter groups, the learning-rate
// schedule (linear warmup, then cosine, linear or constant), and a guard for bf16 autocast on the CPU.
// No loop and no data here: experiments/lm_training.cpp drives them.
#pragma once

#include <array>
#include <memory>
#include <string>
#include <utility>

#include "core/config_binder.h"

namespace torch::nn {
class Module;
}
namespace torch::optim {
class Optimizer;
class AdamW;
}  // namespace torch::optim

namespace troupe::models {

// The learning-rate schedule after warmup.
enum class LrSchedule { kCosine, kLinear, kConstant };
constexpr auto config_names(LrSchedule) {
  return std::array{std::pair{LrSchedule::kCosine, "cosine"}, std::pair{LrSchedule::kLinear, "linear"},
                    std::pair{LrSchedule::kConstant, "constant"}};
}

struct OptimConfig {
  double lr = 6e-4;                           // peak learning rate
  double min_lr = 6e-5;                       // end of the decay
  int64_t warmup_steps = 100;                 // linear warmup from lr / warmup_steps
  LrSchedule schedule = LrSchedule::kCosine;  // cosine | linear | constant (after warmup)
  double weight_decay = 0.1;                  // decoupled (AdamW)
  double beta1 = 0.9, beta2 = 0.95, eps = 1e-8;
  double grad_clip = 1.0;               // max global grad norm; 0 = off
  bool decay_embeddings = false;        // weight decay on wte/wpe (embed_tokens)
  bool decay_biases_and_norms = false;  // weight decay on biases and LayerNorm gains

  template <class V>
  void visit(V& v) {
    v.field("lr", lr, "peak learning rate");
    v.field("min_lr", min_lr, "learning rate at the end of the decay");
    v.field("warmup_steps", warmup_steps, "linear warmup steps");
    v.field("schedule", schedule, "cosine | linear | constant after warmup");
    v.field("weight_decay", weight_decay, "AdamW decoupled weight decay");
    v.field("beta1", beta1, "AdamW beta1");
    v.field("beta2", beta2, "AdamW beta2");
    v.field("eps", eps, "AdamW epsilon");
    v.field("grad_clip", grad_clip, "max global gradient norm (0 = off)");
    v.field("decay_embeddings", decay_embeddings, "apply weight decay to token/position embeddings");
    v.field("decay_biases_and_norms", decay_biases_and_norms, "apply weight decay to biases and LayerNorm gains");
  }
  void validate(core::ConfigValidator& v) const;
};

// AdamW over the trainable parameters of `module`, in two groups (an empty one is left out): the first decays (2-D
// weights of linear layers and heads, plus embeddings / biases / norms when asked), the second does not. Frozen
// parameters are left out. The optimizer is torch::optim::AdamW with its step done by models/kernels.h's one-pass
// update for contiguous fp32 parameters (torch's step makes about nine passes over each tensor); its state and
// checkpoint format are torch's, so checkpoints load either way.
std::unique_ptr<torch::optim::AdamW> make_adamw(torch::nn::Module& module, const OptimConfig& config);

// Learning rate for 0-based `step` of `total_steps`: warmup lr * (step + 1) / warmup_steps, then the schedule
// from lr down to min_lr at the last step.
double lr_at(const OptimConfig& config, int64_t step, int64_t total_steps);
void set_lr(torch::optim::Optimizer& optimizer, double lr);

// Enables autocast to bfloat16 on the CPU and CUDA for its lifetime when `enabled` (restores the previous state
// after).
class Bf16Autocast {
 public:
  explicit Bf16Autocast(bool enabled);
  ~Bf16Autocast();
  Bf16Autocast(const Bf16Autocast&) = delete;
  Bf16Autocast& operator=(const Bf16Autocast&) = delete;

 private:
  bool enabled_;
  bool previous_ = false, previous_cuda_ = false;
  int previous_cuda_dtype_ = 0;  // at::ScalarType, kept as an int so this header needs no torch
};

}  // namespace troupe::models
