#include "core/external_key.h"

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "core/certificate_builder.h"
#include "core/csr.h"
#include "core/ossl.h"
#include "testing/matchers.h"

namespace hallmark {
namespace {

using ::hallmark::testing::HasError;
using ::hallmark::testing::IsOk;
using ::testing::HasSubstr;

// SoftwareSigner stands in for hardware: it signs digests with a key held in this process and
// counts the calls, so that tests see every signature go through the signer.
class SoftwareSigner : public ExternalSigner {
 public:
  explicit SoftwareSigner(PrivateKey key) : key_(std::move(key)) {}
  Result<Bytes> SignDigest(std::span<const uint8_t> digest) override {
    ++calls;
    OsslPtr<EVP_PKEY_CTX> ctx(EVP_PKEY_CTX_new(key_.native(), nullptr));
    size_t len = 0;
    if (!ctx || EVP_PKEY_sign_init(ctx.get()) != 1 ||
        EVP_PKEY_sign(ctx.get(), nullptr, &len, digest.data(), digest.size()) != 1) {
      return OsslError("EVP_PKEY_sign");
    }
    Bytes sig(len);
    if (EVP_PKEY_sign(ctx.get(), sig.data(), &len, digest.data(), digest.size()) != 1) {
      return OsslError("EVP_PKEY_sign");
    }
    sig.resize(len);
    return sig;
  }
  std::atomic<int> calls{0};

 private:
  PrivateKey key_;
};

// FailingSigner is hardware that has gone away.
class FailingSigner : public ExternalSigner {
 public:
  Result<Bytes> SignDigest(std::span<const uint8_t>) override {
    return Error(Code::kUnavailable, "token was removed");
  }
};

struct Wrapped {
  std::shared_ptr<SoftwareSigner> signer;
  PrivateKey key;
};

Wrapped Wrap(KeyType type) {
  auto inner = PrivateKey::Generate(type);
  EXPECT_THAT(inner, IsOk());
  PublicKey pub = inner->Public();
  auto signer = std::make_shared<SoftwareSigner>(std::move(*inner));
  auto key = WrapExternalKey(pub, signer);
  EXPECT_THAT(key, IsOk());
  return Wrapped{signer, std::move(*key)};
}

class ExternalKeyTest : public ::testing::TestWithParam<KeyType> {};

TEST_P(ExternalKeyTest, SignsThroughTheSignerAndVerifies) {
  Wrapped w = Wrap(GetParam());
  const Bytes data = {1, 2, 3};
  ASSERT_OK_AND_ASSIGN(Bytes sig, w.key.Sign(data));
  EXPECT_EQ(w.signer->calls, 1);
  EXPECT_THAT(w.key.Public().Verify(data, sig), IsOk());
  EXPECT_THAT(w.key.Public().Verify(Bytes{1, 2, 4}, sig),
              HasError(Code::kUnauthenticated, HasSubstr("does not verify")));
  EXPECT_TRUE(IsExternalKey(w.key));
}

TEST_P(ExternalKeyTest, SignsCsrsAndCertificates) {
  Wrapped w = Wrap(GetParam());
  DistinguishedName subject;
  subject.common_name = "external";
  ASSERT_OK_AND_ASSIGN(Csr csr, Csr::Create(w.key, subject, {}));
  EXPECT_THAT(csr.VerifySignature(), IsOk());
  EXPECT_EQ(csr.Key().DeviceId(), w.key.Public().DeviceId());

  CertificateTemplate t;
  t.serial = Bytes{0x01};
  t.subject = subject;
  t.not_before = 1700000000;
  t.not_after = 1800000000;
  t.is_ca = true;
  t.key_usage = kKeyCertSign;
  // Twice: the second signature comes from the copied signing context.
  for (int i = 0; i < 2; ++i) {
    ASSERT_OK_AND_ASSIGN(Certificate cert, SignCertificate(t, w.key.Public(), nullptr, w.key));
    EXPECT_EQ(X509_verify(cert.native(), w.key.Public().native()), 1);
  }
  EXPECT_GE(w.signer->calls, 3);
}

TEST_P(ExternalKeyTest, CannotBeExported) {
  Wrapped w = Wrap(GetParam());
  EXPECT_FALSE(w.key.ToPem(SecretAccess::Grant()).has_value());
  EXPECT_FALSE(w.key.ToEncryptedPem(SecretBytes(std::string_view("pass"))).has_value());
}

TEST_P(ExternalKeyTest, SignsFromManyThreads) {
  Wrapped w = Wrap(GetParam());
  std::atomic<int> good{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&]() {
      for (int i = 0; i < 10; ++i) {
        Bytes data = {static_cast<uint8_t>(i)};
        auto sig = w.key.Sign(data);
        if (sig && w.key.Public().Verify(data, *sig)) {
          ++good;
        }
      }
    });
  }
  for (auto& t : threads) {
    t.join();
  }
  EXPECT_EQ(good, 40);
}

INSTANTIATE_TEST_SUITE_P(Curves, ExternalKeyTest, ::testing::Values(KeyType::kP256, KeyType::kP384),
                         [](const auto& row) { return std::string(KeyTypeName(row.param)); });

TEST(ExternalKey, ReportsTheSignersFailure) {
  ASSERT_OK_AND_ASSIGN(PrivateKey inner, PrivateKey::Generate(KeyType::kP256));
  ASSERT_OK_AND_ASSIGN(PrivateKey key,
                       WrapExternalKey(inner.Public(), std::make_shared<FailingSigner>()));
  auto sig = key.Sign(Bytes{1});
  ASSERT_FALSE(sig.has_value());
  EXPECT_THAT(sig.error().detail(), HasSubstr("token was removed"));
}

TEST(ExternalKey, RefusesEd25519) {
  ASSERT_OK_AND_ASSIGN(PrivateKey inner, PrivateKey::Generate(KeyType::kEd25519));
  EXPECT_THAT(WrapExternalKey(inner.Public(), std::make_shared<FailingSigner>()),
              HasError(Code::kInvalidArgument, HasSubstr("must be EC")));
}

TEST(ExternalKey, FileKeysAreNotExternal) {
  ASSERT_OK_AND_ASSIGN(PrivateKey key, PrivateKey::Generate(KeyType::kP256));
  EXPECT_FALSE(IsExternalKey(key));
}

TEST(EcPublicKeyFromPoint, RebuildsTheSameKey) {
  ASSERT_OK_AND_ASSIGN(PrivateKey key, PrivateKey::Generate(KeyType::kP384));
  unsigned char point[200];
  size_t len = 0;
  ASSERT_EQ(EVP_PKEY_get_octet_string_param(key.Public().native(), "encoded-pub-key", point,
                                            sizeof(point), &len),
            1);
  ASSERT_OK_AND_ASSIGN(PublicKey pub,
                       EcPublicKeyFromPoint("P-384", std::span<const uint8_t>(point, len)));
  EXPECT_EQ(pub, key.Public());
  point[len - 1] ^= 1;
  EXPECT_THAT(EcPublicKeyFromPoint("secp384r1", std::span<const uint8_t>(point, len)),
              HasError(Code::kInvalidArgument, HasSubstr("not a valid point")));
  EXPECT_THAT(EcPublicKeyFromPoint("brainpoolP999", std::span<const uint8_t>(point, len)),
              HasError(Code::kInvalidArgument, HasSubstr("unknown EC curve")));
}

}  // namespace
}  // namespace hallmark
