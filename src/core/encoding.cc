#include "core/encoding.h"

#include <openssl/evp.h>

namespace hallmark {

std::string HexEncode(std::span<const uint8_t> bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (uint8_t b : bytes) {
    out.push_back(kDigits[b >> 4]);
    out.push_back(kDigits[b & 0xf]);
  }
  return out;
}

Result<Bytes> HexDecode(std::string_view hex) {
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') {
      return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
      return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
      return c - 'A' + 10;
    }
    return -1;
  };
  Bytes out;
  int high = -1;
  for (size_t i = 0; i < hex.size(); ++i) {
    char c = hex[i];
    if (c == ':' && high < 0 && i > 0 && i + 1 < hex.size() && hex[i - 1] != ':') {
      continue;
    }
    int v = nibble(c);
    if (v < 0) {
      return Error(Code::kInvalidArgument, "invalid hex character '" + std::string(1, c) +
                                               "' at offset " + std::to_string(i));
    }
    if (high < 0) {
      high = v;
    } else {
      out.push_back(static_cast<uint8_t>((high << 4) | v));
      high = -1;
    }
  }
  if (high >= 0) {
    return Error(Code::kInvalidArgument, "hex string has an odd number of digits");
  }
  return out;
}

std::string Base64Encode(std::span<const uint8_t> bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), bytes.data(),
                          static_cast<int>(bytes.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

Result<Bytes> Base64Decode(std::string_view text) {
  std::string clean;
  clean.reserve(text.size());
  for (char c : text) {
    if (c != '\n' && c != '\r' && c != ' ' && c != '\t') {
      clean.push_back(c);
    }
  }
  if (clean.size() % 4 != 0) {
    return Error(Code::kInvalidArgument, "base64 text length is not a multiple of 4");
  }
  // Padding may only close the text: at most two '=' and nothing after them.
  size_t first_pad = clean.find('=');
  if (first_pad != std::string::npos &&
      (first_pad < clean.size() - 2 ||
       clean.find_first_not_of('=', first_pad) != std::string::npos)) {
    return Error(Code::kInvalidArgument, "base64 padding '=' is only allowed at the end");
  }
  Bytes out(clean.size() / 4 * 3);
  int n = EVP_DecodeBlock(out.data(), reinterpret_cast<const unsigned char*>(clean.data()),
                          static_cast<int>(clean.size()));
  if (n < 0) {
    return Error(Code::kInvalidArgument, "invalid base64 text");
  }
  // EVP_DecodeBlock counts padding as zero bytes; drop them.
  size_t len = static_cast<size_t>(n);
  if (!clean.empty() && clean.back() == '=') {
    --len;
    if (clean.size() >= 2 && clean[clean.size() - 2] == '=') {
      --len;
    }
  }
  out.resize(len);
  return out;
}

}  // namespace hallmark
