// The deterministic P-256 key of the fuzzy extractor, through OpenSSL (HKDF and HMAC come from
// core/kdf.h).
#ifndef HALLMARK_PUF_INTERNAL_KEY_DERIVATION_H_
#define HALLMARK_PUF_INTERNAL_KEY_DERIVATION_H_

#include <cstdint>
#include <span>
#include <string_view>

#include "core/encoding.h"
#include "core/key.h"
#include "core/secret_bytes.h"
#include "core/status.h"

namespace hallmark::puf::internal {

// DeriveP256Key turns a 32-byte secret into a P-256 private key deterministically: HKDF
// expands the secret with a counter to 384 bits, which are reduced modulo the group order n
// (bias below 2^-128); a zero scalar moves on to the next counter. The public point is computed
// and both go to OpenSSL through EVP_PKEY_fromdata, so the key signs like any other.
Result<PrivateKey> DeriveP256Key(const SecretBytes& secret);

}  // namespace hallmark::puf::internal

#endif  // HALLMARK_PUF_INTERNAL_KEY_DERIVATION_H_
