#include "puf/bits.h"

#include <openssl/crypto.h>

#include <algorithm>

namespace hallmark::puf {

std::vector<uint8_t> PackBits(std::span<const uint8_t> bits) {
  std::vector<uint8_t> out((bits.size() + 7) / 8, 0);
  for (size_t i = 0; i < bits.size(); ++i) {
    if (bits[i] != 0) {
      out[i / 8] = static_cast<uint8_t>(out[i / 8] | (0x80u >> (i % 8)));
    }
  }
  return out;
}

Bits UnpackBits(std::span<const uint8_t> packed, size_t count) {
  Bits out(count);
  for (size_t i = 0; i < count; ++i) {
    out[i] = static_cast<uint8_t>((packed[i / 8] >> (7 - i % 8)) & 1u);
  }
  return out;
}

size_t HammingDistance(std::span<const uint8_t> a, std::span<const uint8_t> b) {
  size_t n = std::min(a.size(), b.size());
  size_t d = 0;
  for (size_t i = 0; i < n; ++i) {
    d += static_cast<size_t>(a[i] != b[i]);
  }
  return d;
}

void WipeBits(Bits& bits) { OPENSSL_cleanse(bits.data(), bits.size()); }

}  // namespace hallmark::puf
