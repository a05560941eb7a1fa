#include "puf/internal/code.h"

namespace hallmark::puf::internal {

std::vector<uint32_t> SelectPairs(std::span<const uint8_t> response, size_t count) {
  std::vector<uint32_t> pairs;
  pairs.reserve(count);
  for (size_t i = 0; 2 * i + 1 < response.size() && pairs.size() < count; ++i) {
    if (response[2 * i] != response[2 * i + 1]) {
      pairs.push_back(static_cast<uint32_t>(i));
    }
  }
  return pairs;
}

}  // namespace hallmark::puf::internal
