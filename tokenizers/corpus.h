// Tokenizers at corpus scale: listing text files, training BPE on them, encoding many documents on all
// threads, and the block reader and index-parallel loop data/corpus_encoding.h builds on. The per-string algorithms
// live in tokenizers/bpe_tokenizer.h and tokenizers/bpe_trainer.h; this file only splits work and reads/writes files.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <exception>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "core/errors.h"
#include "tokenizers/bpe_tokenizer.h"
#include "tokenizers/tokenizer_file.h"

namespace troupe::tokenizers {

// Expands inputs (files or directories, searched recursively; hidden entries skipped) into a sorted list of
// regular files. IoError naming the input when one does not exist; DataError when nothing is found.
std::vector<std::filesystem::path> list_text_files(const std::vector<std::string>& inputs);

// ---- cutting text so that pieces can be encoded independently ----------------------------------------------

// True for patterns where cut_points() is exact: GPT-2/r50k/p50k and cl100k_base.
bool pattern_supports_cuts(const std::string& pattern);

// The last position p in (lo, hi] where text[p-2] and text[p] are printable ASCII other than space and
// text[p-1] is '\n', or std::string_view::npos. For the GPT-2 and cl100k patterns every such p is a piece
// boundary of the whole text that pre-tokenising text[..p) alone reproduces, so
// encode(text) == encode(text[..p)) + encode(text[p..)) (tested on the reference vectors and a corpus).
size_t find_cut(std::string_view text, size_t lo, size_t hi);

// ---- parallel encoding ---------------------------------------------------------------------------------------

// Resolves a thread count: 0 = hardware concurrency.
int resolve_threads(int threads);

// Encodes each text on `threads` threads (dynamic scheduling, results in input order). Same semantics as
// BpeTokenizer::encode with disallowed special text encoded as ordinary text.
std::vector<std::vector<int>> encode_batch(const BpeTokenizer& tok, const std::vector<std::string_view>& texts,
                                           int threads, const std::set<std::string>& allowed_special = {});

// encode_ordinary(text), split at cut points across threads when the pattern supports cuts and the text is
// large; identical ids to the single-threaded call.
std::vector<int> encode_ordinary_parallel(const BpeTokenizer& tok, std::string_view text, int threads);

// ---- building blocks for corpus-scale work (also used by data/corpus_encoding.h) -------------------------------

// Runs fn(i) for i in [0, n) on up to `threads` threads, handing out indices one at a time. The first exception
// (lowest index) is rethrown on the calling thread after all workers stop.
template <typename Fn>
void parallel_for_index(size_t n, int threads, Fn&& fn);

// Reads up to `bytes` more bytes of `in` onto the end of `buf`; returns false at end of file. IoError naming `path`.
bool read_more(std::ifstream& in, const std::filesystem::path& path, std::string& buf, size_t bytes);

// Calls fn(text_chunk) over a file in blocks of about `block_bytes` that end at cut points (or at end of file);
// when `cuts` is false the whole file is one block. Returns the bytes read.
template <typename Fn>
uint64_t for_each_text_block(const std::filesystem::path& path, size_t block_bytes, bool cuts, Fn&& fn);

// ---- training ------------------------------------------------------------------------------------------------

struct BpeTrainingConfig {
  int vocab_size = 8192;  // ordinary tokens including the 256 bytes; special tokens come after
  int64_t min_frequency = 2;
  std::string pattern;                      // pre-tokenisation regex (e.g. kGpt2Pattern)
  std::vector<std::string> special_tokens;  // ids vocab..vocab+k-1 in this order; never learned from the text
  int threads = 0;
  std::string name = "troupe-bpe";
  size_t block_bytes = 64u << 20;
};

struct BpeTrainingReport {
  size_t files = 0;
  uint64_t bytes = 0;
  uint64_t pieces = 0;
  size_t distinct_words = 0;
  size_t merges = 0;
  double count_seconds = 0;
  double merge_seconds = 0;
};

// Pre-tokenises and counts the files on all threads (text is cut into ~1 MiB units at find_cut() points, so
// counts do not depend on the thread count), then trains (tokenizers/bpe_trainer.h). Occurrences of special-token
// text are removed before counting. The result's metadata records the sources and settings.
TokenizerFile train_bpe_on_files(const std::vector<std::filesystem::path>& files, const BpeTrainingConfig& config,
                                 BpeTrainingReport* report = nullptr);

// ---- template definitions ----

template <typename Fn>
void parallel_for_index(size_t n, int threads, Fn&& fn) {
  const size_t workers = std::min<size_t>(std::max(1, threads), n);
  if (workers <= 1) {
    for (size_t i = 0; i < n; ++i) fn(i);
    return;
  }
  std::atomic<size_t> next{0};
  std::mutex error_mutex;
  size_t error_index = n;
  std::exception_ptr error;
  auto run = [&] {
    for (size_t i; (i = next.fetch_add(1)) < n;) {
      try {
        fn(i);
      } catch (...) {
        std::lock_guard<std::mutex> lock(error_mutex);
        if (i < error_index) {
          error_index = i;
          error = std::current_exception();
        }
        next.store(n);
      }
    }
  };
  std::vector<std::thread> pool;
  for (size_t t = 1; t < workers; ++t) pool.emplace_back(run);
  run();
  for (auto& th : pool) th.join();
  if (error) std::rethrow_exception(error);
}

template <typename Fn>
uint64_t for_each_text_block(const std::filesystem::path& path, size_t block_bytes, bool cuts, Fn&& fn) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IoError("cannot open input file " + path.string());
  std::string buf;
  uint64_t total = 0;
  bool more = true;
  // Never grow the buffer far past the file: a 64 MiB zero-filled block per small file made reading 10k small
  // documents take minutes. One byte more than the file holds lets the read see the end of the file.
  std::error_code ec;
  const uintmax_t size = std::filesystem::file_size(path, ec);
  const size_t step = ec ? block_bytes : static_cast<size_t>(std::min<uintmax_t>(block_bytes, size + 1));
  while (more || !buf.empty()) {
    if (more) more = read_more(in, path, buf, std::max<size_t>(step, 1));
    size_t cut = buf.size();
    if (more) {
      if (!cuts || buf.size() < 2) continue;
      cut = find_cut(buf, 0, buf.size() - 1);
      if (cut == std::string_view::npos) continue;  // no cut yet: read another block onto this one
    }
    fn(std::string_view(buf.data(), cut));
    total += cut;
    buf.erase(0, cut);
  }
  return total;
}

}  // namespace troupe::tokenizers
