// SignCertificate: turns a fully decided certificate template into a signed X.509 v3
// certificate. It applies no policy: the CA (`ca::Issuer`) decides every field.
#ifndef HALLMARK_CORE_CERTIFICATE_BUILDER_H_
#define HALLMARK_CORE_CERTIFICATE_BUILDER_H_

#include <cstdint>
#include <optional>
#include <vector>

#include "core/certificate.h"
#include "core/csr.h"
#include "core/encoding.h"
#include "core/key.h"
#include "core/status.h"

namespace hallmark {

// KeyUsage bits (RFC 5280 section 4.2.1.3).
enum KeyUsage : uint32_t {
  kDigitalSignature = 1u << 0,
  kKeyEncipherment = 1u << 2,
  kKeyAgreement = 1u << 4,
  kKeyCertSign = 1u << 5,
  kCrlSign = 1u << 6,
};

enum class ExtendedKeyUsage { kServerAuth, kClientAuth };

// CertificateTemplate is everything that goes into a certificate except the keys.
struct CertificateTemplate {
  Bytes serial;  // big-endian, positive, 1..20 octets (RFC 5280 section 4.1.2.2)
  DistinguishedName subject;
  int64_t not_before = 0;
  int64_t not_after = 0;  // may be kNoWellDefinedExpiration
  bool is_ca = false;
  std::optional<int> path_len;  // CA only
  uint32_t key_usage = 0;       // KeyUsage bits; always marked critical
  std::vector<ExtendedKeyUsage> extended_key_usage;
  std::vector<SubjectAltName> subject_alt_names;
};

// SignCertificate issues `tmpl` for `subject_key`, signed by `issuer_key`. `issuer` is the
// issuing CA's certificate, or nullptr for a self-signed root (then `issuer_key` must match
// `subject_key`). Adds critical basicConstraints and keyUsage, subjectKeyIdentifier (SHA-1 of the
// public key, RFC 5280 method 1) and authorityKeyIdentifier (the issuer's SKI).
// kInvalidArgument for an inconsistent template; kInternal if OpenSSL fails.
Result<Certificate> SignCertificate(const CertificateTemplate& tmpl, const PublicKey& subject_key,
                                    const Certificate* issuer, const PrivateKey& issuer_key);

}  // namespace hallmark

#endif  // HALLMARK_CORE_CERTIFICATE_BUILDER_H_
