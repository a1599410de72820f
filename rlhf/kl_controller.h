// The coefficient β of the per-token KL penalty in PPO-RLHF: fixed, or adapted towards a target KL as in Ziegler
// et al. 2019 ("Fine-Tuning Language Models from Human Preferences"). A scalar state machine only: measuring the
// KL (and all-reducing it over ranks) is the caller's job.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "core/config_binder.h"

namespace troupe::rlhf {

enum class KlControlType { kFixed, kAdaptive };
constexpr auto config_names(KlControlType) {
  return std::array{std::pair{KlControlType::kFixed, "fixed"}, std::pair{KlControlType::kAdaptive, "adaptive"}};
}

struct KlControlConfig {
  KlControlType type = KlControlType::kFixed;  // fixed | adaptive
  double init_coef = 0.05;                     // β at the start (the whole run for fixed)
  double target = 6.0;      // adaptive: KL (nats per sequence, as measured by the caller) to steer towards
  int64_t horizon = 10000;  // adaptive: samples over which a 20% error moves β by about 20%

  template <class V>
  void visit(V& v) {
    v.field("type", type, "fixed | adaptive");
    v.field("init_coef", init_coef, "initial KL coefficient beta (the constant one for fixed)");
    v.field("target", target, "adaptive: target KL per sequence");
    v.field("horizon", horizon, "adaptive: horizon in samples (Ziegler et al. 2019)");
  }
  void validate(core::ConfigValidator& v) const;
};

// Adaptive rule, after each batch of n_steps samples with measured KL `current`:
//   error = clip(current / target − 1, −0.2, 0.2),   β ← β · (1 + error · n_steps / horizon).
// Example: β = 0.05, target 6, horizon 10000, current 9, n_steps 256: error = clip(0.5) = 0.2 and
// β = 0.05 · (1 + 0.2 · 0.0256) = 0.050256. A fixed controller ignores update().
class KlController {
 public:
  explicit KlController(const KlControlConfig& config);

  double value() const { return value_; }
  // current_kl: the measured KL (same unit as config.target); n_steps >= 0: samples since the last update.
  void update(double current_kl, int64_t n_steps);

  // For checkpoints: {β}. restore() takes what state() returned; DataError for anything else.
  std::vector<double> state() const;
  void restore(const std::vector<double>& state);

 private:
  KlControlConfig config_;
  bool adaptive_;
  double value_;
};

}  // namespace troupe::rlhf
