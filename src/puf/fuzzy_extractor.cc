#include "puf/fuzzy_extractor.h"

#include <openssl/crypto.h>

#include <algorithm>
#include <cmath>
#include <string>

#include "core/kdf.h"
#include "core/random.h"
#include "puf/bits.h"
#include "puf/helper_data.h"
#include "puf/internal/bch.h"
#include "puf/internal/code.h"
#include "puf/internal/key_derivation.h"

namespace hallmark::puf {
namespace {

constexpr std::string_view kSecretInfo = "hallmark-puf-v1 secret";
constexpr std::string_view kTagInfo = "hallmark-puf-v1 helper-data tag";
constexpr size_t kSecretBytes = 32;

// The one message for every reconstruction failure that depends on the response (see the header).
constexpr const char* kReconstructionFailed =
    "PUF reconstruction failed: the read is too noisy to correct, or the helper data belongs to "
    "another chip or was altered";

double BinaryEntropy(double p) {
  if (p <= 0 || p >= 1) {
    return 0;
  }
  return -p * std::log2(p) - (1 - p) * std::log2(1 - p);
}

// Secrets holds what the corrected response determines.
struct Secrets {
  SecretBytes secret;
  Bytes tag;
};

// DeriveSecrets turns the enrollment bits into the extractor's secret, and the helper data's
// integrity tag under a key derived from it with a distinct label.
Result<Secrets> DeriveSecrets(const Bits& encoded, const HelperData& h) {
  std::vector<uint8_t> packed = PackBits(encoded);
  auto secret = HkdfSha256(packed, h.salt, AsBytes(kSecretInfo), kSecretBytes);
  OPENSSL_cleanse(packed.data(), packed.size());
  if (!secret) {
    return secret.error();
  }
  auto tag_key = HkdfSha256(secret->bytes(SecretAccess::Grant()), {}, AsBytes(kTagInfo),
                            kSecretBytes);
  if (!tag_key) {
    return tag_key.error();
  }
  auto tag = HmacSha256(*tag_key, h.TaggedBytes());
  if (!tag) {
    return tag.error();
  }
  return Secrets{std::move(*secret), std::move(*tag)};
}

// CellMap says which response cell carries each encoded bit's first vote; with pairs, the
// second vote is the next cell.
struct CellMap {
  std::vector<uint32_t> first;  // cell of each encoded bit's first vote
  bool pairs = false;
};

CellMap MapCells(const HelperData& h) {
  CellMap m;
  m.pairs = h.debiasing == Debiasing::kPairs;
  if (!m.pairs) {
    m.first.resize(h.cells);
    for (uint32_t i = 0; i < h.cells; ++i) {
      m.first[i] = i;
    }
    return m;
  }
  for (uint32_t i = 0; i < h.pair_map.size(); ++i) {
    if (h.pair_map[i] != 0) {
      m.first.push_back(2 * i);
    }
  }
  return m;
}

}  // namespace

std::string_view DebiasingName(Debiasing d) {
  switch (d) {
    case Debiasing::kNone:
      return "none";
    case Debiasing::kPairs:
      return "pairs";
  }
  return "unknown";
}

Result<Debiasing> ParseDebiasing(std::string_view name) {
  if (name == "none") {
    return Debiasing::kNone;
  }
  if (name == "pairs") {
    return Debiasing::kPairs;
  }
  return Error(Code::kInvalidArgument,
               "unknown debiasing '" + std::string(name) + "'; expected none or pairs");
}

ExtractorParams ExtractorParams::For(Debiasing d) { return {d, d == Debiasing::kNone ? 7 : 5}; }

size_t ExtractorParams::EncodedBits() const {
  return static_cast<size_t>(internal::BchCode::Bch511().n()) *
         static_cast<size_t>(std::max(repetition, 0));
}

Status ValidateParams(const ExtractorParams& params) {
  if (params.repetition < 1 || params.repetition > 15 || params.repetition % 2 == 0) {
    return Error(Code::kInvalidArgument, "repetition length " + std::to_string(params.repetition) +
                                             " must be odd and in 1..15");
  }
  return OkStatus();
}

double ResidualEntropyBits(const ExtractorParams& params, double bias) {
  const auto n = static_cast<double>(params.EncodedBits());
  const double k = internal::BchCode::Bch511().k();
  if (params.debiasing == Debiasing::kPairs) {
    return k;
  }
  return n * BinaryEntropy(bias) - (n - k);
}

double ResidualMinEntropyBits(const ExtractorParams& params, double bias) {
  const auto n = static_cast<double>(params.EncodedBits());
  const double k = internal::BchCode::Bch511().k();
  if (params.debiasing == Debiasing::kPairs) {
    return k;
  }
  return n * -std::log2(std::max(bias, 1 - bias)) - (n - k);
}

Debiasing RecommendedDebiasing(double bias) {
  return ResidualEntropyBits(ExtractorParams::For(Debiasing::kNone), bias) >= kMinKeyEntropyBits
             ? Debiasing::kNone
             : Debiasing::kPairs;
}

Result<Enrollment> Enroll(std::span<const uint8_t> response, const ExtractorParams& params) {
  if (auto s = ValidateParams(params); !s) {
    return s.error();
  }
  const internal::BchCode& bch = internal::BchCode::Bch511();
  const size_t encoded = params.EncodedBits();
  const auto rep = static_cast<size_t>(params.repetition);
  HelperData h;
  h.debiasing = params.debiasing;
  h.repetition = static_cast<uint8_t>(params.repetition);
  Bits x(encoded);
  if (params.debiasing == Debiasing::kPairs) {
    std::vector<uint32_t> pairs = internal::SelectPairs(response, encoded);
    if (pairs.size() < encoded) {
      return Error(Code::kResourceExhausted, "PUF response of " + std::to_string(response.size()) +
                                                 " cells has only " + std::to_string(pairs.size()) +
                                                 " unequal pairs; pair debiasing needs " +
                                                 std::to_string(encoded) + " (read more cells)");
    }
    h.cells = 2 * (pairs.back() + 1);
    h.pair_map.assign(h.cells / 2, 0);
    for (size_t j = 0; j < encoded; ++j) {
      h.pair_map[pairs[j]] = 1;
      x[j] = response[2 * pairs[j]];
    }
  } else {
    if (response.size() < encoded) {
      return Error(Code::kInvalidArgument, "PUF response has " + std::to_string(response.size()) +
                                               " cells; the code needs " + std::to_string(encoded));
    }
    h.cells = static_cast<uint32_t>(encoded);
    std::copy_n(response.begin(), encoded, x.begin());
  }
  if (h.cells > HelperData::kMaxCells) {
    return Error(Code::kResourceExhausted, "pair debiasing needed " + std::to_string(h.cells) +
                                               " cells; helper data supports at most " +
                                               std::to_string(HelperData::kMaxCells));
  }

  Bits message =
      UnpackBits(RandomBytes((static_cast<size_t>(bch.k()) + 7) / 8), static_cast<size_t>(bch.k()));
  Bits codeword = bch.Encode(message);
  h.offset.resize(encoded);
  for (size_t j = 0; j < encoded; ++j) {
    h.offset[j] = static_cast<uint8_t>(x[j] ^ codeword[j / rep]);
  }
  WipeBits(message);
  WipeBits(codeword);
  std::vector<uint8_t> salt = RandomBytes(HelperData::kSaltBytes);
  std::copy(salt.begin(), salt.end(), h.salt.begin());

  auto secrets = DeriveSecrets(x, h);
  WipeBits(x);
  if (!secrets) {
    return secrets.error();
  }
  std::copy(secrets->tag.begin(), secrets->tag.end(), h.tag.begin());
  auto key = internal::DeriveP256Key(secrets->secret);
  if (!key) {
    return key.error();
  }
  return Enrollment{h.Serialize(), std::move(*key), h.cells};
}

Result<Reconstruction> Reconstruct(std::span<const uint8_t> response,
                                   std::span<const uint8_t> helper_data) {
  auto parsed = HelperData::Parse(helper_data);
  if (!parsed) {
    return parsed.error();
  }
  const HelperData& h = *parsed;
  if (response.size() < h.cells) {
    return Error(Code::kInvalidArgument, "PUF response has " + std::to_string(response.size()) +
                                             " cells; the helper data uses " +
                                             std::to_string(h.cells));
  }
  const internal::BchCode& bch = internal::BchCode::Bch511();
  const auto rep = static_cast<size_t>(h.repetition);
  const CellMap cells = MapCells(h);

  // Inner code: each block votes on one bit of the outer codeword.
  Bits received(static_cast<size_t>(bch.n()));
  for (size_t b = 0; b < received.size(); ++b) {
    int first = 0;
    int second = 0;
    for (size_t j = b * rep; j < (b + 1) * rep; ++j) {
      first += response[cells.first[j]] ^ h.offset[j];
      if (cells.pairs) {
        // The partner cell was the complement at enrollment: it votes inverted.
        second += (response[cells.first[j] + 1] ^ 1u) ^ h.offset[j];
      }
    }
    received[b] = internal::BlockDecision(first, second, h.repetition, h.debiasing) ? 1 : 0;
  }
  auto decoded = bch.Decode(received);
  if (!decoded) {
    // Spend the time the tag check would have taken, so that how long a failure takes says
    // little about which check failed (roughly: neither path is constant-time).
    static_cast<void>(DeriveSecrets(h.offset, h));
    return Error(Code::kDataLoss, kReconstructionFailed);
  }
  Bits x(h.offset.size());
  size_t bit_errors = 0;
  for (size_t j = 0; j < x.size(); ++j) {
    x[j] = static_cast<uint8_t>(h.offset[j] ^ decoded->codeword[j / rep]);
    bit_errors += static_cast<size_t>(response[cells.first[j]] != x[j]);
    if (cells.pairs) {
      bit_errors += static_cast<size_t>(response[cells.first[j] + 1] == x[j]);
    }
  }
  WipeBits(decoded->codeword);
  auto secrets = DeriveSecrets(x, h);
  WipeBits(x);
  if (!secrets) {
    return secrets.error();
  }
  if (CRYPTO_memcmp(secrets->tag.data(), h.tag.data(), h.tag.size()) != 0) {
    return Error(Code::kDataLoss, kReconstructionFailed);
  }
  auto key = internal::DeriveP256Key(secrets->secret);
  if (!key) {
    return key.error();
  }
  return Reconstruction{std::move(*key), bit_errors, decoded->corrected};
}

}  // namespace hallmark::puf
