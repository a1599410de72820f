// JSONL datasets for fine-tuning, tokenized with a BpeTokenizer: SFT ({"prompt", "response"}, or a conversation
// {"messages": [...]}) and preference pairs ({"prompt", "chosen", "rejected"} as text or as TRL's conversational
// lists of messages, or pre-tokenised {"prompt_ids", "chosen_ids", "rejected_ids"}), the collation of examples into
// padded (B, L) tensors with the untrained tokens masked out of the labels, and a seeded, resumable shuffling epoch
// iterator. Conversations go through a chat template (data/chat_data.h says which spans are trained). Not
// streaming: a dataset is held in memory as token ids.
#pragma once

#include <ATen/core/Tensor.h>

#include <array>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "tokenizers/bpe_tokenizer.h"

namespace troupe::tokenizers {
class ChatTemplate;
}  // namespace troupe::tokenizers

namespace troupe::data {

// Label value ignored by the loss (torch's cross_entropy ignore_index default).
inline constexpr int64_t kIgnoreIndex = -100;

enum class Overlong {
  kTruncate,  // shorten the example to max_length (see below) and keep it
  kDrop,      // leave the example out
};
constexpr auto config_names(Overlong) {
  return std::array{std::pair{Overlong::kTruncate, "truncate"}, std::pair{Overlong::kDrop, "drop"}};
}

// How examples are built. Shared by SFT and preference data.
//
// Truncation (Overlong::kTruncate) of prompt P and response R (for preference data R is the longer of chosen
// and rejected; both are cut to the same budget and share the prompt) when |P| + |R| > max_length:
//   prompt keeps its LAST p = min(|P|, max(max_length - |R|, max_prompt_length)) tokens (the text right before
//   the response matters most), then the response keeps its FIRST max_length - p tokens (losing the EOS, as
//   TRL's right truncation does). Since max_prompt_length < max_length, a response always keeps >= 1 token:
//   an example is never silently left with nothing to learn.
// Example: max_length 8, max_prompt_length 4, |P| = 10, |R| = 10 -> the prompt's last 4 + the response's first 4.
// A conversation's P is everything before its last assistant turn (earlier turns keep their loss mask, cut with
// them) and R is that turn.
//
// Conversations (SFT {"messages": [...]}; preference lines whose prompt, or chosen when there is no prompt, is a list
// of messages) are rendered by `chat_template`; each rendered piece is tokenized on its own and the ids concatenated
// (as TRL tokenizes prompt and completion separately), with every special token's text becoming that token whatever
// allow_special says, and no eos_id appended (the template writes its own end-of-turn text).
struct TextDatasetOptions {
  std::string prompt_field = "prompt";
  std::string response_field = "response";  // SFT
  std::string chosen_field = "chosen";      // preference
  std::string rejected_field = "rejected";  // preference
  std::optional<int> eos_id;                // appended to every response (chosen, rejected); see eos_id_of()
  int64_t max_length = 1024;                // prompt + response tokens (incl. EOS); 0 = no limit
  int64_t max_prompt_length = 0;            // prompt budget when truncating; 0 = max_length / 2
  Overlong overlong = Overlong::kTruncate;
  bool allow_special = false;  // special-token text -> its id (else encoded as ordinary text)
  int threads = 0;             // encoding threads (0 = all cores)
  int64_t vocab_size = 0;      // preference ids form: every id must lie in [0, vocab_size) (0 = only >= 0)
  std::shared_ptr<const tokenizers::ChatTemplate> chat_template;  // renders conversations (null: they are errors)
  std::string chat_template_key = "data.chat_template";           // the setting a ConfigError tells the user to set
};

// <|endoftext|>'s id when the tokenizer has it (GPT-2: 50256), else std::nullopt.
std::optional<int> eos_id_of(const tokenizers::BpeTokenizer& tok);

// Counts for the caller to log. Lines that are blank are skipped and not counted.
struct TextDatasetStats {
  int64_t lines = 0;      // non-blank lines read
  int64_t examples = 0;   // examples kept (including truncated ones)
  int64_t truncated = 0;  // kept but shortened
  int64_t dropped = 0;    // left out for being longer than max_length
  int64_t tokens = 0;     // ids over kept examples after truncation (prompt + response; + chosen + rejected)
};

struct SftExample {
  std::vector<int> prompt;    // no loss, except where prompt_loss is 1
  std::vector<int> response;  // loss; a text line's ends with eos_id unless truncated or eos_id is unset
  // Empty (the whole prompt untrained), or one entry per prompt token, 1 where it carries a loss: a conversation's
  // earlier assistant turns.
  std::vector<uint8_t> prompt_loss;
};

struct PreferenceExample {
  std::vector<int> prompt;
  std::vector<int> chosen;  // ends with eos_id unless truncated or eos_id is unset
  std::vector<int> rejected;
};

struct SftDataset {
  std::vector<SftExample> examples;
  TextDatasetStats stats;
};

struct PreferenceDataset {
  std::vector<PreferenceExample> examples;
  TextDatasetStats stats;
};

// Calls fn(object, where, line) for every non-blank line of the JSONL file `path` in order (a trailing '\r' is
// dropped), `where` being "file:line", until fn returns false. IoError "cannot open <what> <path>" (or "cannot read")
// when the file fails; DataError naming file:line for invalid JSON or a line that is not a JSON object. Every JSONL
// reader uses it.
void for_each_jsonl_object(
    const std::filesystem::path& path, const std::string& what,
    const std::function<bool(const nlohmann::json& object, const std::string& where, int64_t line)>& fn);
// The same with each object's keys in file order (what a chat template iterating a message's keys needs).
void for_each_jsonl_ordered(
    const std::filesystem::path& path, const std::string& what,
    const std::function<bool(const nlohmann::ordered_json& object, const std::string& where, int64_t line)>& fn);

// Read one JSON object per line (blank lines skipped). DataError naming "file:line" for a malformed line, a
// non-object, a missing field, a field that is not a string, or a response that encodes to no token (empty
// with no eos_id); DataError naming the file when no example remains; IoError when it cannot be read.
// ConfigError for bad options (max_length < 0, max_prompt_length >= max_length), and naming "file:line" and
// options.chat_template_key for a conversation without a chat template. SFT files and preference files may mix
// conversation lines with text lines; the errors of conversations are data/chat_data.h's.
SftDataset load_sft_jsonl(const tokenizers::BpeTokenizer& tok, const std::filesystem::path& path,
                          const TextDatasetOptions& options);
PreferenceDataset load_preference_jsonl(const tokenizers::BpeTokenizer& tok, const std::filesystem::path& path,
                                        const TextDatasetOptions& options);

// Preference pairs where a line may instead give pre-tokenised JSON integer arrays under "<field>_ids"
// ("prompt_ids", "chosen_ids", "rejected_ids" with the default field names), e.g.
//   {"prompt_ids": [3, 1], "chosen_ids": [3, 5, 1, 6], "rejected_ids": [0, 5, 2, 2]}
// A line uses one form for all three fields (ids when it has any "<field>_ids" key); files may mix lines of both
// forms. Ids lines are taken verbatim: NO eos_id is appended (a fixed-length response is scored exactly as given,
// as the tiny-vocabulary exact-evaluation experiments need), but they are truncated like text lines. `tok` may be
// null when every line uses ids. DataError naming "file:line" for: a text line without a tokenizer, a line mixing
// the forms, a missing "<field>_ids", a value that is not an array of integers, an id outside [0, vocab_size)
// (options.vocab_size; or negative when it is 0), an empty prompt_ids (its first token would have no context) or
// an empty chosen_ids/rejected_ids.
PreferenceDataset load_preference_jsonl(const tokenizers::BpeTokenizer* tok, const std::filesystem::path& path,
                                        const TextDatasetOptions& options);

// A padded batch for a causal LM. Labels are aligned with input_ids (Hugging Face convention): the loss at
// position t compares logits[:, t - 1] with labels[:, t], so shift inside the loss. Prompt tokens marked in an
// example's prompt_loss are labelled like response tokens.
// Example (gpt2, prompt "Hello,", response " world", eos 50256, padded to L = 5):
//   input_ids      = [15496,   11,  995, 50256, pad]
//   attention_mask = [    1,    1,    1,     1,   0]
//   labels         = [ -100, -100,  995, 50256, -100]
struct TextBatch {
  at::Tensor input_ids;       // (B, L) int64, right-padded with pad_id
  at::Tensor attention_mask;  // (B, L) int64, 1 on real tokens, 0 on padding
  at::Tensor labels;          // (B, L) int64, the ids on trained tokens, kIgnoreIndex on the rest and padding
};

// Chosen and rejected sequences padded to one length L (the longest of either), so a DPO or reward-model step
// can run them as one (2B, L) forward pass with torch::cat; row b of both belongs to pair b.
struct PreferenceBatch {
  TextBatch chosen;    // prompt + chosen
  TextBatch rejected;  // prompt + rejected
};

// ConfigError when examples is empty. L is the longest sequence in the batch.
TextBatch collate_sft(const std::vector<SftExample>& examples, int64_t pad_id);

// SFT examples packed into rows of at most `capacity` positions, ready for a shifted causal-LM loss: an example of
// n = prompt + response tokens takes n − 1 consecutive positions (inputs ids[0, n−1), targets ids[1, n) with the
// untrained prompt tokens' targets kIgnoreIndex), placed first-fit in example order. positions restart at 0 for every
// example and segment_ids (example index + 1; 0 = the row's padding) keep examples from attending to each other
// (models::GptInput::segment_ids). The loss over the targets equals the padded batch's (collate_sft) token for
// token. Example (capacity 6, examples [p1 r1 r2] and [p2 r3], r = response):
//   inputs     = [p1  r1  p2  pad pad pad]    (rows: 1, L = longest row = 3)
//   targets    = [r1  r2  r3  ...]            with ignore on padding
//   positions  = [0   1   0   ]
//   segment_ids= [1   1   2   ]
// ConfigError when examples is empty or an example is longer than capacity + 1 tokens.
struct PackedSftBatch {
  at::Tensor inputs;       // (R, L) int64, pad_id on padding
  at::Tensor targets;      // (R, L) int64, kIgnoreIndex on untrained prompt targets and padding
  at::Tensor positions;    // (R, L) int64
  at::Tensor segment_ids;  // (R, L) int64
};
PackedSftBatch pack_sft(const std::vector<SftExample>& examples, int64_t capacity, int64_t pad_id);
PreferenceBatch collate_preference(const std::vector<PreferenceExample>& examples, int64_t pad_id);

// Where a shuffling iterator stands: plain integers for a checkpoint.
struct ShuffleState {
  uint64_t epoch = 0;   // epochs completed
  uint64_t cursor = 0;  // position inside this epoch's order

  std::vector<int64_t> to_vector() const;  // {epoch, cursor}
  static ShuffleState from_vector(const std::vector<int64_t>& v);
  bool operator==(const ShuffleState& o) const { return epoch == o.epoch && cursor == o.cursor; }
};

// Batches of example indices, epoch after epoch. Epoch e visits all n indices once in an order that depends only
// on (seed, e) (Fisher-Yates over a SplitMix64 stream, identical on every platform), so restoring
// {epoch, cursor} reproduces the remaining batches exactly. A batch never straddles epochs: the last one of an
// epoch holds the remainder, or is skipped when drop_last is set.
class EpochShuffler {
 public:
  // ConfigError when n == 0, batch_size <= 0, or drop_last with batch_size > n.
  EpochShuffler(uint64_t n, int64_t batch_size, uint64_t seed, bool shuffle = true, bool drop_last = false);

  // Indices into the dataset; never empty.
  std::vector<int64_t> next();
  uint64_t batches_per_epoch() const;
  uint64_t epoch() const { return state_.epoch; }
  ShuffleState state() const { return state_; }
  // DataError when the cursor is past the end of an epoch.
  void restore(const ShuffleState& state);
  // The visiting order of epoch e (a permutation of 0..n-1, or the identity without shuffle).
  std::vector<int64_t> order(uint64_t epoch) const;

 private:
  uint64_t n_;
  int64_t batch_size_;
  uint64_t seed_;
  bool shuffle_;
  bool drop_last_;
  ShuffleState state_;
  std::vector<int64_t> order_;  // of state_.epoch
  uint64_t order_epoch_ = ~0ULL;
};

// The steps every JSONL reader of this module builds an example with (data/ranking_data.cpp uses them too).
namespace detail {
// ConfigError for options that cannot work (max_length < 0, max_prompt_length >= max_length).
void validate_options(const TextDatasetOptions& o);
// Appends eos_id (when set) to a text response; DataError naming `where` and `field` when it is then empty.
void finish_response(std::vector<int>& ids, const TextDatasetOptions& o, const std::string& where,
                     const std::string& field);
enum class Fit { kFits, kTruncated, kDropped };
// Applies the truncation policy of TextDatasetOptions to a prompt and its responses (all cut to one budget); the
// prompt's loss mask, when given, loses the same head as the prompt.
Fit fit_example(std::vector<int>& prompt, std::vector<std::vector<int>*> responses, const TextDatasetOptions& o,
                std::vector<uint8_t>* prompt_loss = nullptr);
// Counts one example of `tokens` ids into `stats` as kept, truncated or dropped.
void count_example(TextDatasetStats& stats, Fit fit, int64_t tokens);
}  // namespace detail

}  // namespace troupe::data
