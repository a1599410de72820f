// The quantization settings without torch: the scheme names, the options of one quantization and the config
// section that training, `troupe quantize` and the PPO/GRPO roles read (models/quant.h does the work).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "core/config_binder.h"

namespace troupe::models {

enum class QuantScheme { kNone, kInt8, kInt4, kNf4, kInt8Dynamic };
constexpr auto config_names(QuantScheme) {
  return std::array{std::pair{QuantScheme::kNone, "none"}, std::pair{QuantScheme::kInt8, "int8"},
                    std::pair{QuantScheme::kInt4, "int4"}, std::pair{QuantScheme::kNf4, "nf4"},
                    std::pair{QuantScheme::kInt8Dynamic, "int8_dynamic"}};
}

// "none", "int8", "int4", "nf4", "int8_dynamic"; ConfigError listing the choices for anything else.
QuantScheme parse_quant_scheme(const std::string& name);
std::string quant_scheme_name(QuantScheme scheme);

struct QuantOptions {
  QuantScheme scheme = QuantScheme::kInt8;
  int64_t group = 0;         // 0 = the scheme's default: int4 128 (or the largest of 128/64/32 dividing cols), nf4 64
  bool double_quant = true;  // nf4 only
};

// A config section (training `quantization:`, the PPO/GRPO reference and reward roles): how a model's weights are
// quantized. With `qat` (training only) the weights stay fp32 and trainable and the forward pass fake-quantizes
// them (straight-through gradients); `troupe quantize` converts the result.
struct QuantSection {
  QuantScheme scheme = QuantScheme::kNone;
  int64_t group = 0;  // 0 = the scheme's default
  bool double_quant = true;
  bool embedding = false;  // also the tied token embedding / LM head
  std::vector<std::string> targets{"transformer.*", "model.*", "lm_head"};
  bool qat = false;

  template <class V>
  void visit(V& v) {
    v.field("scheme", scheme, "none | int8 | int4 | nf4 | int8_dynamic");
    v.field("group", group, "int4 group / nf4 block size (0 = 128 / 64)");
    v.field("double_quant", double_quant, "nf4: quantize the block absmax values too (QLoRA)");
    v.field("embedding", embedding, "quantize the tied token embedding / LM head too");
    v.field("targets", targets, "glob patterns over linear layer names");
    v.field("qat", qat, "quantization-aware training: fake-quantize trainable weights instead");
  }
  void validate(core::ConfigValidator& v) const;
  bool enabled() const { return scheme != QuantScheme::kNone; }
  QuantOptions options() const { return QuantOptions{scheme, group, double_quant}; }
};

}  // namespace troupe::models
