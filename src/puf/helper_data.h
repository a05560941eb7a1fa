// HelperData: the public data the PUF fuzzy extractor stores at enrollment, and its binary file
// format (version 1, big-endian, docs/puf.md):
//
//   "HPUF" | version u8 | debiasing u8 | repetition u8 | bch_n u16 | bch_k u16 | bch_t u8 |
//   cells u32 | salt[16] | [kPairs: pair map, cells/2 bits] | code offset, n*rep bits | tag[32]
//
// Bit fields are packed eight to a byte, first bit most significant, zero padded. The tag is
// HMAC-SHA-256 over every byte before it, keyed from the reconstructed secret.
#ifndef HALLMARK_PUF_HELPER_DATA_H_
#define HALLMARK_PUF_HELPER_DATA_H_

#include <array>
#include <cstdint>
#include <span>

#include "core/encoding.h"
#include "core/status.h"
#include "puf/bits.h"
#include "puf/fuzzy_extractor.h"

namespace hallmark::puf {

// HelperData is plain data; copyable; thread-compatible.
struct HelperData {
  static constexpr uint8_t kVersion = 1;
  static constexpr size_t kSaltBytes = 16;
  static constexpr size_t kTagBytes = 32;
  // kMaxCells bounds the cells a helper file may refer to (16 Mbit of SRAM).
  static constexpr uint32_t kMaxCells = 1u << 24;

  Debiasing debiasing = Debiasing::kNone;
  uint8_t repetition = 7;
  uint16_t bch_n = 511;
  uint16_t bch_k = 295;
  uint8_t bch_t = 26;
  uint32_t cells = 0;  // the response prefix the construction reads
  std::array<uint8_t, kSaltBytes> salt{};
  Bits pair_map;  // kPairs only: cells/2 entries, 1 = pair (2i, 2i+1) is used
  Bits offset;    // code offset: enrollment bits XOR codeword, bch_n * repetition bits
  std::array<uint8_t, kTagBytes> tag{};

  // Serialize returns the file contents, tag included.
  Bytes Serialize() const;
  // TaggedBytes returns what the tag covers: Serialize() without the tag.
  Bytes TaggedBytes() const;

  // Parse reads a helper data file and checks that it is well formed: magic, version, supported
  // parameters (the BCH(511, 295, 26) code, odd repetition 1..15), the exact length, zero
  // padding, and a pair map that selects exactly the encoded bits. kDataLoss naming the first
  // problem found. It does not check the tag (that needs the PUF).
  static Result<HelperData> Parse(std::span<const uint8_t> data);

  ExtractorParams Params() const { return {debiasing, repetition}; }

  // FileSize is the size of a helper data file for `params` reading `cells` cells.
  static size_t FileSize(const ExtractorParams& params, size_t cells);
};

}  // namespace hallmark::puf

#endif  // HALLMARK_PUF_HELPER_DATA_H_
