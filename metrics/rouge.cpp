// rouge-score's RougeScorer on interned tokens: each text is tokenized once into ids (a thread-local cache maps a token
// straight to the id of its stem, so the Porter stemmer runs once per distinct word), ids are renumbered densely per
// pair, n-grams are interned level by level, ROUGE-L runs on one rolling DP row and ROUGE-Lsum on a reused full table
// (it needs rouge-score's exact backtrack: which LCS is chosen changes the union).
#include "metrics/rouge.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstdint>
#include <span>
#include <unordered_map>

#include "core/errors.h"
#include "metrics/porter_stemmer.h"
#include "metrics/unicode.h"

namespace troupe::metrics {
namespace {

enum class Kind { kNgram, kLcs, kSummaryLcs };

struct RougeType {
  std::string name;
  Kind kind = Kind::kNgram;
  int n = 0;  // kNgram only
};

// rouge-score accepts "rougeL", "rougeLsum" and re.match(r"rouge[0-9]$"): one ASCII digit, and since '$' also matches
// before a final newline, "rouge1\n" too (int("1\n") == 1).
RougeType parse_type(const std::string& name) {
  if (name == "rougeL") return {name, Kind::kLcs};
  if (name == "rougeLsum") return {name, Kind::kSummaryLcs};
  const bool digit = name.size() >= 6 && name.compare(0, 5, "rouge") == 0 && name[5] >= '0' && name[5] <= '9';
  if (digit && (name.size() == 6 || (name.size() == 7 && name[6] == '\n'))) {
    const int n = name[5] - '0';
    if (n <= 0) throw ConfigError(fmt::format("rouge: rougen requires positive n: '{}'", name));
    return {name, Kind::kNgram, n};
  }
  throw ConfigError(
      fmt::format("rouge: invalid rouge type '{}' (expected rouge1 .. rouge9, rougeL or rougeLsum)", name));
}

std::vector<RougeType> parse_types(const RougeOptions& options) {
  if (options.split_summaries) {
    throw ConfigError(
        "rouge: split_summaries (nltk.sent_tokenize with Punkt) is not implemented; separate rougeLsum sentences "
        "with \"\\n\" instead");
  }
  std::vector<RougeType> types;
  for (const std::string& name : options.types) types.push_back(parse_type(name));
  return types;
}

struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
using IdMap = std::unordered_map<std::string, uint32_t, StringHash, std::equal_to<>>;

constexpr uint32_t kDropped = UINT32_MAX;  // a stem that is not [a-z0-9]+ (never seen; rouge-score would drop it)
constexpr size_t kMaxCachedForms = size_t{1} << 18;

// A text as rouge-score's tokenizer sees it: the ids of its tokens (global, see Workspace) and where each of its
// "\n"-separated pieces starts, for rougeLsum. Tokens never span a "\n" (not alphanumeric), so tokenizing the whole
// text and cutting at "\n" gives each sentence's tokens.
struct Tokenized {
  std::vector<uint32_t> ids;
  std::vector<uint32_t> sentence_starts;  // offsets into ids; the first is 0
};

// One thread's caches and scratch buffers. Global ids name a token's final form (stemmed or not) across calls; a pair
// is scored on local ids 0..V-1, so that its count arrays are small.
struct Workspace {
  IdMap form_ids;     // final token form -> global id
  IdMap stemmed_ids;  // token of 4+ characters -> global id of its Porter stem
  std::string lowered, token;
  std::vector<uint32_t> local_of, stamp_of;  // global id -> local id, valid where stamp_of == stamp
  uint32_t stamp = 0, local_count = 0;
  std::unordered_map<uint64_t, uint32_t> ngram_ids;
  std::vector<uint32_t> ngram_a, ngram_b, row, table;
  std::vector<int> counts_a, counts_b;
  std::vector<char> in_union;

  void bound_caches() {
    if (form_ids.size() <= kMaxCachedForms) return;
    form_ids.clear();
    stemmed_ids.clear();
    local_of.clear();
    stamp_of.clear();
  }

  uint32_t form_id(std::string_view form) {
    if (auto it = form_ids.find(form); it != form_ids.end()) return it->second;
    const auto id = static_cast<uint32_t>(form_ids.size());
    form_ids.emplace(std::string(form), id);
    return id;
  }

  uint32_t stemmed_id(std::string_view token) {
    if (auto it = stemmed_ids.find(token); it != stemmed_ids.end()) return it->second;
    const std::string stem = porter_stem(token);
    const bool valid = !stem.empty() && std::all_of(stem.begin(), stem.end(), [](char c) {
      return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
    });
    const uint32_t id = valid ? form_id(stem) : kDropped;
    stemmed_ids.emplace(std::string(token), id);
    return id;
  }

  // Starts a pair: local ids are handed out afresh.
  void begin_pair() {
    if (++stamp == 0) {
      std::fill(stamp_of.begin(), stamp_of.end(), 0);
      stamp = 1;
    }
    local_count = 0;
  }

  uint32_t local_id(uint32_t global) {
    if (global >= stamp_of.size()) {
      stamp_of.resize(form_ids.size(), 0);
      local_of.resize(form_ids.size());
    }
    if (stamp_of[global] != stamp) {
      stamp_of[global] = stamp;
      local_of[global] = local_count++;
    }
    return local_of[global];
  }
};

Workspace& workspace() {
  thread_local Workspace ws;
  return ws;
}

bool is_ascii(std::string_view text) {
  return std::all_of(text.begin(), text.end(), [](char c) { return static_cast<unsigned char>(c) < 0x80; });
}

bool is_token_char(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'); }

// tokenize.tokenize: text.lower(), then the runs of [a-z0-9] (everything else is a separator), each stemmed when
// longer than 3 characters. ASCII text is lowercased per token; other text by Python's full str.lower first (it can
// make ASCII letters: the Kelvin sign becomes 'k', 'İ' becomes 'i' and a combining dot).
Tokenized tokenize(std::string_view text, bool use_stemmer, Workspace& ws) {
  std::string_view lowered = text;
  if (!is_ascii(text)) {
    ws.lowered = lower(text);
    lowered = ws.lowered;
  }
  Tokenized out;
  out.sentence_starts.push_back(0);
  size_t i = 0;
  while (i < lowered.size()) {
    if (lowered[i] == '\n') out.sentence_starts.push_back(static_cast<uint32_t>(out.ids.size()));
    if (!is_token_char(lowered[i])) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < lowered.size() && is_token_char(lowered[j])) ++j;
    ws.token.assign(lowered.substr(i, j - i));
    for (char& c : ws.token) {
      if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    }
    const uint32_t id = use_stemmer && ws.token.size() > 3 ? ws.stemmed_id(ws.token) : ws.form_id(ws.token);
    if (id != kDropped) out.ids.push_back(id);
    i = j;
  }
  return out;
}

RougeValue make_value(int64_t hits, int64_t predicted, int64_t target) {
  RougeValue v;
  v.precision = static_cast<double>(hits) / static_cast<double>(predicted);
  v.recall = static_cast<double>(hits) / static_cast<double>(target);
  // scoring.fmeasure, operation for operation.
  v.fmeasure = v.precision + v.recall > 0 ? 2 * v.precision * v.recall / (v.precision + v.recall) : 0.0;
  return v;
}

// The size of the multiset intersection of two id sequences whose ids are below `vocab`.
int64_t multiset_overlap(std::span<const uint32_t> a, std::span<const uint32_t> b, size_t vocab,
                         std::vector<int>& counts) {
  counts.assign(vocab, 0);
  for (uint32_t id : a) ++counts[id];
  int64_t hits = 0;
  for (uint32_t id : b) {
    if (counts[id] > 0) {
      ++hits;
      --counts[id];
    }
  }
  return hits;
}

// _score_ngrams(_create_ngrams(target, n), _create_ngrams(prediction, n)). An n-gram's id is interned from its
// (n-1)-gram prefix's id and its last token, level by level, so equal n-grams get equal ids.
RougeValue score_ngrams(std::span<const uint32_t> target, std::span<const uint32_t> prediction, int n, Workspace& ws) {
  const size_t nt = target.size() >= static_cast<size_t>(n) ? target.size() - n + 1 : 0;
  const size_t np = prediction.size() >= static_cast<size_t>(n) ? prediction.size() - n + 1 : 0;
  ws.ngram_a.assign(target.begin(), target.begin() + nt);
  ws.ngram_b.assign(prediction.begin(), prediction.begin() + np);
  size_t vocab = ws.local_count;
  for (int k = 1; k < n; ++k) {
    ws.ngram_ids.clear();
    auto intern = [&](std::vector<uint32_t>& level, std::span<const uint32_t> tokens) {
      for (size_t i = 0; i < level.size(); ++i) {
        const uint64_t key = (static_cast<uint64_t>(level[i]) << 32) | tokens[i + k];
        level[i] = ws.ngram_ids.try_emplace(key, static_cast<uint32_t>(ws.ngram_ids.size())).first->second;
      }
    };
    intern(ws.ngram_a, target);
    intern(ws.ngram_b, prediction);
    vocab = ws.ngram_ids.size();
  }
  const int64_t hits = multiset_overlap(ws.ngram_a, ws.ngram_b, vocab, ws.counts_a);
  return make_value(hits, std::max<int64_t>(static_cast<int64_t>(np), 1),
                    std::max<int64_t>(static_cast<int64_t>(nt), 1));
}

// The length of a longest common subsequence, on one rolling row over `b`.
uint32_t lcs_length(std::span<const uint32_t> a, std::span<const uint32_t> b, std::vector<uint32_t>& row) {
  row.assign(b.size() + 1, 0);
  for (uint32_t x : a) {
    uint32_t diagonal = 0;  // row[j - 1] of the previous row
    for (size_t j = 1; j <= b.size(); ++j) {
      const uint32_t up = row[j];
      row[j] = x == b[j - 1] ? diagonal + 1 : std::max(up, row[j - 1]);
      diagonal = up;
    }
  }
  return row[b.size()];
}

// _score_lcs.
RougeValue score_lcs(std::span<const uint32_t> target, std::span<const uint32_t> prediction, Workspace& ws) {
  if (target.empty() || prediction.empty()) return {};
  const uint32_t lcs = lcs_length(target, prediction, ws.row);
  return make_value(lcs, static_cast<int64_t>(prediction.size()), static_cast<int64_t>(target.size()));
}

// lcs_ind: marks in `in_union` the indices of `ref` on the LCS that rouge-score's _backtrack_norec reads out of the
// full table (ties: up/left as it chooses), so that the union matches its choice.
void mark_lcs(std::span<const uint32_t> ref, std::span<const uint32_t> can, Workspace& ws) {
  if (ref.empty() || can.empty()) return;
  const size_t cols = can.size() + 1;
  ws.table.assign((ref.size() + 1) * cols, 0);
  uint32_t* t = ws.table.data();
  for (size_t i = 1; i <= ref.size(); ++i) {
    for (size_t j = 1; j <= can.size(); ++j) {
      t[i * cols + j] = ref[i - 1] == can[j - 1] ? t[(i - 1) * cols + j - 1] + 1
                                                 : std::max(t[(i - 1) * cols + j], t[i * cols + j - 1]);
    }
  }
  size_t i = ref.size(), j = can.size();
  while (i > 0 && j > 0) {
    if (ref[i - 1] == can[j - 1]) {
      ws.in_union[i - 1] = 1;
      --i;
      --j;
    } else if (t[i * cols + j - 1] > t[(i - 1) * cols + j]) {
      --j;
    } else {
      --i;
    }
  }
}

std::span<const uint32_t> sentence(const Tokenized& text, const std::vector<uint32_t>& ids, size_t k) {
  const size_t begin = text.sentence_starts[k];
  const size_t end = k + 1 < text.sentence_starts.size() ? text.sentence_starts[k + 1] : ids.size();
  return std::span<const uint32_t>(ids).subspan(begin, end - begin);
}

// _summary_level_lcs: per reference sentence, the union of its LCS with each candidate sentence; a token of the union
// counts as a hit while both summaries still have an unmatched occurrence of it (ROUGE-1.5.5's no double counting).
RougeValue score_summary_lcs(const Tokenized& target, const std::vector<uint32_t>& t_ids, const Tokenized& prediction,
                             const std::vector<uint32_t>& p_ids, Workspace& ws) {
  if (t_ids.empty() || p_ids.empty()) return {};
  ws.counts_a.assign(ws.local_count, 0);
  ws.counts_b.assign(ws.local_count, 0);
  for (uint32_t id : t_ids) ++ws.counts_a[id];
  for (uint32_t id : p_ids) ++ws.counts_b[id];
  int64_t hits = 0;
  for (size_t r = 0; r < target.sentence_starts.size(); ++r) {
    const auto ref = sentence(target, t_ids, r);
    ws.in_union.assign(ref.size(), 0);
    for (size_t c = 0; c < prediction.sentence_starts.size(); ++c) mark_lcs(ref, sentence(prediction, p_ids, c), ws);
    for (size_t i = 0; i < ref.size(); ++i) {
      const uint32_t tok = ref[i];
      if (ws.in_union[i] && ws.counts_b[tok] > 0 && ws.counts_a[tok] > 0) {
        ++hits;
        --ws.counts_b[tok];
        --ws.counts_a[tok];
      }
    }
  }
  return make_value(hits, static_cast<int64_t>(p_ids.size()), static_cast<int64_t>(t_ids.size()));
}

// RougeScorer.score on two tokenized texts.
RougeScores score_pair(const Tokenized& target, const Tokenized& prediction, const std::vector<RougeType>& types,
                       Workspace& ws) {
  ws.begin_pair();
  std::vector<uint32_t> t_ids(target.ids.size()), p_ids(prediction.ids.size());
  for (size_t i = 0; i < t_ids.size(); ++i) t_ids[i] = ws.local_id(target.ids[i]);
  for (size_t i = 0; i < p_ids.size(); ++i) p_ids[i] = ws.local_id(prediction.ids[i]);
  RougeScores scores;
  for (const RougeType& type : types) {
    switch (type.kind) {
      case Kind::kNgram: scores[type.name] = score_ngrams(t_ids, p_ids, type.n, ws); break;
      case Kind::kLcs: scores[type.name] = score_lcs(t_ids, p_ids, ws); break;
      case Kind::kSummaryLcs: scores[type.name] = score_summary_lcs(target, t_ids, prediction, p_ids, ws); break;
    }
  }
  return scores;
}

RougeScores score_multi(const std::vector<std::string>& targets, const std::string& prediction,
                        const std::vector<RougeType>& types, bool use_stemmer, Workspace& ws) {
  if (targets.empty() && !types.empty()) throw DataError("rouge: a prediction with no targets to score against");
  const Tokenized p = tokenize(prediction, use_stemmer, ws);
  RougeScores best;
  for (size_t k = 0; k < targets.size(); ++k) {
    const RougeScores scores = score_pair(tokenize(targets[k], use_stemmer, ws), p, types, ws);
    for (const auto& [name, value] : scores) {
      auto it = best.find(name);
      if (k == 0 || value.fmeasure > it->second.fmeasure) best[name] = value;  // numpy.argmax: the first maximum
    }
  }
  return best;
}

}  // namespace

RougeScores rouge_score(const std::string& target, const std::string& prediction, const RougeOptions& options) {
  const std::vector<RougeType> types = parse_types(options);
  Workspace& ws = workspace();
  ws.bound_caches();
  return score_pair(tokenize(target, options.use_stemmer, ws), tokenize(prediction, options.use_stemmer, ws), types,
                    ws);
}

RougeScores rouge_score_multi(const std::vector<std::string>& targets, const std::string& prediction,
                              const RougeOptions& options) {
  const std::vector<RougeType> types = parse_types(options);
  Workspace& ws = workspace();
  ws.bound_caches();
  return score_multi(targets, prediction, types, options.use_stemmer, ws);
}

RougeScores corpus_rouge(const std::vector<std::vector<std::string>>& refs, const std::vector<std::string>& hyps,
                         const RougeOptions& options) {
  if (refs.size() != hyps.size()) {
    throw DataError(fmt::format("corpus_rouge: {} reference lists for {} hypotheses", refs.size(), hyps.size()));
  }
  if (hyps.empty()) throw DataError("corpus_rouge: no sentence pairs to score");
  const std::vector<RougeType> types = parse_types(options);
  Workspace& ws = workspace();
  RougeScores sums;
  for (size_t i = 0; i < hyps.size(); ++i) {
    if (refs[i].empty()) throw DataError(fmt::format("corpus_rouge: pair {} has no reference", i));
    ws.bound_caches();
    for (const auto& [name, v] : score_multi(refs[i], hyps[i], types, options.use_stemmer, ws)) {
      RougeValue& sum = sums[name];
      sum.precision += v.precision;
      sum.recall += v.recall;
      sum.fmeasure += v.fmeasure;
    }
  }
  const auto n = static_cast<double>(hyps.size());
  for (auto& [name, sum] : sums) sum = {sum.precision / n, sum.recall / n, sum.fmeasure / n};
  return sums;
}

}  // namespace troupe::metrics
