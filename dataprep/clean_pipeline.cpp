// The `troupe data clean` pipeline (see dataprep/clean_pipeline.h): batches read ahead by a reader thread
// (dataprep/clean_reader.h), workers parsing each document and running the per-document stages, its output line and
// dedup sketch over chunks, in-order reassembly, then dedup and stats. Not the config binding
// (dataprep/clean_config.cpp), not the sources and not the CLI.
#include "dataprep/clean_pipeline.h"

#include <fmt/format.h>

#include <atomic>
#include <exception>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "core/errors.h"
#include "core/run_log.h"
#include "dataprep/clean_reader.h"
#include "dataprep/markup.h"
#include "tokenizers/tokenizer_file.h"

namespace troupe::dataprep {
namespace {

using Json = nlohmann::ordered_json;  // ordered: the other fields of a line come out in their input order

// One document after the per-document stages, as its worker left it for the in-order part of the pipeline.
struct Document {
  std::string where;                  // "file:line"
  std::string text;                   // cleaned
  bool keep = true;                   // survived every per-document stage
  std::string line;                   // kept: the output JSONL line
  std::optional<DedupSketch> sketch;  // kept, when a dedup stage follows: its key and signature
};

StageReport& operator+=(StageReport& a, const StageReport& b) {
  a.documents_in += b.documents_in;
  a.documents_out += b.documents_out;
  a.bytes_in += b.bytes_in;
  a.bytes_out += b.bytes_out;
  for (const auto& [reason, n] : b.removed) a.removed[reason] += n;
  a.pii += b.pii;
  return a;
}

std::vector<StageReport> empty_reports(const std::vector<CleanStage>& stages) {
  std::vector<StageReport> out(stages.size());
  for (size_t i = 0; i < stages.size(); ++i) out[i].stage = stage_name(stages[i].kind);
  return out;
}

// What one chunk's documents did, summed into the report in chunk order.
struct ChunkTally {
  std::vector<StageReport> stages;  // one per configured stage
  int64_t bytes_in = 0;             // text bytes of the documents read
};

// The per-document work of one worker: parsing, the per-document stages (its own PII masker: PCRE2 patterns compiled
// once per worker), the output line and the dedup sketch.
class StageRunner {
 public:
  StageRunner(const CleanConfig& config, const SourceOptions& source,
              const std::vector<std::unique_ptr<DecontamIndex>>& indexes, const Deduplicator* dedup)
      : config_(config), source_(source), indexes_(indexes), dedup_(dedup) {
    for (const auto& s : config.stages)
      maskers_.push_back(s.kind == CleanStageKind::kPii ? std::make_unique<PiiMasker>(s.pii) : nullptr);
  }

  // `raw` parsed into `doc` and through the stages, tallied into `tally`.
  void process(RawDocument&& raw, Document& doc, ChunkTally& tally) {
    ParsedDocument parsed = parse_document(std::move(raw), source_);
    tally.bytes_in += static_cast<int64_t>(parsed.text.size());
    doc.where = std::move(parsed.where);
    doc.text = std::move(parsed.text);
    doc.keep = run(doc, tally.stages);
    if (!doc.keep) return;
    doc.line = output_line(parsed.record, doc);
    if (dedup_ != nullptr) try {
        doc.sketch = dedup_->sketch(doc.text);
      } catch (const DataError& e) {
        throw DataError(doc.where + ": stage dedup: " + e.what());
      }
  }

 private:
  // The per-document stages on `doc` until one drops it (false), tallying into `reports` (one per stage).
  bool run(Document& doc, std::vector<StageReport>& reports) {
    for (size_t i = 0; i < config_.stages.size() && is_per_document(config_.stages[i].kind); ++i) {
      StageReport& r = reports[i];
      ++r.documents_in;
      r.bytes_in += static_cast<int64_t>(doc.text.size());
      std::string reason;
      try {
        reason = apply(i, doc.text, r);
      } catch (const DataError& e) {
        throw DataError(doc.where + ": stage " + stage_name(config_.stages[i].kind) + ": " + e.what());
      }
      if (!reason.empty()) {
        ++r.removed[reason];
        return false;
      }
      ++r.documents_out;
      r.bytes_out += static_cast<int64_t>(doc.text.size());
    }
    return true;
  }

  // Stage i on `text` (changed in place); the removal reason, "" when kept.
  std::string apply(size_t i, std::string& text, StageReport& r) {
    const CleanStage& s = config_.stages[i];
    switch (s.kind) {
      case CleanStageKind::kNormalize: text = normalize(text, s.form); break;
      case CleanStageKind::kHtml: text = html_to_text(text); break;
      case CleanStageKind::kUrls: text = replace_urls(text, s.url_placeholder); break;
      case CleanStageKind::kMojibake: text = fix_mojibake(text); break;
      case CleanStageKind::kWhitespace: text = clean_whitespace(text); break;
      case CleanStageKind::kPii:
        maskers_[i]->restart_cycle();
        text = maskers_[i]->mask(text, &r.pii);
        break;
      case CleanStageKind::kGopherQuality: return gopher_quality(text, s.quality).reason;
      case CleanStageKind::kGopherRepetition: return gopher_repetition(text, s.repetition).reason;
      case CleanStageKind::kDecontaminate: return indexes_[i]->check(text).contaminated ? "contaminated" : "";
      case CleanStageKind::kDedup:
      case CleanStageKind::kStats: break;
    }
    return "";
  }

  // The JSONL line written for a kept document: its record (an object for text and token sources) with the cleaned
  // text in the text field.
  std::string output_line(Json& record, const Document& doc) const {
    if (record.is_null()) record = Json::object();
    record[config_.text_field] = doc.text;
    try {
      return record.dump();
    } catch (const Json::exception& e) {
      throw DataError(doc.where + ": cannot write the cleaned document: " + e.what());
    }
  }

  const CleanConfig& config_;
  const SourceOptions& source_;
  const std::vector<std::unique_ptr<DecontamIndex>>& indexes_;
  const Deduplicator* dedup_;                        // null without a dedup stage
  std::vector<std::unique_ptr<PiiMasker>> maskers_;  // (stages) one per pii stage, null elsewhere
};

// f(worker, chunk) for every chunk on `workers` threads (this one included). The exception of the lowest failing
// chunk is rethrown, so which error surfaces does not depend on timing.
void for_each_chunk(size_t chunks, size_t workers, const std::function<void(size_t, size_t)>& f) {
  std::vector<std::exception_ptr> errors(chunks);
  std::atomic<size_t> next{0};
  auto body = [&](size_t worker) {
    for (size_t c = next++; c < chunks; c = next++) try {
        f(worker, c);
      } catch (...) {
        errors[c] = std::current_exception();
      }
  };
  std::vector<std::thread> threads;
  for (size_t w = 1; w < std::min(workers, chunks); ++w) threads.emplace_back(body, w);
  body(0);
  for (auto& t : threads) t.join();
  for (auto& e : errors)
    if (e) std::rethrow_exception(e);
}

// The documents of every evaluation file into one index per decontaminate stage.
std::vector<std::unique_ptr<DecontamIndex>> build_indexes(const CleanConfig& config, const SourceOptions& source) {
  std::vector<std::unique_ptr<DecontamIndex>> out(config.stages.size());
  for (size_t i = 0; i < config.stages.size(); ++i) {
    const CleanStage& s = config.stages[i];
    if (s.kind != CleanStageKind::kDecontaminate) continue;
    out[i] = std::make_unique<DecontamIndex>(s.decontam);
    SourceOptions eval = source;
    eval.text_field = s.eval_text_field;
    DocumentReader reader(s.eval_files, eval);
    for (RawDocument raw; reader.next(raw);) {
      const ParsedDocument doc = parse_document(std::move(raw), eval);
      out[i]->add(doc.where, doc.text);
    }
  }
  return out;
}

class Writer {
 public:
  explicit Writer(const std::string& path) : path_(path), out_(path, std::ios::binary | std::ios::trunc) {
    if (!out_) throw IoError("clean: cannot create " + path);
  }
  void write(const std::string& line) {
    out_ << line << '\n';
    if (!out_) throw IoError("clean: write to " + path_ + " failed");
  }
  void close() {
    out_.close();
    if (!out_) throw IoError("clean: closing " + path_ + " failed");
  }

 private:
  std::string path_;
  std::ofstream out_;
};

int64_t total_size(const std::vector<std::string>& files) {
  int64_t total = 0;
  std::error_code ec;
  for (const auto& f : files) total += static_cast<int64_t>(std::filesystem::file_size(f, ec));
  return total;
}

std::optional<size_t> find_stage(const CleanConfig& config, CleanStageKind kind) {
  for (size_t i = 0; i < config.stages.size(); ++i)
    if (config.stages[i].kind == kind) return i;
  return std::nullopt;
}

// Pass 1: read (a batch ahead, on the reader thread), run the per-document stages in parallel chunks, hand each
// survivor to `sink` in input order. `dedup` (when a dedup stage follows) only sketches documents here.
void run_per_document(const CleanConfig& config, const SourceOptions& source, const Deduplicator* dedup,
                      CleanReport& report, CleanProgress& progress, const CleanProgressFn& progress_fn,
                      const std::function<void(Document&)>& sink) {
  const auto indexes = build_indexes(config, source);
  const size_t workers = static_cast<size_t>(config.threads);
  const size_t chunk = static_cast<size_t>(config.chunk_size);
  std::vector<StageRunner> runners;
  for (size_t w = 0; w < workers; ++w) runners.emplace_back(config, source, indexes, dedup);
  BatchPrefetcher reader(DocumentReader(config.inputs, source), workers * chunk);
  while (true) {
    int64_t bytes_read = 0;
    std::vector<RawDocument> batch = reader.next(bytes_read);
    const size_t n = batch.size();
    if (n == 0) break;
    std::vector<Document> docs(n);
    const size_t chunks = (n + chunk - 1) / chunk;
    std::vector<ChunkTally> tallies(chunks, ChunkTally{empty_reports(config.stages), 0});
    for_each_chunk(chunks, workers, [&](size_t worker, size_t c) {
      for (size_t i = c * chunk; i < std::min(n, (c + 1) * chunk); ++i)
        runners[worker].process(std::move(batch[i]), docs[i], tallies[c]);
    });
    report.documents_in += static_cast<int64_t>(n);
    for (const auto& t : tallies) {
      report.bytes_in += t.bytes_in;
      for (size_t s = 0; s < t.stages.size(); ++s) report.stages[s] += t.stages[s];
    }
    for (auto& doc : docs)
      if (doc.keep) sink(doc);
    progress.documents_read = report.documents_in;
    progress.documents_written = report.documents_out;
    progress.bytes_read = bytes_read;
    if (progress_fn) progress_fn(progress);
  }
}

void count_through(StageReport& r, const std::string& text) {
  ++r.documents_in;
  ++r.documents_out;
  r.bytes_in += static_cast<int64_t>(text.size());
  r.bytes_out += static_cast<int64_t>(text.size());
}

}  // namespace

namespace {

// The corpus-level end of the pipeline: the stats stage (where it stands) and the output file.
class Tail {
 public:
  Tail(const CleanConfig& config, CleanReport& report)
      : report_(report), stats_at_(find_stage(config, CleanStageKind::kStats)), out_(config.output) {
    if (stats_at_) stats_.emplace(config.stages[*stats_at_].top_k);
  }
  // The stats stage sees `text` when it stands at this point of the stage list (before or after dedup).
  void count(const std::string& text, bool here) {
    if (!stats_ || !here) return;
    count_through(report_.stages[*stats_at_], text);
    stats_->add(text);
  }
  void write(const std::string& line, int64_t text_bytes) {
    out_.write(line);
    ++report_.documents_out;
    report_.bytes_out += text_bytes;
  }
  void close() {
    out_.close();
    if (stats_) report_.stats = stats_->finish();
  }
  std::optional<size_t> stats_at() const { return stats_at_; }

 private:
  CleanReport& report_;
  std::optional<size_t> stats_at_;
  std::optional<CorpusStatsBuilder> stats_;
  Writer out_;
};

// Removes a file when it goes out of scope, errors ignored (an exception may already be on its way).
struct RemoveOnExit {
  std::string path;
  ~RemoveOnExit() {
    std::error_code ec;
    std::filesystem::remove(path, ec);
  }
};

// Dedup decides only after the last document, so survivors wait in a spill file (one JSONL line each), not in
// memory; a second pass copies the kept lines to the output. The workers sketch each survivor (normalisation, SHA-1
// key, MinHash signature); here only the index is updated, in input order.
void run_with_dedup(const CleanConfig& config, const SourceOptions& source, size_t dedup_at, Tail& tail,
                    CleanReport& report, CleanProgress& progress, const CleanProgressFn& progress_fn) {
  const bool stats_first = tail.stats_at() && *tail.stats_at() < dedup_at;
  const RemoveOnExit spill_file{config.output + ".spill"};
  Deduplicator dedup(config.stages[dedup_at].dedup);
  StageReport& r = report.stages[dedup_at];
  Writer spill(spill_file.path);
  std::vector<int64_t> text_bytes;  // (spilled documents) so that the second pass parses no line it need not
  run_per_document(config, source, &dedup, report, progress, progress_fn, [&](Document& doc) {
    tail.count(doc.text, stats_first);
    ++r.documents_in;
    r.bytes_in += static_cast<int64_t>(doc.text.size());
    text_bytes.push_back(static_cast<int64_t>(doc.text.size()));
    dedup.add(*doc.sketch);
    spill.write(doc.line);
  });
  spill.close();
  const DedupResult result = dedup.finish();
  progress.final_pass = true;
  std::ifstream in(spill_file.path, std::ios::binary);
  const size_t every = static_cast<size_t>(config.threads) * static_cast<size_t>(config.chunk_size);
  const bool stats_after = tail.stats_at() && !stats_first;
  std::string line;
  for (size_t i = 0, k = 0; k < result.kept.size() && std::getline(in, line); ++i) {
    if (result.kept[k] != i) continue;
    ++k;
    ++r.documents_out;
    r.bytes_out += text_bytes[i];
    if (stats_after) tail.count(Json::parse(line)[config.text_field].get<std::string>(), true);
    tail.write(line, text_bytes[i]);
    progress.documents_written = report.documents_out;
    if (progress_fn && k % every == 0) progress_fn(progress);
  }
  if (result.exact_removed) r.removed["exact_duplicate"] = static_cast<int64_t>(result.exact_removed);
  if (result.near_removed) r.removed["near_duplicate"] = static_cast<int64_t>(result.near_removed);
}

// The output must not overwrite an input (it is truncated before the inputs are read); its directory is created.
void check_output(const CleanConfig& config) {
  std::error_code ec;
  const auto out = std::filesystem::weakly_canonical(config.output, ec);
  for (const auto& in : config.inputs)
    if (std::filesystem::weakly_canonical(in, ec) == out)
      throw ConfigError("clean: output " + config.output + " is also an input");
  const auto dir = std::filesystem::path(config.output).parent_path();
  if (!dir.empty()) std::filesystem::create_directories(dir, ec);
}

// The tokenizer of token-file inputs (config.tokenizer); ConfigError when a token file is read without one.
std::optional<tokenizers::BpeTokenizer> load_source_tokenizer(const CleanConfig& config) {
  std::vector<std::string> files = config.inputs;
  for (const auto& s : config.stages) files.insert(files.end(), s.eval_files.begin(), s.eval_files.end());
  for (const auto& f : files)
    if (input_format(f, config.format) == CleanInputFormat::kTokens && config.tokenizer.empty())
      throw ConfigError("clean: " + f + " is a token file: set `tokenizer` (the tokenizer that wrote it)");
  if (config.tokenizer.empty()) return std::nullopt;
  return tokenizers::open_tokenizer(config.tokenizer);
}

SourceOptions source_options(const CleanConfig& config, const tokenizers::BpeTokenizer* tokenizer) {
  SourceOptions out{config.format, config.text_field, config.text_split, tokenizer, std::nullopt};
  if (!config.separator_token.empty()) {
    if (tokenizer == nullptr) throw ConfigError("clean: separator_token needs `tokenizer`");
    const auto& specials = tokenizer->spec().special_tokens;
    const auto it = specials.find(config.separator_token);
    if (it == specials.end())
      throw ConfigError("clean: separator_token '" + config.separator_token + "' is not a special token of " +
                        config.tokenizer);
    out.separator = it->second;
  }
  return out;
}
}  // namespace

CleanReport run_clean(const CleanConfig& config, const CleanProgressFn& progress_fn) {
  const std::optional<tokenizers::BpeTokenizer> tokenizer = load_source_tokenizer(config);
  const SourceOptions source = source_options(config, tokenizer ? &*tokenizer : nullptr);
  check_output(config);
  CleanReport report;
  report.stages = empty_reports(config.stages);
  CleanProgress progress;
  progress.input_bytes = total_size(config.inputs);
  Tail tail(config, report);
  if (const auto dedup_at = find_stage(config, CleanStageKind::kDedup)) {
    run_with_dedup(config, source, *dedup_at, tail, report, progress, progress_fn);
  } else {
    run_per_document(config, source, nullptr, report, progress, progress_fn, [&](Document& doc) {
      tail.count(doc.text, true);
      tail.write(doc.line, static_cast<int64_t>(doc.text.size()));
    });
  }
  tail.close();
  progress.documents_written = report.documents_out;
  if (progress_fn) progress_fn(progress);
  return report;
}

std::map<std::string, int64_t> CleanReport::removed() const {
  std::map<std::string, int64_t> out;
  for (const auto& s : stages)
    for (const auto& [reason, n] : s.removed) out[reason] += n;
  return out;
}

namespace {
std::string removed_text(const std::map<std::string, int64_t>& removed) {
  std::string out;
  for (const auto& [reason, n] : removed) out += fmt::format("{}{}={}", out.empty() ? "" : ";", reason, n);
  return out;
}
}  // namespace

void CleanReport::write_report(core::RunLog& log, int64_t step) const {
  for (size_t i = 0; i < stages.size(); ++i) {
    const StageReport& s = stages[i];
    log.log_table_row("clean_stages", step,
                      {{"stage", s.stage},
                       {"index", std::to_string(i)},
                       {"documents_in", std::to_string(s.documents_in)},
                       {"documents_out", std::to_string(s.documents_out)},
                       {"bytes_in", std::to_string(s.bytes_in)},
                       {"bytes_out", std::to_string(s.bytes_out)},
                       {"removed", removed_text(s.removed)},
                       {"pii_emails", std::to_string(s.pii.emails)},
                       {"pii_ipv4", std::to_string(s.pii.ipv4)},
                       {"pii_ipv6", std::to_string(s.pii.ipv6)},
                       {"pii_phones", std::to_string(s.pii.phones)}});
  }
  std::map<std::string, double> scalars = {{"clean/documents_in", static_cast<double>(documents_in)},
                                           {"clean/documents_out", static_cast<double>(documents_out)},
                                           {"clean/bytes_in", static_cast<double>(bytes_in)},
                                           {"clean/bytes_out", static_cast<double>(bytes_out)}};
  for (const auto& [reason, n] : removed()) scalars["clean/removed/" + reason] = static_cast<double>(n);
  PiiCounts pii;
  for (const auto& s : stages) pii += s.pii;
  scalars["clean/pii/emails"] = static_cast<double>(pii.emails);
  scalars["clean/pii/ipv4"] = static_cast<double>(pii.ipv4);
  scalars["clean/pii/ipv6"] = static_cast<double>(pii.ipv6);
  scalars["clean/pii/phones"] = static_cast<double>(pii.phones);
  if (stats) {
    scalars["clean/stats/documents"] = static_cast<double>(stats->documents);
    scalars["clean/stats/vocab_size"] = static_cast<double>(stats->vocab_size);
    scalars["clean/stats/chars_mean"] = stats->chars.mean;
    scalars["clean/stats/words_mean"] = stats->words.mean;
    log.set_attribute("clean_corpus_stats", format_corpus_stats(*stats));
  }
  log.log_scalars(step, scalars);
}

std::string CleanReport::summary() const {
  std::string out = fmt::format("{:<20} {:>10} {:>10} {:>12} {:>12}  removed\n", "stage", "docs in", "docs out",
                                "bytes in", "bytes out");
  for (const auto& s : stages)
    out += fmt::format("{:<20} {:>10} {:>10} {:>12} {:>12}  {}\n", s.stage, s.documents_in, s.documents_out, s.bytes_in,
                       s.bytes_out, removed_text(s.removed));
  out += fmt::format("{:<20} {:>10} {:>10} {:>12} {:>12}\n", "total", documents_in, documents_out, bytes_in, bytes_out);
  if (stats) out += format_corpus_stats(*stats);
  return out;
}

}  // namespace troupe::dataprep
