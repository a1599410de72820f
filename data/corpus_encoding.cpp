// Implementation of data/corpus_encoding.h.
#include "data/corpus_encoding.h"

#include <chrono>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "core/errors.h"
#include "tokenizers/corpus.h"

namespace troupe::data {
namespace fs = std::filesystem;

namespace {

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

using tokenizers::encode_ordinary_parallel;
using tokenizers::for_each_text_block;
using tokenizers::parallel_for_index;
using tokenizers::pattern_supports_cuts;
using tokenizers::resolve_threads;

std::optional<int> document_separator(const BpeTokenizer& tok, const std::string& choice) {
  const auto& specials = tok.spec().special_tokens;
  if (choice == "none") return std::nullopt;
  const auto it = specials.find(choice == "auto" ? "<|endoftext|>" : choice);
  if (it != specials.end()) return it->second;
  if (choice == "auto") return std::nullopt;
  std::string known;
  for (const auto& [name, id] : specials) known += (known.empty() ? "" : ", ") + name;
  throw ConfigError("--separator '" + choice + "' is not a special token of " + tok.spec().name +
                    " (known: " + (known.empty() ? "none" : known) + "; or use auto / none)");
}

EncodeFilesReport encode_files_to_token_file(const BpeTokenizer& tok, const std::vector<fs::path>& files,
                                             const fs::path& output, const EncodeFilesOptions& options) {
  if (options.block_bytes == 0) throw ConfigError("encode: block_bytes must be positive");
  const auto start = std::chrono::steady_clock::now();
  const int threads = resolve_threads(options.threads);
  const bool cuts = pattern_supports_cuts(tok.spec().pattern);
  TokenFileWriter writer(output, tok.vocab_size(), tok.spec().name);
  writer.set_separator(options.separator);
  EncodeFilesReport report;
  for (const fs::path& file : files) {
    writer.add_source(file.string());
    report.bytes += for_each_text_block(file, options.block_bytes, cuts, [&](std::string_view block) {
      writer.append(encode_ordinary_parallel(tok, block, threads));
    });
    writer.end_document();
    ++report.files;
  }
  report.info = writer.finish();
  report.tokens = report.info.count;
  report.seconds = seconds_since(start);
  return report;
}

JsonlEncodeReport encode_jsonl(const BpeTokenizer& tok, const fs::path& input, const fs::path& output,
                               const JsonlEncodeOptions& options) {
  if (options.batch_lines == 0) throw ConfigError("encode: batch_lines must be positive");
  const auto start = std::chrono::steady_clock::now();
  const int threads = resolve_threads(options.threads);
  std::set<std::string> allowed;
  if (options.allow_special) {
    for (const auto& [text, id] : tok.spec().special_tokens) allowed.insert(text);
  }
  std::ifstream in(input, std::ios::binary);
  if (!in) throw IoError("cannot open " + input.string());
  const fs::path tmp = output.string() + ".tmp";
  if (output.has_parent_path()) fs::create_directories(output.parent_path());
  std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
  if (!out) throw IoError("cannot create " + tmp.string());
  struct TmpGuard {
    fs::path path;
    bool keep = false;
    ~TmpGuard() {
      std::error_code ec;
      if (!keep) fs::remove(path, ec);
    }
  } guard{tmp};

  JsonlEncodeReport report;
  std::vector<std::string> lines;
  std::vector<uint64_t> line_numbers;
  std::vector<std::string> encoded;
  std::vector<uint64_t> token_counts;
  uint64_t line_no = 0;
  auto flush_batch = [&] {
    encoded.assign(lines.size(), std::string());
    token_counts.assign(lines.size(), 0);
    parallel_for_index(lines.size(), threads, [&](size_t i) {
      const std::string where = input.string() + ":" + std::to_string(line_numbers[i]);
      nlohmann::json obj;
      try {
        obj = nlohmann::json::parse(lines[i]);
      } catch (const nlohmann::json::exception& e) {  // syntax, or a number out of range
        throw DataError(where + ": invalid JSON: " + e.what());
      }
      if (!obj.is_object()) throw DataError(where + ": expected a JSON object");
      const auto it = obj.find(options.text_field);
      if (it == obj.end() || !it->is_string()) {
        throw DataError(where + ": expected a string field '" + options.text_field + "'");
      }
      const std::string& text = it->get_ref<const std::string&>();
      std::vector<int> ids = allowed.empty() ? tok.encode_ordinary(text) : tok.encode(text, allowed, false);
      token_counts[i] = ids.size();
      obj[options.ids_field] = std::move(ids);
      encoded[i] = obj.dump(-1, ' ', false, nlohmann::json::error_handler_t::strict);
    });
    for (size_t i = 0; i < encoded.size(); ++i) {
      out << encoded[i] << '\n';
      report.tokens += token_counts[i];
    }
    report.lines += lines.size();
    lines.clear();
    line_numbers.clear();
    if (!out) throw IoError("cannot write " + tmp.string());
  };
  for (std::string line; std::getline(in, line);) {
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    lines.push_back(std::move(line));
    line_numbers.push_back(line_no);
    if (lines.size() >= options.batch_lines) flush_batch();
  }
  if (in.bad()) throw IoError("cannot read " + input.string());
  flush_batch();
  out.close();
  if (!out) throw IoError("cannot write " + tmp.string());
  std::error_code ec;
  fs::rename(tmp, output, ec);
  if (ec) throw IoError("cannot rename " + tmp.string() + " to " + output.string() + ": " + ec.message());
  guard.keep = true;
  report.seconds = seconds_since(start);
  return report;
}

}  // namespace troupe::data
