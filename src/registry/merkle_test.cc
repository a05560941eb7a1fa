#include "registry/merkle.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/encoding.h"
#include "core/key.h"
#include "testing/matchers.h"

namespace hallmark::registry {
namespace {

using ::hallmark::testing::HasError;
using ::hallmark::testing::IsOk;
using ::testing::HasSubstr;

Hash H(const std::string& hex) { return *HashFromHex(hex); }

// The Certificate Transparency reference vectors (RFC 6962 test data, also used by
// transparency-dev/merkle): eight leaves and the root of each prefix.
std::vector<Bytes> ReferenceEntries() {
  std::vector<Bytes> out;
  for (const char* hex : {"", "00", "10", "2021", "3031", "40414243", "5051525354555657",
                          "606162636465666768696a6b6c6d6e6f"}) {
    out.push_back(*HexDecode(hex));
  }
  return out;
}

const char* const kReferenceRoots[] = {
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
};

std::vector<Hash> ReferenceLeaves() {
  std::vector<Hash> leaves;
  for (const Bytes& e : ReferenceEntries()) {
    leaves.push_back(LeafHash(e));
  }
  return leaves;
}

// Leaves makes `n` distinct leaf hashes.
std::vector<Hash> Leaves(size_t n) {
  std::vector<Hash> out;
  for (size_t i = 0; i < n; ++i) {
    std::string entry = "entry " + std::to_string(i);
    out.push_back(LeafHash(AsBytes(entry)));
  }
  return out;
}

TEST(MerkleTest, LeafAndNodeHashesArePrefixedSha256) {
  Bytes entry = {1, 2, 3};
  Bytes prefixed = {0x00, 1, 2, 3};
  EXPECT_EQ(HashHex(LeafHash(entry)), HexEncode(Sha256(prefixed)));
  Hash l = LeafHash(entry);
  Hash r = EmptyTreeHash();
  Bytes node = {0x01};
  node.insert(node.end(), l.begin(), l.end());
  node.insert(node.end(), r.begin(), r.end());
  EXPECT_EQ(HashHex(NodeHash(l, r)), HexEncode(Sha256(node)));
  // A leaf can never be mistaken for a node over the same bytes.
  EXPECT_NE(LeafHash(Bytes(node.begin() + 1, node.end())), NodeHash(l, r));
}

TEST(MerkleTest, RootsMatchTheCertificateTransparencyVectors) {
  std::vector<Hash> leaves = ReferenceLeaves();
  CompactRange range;
  EXPECT_EQ(HashHex(range.Root()), kReferenceRoots[0]);
  for (size_t n = 1; n <= leaves.size(); ++n) {
    range.Append(leaves[n - 1]);
    EXPECT_EQ(HashHex(MerkleRoot(std::span(leaves).subspan(0, n))), kReferenceRoots[n])
        << "size " << n;
    EXPECT_EQ(HashHex(range.Root()), kReferenceRoots[n]) << "size " << n;
  }
}

TEST(MerkleTest, SmallTreesSplitAtTheLargestPowerOfTwo) {
  std::vector<Hash> l = Leaves(7);
  EXPECT_EQ(MerkleRoot(std::span(l).subspan(0, 1)), l[0]);
  EXPECT_EQ(MerkleRoot(std::span(l).subspan(0, 2)), NodeHash(l[0], l[1]));
  EXPECT_EQ(MerkleRoot(std::span(l).subspan(0, 3)), NodeHash(NodeHash(l[0], l[1]), l[2]));
  Hash h01 = NodeHash(l[0], l[1]);
  Hash h23 = NodeHash(l[2], l[3]);
  Hash h45 = NodeHash(l[4], l[5]);
  EXPECT_EQ(MerkleRoot(std::span(l).subspan(0, 4)), NodeHash(h01, h23));
  EXPECT_EQ(MerkleRoot(std::span(l).subspan(0, 5)), NodeHash(NodeHash(h01, h23), l[4]));
  EXPECT_EQ(MerkleRoot(std::span(l).subspan(0, 6)), NodeHash(NodeHash(h01, h23), h45));
  EXPECT_EQ(MerkleRoot(l), NodeHash(NodeHash(h01, h23), NodeHash(h45, l[6])));
}

TEST(MerkleTest, CompactRangeHasOneHashPerSetBitAndSurvivesSerialization) {
  std::vector<Hash> leaves = Leaves(37);
  CompactRange range;
  for (size_t n = 0; n < leaves.size(); ++n) {
    range.Append(leaves[n]);
    ASSERT_EQ(range.Hashes().size(), static_cast<size_t>(std::popcount(n + 1)));
    ASSERT_EQ(range.Root(), MerkleRoot(std::span(leaves).subspan(0, n + 1))) << n + 1;
    ASSERT_OK_AND_ASSIGN(CompactRange copy, CompactRange::FromBytes(n + 1, range.Serialize()));
    EXPECT_EQ(copy.Root(), range.Root());
  }
  EXPECT_THAT(CompactRange::FromBytes(3, Bytes(32)),
              HasError(Code::kInvalidArgument, HasSubstr("2 hashes, not 1")));
  EXPECT_THAT(CompactRange::FromBytes(1, Bytes(31)),
              HasError(Code::kInvalidArgument, HasSubstr("multiple of 32")));
}

TEST(MerkleTest, ProofsMatchTheCertificateTransparencyVectors) {
  std::vector<Hash> leaves = ReferenceLeaves();
  ASSERT_OK_AND_ASSIGN(auto p0, InclusionProof(leaves, 0, 8));
  EXPECT_EQ(p0, (std::vector<Hash>{
                    H("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
                    H("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
                    H("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4")}));
  ASSERT_OK_AND_ASSIGN(auto p5, InclusionProof(leaves, 5, 8));
  EXPECT_EQ(p5, (std::vector<Hash>{
                    H("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
                    H("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
                    H("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7")}));
  ASSERT_OK_AND_ASSIGN(auto c28, ConsistencyProof(leaves, 2, 8));
  EXPECT_EQ(c28, (std::vector<Hash>{
                     H("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
                     H("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4")}));
  ASSERT_OK_AND_ASSIGN(auto c68, ConsistencyProof(leaves, 6, 8));
  EXPECT_EQ(c68, (std::vector<Hash>{
                     H("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
                     H("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
                     H("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7")}));
  ASSERT_OK_AND_ASSIGN(auto c25, ConsistencyProof(leaves, 2, 5));
  EXPECT_EQ(c25, (std::vector<Hash>{
                     H("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
                     H("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b")}));
}

// Every inclusion proof of every tree up to 20 leaves verifies, and fails for the wrong leaf,
// index or root, or with any proof hash flipped, dropped or added. (A wrong size alone can
// verify: a signed tree head binds size and root together.)
TEST(MerkleTest, InclusionProofsVerifyAndFailWhenTampered) {
  std::vector<Hash> leaves = Leaves(20);
  for (uint64_t n = 1; n <= leaves.size(); ++n) {
    Hash root = MerkleRoot(std::span(leaves).subspan(0, n));
    for (uint64_t i = 0; i < n; ++i) {
      SCOPED_TRACE("leaf " + std::to_string(i) + " of " + std::to_string(n));
      ASSERT_OK_AND_ASSIGN(std::vector<Hash> proof, InclusionProof(leaves, i, n));
      ASSERT_THAT(VerifyInclusion(leaves[i], i, n, proof, root), IsOk());
      EXPECT_FALSE(VerifyInclusion(leaves[(i + 1) % leaves.size()], i, n, proof, root));
      if (n > 1) {
        EXPECT_FALSE(VerifyInclusion(leaves[i], (i + 1) % n, n, proof, root));
      }
      EXPECT_FALSE(VerifyInclusion(leaves[i], i, n, proof, leaves[i] == root ? Hash{} : leaves[i]));
      for (size_t k = 0; k < proof.size(); ++k) {
        std::vector<Hash> bad = proof;
        bad[k][k % 32] ^= 0x80;
        EXPECT_FALSE(VerifyInclusion(leaves[i], i, n, bad, root)) << "flipped " << k;
      }
      if (!proof.empty()) {
        std::vector<Hash> shorter(proof.begin(), proof.end() - 1);
        EXPECT_FALSE(VerifyInclusion(leaves[i], i, n, shorter, root));
      }
      std::vector<Hash> longer = proof;
      longer.push_back(root);
      EXPECT_FALSE(VerifyInclusion(leaves[i], i, n, longer, root));
    }
  }
  EXPECT_THAT(VerifyInclusion(leaves[0], 3, 3, {}, leaves[0]),
              HasError(Code::kDataLoss, HasSubstr("outside")));
  EXPECT_THAT(InclusionProof(leaves, 5, 21), HasError(Code::kOutOfRange, HasSubstr("21")));
}

// Every consistency proof between trees up to 20 leaves verifies, and fails for a forked or
// altered root, swapped sizes, or a tampered proof.
TEST(MerkleTest, ConsistencyProofsVerifyAndFailWhenTampered) {
  std::vector<Hash> leaves = Leaves(20);
  std::vector<Hash> other = Leaves(21);
  other.erase(other.begin());  // same length, different leaves
  for (uint64_t n = 1; n <= leaves.size(); ++n) {
    Hash root_n = MerkleRoot(std::span(leaves).subspan(0, n));
    for (uint64_t m = 0; m <= n; ++m) {
      SCOPED_TRACE(std::to_string(m) + " -> " + std::to_string(n));
      Hash root_m = MerkleRoot(std::span(leaves).subspan(0, m));
      ASSERT_OK_AND_ASSIGN(std::vector<Hash> proof, ConsistencyProof(leaves, m, n));
      ASSERT_THAT(VerifyConsistency(m, n, root_m, root_n, proof), IsOk());
      if (m == 0) {
        continue;
      }
      // A tree whose first m leaves differ is not an extension.
      Hash forked_m = MerkleRoot(std::span(other).subspan(0, m));
      EXPECT_FALSE(VerifyConsistency(m, n, forked_m, root_n, proof));
      Hash bad_n = root_n;
      bad_n[31] ^= 1;
      EXPECT_FALSE(VerifyConsistency(m, n, root_m, bad_n, proof));
      if (m < n) {
        EXPECT_FALSE(VerifyConsistency(n, m, root_n, root_m, proof));
        for (size_t k = 0; k < proof.size(); ++k) {
          std::vector<Hash> bad = proof;
          bad[k][0] ^= 0x01;
          EXPECT_FALSE(VerifyConsistency(m, n, root_m, root_n, bad)) << "flipped " << k;
        }
        std::vector<Hash> shorter(proof.begin(), proof.end() - 1);
        EXPECT_FALSE(VerifyConsistency(m, n, root_m, root_n, shorter));
        std::vector<Hash> longer = proof;
        longer.push_back(root_n);
        EXPECT_FALSE(VerifyConsistency(m, n, root_m, root_n, longer));
      }
    }
  }
  EXPECT_THAT(ConsistencyProof(leaves, 5, 4), HasError(Code::kOutOfRange, HasSubstr("5 to 4")));
}

TEST(MerkleTest, HashesParseFromHexAndBytes) {
  EXPECT_THAT(HashFromHex("zz"), HasError(Code::kInvalidArgument, HasSubstr("'zz'")));
  EXPECT_THAT(HashFromBytes(Bytes(31)), HasError(Code::kInvalidArgument, HasSubstr("not 31")));
  EXPECT_EQ(HashHex(H(kReferenceRoots[1])), kReferenceRoots[1]);
}

}  // namespace
}  // namespace hallmark::registry
