// Implementation of data/ranking_data.h: record validation with file:line errors, encoding on all threads, and the
// pair expansion of a ranking.
#include "data/ranking_data.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <set>
#include <string_view>

#include "core/errors.h"
#include "data/chat_data.h"
#include "tokenizers/corpus.h"

namespace troupe::data {
namespace fs = std::filesystem;

namespace {

using json = nlohmann::json;

// One record's texts (prompt, then the K responses) and ranks, before encoding.
struct RankingRow {
  std::vector<std::string> texts;  // 1 + K
  std::vector<int64_t> ranks;      // K
  std::string where;               // "file:line"
};

const json& require(const json& obj, const std::string& key, const std::string& where) {
  const auto it = obj.find(key);
  if (it == obj.end()) throw DataError(where + ": missing field '" + key + "'");
  return *it;
}

std::string what_is(const json& v) { return v.is_number() ? "the number " + v.dump() : std::string(v.type_name()); }

std::vector<std::string> parse_responses(const json& obj, const std::string& where) {
  const json& v = require(obj, "responses", where);
  if (!v.is_array()) throw DataError(where + ": field 'responses' must be an array of strings, got " + what_is(v));
  if (v.size() < 2) {
    throw DataError(where + ": field 'responses' has " + std::to_string(v.size()) +
                    " entries: a ranking needs at least 2 responses");
  }
  std::vector<std::string> out;
  for (size_t k = 0; k < v.size(); ++k) {
    if (!v[k].is_string())
      throw DataError(where + ": field 'responses'[" + std::to_string(k) + "] must be a string, got " + what_is(v[k]));
    out.push_back(v[k].get<std::string>());
  }
  return out;
}

std::vector<int64_t> parse_ranks(const json& obj, size_t k_responses, const std::string& where) {
  const json& v = require(obj, "ranks", where);
  if (!v.is_array()) throw DataError(where + ": field 'ranks' must be an array of integers >= 1, got " + what_is(v));
  if (v.size() != k_responses) {
    throw DataError(where + ": field 'ranks' has " + std::to_string(v.size()) + " entries for " +
                    std::to_string(k_responses) + " responses: expected one rank per response");
  }
  std::vector<int64_t> out;
  for (size_t k = 0; k < v.size(); ++k) {
    const bool integer = v[k].is_number_integer();
    if (!integer || v[k].get<int64_t>() < 1) {
      throw DataError(where + ": field 'ranks'[" + std::to_string(k) + "] must be an integer >= 1 (1 = best), got " +
                      (integer ? v[k].dump() : what_is(v[k])));
    }
    out.push_back(v[k].get<int64_t>());
  }
  return out;
}

// Whether the record is marked skipped (no ranks to read). DataError when "skipped" is not a boolean.
bool is_skipped(const json& obj, const std::string& where) {
  const auto it = obj.find("skipped");
  if (it == obj.end()) return false;
  if (!it->is_boolean()) throw DataError(where + ": field 'skipped' must be true or false, got " + what_is(*it));
  return it->get<bool>();
}

bool all_tied(const std::vector<int64_t>& ranks) {
  return std::all_of(ranks.begin(), ranks.end(), [&](int64_t r) { return r == ranks.front(); });
}

// Reads and validates every record; counts skipped and all-tied ones into `out` and leaves them out.
std::vector<RankingRow> read_rows(const fs::path& path, RankingDataset& out) {
  std::vector<RankingRow> rows;
  for_each_jsonl_object(path, "rankings", [&](const json& obj, const std::string& where, int64_t) {
    ++out.stats.lines;
    if (is_skipped(obj, where)) {
      ++out.skipped;
      return true;
    }
    RankingRow row;
    const json& prompt = require(obj, "prompt", where);
    if (!prompt.is_string()) throw DataError(where + ": field 'prompt' must be a string, got " + what_is(prompt));
    row.texts.push_back(prompt.get<std::string>());
    for (std::string& r : parse_responses(obj, where)) row.texts.push_back(std::move(r));
    row.ranks = parse_ranks(obj, row.texts.size() - 1, where);
    row.where = where;
    if (all_tied(row.ranks)) {
      ++out.all_tied;
      return true;
    }
    rows.push_back(std::move(row));
    return true;
  });
  return rows;
}

// Truncates (or drops) an encoded ranking as options say, counts it, and keeps it unless dropped.
void keep(RankingExample ex, const TextDatasetOptions& options, RankingDataset& out) {
  std::vector<std::vector<int>*> responses;
  for (auto& r : ex.responses) responses.push_back(&r);
  const detail::Fit fit = detail::fit_example(ex.prompt, responses, options);
  auto tokens = static_cast<int64_t>(ex.prompt.size());
  for (const auto& r : ex.responses) tokens += static_cast<int64_t>(r.size());
  detail::count_example(out.stats, fit, tokens);
  if (fit == detail::Fit::kDropped) return;
  out.responses += static_cast<int64_t>(ex.responses.size());
  out.comparisons += static_cast<int64_t>(ranking_pairs(ex.ranks, RankingPairs::kAll).size());
  out.examples.push_back(std::move(ex));
}

void check_not_empty(const fs::path& path, const RankingDataset& data) {
  if (!data.examples.empty()) return;
  throw DataError(path.string() + ": no rankings to train on (" + std::to_string(data.stats.lines) +
                  " records: " + std::to_string(data.skipped) + " skipped, " + std::to_string(data.all_tied) +
                  " all tied, " + std::to_string(data.stats.dropped) + " longer than max_length and dropped)");
}

}  // namespace

RankingDataset load_ranking_jsonl(const tokenizers::BpeTokenizer& tok, const fs::path& path,
                                  const TextDatasetOptions& options) {
  detail::validate_options(options);
  RankingDataset out;
  const std::vector<RankingRow> rows = read_rows(path, out);
  std::vector<std::string_view> texts;
  for (const RankingRow& row : rows)
    for (const std::string& t : row.texts) texts.push_back(t);
  const std::set<std::string> allowed = options.allow_special ? special_token_texts(tok) : std::set<std::string>{};
  std::vector<std::vector<int>> ids = tokenizers::encode_batch(tok, texts, options.threads, allowed);
  size_t at = 0;
  for (const RankingRow& row : rows) {
    RankingExample ex;
    ex.prompt = std::move(ids[at++]);
    for (size_t k = 1; k < row.texts.size(); ++k) {
      ex.responses.push_back(std::move(ids[at++]));
      detail::finish_response(ex.responses.back(), options, row.where, "responses[" + std::to_string(k - 1) + "]");
    }
    ex.ranks = row.ranks;
    keep(std::move(ex), options, out);
  }
  check_not_empty(path, out);
  return out;
}

std::vector<std::pair<int, int>> ranking_pairs(const std::vector<int64_t>& ranks, RankingPairs which) {
  const int64_t best = ranks.empty() ? 0 : *std::min_element(ranks.begin(), ranks.end());
  // The rank level right below r (the smallest rank number greater than r), or r when there is none.
  auto next_level = [&](int64_t r) {
    int64_t next = r;
    for (int64_t s : ranks)
      if (s > r && (next == r || s < next)) next = s;
    return next;
  };
  std::vector<std::pair<int, int>> out;
  const auto K = static_cast<int>(ranks.size());
  for (int i = 0; i < K; ++i) {
    for (int j = 0; j < K; ++j) {
      const auto ri = ranks[static_cast<size_t>(i)];
      const auto rj = ranks[static_cast<size_t>(j)];
      if (ri >= rj) continue;  // not better (ties never pair)
      const bool take = which == RankingPairs::kAll || (which == RankingPairs::kBestVsRest && ri == best) ||
                        (which == RankingPairs::kAdjacent && rj == next_level(ri));
      if (take) out.emplace_back(i, j);
    }
  }
  return out;
}

PreferenceDataset expand_rankings(const RankingDataset& data, RankingPairs which) {
  PreferenceDataset out;
  out.stats.lines = data.stats.lines;
  out.stats.truncated = data.stats.truncated;
  out.stats.dropped = data.stats.dropped;
  for (const RankingExample& ex : data.examples) {
    for (const auto& [w, l] : ranking_pairs(ex.ranks, which)) {
      const auto& chosen = ex.responses[static_cast<size_t>(w)];
      const auto& rejected = ex.responses[static_cast<size_t>(l)];
      out.examples.push_back({ex.prompt, chosen, rejected});
      out.stats.tokens += static_cast<int64_t>(ex.prompt.size() + chosen.size() + rejected.size());
    }
  }
  out.stats.examples = static_cast<int64_t>(out.examples.size());
  return out;
}

}  // namespace troupe::data
