// dataprep/augment.h: EDA's synonym replacement, random deletion and random swap with a portable seeded generator.
// Not EDA's random insertion; the whole text is one word list (no sentence or line structure kept).
#include "dataprep/augment.h"

#include <fmt/format.h>

#include "core/errors.h"
#include "metrics/unicode.h"

namespace troupe::dataprep {

void AugmentConfig::validate() const {
  for (double p : {p_synonym, p_delete, p_swap}) {
    if (!(p >= 0 && p <= 1)) throw ConfigError(fmt::format("augment: probabilities must be in [0, 1] (got {})", p));
  }
}

double AugmentRng::uniform() { return static_cast<double>(engine_() >> 11) * 0x1.0p-53; }

uint64_t AugmentRng::below(uint64_t n) {
  if (n == 0) throw DataError("AugmentRng::below: n must be >= 1");
  const auto k = static_cast<uint64_t>(uniform() * static_cast<double>(n));
  return k < n ? k : n - 1;
}

std::vector<std::string> synonym_replace(const std::vector<std::string>& words, double p,
                                         const metrics::WordNet& wordnet, AugmentRng& rng) {
  std::vector<std::string> out;
  out.reserve(words.size());
  for (const auto& w : words) {
    const auto lw = metrics::lower(w);
    std::vector<const std::string*> choices;
    for (const auto& s : wordnet.synonyms(lw)) {
      if (metrics::lower(s) != lw) choices.push_back(&s);
    }
    out.push_back(!choices.empty() && rng.uniform() < p ? *choices[rng.below(choices.size())] : w);
  }
  return out;
}

std::vector<std::string> random_delete(const std::vector<std::string>& words, double p, AugmentRng& rng) {
  std::vector<std::string> out;
  for (const auto& w : words) {
    if (rng.uniform() >= p) out.push_back(w);
  }
  if (out.empty() && !words.empty()) out.push_back(words[rng.below(words.size())]);
  return out;
}

std::vector<std::string> random_swap(std::vector<std::string> words, double p, AugmentRng& rng) {
  for (size_t i = 0; i < words.size(); ++i) {
    if (rng.uniform() < p) std::swap(words[i], words[rng.below(words.size())]);
  }
  return words;
}

std::string augment(std::string_view text, uint64_t seed, const AugmentConfig& config,
                    const metrics::WordNet& wordnet) {
  config.validate();
  AugmentRng rng(seed);
  auto words = synonym_replace(metrics::split_whitespace(text), config.p_synonym, wordnet, rng);
  words = random_swap(random_delete(words, config.p_delete, rng), config.p_swap, rng);
  std::string out;
  for (size_t i = 0; i < words.size(); ++i) out += (i ? " " : "") + words[i];
  return out;
}

}  // namespace troupe::dataprep
