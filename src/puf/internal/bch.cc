#include "puf/internal/bch.h"

#include <string>

namespace hallmark::puf::internal {

Result<BchCode> BchCode::Create(int m, uint32_t primitive_poly, int t) {
  if (m < 3 || m > 15) {
    return Error(Code::kInvalidArgument,
                 "BCH field GF(2^" + std::to_string(m) + ") unsupported; m must be 3..15");
  }
  BchCode code;
  code.m_ = m;
  code.n_ = (1 << m) - 1;
  code.t_ = t;
  const auto n = static_cast<size_t>(code.n_);
  code.exp_.assign(2 * n, 0);
  code.log_.assign(n + 1, -1);
  uint32_t x = 1;
  for (size_t i = 0; i < n; ++i) {
    if (code.log_[x] != -1) {
      return Error(Code::kInvalidArgument, "BCH field polynomial is not primitive");
    }
    code.exp_[i] = static_cast<uint16_t>(x);
    code.log_[x] = static_cast<int>(i);
    x <<= 1;
    if ((x >> m) & 1u) {
      x ^= primitive_poly;
    }
  }
  if (x != 1) {
    return Error(Code::kInvalidArgument, "BCH field polynomial is not primitive");
  }
  for (size_t i = n; i < 2 * n; ++i) {
    code.exp_[i] = code.exp_[i - n];
  }

  // g(x) is the product of the minimal polynomials of alpha^1 .. alpha^2t, each taken once per
  // cyclotomic coset {j, 2j, 4j, ...} mod n.
  std::vector<bool> covered(n, false);
  std::vector<uint16_t> g = {1};  // coefficients in GF(2^m), lowest degree first
  for (int j = 1; j <= 2 * t; ++j) {
    if (covered[static_cast<size_t>(j) % n]) {
      continue;
    }
    for (size_t e = static_cast<size_t>(j) % n; !covered[e]; e = (2 * e) % n) {
      covered[e] = true;
      // g(x) *= (x + alpha^e)
      std::vector<uint16_t> next(g.size() + 1, 0);
      for (size_t i = 0; i < g.size(); ++i) {
        next[i + 1] ^= g[i];
        next[i] ^= code.Mul(g[i], code.exp_[e]);
      }
      g = std::move(next);
    }
  }
  code.k_ = code.n_ - static_cast<int>(g.size() - 1);
  if (t < 1 || code.k_ < 1) {
    return Error(Code::kInvalidArgument, "BCH code of length " + std::to_string(code.n_) +
                                             " cannot correct t=" + std::to_string(t) +
                                             " errors with any message bits left");
  }
  for (uint16_t c : g) {
    if (c > 1) {
      return Error(Code::kInternal, "BCH generator polynomial is not binary");
    }
    code.generator_.push_back(static_cast<uint8_t>(c));
  }
  return code;
}

const BchCode& BchCode::Bch511() {
  static const BchCode code = *Create(9, 0x211, 26);
  return code;
}

uint16_t BchCode::Mul(uint16_t a, uint16_t b) const {
  if (a == 0 || b == 0) {
    return 0;
  }
  return exp_[static_cast<size_t>(log_[a] + log_[b])];
}

uint16_t BchCode::Inv(uint16_t a) const { return exp_[static_cast<size_t>((n_ - log_[a]) % n_)]; }

Bits BchCode::Encode(std::span<const uint8_t> message) const {
  const auto parity = static_cast<size_t>(n_ - k_);
  // Remainder of x^(n-k) m(x) divided by g(x), by the usual shift-register division.
  Bits rem(parity, 0);
  for (size_t i = static_cast<size_t>(k_); i-- > 0;) {
    const uint8_t feedback = static_cast<uint8_t>((message[i] ^ rem[parity - 1]) & 1u);
    for (size_t j = parity - 1; j > 0; --j) {
      rem[j] = static_cast<uint8_t>(rem[j - 1] ^ (feedback & generator_[j]));
    }
    rem[0] = static_cast<uint8_t>(feedback & generator_[0]);
  }
  Bits codeword(static_cast<size_t>(n_));
  std::copy(rem.begin(), rem.end(), codeword.begin());
  for (size_t i = 0; i < static_cast<size_t>(k_); ++i) {
    codeword[parity + i] = static_cast<uint8_t>(message[i] & 1u);
  }
  return codeword;
}

Bits BchCode::Message(std::span<const uint8_t> codeword) const {
  auto first = codeword.begin() + (n_ - k_);
  return Bits(first, first + k_);
}

std::vector<uint16_t> BchCode::Syndromes(std::span<const uint8_t> word) const {
  const auto count = static_cast<size_t>(2 * t_);
  std::vector<uint16_t> s(count + 1, 0);  // s[j] = S_j; s[0] unused
  for (size_t j = 1; j <= count; j += 2) {
    uint16_t acc = 0;
    for (size_t i = 0; i < static_cast<size_t>(n_); ++i) {
      if (word[i] != 0) {
        acc ^= exp_[(i * j) % static_cast<size_t>(n_)];
      }
    }
    s[j] = acc;
  }
  // Over GF(2^m), S_2j = S_j^2 for a binary word.
  for (size_t j = 2; j <= count; j += 2) {
    s[j] = Mul(s[j / 2], s[j / 2]);
  }
  s.erase(s.begin());
  return s;
}

Result<BchCode::Decoded> BchCode::Decode(std::span<const uint8_t> received) const {
  if (received.size() != static_cast<size_t>(n_)) {
    return Error(Code::kInvalidArgument, "BCH word has " + std::to_string(received.size()) +
                                             " bits; the code length is " + std::to_string(n_));
  }
  Decoded out{Bits(received.begin(), received.end()), 0};
  const std::vector<uint16_t> s = Syndromes(received);
  bool clean = true;
  for (uint16_t v : s) {
    clean = clean && v == 0;
  }
  if (clean) {
    return out;
  }

  // Berlekamp-Massey: the shortest LFSR (error locator Lambda) generating S_1 .. S_2t.
  const auto two_t = static_cast<size_t>(2 * t_);
  std::vector<uint16_t> lambda(two_t + 2, 0), prev(two_t + 2, 0), tmp;
  lambda[0] = prev[0] = 1;
  size_t degree = 0;
  size_t shift = 1;
  uint16_t prev_discrepancy = 1;
  for (size_t r = 0; r < two_t; ++r) {
    uint16_t d = s[r];
    for (size_t i = 1; i <= degree; ++i) {
      d ^= Mul(lambda[i], s[r - i]);
    }
    if (d == 0) {
      ++shift;
      continue;
    }
    const uint16_t coef = Mul(d, Inv(prev_discrepancy));
    tmp = lambda;
    for (size_t i = 0; i + shift < lambda.size(); ++i) {
      lambda[i + shift] ^= Mul(coef, prev[i]);
    }
    if (2 * degree <= r) {
      degree = r + 1 - degree;
      prev = std::move(tmp);
      prev_discrepancy = d;
      shift = 1;
    } else {
      ++shift;
    }
  }
  if (degree > static_cast<size_t>(t_)) {
    return Error(Code::kDataLoss, "BCH decoding failed: more than " + std::to_string(t_) +
                                      " errors (error locator of degree " + std::to_string(degree) +
                                      ")");
  }

  // Chien search: position i is in error iff Lambda(alpha^-i) = 0. term[j] tracks
  // lambda_j * alpha^(-i*j) as i advances.
  std::vector<uint16_t> term(lambda.begin(), lambda.begin() + static_cast<long>(degree) + 1);
  std::vector<size_t> positions;
  for (size_t i = 0; i < static_cast<size_t>(n_); ++i) {
    uint16_t sum = 0;
    for (size_t j = 0; j <= degree; ++j) {
      sum ^= term[j];
    }
    if (sum == 0) {
      positions.push_back(i);
    }
    for (size_t j = 1; j <= degree; ++j) {
      term[j] = Mul(term[j], exp_[static_cast<size_t>(n_) - j]);
    }
  }
  if (positions.size() != degree) {
    return Error(Code::kDataLoss, "BCH decoding failed: more than " + std::to_string(t_) +
                                      " errors (error locator has " +
                                      std::to_string(positions.size()) + " roots for degree " +
                                      std::to_string(degree) + ")");
  }
  for (size_t p : positions) {
    out.codeword[p] ^= 1u;
  }
  out.corrected = static_cast<int>(positions.size());
  // Defence in depth: only ever return a codeword.
  for (uint16_t v : Syndromes(out.codeword)) {
    if (v != 0) {
      return Error(Code::kDataLoss, "BCH decoding failed: corrected word is not a codeword");
    }
  }
  return out;
}

}  // namespace hallmark::puf::internal
