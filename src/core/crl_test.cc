#include "core/crl.h"

#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/certificate.h"
#include "core/certificate_builder.h"
#include "core/encoding.h"
#include "core/key.h"
#include "core/ossl.h"
#include "testing/matchers.h"

namespace hallmark {
namespace {

using ::hallmark::testing::HasError;
using ::hallmark::testing::IsOk;
using ::testing::AllOf;
using ::testing::HasSubstr;

constexpr int64_t kNotBefore = 1704067200;   // 2024-01-01T00:00:00Z
constexpr int64_t kNotAfter = 1893456000;    // 2030-01-01T00:00:00Z
constexpr int64_t kThisUpdate = 1767225600;  // 2026-01-01T00:00:00Z
constexpr int64_t kNextUpdate = kThisUpdate + 7 * 86400;

struct Issued {
  PrivateKey key;
  Certificate cert;
};

// Issue signs `tmpl` and parses the result back from DER, as the CA does when it loads its
// certificate (certificate_test.cc covers certificates straight out of SignCertificate).
Result<Issued> Issue(const CertificateTemplate& tmpl, const Issued* parent,
                     KeyType type = KeyType::kP256) {
  auto key = PrivateKey::Generate(type);
  if (!key) {
    return key.error();
  }
  auto cert = SignCertificate(tmpl, key->Public(), parent != nullptr ? &parent->cert : nullptr,
                              parent != nullptr ? parent->key : *key);
  if (!cert) {
    return cert.error();
  }
  auto parsed = Certificate::FromDer(cert->ToDer());
  if (!parsed) {
    return parsed.error();
  }
  return Issued{std::move(*key), std::move(*parsed)};
}

Result<Issued> MakeCa(const std::string& cn, KeyType type = KeyType::kP256) {
  CertificateTemplate t;
  t.serial = {0x01};
  t.subject.organization = "Acme";
  t.subject.common_name = cn;
  t.not_before = kNotBefore;
  t.not_after = kNotAfter;
  t.is_ca = true;
  t.path_len = 0;
  t.key_usage = kKeyCertSign | kCrlSign;
  return Issue(t, nullptr, type);
}

Result<Issued> MakeLeaf(const Issued& ca, Bytes serial) {
  CertificateTemplate t;
  t.serial = std::move(serial);
  t.subject.common_name = "device-" + HexEncode(t.serial);
  t.not_before = kNotBefore;
  t.not_after = kNotAfter;
  t.key_usage = kDigitalSignature;
  return Issue(t, &ca);
}

CrlTemplate Template(std::vector<RevokedEntry> revoked = {}) {
  CrlTemplate t;
  t.this_update = kThisUpdate;
  t.next_update = kNextUpdate;
  t.crl_number = 42;
  t.revoked = std::move(revoked);
  return t;
}

class CrlTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(ca_, MakeCa("Acme Customer CA"));
    ASSERT_OK_AND_ASSIGN(compromised_, MakeLeaf(*ca_, {0x10, 0x01}));
    ASSERT_OK_AND_ASSIGN(good_, MakeLeaf(*ca_, {0x10, 0x02}));
    ASSERT_OK_AND_ASSIGN(retired_, MakeLeaf(*ca_, {0x10, 0x03}));
    ASSERT_OK_AND_ASSIGN(
        crl_, SignCrl(Template({
                          {{0x10, 0x01}, kThisUpdate - 3600, RevocationReason::kKeyCompromise},
                          {{0x10, 0x03}, kThisUpdate - 60, RevocationReason::kUnspecified},
                      }),
                      ca_->cert, ca_->key));
  }

  // Entry returns the CRL entry for `serial`, or nullptr.
  X509_REVOKED* Entry(const Certificate& cert) {
    X509_REVOKED* entry = nullptr;
    if (X509_CRL_get0_by_serial(crl_->native(), &entry, X509_get0_serialNumber(cert.native())) !=
        1) {
      return nullptr;
    }
    return entry;
  }

  std::optional<Issued> ca_;
  std::optional<Issued> compromised_;
  std::optional<Issued> good_;
  std::optional<Issued> retired_;
  std::optional<Crl> crl_;
};

TEST_F(CrlTest, ListsRevokedCertificates) {
  EXPECT_TRUE(crl_->IsRevoked(compromised_->cert));
  EXPECT_TRUE(crl_->IsRevoked(retired_->cert));
  EXPECT_EQ(crl_->RevokedCount(), 2u);
}

TEST_F(CrlTest, DoesNotListOtherCertificates) {
  EXPECT_FALSE(crl_->IsRevoked(good_->cert));
  EXPECT_FALSE(crl_->IsRevoked(ca_->cert));
}

TEST_F(CrlTest, SameSerialFromAnotherIssuerIsNotRevoked) {
  ASSERT_OK_AND_ASSIGN(Issued other_ca, MakeCa("Other Customer CA"));
  ASSERT_OK_AND_ASSIGN(Issued twin, MakeLeaf(other_ca, {0x10, 0x01}));
  ASSERT_EQ(twin.cert.SerialHex(), compromised_->cert.SerialHex());
  EXPECT_FALSE(crl_->IsRevoked(twin.cert));
}

TEST_F(CrlTest, EmptyCrlRevokesNothing) {
  ASSERT_OK_AND_ASSIGN(Crl empty, SignCrl(Template(), ca_->cert, ca_->key));
  EXPECT_EQ(empty.RevokedCount(), 0u);
  EXPECT_FALSE(empty.IsRevoked(compromised_->cert));
  EXPECT_THAT(empty.VerifySignature(ca_->cert), IsOk());
}

TEST_F(CrlTest, ReportsIssuerAndTimes) {
  EXPECT_EQ(crl_->Issuer(), ca_->cert.Subject());
  EXPECT_EQ(crl_->ThisUpdate(), kThisUpdate);
  EXPECT_EQ(crl_->NextUpdate(), kNextUpdate);
  EXPECT_EQ(X509_CRL_get_version(crl_->native()), X509_CRL_VERSION_2);
}

TEST_F(CrlTest, SignatureVerifiesAgainstIssuer) {
  EXPECT_THAT(crl_->VerifySignature(ca_->cert), IsOk());
}

TEST_F(CrlTest, SignatureDoesNotVerifyAgainstAnotherCa) {
  // Same name, different key: a CRL must not be accepted on the strength of a name.
  ASSERT_OK_AND_ASSIGN(Issued impostor, MakeCa("Acme Customer CA"));
  EXPECT_THAT(crl_->VerifySignature(impostor.cert),
              HasError(Code::kUnauthenticated,
                       AllOf(HasSubstr("does not verify against"), HasSubstr("Acme Customer CA"))));
  EXPECT_THAT(crl_->VerifySignature(good_->cert),
              HasError(Code::kUnauthenticated, HasSubstr("does not verify")));
}

TEST_F(CrlTest, RejectsTamperedCrl) {
  Bytes der = crl_->ToDer();
  der.back() ^= 0x01;  // inside the signature value
  ASSERT_OK_AND_ASSIGN(Crl tampered, Crl::FromDer(der));
  EXPECT_THAT(tampered.VerifySignature(ca_->cert),
              HasError(Code::kUnauthenticated, HasSubstr("does not verify")));
}

TEST_F(CrlTest, RejectsCrlWithAlteredEntry) {
  // Changing a listed serial (to un-revoke a device) breaks the signature.
  Bytes der = crl_->ToDer();
  const Bytes serial = {0x02, 0x02, 0x10, 0x01};
  auto it = std::search(der.begin(), der.end(), serial.begin(), serial.end());
  ASSERT_NE(it, der.end());
  *(it + 3) = 0x04;  // now revokes 0x1004 instead of 0x1001
  ASSERT_OK_AND_ASSIGN(Crl tampered, Crl::FromDer(der));
  EXPECT_FALSE(tampered.IsRevoked(compromised_->cert));
  EXPECT_THAT(tampered.VerifySignature(ca_->cert),
              HasError(Code::kUnauthenticated, HasSubstr("does not verify")));
}

TEST_F(CrlTest, PemAndDerRoundTrip) {
  ASSERT_OK_AND_ASSIGN(Crl from_pem, Crl::FromPem(crl_->ToPem()));
  ASSERT_OK_AND_ASSIGN(Crl from_der, Crl::FromDer(crl_->ToDer()));
  for (const Crl* c : {&from_pem, &from_der}) {
    EXPECT_EQ(c->ToDer(), crl_->ToDer());
    EXPECT_TRUE(c->IsRevoked(compromised_->cert));
    EXPECT_FALSE(c->IsRevoked(good_->cert));
    EXPECT_EQ(c->RevokedCount(), 2u);
    EXPECT_EQ(c->ThisUpdate(), kThisUpdate);
    EXPECT_EQ(c->NextUpdate(), kNextUpdate);
    EXPECT_THAT(c->VerifySignature(ca_->cert), IsOk());
  }
  EXPECT_THAT(crl_->ToPem(), HasSubstr("-----BEGIN X509 CRL-----"));
}

TEST_F(CrlTest, RejectsGarbage) {
  struct Case {
    std::string name;
    std::string pem;
  };
  std::string pem = crl_->ToPem();
  for (const Case& c : std::vector<Case>{{"empty", ""},
                                         {"text", "no CRL here"},
                                         {"truncated", pem.substr(0, pem.size() / 2)},
                                         {"certificate", ca_->cert.ToPem()}}) {
    SCOPED_TRACE(c.name);
    EXPECT_THAT(Crl::FromPem(c.pem), HasError(Code::kInvalidArgument, HasSubstr("not a PEM CRL")));
  }
  Bytes der = crl_->ToDer();
  Bytes truncated(der.begin(), der.end() - 1);
  for (const Bytes& bad : {Bytes{}, Bytes(50, 0x30), truncated, ca_->cert.ToDer()}) {
    EXPECT_THAT(Crl::FromDer(bad), HasError(Code::kInvalidArgument, HasSubstr("not a DER CRL")));
  }
}

// DISABLED: Crl::FromDer ignores bytes after the CRL, unlike Certificate::FromDer,
// Csr::FromDer and PublicKey::FromDer, which refuse trailing bytes. Enable once it checks that
// d2i_X509_CRL consumed the whole input.
TEST_F(CrlTest, RejectsDerWithTrailingBytes) {
  Bytes der = crl_->ToDer();
  der.push_back(0x00);
  EXPECT_THAT(Crl::FromDer(der), HasError(Code::kInvalidArgument, HasSubstr("trailing bytes")));
}

// DISABLED: Crl::Issuer prints the name with XN_FLAG_RFC2253, which escapes every non-ASCII
// byte ("O=M\C3\BCller GmbH"), while Certificate::Subject clears ASN1_STRFLGS_ESC_MSB and
// prints the UTF-8 bytes as they are ("O=M\xc3\xbcller GmbH" in C++ notation). So crl.Issuer() ==
// ca.Subject() holds for ASCII names only (CrlTest.ReportsIssuerAndTimes). Enable once both use the
// same flags.
TEST(CrlIssuerTest, IssuerMatchesCaSubjectForUtf8Names) {
  CertificateTemplate t;
  t.serial = {0x01};
  t.subject.organization = "M\xc3\xbcller GmbH";
  t.subject.common_name = "Customer CA";
  t.not_before = kNotBefore;
  t.not_after = kNotAfter;
  t.is_ca = true;
  t.key_usage = kKeyCertSign | kCrlSign;
  ASSERT_OK_AND_ASSIGN(Issued ca, Issue(t, nullptr));
  ASSERT_OK_AND_ASSIGN(Crl crl, SignCrl(Template(), ca.cert, ca.key));
  EXPECT_EQ(crl.Issuer(), ca.cert.Subject());
}

TEST_F(CrlTest, EntriesCarryReasonCodeUnlessUnspecified) {
  X509_REVOKED* compromised = Entry(compromised_->cert);
  ASSERT_NE(compromised, nullptr);
  int crit = -1;
  OsslPtr<ASN1_STRING> reason(static_cast<ASN1_STRING*>(
      X509_REVOKED_get_ext_d2i(compromised, NID_crl_reason, &crit, nullptr)));
  ASSERT_NE(reason, nullptr);
  EXPECT_EQ(crit, 0);
  EXPECT_EQ(ASN1_ENUMERATED_get(reason.get()), static_cast<long>(RevocationReason::kKeyCompromise));
  OsslPtr<ASN1_STRING> when(ASN1_TIME_new());
  ASSERT_NE(ASN1_TIME_set(when.get(), static_cast<time_t>(kThisUpdate - 3600)), nullptr);
  EXPECT_EQ(ASN1_TIME_compare(X509_REVOKED_get0_revocationDate(compromised), when.get()), 0);

  X509_REVOKED* retired = Entry(retired_->cert);
  ASSERT_NE(retired, nullptr);
  EXPECT_LT(X509_REVOKED_get_ext_by_NID(retired, NID_crl_reason, -1), 0);
}

TEST_F(CrlTest, CarriesCrlNumberAndAuthorityKeyIdentifier) {
  int crit = -1;
  OsslPtr<ASN1_STRING> number(static_cast<ASN1_STRING*>(
      X509_CRL_get_ext_d2i(crl_->native(), NID_crl_number, &crit, nullptr)));
  ASSERT_NE(number, nullptr);
  EXPECT_EQ(crit, 0);
  EXPECT_EQ(ASN1_INTEGER_get(number.get()), 42);

  OsslPtr<AUTHORITY_KEYID> aki(static_cast<AUTHORITY_KEYID*>(
      X509_CRL_get_ext_d2i(crl_->native(), NID_authority_key_identifier, &crit, nullptr)));
  ASSERT_NE(aki, nullptr);
  ASSERT_NE(aki->keyid, nullptr);
  EXPECT_EQ(ASN1_OCTET_STRING_cmp(aki->keyid, X509_get0_subject_key_id(ca_->cert.native())), 0);
}

TEST_F(CrlTest, LargeCrlNumberSurvives) {
  CrlTemplate t = Template();
  t.crl_number = UINT64_MAX;
  ASSERT_OK_AND_ASSIGN(Crl crl, SignCrl(t, ca_->cert, ca_->key));
  int crit = -1;
  OsslPtr<ASN1_STRING> number(static_cast<ASN1_STRING*>(
      X509_CRL_get_ext_d2i(crl.native(), NID_crl_number, &crit, nullptr)));
  ASSERT_NE(number, nullptr);
  uint64_t got = 0;
  ASSERT_EQ(ASN1_INTEGER_get_uint64(&got, number.get()), 1);
  EXPECT_EQ(got, UINT64_MAX);
}

TEST_F(CrlTest, RefusesNextUpdateNotAfterThisUpdate) {
  struct Case {
    std::string name;
    int64_t next_update;
  };
  for (const Case& c : std::vector<Case>{{"equal", kThisUpdate}, {"earlier", kThisUpdate - 1}}) {
    SCOPED_TRACE(c.name);
    CrlTemplate t = Template();
    t.next_update = c.next_update;
    EXPECT_THAT(SignCrl(t, ca_->cert, ca_->key),
                HasError(Code::kInvalidArgument, HasSubstr("nextUpdate must be later")));
  }
  CrlTemplate one_second = Template();
  one_second.next_update = kThisUpdate + 1;
  EXPECT_THAT(SignCrl(one_second, ca_->cert, ca_->key), IsOk());
}

TEST(CrlSignerTest, SignsWithDigestMatchingIssuerKey) {
  struct Case {
    std::string name;
    KeyType type;
    int signature_nid;
  };
  for (const Case& c : std::vector<Case>{{"P-256", KeyType::kP256, NID_ecdsa_with_SHA256},
                                         {"P-384", KeyType::kP384, NID_ecdsa_with_SHA384},
                                         {"Ed25519", KeyType::kEd25519, NID_ED25519}}) {
    SCOPED_TRACE(c.name);
    ASSERT_OK_AND_ASSIGN(Issued ca, MakeCa("Acme CA", c.type));
    ASSERT_OK_AND_ASSIGN(Crl crl, SignCrl(Template(), ca.cert, ca.key));
    EXPECT_EQ(X509_CRL_get_signature_nid(crl.native()), c.signature_nid);
    EXPECT_THAT(crl.VerifySignature(ca.cert), IsOk());
  }
}

// A CA certificate straight out of SignCertificate (no round trip through DER) must work as the
// issuer of a CRL and to check one; see FreshlySignedCertificateTest in certificate_test.cc.
TEST(CrlFreshIssuerTest, VerifiesAgainstFreshlySignedIssuer) {
  ASSERT_OK_AND_ASSIGN(PrivateKey key, PrivateKey::Generate(KeyType::kP256));
  CertificateTemplate t;
  t.serial = {0x01};
  t.subject.common_name = "Fresh CA";
  t.not_before = kNotBefore;
  t.not_after = kNotAfter;
  t.is_ca = true;
  t.key_usage = kKeyCertSign | kCrlSign;
  ASSERT_OK_AND_ASSIGN(Certificate fresh, SignCertificate(t, key.Public(), nullptr, key));
  ASSERT_OK_AND_ASSIGN(Crl crl, SignCrl(Template(), fresh, key));
  EXPECT_THAT(crl.VerifySignature(fresh), IsOk());
}

// --- Reasons ---

TEST(RevocationReasonTest, ParsesRfc5280NamesAndAliases) {
  struct Case {
    std::string text;
    RevocationReason want;
  };
  for (const Case& c :
       std::vector<Case>{{"unspecified", RevocationReason::kUnspecified},
                         {"keyCompromise", RevocationReason::kKeyCompromise},
                         {"key-compromise", RevocationReason::kKeyCompromise},
                         {"cACompromise", RevocationReason::kCaCompromise},
                         {"ca-compromise", RevocationReason::kCaCompromise},
                         {"affiliationChanged", RevocationReason::kAffiliationChanged},
                         {"affiliation-changed", RevocationReason::kAffiliationChanged},
                         {"superseded", RevocationReason::kSuperseded},
                         {"cessationOfOperation", RevocationReason::kCessationOfOperation},
                         {"cessation-of-operation", RevocationReason::kCessationOfOperation},
                         {"certificateHold", RevocationReason::kCertificateHold},
                         {"certificate-hold", RevocationReason::kCertificateHold},
                         {"privilegeWithdrawn", RevocationReason::kPrivilegeWithdrawn},
                         {"privilege-withdrawn", RevocationReason::kPrivilegeWithdrawn}}) {
    SCOPED_TRACE(c.text);
    ASSERT_OK_AND_ASSIGN(RevocationReason got, ParseRevocationReason(c.text));
    EXPECT_EQ(got, c.want);
  }
}

TEST(RevocationReasonTest, RefusesUnknownReasons) {
  for (const char* text : {"", "compromised", "KeyCompromise", "key_compromise", "removeFromCRL",
                           "aACompromise", "7", " superseded"}) {
    SCOPED_TRACE(text);
    EXPECT_THAT(ParseRevocationReason(text),
                HasError(Code::kInvalidArgument,
                         AllOf(HasSubstr("unknown revocation reason '" + std::string(text) + "'"),
                               HasSubstr("keyCompromise"), HasSubstr("privilegeWithdrawn"))));
  }
}

TEST(RevocationReasonTest, NamesRoundTrip) {
  for (RevocationReason r :
       {RevocationReason::kUnspecified, RevocationReason::kKeyCompromise,
        RevocationReason::kCaCompromise, RevocationReason::kAffiliationChanged,
        RevocationReason::kSuperseded, RevocationReason::kCessationOfOperation,
        RevocationReason::kCertificateHold, RevocationReason::kPrivilegeWithdrawn}) {
    std::string name(RevocationReasonName(r));
    SCOPED_TRACE(name);
    ASSERT_OK_AND_ASSIGN(RevocationReason parsed, ParseRevocationReason(name));
    EXPECT_EQ(parsed, r);
  }
  EXPECT_EQ(RevocationReasonName(RevocationReason::kCaCompromise), "cACompromise");
}

}  // namespace
}  // namespace hallmark
