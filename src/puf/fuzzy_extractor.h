// The PUF fuzzy extractor: enroll once from a PUF response, then regenerate the same P-256 device
// key from any later noisy read, with public helper data that cannot be altered silently.
//
// Construction (docs/puf.md): optional von Neumann pair debiasing, a code-offset with a
// concatenated code (inner repetition, outer BCH(511, 295, t = 26)), HKDF-SHA-256 from the
// corrected bits to a secret, and a P-256 key derived deterministically from the secret. The
// helper data carries an HMAC-SHA-256 tag keyed from the secret, so a reconstruction that
// mis-decodes or uses altered helper data is reported, never turned into a wrong key.
#ifndef HALLMARK_PUF_FUZZY_EXTRACTOR_H_
#define HALLMARK_PUF_FUZZY_EXTRACTOR_H_

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "core/encoding.h"
#include "core/key.h"
#include "core/status.h"

namespace hallmark::puf {

// Debiasing says how PUF cells become the bits the code protects.
enum class Debiasing : uint8_t {
  // kNone: cell i is bit i. Needs an (almost) unbiased source: the code offset leaks n - k bits,
  // and a biased source has less than n bits of entropy to start with.
  kNone = 0,
  // kPairs: von Neumann pairs. Cells (2i, 2i+1) whose enrollment values differ are used, the
  // first cell's value is the bit; the helper data lists which pairs were used. The bits are
  // uniform whatever the bias, and both cells vote at reconstruction.
  kPairs = 1,
};

std::string_view DebiasingName(Debiasing d);
// ParseDebiasing accepts "none" and "pairs". kInvalidArgument otherwise.
Result<Debiasing> ParseDebiasing(std::string_view name);

// ExtractorParams chooses the construction. The outer code is always BCH(511, 295, t = 26).
struct ExtractorParams {
  Debiasing debiasing = Debiasing::kNone;
  // repetition is the inner repetition code length (odd, 1..15). With kPairs each repetition
  // reads two cells, so 5 pairs (10 votes) do better than 7 single cells.
  int repetition = 7;

  // For returns the recommended parameters for a debiasing mode: repetition 7 for kNone
  // (3,577 cells), 5 for kPairs.
  static ExtractorParams For(Debiasing d);
  // EncodedBits is the number of code-offset bits: 511 * repetition.
  size_t EncodedBits() const;
};

// ValidateParams: kInvalidArgument unless `repetition` is odd and in 1..15.
Status ValidateParams(const ExtractorParams& params);

// kMinKeyEntropyBits: the entropy the extractor must keep after helper-data leakage.
inline constexpr double kMinKeyEntropyBits = 256;

// ResidualEntropyBits is the entropy left in the encoded bits once the helper data is public,
// for independent cells that are 1 with probability `bias`: n·h(bias) - (n - k) for kNone
// (n = EncodedBits(), k = 295; h is the binary entropy), and k for kPairs, whose bits are
// uniform given the helper data. Negative means no key entropy is guaranteed.
double ResidualEntropyBits(const ExtractorParams& params, double bias);
// ResidualMinEntropyBits is the conservative (worst-case) version for kNone, with min-entropy
// -log2(max(bias, 1 - bias)) per cell in place of h(bias); equal to ResidualEntropyBits for
// kPairs.
double ResidualMinEntropyBits(const ExtractorParams& params, double bias);

// RecommendedDebiasing returns kNone if a source with this bias (probability that a cell is 1)
// keeps at least kMinKeyEntropyBits after the code offset's leakage without debiasing, else
// kPairs.
Debiasing RecommendedDebiasing(double bias);

// Enrollment is what enrolling a chip produces: the public helper data and the device key.
struct Enrollment {
  Bytes helper_data;
  PrivateKey key;
  size_t cells_used = 0;  // PUF cells the helper data refers to
};

// Enroll derives the device key from `response` (one bit per element; use a majority of several
// reads) and returns it with its helper data. The code offset and the HKDF salt come from
// OpenSSL's CSPRNG, so enrolling twice gives different keys. kInvalidArgument for bad params or
// a response shorter than the code; kResourceExhausted if debiasing finds too few unequal pairs.
Result<Enrollment> Enroll(std::span<const uint8_t> response, const ExtractorParams& params);

// Reconstruction is the result of regenerating the key.
struct Reconstruction {
  PrivateKey key;
  size_t bit_errors = 0;  // response bits (votes) that differed from enrollment
  int block_errors = 0;   // inner blocks the outer BCH code had to correct
};

// Reconstruct regenerates the device key from a later noisy `response` and the helper data.
// kDataLoss if the helper data is malformed (message names the field), or if reconstruction
// fails: too many errors to correct, helper data of another chip, or helper data altered in
// any bit. These last cases share one message on purpose (see docs/puf.md): which of them
// happened would tell an attacker about the response. kInvalidArgument if `response` is
// shorter than the cells the helper data uses.
Result<Reconstruction> Reconstruct(std::span<const uint8_t> response,
                                   std::span<const uint8_t> helper_data);

}  // namespace hallmark::puf

#endif  // HALLMARK_PUF_FUZZY_EXTRACTOR_H_
