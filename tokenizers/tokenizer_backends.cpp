// Implementation of tokenizers/tokenizer_backends.h: thin TokenizerBackend adapters over SentencePieceTokenizer and
// HfTokenizer, and the BpeSpec (name, special tokens) each presents.
#include "tokenizers/tokenizer_backends.h"

#include "tokenizers/hf_tokenizer.h"
#include "tokenizers/sentencepiece_tokenizer.h"

namespace troupe::tokenizers {
namespace {

class SentencePieceBackend : public TokenizerBackend {
 public:
  explicit SentencePieceBackend(SentencePieceTokenizer tok) : tok_(std::move(tok)) {}
  std::vector<int> encode_ordinary(std::string_view text, bool /*at_start*/) const override {
    return tok_.encode(text);
  }
  bool encode_with_specials(std::string_view /*text*/, std::vector<int>& /*out*/) const override { return false; }
  std::string decode(const std::vector<int>& ids) const override { return tok_.decode(ids); }
  std::vector<std::string> pieces(std::string_view text) const override {
    std::vector<std::string> out;  // each token's own decoded text, so `inspect` can re-encode it
    for (const int id : tok_.encode(text)) out.push_back(tok_.decode({id}));
    return out;
  }
  int vocab_size() const override { return tok_.vocab_size(); }

 private:
  SentencePieceTokenizer tok_;
};

class HfBackend : public TokenizerBackend {
 public:
  explicit HfBackend(HfTokenizer tok) : tok_(std::move(tok)) {}
  std::vector<int> encode_ordinary(std::string_view text, bool at_start) const override {
    return tok_.encode(text, /*split_special_tokens=*/false, at_start);
  }
  bool encode_with_specials(std::string_view text, std::vector<int>& out) const override {
    out = tok_.encode(text);
    return true;
  }
  std::string decode(const std::vector<int>& ids) const override { return tok_.decode(ids); }
  std::vector<std::string> pieces(std::string_view text) const override {
    std::vector<std::string> out;  // each token's own decoded text, so `inspect` can re-encode it
    for (const int id : tok_.encode(text, false)) out.push_back(tok_.decode({id}));
    return out;
  }
  int vocab_size() const override { return tok_.vocab_size(); }

 private:
  HfTokenizer tok_;
};

}  // namespace

BpeTokenizer open_sentencepiece_model(const std::filesystem::path& path) {
  SentencePieceTokenizer tok = SentencePieceTokenizer::from_file(path);
  BpeSpec spec;
  spec.name = path.stem().string();
  for (int id = 0; id < tok.vocab_size(); ++id) {
    const SentencePiece& p = tok.model().pieces[static_cast<size_t>(id)];
    if (p.type == PieceType::kControl) spec.special_tokens.emplace(p.piece, id);
  }
  return BpeTokenizer(std::move(spec), std::make_shared<SentencePieceBackend>(std::move(tok)));
}

BpeTokenizer open_hf_tokenizer(const std::filesystem::path& path) {
  HfTokenizer tok = HfTokenizer::from_file(path);
  BpeSpec spec;
  spec.name =
      path.parent_path().filename().string().empty() ? path.stem().string() : path.parent_path().filename().string();
  for (const HfAddedToken& t : tok.added_tokens()) {
    if (t.special) spec.special_tokens.emplace(t.content, t.id);
  }
  return BpeTokenizer(std::move(spec), std::make_shared<HfBackend>(std::move(tok)));
}

}  // namespace troupe::tokenizers
