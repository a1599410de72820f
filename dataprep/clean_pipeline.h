// The `troupe data clean` pipeline: documents streamed from JSONL, plain-text or token files through an ordered list
// of stages configured in YAML (the functions of dataprep/), on N worker threads, written as JSONL, with a per-stage
// report (documents and bytes in and out, removals by reason) for the run log. Not the CLI command (no argument
// parsing, no progress bar drawing: callers get a progress callback) and not the readers (dataprep/clean_reader.h).
//
// A config:
//   inputs: [web.jsonl, books.txt]   # relative to the config file
//   output: clean.jsonl
//   threads: 4
//   stages: [{normalize: NFC}, html, {urls: ""}, mojibake, whitespace, pii, gopher_quality, gopher_repetition,
//            {decontaminate: {eval_files: [eval.jsonl], n: 13}}, {dedup: {threshold: 0.8}}, stats]
// Each stage is its name alone (default options) or a one-key mapping {name: options}; see CleanStage for them.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/config_tree.h"
#include "dataprep/corpus_stats.h"
#include "dataprep/decontam.h"
#include "dataprep/dedup.h"
#include "dataprep/normalize.h"
#include "dataprep/pii.h"
#include "dataprep/quality.h"

namespace troupe::core {
class RunLog;
}

namespace troupe::dataprep {

// kTokens: a token file (tokenizers/token_file.h, as `troupe data prepare` and `tokenizer encode` write them) cut into
// documents at its separator id and decoded with CleanConfig::tokenizer.
enum class CleanInputFormat { kAuto, kJsonl, kText, kTokens };
constexpr auto config_names(CleanInputFormat) {
  return std::array{std::pair{CleanInputFormat::kAuto, "auto"}, std::pair{CleanInputFormat::kJsonl, "jsonl"},
                    std::pair{CleanInputFormat::kText, "text"}, std::pair{CleanInputFormat::kTokens, "tokens"}};
}
// How a plain-text file is cut into documents.
enum class TextSplit { kBlankLines, kLines };
constexpr auto config_names(TextSplit) {
  return std::array{std::pair{TextSplit::kBlankLines, "blank_lines"}, std::pair{TextSplit::kLines, "lines"}};
}

enum class CleanStageKind {
  kNormalize,         // {normalize: NFC|NFD|NFKC|NFKD}, bare: NFC                     dataprep::normalize
  kHtml,              // html (no options)                                             dataprep::html_to_text
  kUrls,              // {urls: "<placeholder>"}, bare: "" (URLs removed)              dataprep::replace_urls
  kMojibake,          // mojibake (no options)                                         dataprep::fix_mojibake
  kWhitespace,        // whitespace (no options)                                       dataprep::clean_whitespace
  kPii,               // {pii: {emails, ipv4, only_public_ips, ipv6, phones, *_replacement(s)}}    PiiMasker
  kGopherQuality,     // {gopher_quality: {min_doc_words, ..., stop_words}}            dataprep::gopher_quality
  kGopherRepetition,  // {gopher_repetition: {dup_para_frac, ..., dup_line_char_frac}} dataprep::gopher_repetition
  kDecontaminate,     // {decontaminate: {eval_files: [...], n, min_matches, text_field}}   DecontamIndex
  kDedup,             // {dedup: {exact, near, threshold, num_perm, seed, shingle, shingle_size, bands, rows, verify}}
  kStats,             // {stats: {top_k}}                                              CorpusStatsBuilder
};
// "normalize", "html", ...: the name a config writes.
const char* stage_name(CleanStageKind kind);
// Corpus-level stages (dedup, stats) see the survivors of every per-document stage, so they come after them.
bool is_per_document(CleanStageKind kind);

// One stage and its options; only the fields of its kind are used.
struct CleanStage {
  CleanStageKind kind = CleanStageKind::kWhitespace;
  NormalForm form = NormalForm::kNfc;    // normalize
  std::string url_placeholder;           // urls
  PiiConfig pii;                         // pii
  GopherQualityConfig quality;           // gopher_quality
  GopherRepetitionConfig repetition;     // gopher_repetition
  DecontamConfig decontam;               // decontaminate
  std::vector<std::string> eval_files;   // decontaminate: evaluation texts, read as inputs are (absolute paths)
  std::string eval_text_field = "text";  // decontaminate: the text field of JSONL evaluation files
  DedupConfig dedup;                     // dedup
  int top_k = 20;                        // stats: most frequent words reported
};

struct CleanConfig {
  std::vector<std::string> inputs;                    // files read in order (absolute after loading)
  CleanInputFormat format = CleanInputFormat::kAuto;  // auto: ".jsonl"/".json" JSONL, ".bin" tokens, others text
  std::string text_field = "text";                    // JSONL: the field cleaned (a string); others are kept
  TextSplit text_split = TextSplit::kBlankLines;      // text files: a document per blank-line-separated block
  std::string tokenizer;           // token files: the tokenizer that wrote them (any open_tokenizer accepts)
  std::string separator_token;     // token files: the special token between documents; "": the file's own separator
  std::string output;              // JSONL written; text inputs become {"<text_field>": ...}
  int threads = 1;                 // workers for the per-document stages, >= 1
  int chunk_size = 256;            // documents per work item, >= 1
  std::vector<CleanStage> stages;  // in order; dedup and stats after all per-document stages
};

// Binds a config tree (the file's top level). ConfigError naming file:line:col for unknown keys, stages and stage
// options, wrong types and bad values, and for a dedup or stats stage placed before a per-document stage.
CleanConfig parse_clean_config(const core::ConfigNode& root);
// load_config (base chain + "key=value" overrides), then parse_clean_config.
CleanConfig load_clean_config(const std::filesystem::path& file, const std::vector<std::string>& overrides = {});

// What one stage did. Bytes are UTF-8 bytes of the text field.
struct StageReport {
  std::string stage;  // its config name
  int64_t documents_in = 0;
  int64_t documents_out = 0;
  int64_t bytes_in = 0;                    // of the documents it saw
  int64_t bytes_out = 0;                   // of the documents it passed on
  std::map<std::string, int64_t> removed;  // reason -> documents: the gopher reasons, "contaminated",
                                           // "exact_duplicate", "near_duplicate"
  PiiCounts pii;                           // pii: replacements made
};

struct CleanReport {
  int64_t documents_in = 0;                        // read from the inputs
  int64_t documents_out = 0;                       // written
  int64_t bytes_in = 0;                            // text-field bytes read (not the other JSONL fields)
  int64_t bytes_out = 0;                           // text-field bytes written
  std::vector<StageReport> stages;                 // one per configured stage, in order
  std::optional<CorpusStats> stats;                // when a stats stage ran: of the documents reaching it
  std::map<std::string, int64_t> removed() const;  // every stage's removals, summed by reason
  // One table row per stage ("clean_stages": stage, index, documents_in/out, bytes_in/out, removed as
  // "reason=n;..." sorted by reason, pii_emails/ipv4/ipv6/phones) and scalars at `step`: clean/documents_in, ...,
  // clean/removed/<reason>, clean/pii/<kind>, clean/stats/{documents,vocab_size,chars_mean,words_mean}; the corpus
  // statistics text as the root attribute "clean_corpus_stats".
  void write_report(core::RunLog& log, int64_t step = 0) const;
  std::string summary() const;  // a human-readable table of the above
};

struct CleanProgress {
  int64_t documents_read = 0;
  int64_t documents_written = 0;  // so far; with dedup, written in the second pass
  int64_t bytes_read = 0;         // of the input files
  int64_t input_bytes = 0;        // total size of the input files (for a progress bar)
  bool final_pass = false;        // true while writing dedup's survivors
};
using CleanProgressFn = std::function<void(const CleanProgress&)>;

// Runs the pipeline: a reader thread reads the next batch of threads * chunk_size raw documents while the current one
// is processed; parsing (JSON, token decoding), the per-document stages, the output lines and dedup's sketches run on
// config.threads workers over chunks of chunk_size documents, reassembled in input order (the output and report do
// not depend on threads or chunk_size: PII replacement cycles restart at every document). Memory: up to three batches
// in flight; with dedup, its signatures and one pass over a spill file (output + ".spill", removed afterwards)
// instead of the texts. The output's directory is created; an output that is also an input, or a token file without
// a tokenizer, is a ConfigError. Malformed UTF-8 or a bad JSONL line is a DataError naming file:line (and the stage);
// IoError for files that cannot be read or written.
CleanReport run_clean(const CleanConfig& config, const CleanProgressFn& progress = {});

}  // namespace troupe::dataprep
