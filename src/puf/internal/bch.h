// BchCode: binary BCH codes over GF(2^m), the outer code of the PUF fuzzy extractor.
//
// This is error correction, not cryptography: a bounded-distance decoder (syndromes,
// Berlekamp-Massey, Chien search) that corrects up to `t` errors and reports failure when it
// finds more, never a codeword it did not check.
#ifndef HALLMARK_PUF_INTERNAL_BCH_H_
#define HALLMARK_PUF_INTERNAL_BCH_H_

#include <cstdint>
#include <span>
#include <vector>

#include "core/status.h"
#include "puf/bits.h"

namespace hallmark::puf::internal {

// BchCode is a narrow-sense primitive binary BCH code of length n = 2^m - 1 with designed
// distance 2t + 1. Immutable after construction; thread-safe.
class BchCode {
 public:
  // Create builds the code over GF(2^m) defined by `primitive_poly` (bit i is the coefficient of
  // x^i, including x^m). kInvalidArgument if m is outside 3..15, the polynomial is not
  // primitive, or t leaves no message bits.
  static Result<BchCode> Create(int m, uint32_t primitive_poly, int t);

  // Bch511 is the code the fuzzy extractor uses: BCH(511, 295, t = 26) over GF(2^9) with
  // x^9 + x^4 + 1.
  static const BchCode& Bch511();

  int n() const { return n_; }
  int k() const { return k_; }
  int t() const { return t_; }

  // Encode returns the systematic codeword of `message` (k bits): parity bits at positions
  // [0, n-k), the message at [n-k, n). Position i is the coefficient of x^i.
  Bits Encode(std::span<const uint8_t> message) const;

  // Message returns the message part of a codeword.
  Bits Message(std::span<const uint8_t> codeword) const;

  struct Decoded {
    Bits codeword;
    int corrected = 0;  // number of bits flipped
  };
  // Decode corrects up to t errors in `received` (n bits). kDataLoss if the word is not within
  // distance t of a codeword as far as the decoder can tell (the error locator has more than t
  // roots or fewer roots than its degree); the returned codeword always has zero syndromes.
  Result<Decoded> Decode(std::span<const uint8_t> received) const;

  // Syndromes returns S_1 .. S_2t of `word` (all zero exactly for codewords).
  std::vector<uint16_t> Syndromes(std::span<const uint8_t> word) const;

 private:
  BchCode() = default;
  uint16_t Mul(uint16_t a, uint16_t b) const;
  uint16_t Inv(uint16_t a) const;

  int m_ = 0;
  int n_ = 0;
  int k_ = 0;
  int t_ = 0;
  std::vector<uint16_t> exp_;  // exp_[i] = alpha^i, for i in [0, 2n)
  std::vector<int> log_;       // log_[alpha^i] = i; log_[0] unused
  Bits generator_;             // g_0 .. g_{n-k}
};

}  // namespace hallmark::puf::internal

#endif  // HALLMARK_PUF_INTERNAL_BCH_H_
