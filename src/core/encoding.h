// Hex and Base64 encodings of byte strings.
#ifndef HALLMARK_CORE_ENCODING_H_
#define HALLMARK_CORE_ENCODING_H_

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace hallmark {

using Bytes = std::vector<uint8_t>;

// AsBytes views a string's characters as bytes.
inline std::span<const uint8_t> AsBytes(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

// HexEncode returns lowercase hex.
std::string HexEncode(std::span<const uint8_t> bytes);

// HexDecode accepts upper- or lowercase hex, optionally with ':' separators between byte pairs.
// kInvalidArgument on any other character or an odd number of digits.
Result<Bytes> HexDecode(std::string_view hex);

// Base64Encode returns standard Base64 (RFC 4648 section 4) without line breaks.
std::string Base64Encode(std::span<const uint8_t> bytes);

// Base64Decode accepts standard Base64, ignoring whitespace. kInvalidArgument on bad input.
Result<Bytes> Base64Decode(std::string_view text);

}  // namespace hallmark

#endif  // HALLMARK_CORE_ENCODING_H_
