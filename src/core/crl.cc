#include "core/crl.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <array>
#include <ctime>

#include "core/ossl.h"

namespace hallmark {
namespace {

struct ReasonName {
  RevocationReason reason;
  std::string_view name;
  std::string_view alias;
};

constexpr std::array<ReasonName, 8> kReasons = {{
    {RevocationReason::kUnspecified, "unspecified", "unspecified"},
    {RevocationReason::kKeyCompromise, "keyCompromise", "key-compromise"},
    {RevocationReason::kCaCompromise, "cACompromise", "ca-compromise"},
    {RevocationReason::kAffiliationChanged, "affiliationChanged", "affiliation-changed"},
    {RevocationReason::kSuperseded, "superseded", "superseded"},
    {RevocationReason::kCessationOfOperation, "cessationOfOperation", "cessation-of-operation"},
    {RevocationReason::kCertificateHold, "certificateHold", "certificate-hold"},
    {RevocationReason::kPrivilegeWithdrawn, "privilegeWithdrawn", "privilege-withdrawn"},
}};

int64_t AsnTimeToEpoch(const ASN1_TIME* t) {
  struct tm tm {};
  if (t == nullptr || ASN1_TIME_to_tm(t, &tm) != 1) {
    ERR_clear_error();
    return 0;
  }
  return static_cast<int64_t>(timegm(&tm));
}

}  // namespace

Result<RevocationReason> ParseRevocationReason(std::string_view name) {
  for (const ReasonName& r : kReasons) {
    if (name == r.name || name == r.alias) {
      return r.reason;
    }
  }
  std::string all;
  for (const ReasonName& r : kReasons) {
    all += all.empty() ? "" : ", ";
    all += r.name;
  }
  return Error(Code::kInvalidArgument,
               "unknown revocation reason '" + std::string(name) + "'; expected one of " + all);
}

std::string_view RevocationReasonName(RevocationReason reason) {
  for (const ReasonName& r : kReasons) {
    if (r.reason == reason) {
      return r.name;
    }
  }
  return "unspecified";
}

Result<Crl> Crl::FromPem(std::string_view pem) {
  OsslPtr<BIO> bio = MemBio(pem);
  OsslPtr<X509_CRL> crl(PEM_read_bio_X509_CRL(bio.get(), nullptr, nullptr, nullptr));
  if (!crl) {
    return OsslError(Code::kInvalidArgument, "text is not a PEM CRL");
  }
  return Crl(std::shared_ptr<X509_CRL>(crl.release(), X509_CRL_free));
}

Result<Crl> Crl::FromDer(std::span<const uint8_t> der) {
  const unsigned char* p = der.data();
  OsslPtr<X509_CRL> crl(d2i_X509_CRL(nullptr, &p, static_cast<long>(der.size())));
  if (!crl) {
    return OsslError(Code::kInvalidArgument, "bytes are not a DER CRL");
  }
  if (p != der.data() + der.size()) {
    return Error(Code::kInvalidArgument, "CRL DER has trailing bytes");
  }
  return Crl(std::shared_ptr<X509_CRL>(crl.release(), X509_CRL_free));
}

std::string Crl::ToPem() const {
  OsslPtr<BIO> bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_X509_CRL(bio.get(), crl_.get());
  return BioToString(bio.get());
}

Bytes Crl::ToDer() const {
  int len = i2d_X509_CRL(crl_.get(), nullptr);
  Bytes der(static_cast<size_t>(len > 0 ? len : 0));
  unsigned char* p = der.data();
  i2d_X509_CRL(crl_.get(), &p);
  return der;
}

std::string Crl::Issuer() const {
  OsslPtr<BIO> bio(BIO_new(BIO_s_mem()));
  X509_NAME_print_ex(bio.get(), X509_CRL_get_issuer(crl_.get()), 0,
                     XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB);
  return BioToString(bio.get());
}

int64_t Crl::ThisUpdate() const { return AsnTimeToEpoch(X509_CRL_get0_lastUpdate(crl_.get())); }

int64_t Crl::NextUpdate() const { return AsnTimeToEpoch(X509_CRL_get0_nextUpdate(crl_.get())); }

bool Crl::IsRevoked(const Certificate& cert) const {
  X509_REVOKED* entry = nullptr;
  return X509_CRL_get0_by_cert(crl_.get(), &entry, cert.native()) == 1;
}

size_t Crl::RevokedCount() const {
  STACK_OF(X509_REVOKED)* revoked = X509_CRL_get_REVOKED(crl_.get());
  return revoked == nullptr ? 0 : static_cast<size_t>(sk_X509_REVOKED_num(revoked));
}

Status Crl::VerifySignature(const Certificate& issuer) const {
  EVP_PKEY* key = X509_get0_pubkey(issuer.native());
  if (key == nullptr || X509_CRL_verify(crl_.get(), key) != 1) {
    return OsslError(Code::kUnauthenticated,
                     "CRL signature does not verify against " + issuer.Subject());
  }
  return OkStatus();
}

Result<Crl> SignCrl(const CrlTemplate& tmpl, const Certificate& issuer,
                    const PrivateKey& issuer_key) {
  if (tmpl.next_update <= tmpl.this_update) {
    return Error(Code::kInvalidArgument, "CRL nextUpdate must be later than thisUpdate");
  }
  OsslPtr<X509_CRL> crl(X509_CRL_new());
  OsslPtr<ASN1_TIME> this_update(ASN1_TIME_set(nullptr, static_cast<time_t>(tmpl.this_update)));
  OsslPtr<ASN1_TIME> next_update(ASN1_TIME_set(nullptr, static_cast<time_t>(tmpl.next_update)));
  if (!crl || !this_update || !next_update ||
      X509_CRL_set_version(crl.get(), X509_CRL_VERSION_2) != 1 ||
      X509_CRL_set_issuer_name(crl.get(), X509_get_subject_name(issuer.native())) != 1 ||
      X509_CRL_set1_lastUpdate(crl.get(), this_update.get()) != 1 ||
      X509_CRL_set1_nextUpdate(crl.get(), next_update.get()) != 1) {
    return OsslError("building CRL");
  }
  for (const RevokedEntry& r : tmpl.revoked) {
    OsslPtr<X509_REVOKED> entry(X509_REVOKED_new());
    OsslPtr<BIGNUM> bn(BN_bin2bn(r.serial.data(), static_cast<int>(r.serial.size()), nullptr));
    OsslPtr<ASN1_INTEGER> serial(bn ? BN_to_ASN1_INTEGER(bn.get(), nullptr) : nullptr);
    OsslPtr<ASN1_TIME> when(ASN1_TIME_set(nullptr, static_cast<time_t>(r.revoked_at)));
    if (!entry || !serial || !when ||
        X509_REVOKED_set_serialNumber(entry.get(), serial.get()) != 1 ||
        X509_REVOKED_set_revocationDate(entry.get(), when.get()) != 1) {
      return OsslError("building CRL entry");
    }
    if (r.reason != RevocationReason::kUnspecified) {
      OsslPtr<ASN1_ENUMERATED> code(ASN1_ENUMERATED_new());
      if (!code || ASN1_ENUMERATED_set(code.get(), static_cast<long>(r.reason)) != 1 ||
          X509_REVOKED_add1_ext_i2d(entry.get(), NID_crl_reason, code.get(), 0, 0) != 1) {
        return OsslError("adding CRL reasonCode");
      }
    }
    if (X509_CRL_add0_revoked(crl.get(), entry.get()) != 1) {
      return OsslError("X509_CRL_add0_revoked");
    }
    entry.release();  // X509_CRL_add0_revoked took ownership.
  }
  X509_CRL_sort(crl.get());

  OsslPtr<ASN1_INTEGER> number(ASN1_INTEGER_new());
  if (!number || ASN1_INTEGER_set_uint64(number.get(), tmpl.crl_number) != 1 ||
      X509_CRL_add1_ext_i2d(crl.get(), NID_crl_number, number.get(), 0, 0) != 1) {
    return OsslError("adding cRLNumber");
  }
  const ASN1_OCTET_STRING* ski = X509_get0_subject_key_id(issuer.native());
  if (ski != nullptr) {
    OsslPtr<AUTHORITY_KEYID> aki(AUTHORITY_KEYID_new());
    if (!aki || (aki->keyid = ASN1_OCTET_STRING_dup(ski)) == nullptr ||
        X509_CRL_add1_ext_i2d(crl.get(), NID_authority_key_identifier, aki.get(), 0, 0) != 1) {
      return OsslError("adding authorityKeyIdentifier to CRL");
    }
  }
  if (X509_CRL_sign(crl.get(), issuer_key.native(), issuer_key.SigningDigest()) <= 0) {
    return OsslError("signing CRL");
  }
  return Crl(std::shared_ptr<X509_CRL>(crl.release(), X509_CRL_free));
}

}  // namespace hallmark
