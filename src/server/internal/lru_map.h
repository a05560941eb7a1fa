// LruMap: a bounded map that forgets its least recently used entry, the building block of the
// server's caches (registry records, chain verifications). Keys are 32-byte digests.
#ifndef HALLMARK_SERVER_INTERNAL_LRU_MAP_H_
#define HALLMARK_SERVER_INTERNAL_LRU_MAP_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <unordered_map>
#include <utility>

#include "core/random.h"

namespace hallmark::server::internal {

// Digest is a SHA-256 output: a device ID in binary, or a certificate chain's hash.
using Digest = std::array<uint8_t, 32>;

// DigestHash hashes a digest with a per-process secret `seed`. Digests the server caches are
// chosen by unauthenticated peers (any key, any certificate), who could otherwise grind inputs
// until they all land in one bucket or one shard.
struct DigestHash {
  uint64_t seed = 0;
  size_t operator()(const Digest& d) const noexcept {
    uint64_t w[4];
    std::memcpy(w, d.data(), sizeof(w));
    // Multiply-xorshift mixing of the seeded words; not cryptographic, only unpredictable.
    uint64_t h = (w[0] ^ seed) * 0x9e3779b97f4a7c15ull;
    h ^= (w[1] + seed) * 0xc2b2ae3d27d4eb4full;
    h ^= (w[2] ^ (seed >> 7)) * 0x165667b19e3779f9ull;
    h ^= (w[3] + (seed << 9)) * 0x27d4eb2f165667c5ull;
    return static_cast<size_t>(h ^ (h >> 29));
  }
};

// NewDigestHash returns a DigestHash with a fresh random seed.
inline DigestHash NewDigestHash() {
  uint64_t seed = 0;
  for (uint8_t b : RandomBytes(sizeof(seed))) {
    seed = seed << 8 | b;
  }
  return DigestHash{seed};
}

// LruMap holds at most `capacity` entries (none if it is 0). Not thread-safe.
template <typename Value>
class LruMap {
 public:
  LruMap(size_t capacity, DigestHash hash) : capacity_(capacity), map_(0, hash) {
    head_.prev = head_.next = &head_;
  }
  LruMap(const LruMap&) = delete;
  LruMap& operator=(const LruMap&) = delete;

  // Find returns the value of `key` and marks it most recently used, or nullptr. The pointer is
  // valid until the next non-const call.
  Value* Find(const Digest& key) {
    auto it = map_.find(key);
    if (it == map_.end()) {
      return nullptr;
    }
    Node& n = it->second;
    Unlink(&n);
    LinkFront(&n);
    return &n.value;
  }

  // Insert sets the value of `key` and marks it most recently used; when that makes the map
  // exceed its capacity, the least recently used entry is dropped. Returns whether one was.
  bool Insert(const Digest& key, Value value) {
    if (capacity_ == 0) {
      return false;
    }
    auto [it, inserted] = map_.try_emplace(key);
    Node& n = it->second;
    n.value = std::move(value);
    if (!inserted) {
      Unlink(&n);
      LinkFront(&n);
      return false;
    }
    n.key = &it->first;
    LinkFront(&n);
    if (map_.size() <= capacity_) {
      return false;
    }
    Node* oldest = head_.prev;
    Unlink(oldest);
    map_.erase(*oldest->key);
    return true;
  }

  // Erase drops `key`. Returns whether it was there.
  bool Erase(const Digest& key) {
    auto it = map_.find(key);
    if (it == map_.end()) {
      return false;
    }
    Unlink(&it->second);
    map_.erase(it);
    return true;
  }

  void Clear() {
    map_.clear();
    head_.prev = head_.next = &head_;
  }

  size_t size() const { return map_.size(); }
  size_t capacity() const { return capacity_; }

 private:
  // Node is linked into a circular list through `head_`, most recently used first. Elements of
  // an unordered_map never move, so the links stay valid across rehashing.
  struct Node {
    Value value{};
    const Digest* key = nullptr;
    Node* prev = nullptr;
    Node* next = nullptr;
  };

  void Unlink(Node* n) {
    n->prev->next = n->next;
    n->next->prev = n->prev;
  }
  void LinkFront(Node* n) {
    n->prev = &head_;
    n->next = head_.next;
    head_.next->prev = n;
    head_.next = n;
  }

  size_t capacity_;
  std::unordered_map<Digest, Node, DigestHash> map_;
  Node head_;
};

}  // namespace hallmark::server::internal

#endif  // HALLMARK_SERVER_INTERNAL_LRU_MAP_H_
