// Tokenizers at corpus scale: listing text files, training BPE on them, encoding many documents on all
// threads, and streaming large files into a token file (core/token_file.h). The per-string algorithms live in
// core/bpe_tokenizer.h and core/bpe_trainer.h; this file only splits work and reads/writes files.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "core/bpe_tokenizer.h"
#include "core/token_file.h"
#include "core/tokenizer_file.h"

namespace troupe::core {

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

// ---- streaming files into a token file ----------------------------------------------------------------------

// The separator id for `choice`: "none" -> nullopt, "auto" -> <|endoftext|> when the tokenizer has it (else
// nullopt), otherwise the id of that special token; ConfigError listing the known specials when it has none such.
std::optional<int> document_separator(const BpeTokenizer& tok, const std::string& choice);

struct EncodeFilesOptions {
  int threads = 0;                   // 0 = hardware concurrency
  size_t block_bytes = 16u << 20;    // bytes read per step; a file is never held whole unless its pattern forbids cuts
  std::optional<int> separator;      // id appended after each file (document), e.g. <|endoftext|>
};

struct EncodeFilesReport {
  size_t files = 0;
  uint64_t bytes = 0;
  uint64_t tokens = 0;  // including separators
  double seconds = 0;
  TokenFileInfo info;
};

// Each file is one document (special-token text inside it is ordinary text). Output is written through
// TokenFileWriter: nothing is left at `output` if this throws.
EncodeFilesReport encode_files_to_token_file(const BpeTokenizer& tok, const std::vector<std::filesystem::path>& files,
                                             const std::filesystem::path& output, const EncodeFilesOptions& options);

// ---- JSONL datasets ------------------------------------------------------------------------------------------

struct JsonlEncodeOptions {
  std::string text_field = "text";
  std::string ids_field = "ids";
  bool allow_special = false;  // special-token text -> its id (else encoded as ordinary text)
  int threads = 0;
  size_t batch_lines = 4096;
};

struct JsonlEncodeReport {
  uint64_t lines = 0;
  uint64_t tokens = 0;
  double seconds = 0;
};

// Reads one JSON object per line, adds `ids_field` with the ids of `text_field`, writes the objects in the same
// order (blank lines skipped). A malformed line, a non-object, or a missing/non-string text field throws
// DataError naming input:line; the output is written to a temp file and only renamed into place on success.
JsonlEncodeReport encode_jsonl(const BpeTokenizer& tok, const std::filesystem::path& input,
                               const std::filesystem::path& output, const JsonlEncodeOptions& options);

// ---- training ------------------------------------------------------------------------------------------------

struct BpeTrainingConfig {
  int vocab_size = 8192;       // ordinary tokens including the 256 bytes; special tokens come after
  int64_t min_frequency = 2;
  std::string pattern;         // pre-tokenisation regex (e.g. kGpt2Pattern)
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
// counts do not depend on the thread count), then trains (core/bpe_trainer.h). Occurrences of special-token
// text are removed before counting. The result's metadata records the sources and settings.
TokenizerFile train_bpe_on_files(const std::vector<std::filesystem::path>& files, const BpeTrainingConfig& config,
                                 BpeTrainingReport* report = nullptr);

}  // namespace troupe::core
