#include "core/key.h"

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/sha.h>

#include <cstring>

namespace hallmark {
namespace {

std::shared_ptr<EVP_PKEY> Share(OsslPtr<EVP_PKEY> key) {
  return std::shared_ptr<EVP_PKEY>(key.release(), EVP_PKEY_free);
}

Result<Bytes> EncodeSpki(EVP_PKEY* key) {
  int len = i2d_PUBKEY(key, nullptr);
  if (len <= 0) {
    return OsslError("encoding SubjectPublicKeyInfo");
  }
  Bytes der(static_cast<size_t>(len));
  unsigned char* p = der.data();
  if (i2d_PUBKEY(key, &p) != len) {
    return OsslError("encoding SubjectPublicKeyInfo");
  }
  return der;
}

const EVP_MD* DigestFor(EVP_PKEY* key) {
  int id = EVP_PKEY_get_base_id(key);
  if (id == EVP_PKEY_ED25519 || id == EVP_PKEY_ED448) {
    return nullptr;
  }
  int bits = EVP_PKEY_get_bits(key);
  if (id == EVP_PKEY_EC && bits > 384) {
    return EVP_sha512();
  }
  if (id == EVP_PKEY_EC && bits > 256) {
    return EVP_sha384();
  }
  return EVP_sha256();
}

// PassphraseCallback hands OpenSSL the passphrase, or refuses (-1) when there is none so that
// OpenSSL never prompts on a terminal.
int PassphraseCallback(char* buf, int size, int /*rwflag*/, void* u) {
  const auto* passphrase = static_cast<const SecretBytes*>(u);
  if (passphrase == nullptr) {
    return -1;
  }
  std::string_view p = passphrase->view(SecretAccess::Grant());
  if (p.size() > static_cast<size_t>(size)) {
    return -1;
  }
  std::memcpy(buf, p.data(), p.size());
  return static_cast<int>(p.size());
}

}  // namespace

Result<KeyType> ParseKeyType(std::string_view name) {
  if (name == "p256" || name == "ecdsa-p256" || name == "P-256") {
    return KeyType::kP256;
  }
  if (name == "p384" || name == "ecdsa-p384" || name == "P-384") {
    return KeyType::kP384;
  }
  if (name == "ed25519" || name == "Ed25519") {
    return KeyType::kEd25519;
  }
  return Error(Code::kInvalidArgument,
               "unknown key type '" + std::string(name) + "'; expected p256, p384 or ed25519");
}

std::string_view KeyTypeName(KeyType type) {
  switch (type) {
    case KeyType::kP256:
      return "p256";
    case KeyType::kP384:
      return "p384";
    case KeyType::kEd25519:
      return "ed25519";
  }
  return "unknown";
}

std::string KeyAlgorithm::Describe() const {
  switch (family) {
    case Family::kEc:
      return "EC " + curve;
    case Family::kEd25519:
      return "Ed25519";
    case Family::kEd448:
      return "Ed448";
    case Family::kRsa:
      return "RSA-" + std::to_string(bits);
    case Family::kOther:
      break;
  }
  return "unsupported key algorithm";
}

Bytes Sha256(std::span<const uint8_t> data) {
  Bytes out(SHA256_DIGEST_LENGTH);
  SHA256(data.data(), data.size(), out.data());
  return out;
}

std::string DeviceIdFromSpki(std::span<const uint8_t> spki) { return HexEncode(Sha256(spki)); }

// --- PublicKey ---

Result<PublicKey> PublicKey::FromNative(EVP_PKEY* key) {
  OsslPtr<EVP_PKEY> owned = UpRef(key);
  if (!owned) {
    return Error(Code::kInvalidArgument, "no public key");
  }
  auto spki = EncodeSpki(owned.get());
  if (!spki) {
    return spki.error();
  }
  return PublicKey(Share(std::move(owned)), std::move(*spki));
}

Result<PublicKey> PublicKey::FromDer(std::span<const uint8_t> spki) {
  const unsigned char* p = spki.data();
  OsslPtr<EVP_PKEY> key(d2i_PUBKEY(nullptr, &p, static_cast<long>(spki.size())));
  if (!key) {
    return OsslError(Code::kInvalidArgument, "public key is not a valid DER SubjectPublicKeyInfo");
  }
  if (p != spki.data() + spki.size()) {
    return Error(Code::kInvalidArgument, "public key DER has trailing bytes");
  }
  auto der = EncodeSpki(key.get());
  if (!der) {
    return der.error();
  }
  return PublicKey(Share(std::move(key)), std::move(*der));
}

Result<PublicKey> PublicKey::FromPem(std::string_view pem) {
  OsslPtr<BIO> bio = MemBio(pem);
  OsslPtr<EVP_PKEY> key(PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr));
  if (!key) {
    return OsslError(Code::kInvalidArgument, "text is not a PEM public key");
  }
  auto der = EncodeSpki(key.get());
  if (!der) {
    return der.error();
  }
  return PublicKey(Share(std::move(key)), std::move(*der));
}

std::string PublicKey::ToPem() const {
  OsslPtr<BIO> bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_PUBKEY(bio.get(), key_.get());
  return BioToString(bio.get());
}

std::string PublicKey::DeviceId() const { return DeviceIdFromSpki(spki_); }

KeyAlgorithm PublicKey::Algorithm() const {
  KeyAlgorithm a;
  EVP_PKEY* k = key_.get();
  a.bits = EVP_PKEY_get_bits(k);
  if (EVP_PKEY_is_a(k, "EC")) {
    a.family = KeyAlgorithm::Family::kEc;
    char group[64] = {0};
    size_t len = 0;
    if (EVP_PKEY_get_utf8_string_param(k, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
                                       &len) == 1) {
      std::string g(group, len);
      if (g == "prime256v1" || g == "P-256") {
        a.curve = "P-256";
      } else if (g == "secp384r1" || g == "P-384") {
        a.curve = "P-384";
      } else if (g == "secp521r1" || g == "P-521") {
        a.curve = "P-521";
      } else {
        a.curve = g;
      }
    } else {
      // Explicit curve parameters rather than a named group: never acceptable.
      ERR_clear_error();
      a.curve = "explicit-parameters";
    }
  } else if (EVP_PKEY_is_a(k, "ED25519")) {
    a.family = KeyAlgorithm::Family::kEd25519;
  } else if (EVP_PKEY_is_a(k, "ED448")) {
    a.family = KeyAlgorithm::Family::kEd448;
  } else if (EVP_PKEY_is_a(k, "RSA")) {
    a.family = KeyAlgorithm::Family::kRsa;
  }
  return a;
}

Status PublicKey::Verify(std::span<const uint8_t> data, std::span<const uint8_t> signature) const {
  OsslPtr<EVP_MD_CTX> ctx(EVP_MD_CTX_new());
  if (!ctx || EVP_DigestVerifyInit(ctx.get(), nullptr, DigestFor(key_.get()), nullptr,
                                   key_.get()) != 1) {
    return OsslError("EVP_DigestVerifyInit");
  }
  if (EVP_DigestVerify(ctx.get(), signature.data(), signature.size(), data.data(),
                       data.size()) != 1) {
    return OsslError(Code::kUnauthenticated, "signature does not verify");
  }
  return OkStatus();
}

// --- PrivateKey ---

Result<PrivateKey> PrivateKey::FromNative(OsslPtr<EVP_PKEY> key) {
  if (!key) {
    return Error(Code::kInvalidArgument, "no private key");
  }
  auto pub = PublicKey::FromNative(key.get());
  if (!pub) {
    return pub.error();
  }
  return PrivateKey(Share(std::move(key)), std::move(*pub));
}

Result<PrivateKey> PrivateKey::Generate(KeyType type) {
  OsslPtr<EVP_PKEY> key;
  switch (type) {
    case KeyType::kP256:
      key.reset(EVP_EC_gen("P-256"));
      break;
    case KeyType::kP384:
      key.reset(EVP_EC_gen("P-384"));
      break;
    case KeyType::kEd25519:
      key.reset(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"));
      break;
  }
  if (!key) {
    return OsslError("generating " + std::string(KeyTypeName(type)) + " key");
  }
  return FromNative(std::move(key));
}

Result<PrivateKey> PrivateKey::FromPem(std::string_view pem, const SecretBytes* passphrase) {
  bool encrypted = pem.find("ENCRYPTED") != std::string_view::npos;
  if (encrypted && passphrase == nullptr) {
    return Error(Code::kFailedPrecondition,
                 "private key is encrypted; a passphrase is required to use it");
  }
  OsslPtr<BIO> bio = MemBio(pem);
  OsslPtr<EVP_PKEY> key(PEM_read_bio_PrivateKey(bio.get(), nullptr, PassphraseCallback,
                                                const_cast<SecretBytes*>(passphrase)));
  if (!key) {
    if (encrypted) {
      return OsslError(Code::kPermissionDenied,
                       "cannot decrypt private key: wrong passphrase or corrupt key");
    }
    return OsslError(Code::kInvalidArgument, "text is not a PEM private key");
  }
  return FromNative(std::move(key));
}

Result<PrivateKey> PrivateKey::FromDer(std::span<const uint8_t> der) {
  const unsigned char* p = der.data();
  OsslPtr<EVP_PKEY> key(d2i_AutoPrivateKey(nullptr, &p, static_cast<long>(der.size())));
  if (!key) {
    return OsslError(Code::kInvalidArgument, "bytes are not a DER private key");
  }
  return FromNative(std::move(key));
}

Result<SecretBytes> PrivateKey::ToPem(SecretAccess) const {
  OsslPtr<BIO> bio(BIO_new(BIO_s_secmem()));
  if (!bio || PEM_write_bio_PKCS8PrivateKey(bio.get(), key_.get(), nullptr, nullptr, 0, nullptr,
                                            nullptr) != 1) {
    return OsslError("encoding private key");
  }
  char* data = nullptr;
  long len = BIO_get_mem_data(bio.get(), &data);
  return SecretBytes(std::string_view(data, static_cast<size_t>(len)));
}

Result<std::string> PrivateKey::ToEncryptedPem(const SecretBytes& passphrase) const {
  if (passphrase.empty()) {
    return Error(Code::kInvalidArgument, "passphrase is empty");
  }
  OsslPtr<BIO> bio(BIO_new(BIO_s_mem()));
  std::string_view p = passphrase.view(SecretAccess::Grant());
  if (!bio || PEM_write_bio_PKCS8PrivateKey(bio.get(), key_.get(), EVP_aes_256_cbc(),
                                            p.data(), static_cast<int>(p.size()), nullptr,
                                            nullptr) != 1) {
    return OsslError("encrypting private key");
  }
  return BioToString(bio.get());
}

const EVP_MD* PrivateKey::SigningDigest() const { return DigestFor(key_.get()); }

Result<Bytes> PrivateKey::Sign(std::span<const uint8_t> data) const {
  OsslPtr<EVP_MD_CTX> ctx(EVP_MD_CTX_new());
  if (!ctx ||
      EVP_DigestSignInit(ctx.get(), nullptr, SigningDigest(), nullptr, key_.get()) != 1) {
    return OsslError("EVP_DigestSignInit");
  }
  size_t len = 0;
  if (EVP_DigestSign(ctx.get(), nullptr, &len, data.data(), data.size()) != 1) {
    return OsslError("EVP_DigestSign");
  }
  Bytes sig(len);
  if (EVP_DigestSign(ctx.get(), sig.data(), &len, data.data(), data.size()) != 1) {
    return OsslError("EVP_DigestSign");
  }
  sig.resize(len);
  return sig;
}

}  // namespace hallmark
