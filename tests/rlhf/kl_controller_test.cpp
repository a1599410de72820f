// Hand-computed values for the fixed and adaptive (Ziegler et al. 2019) KL coefficient controllers.
#include "rlhf/kl_controller.h"

#include <gtest/gtest.h>

#include "core/errors.h"

namespace troupe::rlhf {
namespace {

KlControlConfig adaptive() {
  KlControlConfig c;
  c.type = KlControlType::kAdaptive;
  c.init_coef = 0.05;
  c.target = 6.0;
  c.horizon = 10000;
  return c;
}

void validate(const KlControlConfig& c) {
  core::OriginMap origins;
  core::ConfigValidator v(origins, "kl");
  c.validate(v);
}

TEST(KlController, FixedIgnoresUpdates) {
  KlController kl(KlControlConfig{});
  EXPECT_EQ(kl.value(), 0.05);
  kl.update(100.0, 256);
  kl.update(0.0, 256);
  EXPECT_EQ(kl.value(), 0.05);
}

TEST(KlController, AdaptiveStepsTowardsTheTarget) {
  KlController kl(adaptive());
  // KL 9 vs target 6: error = clip(0.5, ±0.2) = 0.2; β = 0.05·(1 + 0.2·256/10000) = 0.05·1.00512 = 0.050256.
  kl.update(9.0, 256);
  EXPECT_NEAR(kl.value(), 0.050256, 1e-15);
  // KL 3: error = clip(−0.5) = −0.2; β = 0.050256·0.99488 = 0.05·(1 − 0.00512²) = 0.04999868928.
  kl.update(3.0, 256);
  EXPECT_NEAR(kl.value(), 0.04999868928, 1e-15);
  // KL 6.6 (inside the clip): error = 0.1; β ·= 1 + 0.1·256/10000 = 1.00256.
  kl.update(6.6, 256);
  EXPECT_NEAR(kl.value(), 0.04999868928 * 1.00256, 1e-15);
  // On target, or no samples: unchanged.
  const double before = kl.value();
  kl.update(6.0, 256);
  kl.update(50.0, 0);
  EXPECT_NEAR(kl.value(), before, 1e-15);
}

TEST(KlController, StateRoundTrip) {
  KlController a(adaptive());
  a.update(20.0, 1000);  // β = 0.05·1.02 = 0.051
  EXPECT_NEAR(a.value(), 0.051, 1e-15);
  KlController b(adaptive());
  b.restore(a.state());
  EXPECT_EQ(b.value(), a.value());
  a.update(1.0, 500);
  b.update(1.0, 500);
  EXPECT_EQ(b.value(), a.value());
  EXPECT_THROW(b.restore({}), DataError);
  EXPECT_THROW(b.restore({0.1, 0.2}), DataError);
  EXPECT_THROW(b.restore({-1.0}), DataError);
  EXPECT_THROW(b.update(1.0, -1), DataError);
}

TEST(KlControlConfig, Validate) {
  EXPECT_NO_THROW(validate(KlControlConfig{}));
  EXPECT_NO_THROW(validate(adaptive()));
  EXPECT_FALSE(core::parse_enum<KlControlType>("linear"));  // only fixed | adaptive bind
  auto c = adaptive();
  c.init_coef = 0.0;  // an adaptive β of 0 never moves
  EXPECT_THROW(validate(c), ConfigError);
  c.type = KlControlType::kFixed;
  EXPECT_NO_THROW(validate(c));  // a fixed β of 0 = no KL penalty
  c = adaptive();
  c.target = 0.0;
  EXPECT_THROW(validate(c), ConfigError);
  c = adaptive();
  c.horizon = 0;
  try {
    validate(c);
    FAIL() << "expected ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("kl.horizon"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace troupe::rlhf
