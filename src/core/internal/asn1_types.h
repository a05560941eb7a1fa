// ASN.1 templates hallmark parses with instead of OpenSSL's X509_PUBKEY and X509_REQ.
//
// OpenSSL 3.0 decodes every SubjectPublicKeyInfo it parses through its provider decoders, which
// costs about 95 us per key on this hardware (more than an ECDSA verify). These templates mirror
// the standard structures but keep the key as bytes, so hallmark decodes keys itself through
// EVP_PKEY_fromdata (about 14 us). The DER parsing is still OpenSSL's.
#ifndef HALLMARK_CORE_INTERNAL_ASN1_TYPES_H_
#define HALLMARK_CORE_INTERNAL_ASN1_TYPES_H_

#include <openssl/asn1t.h>
#include <openssl/x509.h>

extern "C" {

// SubjectPublicKeyInfo (RFC 5280 section 4.1), without the decode callback.
struct HALLMARK_SPKI {
  X509_ALGOR* algor;
  ASN1_BIT_STRING* public_key;
};
DECLARE_ASN1_FUNCTIONS(HALLMARK_SPKI)

// CertificationRequestInfo (RFC 2986 section 4.1), keeping its original encoding for the
// signature check.
struct HALLMARK_CSR_INFO {
  ASN1_ENCODING enc;
  ASN1_INTEGER* version;
  X509_NAME* subject;
  HALLMARK_SPKI* spki;
  STACK_OF(X509_ATTRIBUTE) * attributes;
};
DECLARE_ASN1_FUNCTIONS(HALLMARK_CSR_INFO)

// CertificationRequest (RFC 2986 section 4.2).
struct HALLMARK_CSR {
  HALLMARK_CSR_INFO* info;
  X509_ALGOR* sig_alg;
  ASN1_BIT_STRING* signature;
};
DECLARE_ASN1_FUNCTIONS(HALLMARK_CSR)

}  // extern "C"

#endif  // HALLMARK_CORE_INTERNAL_ASN1_TYPES_H_

#include "core/ossl.h"
#include "core/status.h"

namespace hallmark {

template <>
struct Deleter<HALLMARK_SPKI> {
  void operator()(HALLMARK_SPKI* p) const { HALLMARK_SPKI_free(p); }
};
template <>
struct Deleter<HALLMARK_CSR> {
  void operator()(HALLMARK_CSR* p) const { HALLMARK_CSR_free(p); }
};

namespace internal {

// SetSpkiParams sets `dst` to algorithm `alg` and key bits `bits` (copies), without decoding or
// encoding a key. kInternal on allocation failure; kInvalidArgument for unusual parameters.
Status SetSpkiParams(X509_PUBKEY* dst, const X509_ALGOR* alg, const unsigned char* bits,
                     int bits_len);

}  // namespace internal
}  // namespace hallmark
