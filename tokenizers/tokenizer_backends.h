// SentencePiece models and general Hugging Face tokenizer.json files opened as BpeTokenizers (through
// TokenizerBackend), so open_tokenizer() and every command built on it accept them. Only adapters live here: the
// encoders are tokenizers/sentencepiece_tokenizer.h and tokenizers/hf_tokenizer.h.
#pragma once

#include <filesystem>

#include "tokenizers/bpe_tokenizer.h"

namespace troupe::tokenizers {

// A SentencePiece .model. Special tokens: the CONTROL pieces (<s>, </s>, ...), recognized by encode() when
// allowed (sentencepiece itself treats their text as plain text, as encode_ordinary() does). decode() is
// SentencePieceProcessor.decode (control pieces decode to nothing).
BpeTokenizer open_sentencepiece_model(const std::filesystem::path& path);

// A Hugging Face tokenizer.json with a BPE model (any pipeline tokenizers/hf_tokenizer.h supports). Special
// tokens: the added tokens marked special; encode() with all of them allowed is Tokenizer.encode(text,
// add_special_tokens=False), encode_ordinary() the same with encode_special_tokens. decode() keeps specials.
BpeTokenizer open_hf_tokenizer(const std::filesystem::path& path);

}  // namespace troupe::tokenizers
