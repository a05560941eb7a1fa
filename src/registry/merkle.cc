#include "registry/merkle.h"

#include <algorithm>
#include <bit>
#include <cstring>

#include "core/key.h"

namespace hallmark::registry {
namespace {

Hash ToHash(const Bytes& digest) {
  Hash h;
  std::memcpy(h.data(), digest.data(), h.size());
  return h;
}

// SplitPoint is the largest power of two smaller than `n` (n >= 2): RFC 9162's k.
uint64_t SplitPoint(uint64_t n) { return uint64_t{1} << (std::bit_width(n - 1) - 1); }

Error ProofFails(const std::string& what) { return Error(Code::kDataLoss, what); }

// Path is RFC 9162 PATH(m, D[n]) over `leaves`.
void Path(std::span<const Hash> leaves, uint64_t m, std::vector<Hash>* out) {
  uint64_t n = leaves.size();
  if (n <= 1) {
    return;
  }
  uint64_t k = SplitPoint(n);
  if (m < k) {
    Path(leaves.subspan(0, k), m, out);
    out->push_back(MerkleRoot(leaves.subspan(k)));
  } else {
    Path(leaves.subspan(k), m - k, out);
    out->push_back(MerkleRoot(leaves.subspan(0, k)));
  }
}

// SubProof is RFC 9162 SUBPROOF(m, D[n], b) over `leaves`.
void SubProof(std::span<const Hash> leaves, uint64_t m, bool b, std::vector<Hash>* out) {
  uint64_t n = leaves.size();
  if (m == n) {
    if (!b) {
      out->push_back(MerkleRoot(leaves));
    }
    return;
  }
  uint64_t k = SplitPoint(n);
  if (m <= k) {
    SubProof(leaves.subspan(0, k), m, b, out);
    out->push_back(MerkleRoot(leaves.subspan(k)));
  } else {
    SubProof(leaves.subspan(k), m - k, false, out);
    out->push_back(MerkleRoot(leaves.subspan(0, k)));
  }
}

}  // namespace

std::string HashHex(const Hash& h) { return HexEncode(h); }

Result<Hash> HashFromBytes(std::span<const uint8_t> bytes) {
  if (bytes.size() != 32) {
    return Error(Code::kInvalidArgument,
                 "a SHA-256 hash has 32 bytes, not " + std::to_string(bytes.size()));
  }
  Hash h;
  std::memcpy(h.data(), bytes.data(), h.size());
  return h;
}

Result<Hash> HashFromHex(std::string_view hex) {
  auto bytes = HexDecode(hex);
  if (!bytes || bytes->size() != 32) {
    return Error(Code::kInvalidArgument,
                 "'" + std::string(hex.substr(0, 80)) + "' is not a SHA-256 hash in hex");
  }
  return HashFromBytes(*bytes);
}

Hash EmptyTreeHash() { return ToHash(Sha256({})); }

Hash LeafHash(std::span<const uint8_t> entry) {
  Bytes buf;
  buf.reserve(entry.size() + 1);
  buf.push_back(0x00);
  buf.insert(buf.end(), entry.begin(), entry.end());
  return ToHash(Sha256(buf));
}

Hash NodeHash(const Hash& left, const Hash& right) {
  std::array<uint8_t, 65> buf;
  buf[0] = 0x01;
  std::memcpy(buf.data() + 1, left.data(), 32);
  std::memcpy(buf.data() + 33, right.data(), 32);
  return ToHash(Sha256(buf));
}

Hash MerkleRoot(std::span<const Hash> leaves) {
  if (leaves.empty()) {
    return EmptyTreeHash();
  }
  if (leaves.size() == 1) {
    return leaves[0];
  }
  uint64_t k = SplitPoint(leaves.size());
  return NodeHash(MerkleRoot(leaves.subspan(0, k)), MerkleRoot(leaves.subspan(k)));
}

// --- CompactRange ---

Result<CompactRange> CompactRange::FromHashes(uint64_t size, std::vector<Hash> hashes) {
  if (hashes.size() != static_cast<size_t>(std::popcount(size))) {
    return Error(Code::kInvalidArgument, "a compact range of " + std::to_string(size) +
                                             " leaves has " + std::to_string(std::popcount(size)) +
                                             " hashes, not " + std::to_string(hashes.size()));
  }
  CompactRange r;
  r.size_ = size;
  r.hashes_ = std::move(hashes);
  return r;
}

Result<CompactRange> CompactRange::FromBytes(uint64_t size, std::span<const uint8_t> bytes) {
  if (bytes.size() % 32 != 0) {
    return Error(Code::kInvalidArgument, "compact range bytes are not a multiple of 32");
  }
  std::vector<Hash> hashes(bytes.size() / 32);
  for (size_t i = 0; i < hashes.size(); ++i) {
    std::memcpy(hashes[i].data(), bytes.data() + 32 * i, 32);
  }
  return FromHashes(size, std::move(hashes));
}

void CompactRange::Append(const Hash& leaf) {
  Hash h = leaf;
  // Each trailing one bit of the old size is a perfect subtree of the new leaf's height: merge.
  for (uint64_t s = size_; (s & 1) != 0; s >>= 1) {
    h = NodeHash(hashes_.back(), h);
    hashes_.pop_back();
  }
  hashes_.push_back(h);
  ++size_;
}

Hash CompactRange::Root() const {
  if (hashes_.empty()) {
    return EmptyTreeHash();
  }
  // MTH splits at the largest power of two, so the root folds the subtrees from the right.
  Hash h = hashes_.back();
  for (size_t i = hashes_.size() - 1; i-- > 0;) {
    h = NodeHash(hashes_[i], h);
  }
  return h;
}

Bytes CompactRange::Serialize() const {
  Bytes out;
  out.reserve(hashes_.size() * 32);
  for (const Hash& h : hashes_) {
    out.insert(out.end(), h.begin(), h.end());
  }
  return out;
}

// --- Proofs ---

Result<std::vector<Hash>> InclusionProof(std::span<const Hash> leaves, uint64_t index,
                                         uint64_t size) {
  if (size > leaves.size() || index >= size) {
    return Error(Code::kOutOfRange, "no leaf " + std::to_string(index) + " in a tree of " +
                                        std::to_string(size) + " leaves (log has " +
                                        std::to_string(leaves.size()) + ")");
  }
  std::vector<Hash> proof;
  Path(leaves.subspan(0, size), index, &proof);
  return proof;
}

Status VerifyInclusion(const Hash& leaf, uint64_t index, uint64_t size, std::span<const Hash> proof,
                       const Hash& root) {
  if (index >= size) {
    return ProofFails("inclusion proof: leaf " + std::to_string(index) + " is outside a tree of " +
                      std::to_string(size));
  }
  uint64_t fn = index;
  uint64_t sn = size - 1;
  Hash r = leaf;
  for (const Hash& p : proof) {
    if (sn == 0) {
      return ProofFails("inclusion proof is too long");
    }
    if ((fn & 1) != 0 || fn == sn) {
      r = NodeHash(p, r);
      while ((fn & 1) == 0 && fn != 0) {
        fn >>= 1;
        sn >>= 1;
      }
    } else {
      r = NodeHash(r, p);
    }
    fn >>= 1;
    sn >>= 1;
  }
  if (sn != 0) {
    return ProofFails("inclusion proof is too short");
  }
  if (r != root) {
    return ProofFails("inclusion proof of leaf " + std::to_string(index) +
                      " does not lead to the root of the tree of " + std::to_string(size));
  }
  return OkStatus();
}

Result<std::vector<Hash>> ConsistencyProof(std::span<const Hash> leaves, uint64_t first,
                                           uint64_t second) {
  if (first > second || second > leaves.size()) {
    return Error(Code::kOutOfRange, "no consistency proof from " + std::to_string(first) + " to " +
                                        std::to_string(second) + " leaves (log has " +
                                        std::to_string(leaves.size()) + ")");
  }
  std::vector<Hash> proof;
  if (first == 0 || first == second) {
    return proof;
  }
  SubProof(leaves.subspan(0, second), first, true, &proof);
  return proof;
}

Status VerifyConsistency(uint64_t first, uint64_t second, const Hash& first_root,
                         const Hash& second_root, std::span<const Hash> proof) {
  if (first > second) {
    return ProofFails("consistency proof: tree of " + std::to_string(first) +
                      " leaves cannot be a prefix of one of " + std::to_string(second));
  }
  if (first == second) {
    if (!proof.empty() || first_root != second_root) {
      return ProofFails("trees of the same size " + std::to_string(first) +
                        " have different roots");
    }
    return OkStatus();
  }
  if (first == 0) {
    // The empty tree is a prefix of every tree.
    if (!proof.empty() || first_root != EmptyTreeHash()) {
      return ProofFails("consistency proof from the empty tree must be empty");
    }
    return OkStatus();
  }
  if (proof.empty()) {
    return ProofFails("consistency proof is empty");
  }
  std::vector<Hash> path;
  path.reserve(proof.size() + 1);
  if (std::has_single_bit(first)) {
    path.push_back(first_root);
  }
  path.insert(path.end(), proof.begin(), proof.end());
  uint64_t fn = first - 1;
  uint64_t sn = second - 1;
  while ((fn & 1) != 0) {
    fn >>= 1;
    sn >>= 1;
  }
  Hash fr = path[0];
  Hash sr = path[0];
  for (size_t i = 1; i < path.size(); ++i) {
    const Hash& c = path[i];
    if (sn == 0) {
      return ProofFails("consistency proof is too long");
    }
    if ((fn & 1) != 0 || fn == sn) {
      fr = NodeHash(c, fr);
      sr = NodeHash(c, sr);
      while ((fn & 1) == 0 && fn != 0) {
        fn >>= 1;
        sn >>= 1;
      }
    } else {
      sr = NodeHash(sr, c);
    }
    fn >>= 1;
    sn >>= 1;
  }
  if (sn != 0) {
    return ProofFails("consistency proof is too short");
  }
  if (fr != first_root || sr != second_root) {
    return ProofFails("tree of " + std::to_string(first) +
                      " leaves is not a prefix of the tree of " + std::to_string(second) +
                      " leaves");
  }
  return OkStatus();
}

}  // namespace hallmark::registry
