#include "core/certificate.h"

#include <openssl/asn1.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/certificate_builder.h"
#include "core/encoding.h"
#include "core/key.h"
#include "core/ossl.h"
#include "testing/matchers.h"

namespace hallmark {
namespace {

using ::hallmark::testing::HasError;
using ::hallmark::testing::IsOk;
using ::testing::HasSubstr;
using ::testing::MatchesRegex;
using ::testing::SizeIs;

constexpr int64_t kNotBefore = 1704067200;  // 2024-01-01T00:00:00Z
constexpr int64_t kNotAfter = 1893456000;   // 2030-01-01T00:00:00Z
constexpr int64_t kCheckTime = 1767225600;  // 2026-01-01T00:00:00Z
constexpr int64_t kYear2100 = 4102444800;   // 2100-01-01T00:00:00Z

// Issued is a certificate with its private key.
struct Issued {
  PrivateKey key;
  Certificate cert;
};

Bytes NextSerial() {
  static uint8_t next = 1;
  return Bytes{0x01, next++};
}

CertificateTemplate CaTemplate(const std::string& cn, std::optional<int> path_len) {
  CertificateTemplate t;
  t.serial = NextSerial();
  t.subject.organization = "Acme";
  t.subject.common_name = cn;
  t.not_before = kNotBefore;
  t.not_after = kNotAfter;
  t.is_ca = true;
  t.path_len = path_len;
  t.key_usage = kKeyCertSign | kCrlSign;
  return t;
}

CertificateTemplate LeafTemplate(const std::string& cn) {
  CertificateTemplate t;
  t.serial = NextSerial();
  t.subject.common_name = cn;
  t.not_before = kNotBefore;
  t.not_after = kNotAfter;
  t.key_usage = kDigitalSignature;
  t.extended_key_usage = {ExtendedKeyUsage::kClientAuth};
  return t;
}

Result<Issued> IssueWith(const CertificateTemplate& tmpl, const Issued* parent) {
  auto key = PrivateKey::Generate(KeyType::kP256);
  if (!key) {
    return key.error();
  }
  auto cert = SignCertificate(tmpl, key->Public(), parent != nullptr ? &parent->cert : nullptr,
                              parent != nullptr ? parent->key : *key);
  if (!cert) {
    return cert.error();
  }
  // Parse the DER again, as the CA does when it loads its certificate from disk. Certificates
  // straight out of SignCertificate are covered by FreshlySignedCertificateTest.
  auto parsed = Certificate::FromDer(cert->ToDer());
  if (!parsed) {
    return parsed.error();
  }
  return Issued{std::move(*key), std::move(*parsed)};
}

// IssueFresh is IssueWith without the round trip through DER.
Result<Issued> IssueFresh(const CertificateTemplate& tmpl, const Issued* parent) {
  auto key = PrivateKey::Generate(KeyType::kP256);
  if (!key) {
    return key.error();
  }
  auto cert = SignCertificate(tmpl, key->Public(), parent != nullptr ? &parent->cert : nullptr,
                              parent != nullptr ? parent->key : *key);
  if (!cert) {
    return cert.error();
  }
  return Issued{std::move(*key), std::move(*cert)};
}

Result<Issued> MakeRoot(const std::string& cn, std::optional<int> path_len = 1) {
  return IssueWith(CaTemplate(cn, path_len), nullptr);
}

Result<Issued> MakeIntermediate(const Issued& parent, const std::string& cn) {
  return IssueWith(CaTemplate(cn, 0), &parent);
}

Result<Issued> MakeLeaf(const Issued& parent, const std::string& cn) {
  return IssueWith(LeafTemplate(cn), &parent);
}

VerifyOptions At(int64_t t) {
  VerifyOptions o;
  o.at_time = t;
  return o;
}

// --- Accessors ---

TEST(CertificateTest, SelfSignedRootIsCaWithItsName) {
  ASSERT_OK_AND_ASSIGN(Issued root, MakeRoot("Acme Root CA"));
  EXPECT_TRUE(root.cert.IsCa());
  EXPECT_EQ(root.cert.Subject(), "CN=Acme Root CA,O=Acme");
  EXPECT_THAT(root.cert.Subject(), HasSubstr("CN=Acme Root CA"));
  EXPECT_EQ(root.cert.Issuer(), root.cert.Subject());
  EXPECT_EQ(root.cert.SubjectAttribute("CN"), "Acme Root CA");
  EXPECT_EQ(root.cert.SubjectAttribute("O"), "Acme");
  EXPECT_EQ(root.cert.SubjectAttribute("serialNumber"), std::nullopt);
  EXPECT_EQ(root.cert.SubjectAttribute("noSuchAttribute"), std::nullopt);
}

TEST(CertificateTest, LeafIsNotCaAndNamesItsIssuer) {
  ASSERT_OK_AND_ASSIGN(Issued root, MakeRoot("Acme Root CA"));
  ASSERT_OK_AND_ASSIGN(Issued leaf, MakeLeaf(root, "device-1"));
  EXPECT_FALSE(leaf.cert.IsCa());
  EXPECT_EQ(leaf.cert.Subject(), "CN=device-1");
  EXPECT_EQ(leaf.cert.Issuer(), root.cert.Subject());
}

TEST(CertificateTest, SubjectKeepsUtf8Unescaped) {
  CertificateTemplate t = LeafTemplate("Ger\xc3\xa4t 1");
  t.subject.serial_number = "SN-42";
  ASSERT_OK_AND_ASSIGN(Issued root, MakeRoot("Acme Root CA"));
  ASSERT_OK_AND_ASSIGN(Issued leaf, IssueWith(t, &root));
  EXPECT_EQ(leaf.cert.Subject(), "serialNumber=SN-42,CN=Ger\xc3\xa4t 1");
  EXPECT_EQ(leaf.cert.SubjectAttribute("serialNumber"), "SN-42");
}

TEST(CertificateTest, SerialHexDropsLeadingZeroBytes) {
  struct Case {
    Bytes serial;
    std::string want;
  };
  ASSERT_OK_AND_ASSIGN(Issued root, MakeRoot("Acme Root CA"));
  for (const Case& c : std::vector<Case>{{{0x01}, "01"},
                                         {{0x00, 0x00, 0xab}, "ab"},
                                         {{0x7f, 0x00, 0x01}, "7f0001"},
                                         {{0x00, 0x80}, "80"}}) {
    SCOPED_TRACE(c.want);
    CertificateTemplate t = LeafTemplate("device");
    t.serial = c.serial;
    ASSERT_OK_AND_ASSIGN(Issued leaf, IssueWith(t, &root));
    EXPECT_EQ(leaf.cert.SerialHex(), c.want);
  }
}

TEST(CertificateTest, ReportsValidityPeriod) {
  ASSERT_OK_AND_ASSIGN(Issued root, MakeRoot("Acme Root CA"));
  EXPECT_EQ(root.cert.NotBefore(), kNotBefore);
  EXPECT_EQ(root.cert.NotAfter(), kNotAfter);
}

TEST(CertificateTest, KeyIsSubjectKeyAndSurvivesReparsing) {
  ASSERT_OK_AND_ASSIGN(Issued root, MakeRoot("Acme Root CA"));
  ASSERT_OK_AND_ASSIGN(Issued leaf, MakeLeaf(root, "device-1"));
  EXPECT_EQ(leaf.cert.Key(), leaf.key.Public());
  ASSERT_OK_AND_ASSIGN(Certificate parsed, Certificate::FromDer(leaf.cert.ToDer()));
  EXPECT_EQ(parsed.Key(), leaf.key.Public());
  EXPECT_EQ(parsed.Key().DeviceId(), leaf.key.Public().DeviceId());
}

TEST(CertificateTest, FingerprintIsSha256OfDer) {
  ASSERT_OK_AND_ASSIGN(Issued root, MakeRoot("Acme Root CA"));
  EXPECT_EQ(root.cert.Sha256Fingerprint(), HexEncode(Sha256(root.cert.ToDer())));
  EXPECT_THAT(root.cert.Sha256Fingerprint(), MatchesRegex("[0-9a-f]{64}"));
}

TEST(CertificateTest, FromNativeSharesTheCertificate) {
  ASSERT_OK_AND_ASSIGN(Issued root, MakeRoot("Acme Root CA"));
  Certificate copy = *Certificate::FromNative(root.cert.native());
  EXPECT_EQ(copy, root.cert);
  EXPECT_EQ(copy.Key(), root.key.Public());
}

// --- Encodings ---

TEST(CertificateEncodingTest, PemAndDerRoundTrip) {
  ASSERT_OK_AND_ASSIGN(Issued root, MakeRoot("Acme Root CA"));
  ASSERT_OK_AND_ASSIGN(Certificate from_pem, Certificate::FromPem(root.cert.ToPem()));
  ASSERT_OK_AND_ASSIGN(Certificate from_der, Certificate::FromDer(root.cert.ToDer()));
  EXPECT_EQ(from_pem, root.cert);
  EXPECT_EQ(from_der, root.cert);
  EXPECT_EQ(from_pem.Subject(), root.cert.Subject());
  EXPECT_TRUE(from_der.IsCa());
}

TEST(CertificateEncodingTest, ChainRoundTripsInOrder) {
  ASSERT_OK_AND_ASSIGN(Issued root, MakeRoot("Acme Root CA"));
  ASSERT_OK_AND_ASSIGN(Issued inter, MakeIntermediate(root, "Acme Customer CA"));
  ASSERT_OK_AND_ASSIGN(Issued leaf, MakeLeaf(inter, "device-1"));
  std::vector<Certificate> chain = {leaf.cert, inter.cert, root.cert};
  std::string pem = ChainToPem(chain);
  ASSERT_OK_AND_ASSIGN(std::vector<Certificate> parsed, Certificate::ChainFromPem(pem));
  EXPECT_EQ(parsed, chain);
  // FromPem takes the first certificate.
  ASSERT_OK_AND_ASSIGN(Certificate first, Certificate::FromPem(pem));
  EXPECT_EQ(first, leaf.cert);
}

TEST(CertificateEncodingTest, ChainFromPemToleratesTextAroundBlocks) {
  ASSERT_OK_AND_ASSIGN(Issued root, MakeRoot("Acme Root CA"));
  std::string pem = "subject=CN=Acme Root CA\n" + root.cert.ToPem() + "\n";
  ASSERT_OK_AND_ASSIGN(std::vector<Certificate> parsed, Certificate::ChainFromPem(pem));
  EXPECT_THAT(parsed, SizeIs(1));
}

TEST(CertificateEncodingTest, RejectsGarbage) {
  ASSERT_OK_AND_ASSIGN(Issued root, MakeRoot("Acme Root CA"));
  std::string pem = root.cert.ToPem();
  Bytes der = root.cert.ToDer();
  struct PemCase {
    std::string name;
    std::string text;
  };
  for (const PemCase& c : std::vector<PemCase>{{"empty", ""},
                                               {"text", "certainly not a certificate"},
                                               {"truncated", pem.substr(0, pem.size() / 2)},
                                               {"public key", root.key.Public().ToPem()}}) {
    SCOPED_TRACE(c.name);
    EXPECT_THAT(Certificate::FromPem(c.text),
                HasError(Code::kInvalidArgument, HasSubstr("not a PEM certificate")));
    EXPECT_THAT(Certificate::ChainFromPem(c.text),
                HasError(Code::kInvalidArgument, HasSubstr("certificate 1 of the PEM text")));
  }
  Bytes truncated(der.begin(), der.end() - 1);
  for (const Bytes& bad : {Bytes{}, Bytes{0x30, 0x00}, truncated, Bytes(100, 0x41)}) {
    EXPECT_THAT(Certificate::FromDer(bad),
                HasError(Code::kInvalidArgument, HasSubstr("not a DER certificate")));
  }
}

TEST(CertificateEncodingTest, RejectsDerWithTrailingBytes) {
  ASSERT_OK_AND_ASSIGN(Issued root, MakeRoot("Acme Root CA"));
  Bytes der = root.cert.ToDer();
  ASSERT_THAT(Certificate::FromDer(der), IsOk());
  der.push_back(0x00);
  EXPECT_THAT(Certificate::FromDer(der),
              HasError(Code::kInvalidArgument, HasSubstr("trailing bytes")));
}

TEST(CertificateEncodingTest, ChainFromPemNamesTheBrokenCertificate) {
  ASSERT_OK_AND_ASSIGN(Issued root, MakeRoot("Acme Root CA"));
  std::string good = root.cert.ToPem();
  std::string broken = good.substr(0, good.size() - 40);
  EXPECT_THAT(Certificate::ChainFromPem(good + broken),
              HasError(Code::kInvalidArgument, HasSubstr("certificate 2 of the PEM text")));
}

// --- Validity encodings ---

struct TimeCase {
  std::string name;
  int64_t not_after;
  int asn1_type;
  std::string text;
};

class NotAfterEncodingTest : public ::testing::TestWithParam<TimeCase> {};

TEST_P(NotAfterEncodingTest, UsesRfc5280TimeType) {
  CertificateTemplate t = CaTemplate("Acme IDevID Root", 1);
  t.not_after = GetParam().not_after;
  ASSERT_OK_AND_ASSIGN(Issued root, IssueWith(t, nullptr));
  const ASN1_TIME* not_after = X509_get0_notAfter(root.cert.native());
  EXPECT_EQ(ASN1_STRING_type(not_after), GetParam().asn1_type);
  std::string text(reinterpret_cast<const char*>(ASN1_STRING_get0_data(not_after)),
                   static_cast<size_t>(ASN1_STRING_length(not_after)));
  EXPECT_EQ(text, GetParam().text);
  EXPECT_EQ(root.cert.NotAfter(), GetParam().not_after);
  // The encoding survives a round trip through DER.
  ASSERT_OK_AND_ASSIGN(Certificate parsed, Certificate::FromDer(root.cert.ToDer()));
  EXPECT_EQ(parsed.NotAfter(), GetParam().not_after);
}

INSTANTIATE_TEST_SUITE_P(
    Times, NotAfterEncodingTest,
    ::testing::Values(TimeCase{"NoWellDefinedExpiration", kNoWellDefinedExpiration,
                               V_ASN1_GENERALIZEDTIME, "99991231235959Z"},
                      TimeCase{"Year2030", kNotAfter, V_ASN1_UTCTIME, "300101000000Z"},
                      TimeCase{"LastUtcTimeSecond", 2524607999, V_ASN1_UTCTIME, "491231235959Z"},
                      TimeCase{"FirstGeneralizedTimeSecond", 2524608000, V_ASN1_GENERALIZEDTIME,
                               "20500101000000Z"}),
    [](const ::testing::TestParamInfo<TimeCase>& p) { return p.param.name; });

TEST(FormatTimeTest, FormatsIso8601AndNever) {
  EXPECT_EQ(FormatTime(kNotAfter), "2030-01-01T00:00:00Z");
  EXPECT_EQ(FormatTime(0), "1970-01-01T00:00:00Z");
  EXPECT_EQ(FormatTime(kNoWellDefinedExpiration), "never (99991231235959Z)");
  EXPECT_EQ(FormatTime(kNoWellDefinedExpiration - 1), "9999-12-31T23:59:58Z");
}

// --- VerifyCertificate ---

// Pki is a root, two customer intermediates under it, and a leaf under customer A.
class VerifyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(root_, MakeRoot("Acme Root CA"));
    ASSERT_OK_AND_ASSIGN(customer_a_, MakeIntermediate(*root_, "Customer A CA"));
    ASSERT_OK_AND_ASSIGN(customer_b_, MakeIntermediate(*root_, "Customer B CA"));
    ASSERT_OK_AND_ASSIGN(leaf_, MakeLeaf(*customer_a_, "device-1"));
  }

  std::optional<Issued> root_;
  std::optional<Issued> customer_a_;
  std::optional<Issued> customer_b_;
  std::optional<Issued> leaf_;
};

TEST_F(VerifyTest, ChainVerifiesToRoot) {
  std::vector<Certificate> intermediates = {customer_a_->cert};
  std::vector<Certificate> anchors = {root_->cert};
  EXPECT_THAT(VerifyCertificate(leaf_->cert, intermediates, anchors, At(kCheckTime)), IsOk());
}

TEST_F(VerifyTest, ChainOfReparsedCertificatesVerifies) {
  ASSERT_OK_AND_ASSIGN(Certificate leaf, Certificate::FromDer(leaf_->cert.ToDer()));
  ASSERT_OK_AND_ASSIGN(Certificate inter, Certificate::FromPem(customer_a_->cert.ToPem()));
  ASSERT_OK_AND_ASSIGN(Certificate root, Certificate::FromPem(root_->cert.ToPem()));
  std::vector<Certificate> intermediates = {inter};
  std::vector<Certificate> anchors = {root};
  EXPECT_THAT(VerifyCertificate(leaf, intermediates, anchors, At(kCheckTime)), IsOk());
}

TEST_F(VerifyTest, RejectsLeafWithoutItsIntermediate) {
  std::vector<Certificate> anchors = {root_->cert};
  EXPECT_THAT(VerifyCertificate(leaf_->cert, {}, anchors, At(kCheckTime)),
              HasError(Code::kUnauthenticated, HasSubstr("unable to get local issuer")));
}

TEST_F(VerifyTest, RejectsChainFromUnrelatedRoot) {
  ASSERT_OK_AND_ASSIGN(Issued other_root, MakeRoot("Acme Root CA"));  // same name, other key
  std::vector<Certificate> intermediates = {customer_a_->cert};
  std::vector<Certificate> anchors = {other_root.cert};
  EXPECT_THAT(VerifyCertificate(leaf_->cert, intermediates, anchors, At(kCheckTime)),
              HasError(Code::kUnauthenticated, HasSubstr("certificate does not verify")));
}

TEST_F(VerifyTest, RejectsWithNoAnchors) {
  std::vector<Certificate> intermediates = {customer_a_->cert, root_->cert};
  EXPECT_THAT(VerifyCertificate(leaf_->cert, intermediates, {}, At(kCheckTime)),
              HasError(Code::kUnauthenticated, HasSubstr("certificate does not verify")));
}

TEST_F(VerifyTest, AcceptsIntermediateAnchorWithPartialChain) {
  VerifyOptions options = At(kCheckTime);
  options.partial_chain = true;
  std::vector<Certificate> anchors = {customer_a_->cert};
  EXPECT_THAT(VerifyCertificate(leaf_->cert, {}, anchors, options), IsOk());
}

TEST_F(VerifyTest, RejectsIntermediateAnchorWithoutPartialChain) {
  std::vector<Certificate> anchors = {customer_a_->cert};
  EXPECT_THAT(VerifyCertificate(leaf_->cert, {}, anchors, At(kCheckTime)),
              HasError(Code::kUnauthenticated, HasSubstr("certificate does not verify")));
}

TEST_F(VerifyTest, RejectsAnotherCustomersIntermediateAsAnchor) {
  VerifyOptions options = At(kCheckTime);
  options.partial_chain = true;
  std::vector<Certificate> anchors = {customer_b_->cert};
  EXPECT_THAT(VerifyCertificate(leaf_->cert, {}, anchors, options),
              HasError(Code::kUnauthenticated, HasSubstr("certificate does not verify")));
  // Even when customer A's intermediate is offered as an untrusted helper.
  std::vector<Certificate> intermediates = {customer_a_->cert};
  EXPECT_THAT(VerifyCertificate(leaf_->cert, intermediates, anchors, options),
              HasError(Code::kUnauthenticated, HasSubstr("certificate does not verify")));
}

TEST_F(VerifyTest, RejectsExpiredAndNotYetValid) {
  std::vector<Certificate> intermediates = {customer_a_->cert};
  std::vector<Certificate> anchors = {root_->cert};
  EXPECT_THAT(VerifyCertificate(leaf_->cert, intermediates, anchors, At(kNotAfter + 1)),
              HasError(Code::kUnauthenticated, HasSubstr("expired")));
  EXPECT_THAT(VerifyCertificate(leaf_->cert, intermediates, anchors, At(kNotBefore - 1)),
              HasError(Code::kUnauthenticated, HasSubstr("not yet valid")));
}

TEST_F(VerifyTest, RejectsCertificateIssuedByALeaf) {
  // A device must not be able to mint certificates for other devices.
  CertificateTemplate t = LeafTemplate("device-2");
  ASSERT_OK_AND_ASSIGN(Issued forged, IssueWith(t, &*leaf_));
  std::vector<Certificate> intermediates = {leaf_->cert, customer_a_->cert};
  std::vector<Certificate> anchors = {root_->cert};
  EXPECT_THAT(VerifyCertificate(forged.cert, intermediates, anchors, At(kCheckTime)),
              HasError(Code::kUnauthenticated, HasSubstr("certificate does not verify")));
}

TEST_F(VerifyTest, RejectsChainLongerThanRootPathLength) {
  ASSERT_OK_AND_ASSIGN(Issued strict_root, MakeRoot("Strict Root CA", 0));
  ASSERT_OK_AND_ASSIGN(Issued inter, MakeIntermediate(strict_root, "Customer CA"));
  ASSERT_OK_AND_ASSIGN(Issued leaf, MakeLeaf(inter, "device-1"));
  std::vector<Certificate> intermediates = {inter.cert};
  std::vector<Certificate> anchors = {strict_root.cert};
  EXPECT_THAT(VerifyCertificate(leaf.cert, intermediates, anchors, At(kCheckTime)),
              HasError(Code::kUnauthenticated, HasSubstr("path length")));
  // The same shape under a root allowing one intermediate verifies.
  std::vector<Certificate> good_intermediates = {customer_a_->cert};
  std::vector<Certificate> good_anchors = {root_->cert};
  EXPECT_THAT(VerifyCertificate(leaf_->cert, good_intermediates, good_anchors, At(kCheckTime)),
              IsOk());
}

TEST_F(VerifyTest, RequireClientAuthAcceptsClientLeaf) {
  VerifyOptions options = At(kCheckTime);
  options.require_client_auth = true;
  std::vector<Certificate> intermediates = {customer_a_->cert};
  std::vector<Certificate> anchors = {root_->cert};
  EXPECT_THAT(VerifyCertificate(leaf_->cert, intermediates, anchors, options), IsOk());
}

TEST_F(VerifyTest, RequireClientAuthRejectsServerOnlyLeaf) {
  CertificateTemplate t = LeafTemplate("server-1");
  t.extended_key_usage = {ExtendedKeyUsage::kServerAuth};
  ASSERT_OK_AND_ASSIGN(Issued server, IssueWith(t, &*customer_a_));
  VerifyOptions options = At(kCheckTime);
  options.require_client_auth = true;
  std::vector<Certificate> intermediates = {customer_a_->cert};
  std::vector<Certificate> anchors = {root_->cert};
  EXPECT_THAT(VerifyCertificate(server.cert, intermediates, anchors, options),
              HasError(Code::kUnauthenticated, HasSubstr("unsuitable certificate purpose")));
  options.require_client_auth = false;
  EXPECT_THAT(VerifyCertificate(server.cert, intermediates, anchors, options), IsOk());
}

TEST(VerifyNoExpirationTest, IdevidChainWithoutExpirationVerifiesFarInTheFuture) {
  CertificateTemplate root_tmpl = CaTemplate("IDevID Root", 0);
  root_tmpl.not_after = kNoWellDefinedExpiration;
  ASSERT_OK_AND_ASSIGN(Issued root, IssueWith(root_tmpl, nullptr));
  CertificateTemplate leaf_tmpl = LeafTemplate("device-1");
  leaf_tmpl.not_after = kNoWellDefinedExpiration;
  ASSERT_OK_AND_ASSIGN(Issued leaf, IssueWith(leaf_tmpl, &root));
  std::vector<Certificate> anchors = {root.cert};
  EXPECT_THAT(VerifyCertificate(leaf.cert, {}, anchors, At(kYear2100)), IsOk());
  // An ordinary leaf under the same root has expired by then.
  ASSERT_OK_AND_ASSIGN(Issued ordinary, MakeLeaf(root, "device-2"));
  EXPECT_THAT(VerifyCertificate(ordinary.cert, {}, anchors, At(kYear2100)),
              HasError(Code::kUnauthenticated, HasSubstr("expired")));
}

// --- Certificates straight out of SignCertificate ---

// SignCertificate hands back the X509 it built, whose SubjectPublicKeyInfo was copied in as raw
// bits (no EVP_PKEY behind it). OpenSSL must still see the key: X509_verify_cert needs it to use
// the certificate as an issuer, X509_check_private_key to pair it with its key, and
// Certificate::FromNative to wrap it again.
class FreshlySignedCertificateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(root_, IssueFresh(CaTemplate("Acme Root CA", 1), nullptr));
    ASSERT_OK_AND_ASSIGN(inter_, IssueFresh(CaTemplate("Customer A CA", 0), &*root_));
    ASSERT_OK_AND_ASSIGN(leaf_, IssueFresh(LeafTemplate("device-1"), &*inter_));
  }
  std::optional<Issued> root_;
  std::optional<Issued> inter_;
  std::optional<Issued> leaf_;
};

TEST_F(FreshlySignedCertificateTest, ExposesPublicKeyToOpenSsl) {
  EXPECT_NE(X509_get0_pubkey(root_->cert.native()), nullptr);
  EXPECT_EQ(X509_check_private_key(root_->cert.native(), root_->key.native()), 1);
}

TEST_F(FreshlySignedCertificateTest, ChainVerifiesWithoutReparsing) {
  std::vector<Certificate> intermediates = {inter_->cert};
  std::vector<Certificate> anchors = {root_->cert};
  EXPECT_THAT(VerifyCertificate(leaf_->cert, intermediates, anchors, At(kCheckTime)), IsOk());
}

TEST_F(FreshlySignedCertificateTest, FromNativeKeepsKey) {
  Certificate copy = *Certificate::FromNative(root_->cert.native());
  EXPECT_EQ(copy.Key(), root_->key.Public());
}

TEST_F(FreshlySignedCertificateTest, EncodesLikeItsReparsedSelf) {
  ASSERT_OK_AND_ASSIGN(Certificate parsed, Certificate::FromDer(leaf_->cert.ToDer()));
  EXPECT_EQ(parsed, leaf_->cert);
  EXPECT_EQ(leaf_->cert.Key(), leaf_->key.Public());
  EXPECT_EQ(parsed.Key(), leaf_->key.Public());
  EXPECT_EQ(leaf_->cert.Subject(), parsed.Subject());
}

// --- IsCa on certificates hallmark did not make ---

// SelfSignedWithoutBasicConstraints builds a v3 self-signed certificate with only the given
// keyUsage, using OpenSSL directly.
Result<Certificate> SelfSignedWithoutBasicConstraints(const PrivateKey& key, const char* ku) {
  OsslPtr<X509> x(X509_new());
  OsslPtr<ASN1_INTEGER> serial(ASN1_INTEGER_new());
  if (!x || !serial || ASN1_INTEGER_set(serial.get(), 7) != 1 ||
      X509_set_version(x.get(), X509_VERSION_3) != 1 ||
      X509_set_serialNumber(x.get(), serial.get()) != 1 ||
      X509_NAME_add_entry_by_txt(X509_get_subject_name(x.get()), "CN", MBSTRING_UTF8,
                                 reinterpret_cast<const unsigned char*>("no bc"), -1, -1, 0) != 1 ||
      X509_set_issuer_name(x.get(), X509_get_subject_name(x.get())) != 1 ||
      ASN1_TIME_set(X509_getm_notBefore(x.get()), static_cast<time_t>(kNotBefore)) == nullptr ||
      ASN1_TIME_set(X509_getm_notAfter(x.get()), static_cast<time_t>(kNotAfter)) == nullptr ||
      X509_set_pubkey(x.get(), key.native()) != 1) {
    return OsslError("test certificate");
  }
  X509_EXTENSION* ext = X509V3_EXT_nconf_nid(nullptr, nullptr, NID_key_usage, ku);
  if (ext == nullptr || X509_add_ext(x.get(), ext, -1) != 1) {
    X509_EXTENSION_free(ext);
    return OsslError("test keyUsage");
  }
  X509_EXTENSION_free(ext);
  if (X509_sign(x.get(), key.native(), key.SigningDigest()) <= 0) {
    return OsslError("test X509_sign");
  }
  int len = i2d_X509(x.get(), nullptr);
  Bytes der(static_cast<size_t>(len));
  unsigned char* p = der.data();
  i2d_X509(x.get(), &p);
  return Certificate::FromDer(der);
}

TEST(IsCaTest, FalseWithoutBasicConstraintsAndWithoutCertSign) {
  ASSERT_OK_AND_ASSIGN(PrivateKey key, PrivateKey::Generate(KeyType::kP256));
  ASSERT_OK_AND_ASSIGN(Certificate cert,
                       SelfSignedWithoutBasicConstraints(key, "critical,digitalSignature"));
  EXPECT_FALSE(cert.IsCa());
}

// DISABLED: certificate.h says IsCa "reports whether basicConstraints says cA=TRUE", but it is
// implemented with X509_check_ca, which also answers non-zero for a certificate without
// basicConstraints whose keyUsage includes keyCertSign (and for v1 self-signed certificates).
// Enable once IsCa checks basicConstraints (EXFLAG_CA after X509_check_purpose(x, -1, 0)) or
// the header documents OpenSSL's wider rule.
TEST(IsCaTest, FalseWithoutBasicConstraintsEvenWithCertSign) {
  ASSERT_OK_AND_ASSIGN(PrivateKey key, PrivateKey::Generate(KeyType::kP256));
  ASSERT_OK_AND_ASSIGN(Certificate cert,
                       SelfSignedWithoutBasicConstraints(key, "critical,keyCertSign"));
  EXPECT_FALSE(cert.IsCa());
}

}  // namespace
}  // namespace hallmark
