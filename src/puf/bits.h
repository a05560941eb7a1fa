// Bits: PUF responses and codewords as one bit per byte, and the packing used on disk.
#ifndef HALLMARK_PUF_BITS_H_
#define HALLMARK_PUF_BITS_H_

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace hallmark::puf {

// Bits holds one bit per element, each 0 or 1. PUF responses are short (a few thousand bits), so
// clarity wins over packing; `PackBits` gives the compact form for files and hashing.
using Bits = std::vector<uint8_t>;

// PackBits packs `bits` eight to a byte, first bit in the most significant position; unused
// low bits of the last byte are zero.
std::vector<uint8_t> PackBits(std::span<const uint8_t> bits);

// UnpackBits returns the first `count` bits of `packed` (which must hold at least that many).
Bits UnpackBits(std::span<const uint8_t> packed, size_t count);

// HammingDistance counts the positions where `a` and `b` differ (over the shorter length).
size_t HammingDistance(std::span<const uint8_t> a, std::span<const uint8_t> b);

// WipeBits overwrites `bits` with zeros in a way the compiler cannot elide, for responses and
// codewords that determine a key.
void WipeBits(Bits& bits);

}  // namespace hallmark::puf

#endif  // HALLMARK_PUF_BITS_H_
