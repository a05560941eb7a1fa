#include "core/csr.h"

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "core/encoding.h"
#include "core/key.h"
#include "core/ossl.h"
#include "testing/matchers.h"

namespace hallmark {
namespace {

using ::hallmark::testing::HasError;
using ::hallmark::testing::IsOk;
using ::testing::AllOf;
using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::Field;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

DistinguishedName DeviceName() {
  DistinguishedName dn;
  dn.organization = "Acme Devices";
  dn.common_name = "device-0001";
  dn.serial_number = "SN-0001";
  return dn;
}

// RawExtension is an extension for BuildRawRequest, in OpenSSL's config syntax.
struct RawExtension {
  int nid;
  std::string value;  // e.g. "critical,CA:TRUE"
};

// BuildRawRequest makes a CSR with OpenSSL directly, for requests hallmark itself would never
// create: a chosen digest, a public key that differs from the signing key, or odd extensions.
Result<Csr> BuildRawRequest(const PrivateKey& signer, const EVP_MD* md,
                            const std::vector<RawExtension>& extensions = {},
                            const PublicKey* embedded_key = nullptr) {
  OsslPtr<X509_REQ> req(X509_REQ_new());
  auto name = BuildName(DeviceName());
  if (!req || !name) {
    return Error(Code::kInternal, "test setup failed");
  }
  EVP_PKEY* pub = embedded_key != nullptr ? embedded_key->native() : signer.native();
  if (X509_REQ_set_version(req.get(), X509_REQ_VERSION_1) != 1 ||
      X509_REQ_set_subject_name(req.get(), name->get()) != 1 ||
      X509_REQ_set_pubkey(req.get(), pub) != 1) {
    return OsslError("test X509_REQ setup");
  }
  if (!extensions.empty()) {
    OsslPtr<STACK_OF(X509_EXTENSION)> exts(sk_X509_EXTENSION_new_null());
    for (const RawExtension& e : extensions) {
      X509_EXTENSION* ext = X509V3_EXT_nconf_nid(nullptr, nullptr, e.nid, e.value.c_str());
      if (ext == nullptr || sk_X509_EXTENSION_push(exts.get(), ext) <= 0) {
        X509_EXTENSION_free(ext);
        return OsslError("test extension " + e.value);
      }
    }
    if (X509_REQ_add_extensions(req.get(), exts.get()) != 1) {
      return OsslError("test X509_REQ_add_extensions");
    }
  }
  if (X509_REQ_sign(req.get(), signer.native(), md) <= 0) {
    return OsslError("test X509_REQ_sign");
  }
  int len = i2d_X509_REQ(req.get(), nullptr);
  Bytes der(static_cast<size_t>(len));
  unsigned char* p = der.data();
  i2d_X509_REQ(req.get(), &p);
  return Csr::FromDer(der);
}

// --- Create and Parse ---

struct KeyCase {
  std::string name;
  KeyType type;
};

class CsrKeyTest : public ::testing::TestWithParam<KeyCase> {};

TEST_P(CsrKeyTest, CreatedRequestParsesFromPemAndDer) {
  ASSERT_OK_AND_ASSIGN(PrivateKey key, PrivateKey::Generate(GetParam().type));
  ASSERT_OK_AND_ASSIGN(Csr csr, Csr::Create(key, DeviceName()));
  EXPECT_THAT(csr.VerifySignature(), IsOk());

  std::string pem = csr.ToPem();
  ASSERT_OK_AND_ASSIGN(Csr from_pem, Csr::Parse(AsBytes(pem)));
  ASSERT_OK_AND_ASSIGN(Csr from_der, Csr::Parse(csr.ToDer()));
  for (const Csr* parsed : {&from_pem, &from_der}) {
    EXPECT_EQ(parsed->ToDer(), csr.ToDer());
    EXPECT_EQ(parsed->Key(), key.Public());
    EXPECT_EQ(parsed->CommonName(), "device-0001");
    EXPECT_EQ(parsed->SerialNumber(), "SN-0001");
    EXPECT_THAT(parsed->VerifySignature(), IsOk());
  }
}

TEST_P(CsrKeyTest, RejectsTamperedSignature) {
  ASSERT_OK_AND_ASSIGN(PrivateKey key, PrivateKey::Generate(GetParam().type));
  ASSERT_OK_AND_ASSIGN(Csr csr, Csr::Create(key, DeviceName()));
  Bytes der = csr.ToDer();
  // The signature BIT STRING ends the DER; its last byte is inside the signature value.
  der.back() ^= 0x01;
  ASSERT_OK_AND_ASSIGN(Csr tampered, Csr::FromDer(der));
  EXPECT_THAT(tampered.VerifySignature(),
              HasError(Code::kInvalidArgument, HasSubstr("no proof of possession")));
}

TEST_P(CsrKeyTest, RejectsTamperedSubject) {
  ASSERT_OK_AND_ASSIGN(PrivateKey key, PrivateKey::Generate(GetParam().type));
  ASSERT_OK_AND_ASSIGN(Csr csr, Csr::Create(key, DeviceName()));
  Bytes der = csr.ToDer();
  const std::string cn = "device-0001";
  auto it = std::search(der.begin(), der.end(), cn.begin(), cn.end());
  ASSERT_NE(it, der.end());
  *(it + static_cast<std::ptrdiff_t>(cn.size()) - 1) = '2';  // now "device-0002"
  ASSERT_OK_AND_ASSIGN(Csr tampered, Csr::FromDer(der));
  ASSERT_EQ(tampered.CommonName(), "device-0002");
  EXPECT_THAT(tampered.VerifySignature(),
              HasError(Code::kInvalidArgument, HasSubstr("no proof of possession")));
}

TEST_P(CsrKeyTest, RejectsRequestForKeyTheSignerDoesNotHold) {
  // An attacker embeds a victim's public key but can only sign with their own.
  ASSERT_OK_AND_ASSIGN(PrivateKey victim, PrivateKey::Generate(GetParam().type));
  ASSERT_OK_AND_ASSIGN(PrivateKey attacker, PrivateKey::Generate(GetParam().type));
  ASSERT_OK_AND_ASSIGN(Csr csr,
                       BuildRawRequest(attacker, attacker.SigningDigest(), {}, &victim.Public()));
  EXPECT_EQ(csr.Key(), victim.Public());
  EXPECT_THAT(csr.VerifySignature(),
              HasError(Code::kInvalidArgument, HasSubstr("no proof of possession")));
}

INSTANTIATE_TEST_SUITE_P(AllTypes, CsrKeyTest,
                         ::testing::Values(KeyCase{"P256", KeyType::kP256},
                                           KeyCase{"P384", KeyType::kP384},
                                           KeyCase{"Ed25519", KeyType::kEd25519}),
                         [](const ::testing::TestParamInfo<KeyCase>& p) { return p.param.name; });

TEST(CsrTest, AcceptsLegacyNewCertificateRequestPemLabel) {
  ASSERT_OK_AND_ASSIGN(PrivateKey key, PrivateKey::Generate(KeyType::kP256));
  ASSERT_OK_AND_ASSIGN(Csr csr, Csr::Create(key, DeviceName()));
  std::string pem = csr.ToPem();
  for (const std::string marker : {"BEGIN ", "END "}) {
    size_t at = pem.find(marker + "CERTIFICATE REQUEST");
    ASSERT_NE(at, std::string::npos);
    pem.insert(at + marker.size(), "NEW ");
  }
  ASSERT_OK_AND_ASSIGN(Csr parsed, Csr::Parse(AsBytes(pem)));
  EXPECT_EQ(parsed.ToDer(), csr.ToDer());
}

TEST(CsrTest, ReportsSubjectInRfc2253Order) {
  ASSERT_OK_AND_ASSIGN(PrivateKey key, PrivateKey::Generate(KeyType::kP256));
  ASSERT_OK_AND_ASSIGN(Csr csr, Csr::Create(key, DeviceName()));
  EXPECT_EQ(csr.Subject(), "serialNumber=SN-0001,CN=device-0001,O=Acme Devices");
}

TEST(CsrTest, MissingAttributesAreNullopt) {
  ASSERT_OK_AND_ASSIGN(PrivateKey key, PrivateKey::Generate(KeyType::kP256));
  DistinguishedName dn;
  dn.common_name = "only-cn";
  ASSERT_OK_AND_ASSIGN(Csr csr, Csr::Create(key, dn));
  EXPECT_EQ(csr.CommonName(), "only-cn");
  EXPECT_EQ(csr.SerialNumber(), std::nullopt);
  EXPECT_THAT(csr.RequestedExtensions(), IsEmpty());
  ASSERT_OK_AND_ASSIGN(auto sans, csr.RequestedSubjectAltNames());
  EXPECT_THAT(sans, IsEmpty());
  EXPECT_FALSE(csr.RequestsCa());
}

TEST(CsrTest, CreateRefusesSubjectThatCannotBeEncoded) {
  ASSERT_OK_AND_ASSIGN(PrivateKey key, PrivateKey::Generate(KeyType::kP256));
  DistinguishedName bad_serial = DeviceName();
  bad_serial.serial_number = "SN_0001*";
  EXPECT_THAT(Csr::Create(key, bad_serial),
              HasError(Code::kInvalidArgument, HasSubstr("outside PrintableString")));
  DistinguishedName bad_country = DeviceName();
  bad_country.country = "DEU";
  EXPECT_THAT(Csr::Create(key, bad_country),
              HasError(Code::kInvalidArgument, HasSubstr("two-letter")));
  DistinguishedName long_cn = DeviceName();
  long_cn.common_name = std::string(65, 'a');
  EXPECT_THAT(Csr::Create(key, long_cn),
              HasError(Code::kInvalidArgument, HasSubstr("longer than 64")));
}

// --- Malformed input ---

TEST(CsrParseTest, RejectsMalformedInput) {
  ASSERT_OK_AND_ASSIGN(PrivateKey key, PrivateKey::Generate(KeyType::kP256));
  ASSERT_OK_AND_ASSIGN(Csr csr, Csr::Create(key, DeviceName()));
  std::string pem = csr.ToPem();
  Bytes der = csr.ToDer();
  Bytes trailing = der;
  trailing.push_back(0x00);
  Bytes truncated_der(der.begin(), der.end() - 10);
  Bytes random_bytes;
  for (int i = 0; i < 200; ++i) {
    random_bytes.push_back(static_cast<uint8_t>((i * 131 + 7) & 0xff));
  }
  std::string corrupt_pem = pem;
  corrupt_pem[pem.find('\n') + 10] = '!';

  struct Case {
    std::string name;
    Bytes input;
    std::string message;
  };
  auto bytes = [](std::string_view s) { return Bytes(s.begin(), s.end()); };
  for (const Case& c : std::vector<Case>{
           {"empty", {}, "CSR is empty"},
           {"truncated PEM", bytes(pem.substr(0, pem.size() / 2)), "truncated or corrupt"},
           {"PEM with bad base64", bytes(corrupt_pem), "truncated or corrupt"},
           {"PEM of another type", bytes(key.Public().ToPem()), "not a \"CERTIFICATE REQUEST\""},
           {"random bytes", random_bytes, "neither PEM nor a valid DER"},
           {"text", bytes("hello, CA"), "neither PEM nor a valid DER"},
           {"truncated DER", truncated_der, "neither PEM nor a valid DER"},
           {"DER with trailing bytes", trailing, "1 trailing bytes"}}) {
    SCOPED_TRACE(c.name);
    EXPECT_THAT(Csr::Parse(c.input), HasError(Code::kInvalidArgument, HasSubstr(c.message)));
  }
}

TEST(CsrParseTest, DerWithoutTrailingBytesIsAccepted) {
  ASSERT_OK_AND_ASSIGN(PrivateKey key, PrivateKey::Generate(KeyType::kP256));
  ASSERT_OK_AND_ASSIGN(Csr csr, Csr::Create(key, DeviceName()));
  EXPECT_THAT(Csr::FromDer(csr.ToDer()), IsOk());
}

TEST(CsrParseTest, RejectsVersionOtherThanV1) {
  ASSERT_OK_AND_ASSIGN(PrivateKey key, PrivateKey::Generate(KeyType::kP256));
  ASSERT_OK_AND_ASSIGN(Csr csr, Csr::Create(key, DeviceName()));
  Bytes der = csr.ToDer();
  // The first INTEGER 0 in the encoding is CertificationRequestInfo.version.
  const Bytes version = {0x02, 0x01, 0x00};
  auto it = std::search(der.begin(), der.end(), version.begin(), version.end());
  ASSERT_NE(it, der.end());
  ASSERT_LT(it - der.begin(), 8);
  *(it + 2) = 0x01;
  EXPECT_THAT(Csr::FromDer(der), HasError(Code::kInvalidArgument, HasSubstr("not v1")));
}

// --- Forged proof of possession ---

// ForgeRequest builds a P-256 CSR for `spki_der` whose ECDSA-with-SHA-256 signature was made
// without any private key: s = 1 and r = x(e*G) mod n, where e is the hash of the request. Such a
// signature verifies only if the public key is the point at infinity.
Result<Bytes> ForgeRequest(const Bytes& spki_der) {
  // Copy the key's algorithm and bits as they are: OpenSSL refuses to encode the point at
  // infinity from an EVP_PKEY.
  const unsigned char* in = spki_der.data();
  OsslPtr<X509_PUBKEY> spki(d2i_X509_PUBKEY(nullptr, &in, static_cast<long>(spki_der.size())));
  OsslPtr<X509_REQ> req(X509_REQ_new());
  auto name = BuildName(DeviceName());
  if (!spki || !req || !name || X509_REQ_set_version(req.get(), X509_REQ_VERSION_1) != 1 ||
      X509_REQ_set_subject_name(req.get(), name->get()) != 1) {
    return OsslError("forging: building request");
  }
  const unsigned char* key_bits = nullptr;
  int key_bits_len = 0;
  X509_ALGOR* key_alg = nullptr;
  unsigned char* key_bits_copy = nullptr;
  if (X509_PUBKEY_get0_param(nullptr, &key_bits, &key_bits_len, &key_alg, spki.get()) != 1 ||
      (key_bits_copy = static_cast<unsigned char*>(
           OPENSSL_memdup(key_bits, static_cast<size_t>(key_bits_len)))) == nullptr ||
      X509_PUBKEY_set0_param(X509_REQ_get_X509_PUBKEY(req.get()),
                             OBJ_nid2obj(NID_X9_62_id_ecPublicKey), V_ASN1_OBJECT,
                             OBJ_nid2obj(NID_X9_62_prime256v1), key_bits_copy, key_bits_len) != 1) {
    OPENSSL_free(key_bits_copy);
    return OsslError("forging: copying public key");
  }
  X509_ALGOR* alg = X509_ALGOR_new();
  if (alg == nullptr ||
      X509_ALGOR_set0(alg, OBJ_nid2obj(NID_ecdsa_with_SHA256), V_ASN1_UNDEF, nullptr) != 1 ||
      X509_REQ_set1_signature_algo(req.get(), alg) != 1) {
    X509_ALGOR_free(alg);
    return OsslError("forging: signature algorithm");
  }
  X509_ALGOR_free(alg);
  unsigned char* tbs = nullptr;
  int tbs_len = i2d_re_X509_REQ_tbs(req.get(), &tbs);
  if (tbs_len <= 0) {
    return OsslError("forging: encoding request info");
  }
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(tbs, static_cast<size_t>(tbs_len), digest);
  OPENSSL_free(tbs);

  EC_GROUP* group = EC_GROUP_new_by_curve_name(NID_X9_62_prime256v1);
  EC_POINT* point = group != nullptr ? EC_POINT_new(group) : nullptr;
  OsslPtr<BIGNUM> e(BN_bin2bn(digest, sizeof(digest), nullptr));
  OsslPtr<BIGNUM> r(BN_new());
  OsslPtr<BIGNUM> s(BN_new());
  BN_CTX* ctx = BN_CTX_new();
  bool ok = group != nullptr && point != nullptr && e && r && s && ctx != nullptr &&
            EC_POINT_mul(group, point, e.get(), nullptr, nullptr, ctx) == 1 &&
            EC_POINT_get_affine_coordinates(group, point, r.get(), nullptr, ctx) == 1 &&
            BN_nnmod(r.get(), r.get(), EC_GROUP_get0_order(group), ctx) == 1 &&
            BN_one(s.get()) == 1;
  BN_CTX_free(ctx);
  EC_POINT_free(point);
  EC_GROUP_free(group);
  if (!ok) {
    return OsslError("forging: arithmetic");
  }
  ECDSA_SIG* sig = ECDSA_SIG_new();
  if (sig == nullptr || ECDSA_SIG_set0(sig, r.release(), s.release()) != 1) {
    ECDSA_SIG_free(sig);
    return OsslError("forging: ECDSA_SIG");
  }
  unsigned char* sig_der = nullptr;
  int sig_len = i2d_ECDSA_SIG(sig, &sig_der);
  ECDSA_SIG_free(sig);
  OsslPtr<ASN1_STRING> bits(ASN1_BIT_STRING_new());
  if (sig_len <= 0 || !bits || ASN1_BIT_STRING_set(bits.get(), sig_der, sig_len) != 1) {
    OPENSSL_free(sig_der);
    return OsslError("forging: signature bits");
  }
  OPENSSL_free(sig_der);
  X509_REQ_set0_signature(req.get(), bits.release());
  int len = i2d_X509_REQ(req.get(), nullptr);
  Bytes der(static_cast<size_t>(len > 0 ? len : 0));
  unsigned char* out = der.data();
  if (len <= 0 || i2d_X509_REQ(req.get(), &out) != len) {
    return OsslError("forging: encoding request");
  }
  return der;
}

TEST(CsrForgeryTest, RejectsForgedRequestForRealKey) {
  ASSERT_OK_AND_ASSIGN(PrivateKey victim, PrivateKey::Generate(KeyType::kP256));
  ASSERT_OK_AND_ASSIGN(Bytes der, ForgeRequest(victim.Public().SpkiDer()));
  ASSERT_OK_AND_ASSIGN(Csr csr, Csr::FromDer(der));
  EXPECT_EQ(csr.Key(), victim.Public());
  EXPECT_THAT(csr.VerifySignature(),
              HasError(Code::kInvalidArgument, HasSubstr("no proof of possession")));
}

// DISABLED: a request for the P-256 point at infinity (SubjectPublicKeyInfo BIT STRING "00")
// parses, and its forged signature passes VerifySignature, so the CA would certify a key whose
// signatures anybody can forge. PublicKey::FromDer (via Csr::FromDer) does not reject the
// identity point and OpenSSL's ECDSA verify does not either. See
// SpkiTest.RejectsPointAtInfinity in key_test.cc. Either refusal below is fine.
TEST(CsrForgeryTest, RejectsForgedRequestForPointAtInfinity) {
  const Bytes infinity = {0x30, 0x19, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48,
                          0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86, 0x48,
                          0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x02, 0x00, 0x00};
  ASSERT_OK_AND_ASSIGN(Bytes der, ForgeRequest(infinity));
  auto csr = Csr::FromDer(der);
  if (!csr) {
    EXPECT_EQ(csr.error().code(), Code::kInvalidArgument) << csr.error();
    return;
  }
  EXPECT_THAT(csr->VerifySignature(), HasError(Code::kInvalidArgument, HasSubstr("")));
}

// --- Digests ---

TEST(CsrDigestTest, AcceptsStrongDigests) {
  ASSERT_OK_AND_ASSIGN(PrivateKey key, PrivateKey::Generate(KeyType::kP256));
  for (const EVP_MD* md : {EVP_sha256(), EVP_sha384(), EVP_sha512()}) {
    SCOPED_TRACE(EVP_MD_get0_name(md));
    ASSERT_OK_AND_ASSIGN(Csr csr, BuildRawRequest(key, md));
    EXPECT_THAT(csr.VerifySignature(), IsOk());
  }
}

TEST(CsrDigestTest, RejectsSha1SignedRequest) {
  ASSERT_OK_AND_ASSIGN(PrivateKey key, PrivateKey::Generate(KeyType::kP256));
  ASSERT_OK_AND_ASSIGN(Csr csr, BuildRawRequest(key, EVP_sha1()));
  EXPECT_THAT(csr.VerifySignature(),
              HasError(Code::kInvalidArgument,
                       AllOf(HasSubstr("signed with SHA1"), HasSubstr("not collision resistant"))));
}

TEST(CsrDigestTest, RejectsMd5SignedRsaRequest) {
  OsslPtr<EVP_PKEY> rsa(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(2048)));
  ASSERT_NE(rsa, nullptr);
  ASSERT_OK_AND_ASSIGN(PrivateKey key, PrivateKey::FromNative(std::move(rsa)));
  ASSERT_OK_AND_ASSIGN(Csr good, BuildRawRequest(key, EVP_sha256()));
  EXPECT_THAT(good.VerifySignature(), IsOk());
  ASSERT_OK_AND_ASSIGN(Csr md5, BuildRawRequest(key, EVP_md5()));
  EXPECT_THAT(md5.VerifySignature(),
              HasError(Code::kInvalidArgument, HasSubstr("signed with MD5")));
}

// --- Requested extensions ---

TEST(CsrExtensionsTest, CreateRequestsSubjectAltNames) {
  ASSERT_OK_AND_ASSIGN(PrivateKey key, PrivateKey::Generate(KeyType::kP256));
  std::vector<SubjectAltName> sans = {
      {SubjectAltName::Type::kDns, "device-0001.example.com"},
      {SubjectAltName::Type::kIp, "192.0.2.10"},
      {SubjectAltName::Type::kIp, "2001:db8::1"},
      {SubjectAltName::Type::kUri, "urn:dev:ops:acme-0001"},
  };
  ASSERT_OK_AND_ASSIGN(Csr csr, Csr::Create(key, DeviceName(), sans));
  EXPECT_THAT(csr.VerifySignature(), IsOk());
  ASSERT_OK_AND_ASSIGN(Csr parsed, Csr::Parse(AsBytes(csr.ToPem())));
  ASSERT_OK_AND_ASSIGN(std::vector<SubjectAltName> got, parsed.RequestedSubjectAltNames());
  EXPECT_EQ(got, sans);
  EXPECT_THAT(parsed.RequestedExtensions(),
              ElementsAre(AllOf(Field(&RequestedExtension::oid, "2.5.29.17"),
                                Field(&RequestedExtension::name, "subjectAltName"),
                                Field(&RequestedExtension::critical, false))));
  EXPECT_FALSE(parsed.RequestsCa());
}

TEST(CsrExtensionsTest, RefusesSubjectAltNameTypeHallmarkDoesNotIssue) {
  ASSERT_OK_AND_ASSIGN(PrivateKey key, PrivateKey::Generate(KeyType::kP256));
  ASSERT_OK_AND_ASSIGN(
      Csr ok, BuildRawRequest(key, EVP_sha256(), {{NID_subject_alt_name, "DNS:a.example.com"}}));
  EXPECT_THAT(ok.RequestedSubjectAltNames(), IsOk());
  ASSERT_OK_AND_ASSIGN(
      Csr csr, BuildRawRequest(key, EVP_sha256(),
                               {{NID_subject_alt_name, "DNS:a.example.com,email:x@example.com"}}));
  EXPECT_THAT(csr.RequestedSubjectAltNames(),
              HasError(Code::kInvalidArgument, HasSubstr("type hallmark does not issue")));
}

TEST(CsrExtensionsTest, RefusesDuplicateSubjectAltNameExtensions) {
  ASSERT_OK_AND_ASSIGN(PrivateKey key, PrivateKey::Generate(KeyType::kP256));
  ASSERT_OK_AND_ASSIGN(Csr csr, BuildRawRequest(key, EVP_sha256(),
                                                {{NID_subject_alt_name, "DNS:a.example.com"},
                                                 {NID_subject_alt_name, "DNS:b.example.com"}}));
  EXPECT_THAT(csr.RequestedSubjectAltNames(),
              HasError(Code::kInvalidArgument, HasSubstr("more than one subjectAltName")));
}

TEST(CsrExtensionsTest, RequestsCaWhenBasicConstraintsSaysCa) {
  ASSERT_OK_AND_ASSIGN(PrivateKey key, PrivateKey::Generate(KeyType::kP256));
  ASSERT_OK_AND_ASSIGN(
      Csr csr, BuildRawRequest(key, EVP_sha256(), {{NID_basic_constraints, "critical,CA:TRUE"}}));
  EXPECT_THAT(csr.VerifySignature(), IsOk());
  EXPECT_TRUE(csr.RequestsCa());
  EXPECT_THAT(csr.RequestedExtensions(),
              Contains(AllOf(Field(&RequestedExtension::name, "basicConstraints"),
                             Field(&RequestedExtension::critical, true))));
}

TEST(CsrExtensionsTest, DoesNotRequestCaWhenBasicConstraintsSaysNotCa) {
  ASSERT_OK_AND_ASSIGN(PrivateKey key, PrivateKey::Generate(KeyType::kP256));
  ASSERT_OK_AND_ASSIGN(Csr csr,
                       BuildRawRequest(key, EVP_sha256(), {{NID_basic_constraints, "CA:FALSE"}}));
  EXPECT_FALSE(csr.RequestsCa());
}

TEST(CsrExtensionsTest, DuplicateBasicConstraintsCountsAsRequestingCa) {
  ASSERT_OK_AND_ASSIGN(PrivateKey key, PrivateKey::Generate(KeyType::kP256));
  ASSERT_OK_AND_ASSIGN(Csr csr, BuildRawRequest(key, EVP_sha256(),
                                                {{NID_basic_constraints, "CA:FALSE"},
                                                 {NID_basic_constraints, "CA:TRUE"}}));
  EXPECT_TRUE(csr.RequestsCa());
}

TEST(CsrExtensionsTest, ListsUnknownExtensionsByOid) {
  ASSERT_OK_AND_ASSIGN(PrivateKey key, PrivateKey::Generate(KeyType::kP256));
  ASSERT_OK_AND_ASSIGN(
      Csr csr, BuildRawRequest(key, EVP_sha256(), {{NID_key_usage, "critical,digitalSignature"}}));
  EXPECT_THAT(csr.RequestedExtensions(),
              ElementsAre(AllOf(Field(&RequestedExtension::oid, "2.5.29.15"),
                                Field(&RequestedExtension::name, "keyUsage"),
                                Field(&RequestedExtension::critical, true))));
}

// --- ParseSubjectAltName ---

TEST(ParseSubjectAltNameTest, AcceptsValidForms) {
  using Type = SubjectAltName::Type;
  struct Case {
    std::string text;
    SubjectAltName want;
  };
  for (const Case& c : std::vector<Case>{
           {"dns:device.example.com", {Type::kDns, "device.example.com"}},
           {"DNS:Device.Example.COM", {Type::kDns, "Device.Example.COM"}},
           {"device.example.com", {Type::kDns, "device.example.com"}},
           {"localhost", {Type::kDns, "localhost"}},
           {"xn--bcher-kva.example", {Type::kDns, "xn--bcher-kva.example"}},
           {"a-b.c1.example.", {Type::kDns, "a-b.c1.example."}},
           {"ip:192.0.2.1", {Type::kIp, "192.0.2.1"}},
           {"IP:2001:db8::1", {Type::kIp, "2001:db8::1"}},
           {"192.0.2.1", {Type::kIp, "192.0.2.1"}},
           {"::1", {Type::kIp, "::1"}},
           {"uri:urn:dev:ops:acme-0001", {Type::kUri, "urn:dev:ops:acme-0001"}},
           {"uri:https://example.com/d/1", {Type::kUri, "https://example.com/d/1"}}}) {
    SCOPED_TRACE(c.text);
    ASSERT_OK_AND_ASSIGN(SubjectAltName got, ParseSubjectAltName(c.text));
    EXPECT_EQ(got, c.want);
  }
}

TEST(ParseSubjectAltNameTest, RejectsInvalidNames) {
  struct Case {
    std::string name;
    std::string text;
    std::string message;
  };
  for (const Case& c : std::vector<Case>{
           {"wildcard", "*.example.com", "no wildcards"},
           {"prefixed wildcard", "dns:*.example.com", "not a valid DNS name"},
           {"embedded wildcard", "dns:a*.example.com", "not a valid DNS name"},
           {"empty", "", "not a valid DNS name"},
           {"empty after prefix", "dns:", "not a valid DNS name"},
           {"empty label", "a..example.com", "not a valid DNS name"},
           {"leading dot", ".example.com", "not a valid DNS name"},
           {"leading hyphen", "-a.example.com", "not a valid DNS name"},
           {"trailing hyphen", "a-.example.com", "not a valid DNS name"},
           {"underscore", "a_b.example.com", "not a valid DNS name"},
           {"space", "a b.example.com", "not a valid DNS name"},
           {"label of 64 octets", std::string(64, 'a') + ".example.com", "not a valid DNS name"},
           {"name of 254 octets", std::string(254, 'a'), "not a valid DNS name"},
           {"NUL byte", std::string("a\0b.example.com", 15), "not a valid DNS name"},
           {"octet out of range", "ip:256.0.0.1", "not an IP address"},
           {"too few octets", "ip:10.0.1", "not an IP address"},
           {"hostname as ip", "ip:example.com", "not an IP address"},
           {"ip with port", "ip:192.0.2.1:443", "not an IP address"},
           {"cidr", "ip:192.0.2.0/24", "not an IP address"},
           {"uri without scheme", "uri:example.com", "not a URI"}}) {
    SCOPED_TRACE(c.name);
    EXPECT_THAT(ParseSubjectAltName(c.text),
                HasError(Code::kInvalidArgument, HasSubstr(c.message)));
  }
}

TEST(ParseSubjectAltNameTest, AcceptsLongestLegalLabel) {
  EXPECT_THAT(ParseSubjectAltName(std::string(63, 'a') + ".example.com"), IsOk());
}

TEST(ParseSubjectAltNameTest, FormatRoundTrips) {
  for (const char* text :
       {"dns:device.example.com", "ip:192.0.2.1", "ip:2001:db8::1", "uri:urn:dev:x"}) {
    SCOPED_TRACE(text);
    ASSERT_OK_AND_ASSIGN(SubjectAltName san, ParseSubjectAltName(text));
    EXPECT_EQ(FormatSubjectAltName(san), text);
  }
}

TEST(IsPrintableStringTest, AcceptsOnlyPrintableStringAlphabet) {
  EXPECT_TRUE(IsPrintableString("Acme Device (rev 2) +-./:=?,'"));
  EXPECT_TRUE(IsPrintableString(""));
  for (const char* s : {"a_b", "a*b", "a@b", "a;b", "\xc3\xa9", "a\nb", "a&b"}) {
    SCOPED_TRACE(s);
    EXPECT_FALSE(IsPrintableString(s));
  }
}

TEST(BuildNameTest, EncodesSerialAndCountryAsPrintableString) {
  DistinguishedName dn;
  dn.country = "DE";
  dn.organization = "M\xc3\xbcller GmbH";
  dn.common_name = "device";
  dn.serial_number = "SN-1";
  ASSERT_OK_AND_ASSIGN(OsslPtr<X509_NAME> name, BuildName(dn));
  auto type_of = [&](int nid) {
    int idx = X509_NAME_get_index_by_NID(name.get(), nid, -1);
    EXPECT_GE(idx, 0);
    return ASN1_STRING_type(X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name.get(), idx)));
  };
  EXPECT_EQ(type_of(NID_countryName), V_ASN1_PRINTABLESTRING);
  EXPECT_EQ(type_of(NID_serialNumber), V_ASN1_PRINTABLESTRING);
  EXPECT_EQ(type_of(NID_organizationName), V_ASN1_UTF8STRING);
  EXPECT_EQ(type_of(NID_commonName), V_ASN1_UTF8STRING);
  EXPECT_EQ(X509_NAME_get_index_by_NID(name.get(), NID_organizationalUnitName, -1), -1);
}

}  // namespace
}  // namespace hallmark
