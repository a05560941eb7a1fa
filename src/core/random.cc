#include "core/random.h"

#include <openssl/rand.h>

#include <cstdio>
#include <cstdlib>

namespace hallmark {

std::vector<uint8_t> RandomBytes(size_t n) {
  std::vector<uint8_t> out(n);
  if (n > 0 && RAND_bytes(out.data(), static_cast<int>(n)) != 1) {
    std::fputs("hallmark: RAND_bytes failed; refusing to continue without randomness\n", stderr);
    std::abort();
  }
  return out;
}

}  // namespace hallmark
