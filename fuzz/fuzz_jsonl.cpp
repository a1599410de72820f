// Fuzz target: the JSONL readers. The first byte picks the reader, the rest is the file: SFT data
// (data::load_sft_jsonl), preference pairs in text, ids and conversation form (data::load_preference_jsonl), RL and
// evaluation prompt lines (data::prompt_of_line + encode_prompt), evaluation task documents
// (evaluation::load_documents), corpus JSONL encoding (data::encode_jsonl) and the JSONL source of `troupe data clean`
// (dataprep::DocumentReader + parse_document), and K-wise rankings (data::load_ranking_jsonl, first byte 6). A tiny
// byte-level tokenizer and a ChatML template stand in for a model's. Malformed lines must be a DataError naming
// file:line (ConfigError for a setting), nothing else.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "core/errors.h"
#include "data/chat_data.h"
#include "data/corpus_encoding.h"
#include "data/ranking_data.h"
#include "data/text_datasets.h"
#include "dataprep/clean_reader.h"
#include "evaluation/task.h"
#include "fuzz/fuzz_support.h"
#include "tokenizers/bpe_tokenizer.h"
#include "tokenizers/chat_template.h"
#include "tokenizers/pretokenizer.h"

namespace {

namespace data = troupe::data;
namespace tk = troupe::tokenizers;

// 256 single bytes, a few merges, ChatML's special tokens and <|endoftext|>: enough for every reader to encode.
const tk::BpeTokenizer& tokenizer() {
  static const tk::BpeTokenizer tok = [] {
    tk::BpeSpec spec;
    for (int b = 0; b < 256; ++b) spec.tokens_by_rank.push_back(std::string(1, static_cast<char>(b)));
    for (const char* merged : {"he", "ll", "hell", "hello", " w", "or", " wor", " world"})
      spec.tokens_by_rank.push_back(merged);
    spec.pattern = tk::kGpt2Pattern;
    spec.special_tokens = {{"<|endoftext|>", 264}, {"<|im_start|>", 265}, {"<|im_end|>", 266}};
    return tk::BpeTokenizer(std::move(spec));
  }();
  return tok;
}

std::shared_ptr<const tk::ChatTemplate> chat_template() {
  static const auto tmpl = std::make_shared<const tk::ChatTemplate>(
      "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
      "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}",
      "chatml", std::nullopt, std::string("<|im_end|>"));
  return tmpl;
}

data::TextDatasetOptions dataset_options() {
  data::TextDatasetOptions options;
  options.eos_id = 264;
  options.max_length = 48;
  options.threads = 1;
  options.vocab_size = 267;
  options.chat_template = chat_template();
  return options;
}

void prompts(const std::filesystem::path& path) {
  data::for_each_jsonl_ordered(
      path, "prompt file", [](const nlohmann::ordered_json& line, const std::string& where, int64_t) {
        const data::PromptText prompt =
            data::prompt_of_line(line, "prompt", chat_template().get(), "prompts.chat_template", where);
        (void)data::encode_prompt(tokenizer(), prompt);
        return true;
      });
}

void clean_source(const std::filesystem::path& path) {
  troupe::dataprep::SourceOptions options;
  options.format = troupe::dataprep::CleanInputFormat::kJsonl;
  troupe::dataprep::DocumentReader reader({path.string()}, options);
  troupe::dataprep::RawDocument doc;
  while (reader.next(doc)) (void)troupe::dataprep::parse_document(std::move(doc), options);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const auto path = troupe::fuzz::scratch() / "fz.jsonl";
  troupe::fuzz::write(path, std::string_view(reinterpret_cast<const char*>(data) + 1, size - 1));
  try {
    // The first byte's remainder mod 6 picks a reader as it always has (the seeds keep their readers); 6 alone picks
    // the rankings reader, added later.
    switch (data[0] == 6 ? 6 : data[0] % 6) {
      case 0: (void)data::load_sft_jsonl(tokenizer(), path, dataset_options()); break;
      case 1: (void)data::load_preference_jsonl(&tokenizer(), path, dataset_options()); break;
      case 2: prompts(path); break;
      case 3: (void)troupe::evaluation::load_documents(path); break;
      case 4: {
        data::JsonlEncodeOptions options;
        options.threads = 1;
        (void)data::encode_jsonl(tokenizer(), path, troupe::fuzz::scratch() / "out.jsonl", options);
        break;
      }
      case 5: clean_source(path); break;
      default: (void)data::load_ranking_jsonl(tokenizer(), path, dataset_options()); break;
    }
  } catch (const troupe::Error&) {
  }
  return 0;
}
