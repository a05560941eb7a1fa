// CertsOnly: the EST response format (RFC 7030 section 4.1.3): a degenerate PKCS#7 SignedData
// with certificates and no signers, base64 encoded.
#ifndef HALLMARK_ENROLL_INTERNAL_PKCS7_H_
#define HALLMARK_ENROLL_INTERNAL_PKCS7_H_

#include <span>
#include <string>

#include "core/certificate.h"
#include "core/status.h"

namespace hallmark::enroll::internal {

// EncodeCertsOnly returns base64 (lines of 64 characters) of the DER PKCS#7 certs-only message
// holding `certs` in order. kInternal if OpenSSL fails.
Result<std::string> EncodeCertsOnly(std::span<const Certificate> certs);

}  // namespace hallmark::enroll::internal

#endif  // HALLMARK_ENROLL_INTERNAL_PKCS7_H_
