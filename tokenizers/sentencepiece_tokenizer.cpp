// Implementation of tokenizers/sentencepiece_tokenizer.h, following sentencepiece 0.2's unigram_model.cc
// (EncodeOptimized), bpe_model.cc (Encode) and sentencepiece_processor.cc (byte fallback, unknown runs, Decode),
// including their float arithmetic, so ties break the same way.
#include "tokenizers/sentencepiece_tokenizer.h"

#include <algorithm>
#include <cfloat>
#include <cstdio>
#include <queue>

#include "core/errors.h"

namespace troupe::tokenizers {
namespace {

constexpr std::string_view kSpaceSymbol = "\xE2\x96\x81";  // U+2581
constexpr float kUnkPenalty = 10.0F;

// sentencepiece's OneCharLen: the UTF-8 length its lead byte announces (no validation).
size_t one_char_len(std::string_view s) {
  static constexpr unsigned char kLen[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
  return std::min<size_t>(kLen[static_cast<unsigned char>(s[0]) >> 4], s.size());
}

std::string byte_piece(unsigned char b) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "<0x%02X>", b);
  return buf;
}

// "<0xXX>" -> XX, or -1.
int piece_to_byte(std::string_view piece) {
  if (piece.size() != 6 || piece.substr(0, 3) != "<0x" || piece[5] != '>') return -1;
  int v = 0;
  for (const char c : piece.substr(3, 2)) {
    v *= 16;
    if (c >= '0' && c <= '9') {
      v += c - '0';
    } else if (c >= 'A' && c <= 'F') {
      v += c - 'A' + 10;
    } else {
      return -1;
    }
  }
  return v;
}

void replace_space_symbols(std::string_view piece, std::string& out) {
  for (size_t at = 0;;) {
    const size_t found = piece.find(kSpaceSymbol, at);
    out.append(piece.substr(at, found == std::string_view::npos ? std::string_view::npos : found - at));
    if (found == std::string_view::npos) return;
    out += ' ';
    at = found + kSpaceSymbol.size();
  }
}

}  // namespace

SentencePieceTokenizer::SentencePieceTokenizer(SentencePieceModel model, const std::string& origin)
    : model_(std::move(model)) {
  min_score_ = FLT_MAX;
  max_score_ = FLT_MIN;
  for (size_t i = 0; i < model_.pieces.size(); ++i) {
    const SentencePiece& p = model_.pieces[i];
    const int id = static_cast<int>(i);
    const std::string where = origin + ": pieces[" + std::to_string(i) + "]";
    if (p.piece.empty()) throw DataError(where + ": empty piece");
    const bool normal =
        p.type == PieceType::kNormal || p.type == PieceType::kUserDefined || p.type == PieceType::kUnused;
    if (!(normal ? normal_ : reserved_).emplace(p.piece, id).second) {
      throw DataError(where + ": duplicate piece '" + p.piece + "'");
    }
    if (p.type == PieceType::kUserDefined) {
      user_defined_.push_back(p.piece);
      longest_user_defined_ = std::max(longest_user_defined_, p.piece.size());
    }
    if (p.type == PieceType::kUnknown) {
      if (unk_id_ >= 0)
        throw DataError(where + ": a second UNKNOWN piece (the first is id " + std::to_string(unk_id_) + ")");
      unk_id_ = id;
    }
    if (p.type == PieceType::kByte && !model_.trainer.byte_fallback) {
      throw DataError(where + ": BYTE piece '" + p.piece + "' in a model without trainer_spec.byte_fallback");
    }
    if (p.type == PieceType::kByte && piece_to_byte(p.piece) < 0) {
      throw DataError(where + ": BYTE piece '" + p.piece + "' is not of the form <0xXX>");
    }
    if (p.type == PieceType::kNormal) {
      min_score_ = std::min(min_score_, p.score);
      max_score_ = std::max(max_score_, p.score);
    }
    if (!normal) continue;
    for (size_t n = 1; n < p.piece.size(); ++n) prefixes_.emplace(p.piece.substr(0, n), -1);
    prefixes_[p.piece] = id;
  }
  if (unk_id_ < 0) throw DataError(origin + ": no piece of type UNKNOWN (sentencepiece requires <unk>)");
  normalizer_ = std::make_shared<const SentencePieceNormalizer>(model_.normalizer, user_defined_,
                                                                model_.trainer.treat_whitespace_as_suffix, origin);
}

SentencePieceTokenizer SentencePieceTokenizer::from_file(const std::filesystem::path& path) {
  return SentencePieceTokenizer(load_sentencepiece_model(path), path.string());
}

int SentencePieceTokenizer::id_of(std::string_view piece) const {
  if (const auto it = reserved_.find(piece); it != reserved_.end()) return it->second;
  if (const auto it = normal_.find(piece); it != normal_.end()) return it->second;
  return -1;
}

int SentencePieceTokenizer::model_id(std::string_view piece) const {
  const int id = id_of(piece);
  return id < 0 ? unk_id_ : id;
}

// Viterbi over every piece that starts at each character boundary; a character no piece of its length covers
// gets an <unk> edge scored min_score - 10. User-defined pieces score length * max_score - 0.1 (in double, as
// sentencepiece computes it) so they always win.
std::vector<SentencePieceTokenizer::Segment> SentencePieceTokenizer::encode_unigram(std::string_view text) const {
  struct Best {
    int id = -1;
    float score = 0.0F;
    long starts_at = -1;
  };
  const size_t size = text.size();
  const float unk_score = min_score_ - kUnkPenalty;
  std::vector<Best> best(size + 1);
  for (size_t start = 0; start < size;) {
    const float here = best[start].score;
    const size_t mblen = one_char_len(text.substr(start));
    bool has_single = false;
    for (size_t end = start + 1; end <= size; ++end) {
      const auto it = prefixes_.find(text.substr(start, end - start));
      if (it == prefixes_.end()) break;
      const int id = it->second;
      if (id < 0 || model_.pieces[static_cast<size_t>(id)].type == PieceType::kUnused) continue;
      const size_t length = end - start;
      Best& target = best[end];
      if (model_.pieces[static_cast<size_t>(id)].type == PieceType::kUserDefined) {
        const double candidate = (static_cast<float>(length) * max_score_ - 0.1) + here;
        if (target.starts_at == -1 || candidate > target.score)
          target = {id, static_cast<float>(candidate), static_cast<long>(start)};
      } else {
        const float candidate = model_.pieces[static_cast<size_t>(id)].score + here;
        if (target.starts_at == -1 || candidate > target.score) target = {id, candidate, static_cast<long>(start)};
      }
      if (length == mblen) has_single = true;
    }
    if (!has_single) {
      Best& target = best[start + mblen];
      const float candidate = unk_score + here;
      if (target.starts_at == -1 || candidate > target.score) target = {unk_id_, candidate, static_cast<long>(start)};
    }
    start += mblen;
  }
  std::vector<Segment> out;
  for (size_t end = size; end > 0;) {
    const Best& node = best[end];
    const auto begin = static_cast<size_t>(node.starts_at);
    out.emplace_back(text.substr(begin, end - begin), node.id);
    end = begin;
  }
  std::reverse(out.begin(), out.end());
  return out;
}

// Characters (user-defined pieces whole and frozen), then repeatedly the adjacent pair whose concatenation is
// the highest-scoring piece (leftmost on ties); merges through UNUSED pieces are undone afterwards.
std::vector<SentencePieceTokenizer::Segment> SentencePieceTokenizer::encode_bpe(std::string_view text) const {
  struct Symbol {
    long prev;
    long next;
    bool freeze;
    std::string_view piece;
  };
  struct Pair {
    long left;
    long right;
    float score;
    size_t size;
  };
  const auto lower = [](const Pair& a, const Pair& b) {
    return a.score != b.score ? a.score < b.score : a.left > b.left;
  };
  std::priority_queue<Pair, std::vector<Pair>, decltype(lower)> agenda(lower);
  std::vector<Symbol> symbols;
  RevMerges rev;
  const auto add_pair = [&](long left, long right) {
    if (left == -1 || right == -1 || symbols[left].freeze || symbols[right].freeze) return;
    const std::string_view piece(symbols[left].piece.data(), symbols[left].piece.size() + symbols[right].piece.size());
    const auto it = normal_.find(piece);
    if (it == normal_.end()) return;
    const SentencePiece& p = model_.pieces[static_cast<size_t>(it->second)];
    agenda.push({left, right, p.score, piece.size()});
    if (p.type == PieceType::kUnused) rev[piece] = {symbols[left].piece, symbols[right].piece};
  };
  for (std::string_view rest = text; !rest.empty();) {
    Symbol s{static_cast<long>(symbols.size()) - 1, 0, false, {}};
    size_t length = one_char_len(rest);
    for (size_t n = std::min(longest_user_defined_, rest.size()); n > 0; --n) {
      if (std::find(user_defined_.begin(), user_defined_.end(), rest.substr(0, n)) != user_defined_.end()) {
        length = n;
        s.freeze = true;
        break;
      }
    }
    s.piece = rest.substr(0, length);
    rest.remove_prefix(length);
    s.next = rest.empty() ? -1 : static_cast<long>(symbols.size()) + 1;
    symbols.push_back(s);
  }
  for (size_t i = 1; i < symbols.size(); ++i) add_pair(static_cast<long>(i) - 1, static_cast<long>(i));
  while (!agenda.empty()) {
    const Pair top = agenda.top();
    agenda.pop();
    Symbol& left = symbols[top.left];
    Symbol& right = symbols[top.right];
    if (left.piece.empty() || right.piece.empty() || left.piece.size() + right.piece.size() != top.size) continue;
    left.piece = std::string_view(left.piece.data(), left.piece.size() + right.piece.size());
    left.next = right.next;
    if (right.next >= 0) symbols[right.next].prev = top.left;
    right.piece = {};
    add_pair(left.prev, top.left);
    add_pair(top.left, left.next);
  }
  std::vector<Segment> out;
  if (symbols.empty()) return out;
  for (long i = 0; i != -1; i = symbols[i].next) resegment(symbols[i].piece, rev, out);
  return out;
}

void SentencePieceTokenizer::resegment(std::string_view piece, const RevMerges& rev, std::vector<Segment>& out) const {
  const int id = model_id(piece);
  const auto it = model_.pieces[static_cast<size_t>(id)].type == PieceType::kUnused ? rev.find(piece) : rev.end();
  if (it == rev.end()) {
    out.emplace_back(piece, id);
    return;
  }
  resegment(it->second.first, rev, out);
  resegment(it->second.second, rev, out);
}

// SentencePieceProcessor's post-processing: an unknown piece becomes its bytes' <0xXX> pieces under byte
// fallback; otherwise a run of unknown pieces becomes one <unk>.
std::vector<int> SentencePieceTokenizer::finish(const std::vector<Segment>& segments) const {
  std::vector<int> ids;
  ids.reserve(segments.size());
  bool previous_unknown = false;
  for (const auto& [piece, id] : segments) {
    const bool unknown = is_unknown(id);
    if (unknown && model_.trainer.byte_fallback) {
      for (const char c : piece) ids.push_back(model_id(byte_piece(static_cast<unsigned char>(c))));
      previous_unknown = false;
      continue;
    }
    if (!(unknown && previous_unknown)) ids.push_back(id);
    previous_unknown = unknown;
  }
  return ids;
}

std::vector<int> SentencePieceTokenizer::encode(std::string_view text) const {
  const std::string normalized = normalizer_->normalize(text);
  const bool bpe = model_.trainer.model_type == SentencePieceModelType::kBpe;
  return finish(bpe ? encode_bpe(normalized) : encode_unigram(normalized));
}

std::vector<std::string> SentencePieceTokenizer::encode_pieces(std::string_view text) const {
  std::vector<std::string> out;
  for (const int id : encode(text)) out.push_back(model_.pieces[static_cast<size_t>(id)].piece);
  return out;
}

std::string SentencePieceTokenizer::decode(const std::vector<int>& ids) const {
  std::string text;
  std::string bytes;  // a run of byte pieces, decoded together
  const auto flush_bytes = [&] {
    for (size_t at = 0; at < bytes.size();) {
      const size_t n = detail::sentencepiece_char_length(std::string_view(bytes).substr(at));
      text += n == 0 ? std::string_view("\xEF\xBF\xBD") : std::string_view(bytes).substr(at, n);
      at += n == 0 ? 1 : n;
    }
    bytes.clear();
  };
  // sentencepiece strips one U+2581 from the first visible piece, and keeps stripping while pieces are only
  // that stripped space unless remove_extra_whitespaces (is_bos_ws / bos_ws_seen in its Decode).
  const bool strip = model_.normalizer.add_dummy_prefix || model_.normalizer.remove_extra_whitespaces;
  bool is_bos_ws = true;
  bool bos_ws_seen = false;
  for (const int id : ids) {
    if (id < 0 || id >= vocab_size()) {
      throw DataError("token id " + std::to_string(id) + " is outside the vocabulary [0, " +
                      std::to_string(vocab_size()) + ")");
    }
    const SentencePiece& p = model_.pieces[static_cast<size_t>(id)];
    if (p.type == PieceType::kByte) {
      bytes += static_cast<char>(piece_to_byte(p.piece));
      continue;
    }
    flush_bytes();
    if (bos_ws_seen || !text.empty()) is_bos_ws = false;
    bos_ws_seen = false;
    if (p.type == PieceType::kControl) continue;
    if (p.type == PieceType::kUnknown) {
      text += model_.trainer.unk_surface;
      continue;
    }
    std::string_view piece = p.piece;
    if (is_bos_ws && strip && piece.substr(0, kSpaceSymbol.size()) == kSpaceSymbol) {
      piece.remove_prefix(kSpaceSymbol.size());
      bos_ws_seen = !model_.normalizer.remove_extra_whitespaces;
    }
    replace_space_symbols(piece, text);
  }
  flush_bytes();
  return text;
}

}  // namespace troupe::tokenizers
