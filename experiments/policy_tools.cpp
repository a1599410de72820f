// Implementation of experiments/policy_tools.h.
#include "experiments/policy_tools.h"

#include <fmt/format.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <sstream>

#include "core/device.h"
#include "core/errors.h"
#include "core/runtime.h"
#include "core/seeding.h"
#include "core/torch_runtime.h"
#include "data/chat_data.h"
#include "data/text_datasets.h"
#include "metrics/text_metrics.h"
#include "models/generation.h"
#include "models/gpt_checkpoint.h"
#include "rlhf/rollout.h"
#include "tokenizers/bpe_tokenizer.h"
#include "tokenizers/corpus.h"
#include "tokenizers/tokenizer_file.h"

namespace troupe::experiments {

namespace fs = std::filesystem;

namespace {

std::vector<std::string> words_of(const std::string& text) {
  std::vector<std::string> words;
  std::istringstream in(text);
  for (std::string w; in >> w;) words.push_back(w);
  return words;
}

std::string join(const std::vector<std::string>& words, size_t from, size_t to) {
  std::string s;
  for (size_t i = from; i < to && i < words.size(); ++i) s += (i > from ? " " : "") + words[i];
  return s;
}

// Lines with inner whitespace runs collapsed; leading/trailing blank lines removed.
std::string normalise(const std::vector<std::string>& lines) {
  std::string out;
  for (const auto& line : lines) {
    const std::string l = join(words_of(line), 0, SIZE_MAX);
    if (l.empty() && out.empty()) continue;
    out += l + "\n";
  }
  while (out.size() >= 2 && out[out.size() - 1] == '\n' && out[out.size() - 2] == '\n') out.pop_back();
  while (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

void shuffle_seeded(std::vector<size_t>& v, uint64_t seed) {
  std::mt19937_64 rng(core::splitmix64(seed));
  for (size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[std::uniform_int_distribution<size_t>(0, i - 1)(rng)]);
}

void write_text(const fs::path& p, const std::string& text) {
  std::ofstream out(p, std::ios::binary);
  out << text << "\n";
  if (!out) throw IoError("cannot write " + p.string());
}

struct Prompt {
  std::string text;  // as given, or the conversation's render with the generation prompt
  std::vector<int64_t> ids;
  std::vector<std::string> references;  // optional reference responses
  nlohmann::ordered_json messages;      // the conversation of a {"messages"} line (else null)
};

// The prompts of `file` (text under "prompt", or a conversation under "messages" rendered by `chat_template`), each
// cut to its last `max_tokens` tokens (block_size - max_new_tokens).
std::vector<Prompt> read_prompts(const fs::path& file, const tokenizers::BpeTokenizer& tok,
                                 const tokenizers::ChatTemplate* chat_template, int64_t limit, int64_t max_tokens) {
  if (max_tokens < 1) throw ConfigError("--max-new-tokens leaves no room for a prompt in the model's block_size");
  std::vector<Prompt> prompts;
  data::for_each_jsonl_ordered(
      file, "prompts file", [&](const nlohmann::ordered_json& j, const std::string& where, int64_t) {
        const data::PromptText text = data::prompt_of_line(j, "prompt", chat_template, "--chat-template", where);
        Prompt p;
        p.text = text.text;
        if (text.chat) p.messages = j.contains("prompt") ? j["prompt"] : j["messages"];  // the conversation
        if (j.contains("reference")) {
          if (!j["reference"].is_string()) throw DataError(where + ": 'reference' must be a string");
          p.references.push_back(j["reference"].get<std::string>());
        }
        if (j.contains("references")) {
          if (!j["references"].is_array()) throw DataError(where + ": 'references' must be a list of strings");
          for (const auto& r : j["references"]) {
            if (!r.is_string()) throw DataError(where + ": 'references' must be a list of strings");
            p.references.push_back(r.get<std::string>());
          }
        }
        for (int id : data::encode_prompt(tok, text)) p.ids.push_back(id);
        if (p.ids.empty()) throw DataError(where + ": empty prompt");
        if (static_cast<int64_t>(p.ids.size()) > max_tokens)
          p.ids.erase(p.ids.begin(), p.ids.end() - static_cast<std::ptrdiff_t>(max_tokens));
        prompts.push_back(std::move(p));
        return limit == 0 || static_cast<int64_t>(prompts.size()) < limit;
      });
  if (prompts.empty()) throw DataError(file.string() + ": no prompts");
  return prompts;
}

struct Samples {
  std::vector<std::vector<int64_t>> tokens;  // per sample, EOS included when it ended the row
  std::vector<double> logprob_sum;           // Σ log π over the sampled tokens (temperature-scaled)
  std::vector<bool> stopped;
};

// One sample per entry of `rows` (prompt indices), generated in batches.
Samples sample(models::Gpt& model, const std::vector<Prompt>& prompts, const std::vector<size_t>& rows,
               const SamplingOptions& o, const std::vector<int64_t>& stop, uint64_t seed) {
  models::GenerationConfig g;
  g.max_new_tokens = o.max_new_tokens;
  g.do_sample = true;
  g.temperature = o.temperature;
  g.stop_tokens = stop;
  g.pad_id = stop.empty() ? 0 : stop.front();
  Samples s;
  for (size_t from = 0, batch = 0; from < rows.size(); from += static_cast<size_t>(o.batch_size), ++batch) {
    std::vector<std::vector<int64_t>> batch_prompts;
    for (size_t i = from; i < std::min(rows.size(), from + static_cast<size_t>(o.batch_size)); ++i)
      batch_prompts.push_back(prompts[rows[i]].ids);
    g.seed = core::splitmix64(seed + 0x9e3779b97f4a7c15ULL * (batch + 1));
    const auto out = models::generate(model, batch_prompts, g);
    for (size_t i = 0; i < out.tokens.size(); ++i) {
      s.tokens.push_back(out.tokens[i]);
      double sum = 0;
      for (float lp : out.logprobs[i]) sum += lp;
      s.logprob_sum.push_back(sum);
      s.stopped.push_back(out.stopped[i]);
    }
  }
  return s;
}

// Σ_t log p(response_t | prompt, response_<t) under `model` for each (prompt, response) pair.
std::vector<double> sequence_logprobs(models::Gpt& model, const std::vector<std::vector<int64_t>>& prompt_rows,
                                      const std::vector<std::vector<int64_t>>& responses, int64_t batch_size) {
  torch::NoGradGuard no_grad;
  const bool was_training = model->is_training();
  model->eval();
  std::vector<double> sums;
  for (size_t from = 0; from < responses.size(); from += static_cast<size_t>(batch_size)) {
    const size_t to = std::min(responses.size(), from + static_cast<size_t>(batch_size));
    std::vector<std::vector<int64_t>> ps(prompt_rows.begin() + static_cast<std::ptrdiff_t>(from),
                                         prompt_rows.begin() + static_cast<std::ptrdiff_t>(to));
    const auto padded = models::left_pad(ps, 0);
    int64_t T = 1;
    for (size_t i = from; i < to; ++i) T = std::max<int64_t>(T, static_cast<int64_t>(responses[i].size()));
    const auto B = static_cast<int64_t>(to - from);
    auto resp = torch::zeros({B, T}, torch::kInt64);
    auto resp_mask = torch::zeros({B, T}, torch::kFloat32);
    for (int64_t b = 0; b < B; ++b) {
      const auto& r = responses[from + static_cast<size_t>(b)];
      for (size_t t = 0; t < r.size(); ++t) {
        resp[b][static_cast<int64_t>(t)] = r[t];
        resp_mask[b][static_cast<int64_t>(t)] = 1.0f;
      }
    }
    rlhf::SequenceBatch batch;
    batch.prompt_length = padded.ids.size(1);
    batch.sequences = torch::cat({padded.ids, resp}, 1);
    batch.attention_mask = torch::cat({padded.mask.to(torch::kInt64), resp_mask.to(torch::kInt64)}, 1);
    batch.response_mask = resp_mask;
    const auto lp = rlhf::response_logprobs(model, batch).logprobs.cpu();
    const auto per_row = (lp * resp_mask).sum(1);
    for (int64_t b = 0; b < B; ++b) sums.push_back(per_row[b].item<double>());
  }
  if (was_training) model->train();
  return sums;
}

std::vector<int64_t> stop_tokens_of(const tokenizers::BpeTokenizer& tok) {
  const auto eos = data::eos_id_of(tok);
  return eos ? std::vector<int64_t>{*eos} : std::vector<int64_t>{};
}

rlhf::RewardSample reward_sample(const tokenizers::BpeTokenizer& tok, const Prompt& p,
                                 const std::vector<int64_t>& tokens, bool stopped) {
  rlhf::RewardSample r;
  r.prompt = p.ids;
  r.response = tokens;
  if (stopped && !r.response.empty()) r.response.pop_back();
  r.ended_with_eos = stopped;
  r.response_text = tok.decode_lossy_utf8(std::vector<int>(r.response.begin(), r.response.end()));
  return r;
}

// {"prompt", "chosen", "rejected"} as text, or for a conversation TRL's conversational form: the prompt's messages
// and one assistant message each (what data/text_datasets.h reads back through the same chat template).
nlohmann::ordered_json preference_line(const Prompt& p, const std::string& chosen, const std::string& rejected) {
  if (p.messages.is_null()) return {{"prompt", p.text}, {"chosen", chosen}, {"rejected", rejected}};
  auto turn = [](const std::string& text) {
    return nlohmann::ordered_json::array({{{"role", "assistant"}, {"content", text}}});
  };
  return {{"prompt", p.messages}, {"chosen", turn(chosen)}, {"rejected", turn(rejected)}};
}

void check_sampling(const SamplingOptions& s) {
  if (s.max_new_tokens < 1) throw ConfigError("max-new-tokens must be >= 1");
  if (!(s.temperature > 0)) throw ConfigError("temperature must be > 0");
  if (s.batch_size < 1) throw ConfigError("batch size must be >= 1");
}

}  // namespace

SplitDocumentsReport split_documents(const SplitDocumentsOptions& o) {
  if (o.output.empty()) throw ConfigError("data split: --output is required");
  if (o.min_words < 1 || o.max_words < 0 || (o.max_words > 0 && o.max_words < o.min_words))
    throw ConfigError(fmt::format("data split: need 1 <= min-words <= max-words (or max-words 0), got {} and {}",
                                  o.min_words, o.max_words));
  if (!(o.val_fraction >= 0 && o.val_fraction < 1)) throw ConfigError("data split: --val-fraction must be in [0, 1)");
  if (o.prompt_words < 0 || o.response_words < 1) throw ConfigError("data split: bad --prompt-words/--response-words");
  SplitDocumentsReport rep;
  std::vector<std::string> docs;
  std::set<fs::path> seen;  // a file reached twice (e.g. fortunes' `name.u8 -> name` links) is read once
  for (const auto& file : tokenizers::list_text_files(o.inputs)) {
    if (!seen.insert(fs::weakly_canonical(file)).second) continue;
    std::ifstream in(file, std::ios::binary);
    if (!in) throw IoError("cannot read " + file.string());
    std::string content((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (content.find('\0') != std::string::npos) {
      ++rep.skipped_binary;
      continue;
    }
    ++rep.files;
    std::vector<std::string> lines;
    auto flush = [&] {
      std::string d = normalise(lines);
      lines.clear();
      if (d.empty()) return;
      const auto n = static_cast<int64_t>(words_of(d).size());
      if (n < o.min_words || (o.max_words > 0 && n > o.max_words)) {
        ++rep.dropped_length;
        return;
      }
      docs.push_back(std::move(d));
    };
    std::istringstream text(content);
    for (std::string line; std::getline(text, line);) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (!o.separator_line.empty() && line == o.separator_line) {
        flush();
      } else {
        lines.push_back(line);
      }
    }
    flush();
  }
  if (docs.empty()) throw IoError("data split: no documents left in the inputs (check --input and the word limits)");
  std::vector<size_t> order(docs.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  shuffle_seeded(order, o.seed);
  if (o.max_documents > 0 && order.size() > static_cast<size_t>(o.max_documents))
    order.resize(static_cast<size_t>(o.max_documents));
  rep.documents = static_cast<int64_t>(order.size());
  const auto n_val =
      o.val_fraction == 0
          ? size_t{0}
          : std::clamp<size_t>(static_cast<size_t>(std::llround(o.val_fraction * order.size())), 1, order.size() - 1);
  for (const char* part : {"train", "val"}) {
    fs::remove_all(o.output / "docs" / part);
    fs::create_directories(o.output / "docs" / part);
  }
  std::ofstream sft[2], prompts[2];
  if (o.prompt_words > 0) {
    for (int s = 0; s < 2; ++s) {
      const std::string part = s == 0 ? "train" : "val";
      sft[s].open(o.output / ("sft_" + part + ".jsonl"), std::ios::binary | std::ios::trunc);
      prompts[s].open(o.output / ("prompts_" + part + ".jsonl"), std::ios::binary | std::ios::trunc);
    }
  }
  for (size_t k = 0; k < order.size(); ++k) {
    const bool val = k < n_val;
    const std::string& d = docs[order[k]];
    write_text(o.output / "docs" / (val ? "val" : "train") / fmt::format("{:06d}.txt", k), d);
    (val ? rep.val : rep.train)++;
    if (o.prompt_words > 0) {
      const auto w = words_of(d);
      if (static_cast<int64_t>(w.size()) <= o.prompt_words) continue;
      const auto p = static_cast<size_t>(o.prompt_words);
      const std::string prompt = join(w, 0, p);
      const std::string response = " " + join(w, p, p + static_cast<size_t>(o.response_words));
      sft[val] << nlohmann::json{{"prompt", prompt}, {"response", response}}.dump() << "\n";
      // The document's own continuation, for reference-based metrics of sampled responses (eval policies).
      prompts[val] << nlohmann::json{{"prompt", prompt}, {"reference", response.substr(1)}}.dump() << "\n";
      ++rep.sft_pairs;
    }
  }
  for (int s = 0; s < 2; ++s)
    if ((sft[s].is_open() && !sft[s]) || (prompts[s].is_open() && !prompts[s]))
      throw IoError("cannot write the SFT/prompt files in " + o.output.string());
  return rep;
}

LabelPreferencesReport label_preferences(const LabelPreferencesOptions& o) {
  check_sampling(o.sampling);
  if (!(o.val_fraction >= 0 && o.val_fraction < 1)) throw ConfigError("--val-fraction must be in [0, 1)");
  core::set_threads(o.threads);
  const auto tok = tokenizers::open_tokenizer(o.tokenizer, o.encoding);
  auto reward = rlhf::make_reward_function(o.reward);
  models::Gpt model = models::load_pretrained_gpt(o.policy);
  model->to(core::resolve_device(o.device, core::local_rank(), "--device"));
  const auto chat_template = data::load_chat_template(o.chat_template);
  const auto prompts = read_prompts(o.prompts, tok, chat_template.get(), o.max_prompts,
                                    model->config().block_size - o.sampling.max_new_tokens);
  std::vector<size_t> rows;
  for (size_t i = 0; i < prompts.size(); ++i) rows.push_back(i);
  const auto stop = stop_tokens_of(tok);
  torch::manual_seed(o.sampling.seed);
  const Samples a = sample(model, prompts, rows, o.sampling, stop, o.sampling.seed);
  const Samples b = sample(model, prompts, rows, o.sampling, stop, core::splitmix64(o.sampling.seed ^ 0xb0b));

  LabelPreferencesReport rep;
  rep.prompts = static_cast<int64_t>(prompts.size());
  fs::create_directories(o.output);
  std::ofstream train(o.output / "train.jsonl", std::ios::binary | std::ios::trunc);
  std::ofstream val(o.output / "val.jsonl", std::ios::binary | std::ios::trunc);
  std::mt19937_64 split(core::splitmix64(o.sampling.seed ^ 0x5917));
  std::uniform_real_distribution<double> u(0, 1);
  double reward_sum = 0, gap_sum = 0;
  for (size_t i = 0; i < prompts.size(); ++i) {
    const rlhf::RewardSample sa = reward_sample(tok, prompts[i], a.tokens[i], a.stopped[i]);
    const rlhf::RewardSample sb = reward_sample(tok, prompts[i], b.tokens[i], b.stopped[i]);
    const double ra = reward->score(sa), rb = reward->score(sb);
    reward_sum += ra + rb;
    const bool to_val = u(split) < o.val_fraction;
    if (ra == rb) {
      ++rep.ties;
      continue;
    }
    const bool a_wins = ra > rb;
    const std::string& chosen = (a_wins ? sa : sb).response_text;
    const std::string& rejected = (a_wins ? sb : sa).response_text;
    if (chosen.empty() || rejected.empty()) {
      ++rep.ties;  // an empty response cannot be trained on (it encodes to no token); counted with the ties
      continue;
    }
    (to_val ? val : train) << preference_line(prompts[i], chosen, rejected).dump() << "\n";
    (to_val ? rep.val : rep.train)++;
    ++rep.pairs;
    gap_sum += std::abs(ra - rb);
  }
  if (!train || !val) throw IoError("cannot write preference files in " + o.output.string());
  rep.mean_reward = reward_sum / (2.0 * static_cast<double>(prompts.size()));
  rep.mean_gap = rep.pairs ? gap_sum / static_cast<double>(rep.pairs) : 0;
  if (rep.train == 0) throw DataError("label-preferences: every pair was a tie; no training pairs written");
  return rep;
}

std::vector<PolicyEvalRow> evaluate_policies(const PolicyEvalOptions& o) {
  check_sampling(o.sampling);
  if (o.samples < 1) throw ConfigError("--samples must be >= 1");
  core::set_threads(o.threads);
  const auto tok = tokenizers::open_tokenizer(o.tokenizer, o.encoding);
  auto reward = rlhf::make_reward_function(o.reward);
  const torch::Device device = core::resolve_device(o.device, core::local_rank(), "--device");
  models::Gpt ref = models::load_pretrained_gpt(o.reference);
  ref->to(device);
  const auto chat_template = data::load_chat_template(o.chat_template);
  const auto prompts = read_prompts(o.prompts, tok, chat_template.get(), o.max_prompts,
                                    ref->config().block_size - o.sampling.max_new_tokens);
  std::vector<size_t> rows;  // prompt i repeated `samples` times
  for (size_t i = 0; i < prompts.size(); ++i)
    for (int64_t k = 0; k < o.samples; ++k) rows.push_back(i);
  std::vector<std::vector<int64_t>> prompt_rows;
  for (size_t r : rows) prompt_rows.push_back(prompts[r].ids);
  const auto stop = stop_tokens_of(tok);

  struct Scored {
    Samples s;
    std::vector<double> rewards;
    std::vector<std::string> texts;
  };
  auto score = [&](models::Gpt& model, uint64_t seed) {
    Scored sc;
    sc.s = sample(model, prompts, rows, o.sampling, stop, seed);
    for (size_t j = 0; j < rows.size(); ++j) {
      const rlhf::RewardSample rs = reward_sample(tok, prompts[rows[j]], sc.s.tokens[j], sc.s.stopped[j]);
      sc.rewards.push_back(reward->score(rs));
      sc.texts.push_back(rs.response_text);
    }
    return sc;
  };
  // Reference-based metrics when every prompt has references (the same number each, as sacreBLEU needs).
  bool with_refs = true;
  for (const auto& p : prompts) with_refs = with_refs && !p.references.empty();
  for (const auto& p : prompts) {
    if (with_refs && p.references.size() != prompts.front().references.size()) {
      throw DataError(o.prompts.string() + ": every prompt needs the same number of references (sacreBLEU's rule)");
    }
  }
  std::vector<std::vector<std::string>> row_refs;
  if (with_refs) {
    for (size_t r : rows) row_refs.push_back(prompts[r].references);
  }
  auto row_of = [&](const std::string& name, const fs::path& path, const Scored& sc, const Scored* base,
                    const std::vector<double>& kl) {
    PolicyEvalRow r;
    r.name = name;
    r.path = path.string();
    const double n = static_cast<double>(rows.size());
    double sum = 0, sq = 0, len = 0, eos = 0, wins = 0, klsum = 0;
    for (size_t j = 0; j < rows.size(); ++j) {
      sum += sc.rewards[j];
      sq += sc.rewards[j] * sc.rewards[j];
      len += static_cast<double>(sc.s.tokens[j].size());
      eos += sc.s.stopped[j] ? 1 : 0;
      if (base) wins += sc.rewards[j] > base->rewards[j] ? 1.0 : sc.rewards[j] == base->rewards[j] ? 0.5 : 0.0;
      if (!kl.empty()) klsum += kl[j];
    }
    r.reward_mean = sum / n;
    r.reward_std = std::sqrt(std::max(0.0, sq / n - r.reward_mean * r.reward_mean));
    r.length_mean = len / n;
    r.eos_rate = eos / n;
    r.win_rate = base ? wins / n : 0.5;
    r.kl_to_reference = kl.empty() ? 0.0 : klsum / n;
    if (with_refs) {
      r.rouge_l = metrics::compute_text_metric("rougeL", sc.texts, row_refs).headline();
      r.bleu = metrics::compute_text_metric("bleu", sc.texts, row_refs).headline();
    }
    return r;
  };

  const uint64_t seed = o.sampling.seed;
  const Scored base = score(ref, seed);
  std::vector<PolicyEvalRow> table{row_of("reference", o.reference, base, nullptr, {})};
  for (size_t p = 0; p < o.policies.size(); ++p) {
    const auto& [name, path] = o.policies[p];
    models::Gpt model = models::load_pretrained_gpt(path);
    model->to(device);
    const Scored sc = score(model, core::splitmix64(seed + p + 1));
    // KL(π‖π_ref) estimated on π's samples: log π(y) − log π_ref(y) per sequence, at temperature 1 (the
    // sampling log-probs are the policy's own only then; otherwise both are recomputed at temperature 1).
    std::vector<double> lp_pol = sc.s.logprob_sum;
    if (o.sampling.temperature != 1.0)
      lp_pol = sequence_logprobs(model, prompt_rows, sc.s.tokens, o.sampling.batch_size);
    const auto lp_ref = sequence_logprobs(ref, prompt_rows, sc.s.tokens, o.sampling.batch_size);
    std::vector<double> kl(rows.size());
    for (size_t j = 0; j < rows.size(); ++j) kl[j] = lp_pol[j] - lp_ref[j];
    table.push_back(row_of(name, path, sc, &base, kl));
  }
  return table;
}

std::string format_policy_table(const std::vector<PolicyEvalRow>& rows) {
  const bool refs = !rows.empty() && rows.front().rouge_l.has_value();
  std::string s = fmt::format("{:<12} {:>12} {:>11} {:>10} {:>16} {:>11} {:>9}", "policy", "reward_mean", "reward_std",
                              "win_rate", "kl_to_reference", "length", "eos_rate");
  s += refs ? fmt::format(" {:>8} {:>7}\n", "rougeL", "bleu") : "\n";
  for (const auto& r : rows) {
    s += fmt::format("{:<12} {:>12.4f} {:>11.4f} {:>10.3f} {:>16.3f} {:>11.2f} {:>9.3f}", r.name, r.reward_mean,
                     r.reward_std, r.win_rate, r.kl_to_reference, r.length_mean, r.eos_rate);
    s += refs ? fmt::format(" {:>8.4f} {:>7.2f}\n", r.rouge_l.value_or(0), r.bleu.value_or(0)) : "\n";
  }
  if (refs) s += "(rougeL: rouge-score F-measure; bleu: sacreBLEU corpus BLEU; both against the prompts' references)\n";
  return s;
}

std::string policy_table_json(const std::vector<PolicyEvalRow>& rows) {
  nlohmann::json j;
  j["columns"] = {"policy",          "path",        "reward_mean", "reward_std", "win_rate",
                  "kl_to_reference", "length_mean", "eos_rate"};
  const bool refs = !rows.empty() && rows.front().rouge_l.has_value();
  if (refs) {
    j["columns"].push_back("rougeL");
    j["columns"].push_back("bleu");
  }
  j["rows"] = nlohmann::json::array();
  for (const auto& r : rows) {
    nlohmann::json row = {r.name,        r.path,    r.reward_mean, r.reward_std, r.win_rate, r.kl_to_reference,
                          r.length_mean, r.eos_rate};
    if (refs) {
      row.push_back(r.rouge_l.value_or(0));
      row.push_back(r.bleu.value_or(0));
    }
    j["rows"].push_back(row);
  }
  return j.dump(2);
}

}  // namespace troupe::experiments
