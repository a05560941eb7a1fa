// Every device key store against real key hardware: a file, a SoftHSM2 token, a swtpm TPM 2.0.
// Each store creates, loads, signs (raw, CSR, TLS 1.3 client authentication) and refuses what
// it must refuse.
#include "device/key_store.h"

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <fstream>
#include <memory>
#include <string>

#include "core/certificate_builder.h"
#include "core/clock.h"
#include "core/csr.h"
#include "core/external_key.h"
#include "core/file.h"
#include "core/ossl.h"
#include "device/key_store_factory.h"
#include "device/tls_client.h"
#include "testing/matchers.h"
#include "testing/softhsm.h"
#include "testing/swtpm.h"

namespace hallmark::device {
namespace {

using ::hallmark::testing::HasError;
using ::hallmark::testing::IsOk;
using ::hallmark::testing::SoftHsm;
using ::hallmark::testing::Swtpm;
using ::hallmark::testing::TempDir;
using ::testing::HasSubstr;

constexpr char kPin[] = "2468";

enum class Kind { kFile, kPkcs11, kTpm };

std::string KindName(Kind k) {
  switch (k) {
    case Kind::kFile:
      return "file";
    case Kind::kPkcs11:
      return "pkcs11";
    case Kind::kTpm:
      return "tpm";
  }
  return "?";
}

// Handshake runs a TLS 1.3 handshake in memory between a client authenticating with `key` and
// `cert` and a server that demands a client certificate. OK only if the server accepted the
// client's CertificateVerify, which the client's key store signed.
Status Handshake(const PrivateKey& key, const Certificate& cert) {
  auto server_key = PrivateKey::Generate(KeyType::kP256);
  if (!server_key) {
    return server_key.error();
  }
  auto server_cert = SelfSignedCertificate(*server_key, SystemClock());
  if (!server_cert) {
    return server_cert.error();
  }
  OsslPtr<SSL_CTX> sctx(SSL_CTX_new(TLS_server_method()));
  OsslPtr<SSL_CTX> cctx(SSL_CTX_new(TLS_client_method()));
  if (!sctx || !cctx || SSL_CTX_use_certificate(sctx.get(), server_cert->native()) != 1 ||
      SSL_CTX_use_PrivateKey(sctx.get(), server_key->native()) != 1 ||
      SSL_CTX_use_certificate(cctx.get(), cert.native()) != 1 ||
      SSL_CTX_use_PrivateKey(cctx.get(), key.native()) != 1 ||
      SSL_CTX_check_private_key(cctx.get()) != 1) {
    return OsslError("setting up the TLS contexts");
  }
  for (SSL_CTX* c : {sctx.get(), cctx.get()}) {
    SSL_CTX_set_min_proto_version(c, TLS1_3_VERSION);
  }
  // Trust is not under test here, only the signature: accept any certificate.
  SSL_CTX_set_verify(sctx.get(), SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT,
                     [](int, X509_STORE_CTX*) { return 1; });
  SSL_CTX_set_verify(cctx.get(), SSL_VERIFY_NONE, nullptr);
  OsslPtr<SSL> server(SSL_new(sctx.get()));
  OsslPtr<SSL> client(SSL_new(cctx.get()));
  BIO* client_bio = nullptr;
  BIO* server_bio = nullptr;
  if (!server || !client || BIO_new_bio_pair(&client_bio, 0, &server_bio, 0) != 1) {
    return OsslError("BIO_new_bio_pair");
  }
  // SSL_set_bio takes ownership of the BIOs.
  SSL_set_bio(client.get(), client_bio, client_bio);
  SSL_set_bio(server.get(), server_bio, server_bio);
  SSL_set_connect_state(client.get());
  SSL_set_accept_state(server.get());
  bool client_done = false;
  bool server_done = false;
  for (int round = 0; round < 20 && !(client_done && server_done); ++round) {
    if (!client_done) {
      int rc = SSL_do_handshake(client.get());
      if (rc == 1) {
        client_done = true;
      } else if (SSL_get_error(client.get(), rc) != SSL_ERROR_WANT_READ) {
        return OsslError(Code::kUnauthenticated, "client handshake failed");
      }
    }
    if (!server_done) {
      int rc = SSL_do_handshake(server.get());
      if (rc == 1) {
        server_done = true;
      } else if (SSL_get_error(server.get(), rc) != SSL_ERROR_WANT_READ) {
        return OsslError(Code::kUnauthenticated, "server refused the client");
      }
    }
  }
  if (!server_done || SSL_get0_peer_certificate(server.get()) == nullptr) {
    return Error(Code::kUnauthenticated, "handshake did not complete");
  }
  return OkStatus();
}

class KeyStoreTest : public ::testing::TestWithParam<Kind> {
 protected:
  void SetUp() override {
    if (GetParam() == Kind::kPkcs11) {
      if (SoftHsm::Module().empty()) {
        GTEST_SKIP() << "SoftHSM2 is not installed (scripts/install-deps.sh)";
      }
      hsm_ = std::make_unique<SoftHsm>();
      ASSERT_TRUE(hsm_->InitToken("device", kPin));
    }
    if (GetParam() == Kind::kTpm) {
      tpm_ = std::make_unique<Swtpm>();
      ASSERT_TRUE(tpm_->ok()) << tpm_->error();
    }
  }

  std::string Spec() const {
    switch (GetParam()) {
      case Kind::kFile:
        return "file:" + dir_ / "key.pem";
      case Kind::kPkcs11:
        return SoftHsm::Spec("device", "identity");
      case Kind::kTpm:
        return "tpm:key=" + dir_ / "key.tss2" + ";tcti=" + tpm_->Tcti();
    }
    return "";
  }

  std::unique_ptr<KeyStore> Store(std::string spec = "", const char* pin = kPin) const {
    KeyStoreOptions options;
    if (pin != nullptr) {
      options.pin = SecretBytes(std::string_view(pin));
    }
    auto store = OpenKeyStore(spec.empty() ? Spec() : spec, std::move(options));
    EXPECT_THAT(store, IsOk());
    return store ? std::move(*store) : nullptr;
  }

  bool IsHardware() const { return GetParam() != Kind::kFile; }

  TempDir dir_;
  std::unique_ptr<SoftHsm> hsm_;
  std::unique_ptr<Swtpm> tpm_;
};

TEST_P(KeyStoreTest, CreatedKeyLoadsSignsAndVerifies) {
  ASSERT_OK_AND_ASSIGN(PublicKey pub, Store()->Create(KeyType::kP256));
  ASSERT_OK_AND_ASSIGN(PrivateKey key, Store()->Load());
  EXPECT_EQ(key.Public(), pub);
  EXPECT_EQ(key.Public().DeviceId(), pub.DeviceId());
  EXPECT_EQ(IsExternalKey(key), IsHardware());
  const Bytes data = {'h', 'i'};
  ASSERT_OK_AND_ASSIGN(Bytes sig, key.Sign(data));
  EXPECT_THAT(pub.Verify(data, sig), IsOk());
  EXPECT_THAT(pub.Verify(Bytes{'h', 'o'}, sig), HasError(Code::kUnauthenticated, HasSubstr("")));
}

TEST_P(KeyStoreTest, SignsCsrsWithProofOfPossession) {
  ASSERT_OK_AND_ASSIGN(PublicKey pub, Store()->Create(KeyType::kP256));
  ASSERT_OK_AND_ASSIGN(PrivateKey key, Store()->Load());
  DistinguishedName subject;
  subject.serial_number = "DEV-1";
  ASSERT_OK_AND_ASSIGN(Csr csr, Csr::Create(key, subject, {}));
  EXPECT_THAT(csr.VerifySignature(), IsOk());
  EXPECT_EQ(csr.Key(), pub);
}

TEST_P(KeyStoreTest, AuthenticatesTls13Handshakes) {
  ASSERT_THAT(Store()->Create(KeyType::kP256), IsOk());
  ASSERT_OK_AND_ASSIGN(PrivateKey key, Store()->Load());
  ASSERT_OK_AND_ASSIGN(Certificate cert, SelfSignedCertificate(key, SystemClock()));
  EXPECT_EQ(X509_verify(cert.native(), key.Public().native()), 1);
  EXPECT_THAT(Handshake(key, cert), IsOk());
}

// The attack twin: a certificate for the store's key presented with another key fails.
TEST_P(KeyStoreTest, HandshakeWithAnotherKeysCertificateFails) {
  ASSERT_THAT(Store()->Create(KeyType::kP256), IsOk());
  ASSERT_OK_AND_ASSIGN(PrivateKey key, Store()->Load());
  ASSERT_OK_AND_ASSIGN(PrivateKey other, PrivateKey::Generate(KeyType::kP256));
  ASSERT_OK_AND_ASSIGN(Certificate cert, SelfSignedCertificate(other, SystemClock()));
  EXPECT_FALSE(Handshake(key, cert).has_value());
  ERR_clear_error();
}

TEST_P(KeyStoreTest, P384KeysWork) {
  ASSERT_OK_AND_ASSIGN(PublicKey pub, Store()->Create(KeyType::kP384));
  EXPECT_EQ(pub.Algorithm().Describe(), "EC P-384");
  ASSERT_OK_AND_ASSIGN(PrivateKey key, Store()->Load());
  ASSERT_OK_AND_ASSIGN(Bytes sig, key.Sign(Bytes{1, 2}));
  EXPECT_THAT(pub.Verify(Bytes{1, 2}, sig), IsOk());
}

TEST_P(KeyStoreTest, RefusesToReplaceAnIdentity) {
  ASSERT_OK_AND_ASSIGN(PublicKey first, Store()->Create(KeyType::kP256));
  EXPECT_THAT(Store()->Create(KeyType::kP256),
              HasError(Code::kAlreadyExists, HasSubstr("refusing to replace")));
  ASSERT_OK_AND_ASSIGN(PrivateKey key, Store()->Load());
  EXPECT_EQ(key.Public(), first);
}

TEST_P(KeyStoreTest, LoadWithoutCreateIsNotFound) {
  EXPECT_THAT(Store()->Load(), HasError(Code::kNotFound, HasSubstr("")));
}

TEST_P(KeyStoreTest, Ed25519OnlyWhereTheHardwareHasIt) {
  auto pub = Store()->Create(KeyType::kEd25519);
  if (IsHardware()) {
    EXPECT_THAT(pub, HasError(Code::kInvalidArgument, HasSubstr("ed25519")));
    EXPECT_THAT(Store()->Load(), HasError(Code::kNotFound, HasSubstr("")));
  } else {
    EXPECT_THAT(pub, IsOk());
  }
}

TEST_P(KeyStoreTest, HardwareKeysCannotBeExported) {
  ASSERT_THAT(Store()->Create(KeyType::kP256), IsOk());
  ASSERT_OK_AND_ASSIGN(PrivateKey key, Store()->Load());
  EXPECT_EQ(key.ToPem(SecretAccess::Grant()).has_value(), !IsHardware());
}

INSTANTIATE_TEST_SUITE_P(Stores, KeyStoreTest,
                         ::testing::Values(Kind::kFile, Kind::kPkcs11, Kind::kTpm),
                         [](const auto& row) { return KindName(row.param); });

// --- PKCS#11: token errors ---

class Pkcs11StoreTest : public KeyStoreTest {};

TEST_P(Pkcs11StoreTest, WrongPinIsRefusedAndCreatesNothing) {
  EXPECT_THAT(Store("", "0000")->Create(KeyType::kP256),
              HasError(Code::kPermissionDenied, HasSubstr("wrong PIN")));
  EXPECT_THAT(Store("", "0000")->Load(), HasError(Code::kPermissionDenied, HasSubstr("wrong PIN")));
  EXPECT_THAT(Store()->Load(), HasError(Code::kNotFound, HasSubstr("no private key")));
}

TEST_P(Pkcs11StoreTest, MissingPinSaysHowToGiveIt) {
  EXPECT_THAT(Store("", nullptr)->Load(),
              HasError(Code::kFailedPrecondition, HasSubstr("HALLMARK_PIN")));
}

TEST_P(Pkcs11StoreTest, MissingTokenIsNotFound) {
  EXPECT_THAT(Store(SoftHsm::Spec("absent", "identity"))->Create(KeyType::kP256),
              HasError(Code::kNotFound, HasSubstr("no token labelled 'absent'")));
}

TEST_P(Pkcs11StoreTest, MissingModuleIsNotFound) {
  EXPECT_THAT(Store("pkcs11:module=" + dir_ / "none.so" + ";token=device")->Load(),
              HasError(Code::kNotFound, HasSubstr("none.so does not exist")));
}

INSTANTIATE_TEST_SUITE_P(Token, Pkcs11StoreTest, ::testing::Values(Kind::kPkcs11),
                         [](const auto& row) { return KindName(row.param); });

// --- TPM: emulator and blob errors ---

class TpmStoreTest : public KeyStoreTest {};

TEST_P(TpmStoreTest, UnreachableTpmIsUnavailableAndWritesNothing) {
  const std::string spec = "tpm:key=" + dir_ / "key.tss2" + ";tcti=swtpm:path=" + dir_ / "none";
  EXPECT_THAT(Store(spec)->Create(KeyType::kP256),
              HasError(Code::kUnavailable, HasSubstr("cannot reach the TPM")));
  EXPECT_FALSE(FileExists(dir_ / "key.tss2"));
}

TEST_P(TpmStoreTest, StoppedTpmIsUnavailable) {
  ASSERT_THAT(Store()->Create(KeyType::kP256), IsOk());
  ASSERT_TRUE(tpm_->Stop());
  EXPECT_THAT(Store()->Load(), HasError(Code::kUnavailable, HasSubstr("is the TPM, or swtpm")));
}

TEST_P(TpmStoreTest, BlobFromAnotherTpmDoesNotLoad) {
  ASSERT_THAT(Store()->Create(KeyType::kP256), IsOk());
  Swtpm other;
  ASSERT_TRUE(other.ok()) << other.error();
  const std::string spec = "tpm:key=" + dir_ / "key.tss2" + ";tcti=" + other.Tcti();
  EXPECT_THAT(Store(spec)->Load(),
              HasError(Code::kFailedPrecondition, HasSubstr("made by another TPM")));
}

TEST_P(TpmStoreTest, CorruptBlobDoesNotLoad) {
  ASSERT_THAT(Store()->Create(KeyType::kP256), IsOk());
  ASSERT_OK_AND_ASSIGN(std::string blob, ReadFile(dir_ / "key.tss2"));
  // Flip a character in the middle of the base64 body.
  size_t mid = blob.size() / 2;
  blob[mid] = blob[mid] == 'A' ? 'B' : 'A';
  ASSERT_THAT(WriteFileAtomic(dir_ / "key.tss2", blob, 0600), IsOk());
  EXPECT_THAT(Store()->Load(), HasError(Code::kFailedPrecondition, HasSubstr("cannot be loaded")));
}

TEST_P(TpmStoreTest, BlobFileIsPrivate) {
  ASSERT_THAT(Store()->Create(KeyType::kP256), IsOk());
  EXPECT_THAT(CheckPrivateFile(dir_ / "key.tss2"), IsOk());
  ASSERT_OK_AND_ASSIGN(std::string blob, ReadFile(dir_ / "key.tss2"));
  EXPECT_THAT(blob, HasSubstr("-----BEGIN TSS2 PRIVATE KEY-----"));
}

INSTANTIATE_TEST_SUITE_P(Emulator, TpmStoreTest, ::testing::Values(Kind::kTpm),
                         [](const auto& row) { return KindName(row.param); });

}  // namespace
}  // namespace hallmark::device
