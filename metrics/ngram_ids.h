// Exact interning tables for the n-gram metrics: a key (a token's text, or an n-gram as (id of its prefix, last
// token)) gets a dense id 0, 1, 2, ... so that counts live in plain vectors. Not a general hash map: no erase, and
// clear() is O(1) (a generation stamp), so one table serves every segment of a corpus without reallocating.
#pragma once

#include <cstdint>
#include <functional>
#include <string_view>
#include <vector>

namespace troupe::metrics::detail {

// splitmix64's finaliser: spreads the bits of an n-gram key (prefix id << 32 | token) over the table.
inline uint64_t mix64(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return x;
}

// The key of an n-gram whose first n-1 tokens have n-gram id `prefix` and whose last token is `token`.
inline uint64_t ngram_key(uint32_t prefix, uint32_t token) { return (uint64_t{prefix} << 32) | token; }

struct U64KeyTraits {
  static uint64_t hash(uint64_t key) { return mix64(key); }
};
struct StringKeyTraits {
  static uint64_t hash(std::string_view key) { return std::hash<std::string_view>{}(key); }
};

// Key -> dense id, open addressing with linear probing at load <= 1/2. A std::string_view key must outlive the
// entry (until clear()).
template <class Key, class Traits>
class DenseIds {
 public:
  static constexpr uint32_t kNone = UINT32_MAX;

  DenseIds() { rehash(64); }

  uint32_t size() const { return static_cast<uint32_t>(keys_.size()); }

  // The id of `key`, or kNone.
  uint32_t find(const Key& key) const {
    const uint64_t h = Traits::hash(key);
    for (size_t s = h & mask_;; s = (s + 1) & mask_) {
      const Slot& slot = slots_[s];
      if (slot.generation != generation_) return kNone;
      if (hashes_[slot.id] == h && keys_[slot.id] == key) return slot.id;
    }
  }

  // The id of `key`, giving it id size() if it is new (then *inserted is true).
  uint32_t insert(const Key& key, bool* inserted) {
    const uint64_t h = Traits::hash(key);
    for (size_t s = h & mask_;; s = (s + 1) & mask_) {
      Slot& slot = slots_[s];
      if (slot.generation != generation_) {
        slot = {generation_, size()};
        keys_.push_back(key);
        hashes_.push_back(h);
        *inserted = true;
        if (2 * keys_.size() > slots_.size()) rehash(2 * slots_.size());
        return size() - 1;  // (a rehash may have moved the slot, not the id)
      }
      if (hashes_[slot.id] == h && keys_[slot.id] == key) {
        *inserted = false;
        return slot.id;
      }
    }
  }

  void clear() {
    keys_.clear();
    hashes_.clear();
    if (++generation_ == 0) rehash(slots_.size());  // the stamp wrapped: wipe for real
  }

 private:
  struct Slot {
    uint32_t generation = 0;  // the slot is taken iff this equals generation_
    uint32_t id = 0;
  };

  void rehash(size_t capacity) {
    slots_.assign(capacity, Slot{});
    mask_ = capacity - 1;
    if (generation_ == 0) generation_ = 1;
    for (uint32_t id = 0; id < size(); ++id) {
      for (size_t s = hashes_[id] & mask_;; s = (s + 1) & mask_) {
        if (slots_[s].generation != generation_) {
          slots_[s] = {generation_, id};
          break;
        }
      }
    }
  }

  std::vector<Slot> slots_;
  std::vector<Key> keys_;         // by id
  std::vector<uint64_t> hashes_;  // by id
  size_t mask_ = 0;
  uint32_t generation_ = 1;
};

using NgramIds = DenseIds<uint64_t, U64KeyTraits>;
using TokenIds = DenseIds<std::string_view, StringKeyTraits>;

// Roots of the n-gram chains: a unigram's key is ngram_key(root, token). Different roots keep character and word
// n-grams apart in one table; n-gram ids stay below them.
inline constexpr uint32_t kCharRoot = UINT32_MAX;
inline constexpr uint32_t kWordRoot = UINT32_MAX - 1;

}  // namespace troupe::metrics::detail
