// Implementation of tokenizers/bpe_tokenizer.h: tiktoken's byte_pair_merge over a flat hashed rank table,
// an equivalent heap-based merge for long pieces, and a per-thread cache of merged pieces. No training here.
#include "tokenizers/bpe_tokenizer.h"

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <limits>
#include <queue>
#include <unordered_map>

#include "core/errors.h"
#include "tokenizers/pretokenizer.h"

namespace troupe::tokenizers {

namespace {

constexpr int kNoRank = std::numeric_limits<int>::max();

// Hash for short byte strings: 8 bytes at a time with a multiply-xorshift mix.
inline uint64_t hash_bytes(std::string_view s) {
  constexpr uint64_t kMul = 0x9E3779B97F4A7C15ull;
  uint64_t h = s.size() * kMul;
  const char* p = s.data();
  size_t n = s.size();
  for (; n >= 8; n -= 8, p += 8) {
    uint64_t w;
    std::memcpy(&w, p, 8);
    h = (h ^ w) * kMul;
    h ^= h >> 32;
  }
  uint64_t w = 0;
  std::memcpy(&w, p, n);
  h = (h ^ w) * kMul;
  h ^= h >> 33;  // murmur3 fmix64: spread every input bit over the low bits used for the slot index
  h *= 0xFF51AFD7ED558CCDull;
  h ^= h >> 33;
  h *= 0xC4CEB9FE1A85EC53ull;
  return h ^ (h >> 33);
}

// Open-addressing byte string -> rank table over the spec's token strings. One probe usually costs
// one slot read plus one compare, where std::unordered_map chases a node pointer too.
class RankTable {
 public:
  // Returns -1 on success, or the earlier rank holding the same bytes.
  int build(const std::vector<std::string>& tokens) {
    tokens_ = &tokens;
    size_t capacity = 16;
    while (capacity < tokens.size() * 2) capacity *= 2;
    slots_.assign(capacity, Slot{0, -1});
    mask_ = capacity - 1;
    for (size_t r = 0; r < tokens.size(); ++r) {
      const uint64_t h = hash_bytes(tokens[r]);
      size_t i = h & mask_;
      for (; slots_[i].rank >= 0; i = (i + 1) & mask_) {
        if (slots_[i].hash == static_cast<uint32_t>(h >> 32) && tokens[slots_[i].rank] == tokens[r]) {
          return slots_[i].rank;
        }
      }
      slots_[i] = Slot{static_cast<uint32_t>(h >> 32), static_cast<int>(r)};
    }
    return -1;
  }

  int find(std::string_view s) const { return find_hashed(s, hash_bytes(s)); }

  int find_hashed(std::string_view s, uint64_t h) const {
    const auto tag = static_cast<uint32_t>(h >> 32);
    for (size_t i = h & mask_;; i = (i + 1) & mask_) {
      const Slot& slot = slots_[i];
      if (slot.rank < 0) return kNoRank;
      if (slot.hash == tag && std::string_view((*tokens_)[slot.rank]) == s) return slot.rank;
    }
  }

 private:
  struct Slot {
    uint32_t hash;  // high half of the 64-bit hash (the low half picks the slot)
    int rank;       // -1: empty
  };
  std::vector<Slot> slots_;
  size_t mask_ = 0;
  const std::vector<std::string>* tokens_ = nullptr;
};

}  // namespace

struct BpeTokenizer::Tables {
  BpeSpec spec;
  RankTable rank_of;  // points into spec.tokens_by_rank; Tables is never copied or moved
  int byte_rank[256];
  std::vector<int> pair_rank;  // rank of each 2-byte token, indexed (b0 << 8) | b1; kNoRank if none
  std::unordered_map<int, std::string> special_by_id;
  Pretokenizer pretokenizer;
  int vocab_size = 0;
  std::shared_ptr<const TokenizerBackend> backend;  // set: encoding and decoding are the backend's
  uint64_t uid;  // unique per Tables ever built: keys the per-thread piece cache (an address could be reused)

  explicit Tables(BpeSpec s) : spec(std::move(s)), pretokenizer(spec.pattern), uid(next_uid()) {}

  static uint64_t next_uid() {
    static std::atomic<uint64_t> counter{1};
    return counter.fetch_add(1);
  }

  int rank(std::string_view bytes) const { return rank_of.find(bytes); }
};

namespace {

void build_rank_table(BpeTokenizer::Tables& t) {
  const auto& tokens = t.spec.tokens_by_rank;
  for (size_t i = 0; i < tokens.size(); ++i) {
    if (tokens[i].empty()) throw DataError("BPE spec '" + t.spec.name + "': token " + std::to_string(i) + " is empty");
  }
  if (const int first = t.rank_of.build(tokens); first >= 0) {
    throw DataError("BPE spec '" + t.spec.name + "': duplicate token at rank " + std::to_string(first) + ": '" +
                    tokens[first] + "'");
  }
  for (int b = 0; b < 256; ++b) {
    const char c = static_cast<char>(b);
    t.byte_rank[b] = t.rank(std::string_view(&c, 1));
    if (t.byte_rank[b] == kNoRank) {
      throw DataError("BPE spec '" + t.spec.name + "': single byte " + std::to_string(b) + " has no rank");
    }
  }
  // Every merge starts from 2-byte pairs; a flat table spares the hash probe for them.
  t.pair_rank.assign(65536, kNoRank);
  for (size_t i = 0; i < tokens.size(); ++i) {
    if (tokens[i].size() == 2) {
      t.pair_rank[(static_cast<unsigned char>(tokens[i][0]) << 8) | static_cast<unsigned char>(tokens[i][1])] =
          static_cast<int>(i);
    }
  }
}

void build_special_table(BpeTokenizer::Tables& t) {
  const int n = static_cast<int>(t.spec.tokens_by_rank.size());
  t.vocab_size = n;
  for (const auto& [text, id] : t.spec.special_tokens) {
    if (text.empty()) throw DataError("BPE spec '" + t.spec.name + "': empty special token");
    if (id < n && id >= 0 && t.spec.tokens_by_rank[id] != text) {
      throw DataError("BPE spec '" + t.spec.name + "': special token " + text + " id " + std::to_string(id) +
                      " clashes with an ordinary rank");
    }
    if (id < 0 || !t.special_by_id.emplace(id, text).second) {
      throw DataError("BPE spec '" + t.spec.name + "': special token " + text + " has invalid or duplicate id " +
                      std::to_string(id));
    }
    t.vocab_size = std::max(t.vocab_size, id + 1);
  }
}

}  // namespace

BpeTokenizer::BpeTokenizer(BpeSpec spec) {
  auto tables = std::make_shared<Tables>(std::move(spec));
  build_rank_table(*tables);
  build_special_table(*tables);
  tables_ = std::move(tables);
}

BpeTokenizer::BpeTokenizer(BpeSpec spec, std::shared_ptr<const TokenizerBackend> backend) {
  if (!backend) throw DataError("BPE spec '" + spec.name + "': null tokenizer backend");
  if (!spec.tokens_by_rank.empty()) throw DataError("BPE spec '" + spec.name + "': a backend spec has no ranks");
  auto tables = std::make_shared<Tables>(std::move(spec));
  build_special_table(*tables);
  tables->vocab_size = std::max(tables->vocab_size, backend->vocab_size());
  tables->backend = std::move(backend);
  tables_ = std::move(tables);
}

namespace {

int pair_rank_at(const BpeTokenizer::Tables& t, std::string_view piece, size_t i) {
  return t.pair_rank[(static_cast<unsigned char>(piece[i]) << 8) | static_cast<unsigned char>(piece[i + 1])];
}

// Appends the rank of each part; part i spans [starts[i], starts[i + 1]).
void emit_parts(const BpeTokenizer::Tables& t, std::string_view piece, const std::vector<size_t>& starts,
                std::vector<int>& out) {
  for (size_t i = 0; i + 1 < starts.size(); ++i) {
    const int r = t.rank(piece.substr(starts[i], starts[i + 1] - starts[i]));
    if (r == kNoRank) throw DataError("BPE spec '" + t.spec.name + "': merged token has no rank (inconsistent ranks)");
    out.push_back(r);
  }
}

// tiktoken's _byte_pair_merge: parts[i] = (start offset, rank of the pair starting there). Each round
// merges the leftmost lowest-rank pair. O(n^2) in the piece length, but fastest for short pieces.
void merge_scan(const BpeTokenizer::Tables& t, std::string_view piece, std::vector<int>& out) {
  thread_local std::vector<std::pair<size_t, int>> parts;
  parts.clear();
  for (size_t i = 0; i + 1 < piece.size(); ++i) parts.emplace_back(i, pair_rank_at(t, piece, i));
  parts.emplace_back(piece.size() - 1, kNoRank);
  parts.emplace_back(piece.size(), kNoRank);
  auto rank_after_merge = [&](size_t i) {
    return i + 3 < parts.size() ? t.rank(piece.substr(parts[i].first, parts[i + 3].first - parts[i].first)) : kNoRank;
  };
  while (true) {
    int min_rank = kNoRank;
    size_t min_i = 0;
    for (size_t i = 0; i + 1 < parts.size(); ++i) {
      if (parts[i].second < min_rank) {
        min_rank = parts[i].second;
        min_i = i;
      }
    }
    if (min_rank == kNoRank) break;
    if (min_i > 0) parts[min_i - 1].second = rank_after_merge(min_i - 1);
    parts[min_i].second = rank_after_merge(min_i);
    parts.erase(parts.begin() + static_cast<std::ptrdiff_t>(min_i) + 1);
  }
  thread_local std::vector<size_t> starts;
  starts.clear();
  for (const auto& part : parts) starts.push_back(part.first);
  emit_parts(t, piece, starts, out);
}

// The same merge order (lowest rank, then leftmost) with a min-heap over a linked list of parts:
// O(n log n), used for long pieces (base64 blobs, long symbol runs) where merge_scan goes quadratic.
// Stale heap entries are skipped by checking the part is alive and its pair rank is unchanged.
void merge_heap(const BpeTokenizer::Tables& t, std::string_view piece, std::vector<int>& out) {
  const size_t n = piece.size();
  std::vector<size_t> next(n), prev(n);
  std::vector<int> rank(n, kNoRank);  // rank of the pair (part at i) + (part after it)
  std::vector<bool> alive(n, true);
  using Entry = std::pair<int, size_t>;  // (rank, start); std::greater makes it a min-heap
  std::priority_queue<Entry, std::vector<Entry>, std::greater<Entry>> heap;
  for (size_t i = 0; i < n; ++i) {
    next[i] = i + 1;  // n means "no next part"
    prev[i] = i == 0 ? n : i - 1;
    if (i + 1 < n && (rank[i] = pair_rank_at(t, piece, i)) != kNoRank) heap.emplace(rank[i], i);
  }
  auto pair_rank = [&](size_t i) {  // rank of part i joined with its successor
    if (next[i] >= n) return kNoRank;
    const size_t end = next[next[i]] >= n ? n : next[next[i]];
    return t.rank(piece.substr(i, end - i));
  };
  while (!heap.empty()) {
    const auto [r, i] = heap.top();
    heap.pop();
    if (!alive[i] || rank[i] != r || next[i] >= n) continue;  // stale
    const size_t j = next[i];
    alive[j] = false;
    next[i] = next[j];
    if (next[j] < n) prev[next[j]] = i;
    if ((rank[i] = pair_rank(i)) != kNoRank) heap.emplace(rank[i], i);
    if (prev[i] < n && (rank[prev[i]] = pair_rank(prev[i])) != kNoRank) heap.emplace(rank[prev[i]], prev[i]);
  }
  std::vector<size_t> starts;
  for (size_t i = 0; i < n; i = next[i]) starts.push_back(i);
  starts.push_back(n);
  emit_parts(t, piece, starts, out);
}

// Above this many bytes merge_heap beats merge_scan's quadratic scan.
constexpr size_t kHeapMergeMinBytes = 128;

// Per-thread, direct-mapped cache of pieces that needed merging (a word that is not itself a token).
// Natural text repeats such words constantly; a hit replaces the merge loop with one compare and a copy.
// Entries are keyed by the tokenizer's uid, so tokenizers sharing a thread never see each other's ids.
class PieceCache {
 public:
  static constexpr size_t kMaxBytes = 24;
  static constexpr size_t kMaxIds = 7;

  // Appends the cached ids of `piece` and returns true on a hit.
  bool lookup(uint64_t uid, std::string_view piece, uint64_t hash, std::vector<int>& out) {
    if (uid != uid_) reset(uid);
    const Entry& e = entries_[slot(hash)];
    if (e.hash != hash || e.len != piece.size() || std::memcmp(e.bytes, piece.data(), piece.size()) != 0) return false;
    out.insert(out.end(), e.ids, e.ids + e.n);
    return true;
  }

  void store(std::string_view piece, uint64_t hash, const int* ids, size_t n) {
    if (piece.size() > kMaxBytes || n > kMaxIds) return;
    Entry& e = entries_[slot(hash)];
    e.hash = hash;
    e.len = static_cast<uint8_t>(piece.size());
    e.n = static_cast<uint8_t>(n);
    std::memcpy(e.bytes, piece.data(), piece.size());
    std::memcpy(e.ids, ids, n * sizeof(int));
  }

 private:
  static constexpr size_t kSlots = 16384;
  struct Entry {
    uint64_t hash = 0;
    uint8_t len = 0;  // 0 = empty (pieces that reach the cache have >= 2 bytes)
    uint8_t n = 0;
    char bytes[kMaxBytes];
    int ids[kMaxIds];
  };
  static size_t slot(uint64_t hash) { return (hash >> 20) & (kSlots - 1); }
  void reset(uint64_t uid) {
    entries_.assign(kSlots, Entry{});
    uid_ = uid;
  }

  uint64_t uid_ = 0;
  std::vector<Entry> entries_;
};

}  // namespace

void BpeTokenizer::encode_piece(std::string_view piece, std::vector<int>& out) const {
  const Tables& t = *tables_;
  if (piece.size() == 1) {
    out.push_back(t.byte_rank[static_cast<unsigned char>(piece[0])]);
    return;
  }
  const uint64_t hash = hash_bytes(piece);
  if (const int direct = t.rank_of.find_hashed(piece, hash); direct != kNoRank) {
    out.push_back(direct);
    return;
  }
  if (piece.size() >= kHeapMergeMinBytes) {
    merge_heap(t, piece, out);
    return;
  }
  thread_local PieceCache cache;
  if (cache.lookup(t.uid, piece, hash, out)) return;
  const size_t before = out.size();
  merge_scan(t, piece, out);
  cache.store(piece, hash, out.data() + before, out.size() - before);
}

namespace detail {

std::vector<int> merge_piece_for_test(const BpeTokenizer& tok, std::string_view piece, bool use_heap) {
  std::vector<int> out;
  if (use_heap) {
    merge_heap(*tok.tables_, piece, out);
  } else {
    merge_scan(*tok.tables_, piece, out);
  }
  return out;
}

}  // namespace detail

void BpeTokenizer::encode_ordinary_into(std::string_view text, std::vector<int>& out, bool at_start) const {
  if (tables_->backend) {
    const std::vector<int> ids = tables_->backend->encode_ordinary(text, at_start);
    out.insert(out.end(), ids.begin(), ids.end());
    return;
  }
  thread_local std::vector<std::string_view> pieces;
  pieces.clear();
  tables_->pretokenizer.split(text, pieces);
  for (std::string_view piece : pieces) encode_piece(piece, out);
}

std::vector<int> BpeTokenizer::encode_ordinary(std::string_view text) const {
  std::vector<int> out;
  out.reserve(text.size() / 3 + 1);
  encode_ordinary_into(text, out);
  return out;
}

std::vector<int> BpeTokenizer::encode(std::string_view text, const std::set<std::string>& allowed_special,
                                      bool disallowed_is_error) const {
  struct Candidate {
    std::string_view text;
    int id;
    size_t next;  // cached position of the next occurrence at or after the scan point
  };
  std::vector<Candidate> allowed;
  for (const auto& [special, id] : tables_->spec.special_tokens) {
    if (allowed_special.count(special) != 0) {
      allowed.push_back({special, id, text.find(special)});
    } else if (disallowed_is_error && text.find(special) != std::string_view::npos) {
      throw DataError("text contains special token '" + special +
                      "' which is not allowed; allow it or encode it as ordinary text");
    }
  }
  std::vector<int> out;
  if (tables_->backend && allowed.size() == tables_->spec.special_tokens.size() &&
      tables_->backend->encode_with_specials(text, out)) {
    return out;  // every special allowed: the backend's own matching (lstrip/rstrip, normalized added tokens)
  }
  size_t start = 0;
  while (true) {
    const Candidate* best = nullptr;
    for (Candidate& c : allowed) {
      if (c.next != std::string_view::npos && c.next < start) c.next = text.find(c.text, start);
      if (c.next == std::string_view::npos) continue;
      if (best == nullptr || c.next < best->next || (c.next == best->next && c.text.size() > best->text.size())) {
        best = &c;
      }
    }
    if (best == nullptr) break;
    encode_ordinary_into(text.substr(start, best->next - start), out, start == 0);
    out.push_back(best->id);
    start = best->next + best->text.size();
  }
  encode_ordinary_into(text.substr(start), out, start == 0);
  return out;
}

std::string BpeTokenizer::decode(const std::vector<int>& ids) const {
  const Tables& t = *tables_;
  if (t.backend) return t.backend->decode(ids);
  const int n = static_cast<int>(t.spec.tokens_by_rank.size());
  std::string out;
  out.reserve(ids.size() * 4);
  for (int id : ids) {
    if (id >= 0 && id < n) {
      out += t.spec.tokens_by_rank[id];
      continue;
    }
    auto it = t.special_by_id.find(id);
    if (it == t.special_by_id.end()) {
      throw DataError("cannot decode unknown token id " + std::to_string(id) + " (encoding '" + t.spec.name + "')");
    }
    out += it->second;
  }
  return out;
}

std::string BpeTokenizer::decode_lossy_utf8(const std::vector<int>& ids) const {
  return detail::utf8_replace_invalid(decode(ids));
}

std::vector<std::string> BpeTokenizer::pieces(std::string_view text) const {
  if (tables_->backend) return tables_->backend->pieces(text);
  std::vector<std::string_view> views;
  tables_->pretokenizer.split(text, views);
  return std::vector<std::string>(views.begin(), views.end());
}

int BpeTokenizer::vocab_size() const { return tables_->vocab_size; }

const BpeSpec& BpeTokenizer::spec() const { return tables_->spec; }

namespace detail {

std::string utf8_replace_invalid(std::string_view s) {
  static const char kReplacement[] = "\xEF\xBF\xBD";
  std::string out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    const auto b = static_cast<unsigned char>(s[i]);
    if (b < 0x80) {
      out += static_cast<char>(b);
      ++i;
      continue;
    }
    size_t need = 0;
    unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
    if (b >= 0xC2 && b <= 0xDF) {
      need = 1;
    } else if (b >= 0xE0 && b <= 0xEF) {
      need = 2;
      if (b == 0xE0) lo = 0xA0;
      if (b == 0xED) hi = 0x9F;
    } else if (b >= 0xF0 && b <= 0xF4) {
      need = 3;
      if (b == 0xF0) lo = 0x90;
      if (b == 0xF4) hi = 0x8F;
    }
    size_t got = 0;  // valid continuation bytes seen
    while (got < need && i + 1 + got < s.size()) {
      const auto c = static_cast<unsigned char>(s[i + 1 + got]);
      const bool ok = got == 0 ? (c >= lo && c <= hi) : (c >= 0x80 && c <= 0xBF);
      if (!ok) break;
      ++got;
    }
    if (need > 0 && got == need) {
      out.append(s.substr(i, need + 1));
    } else {
      out += kReplacement;
    }
    i += 1 + got;
  }
  return out;
}

}  // namespace detail

}  // namespace troupe::tokenizers
