// The certs-only format (RFC 7030 section 4.1.3, RFC 5652's degenerate SignedData): a PKCS#7
// SignedData with certificates and no signers, base64 encoded, as EST's /cacerts and
// /simpleenroll answer and `openssl pkcs7 -print_certs` reads.
#ifndef HALLMARK_CORE_PKCS7_H_
#define HALLMARK_CORE_PKCS7_H_

#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/certificate.h"
#include "core/status.h"

namespace hallmark {

// EncodeCertsOnly returns base64 (lines of 64 characters) of the DER certs-only message holding
// `certs` in order. kInternal if OpenSSL fails.
Result<std::string> EncodeCertsOnly(std::span<const Certificate> certs);

// DecodeCertsOnly decodes base64 (whitespace ignored) of a DER certs-only message and returns
// its certificates in order; kInvalidArgument if the text is not one or holds no certificate.
Result<std::vector<Certificate>> DecodeCertsOnly(std::string_view base64);

}  // namespace hallmark

#endif  // HALLMARK_CORE_PKCS7_H_
