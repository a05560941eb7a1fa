// TreeHead: a signed statement "the registry log had `tree_size` entries with Merkle root
// `root_hash` at `timestamp`". The registrar signs one after every operation; the server and
// `hallmark registry verify` trust the log only as far as a signed head covers it.
//
// Canonical text (what is signed), every line ending in "\n":
//
//   hallmark-tree-head/1
//   tree_size=<decimal>
//   root_hash=<64 lowercase hex>
//   timestamp=<decimal seconds since the epoch>
#ifndef HALLMARK_REGISTRY_TREE_HEAD_H_
#define HALLMARK_REGISTRY_TREE_HEAD_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "core/key.h"
#include "core/status.h"
#include "registry/merkle.h"

namespace hallmark::registry {

inline constexpr std::string_view kTreeHeadMagic = "hallmark-tree-head/1";

struct TreeHead {
  uint64_t tree_size = 0;
  Hash root_hash{};
  int64_t timestamp = 0;
  std::string signer;  // "registrar"
  Bytes signature;     // over `CanonicalTreeHead`

  bool operator==(const TreeHead&) const = default;
};

// CanonicalTreeHead returns the text the signer signs (without signer and signature).
std::string CanonicalTreeHead(const TreeHead& head);

// ParseCanonicalTreeHead parses that text back (signer and signature empty). kInvalidArgument
// unless `text` is exactly a canonical tree head.
Result<TreeHead> ParseCanonicalTreeHead(std::string_view text);

// TreeHeadToJson returns the head as the JSON object `hallmark registry head` prints:
// {"tree_size", "root_hash" (hex), "timestamp", "signer", "signature" (Base64)}.
std::string TreeHeadToJson(const TreeHead& head);

// TreeHeadFromJson parses that object. kInvalidArgument names what is missing or malformed.
// The signature is not checked here (VerifyTreeHead does that).
Result<TreeHead> TreeHeadFromJson(std::string_view text);

// SignTreeHead sets `head->signature` to `key`'s signature over the canonical text.
Status SignTreeHead(const PrivateKey& key, TreeHead* head);

// VerifyTreeHead checks the head's signature with `key`. kUnauthenticated if it does not
// verify.
Status VerifyTreeHead(const PublicKey& key, const TreeHead& head);

}  // namespace hallmark::registry

#endif  // HALLMARK_REGISTRY_TREE_HEAD_H_
