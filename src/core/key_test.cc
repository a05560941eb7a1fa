#include "core/key.h"

#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/certificate.h"
#include "core/encoding.h"
#include "core/ossl.h"
#include "core/secret_bytes.h"
#include "testing/matchers.h"

namespace hallmark {
namespace {

using ::hallmark::testing::HasError;
using ::hallmark::testing::IsOk;
using ::testing::AnyOf;
using ::testing::HasSubstr;
using ::testing::MatchesRegex;
using ::testing::Not;
using ::testing::StartsWith;

// A P-256 public key made once with
//   openssl ecparam -name prime256v1 -genkey -noout -out k.pem
//   openssl pkey -in k.pem -pubout
// and its device ID from
//   openssl pkey -pubin -in pub.pem -outform DER | sha256sum
// The private key was discarded; only the known answer matters.
constexpr char kKnownPublicKeyPem[] =
    "-----BEGIN PUBLIC KEY-----\n"
    "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE6L88WHPyk3y6eXMiiw2ocxHPM0w2\n"
    "NDkoSQdZJoH7HgDe/1qb2yQVpJmwxcfJCL4dy58J9W1AFc7/jboyIboEkA==\n"
    "-----END PUBLIC KEY-----\n";
constexpr char kKnownDeviceId[] =
    "6c0c0b9644a6ec4ff64439ea217171bcad47fd20075a83345cb41262d1b16a7e";

std::string PemOf(const PrivateKey& key) {
  auto pem = key.ToPem(SecretAccess::Grant());
  EXPECT_THAT(pem, IsOk());
  return pem ? std::string(pem->view(SecretAccess::Grant())) : std::string();
}

// PrivateKeyDer returns the unencrypted PKCS#8 DER of `key`, through OpenSSL directly.
Bytes PrivateKeyDer(const PrivateKey& key) {
  int len = i2d_PrivateKey(key.native(), nullptr);
  EXPECT_GT(len, 0);
  Bytes der(static_cast<size_t>(len > 0 ? len : 0));
  unsigned char* p = der.data();
  i2d_PrivateKey(key.native(), &p);
  return der;
}

// --- Key types ---

struct KeyTypeCase {
  std::string name;
  KeyType type;
  std::string describe;
  KeyAlgorithm::Family family;
};

class KeyTypeTest : public ::testing::TestWithParam<KeyTypeCase> {};

TEST_P(KeyTypeTest, GeneratesKeyOfRequestedAlgorithm) {
  ASSERT_OK_AND_ASSIGN(PrivateKey key, PrivateKey::Generate(GetParam().type));
  KeyAlgorithm alg = key.Public().Algorithm();
  EXPECT_EQ(alg.family, GetParam().family);
  EXPECT_EQ(alg.Describe(), GetParam().describe);
}

TEST_P(KeyTypeTest, GeneratesDistinctKeys) {
  ASSERT_OK_AND_ASSIGN(PrivateKey a, PrivateKey::Generate(GetParam().type));
  ASSERT_OK_AND_ASSIGN(PrivateKey b, PrivateKey::Generate(GetParam().type));
  EXPECT_NE(a.Public().DeviceId(), b.Public().DeviceId());
}

TEST_P(KeyTypeTest, PemRoundTripKeepsKey) {
  ASSERT_OK_AND_ASSIGN(PrivateKey key, PrivateKey::Generate(GetParam().type));
  std::string pem = PemOf(key);
  EXPECT_THAT(pem, StartsWith("-----BEGIN PRIVATE KEY-----"));
  ASSERT_OK_AND_ASSIGN(PrivateKey parsed, PrivateKey::FromPem(pem));
  EXPECT_EQ(parsed.Public(), key.Public());
}

TEST_P(KeyTypeTest, DerRoundTripKeepsKey) {
  ASSERT_OK_AND_ASSIGN(PrivateKey key, PrivateKey::Generate(GetParam().type));
  ASSERT_OK_AND_ASSIGN(PrivateKey parsed, PrivateKey::FromDer(PrivateKeyDer(key)));
  EXPECT_EQ(parsed.Public(), key.Public());
}

TEST_P(KeyTypeTest, PublicKeyPemAndDerRoundTrip) {
  ASSERT_OK_AND_ASSIGN(PrivateKey key, PrivateKey::Generate(GetParam().type));
  const PublicKey& pub = key.Public();
  ASSERT_OK_AND_ASSIGN(PublicKey from_pem, PublicKey::FromPem(pub.ToPem()));
  ASSERT_OK_AND_ASSIGN(PublicKey from_der, PublicKey::FromDer(pub.SpkiDer()));
  EXPECT_EQ(from_pem, pub);
  EXPECT_EQ(from_der, pub);
  EXPECT_EQ(from_der.DeviceId(), pub.DeviceId());
}

TEST_P(KeyTypeTest, SignatureVerifies) {
  ASSERT_OK_AND_ASSIGN(PrivateKey key, PrivateKey::Generate(GetParam().type));
  const std::string data = "enrol device 42";
  ASSERT_OK_AND_ASSIGN(Bytes sig, key.Sign(AsBytes(data)));
  EXPECT_THAT(key.Public().Verify(AsBytes(data), sig), IsOk());
}

TEST_P(KeyTypeTest, RejectsSignatureOverTamperedData) {
  ASSERT_OK_AND_ASSIGN(PrivateKey key, PrivateKey::Generate(GetParam().type));
  ASSERT_OK_AND_ASSIGN(Bytes sig, key.Sign(AsBytes("enrol device 42")));
  EXPECT_THAT(key.Public().Verify(AsBytes("enrol device 43"), sig),
              HasError(Code::kUnauthenticated, HasSubstr("does not verify")));
}

TEST_P(KeyTypeTest, RejectsTamperedSignature) {
  ASSERT_OK_AND_ASSIGN(PrivateKey key, PrivateKey::Generate(GetParam().type));
  const std::string data = "enrol device 42";
  ASSERT_OK_AND_ASSIGN(Bytes sig, key.Sign(AsBytes(data)));
  // The last byte is inside the signature value (ECDSA's s, or Ed25519's S), so the encoding
  // stays well-formed and only the mathematics fails.
  sig.back() ^= 0x01;
  EXPECT_THAT(key.Public().Verify(AsBytes(data), sig),
              HasError(Code::kUnauthenticated, HasSubstr("does not verify")));
}

TEST_P(KeyTypeTest, RejectsSignatureFromAnotherKey) {
  ASSERT_OK_AND_ASSIGN(PrivateKey key, PrivateKey::Generate(GetParam().type));
  ASSERT_OK_AND_ASSIGN(PrivateKey other, PrivateKey::Generate(GetParam().type));
  const std::string data = "enrol device 42";
  ASSERT_OK_AND_ASSIGN(Bytes sig, other.Sign(AsBytes(data)));
  EXPECT_THAT(key.Public().Verify(AsBytes(data), sig),
              HasError(Code::kUnauthenticated, HasSubstr("does not verify")));
}

TEST_P(KeyTypeTest, RejectsEmptySignature) {
  ASSERT_OK_AND_ASSIGN(PrivateKey key, PrivateKey::Generate(GetParam().type));
  EXPECT_THAT(key.Public().Verify(AsBytes("data"), Bytes()),
              HasError(Code::kUnauthenticated, HasSubstr("does not verify")));
}

INSTANTIATE_TEST_SUITE_P(
    AllTypes, KeyTypeTest,
    ::testing::Values(KeyTypeCase{"P256", KeyType::kP256, "EC P-256", KeyAlgorithm::Family::kEc},
                      KeyTypeCase{"P384", KeyType::kP384, "EC P-384", KeyAlgorithm::Family::kEc},
                      KeyTypeCase{"Ed25519", KeyType::kEd25519, "Ed25519",
                                  KeyAlgorithm::Family::kEd25519}),
    [](const ::testing::TestParamInfo<KeyTypeCase>& p) { return p.param.name; });

TEST(KeyTest, SigningDigestMatchesCurve) {
  ASSERT_OK_AND_ASSIGN(PrivateKey p256, PrivateKey::Generate(KeyType::kP256));
  ASSERT_OK_AND_ASSIGN(PrivateKey p384, PrivateKey::Generate(KeyType::kP384));
  ASSERT_OK_AND_ASSIGN(PrivateKey ed, PrivateKey::Generate(KeyType::kEd25519));
  EXPECT_EQ(EVP_MD_get_type(p256.SigningDigest()), NID_sha256);
  EXPECT_EQ(EVP_MD_get_type(p384.SigningDigest()), NID_sha384);
  EXPECT_EQ(ed.SigningDigest(), nullptr);
}

// --- ParseKeyType ---

TEST(ParseKeyTypeTest, AcceptsNamesAndAliases) {
  struct Case {
    std::string text;
    KeyType want;
  };
  for (const Case& c : std::vector<Case>{{"p256", KeyType::kP256},
                                         {"ecdsa-p256", KeyType::kP256},
                                         {"p384", KeyType::kP384},
                                         {"ed25519", KeyType::kEd25519}}) {
    SCOPED_TRACE(c.text);
    ASSERT_OK_AND_ASSIGN(KeyType got, ParseKeyType(c.text));
    EXPECT_EQ(got, c.want);
  }
  EXPECT_EQ(KeyTypeName(KeyType::kP256), "p256");
  EXPECT_EQ(KeyTypeName(KeyType::kP384), "p384");
  EXPECT_EQ(KeyTypeName(KeyType::kEd25519), "ed25519");
}

TEST(ParseKeyTypeTest, RejectsUnknownNames) {
  for (const char* text : {"", "rsa", "rsa2048", "p521", "ed448", "P256 "}) {
    SCOPED_TRACE(text);
    EXPECT_THAT(ParseKeyType(text),
                HasError(Code::kInvalidArgument, HasSubstr("unknown key type")));
  }
}

// --- Encrypted PEM ---

class EncryptedPemTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(key_, PrivateKey::Generate(KeyType::kP256));
    ASSERT_OK_AND_ASSIGN(pem_, key_->ToEncryptedPem(SecretBytes("correct horse")));
  }
  std::optional<PrivateKey> key_;
  std::string pem_;
};

TEST_F(EncryptedPemTest, IsEncryptedPkcs8) {
  EXPECT_THAT(pem_, StartsWith("-----BEGIN ENCRYPTED PRIVATE KEY-----"));
}

TEST_F(EncryptedPemTest, RightPassphraseDecrypts) {
  SecretBytes passphrase("correct horse");
  ASSERT_OK_AND_ASSIGN(PrivateKey parsed, PrivateKey::FromPem(pem_, &passphrase));
  EXPECT_EQ(parsed.Public(), key_->Public());
}

TEST_F(EncryptedPemTest, RefusesWithoutPassphrase) {
  EXPECT_THAT(PrivateKey::FromPem(pem_),
              HasError(Code::kFailedPrecondition, HasSubstr("passphrase is required")));
}

TEST_F(EncryptedPemTest, RefusesWrongPassphrase) {
  SecretBytes passphrase("battery staple");
  EXPECT_THAT(PrivateKey::FromPem(pem_, &passphrase),
              HasError(Code::kPermissionDenied, HasSubstr("wrong passphrase")));
}

TEST_F(EncryptedPemTest, RefusesEmptyPassphraseWhenEncrypting) {
  EXPECT_THAT(key_->ToEncryptedPem(SecretBytes("")),
              HasError(Code::kInvalidArgument, HasSubstr("passphrase is empty")));
}

TEST(KeyTest, UnencryptedPemIgnoresPassphrase) {
  ASSERT_OK_AND_ASSIGN(PrivateKey key, PrivateKey::Generate(KeyType::kP256));
  SecretBytes passphrase("unused");
  ASSERT_OK_AND_ASSIGN(PrivateKey parsed, PrivateKey::FromPem(PemOf(key), &passphrase));
  EXPECT_EQ(parsed.Public(), key.Public());
}

// --- Garbage ---

TEST(KeyTest, RejectsGarbagePrivateKeyPem) {
  struct Case {
    std::string name;
    std::string pem;
  };
  ASSERT_OK_AND_ASSIGN(PrivateKey key, PrivateKey::Generate(KeyType::kP256));
  std::string good = PemOf(key);
  for (const Case& c : std::vector<Case>{
           {"empty", ""},
           {"text", "not a key"},
           {"truncated", good.substr(0, good.size() / 2)},
           {"public key", key.Public().ToPem()},
           {"bad base64", "-----BEGIN PRIVATE KEY-----\n!!!!\n-----END PRIVATE KEY-----\n"}}) {
    SCOPED_TRACE(c.name);
    EXPECT_THAT(PrivateKey::FromPem(c.pem),
                HasError(Code::kInvalidArgument, HasSubstr("not a PEM private key")));
  }
}

TEST(KeyTest, RejectsGarbagePrivateKeyDer) {
  ASSERT_OK_AND_ASSIGN(PrivateKey key, PrivateKey::Generate(KeyType::kP256));
  Bytes der = PrivateKeyDer(key);
  Bytes truncated(der.begin(), der.begin() + static_cast<std::ptrdiff_t>(der.size() / 2));
  for (const Bytes& bad :
       {Bytes{}, Bytes{0x30, 0x03, 0x02, 0x01, 0x00}, truncated, Bytes(64, 0xff)}) {
    EXPECT_THAT(PrivateKey::FromDer(bad),
                HasError(Code::kInvalidArgument, HasSubstr("not a DER private key")));
  }
}

TEST(KeyTest, RejectsGarbagePublicKey) {
  EXPECT_THAT(PublicKey::FromPem("garbage"),
              HasError(Code::kInvalidArgument, HasSubstr("not a PEM public key")));
  EXPECT_THAT(PublicKey::FromDer(AsBytes("garbage")),
              HasError(Code::kInvalidArgument, HasSubstr("not a valid DER")));
  EXPECT_THAT(PublicKey::FromDer(Bytes{}),
              HasError(Code::kInvalidArgument, HasSubstr("not a valid DER")));
}

TEST(KeyTest, RejectsPublicKeyDerWithTrailingBytes) {
  ASSERT_OK_AND_ASSIGN(PrivateKey key, PrivateKey::Generate(KeyType::kP256));
  Bytes der = key.Public().SpkiDer();
  ASSERT_THAT(PublicKey::FromDer(der), IsOk());
  der.push_back(0x00);
  EXPECT_THAT(PublicKey::FromDer(der),
              HasError(Code::kInvalidArgument, HasSubstr("trailing bytes")));
}

// --- Device ID ---

TEST(DeviceIdTest, MatchesKnownAnswerFromOpenSslCli) {
  ASSERT_OK_AND_ASSIGN(PublicKey key, PublicKey::FromPem(kKnownPublicKeyPem));
  EXPECT_EQ(key.DeviceId(), kKnownDeviceId);
  EXPECT_EQ(DeviceIdFromSpki(key.SpkiDer()), kKnownDeviceId);
  EXPECT_EQ(key.Algorithm().Describe(), "EC P-256");
}

TEST(DeviceIdTest, IsLowercaseHexSha256OfSpki) {
  ASSERT_OK_AND_ASSIGN(PrivateKey key, PrivateKey::Generate(KeyType::kEd25519));
  std::string id = key.Public().DeviceId();
  EXPECT_THAT(id, MatchesRegex("[0-9a-f]{64}"));
  EXPECT_EQ(id, HexEncode(Sha256(key.Public().SpkiDer())));
}

TEST(DeviceIdTest, SameKeyFromPrivateAndPublicFormsHasSameId) {
  ASSERT_OK_AND_ASSIGN(PrivateKey key, PrivateKey::Generate(KeyType::kP384));
  ASSERT_OK_AND_ASSIGN(PrivateKey reparsed, PrivateKey::FromPem(PemOf(key)));
  ASSERT_OK_AND_ASSIGN(PublicKey pub, PublicKey::FromPem(key.Public().ToPem()));
  EXPECT_EQ(reparsed.Public().DeviceId(), key.Public().DeviceId());
  EXPECT_EQ(pub.DeviceId(), key.Public().DeviceId());
}

TEST(Sha256Test, MatchesFips180KnownAnswer) {
  EXPECT_EQ(HexEncode(Sha256(AsBytes("abc"))),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(HexEncode(Sha256(AsBytes(""))),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

// --- Algorithm of keys made elsewhere ---

TEST(KeyAlgorithmTest, DescribesWeakRsaKey) {
  OsslPtr<EVP_PKEY> rsa(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(1024)));
  ASSERT_NE(rsa, nullptr);
  ASSERT_OK_AND_ASSIGN(PublicKey key, PublicKey::FromNative(rsa.get()));
  KeyAlgorithm alg = key.Algorithm();
  EXPECT_EQ(alg.family, KeyAlgorithm::Family::kRsa);
  EXPECT_EQ(alg.bits, 1024);
  EXPECT_EQ(alg.Describe(), "RSA-1024");
}

TEST(KeyAlgorithmTest, DescribesWeakCurveByOpenSslName) {
  OsslPtr<EVP_PKEY> ec(EVP_EC_gen("P-192"));
  ASSERT_NE(ec, nullptr);
  ASSERT_OK_AND_ASSIGN(PublicKey key, PublicKey::FromNative(ec.get()));
  KeyAlgorithm alg = key.Algorithm();
  EXPECT_EQ(alg.family, KeyAlgorithm::Family::kEc);
  EXPECT_EQ(alg.bits, 192);
  EXPECT_EQ(alg.Describe(), "EC prime192v1");
  EXPECT_THAT(alg.Describe(), Not(AnyOf(HasSubstr("P-256"), HasSubstr("P-384"))));
}

TEST(KeyAlgorithmTest, DescribesP521ByNistName) {
  OsslPtr<EVP_PKEY> ec(EVP_EC_gen("P-521"));
  ASSERT_NE(ec, nullptr);
  ASSERT_OK_AND_ASSIGN(PublicKey key, PublicKey::FromNative(ec.get()));
  EXPECT_EQ(key.Algorithm().Describe(), "EC P-521");
}

TEST(KeyAlgorithmTest, RsaPrivateKeyLoadsAndSigns) {
  OsslPtr<EVP_PKEY> rsa(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(2048)));
  ASSERT_NE(rsa, nullptr);
  ASSERT_OK_AND_ASSIGN(PrivateKey key, PrivateKey::FromNative(std::move(rsa)));
  EXPECT_EQ(key.Public().Algorithm().Describe(), "RSA-2048");
  ASSERT_OK_AND_ASSIGN(Bytes sig, key.Sign(AsBytes("data")));
  EXPECT_THAT(key.Public().Verify(AsBytes("data"), sig), IsOk());
}

// --- SubjectPublicKeyInfo validation ---

// The P-256 SubjectPublicKeyInfo prefix (id-ecPublicKey, prime256v1, 66-byte BIT STRING).
constexpr char kP256SpkiPrefix[] = "3059301306072a8648ce3d020106082a8648ce3d030107034200";
// The P-256 base point G, uncompressed: a valid public key nobody should use.
constexpr char kP256Generator[] =
    "046b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296"
    "4fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5";

Bytes Hex(const std::string& hex) {
  auto bytes = HexDecode(hex);
  EXPECT_THAT(bytes, IsOk());
  return bytes ? *bytes : Bytes();
}

TEST(SpkiTest, AcceptsPointOnCurve) {
  ASSERT_OK_AND_ASSIGN(PublicKey key,
                       PublicKey::FromDer(Hex(std::string(kP256SpkiPrefix) + kP256Generator)));
  EXPECT_EQ(key.Algorithm().Describe(), "EC P-256");
}

TEST(SpkiTest, RejectsPointNotOnCurve) {
  std::string point = kP256Generator;
  point.back() = '4';  // y - 1: no longer satisfies the curve equation
  EXPECT_THAT(PublicKey::FromDer(Hex(std::string(kP256SpkiPrefix) + point)),
              HasError(Code::kInvalidArgument, HasSubstr("not a valid point")));
}

// DISABLED: PublicKey::FromDer accepts the point at infinity (BIT STRING "00") as a P-256 key.
// EVP_PKEY_fromdata decodes it without complaint (so does OpenSSL's own d2i_PUBKEY), and
// OpenSSL's ECDSA verification does not reject an infinite public key, so anybody can forge
// signatures for it: with s = 1 and r = x(H(m)*G) mod n, every message verifies. A CSR carrying
// this key therefore passes VerifySignature without any private key (see
// CsrForgeryTest.RejectsForgedRequestForPointAtInfinity). Enable once key import runs
// EVP_PKEY_public_check (or rejects the infinity encoding).
TEST(SpkiTest, RejectsPointAtInfinity) {
  EXPECT_THAT(PublicKey::FromDer(Hex("3019301306072a8648ce3d020106082a8648ce3d03010703020000")),
              HasError(Code::kInvalidArgument, HasSubstr("point")));
}

TEST(SpkiTest, RejectsUnknownCurve) {
  // id-ecPublicKey with namedCurve 1.2.3.4.5.
  EXPECT_THAT(PublicKey::FromDer(Hex(std::string("3055300f06072a8648ce3d020106042a030405034200") +
                                     kP256Generator)),
              HasError(Code::kInvalidArgument, HasSubstr("unknown curve")));
}

TEST(SpkiTest, AcceptsEd25519KeyOfRightLength) {
  ASSERT_OK_AND_ASSIGN(PrivateKey key, PrivateKey::Generate(KeyType::kEd25519));
  const Bytes& der = key.Public().SpkiDer();
  ASSERT_EQ(der.size(), 44u);
  ASSERT_OK_AND_ASSIGN(PublicKey parsed, PublicKey::FromDer(der));
  EXPECT_EQ(parsed, key.Public());
}

TEST(SpkiTest, RejectsMalformedEd25519Keys) {
  struct Case {
    std::string name;
    std::string hex;
    std::string message;
  };
  const std::string key31(62, 'a');
  const std::string key32(64, 'a');
  for (const Case& c : std::vector<Case>{
           {"31-byte key",
            "3029300506032b657003200"
            "0" +
                key31,
            "not 32 bytes"},
           {"NULL parameters", "302c300706032b65700500032100" + key32, "algorithm parameters"}}) {
    SCOPED_TRACE(c.name);
    EXPECT_THAT(PublicKey::FromDer(Hex(c.hex)),
                HasError(Code::kInvalidArgument, HasSubstr(c.message)));
  }
}

TEST(SpkiTest, DeviceIdIsOverTheSpkiAsReceived) {
  // Re-encoding must not change what a device is called.
  Bytes der = Hex(std::string(kP256SpkiPrefix) + kP256Generator);
  ASSERT_OK_AND_ASSIGN(PublicKey key, PublicKey::FromDer(der));
  EXPECT_EQ(key.SpkiDer(), der);
  EXPECT_EQ(key.DeviceId(), DeviceIdFromSpki(der));
}

TEST(SpkiTest, RsaKeyParsesFromDer) {
  OsslPtr<EVP_PKEY> rsa(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(1024)));
  ASSERT_NE(rsa, nullptr);
  ASSERT_OK_AND_ASSIGN(PublicKey native, PublicKey::FromNative(rsa.get()));
  ASSERT_OK_AND_ASSIGN(PublicKey parsed, PublicKey::FromDer(native.SpkiDer()));
  EXPECT_EQ(parsed, native);
  EXPECT_EQ(parsed.Algorithm().Describe(), "RSA-1024");
}

TEST(KeyTest, FromNativeRejectsNull) {
  EXPECT_THAT(PrivateKey::FromNative(nullptr),
              HasError(Code::kInvalidArgument, HasSubstr("no private key")));
  EXPECT_THAT(PublicKey::FromNative(nullptr),
              HasError(Code::kInvalidArgument, HasSubstr("no public key")));
}

TEST(SpkiTest, CompressedPointHasTheSameDeviceIdAsUncompressed) {
  ASSERT_OK_AND_ASSIGN(PrivateKey key, PrivateKey::Generate(KeyType::kP256));
  OsslPtr<EVP_PKEY> copy(EVP_PKEY_dup(key.native()));
  ASSERT_EQ(EVP_PKEY_set_utf8_string_param(copy.get(), OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT,
                                           "compressed"),
            1);
  unsigned char* der = nullptr;
  int len = i2d_PUBKEY(copy.get(), &der);
  ASSERT_GT(len, 0);
  Bytes compressed(der, der + len);
  OPENSSL_free(der);
  ASSERT_LT(compressed.size(), key.Public().SpkiDer().size());
  ASSERT_OK_AND_ASSIGN(PublicKey parsed, PublicKey::FromDer(compressed));
  EXPECT_EQ(parsed.DeviceId(), key.Public().DeviceId());
  EXPECT_EQ(parsed.SpkiDer(), key.Public().SpkiDer());
}

class WeakEd25519Test : public ::testing::TestWithParam<std::string> {};

// A small-order Ed25519 key lets anybody forge signatures (OpenSSL's verify accepts them), like
// the EC point at infinity.
TEST_P(WeakEd25519Test, SmallOrderOrNonCanonicalKeyIsRefused) {
  EXPECT_THAT(PublicKey::FromDer(Hex("302a300506032b6570032100" + GetParam())),
              HasError(Code::kInvalidArgument, HasSubstr("small-order")));
}

INSTANTIATE_TEST_SUITE_P(
    Keys, WeakEd25519Test,
    ::testing::Values(std::string(64, '0'), "01" + std::string(62, '0'),
                      "0000000000000000000000000000000000000000000000000000000000000080",
                      "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
                      "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
                      "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
                      "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
                      "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"));

TEST(SpkiTest, CompressedKeyGetsTheSameDeviceIdOnEveryPath) {
  ASSERT_OK_AND_ASSIGN(PrivateKey key, PrivateKey::Generate(KeyType::kP256));
  OsslPtr<EVP_PKEY> compressed(EVP_PKEY_dup(key.native()));
  ASSERT_EQ(EVP_PKEY_set_utf8_string_param(
                compressed.get(), OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT, "compressed"),
            1);
  ASSERT_OK_AND_ASSIGN(PublicKey from_native, PublicKey::FromNative(compressed.get()));
  EXPECT_EQ(from_native.DeviceId(), key.Public().DeviceId());
  // The certificate path: a self-signed certificate over the compressed key, parsed.
  OsslPtr<X509> x(X509_new());
  X509_set_version(x.get(), X509_VERSION_3);
  ASN1_INTEGER_set(X509_get_serialNumber(x.get()), 1);
  X509_gmtime_adj(X509_getm_notBefore(x.get()), 0);
  X509_gmtime_adj(X509_getm_notAfter(x.get()), 3600);
  X509_set_pubkey(x.get(), compressed.get());
  ASSERT_GT(X509_sign(x.get(), key.native(), EVP_sha256()), 0);
  unsigned char* der = nullptr;
  int len = i2d_X509(x.get(), &der);
  ASSERT_GT(len, 0);
  Bytes cert_der(der, der + len);
  OPENSSL_free(der);
  ASSERT_OK_AND_ASSIGN(Certificate cert, Certificate::FromDer(cert_der));
  EXPECT_EQ(cert.Key().DeviceId(), key.Public().DeviceId());
}

TEST(SpkiTest, EcKeyWithExplicitCurveParametersIsRefused) {
  OsslPtr<EVP_PKEY_CTX> ctx(EVP_PKEY_CTX_new_from_name(nullptr, "EC", nullptr));
  ASSERT_TRUE(ctx);
  ASSERT_EQ(EVP_PKEY_keygen_init(ctx.get()), 1);
  char group[] = "P-256";
  char encoding[] = "explicit";
  OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, group, 0),
                         OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_EC_ENCODING, encoding, 0),
                         OSSL_PARAM_construct_end()};
  ASSERT_EQ(EVP_PKEY_CTX_set_params(ctx.get(), params), 1);
  EVP_PKEY* raw = nullptr;
  ASSERT_EQ(EVP_PKEY_keygen(ctx.get(), &raw), 1);
  OsslPtr<EVP_PKEY> key(raw);
  unsigned char* der = nullptr;
  int len = i2d_PUBKEY(key.get(), &der);
  ASSERT_GT(len, 0);
  Bytes spki(der, der + len);
  OPENSSL_free(der);
  EXPECT_THAT(PublicKey::FromDer(spki),
              HasError(Code::kInvalidArgument, HasSubstr("explicit parameters")));
}

}  // namespace
}  // namespace hallmark
