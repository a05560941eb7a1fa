#include "core/certificate_builder.h"

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "core/internal/asn1_types.h"
#include "core/ossl.h"

namespace hallmark {
namespace {

// AddExtension encodes `value` as extension `nid` and adds it to `cert`.
Status AddExtension(X509* cert, int nid, bool critical, void* value, const char* what) {
  if (X509_add1_ext_i2d(cert, nid, value, critical ? 1 : 0, X509V3_ADD_REPLACE) != 1) {
    return OsslError(std::string("adding ") + what);
  }
  return OkStatus();
}

Status SetTime(ASN1_TIME* field, int64_t t, const char* what) {
  // ASN1_TIME_set chooses UTCTime through 2049 and GeneralizedTime from 2050, as RFC 5280
  // section 4.1.2.5 requires.
  if (ASN1_TIME_set(field, static_cast<time_t>(t)) == nullptr) {
    return OsslError(std::string("setting ") + what);
  }
  return OkStatus();
}

Result<OsslPtr<ASN1_OCTET_STRING>> KeyIdentifier(X509* cert) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (X509_pubkey_digest(cert, EVP_sha1(), md, &len) != 1) {
    return OsslError("computing subjectKeyIdentifier");
  }
  OsslPtr<ASN1_OCTET_STRING> id(ASN1_OCTET_STRING_new());
  if (!id || ASN1_OCTET_STRING_set(id.get(), md, static_cast<int>(len)) != 1) {
    return OsslError("ASN1_OCTET_STRING_set");
  }
  return id;
}

Status AddKeyUsage(X509* cert, uint32_t bits) {
  OsslPtr<ASN1_BIT_STRING> ku(ASN1_BIT_STRING_new());
  if (!ku) {
    return OsslError("ASN1_BIT_STRING_new");
  }
  for (int bit = 0; bit < 9; ++bit) {
    if ((bits & (1u << bit)) != 0 && ASN1_BIT_STRING_set_bit(ku.get(), bit, 1) != 1) {
      return OsslError("ASN1_BIT_STRING_set_bit");
    }
  }
  return AddExtension(cert, NID_key_usage, true, ku.get(), "keyUsage");
}

Status AddExtendedKeyUsage(X509* cert, const std::vector<ExtendedKeyUsage>& ekus) {
  OsslPtr<EXTENDED_KEY_USAGE> eku(sk_ASN1_OBJECT_new_null());
  if (!eku) {
    return OsslError("sk_ASN1_OBJECT_new_null");
  }
  for (ExtendedKeyUsage u : ekus) {
    int nid = u == ExtendedKeyUsage::kServerAuth ? NID_server_auth : NID_client_auth;
    // OBJ_nid2obj returns a static object; the stack's free function leaves those alone.
    if (sk_ASN1_OBJECT_push(eku.get(), OBJ_nid2obj(nid)) <= 0) {
      return OsslError("sk_ASN1_OBJECT_push");
    }
  }
  return AddExtension(cert, NID_ext_key_usage, false, eku.get(), "extendedKeyUsage");
}

Status AddSubjectAltNames(X509* cert, const std::vector<SubjectAltName>& sans) {
  OsslPtr<GENERAL_NAMES> names(GENERAL_NAMES_new());
  if (!names) {
    return OsslError("GENERAL_NAMES_new");
  }
  for (const SubjectAltName& san : sans) {
    int type = san.type == SubjectAltName::Type::kDns  ? GEN_DNS
               : san.type == SubjectAltName::Type::kIp ? GEN_IPADD
                                                       : GEN_URI;
    OsslPtr<GENERAL_NAME> gn(
        a2i_GENERAL_NAME(nullptr, nullptr, nullptr, type, san.value.c_str(), 0));
    if (!gn) {
      return OsslError(Code::kInvalidArgument, "cannot encode " + FormatSubjectAltName(san));
    }
    if (sk_GENERAL_NAME_push(names.get(), gn.get()) <= 0) {
      return OsslError("sk_GENERAL_NAME_push");
    }
    gn.release();  // sk_GENERAL_NAME_push took ownership.
  }
  // RFC 5280 section 4.2.1.6: critical if the subject field is empty.
  bool critical = X509_NAME_entry_count(X509_get_subject_name(cert)) == 0;
  return AddExtension(cert, NID_subject_alt_name, critical, names.get(), "subjectAltName");
}

// CopySpki sets `dst` to `key`'s algorithm and key bits as they are, without OpenSSL's encoders
// (X509_set_pubkey re-encodes the key through a provider, which costs more than the signature).
bool CopySpki(const PublicKey& key, X509_PUBKEY* dst) {
  const unsigned char* bits = nullptr;
  int bits_len = 0;
  X509_ALGOR* alg = nullptr;
  if (dst == nullptr ||
      X509_PUBKEY_get0_param(nullptr, &bits, &bits_len, &alg, key.native_spki()) != 1) {
    return false;
  }
  return internal::SetSpkiParams(dst, alg, bits, bits_len).has_value();
}

}  // namespace

Result<Certificate> SignCertificate(const CertificateTemplate& tmpl, const PublicKey& subject_key,
                                    const Certificate* issuer, const PrivateKey& issuer_key) {
  if (tmpl.serial.empty() || tmpl.serial.size() > 20 || (tmpl.serial[0] & 0x80) != 0) {
    return Error(Code::kInvalidArgument, "serial number must be 1 to 20 octets and positive");
  }
  if (tmpl.not_after <= tmpl.not_before) {
    return Error(Code::kInvalidArgument, "notAfter must be later than notBefore");
  }
  if (tmpl.key_usage == 0) {
    // RFC 5280 section 4.2.1.3: a keyUsage extension must have at least one bit set.
    return Error(Code::kInvalidArgument, "keyUsage must have at least one bit set");
  }
  if (!tmpl.is_ca && tmpl.path_len.has_value()) {
    return Error(Code::kInvalidArgument, "pathLenConstraint is only allowed on a CA");
  }
  if (issuer == nullptr && !(issuer_key.Public() == subject_key)) {
    return Error(Code::kInvalidArgument, "a self-signed certificate must be signed by its own key");
  }
  OsslPtr<X509> cert(X509_new());
  if (!cert) {
    return OsslError("X509_new");
  }
  OsslPtr<BIGNUM> bn(BN_bin2bn(tmpl.serial.data(), static_cast<int>(tmpl.serial.size()), nullptr));
  OsslPtr<ASN1_INTEGER> serial(bn ? BN_to_ASN1_INTEGER(bn.get(), nullptr) : nullptr);
  auto subject = BuildName(tmpl.subject);
  if (!subject) {
    return subject.error();
  }
  if (!serial || X509_set_version(cert.get(), X509_VERSION_3) != 1 ||
      X509_set_serialNumber(cert.get(), serial.get()) != 1 ||
      X509_set_subject_name(cert.get(), subject->get()) != 1 ||
      X509_set_issuer_name(cert.get(), issuer != nullptr ? X509_get_subject_name(issuer->native())
                                                         : subject->get()) != 1 ||
      !CopySpki(subject_key, X509_get_X509_PUBKEY(cert.get()))) {
    return OsslError("building certificate");
  }
  if (auto s = SetTime(X509_getm_notBefore(cert.get()), tmpl.not_before, "notBefore"); !s) {
    return s.error();
  }
  if (auto s = SetTime(X509_getm_notAfter(cert.get()), tmpl.not_after, "notAfter"); !s) {
    return s.error();
  }

  OsslPtr<BASIC_CONSTRAINTS> bc(BASIC_CONSTRAINTS_new());
  if (!bc) {
    return OsslError("BASIC_CONSTRAINTS_new");
  }
  bc->ca = tmpl.is_ca ? 0xff : 0;
  if (tmpl.path_len.has_value()) {
    bc->pathlen = ASN1_INTEGER_new();
    if (bc->pathlen == nullptr || ASN1_INTEGER_set(bc->pathlen, *tmpl.path_len) != 1) {
      return OsslError("setting pathLenConstraint");
    }
  }
  if (auto s = AddExtension(cert.get(), NID_basic_constraints, true, bc.get(), "basicConstraints");
      !s) {
    return s.error();
  }
  if (auto s = AddKeyUsage(cert.get(), tmpl.key_usage); !s) {
    return s.error();
  }
  if (!tmpl.extended_key_usage.empty()) {
    if (auto s = AddExtendedKeyUsage(cert.get(), tmpl.extended_key_usage); !s) {
      return s.error();
    }
  }
  if (!tmpl.subject_alt_names.empty()) {
    if (auto s = AddSubjectAltNames(cert.get(), tmpl.subject_alt_names); !s) {
      return s.error();
    }
  }
  auto ski = KeyIdentifier(cert.get());
  if (!ski) {
    return ski.error();
  }
  if (auto s = AddExtension(cert.get(), NID_subject_key_identifier, false, ski->get(),
                            "subjectKeyIdentifier");
      !s) {
    return s.error();
  }
  OsslPtr<AUTHORITY_KEYID> aki(AUTHORITY_KEYID_new());
  if (!aki) {
    return OsslError("AUTHORITY_KEYID_new");
  }
  const ASN1_OCTET_STRING* issuer_ski =
      issuer != nullptr ? X509_get0_subject_key_id(issuer->native()) : ski->get();
  if (issuer_ski == nullptr) {
    ERR_clear_error();
    return Error(Code::kInvalidArgument, "issuing CA certificate has no subjectKeyIdentifier");
  }
  aki->keyid = ASN1_OCTET_STRING_dup(issuer_ski);
  if (aki->keyid == nullptr) {
    return OsslError("ASN1_OCTET_STRING_dup");
  }
  if (auto s = AddExtension(cert.get(), NID_authority_key_identifier, false, aki.get(),
                            "authorityKeyIdentifier");
      !s) {
    return s.error();
  }
  auto ctx = issuer_key.NewSigningContext();
  if (!ctx) {
    return ctx.error();
  }
  if (X509_sign_ctx(cert.get(), ctx->get()) <= 0) {
    return OsslError("signing certificate");
  }
  return Certificate::FromSigned(std::move(cert), subject_key);
}

}  // namespace hallmark
