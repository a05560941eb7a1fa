// Key derivation and message authentication through OpenSSL: HKDF-SHA-256 (RFC 5869) and
// HMAC-SHA-256. Callers compose them; nothing here is a primitive of our own.
#ifndef HALLMARK_CORE_KDF_H_
#define HALLMARK_CORE_KDF_H_

#include <cstdint>
#include <span>

#include "core/encoding.h"
#include "core/secret_bytes.h"
#include "core/status.h"

namespace hallmark {

// HkdfSha256 returns `length` bytes of HKDF-SHA-256 of `ikm` with `salt` and `info`. An empty
// salt is RFC 5869's absent salt (a string of zeros); an empty info is no info.
Result<SecretBytes> HkdfSha256(std::span<const uint8_t> ikm, std::span<const uint8_t> salt,
                               std::span<const uint8_t> info, size_t length);

// HmacSha256 returns HMAC-SHA-256 of `data` under `key`.
Result<Bytes> HmacSha256(const SecretBytes& key, std::span<const uint8_t> data);

}  // namespace hallmark

#endif  // HALLMARK_CORE_KDF_H_
