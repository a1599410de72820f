// Implementation of data/text_datasets.h: JSONL parsing with file:line errors, encoding on all threads,
// truncation, collation into padded tensors, and the SplitMix64 Fisher-Yates epoch order.
#include "data/text_datasets.h"

#include <torch/torch.h>

#include <algorithm>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>

#include "core/errors.h"
#include "core/seeding.h"
#include "data/chat_data.h"
#include "data/packing.h"
#include "tokenizers/corpus.h"

namespace troupe::data {
namespace fs = std::filesystem;

namespace {

using ojson = nlohmann::ordered_json;

template <class Json>
void for_each_jsonl(const fs::path& path, const std::string& what,
                    const std::function<bool(const Json& object, const std::string& where, int64_t line)>& fn) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IoError("cannot open " + what + " " + path.string());
  int64_t line_no = 0;
  for (std::string line; std::getline(in, line);) {
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    const std::string where = path.string() + ":" + std::to_string(line_no);
    Json obj;
    try {
      obj = Json::parse(line);
    } catch (const typename Json::exception& e) {  // syntax, or a number beyond double range (out_of_range)
      throw DataError(where + ": invalid JSON: " + e.what());
    }
    if (!obj.is_object()) throw DataError(where + ": expected a JSON object, got " + std::string(obj.type_name()));
    if (!fn(obj, where, line_no)) return;
  }
  if (in.bad()) throw IoError("cannot read " + what + " " + path.string());
}

}  // namespace

void for_each_jsonl_object(
    const fs::path& path, const std::string& what,
    const std::function<bool(const nlohmann::json& object, const std::string& where, int64_t line)>& fn) {
  for_each_jsonl<nlohmann::json>(path, what, fn);
}

void for_each_jsonl_ordered(
    const fs::path& path, const std::string& what,
    const std::function<bool(const ojson& object, const std::string& where, int64_t line)>& fn) {
  for_each_jsonl<ojson>(path, what, fn);
}

namespace {

// One line's texts to tokenize (or, for a preference ids line, its ids as given).
struct TextRow {
  std::vector<std::string> texts;     // SFT: prompt, response or a conversation's spans; preference: 3 fields
  std::vector<std::vector<int>> ids;  // one per text after encoding (or the ids form's three arrays)
  std::vector<uint8_t> trained;       // SFT: per text, 1 where it carries a loss
  bool chat = false;                  // rendered by the chat template
  bool is_ids = false;                // preference ids form
  int64_t line = 0;
};

const ojson& field_of(const ojson& obj, const std::string& key, const std::string& where) {
  const auto it = obj.find(key);
  if (it == obj.end()) throw DataError(where + ": missing field '" + key + "'");
  return *it;
}

std::string string_field(const ojson& obj, const std::string& key, const std::string& where) {
  const ojson& v = field_of(obj, key, where);
  if (!v.is_string()) throw DataError(where + ": field '" + key + "' must be a string, got " + v.type_name());
  return v.get<std::string>();
}

// SFT lines: {prompt, response} (response trained), or a conversation's spans from data/chat_data.h.
std::vector<TextRow> read_sft_rows(const fs::path& path, const TextDatasetOptions& o, int64_t& lines) {
  std::vector<TextRow> rows;
  for_each_jsonl_ordered(path, "dataset", [&](const ojson& obj, const std::string& where, int64_t line_no) {
    TextRow row;
    row.line = line_no;
    if (const auto messages = obj.find("messages"); messages != obj.end()) {
      const auto& tmpl = require_chat_template(o.chat_template.get(), where, "messages", o.chat_template_key);
      for (ChatSpan& span : assistant_spans(tmpl, *messages, where)) {
        row.texts.push_back(std::move(span.text));
        row.trained.push_back(span.trained ? 1 : 0);
      }
      row.chat = true;
    } else {
      row.texts = {string_field(obj, o.prompt_field, where), string_field(obj, o.response_field, where)};
      row.trained = {0, 1};
    }
    rows.push_back(std::move(row));
    ++lines;
    return true;
  });
  return rows;
}

// Encodes the texts of the text rows on all threads into row.ids: rendered conversations with every special token
// allowed, the rest as options.allow_special says. DataError at the first text row when `tok` is null.
void encode_rows(const tokenizers::BpeTokenizer* tok, std::vector<TextRow>& rows, const fs::path& path,
                 const TextDatasetOptions& options) {
  for (const bool chat : {false, true}) {
    std::vector<std::string_view> texts;
    std::vector<TextRow*> targets;
    for (TextRow& row : rows) {
      if (row.is_ids || row.chat != chat) continue;
      if (tok == nullptr) {
        throw DataError(path.string() + ":" + std::to_string(row.line) +
                        ": text fields need a tokenizer (data.tokenizer); or give prompt_ids/chosen_ids/rejected_ids");
      }
      for (const std::string& text : row.texts) texts.push_back(text);
      targets.push_back(&row);
    }
    if (targets.empty()) continue;
    const std::set<std::string> allowed =
        chat || options.allow_special ? special_token_texts(*tok) : std::set<std::string>{};
    std::vector<std::vector<int>> flat = tokenizers::encode_batch(*tok, texts, options.threads, allowed);
    size_t at = 0;
    for (TextRow* row : targets)
      for (size_t f = 0; f < row->texts.size(); ++f) row->ids.push_back(std::move(flat[at++]));
  }
}

// A JSON array of integers in [0, vocab_size) (vocab_size 0: only >= 0), else DataError naming where and key.
std::vector<int> parse_ids(const ojson& value, const std::string& where, const std::string& key, int64_t vocab_size) {
  if (!value.is_array())
    throw DataError(where + ": field '" + key + "' must be an array of integer ids, got " + value.type_name());
  const int64_t limit = vocab_size > 0 ? vocab_size : static_cast<int64_t>(std::numeric_limits<int>::max());
  std::vector<int> out;
  out.reserve(value.size());
  for (size_t i = 0; i < value.size(); ++i) {
    const ojson& v = value[i];
    if (!v.is_number_integer()) {
      throw DataError(where + ": field '" + key + "'[" + std::to_string(i) + "] must be an integer id, got " +
                      (v.is_number() ? std::string("a non-integer number ") + v.dump() : std::string(v.type_name())));
    }
    const auto id = v.get<int64_t>();
    if (id < 0 || id >= limit) {
      throw DataError(where + ": field '" + key + "'[" + std::to_string(i) + "] = " + std::to_string(id) +
                      " is outside the vocabulary [0, " + std::to_string(limit) + ")");
    }
    out.push_back(static_cast<int>(id));
  }
  return out;
}

// TRL's conversational preference forms: a prompt that is a list of messages, or (maybe_extract_prompt) no prompt
// and full conversations under chosen and rejected.
bool is_chat_preference(const ojson& obj, const std::vector<std::string>& fields) {
  const auto prompt = obj.find(fields[0]);
  if (prompt != obj.end()) return prompt->is_array();
  const auto chosen = obj.find(fields[1]);
  return chosen != obj.end() && chosen->is_array();
}

TextRow chat_preference_row(const ojson& obj, const std::vector<std::string>& fields, const std::string& where,
                            const TextDatasetOptions& o) {
  const bool has_prompt = obj.contains(fields[0]);
  const auto& tmpl =
      require_chat_template(o.chat_template.get(), where, has_prompt ? fields[0] : fields[1], o.chat_template_key);
  const ojson& chosen = field_of(obj, fields[1], where);
  const ojson& rejected = field_of(obj, fields[2], where);
  const SplitConversation split =
      has_prompt ? SplitConversation{obj[fields[0]], chosen, rejected} : extract_prompt(chosen, rejected, where);
  ChatPreferenceText text = render_preference(tmpl, split.prompt, split.chosen, split.rejected, where);
  TextRow row;
  row.texts = {std::move(text.prompt), std::move(text.chosen), std::move(text.rejected)};
  row.chat = true;
  return row;
}

// Reads preference lines, each all text fields, all "<field>_ids" fields, or a conversation.
std::vector<TextRow> read_preference_rows(const fs::path& path, const std::vector<std::string>& fields,
                                          const TextDatasetOptions& o, int64_t& lines) {
  std::vector<TextRow> rows;
  for_each_jsonl_ordered(path, "dataset", [&](const ojson& obj, const std::string& where, int64_t line_no) {
    TextRow row;
    for (const std::string& field : fields) row.is_ids = row.is_ids || obj.contains(field + "_ids");
    if (!row.is_ids && is_chat_preference(obj, fields)) {
      row = chat_preference_row(obj, fields, where, o);
    } else {
      for (const std::string& field : fields) {
        const std::string key = row.is_ids ? field + "_ids" : field;
        const std::string other = row.is_ids ? field : field + "_ids";
        if (obj.contains(other)) {
          throw DataError(where + ": both text and ids forms on one line ('" + other + "' next to '" + key +
                          "'): use prompt/chosen/rejected or prompt_ids/chosen_ids/rejected_ids");
        }
        if (!row.is_ids) {
          row.texts.push_back(string_field(obj, key, where));
          continue;
        }
        row.ids.push_back(parse_ids(field_of(obj, key, where), where, key, o.vocab_size));
        if (row.ids.back().empty()) {
          throw DataError(where + ": field '" + key + "' is empty" +
                          (&field == &fields[0] ? std::string(": the first token would have no context")
                                                : std::string(": no token to train on")));
        }
      }
    }
    row.line = line_no;
    rows.push_back(std::move(row));
    ++lines;
    return true;
  });
  return rows;
}

}  // namespace

// The example-building steps data/text_datasets.h declares in detail (shared with data/ranking_data.cpp).
namespace detail {

namespace {

int64_t prompt_budget(const TextDatasetOptions& o) {
  return o.max_prompt_length > 0 ? o.max_prompt_length : o.max_length / 2;
}

}  // namespace

void validate_options(const TextDatasetOptions& o) {
  if (o.max_length < 0)
    throw ConfigError("dataset: max_length must be >= 0 (0 = no limit), got " + std::to_string(o.max_length));
  if (o.max_prompt_length < 0) throw ConfigError("dataset: max_prompt_length must be >= 0");
  if (o.max_length > 0 && prompt_budget(o) >= o.max_length) {
    throw ConfigError("dataset: max_prompt_length (" + std::to_string(prompt_budget(o)) +
                      ") must be below max_length (" + std::to_string(o.max_length) + ") so a response keeps a token");
  }
}

void finish_response(std::vector<int>& ids, const TextDatasetOptions& o, const std::string& where,
                     const std::string& field) {
  if (o.eos_id) ids.push_back(*o.eos_id);
  if (ids.empty())
    throw DataError(where + ": field '" + field + "' is empty and no eos_id is set: no token to train on");
}

Fit fit_example(std::vector<int>& prompt, std::vector<std::vector<int>*> responses, const TextDatasetOptions& o,
                std::vector<uint8_t>* prompt_loss) {
  int64_t longest = 0;
  for (const auto* r : responses) longest = std::max<int64_t>(longest, static_cast<int64_t>(r->size()));
  const auto p_len = static_cast<int64_t>(prompt.size());
  if (o.max_length == 0 || p_len + longest <= o.max_length) return Fit::kFits;
  if (o.overlong == Overlong::kDrop) return Fit::kDropped;
  const int64_t keep_prompt = std::min(p_len, std::max(o.max_length - longest, prompt_budget(o)));
  prompt.erase(prompt.begin(), prompt.begin() + (p_len - keep_prompt));  // keep the prompt's tail
  if (prompt_loss != nullptr && !prompt_loss->empty()) {
    prompt_loss->erase(prompt_loss->begin(), prompt_loss->begin() + (p_len - keep_prompt));
    if (std::find(prompt_loss->begin(), prompt_loss->end(), 1) == prompt_loss->end()) prompt_loss->clear();
  }
  const int64_t budget = o.max_length - keep_prompt;
  for (auto* r : responses)
    if (static_cast<int64_t>(r->size()) > budget) r->resize(static_cast<size_t>(budget));  // keep the head
  return Fit::kTruncated;
}

void count_example(TextDatasetStats& stats, Fit fit, int64_t tokens) {
  if (fit == Fit::kDropped) {
    ++stats.dropped;
    return;
  }
  if (fit == Fit::kTruncated) ++stats.truncated;
  ++stats.examples;
  stats.tokens += tokens;
}

}  // namespace detail

namespace {

using detail::Fit;

// A rendered completion must leave a token to train on (nothing is appended to it).
void check_rendered(const std::vector<int>& ids, const std::string& where, const std::string& field) {
  if (ids.empty()) throw DataError(where + ": field '" + field + "' renders to no token: nothing to train on");
}

// The SFT example of a conversation's encoded spans (the last one is its last assistant turn): the spans before it
// are the prompt, with the trained ones (earlier assistant turns) marked in prompt_loss.
SftExample chat_example(TextRow& row, const std::string& where) {
  SftExample ex;
  const size_t last = row.ids.size() - 1;
  bool earlier_loss = false;
  for (size_t k = 0; k < last; ++k) {
    ex.prompt.insert(ex.prompt.end(), row.ids[k].begin(), row.ids[k].end());
    ex.prompt_loss.insert(ex.prompt_loss.end(), row.ids[k].size(), row.trained[k]);
    earlier_loss = earlier_loss || (row.trained[k] != 0 && !row.ids[k].empty());
  }
  if (!earlier_loss) ex.prompt_loss.clear();
  ex.response = std::move(row.ids[last]);
  check_rendered(ex.response, where, "messages");
  return ex;
}

void check_not_empty(const fs::path& path, const TextDatasetStats& stats) {
  if (stats.examples > 0) return;
  if (stats.lines == 0) throw DataError(path.string() + ": no examples (the file is empty or only blank lines)");
  throw DataError(path.string() + ": no examples left: all " + std::to_string(stats.dropped) +
                  " were longer than max_length and dropped");
}

// Whether prompt token k of `ex` carries a loss. DataError when its prompt_loss has the wrong length.
bool prompt_trained(const SftExample& ex, size_t k) {
  if (ex.prompt_loss.empty()) return false;
  if (ex.prompt_loss.size() != ex.prompt.size()) {
    throw DataError("sft example: prompt_loss has " + std::to_string(ex.prompt_loss.size()) + " entries for " +
                    std::to_string(ex.prompt.size()) + " prompt tokens");
  }
  return ex.prompt_loss[k] != 0;
}

// Fills rows of (B, L) tensors from sequences (prompt + response): labels on the responses and on the prompt tokens
// that prompt_losses[b] (null or empty: none) marks.
TextBatch fill_batch(const std::vector<const std::vector<int>*>& prompts,
                     const std::vector<const std::vector<int>*>& responses,
                     const std::vector<const SftExample*>& prompt_losses, int64_t L, int64_t pad_id) {
  const auto B = static_cast<int64_t>(prompts.size());
  TextBatch batch;
  batch.input_ids = torch::full({B, L}, pad_id, torch::kInt64);
  batch.attention_mask = torch::zeros({B, L}, torch::kInt64);
  batch.labels = torch::full({B, L}, kIgnoreIndex, torch::kInt64);
  int64_t* ids = batch.input_ids.data_ptr<int64_t>();
  int64_t* mask = batch.attention_mask.data_ptr<int64_t>();
  int64_t* labels = batch.labels.data_ptr<int64_t>();
  for (int64_t b = 0; b < B; ++b) {
    int64_t t = b * L;
    const auto& prompt = *prompts[static_cast<size_t>(b)];
    const SftExample* sft = prompt_losses.empty() ? nullptr : prompt_losses[static_cast<size_t>(b)];
    for (size_t k = 0; k < prompt.size(); ++k, ++t) {
      ids[t] = prompt[k];
      mask[t] = 1;
      if (sft != nullptr && prompt_trained(*sft, k)) labels[t] = prompt[k];
    }
    for (int id : *responses[static_cast<size_t>(b)]) {
      ids[t] = id;
      mask[t] = 1;
      labels[t++] = id;
    }
  }
  return batch;
}

// Uniform in [0, n) from a SplitMix64 stream, unbiased (rejection).
uint64_t uniform(uint64_t& state, uint64_t n) {
  const uint64_t threshold = (0 - n) % n;
  for (;;) {
    const uint64_t r = core::splitmix64(state);
    state += 0x9e3779b97f4a7c15ULL;
    if (r >= threshold) return r % n;
  }
}

}  // namespace

std::optional<int> eos_id_of(const tokenizers::BpeTokenizer& tok) {
  const auto& specials = tok.spec().special_tokens;
  const auto it = specials.find("<|endoftext|>");
  return it == specials.end() ? std::nullopt : std::optional<int>(it->second);
}

SftDataset load_sft_jsonl(const tokenizers::BpeTokenizer& tok, const fs::path& path,
                          const TextDatasetOptions& options) {
  detail::validate_options(options);
  SftDataset out;
  std::vector<TextRow> rows = read_sft_rows(path, options, out.stats.lines);
  encode_rows(&tok, rows, path, options);
  for (TextRow& row : rows) {
    const std::string where = path.string() + ":" + std::to_string(row.line);
    SftExample ex = row.chat ? chat_example(row, where) : SftExample{std::move(row.ids[0]), std::move(row.ids[1]), {}};
    if (!row.chat) detail::finish_response(ex.response, options, where, options.response_field);
    const Fit fit = detail::fit_example(ex.prompt, {&ex.response}, options, &ex.prompt_loss);
    detail::count_example(out.stats, fit, static_cast<int64_t>(ex.prompt.size() + ex.response.size()));
    if (fit != Fit::kDropped) out.examples.push_back(std::move(ex));
  }
  check_not_empty(path, out.stats);
  return out;
}

PreferenceDataset load_preference_jsonl(const tokenizers::BpeTokenizer& tok, const fs::path& path,
                                        const TextDatasetOptions& options) {
  return load_preference_jsonl(&tok, path, options);
}

PreferenceDataset load_preference_jsonl(const tokenizers::BpeTokenizer* tok, const fs::path& path,
                                        const TextDatasetOptions& options) {
  detail::validate_options(options);
  const std::vector<std::string> fields{options.prompt_field, options.chosen_field, options.rejected_field};
  PreferenceDataset out;
  std::vector<TextRow> rows = read_preference_rows(path, fields, options, out.stats.lines);
  encode_rows(tok, rows, path, options);
  for (TextRow& row : rows) {
    const std::string where = path.string() + ":" + std::to_string(row.line);
    PreferenceExample ex{std::move(row.ids[0]), std::move(row.ids[1]), std::move(row.ids[2])};
    if (row.chat) {  // the template wrote the end of turn: no EOS (see the header)
      check_rendered(ex.chosen, where, options.chosen_field);
      check_rendered(ex.rejected, where, options.rejected_field);
    } else if (!row.is_ids) {  // ids lines are verbatim: no EOS (see the header)
      detail::finish_response(ex.chosen, options, where, options.chosen_field);
      detail::finish_response(ex.rejected, options, where, options.rejected_field);
    }
    const Fit fit = detail::fit_example(ex.prompt, {&ex.chosen, &ex.rejected}, options);
    detail::count_example(out.stats, fit,
                          static_cast<int64_t>(ex.prompt.size() + ex.chosen.size() + ex.rejected.size()));
    if (fit != Fit::kDropped) out.examples.push_back(std::move(ex));
  }
  check_not_empty(path, out.stats);
  return out;
}

TextBatch collate_sft(const std::vector<SftExample>& examples, int64_t pad_id) {
  if (examples.empty()) throw ConfigError("collate_sft: no examples");
  std::vector<const std::vector<int>*> prompts, responses;
  std::vector<const SftExample*> prompt_losses;
  int64_t L = 0;
  for (const auto& ex : examples) {
    prompts.push_back(&ex.prompt);
    responses.push_back(&ex.response);
    prompt_losses.push_back(&ex);
    L = std::max<int64_t>(L, static_cast<int64_t>(ex.prompt.size() + ex.response.size()));
  }
  return fill_batch(prompts, responses, prompt_losses, L, pad_id);
}

PackedSftBatch pack_sft(const std::vector<SftExample>& examples, int64_t capacity, int64_t pad_id) {
  if (examples.empty()) throw ConfigError("pack_sft: no examples");
  std::vector<int64_t> needs;  // an example of n tokens: n − 1 inputs (its last token predicts nothing)
  for (const SftExample& ex : examples)
    needs.push_back(std::max<int64_t>(0, static_cast<int64_t>(ex.prompt.size() + ex.response.size()) - 1));
  const FirstFit fit = first_fit(needs, capacity);
  const auto R = static_cast<int64_t>(fit.row_lengths.size());
  const int64_t L = std::max<int64_t>(1, *std::max_element(fit.row_lengths.begin(), fit.row_lengths.end()));
  PackedSftBatch out;
  out.inputs = torch::full({R, L}, pad_id, torch::kInt64);
  out.targets = torch::full({R, L}, kIgnoreIndex, torch::kInt64);
  out.positions = torch::zeros({R, L}, torch::kInt64);
  out.segment_ids = torch::zeros({R, L}, torch::kInt64);
  int64_t* inputs = out.inputs.data_ptr<int64_t>();
  int64_t* targets = out.targets.data_ptr<int64_t>();
  int64_t* positions = out.positions.data_ptr<int64_t>();
  int64_t* segments = out.segment_ids.data_ptr<int64_t>();
  for (size_t e = 0; e < examples.size(); ++e) {
    const SftExample& ex = examples[e];
    std::vector<int> seq(ex.prompt);
    seq.insert(seq.end(), ex.response.begin(), ex.response.end());
    const auto prompt = static_cast<int64_t>(ex.prompt.size());
    const int64_t base = fit.places[e].row * L + fit.places[e].offset;
    for (int64_t t = 0; t + 1 < static_cast<int64_t>(seq.size()); ++t) {
      inputs[base + t] = seq[static_cast<size_t>(t)];
      if (t + 1 >= prompt || prompt_trained(ex, static_cast<size_t>(t + 1)))
        targets[base + t] = seq[static_cast<size_t>(t + 1)];
      positions[base + t] = t;
      segments[base + t] = static_cast<int64_t>(e) + 1;
    }
  }
  return out;
}

PreferenceBatch collate_preference(const std::vector<PreferenceExample>& examples, int64_t pad_id) {
  if (examples.empty()) throw ConfigError("collate_preference: no examples");
  std::vector<const std::vector<int>*> prompts, chosen, rejected;
  int64_t L = 0;
  for (const auto& ex : examples) {
    prompts.push_back(&ex.prompt);
    chosen.push_back(&ex.chosen);
    rejected.push_back(&ex.rejected);
    L = std::max<int64_t>(L, static_cast<int64_t>(ex.prompt.size() + std::max(ex.chosen.size(), ex.rejected.size())));
  }
  return {fill_batch(prompts, chosen, {}, L, pad_id), fill_batch(prompts, rejected, {}, L, pad_id)};
}

std::vector<int64_t> ShuffleState::to_vector() const {
  return {static_cast<int64_t>(epoch), static_cast<int64_t>(cursor)};
}

ShuffleState ShuffleState::from_vector(const std::vector<int64_t>& v) {
  if (v.size() != 2 || v[0] < 0 || v[1] < 0)
    throw DataError("shuffle state: expected 2 non-negative values {epoch, cursor}");
  return {static_cast<uint64_t>(v[0]), static_cast<uint64_t>(v[1])};
}

EpochShuffler::EpochShuffler(uint64_t n, int64_t batch_size, uint64_t seed, bool shuffle, bool drop_last)
    : n_(n), batch_size_(batch_size), seed_(seed), shuffle_(shuffle), drop_last_(drop_last) {
  if (n == 0) throw ConfigError("shuffler: the dataset has no examples");
  if (batch_size <= 0) throw ConfigError("shuffler: batch_size must be > 0, got " + std::to_string(batch_size));
  if (drop_last && static_cast<uint64_t>(batch_size) > n) {
    throw ConfigError("shuffler: batch_size " + std::to_string(batch_size) + " exceeds the " + std::to_string(n) +
                      " examples and drop_last is set: no batch would ever be produced");
  }
}

uint64_t EpochShuffler::batches_per_epoch() const {
  const auto b = static_cast<uint64_t>(batch_size_);
  return drop_last_ ? n_ / b : (n_ + b - 1) / b;
}

std::vector<int64_t> EpochShuffler::order(uint64_t epoch) const {
  std::vector<int64_t> out(n_);
  for (uint64_t i = 0; i < n_; ++i) out[i] = static_cast<int64_t>(i);
  if (!shuffle_) return out;
  uint64_t state = core::splitmix64(core::splitmix64(seed_) ^ epoch);
  for (uint64_t i = n_ - 1; i > 0; --i) std::swap(out[i], out[uniform(state, i + 1)]);
  return out;
}

std::vector<int64_t> EpochShuffler::next() {
  const auto b = static_cast<uint64_t>(batch_size_);
  auto epoch_done = [&] { return state_.cursor >= n_ || (drop_last_ && n_ - state_.cursor < b); };
  if (epoch_done()) {  // only for a restored end-of-epoch state; next() itself moves on eagerly below
    ++state_.epoch;
    state_.cursor = 0;
  }
  if (order_epoch_ != state_.epoch) {
    order_ = order(state_.epoch);
    order_epoch_ = state_.epoch;
  }
  const uint64_t take = std::min(b, n_ - state_.cursor);
  std::vector<int64_t> batch(order_.begin() + static_cast<std::ptrdiff_t>(state_.cursor),
                             order_.begin() + static_cast<std::ptrdiff_t>(state_.cursor + take));
  state_.cursor += take;
  if (epoch_done()) {
    ++state_.epoch;
    state_.cursor = 0;
  }
  return batch;
}

void EpochShuffler::restore(const ShuffleState& state) {
  if (state.cursor > n_) {
    throw DataError("shuffle state: cursor " + std::to_string(state.cursor) + " is past the dataset's " +
                    std::to_string(n_) + " examples (a different dataset?)");
  }
  state_ = state;
}

}  // namespace troupe::data
