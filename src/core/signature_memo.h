// SignatureMemo remembers signatures that verified, so that the same (key, message, signature)
// is checked once. The registry re-reads the same signed tree heads, batch definitions and
// records in every write transaction and every view refresh; each Ed25519 verification costs
// about 80 us, a memo lookup a SHA-256 of the message.
//
// Only successful verifications are remembered, keyed by a SHA-256 over the key, the signature
// and the message with their lengths: a changed byte in any of them is a different entry and
// is verified afresh. Bounded: the oldest entry leaves when the memo is full.
#ifndef HALLMARK_CORE_SIGNATURE_MEMO_H_
#define HALLMARK_CORE_SIGNATURE_MEMO_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <mutex>
#include <span>
#include <unordered_set>

#include "core/key.h"
#include "core/status.h"

namespace hallmark {

class SignatureMemo {
 public:
  explicit SignatureMemo(size_t capacity) : capacity_(capacity) {}

  // Verify is key.Verify(data, signature), skipped if this memo saw the same check succeed.
  // Thread-safe.
  Status Verify(const PublicKey& key, std::span<const uint8_t> data,
                std::span<const uint8_t> signature);

  // Shared is the process-wide memo (8,192 entries, about 0.5 MiB).
  static SignatureMemo& Shared();

  uint64_t hits() const;
  size_t size() const;

 private:
  using Digest = std::array<uint8_t, 32>;
  struct DigestHash {
    size_t operator()(const Digest& d) const;
  };

  const size_t capacity_;
  mutable std::mutex mu_;
  std::unordered_set<Digest, DigestHash> seen_;
  std::deque<Digest> order_;  // insertion order, for eviction
  uint64_t hits_ = 0;
};

}  // namespace hallmark

#endif  // HALLMARK_CORE_SIGNATURE_MEMO_H_
