#include "dataprep/dedup.h"

#include <array>
#include <cmath>
#include <limits>
#include <numbers>

#include "core/errors.h"
#include "dataprep/normalize.h"
#include "metrics/unicode.h"

namespace troupe::dataprep {
namespace {

// Gauss-Legendre nodes and weights on [-1, 1] (Newton on P_n from the Chebyshev guesses), computed once.
constexpr int kGaussPoints = 20;
constexpr int kSubintervals = 32;

struct GaussLegendre {
  std::array<double, kGaussPoints> x{}, w{};
  GaussLegendre() {
    for (int i = 0; i < kGaussPoints; ++i) {
      double z = std::cos(std::numbers::pi * (i + 0.75) / (kGaussPoints + 0.5));
      double dp = 0;
      for (int it = 0; it < 100; ++it) {
        double p0 = 1, p1 = z;  // P_0, P_1; the recurrence leaves P_n in p1 and P_{n-1} in p0
        for (int n = 2; n <= kGaussPoints; ++n) {
          const double p2 = ((2 * n - 1) * z * p1 - (n - 1) * p0) / n;
          p0 = p1;
          p1 = p2;
        }
        dp = kGaussPoints * (z * p1 - p0) / (z * z - 1);
        const double dz = p1 / dp;
        z -= dz;
        if (std::abs(dz) < 1e-16) break;
      }
      x[i] = z;
      w[i] = 2 / ((1 - z * z) * dp * dp);
    }
  }
};

// The integral of f over [lo, hi] by kSubintervals panels of kGaussPoints points: exact for polynomials of degree
// < 40 per panel, and the integrands here (degree b * r <= num_perm) are smooth enough that 32 panels reach ~1e-15.
template <class F>
double integrate(F f, double lo, double hi) {
  static const GaussLegendre gl;
  const double h = (hi - lo) / kSubintervals;
  double sum = 0;
  for (int p = 0; p < kSubintervals; ++p) {
    const double mid = lo + (p + 0.5) * h;
    for (int i = 0; i < kGaussPoints; ++i) sum += gl.w[i] * f(mid + 0.5 * h * gl.x[i]);
  }
  return sum * 0.5 * h;
}

uint64_t band_hash(std::span<const uint32_t> rows, size_t band) {
  uint64_t h = 0x9E3779B97F4A7C15ull * (band + 1);
  for (const uint32_t v : rows) {
    h = (h ^ v) * 0xFF51AFD7ED558CCDull;
    h ^= h >> 32;
  }
  return h;
}

}  // namespace

ShingleKind parse_shingle_kind(const std::string& name) {
  if (name == "words") return ShingleKind::kWords;
  if (name == "chars") return ShingleKind::kChars;
  throw ConfigError("shingle kind '" + name + "': expected words or chars");
}

std::string dedup_normal_text(std::string_view text, const std::string& what) {
  return metrics::lower(clean_whitespace(normalize(text, NormalForm::kNfc, what)));
}

std::vector<std::string> shingles(std::string_view normal_text, ShingleKind kind, int k) {
  if (k < 1) throw ConfigError("shingle size " + std::to_string(k) + ": expected >= 1");
  const std::u32string text = metrics::decode_utf8(normal_text);
  std::vector<std::u32string> units;
  if (kind == ShingleKind::kChars) {
    for (const char32_t c : text) units.emplace_back(1, c);
  } else {
    std::u32string word;
    for (const char32_t c : text) {
      if (metrics::is_alnum(c)) {
        word += c;
      } else if (!word.empty()) {
        units.push_back(std::move(word));
        word.clear();
      }
    }
    if (!word.empty()) units.push_back(std::move(word));
  }
  const std::string_view sep = kind == ShingleKind::kWords ? " " : "";
  std::vector<std::string> out;
  const size_t n = units.size(), width = std::min<size_t>(k, n);
  for (size_t start = 0; width > 0 && start + width <= n; ++start) {
    std::string s;
    for (size_t i = start; i < start + width; ++i) {
      if (i > start) s += sep;
      for (const char32_t c : units[i]) core::append_utf8(s, c);
    }
    out.push_back(std::move(s));
  }
  return out;
}

double lsh_false_positive_probability(double threshold, int bands, int rows) {
  const double b = bands, r = rows;
  return integrate([&](double s) { return 1 - std::pow(1 - std::pow(s, r), b); }, 0.0, threshold);
}

double lsh_false_negative_probability(double threshold, int bands, int rows) {
  const double b = bands, r = rows;
  return integrate([&](double s) { return std::pow(1 - std::pow(s, r), b); }, threshold, 1.0);
}

LshParams optimal_lsh_params(double threshold, int num_perm, double fp_weight, double fn_weight) {
  if (!(threshold > 0 && threshold < 1)) throw ConfigError("LSH threshold must be in (0, 1)");
  if (num_perm < 2) throw ConfigError("LSH num_perm must be >= 2");
  double min_error = std::numeric_limits<double>::infinity();
  LshParams opt;
  for (int b = 1; b <= num_perm; ++b) {
    for (int r = 1; r <= num_perm / b; ++r) {
      const double error = lsh_false_positive_probability(threshold, b, r) * fp_weight +
                           lsh_false_negative_probability(threshold, b, r) * fn_weight;
      if (error < min_error) {
        min_error = error;
        opt = {b, r};
      }
    }
  }
  return opt;
}

void DedupConfig::validate() const {
  if (!(threshold > 0 && threshold < 1)) throw ConfigError("dedup.threshold must be in (0, 1)");
  if (num_perm < 2 || num_perm > (1 << 16)) throw ConfigError("dedup.num_perm must be in 2..65536");
  if (shingle_size < 1) throw ConfigError("dedup.shingle_size must be >= 1");
  if (!(fp_weight >= 0 && fp_weight <= 1 && fn_weight >= 0 && fn_weight <= 1) ||
      std::abs(fp_weight + fn_weight - 1) > 1e-9) {
    throw ConfigError("dedup.fp_weight and fn_weight must be in [0, 1] and sum to 1 (got " + std::to_string(fp_weight) +
                      " and " + std::to_string(fn_weight) + ")");
  }
  const bool auto_lsh = lsh.bands == 0 && lsh.rows == 0;
  if (!auto_lsh && (lsh.bands < 1 || lsh.rows < 1 || lsh.bands * lsh.rows > num_perm)) {
    throw ConfigError("dedup.lsh: bands and rows must be >= 1 with bands * rows <= num_perm (or both 0)");
  }
}

Deduplicator::Deduplicator(DedupConfig config)
    : config_((config.validate(), config)), hasher_(config_.num_perm, config_.seed, config_.scheme) {
  lsh_ = config_.lsh.bands > 0
             ? config_.lsh
             : optimal_lsh_params(config_.threshold, config_.num_perm, config_.fp_weight, config_.fn_weight);
  buckets_.resize(lsh_.bands);
}

size_t Deduplicator::find(size_t i) const {
  while (parent_[i] != i) {
    parent_[i] = parent_[parent_[i]];  // path halving
    i = parent_[i];
  }
  return i;
}

void Deduplicator::join(size_t i, size_t j) {
  i = find(i);
  j = find(j);
  if (i != j) parent_[std::max(i, j)] = std::min(i, j);  // the root stays the lowest index
}

DedupSketch Deduplicator::sketch(std::string_view text, const std::string& what) const {
  const std::string normal = dedup_normal_text(text, what);
  DedupSketch out;
  if (config_.exact) out.key = sha1_hash128(normal);
  if (config_.near) out.signature = hasher_.signature(shingles(normal, config_.shingle, config_.shingle_size));
  return out;
}

size_t Deduplicator::add(std::string_view text) {
  return add(sketch(text, "document " + std::to_string(exact_of_.size())));
}

size_t Deduplicator::add(const DedupSketch& sketch) {
  const size_t index = exact_of_.size();
  if (index >= std::numeric_limits<uint32_t>::max()) throw DataError("dedup: more than 2^32 - 1 documents");
  if (config_.near && sketch.signature.size() != static_cast<size_t>(config_.num_perm))
    throw DataError("dedup: a sketch without a signature of " + std::to_string(config_.num_perm) + " values");
  exact_of_.push_back(index);
  parent_.push_back(index);
  signatures_.emplace_back();
  if (config_.exact) {
    const auto [it, inserted] = first_by_key_.try_emplace(sketch.key, index);
    if (!inserted) {
      exact_of_[index] = it->second;
      return index;
    }
  }
  if (config_.near) add_near(index, sketch.signature);
  return index;
}

// Candidates are the earlier documents sharing a band; one already in this document's cluster is skipped (the
// components do not change), so a large cluster costs one verification per band per member, not one per pair.
void Deduplicator::add_near(size_t index, const std::vector<uint32_t>& sig) {
  const size_t r = lsh_.rows;
  for (size_t band = 0; band < buckets_.size(); ++band) {
    auto& members = buckets_[band][band_hash(std::span(sig).subspan(band * r, r), band)];
    for (const uint32_t other : members) {
      if (find(other) == find(index)) continue;
      if (!config_.verify || estimated_jaccard(sig, signatures_[other]) >= config_.threshold) join(index, other);
    }
    members.push_back(static_cast<uint32_t>(index));
  }
  if (config_.verify) signatures_[index] = sig;
}

DedupResult Deduplicator::finish() const {
  DedupResult result;
  result.lsh = lsh_;
  const size_t n = exact_of_.size();
  result.cluster.resize(n);
  for (size_t i = 0; i < n; ++i) {
    result.cluster[i] = find(exact_of_[i]);
    if (result.cluster[i] == i) {
      result.kept.push_back(i);
    } else if (exact_of_[i] != i) {
      ++result.exact_removed;
    } else {
      ++result.near_removed;
    }
  }
  return result;
}

DedupResult deduplicate(const std::vector<std::string>& docs, const DedupConfig& config) {
  Deduplicator dedup(config);
  for (const auto& doc : docs) dedup.add(doc);
  return dedup.finish();
}

}  // namespace troupe::dataprep
