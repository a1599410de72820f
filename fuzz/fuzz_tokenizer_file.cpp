// Fuzz target: every tokenizer file loader. The first byte picks the format (mod 7), the rest is the file:
//   0 Troupe / Hugging Face tokenizer JSON, 1 a .tiktoken rank file (fixed .meta.json), 2 a .tiktoken's .meta.json
//   (fixed rank file), all through open_tokenizer; 3 GPT-2's encoder.json and vocab.bpe (split at the first NUL)
//   through open_tokenizer on their directory; 4 a BERT WordPiece vocab.txt; 5 a tokenizer_config.json's chat
//   template (ChatTemplate::from_tokenizer_config, then rendered over a short conversation); 6 a SentencePiece
//   .model (protobuf ModelProto) through open_tokenizer.
// A loaded tokenizer encodes and decodes a short text. Malformed files must be DataError / ConfigError naming the
// file; a template that fails to parse or render must be a DataError.
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "core/errors.h"
#include "fuzz/fuzz_support.h"
#include "tokenizers/chat_template.h"
#include "tokenizers/foreign_formats.h"
#include "tokenizers/pretokenizer.h"
#include "tokenizers/tokenizer_file.h"
#include "tokenizers/wordpiece.h"

namespace {

namespace tk = troupe::tokenizers;
constexpr const char* kText = "Hello, world! 123 fuzz <|endoftext|> Unaffable";

void bpe(const std::string& path) {
  const auto tok = tk::open_tokenizer(path);
  const auto ids = tok.encode_ordinary(kText);
  (void)tok.decode_lossy_utf8(ids);
}

// A valid .meta.json (GPT-2's pattern, one special token) beside the fuzzed rank file. (The first version of this
// target wrote {"pattern": ...}, which the reader rejects for want of "pat_str" before it opens the rank file: the
// rank-file parser went unfuzzed.)
const std::string& meta_json() {
  static const std::string meta =
      nlohmann::json{{"pat_str", tk::kGpt2Pattern}, {"special_tokens", {{"<|endoftext|>", 300}}}}.dump();
  return meta;
}

// A valid 256-byte .tiktoken rank file beside the fuzzed .meta.json.
std::string byte_ranks() {
  std::string out;
  for (int b = 0; b < 256; ++b)
    out += tk::detail::base64_encode(std::string(1, static_cast<char>(b))) + " " + std::to_string(b) + "\n";
  return out;
}

void gpt2(const std::string& body) {
  const size_t nul = body.find('\0');
  const auto dir = troupe::fuzz::scratch() / "gpt2";
  std::filesystem::create_directories(dir);
  troupe::fuzz::write(dir / "encoder.json", body.substr(0, nul));
  troupe::fuzz::write(dir / "vocab.bpe", nul == std::string::npos ? std::string() : body.substr(nul + 1));
  bpe(dir.string());
}

void wordpiece(const std::string& path) {
  const auto tok = tk::WordPieceTokenizer::from_vocab_file(path);
  (void)tok.decode(tok.encode(kText));
}

void chat_template(const std::string& path) {
  const auto tmpl = tk::ChatTemplate::from_tokenizer_config(path);
  const auto messages = nlohmann::ordered_json::parse(
      R"([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
          {"role": "assistant", "content": "Hello."}, {"role": "user", "content": "2+2?"}])");
  (void)tmpl.render(messages, true);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const std::string body(reinterpret_cast<const char*>(data) + 1, size - 1);
  const auto dir = troupe::fuzz::scratch();
  try {
    switch (data[0] % 7) {
      case 0:
        troupe::fuzz::write(dir / "tok.json", body);
        bpe((dir / "tok.json").string());
        break;
      case 1:
        troupe::fuzz::write(dir / "fz.tiktoken", body);
        troupe::fuzz::write(dir / "fz.meta.json", meta_json());
        bpe((dir / "fz.tiktoken").string());
        break;
      case 2: {
        static const std::string ranks = byte_ranks();
        troupe::fuzz::write(dir / "meta.tiktoken", ranks);
        troupe::fuzz::write(dir / "meta.meta.json", body);
        bpe((dir / "meta.tiktoken").string());
        break;
      }
      case 3: gpt2(body); break;
      case 4:
        troupe::fuzz::write(dir / "vocab.txt", body);
        wordpiece((dir / "vocab.txt").string());
        break;
      case 6:
        troupe::fuzz::write(dir / "fz.model", body);
        bpe((dir / "fz.model").string());
        break;
      default:
        troupe::fuzz::write(dir / "tokenizer_config.json", body);
        chat_template((dir / "tokenizer_config.json").string());
        break;
    }
  } catch (const troupe::Error&) {
  }
  return 0;
}
