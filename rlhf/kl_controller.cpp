// Implementation of rlhf/kl_controller.h.
#include "rlhf/kl_controller.h"

#include <algorithm>
#include <cmath>

#include "core/errors.h"

namespace troupe::rlhf {

void KlControlConfig::validate(core::ConfigValidator& v) const {
  v.require(std::isfinite(init_coef) && init_coef >= 0.0, "init_coef", init_coef, "a number >= 0");
  // β only ever gets multiplied, so an adaptive controller started at 0 would stay at 0.
  v.require(type != KlControlType::kAdaptive || init_coef > 0.0, "init_coef", init_coef,
            "a number > 0 for an adaptive controller");
  v.require(std::isfinite(target) && target > 0.0, "target", target, "a number > 0");
  v.require(horizon >= 1, "horizon", horizon, "an integer >= 1");
}

KlController::KlController(const KlControlConfig& config)
    : config_(config), adaptive_(config.type == KlControlType::kAdaptive), value_(config.init_coef) {}

void KlController::update(double current_kl, int64_t n_steps) {
  if (n_steps < 0) throw DataError("KlController::update: n_steps = " + std::to_string(n_steps) + " < 0");
  if (!std::isfinite(current_kl)) throw DataError("KlController::update: the measured KL is not finite");
  if (!adaptive_) return;
  const double error = std::clamp(current_kl / config_.target - 1.0, -0.2, 0.2);
  value_ *= 1.0 + error * static_cast<double>(n_steps) / static_cast<double>(config_.horizon);
}

std::vector<double> KlController::state() const { return {value_}; }

void KlController::restore(const std::vector<double>& state) {
  if (state.size() != 1 || !std::isfinite(state[0]) || state[0] < 0.0)
    throw DataError("KlController::restore: expected one finite coefficient >= 0, got " + std::to_string(state.size()) +
                    " values");
  value_ = state[0];
}

}  // namespace troupe::rlhf
