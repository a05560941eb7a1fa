// The registry's Merkle log, as RFC 9162 (Certificate Transparency 2.0) section 2.1 defines it:
// leaf hash SHA-256(0x00 || entry), node hash SHA-256(0x01 || left || right), and the Merkle
// Tree Hash (MTH) of n leaves splits at the largest power of two smaller than n.
//
// `CompactRange` keeps the tree's right edge (one hash per set bit of the size), so appending
// is O(log n) and the root of the whole log never needs the old leaves. Inclusion and
// consistency proofs let an auditor check one record, or that today's log extends yesterday's,
// without replaying everything.
#ifndef HALLMARK_REGISTRY_MERKLE_H_
#define HALLMARK_REGISTRY_MERKLE_H_

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/encoding.h"
#include "core/status.h"

namespace hallmark::registry {

// Hash is a SHA-256 digest.
using Hash = std::array<uint8_t, 32>;

// HashHex returns `h` in lowercase hex.
std::string HashHex(const Hash& h);
// HashFromBytes copies 32 bytes into a Hash. kInvalidArgument for any other length.
Result<Hash> HashFromBytes(std::span<const uint8_t> bytes);
// HashFromHex parses 64 hex digits. kInvalidArgument otherwise.
Result<Hash> HashFromHex(std::string_view hex);

// EmptyTreeHash is MTH of no leaves: SHA-256 of the empty string.
Hash EmptyTreeHash();
// LeafHash is SHA-256(0x00 || entry).
Hash LeafHash(std::span<const uint8_t> entry);
// NodeHash is SHA-256(0x01 || left || right).
Hash NodeHash(const Hash& left, const Hash& right);

// MerkleRoot returns MTH over `leaves` (leaf hashes, not entries). O(n).
Hash MerkleRoot(std::span<const Hash> leaves);

// CompactRange is the right edge of a Merkle tree of `size()` leaves: the roots of its perfect
// subtrees from left to right, one per set bit of the size. Not thread-safe; copyable.
class CompactRange {
 public:
  CompactRange() = default;

  // FromHashes rebuilds a range of `size` leaves from `Hashes()` of an earlier range.
  // kInvalidArgument if the number of hashes is not the number of set bits of `size`.
  static Result<CompactRange> FromHashes(uint64_t size, std::vector<Hash> hashes);
  // FromBytes is `FromHashes` over the concatenation `Serialize()` returns.
  static Result<CompactRange> FromBytes(uint64_t size, std::span<const uint8_t> bytes);

  // Append adds one leaf hash. Amortised O(1), at most O(log n).
  void Append(const Hash& leaf);
  // Root returns MTH of all leaves appended so far. O(log n).
  Hash Root() const;

  uint64_t size() const { return size_; }
  const std::vector<Hash>& Hashes() const { return hashes_; }
  // Serialize concatenates `Hashes()`.
  Bytes Serialize() const;

 private:
  uint64_t size_ = 0;
  std::vector<Hash> hashes_;
};

// InclusionProof returns the audit path of leaf `index` in the tree of the first `size` of
// `leaves` (RFC 9162 section 2.1.3.1). kOutOfRange unless index < size <= leaves.size().
Result<std::vector<Hash>> InclusionProof(std::span<const Hash> leaves, uint64_t index,
                                         uint64_t size);

// VerifyInclusion checks that `leaf` is leaf `index` of the tree of `size` leaves whose root is
// `root`, with the algorithm of RFC 9162 section 2.1.3.2. kDataLoss if the proof fails.
Status VerifyInclusion(const Hash& leaf, uint64_t index, uint64_t size, std::span<const Hash> proof,
                       const Hash& root);

// ConsistencyProof returns the proof that the tree of the first `first` leaves is a prefix of the
// tree of the first `second` (RFC 9162 section 2.1.4.1); empty when first is 0 or equals second.
// kOutOfRange unless first <= second <= leaves.size().
Result<std::vector<Hash>> ConsistencyProof(std::span<const Hash> leaves, uint64_t first,
                                           uint64_t second);

// VerifyConsistency checks that the tree of `first` leaves with root `first_root` is a prefix of
// the tree of `second` leaves with root `second_root` (RFC 9162 section 2.1.4.2). kDataLoss if
// the proof fails, including first > second.
Status VerifyConsistency(uint64_t first, uint64_t second, const Hash& first_root,
                         const Hash& second_root, std::span<const Hash> proof);

}  // namespace hallmark::registry

#endif  // HALLMARK_REGISTRY_MERKLE_H_
