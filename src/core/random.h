// Randomness from OpenSSL's CSPRNG.
#ifndef HALLMARK_CORE_RANDOM_H_
#define HALLMARK_CORE_RANDOM_H_

#include <cstddef>
#include <cstdint>
#include <vector>

namespace hallmark {

// RandomBytes returns `n` bytes from RAND_bytes. Aborts if the CSPRNG fails, since no caller can
// continue safely without randomness.
std::vector<uint8_t> RandomBytes(size_t n);

}  // namespace hallmark

#endif  // HALLMARK_CORE_RANDOM_H_
