// K-wise rankings JSONL (what `troupe label` writes) for reward-model training and DPO: one record per line,
// tokenized like the preference pairs of data/text_datasets.h, and the preference pairs a ranking implies. Not the
// labelling tool, not the ranking loss (rlhf/preference_losses.h), not conversations (prompts and responses are text).
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "data/text_datasets.h"

namespace troupe::data {

// What a preference file holds: pairs {"prompt", "chosen", "rejected"} or rankings (below).
enum class PreferenceFormat { kPairs, kRankings };
constexpr auto config_names(PreferenceFormat) {
  return std::array{std::pair{PreferenceFormat::kPairs, "pairs"}, std::pair{PreferenceFormat::kRankings, "rankings"}};
}

// Which (better, worse) pairs a ranking implies; ties never make a pair.
//   all          every pair of responses with different ranks: the K(K-1)/2 pairs of a ranking without ties
//   best_vs_rest each response of the best rank against every response ranked below it (K-1 without ties)
//   adjacent     each response against every response of the next rank level down (K-1 without ties)
// Example ranks [1, 2, 1, 3] (responses a, b, c, d): all = (a,b) (a,d) (b,d) (c,b) (c,d); best_vs_rest =
// (a,b) (a,d) (c,b) (c,d); adjacent = (a,b) (b,d) (c,b).
enum class RankingPairs { kAll, kBestVsRest, kAdjacent };
constexpr auto config_names(RankingPairs) {
  return std::array{std::pair{RankingPairs::kAll, "all"}, std::pair{RankingPairs::kBestVsRest, "best_vs_rest"},
                    std::pair{RankingPairs::kAdjacent, "adjacent"}};
}

struct RankingExample {
  std::vector<int> prompt;
  std::vector<std::vector<int>> responses;  // K >= 2, each ending with eos_id unless truncated or eos_id is unset
  std::vector<int64_t> ranks;               // K: 1 = best, equal numbers = tie (only the order matters)
};

struct RankingDataset {
  std::vector<RankingExample> examples;  // one per kept record, in file order
  TextDatasetStats stats;                // lines, examples (= rankings kept), truncated, dropped, tokens
  int64_t skipped = 0;                   // records with "skipped": true (no ranks), left out
  int64_t all_tied = 0;                  // records whose responses all share one rank: no comparison, left out
  int64_t responses = 0;                 // responses over the kept rankings
  int64_t comparisons = 0;               // non-tied pairs over the kept rankings
};

// Reads rankings, one JSON object per non-blank line:
//   {"id": "...", "labeller": "<name>", "prompt": "<text>", "responses": ["<text>", ...],
//    "ranks": [1, 2, 1, 3], "ratings": [...], "flags": [...], "comment": "", "time": "...", "seconds": 12.5}
// Only prompt, responses and ranks are read (and "skipped"); the other keys are the labelling tool's and ignored.
// Several labellers' records for one prompt are separate rankings (each its own training element). A record with
// "skipped": true is counted and left out, as is one whose ranks are all equal. Responses get eos_id like preference
// responses; a ranking is truncated (its prompt and all K responses to one budget) or dropped as a pair is.
// DataError naming "file:line" for invalid JSON, a missing or non-string prompt, responses that are not an array of
// at least 2 strings, ranks that are not an array of as many integers >= 1 as there are responses, or a "skipped"
// that is not a boolean; DataError naming the file when no ranking remains; IoError when it cannot be read.
RankingDataset load_ranking_jsonl(const tokenizers::BpeTokenizer& tok, const std::filesystem::path& path,
                                  const TextDatasetOptions& options);

// The (better, worse) response indices `which` takes from `ranks` (see RankingPairs), ordered by the better
// index, then the worse one.
std::vector<std::pair<int, int>> ranking_pairs(const std::vector<int64_t>& ranks, RankingPairs which);

// Every ranking's pairs as preference examples, ranking after ranking (the prompt copied into each pair). Stats:
// examples and tokens count the pairs; lines, truncated and dropped are the rankings' own counts.
PreferenceDataset expand_rankings(const RankingDataset& data, RankingPairs which);

}  // namespace troupe::data
