// Implementation of tokenizers/corpus.h: file listing, cut points, thread pools over texts/units, the
// streaming token-file encoder, the JSONL encoder and corpus-level BPE training.
#include "tokenizers/corpus.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <exception>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>
#include <unordered_map>

#include "core/build_info.h"
#include "core/errors.h"
#include "core/runtime.h"
#include "tokenizers/bpe_trainer.h"
#include "tokenizers/pretokenizer.h"

namespace troupe::tokenizers {
namespace fs = std::filesystem;

namespace {

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

bool graphic(char c) { return c > 0x20 && c < 0x7f; }

// Boundaries 0 = b0 < b1 < ... < bk = text.size() at cut points roughly `unit` bytes apart.
std::vector<size_t> unit_bounds(std::string_view text, size_t unit) {
  std::vector<size_t> bounds{0};
  size_t target = unit;
  while (target + 1 < text.size()) {
    const size_t p = find_cut(text, bounds.back(), target);
    if (p == std::string_view::npos) {
      target += unit;
      continue;
    }
    bounds.push_back(p);
    target = p + unit;
  }
  bounds.push_back(text.size());
  return bounds;
}

}  // namespace

bool read_more(std::ifstream& in, const fs::path& path, std::string& buf, size_t bytes) {
  const size_t old = buf.size();
  buf.resize(old + bytes);
  in.read(buf.data() + old, static_cast<std::streamsize>(bytes));
  buf.resize(old + static_cast<size_t>(in.gcount()));
  if (in.bad()) throw IoError("cannot read " + path.string());
  return !in.eof();
}

std::vector<fs::path> list_text_files(const std::vector<std::string>& inputs) {
  std::vector<fs::path> files;
  for (const std::string& input : inputs) {
    const fs::path path(input);
    std::error_code ec;
    if (fs::is_directory(path, ec)) {
      for (auto it = fs::recursive_directory_iterator(path); it != fs::recursive_directory_iterator(); ++it) {
        const std::string name = it->path().filename().string();
        if (!name.empty() && name[0] == '.') {
          if (it->is_directory()) it.disable_recursion_pending();
          continue;
        }
        if (it->is_regular_file()) files.push_back(it->path());
      }
    } else if (fs::is_regular_file(path, ec)) {
      files.push_back(path);
    } else {
      throw IoError("input '" + input + "' is not a file or directory");
    }
  }
  std::sort(files.begin(), files.end());
  files.erase(std::unique(files.begin(), files.end()), files.end());
  if (files.empty()) throw DataError("no input files found in the given paths");
  return files;
}

bool pattern_supports_cuts(const std::string& pattern) { return pattern == kGpt2Pattern || pattern == kCl100kPattern; }

size_t find_cut(std::string_view text, size_t lo, size_t hi) {
  if (text.size() < 3) return std::string_view::npos;
  hi = std::min(hi, text.size() - 1);
  // p - 1 is the newline; scan newlines at q in [max(lo, 1), hi - 1] from the right.
  const size_t first_q = std::max<size_t>(lo, 1);
  size_t end = hi;  // search [first_q, end)
  while (end > first_q) {
    const void* found = ::memrchr(text.data() + first_q, '\n', end - first_q);
    if (found == nullptr) return std::string_view::npos;
    const size_t q = static_cast<size_t>(static_cast<const char*>(found) - text.data());
    if (graphic(text[q - 1]) && graphic(text[q + 1])) return q + 1;  // q >= lo, so q + 1 > lo
    end = q;
  }
  return std::string_view::npos;
}

int resolve_threads(int threads) {
  if (threads < 0) throw ConfigError("threads must be >= 0 (0 = all cores), got " + std::to_string(threads));
  return threads > 0 ? threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
}

std::vector<std::vector<int>> encode_batch(const BpeTokenizer& tok, const std::vector<std::string_view>& texts,
                                           int threads, const std::set<std::string>& allowed_special) {
  std::vector<std::vector<int>> out(texts.size());
  parallel_for_index(texts.size(), resolve_threads(threads), [&](size_t i) {
    out[i] = allowed_special.empty() ? tok.encode_ordinary(texts[i]) : tok.encode(texts[i], allowed_special, false);
  });
  return out;
}

std::vector<int> encode_ordinary_parallel(const BpeTokenizer& tok, std::string_view text, int threads) {
  const int t = resolve_threads(threads);
  constexpr size_t kMinParallelBytes = 1 << 18;
  if (t == 1 || text.size() < kMinParallelBytes || !pattern_supports_cuts(tok.spec().pattern)) {
    return tok.encode_ordinary(text);
  }
  // Several units per thread so an uneven unit does not leave a core idle.
  const size_t unit = std::max<size_t>(1 << 16, text.size() / (4 * static_cast<size_t>(t)));
  const std::vector<size_t> bounds = unit_bounds(text, unit);
  std::vector<std::vector<int>> parts(bounds.size() - 1);
  parallel_for_index(parts.size(), t, [&](size_t i) {
    parts[i] = tok.encode_ordinary(text.substr(bounds[i], bounds[i + 1] - bounds[i]));
  });
  size_t total = 0;
  for (const auto& p : parts) total += p.size();
  std::vector<int> ids;
  ids.reserve(total);
  for (const auto& p : parts) ids.insert(ids.end(), p.begin(), p.end());
  return ids;
}

TokenizerFile train_bpe_on_files(const std::vector<fs::path>& files, const BpeTrainingConfig& config,
                                 BpeTrainingReport* report_out) {
  if (config.pattern.empty()) throw ConfigError("tokenizer training: pattern must not be empty");
  if (config.block_bytes == 0) throw ConfigError("tokenizer training: block_bytes must be positive");
  std::set<std::string> seen;
  for (const auto& s : config.special_tokens) {
    if (s.empty()) throw ConfigError("tokenizer training: special tokens must not be empty");
    if (!seen.insert(s).second) throw ConfigError("tokenizer training: special token '" + s + "' given twice");
  }
  BpeTrainerOptions trainer_options;
  trainer_options.vocab_size = config.vocab_size;
  trainer_options.min_frequency = config.min_frequency;
  trainer_options.threads = config.threads;
  BpeTrainer trainer(trainer_options);  // validates
  const int threads = resolve_threads(config.threads);
  const Pretokenizer pretokenizer(config.pattern);

  BpeTrainingReport report;
  auto start = std::chrono::steady_clock::now();
  constexpr size_t kUnitBytes = 1 << 20;  // fixed, so counts never depend on the thread count
  for (const fs::path& file : files) {
    report.bytes += for_each_text_block(file, config.block_bytes, true, [&](std::string_view block) {
      const std::vector<size_t> bounds = unit_bounds(block, kUnitBytes);
      const size_t units = bounds.size() - 1;
      const size_t workers = std::min<size_t>(threads, units);
      std::vector<std::unordered_map<std::string_view, int64_t>> counts(std::max<size_t>(workers, 1));
      std::vector<uint64_t> piece_totals(counts.size(), 0);
      std::atomic<size_t> next{0};
      auto work = [&](size_t w) {
        std::vector<std::string_view> pieces;
        auto count_segment = [&](std::string_view segment) {
          pieces.clear();
          pretokenizer.split(segment, pieces);
          for (std::string_view p : pieces) ++counts[w][p];
          piece_totals[w] += pieces.size();
        };
        for (size_t u; (u = next.fetch_add(1)) < units;) {
          std::string_view unit = block.substr(bounds[u], bounds[u + 1] - bounds[u]);
          // Special-token text is a boundary and is not counted.
          while (!unit.empty()) {
            size_t at = std::string_view::npos, len = 0;
            for (const auto& s : config.special_tokens) {
              const size_t f = unit.find(s);
              if (f < at || (f == at && f != std::string_view::npos && s.size() > len)) {
                at = f;
                len = s.size();
              }
            }
            if (at == std::string_view::npos) {
              count_segment(unit);
              break;
            }
            count_segment(unit.substr(0, at));
            unit.remove_prefix(at + len);
          }
        }
      };
      std::vector<std::thread> pool;
      for (size_t w = 1; w < workers; ++w) pool.emplace_back(work, w);
      work(0);
      for (auto& th : pool) th.join();
      for (size_t w = 0; w < counts.size(); ++w) {
        for (const auto& [word, n] : counts[w]) trainer.add_word_count(word, n);
        report.pieces += piece_totals[w];
      }
    });
    ++report.files;
  }
  report.count_seconds = seconds_since(start);
  report.distinct_words = trainer.distinct_words();

  start = std::chrono::steady_clock::now();
  BpeTrainingResult result = trainer.train();
  report.merge_seconds = seconds_since(start);
  report.merges = result.merges.size();

  TokenizerFile out;
  out.spec.name = config.name;
  out.spec.pattern = config.pattern;
  const int n = static_cast<int>(result.tokens_by_rank.size());
  out.spec.tokens_by_rank = std::move(result.tokens_by_rank);
  for (size_t i = 0; i < config.special_tokens.size(); ++i) {
    out.spec.special_tokens[config.special_tokens[i]] = n + static_cast<int>(i);
  }
  for (size_t i = 0; i < result.merges.size(); ++i) {
    out.merges.push_back({256 + static_cast<int>(i), result.merges[i].first, result.merges[i].second});
  }
  std::string sources;
  for (size_t i = 0; i < files.size() && i < 20; ++i) sources += (i ? ", " : "") + files[i].string();
  if (files.size() > 20) sources += ", ... (" + std::to_string(files.size()) + " files)";
  out.metadata = {{"created", core::utc_timestamp()},
                  {"troupe_version", std::string(core::troupe_version()) + " (" + core::git_sha() + ")"},
                  {"trainer", "byte-level BPE, highest count first, ties to the earlier (left, right) pair"},
                  {"requested_vocab_size", std::to_string(config.vocab_size)},
                  {"min_frequency", std::to_string(config.min_frequency)},
                  {"training_bytes", std::to_string(report.bytes)},
                  {"distinct_words", std::to_string(report.distinct_words)},
                  {"sources", sources}};
  if (report_out != nullptr) *report_out = report;
  return out;
}

}  // namespace troupe::tokenizers
