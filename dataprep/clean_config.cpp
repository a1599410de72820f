// Binding of the `troupe data clean` config (dataprep/clean_pipeline.h): the top-level keys through core's
// ConfigBinder, the heterogeneous stage list by hand (a name or a one-key mapping per stage). Not the pipeline.
#include <algorithm>
#include <charconv>
#include <filesystem>
#include <map>
#include <optional>
#include <string>

#include "core/config_binder.h"
#include "core/errors.h"
#include "dataprep/clean_pipeline.h"

namespace troupe::dataprep {
namespace {

using core::ConfigNode;

constexpr std::array kStageKinds{CleanStageKind::kNormalize,     CleanStageKind::kHtml,
                                 CleanStageKind::kUrls,          CleanStageKind::kMojibake,
                                 CleanStageKind::kWhitespace,    CleanStageKind::kPii,
                                 CleanStageKind::kGopherQuality, CleanStageKind::kGopherRepetition,
                                 CleanStageKind::kDecontaminate, CleanStageKind::kDedup,
                                 CleanStageKind::kStats};

// The top-level keys other than `stages`.
struct CleanSettings {
  std::vector<std::string> inputs;
  CleanInputFormat format = CleanInputFormat::kAuto;
  std::string text_field = "text";
  TextSplit text_split = TextSplit::kBlankLines;
  std::string tokenizer;
  std::string separator_token;
  std::string output;
  int threads = 1;
  int chunk_size = 256;
  template <class V>
  void visit(V& v) {
    v.field("inputs", inputs, "files read in order");
    v.field("format", format, "auto, jsonl, text or tokens");
    v.field("text_field", text_field, "JSONL field cleaned");
    v.field("text_split", text_split, "text files: blank_lines or lines");
    v.path("tokenizer", tokenizer, "token files: the tokenizer that decodes them");
    v.field("separator_token", separator_token, "token files: special token between documents (default: the file's)");
    v.path("output", output, "JSONL written");
    v.field("threads", threads, "workers for the per-document stages");
    v.field("chunk_size", chunk_size, "documents per work item");
  }
  void validate(core::ConfigValidator& v) const {
    v.require(!inputs.empty(), "inputs", inputs, "at least one input file");
    v.require(!output.empty(), "output", output, "an output path");
    v.require(!text_field.empty(), "text_field", text_field, "a field name");
    v.require(threads >= 1, "threads", threads, "an integer >= 1");
    v.require(chunk_size >= 1, "chunk_size", chunk_size, "an integer >= 1");
  }
};

struct PiiOptions {
  PiiConfig& c;
  template <class V>
  void visit(V& v) {
    v.field("emails", c.emails, "mask e-mail addresses");
    v.field("ipv4", c.ipv4, "mask IPv4 addresses");
    v.field("only_public_ips", c.only_public_ips, "mask only global addresses");
    v.field("ipv6", c.ipv6, "mask IPv6 addresses");
    v.field("phones", c.phones, "mask phone numbers");
    v.field("email_replacements", c.email_replacements, "used in turn");
    v.field("ip_replacements", c.ip_replacements, "used in turn");
    v.field("ipv6_replacement", c.ipv6_replacement, "IPv6 replacement");
    v.field("phone_replacement", c.phone_replacement, "phone replacement");
  }
};

struct QualityOptions {
  GopherQualityConfig& c;
  template <class V>
  void visit(V& v) {
    v.field("min_doc_words", c.min_doc_words, "");
    v.field("max_doc_words", c.max_doc_words, "");
    v.field("min_avg_word_length", c.min_avg_word_length, "");
    v.field("max_avg_word_length", c.max_avg_word_length, "");
    v.field("max_symbol_word_ratio", c.max_symbol_word_ratio, "");
    v.field("max_bullet_lines_ratio", c.max_bullet_lines_ratio, "");
    v.field("max_ellipsis_lines_ratio", c.max_ellipsis_lines_ratio, "");
    v.field("max_non_alpha_words_ratio", c.max_non_alpha_words_ratio, "");
    v.field("min_stop_words", c.min_stop_words, "");
    v.field("stop_words", c.stop_words, "");
  }
};

// The n-gram rules as mappings {n: max fraction}, e.g. top_n_grams: {2: 0.2, 3: 0.18}; absent keeps datatrove's.
struct RepetitionOptions {
  GopherRepetitionConfig& c;
  std::optional<std::map<std::string, double>> top_n_grams;
  std::optional<std::map<std::string, double>> dup_n_grams;
  template <class V>
  void visit(V& v) {
    v.field("dup_para_frac", c.dup_para_frac, "");
    v.field("dup_para_char_frac", c.dup_para_char_frac, "");
    v.field("dup_line_frac", c.dup_line_frac, "");
    v.field("dup_line_char_frac", c.dup_line_char_frac, "");
    v.field("top_n_grams", top_n_grams, "{n: max fraction}");
    v.field("dup_n_grams", dup_n_grams, "{n: max fraction}");
  }
};

// {n: fraction} as (n, fraction) pairs in ascending n; ConfigError for a key that is not an integer.
std::vector<std::pair<int, double>> ngram_rules(const std::map<std::string, double>& rules, const std::string& key) {
  std::vector<std::pair<int, double>> out;
  for (const auto& [n, fraction] : rules) {
    int value = 0;
    const auto [ptr, ec] = std::from_chars(n.data(), n.data() + n.size(), value);
    if (ec != std::errc() || ptr != n.data() + n.size()) throw ConfigError(key + ": '" + n + "' is not an integer n");
    out.emplace_back(value, fraction);
  }
  std::sort(out.begin(), out.end());
  return out;
}

struct DecontamOptions {
  CleanStage& s;
  template <class V>
  void visit(V& v) {
    v.field("eval_files", s.eval_files, "evaluation texts (JSONL or text)");
    v.field("text_field", s.eval_text_field, "JSONL field of the evaluation texts");
    v.field("n", s.decontam.n, "words per n-gram");
    v.field("min_matches", s.decontam.min_matches, "shared n-grams that make a document contaminated");
  }
};

struct DedupOptions {
  DedupConfig& c;
  std::string shingle = "words";
  std::string scheme = "affine32";
  template <class V>
  void visit(V& v) {
    v.field("exact", c.exact, "");
    v.field("near", c.near, "");
    v.field("threshold", c.threshold, "");
    v.field("num_perm", c.num_perm, "");
    v.field("seed", c.seed, "");
    v.field("scheme", scheme, "affine32 (datasketch >= 2.0) or legacy");
    v.field("shingle", shingle, "words or chars");
    v.field("shingle_size", c.shingle_size, "");
    v.field("bands", c.lsh.bands, "0: optimal for threshold");
    v.field("rows", c.lsh.rows, "0: optimal for threshold");
    v.field("fp_weight", c.fp_weight, "weight of false positives when choosing bands and rows");
    v.field("fn_weight", c.fn_weight, "weight of false negatives when choosing bands and rows");
    v.field("verify", c.verify, "");
  }
};

struct StatsOptions {
  int& top_k;
  template <class V>
  void visit(V& v) {
    v.field("top_k", top_k, "most frequent words reported");
  }
};

// A check that throws a bare ConfigError (the dataprep configs' validate()) rethrown naming where the stage is.
template <class F>
void at(const core::Origin& origin, const std::string& path, F&& f) {
  try {
    f();
  } catch (const ConfigError& e) {
    throw ConfigError(origin.describe() + ": " + path + ": " + e.what());
  }
}

template <class Opts>
void bind_options(const ConfigNode* node, const std::string& path, Opts&& opts) {
  core::OriginMap origins;
  core::ConfigBinder binder(node && !node->is_null() ? node : nullptr, path, origins);
  opts.visit(binder);
  binder.reject_unknown_keys();
}

void require_no_options(const ConfigNode* node, const std::string& path) {
  if (node && !node->is_null())
    throw ConfigError(node->origin().describe() + ": " + path + " takes no options, got " + node->type_name());
}

std::string scalar_option(const ConfigNode* node, const std::string& path, const std::string& fallback) {
  if (!node || node->is_null()) return fallback;
  if (!node->is_scalar())
    throw ConfigError(node->origin().describe() + ": " + path + ": expected a string, got " + node->type_name());
  return node->text();
}

// Relative evaluation paths resolve against the file that names them, as `v.path` fields do.
void resolve_paths(std::vector<std::string>& paths, const core::Origin& origin) {
  for (auto& p : paths) {
    if (origin.kind == core::Origin::Kind::File) p = core::resolve_config_path(p, origin.file);
    if (origin.kind == core::Origin::Kind::Override) p = core::resolve_override_path(p);
  }
}

void bind_stage_options(CleanStage& s, const ConfigNode* opts, const std::string& path, const core::Origin& where) {
  switch (s.kind) {
    case CleanStageKind::kNormalize:
      at(opts ? opts->origin() : where, path, [&] { s.form = parse_normal_form(scalar_option(opts, path, "NFC")); });
      break;
    case CleanStageKind::kUrls: s.url_placeholder = scalar_option(opts, path, ""); break;
    case CleanStageKind::kHtml:
    case CleanStageKind::kMojibake:
    case CleanStageKind::kWhitespace: require_no_options(opts, path); break;
    case CleanStageKind::kPii:
      bind_options(opts, path, PiiOptions{s.pii});
      at(where, path, [&] { s.pii.validate(); });
      break;
    case CleanStageKind::kGopherQuality:
      bind_options(opts, path, QualityOptions{s.quality});
      at(where, path, [&] { s.quality.validate(); });
      break;
    case CleanStageKind::kGopherRepetition: {
      RepetitionOptions o{s.repetition, std::nullopt, std::nullopt};
      bind_options(opts, path, o);
      at(where, path, [&] {
        if (o.top_n_grams) s.repetition.top_n_grams = ngram_rules(*o.top_n_grams, "top_n_grams");
        if (o.dup_n_grams) s.repetition.dup_n_grams = ngram_rules(*o.dup_n_grams, "dup_n_grams");
        s.repetition.validate();
      });
      break;
    }
    case CleanStageKind::kDecontaminate:
      bind_options(opts, path, DecontamOptions{s});
      at(where, path, [&] {
        s.decontam.validate();
        if (s.eval_files.empty()) throw ConfigError("eval_files: expected at least one evaluation file");
      });
      resolve_paths(s.eval_files, where);
      break;
    case CleanStageKind::kDedup: {
      DedupOptions o{s.dedup};
      bind_options(opts, path, o);
      at(where, path, [&] {
        s.dedup.shingle = parse_shingle_kind(o.shingle);
        s.dedup.scheme = parse_minhash_scheme(o.scheme);
        s.dedup.validate();
      });
      break;
    }
    case CleanStageKind::kStats:
      bind_options(opts, path, StatsOptions{s.top_k});
      at(where, path, [&] {
        if (s.top_k < 0) throw ConfigError("top_k: expected an integer >= 0");
      });
      break;
  }
}

std::string stage_choices() {
  std::string out;
  for (const auto k : kStageKinds) out += (out.empty() ? "" : ", ") + std::string(stage_name(k));
  return out;
}

CleanStage parse_stage(const ConfigNode& item, size_t index) {
  const std::string path = "stages[" + std::to_string(index) + "]";
  std::string name;
  const ConfigNode* opts = nullptr;
  core::Origin where = item.origin();
  if (item.is_scalar()) {
    name = item.text();
  } else if (item.is_map() && item.entries().size() == 1) {
    name = item.entries()[0].first;
    opts = &item.entries()[0].second;
    where = item.key_origin(name);
  } else {
    throw ConfigError(item.origin().describe() + ": " + path + ": expected a stage name or a one-key mapping " +
                      "{stage: options}, got " + item.type_name());
  }
  for (const auto k : kStageKinds) {
    if (name != stage_name(k)) continue;
    CleanStage stage;
    stage.kind = k;
    bind_stage_options(stage, opts, path + "." + name, where);
    return stage;
  }
  std::vector<std::string> names;
  for (const auto k : kStageKinds) names.emplace_back(stage_name(k));
  const std::string guess = core::nearest_key(name, names);
  throw ConfigError(where.describe() + ": " + path + ": unknown stage '" + name + "'" +
                    (guess.empty() ? "" : " (did you mean '" + guess + "'?)") + "; stages: " + stage_choices());
}

std::vector<CleanStage> parse_stages(const ConfigNode* node) {
  if (!node || node->is_null()) throw ConfigError("clean config: `stages` is missing (a list of stages)");
  if (!node->is_sequence())
    throw ConfigError(node->origin().describe() + ": stages: expected a list, got " + node->type_name());
  std::vector<CleanStage> stages;
  bool corpus_stage_seen = false;
  for (size_t i = 0; i < node->items().size(); ++i) {
    stages.push_back(parse_stage(node->items()[i], i));
    const bool per_doc = is_per_document(stages.back().kind);
    if (per_doc && corpus_stage_seen)
      throw ConfigError(node->items()[i].origin().describe() + ": stages[" + std::to_string(i) + "]: " +
                        stage_name(stages.back().kind) + " is a per-document stage; it must come before dedup and " +
                        "stats, which see the whole corpus");
    corpus_stage_seen |= !per_doc;
  }
  return stages;
}

}  // namespace

const char* stage_name(CleanStageKind kind) {
  switch (kind) {
    case CleanStageKind::kNormalize: return "normalize";
    case CleanStageKind::kHtml: return "html";
    case CleanStageKind::kUrls: return "urls";
    case CleanStageKind::kMojibake: return "mojibake";
    case CleanStageKind::kWhitespace: return "whitespace";
    case CleanStageKind::kPii: return "pii";
    case CleanStageKind::kGopherQuality: return "gopher_quality";
    case CleanStageKind::kGopherRepetition: return "gopher_repetition";
    case CleanStageKind::kDecontaminate: return "decontaminate";
    case CleanStageKind::kDedup: return "dedup";
    case CleanStageKind::kStats: return "stats";
  }
  return "?";
}

bool is_per_document(CleanStageKind kind) { return kind != CleanStageKind::kDedup && kind != CleanStageKind::kStats; }

CleanConfig parse_clean_config(const ConfigNode& root) {
  ConfigNode settings_tree = root;
  settings_tree.erase("stages");
  auto bound = core::bind_config<CleanSettings>(settings_tree);
  CleanSettings& s = bound.value;
  const auto inputs_origin = bound.origins.find("inputs");
  if (inputs_origin != bound.origins.end()) resolve_paths(s.inputs, inputs_origin->second);
  CleanConfig c;
  c.inputs = std::move(s.inputs);
  c.format = s.format;
  c.text_field = s.text_field;
  c.text_split = s.text_split;
  c.tokenizer = s.tokenizer;
  c.separator_token = s.separator_token;
  c.output = s.output;
  c.threads = s.threads;
  c.chunk_size = s.chunk_size;
  c.stages = parse_stages(root.find("stages"));
  return c;
}

CleanConfig load_clean_config(const std::filesystem::path& file, const std::vector<std::string>& overrides) {
  return parse_clean_config(core::load_config(file, overrides));
}

}  // namespace troupe::dataprep
