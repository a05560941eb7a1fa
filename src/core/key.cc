#include "core/key.h"

#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/sha.h>

#include <cstring>
#include <mutex>

#include "core/internal/asn1_types.h"

namespace hallmark {
namespace {

std::shared_ptr<EVP_PKEY> Share(OsslPtr<EVP_PKEY> key) {
  return std::shared_ptr<EVP_PKEY>(key.release(), EVP_PKEY_free);
}

// EncodeSpki serialises an X509_PUBKEY through its ASN.1 template: no provider encoder runs.
Result<Bytes> EncodeSpki(const X509_PUBKEY* spki) {
  int len = i2d_X509_PUBKEY(spki, nullptr);
  if (len <= 0) {
    return OsslError("encoding SubjectPublicKeyInfo");
  }
  Bytes der(static_cast<size_t>(len));
  unsigned char* p = der.data();
  if (i2d_X509_PUBKEY(spki, &p) != len) {
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

// IsCompressedEcPoint reports whether `spki` holds an EC key as a compressed point, whose
// device ID must be computed over the uncompressed form (FromDer canonicalises).
bool IsCompressedEcPoint(const X509_PUBKEY* spki) {
  const unsigned char* bits = nullptr;
  int len = 0;
  X509_ALGOR* alg = nullptr;
  if (X509_PUBKEY_get0_param(nullptr, &bits, &len, &alg, spki) != 1 || len < 1) {
    return false;
  }
  const ASN1_OBJECT* obj = nullptr;
  X509_ALGOR_get0(&obj, nullptr, nullptr, alg);
  return OBJ_obj2nid(obj) == NID_X9_62_id_ecPublicKey && (bits[0] == 0x02 || bits[0] == 0x03);
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
  X509_PUBKEY* raw = nullptr;
  if (X509_PUBKEY_set(&raw, owned.get()) != 1) {
    return OsslError(Code::kInvalidArgument, "public key cannot be encoded");
  }
  std::shared_ptr<X509_PUBKEY> x509_pubkey(raw, X509_PUBKEY_free);
  auto spki = EncodeSpki(raw);
  if (!spki) {
    return spki.error();
  }
  if (IsCompressedEcPoint(raw)) {
    return FromDer(*spki);
  }
  return PublicKey(Share(std::move(owned)), std::move(x509_pubkey), std::move(*spki));
}

Result<PublicKey> PublicKey::FromX509Pubkey(std::shared_ptr<X509_PUBKEY> x509_pubkey) {
  EVP_PKEY* key = X509_PUBKEY_get0(x509_pubkey.get());
  if (key == nullptr) {
    return OsslError(Code::kInvalidArgument, "public key does not parse");
  }
  if (IsCompressedEcPoint(x509_pubkey.get())) {
    auto der = EncodeSpki(x509_pubkey.get());
    if (!der) {
      return der.error();
    }
    return FromDer(*der);
  }
  OsslPtr<EVP_PKEY> owned = UpRef(key);
  auto spki = EncodeSpki(x509_pubkey.get());
  if (!spki) {
    return spki.error();
  }
  return PublicKey(Share(std::move(owned)), std::move(x509_pubkey), std::move(*spki));
}

namespace {

// IsWeakEd25519Key reports whether a 32-byte Ed25519 public key is one of the small-order
// points (for which OpenSSL's verification accepts forged signatures, as for the EC point at
// infinity) or encodes y >= p (non-canonical). The list is the one libsodium rejects; the sign
// bit is ignored.
bool IsWeakEd25519Key(const unsigned char* key) {
  static constexpr unsigned char kSmallOrder[][32] = {
      // 0 (order 4)
      {0},
      // 1 (order 1)
      {0x01},
      // order 8
      {0x26, 0xe8, 0x95, 0x8f, 0xc2, 0xb2, 0x27, 0xb0, 0x45, 0xc3, 0xf4,
       0x89, 0xf2, 0xef, 0x98, 0xf0, 0xd5, 0xdf, 0xac, 0x05, 0xd3, 0xc6,
       0x33, 0x39, 0xb1, 0x38, 0x02, 0x88, 0x6d, 0x53, 0xfc, 0x05},
      // order 8
      {0xc7, 0x17, 0x6a, 0x70, 0x3d, 0x4d, 0xd8, 0x4f, 0xba, 0x3c, 0x0b,
       0x76, 0x0d, 0x10, 0x67, 0x0f, 0x2a, 0x20, 0x53, 0xfa, 0x2c, 0x39,
       0xcc, 0xc6, 0x4e, 0xc7, 0xfd, 0x77, 0x92, 0xac, 0x03, 0x7a},
      // p - 1 (order 2)
      {0xec, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
       0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
       0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f},
  };
  unsigned char y[32];
  std::memcpy(y, key, 32);
  y[31] &= 0x7f;
  for (const auto& weak : kSmallOrder) {
    if (std::memcmp(y, weak, 32) == 0) {
      return true;
    }
  }
  // y >= p = 2^255 - 19, little-endian: ed ff .. ff 7f and above.
  if (y[31] == 0x7f && y[0] >= 0xed) {
    bool all_ff = true;
    for (int i = 1; i < 31; ++i) {
      all_ff = all_ff && y[i] == 0xff;
    }
    return all_ff;
  }
  return false;
}

// ImportEcPublicKey builds a public-only EC key on curve `group` from an encoded point.
Result<OsslPtr<EVP_PKEY>> ImportEcPublicKey(const char* group, const unsigned char* point,
                                            size_t point_len) {
  OsslPtr<EVP_PKEY_CTX> ctx(EVP_PKEY_CTX_new_from_name(nullptr, "EC", nullptr));
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, const_cast<char*>(group), 0),
      OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, const_cast<unsigned char*>(point),
                                        point_len),
      OSSL_PARAM_construct_end(),
  };
  EVP_PKEY* out = nullptr;
  if (!ctx || EVP_PKEY_fromdata_init(ctx.get()) != 1 ||
      EVP_PKEY_fromdata(ctx.get(), &out, EVP_PKEY_PUBLIC_KEY, params) != 1) {
    return OsslError(Code::kInvalidArgument,
                     std::string("EC public key is not a valid point on ") + group);
  }
  return OsslPtr<EVP_PKEY>(out);
}

// MakeEcTemplate returns a public-only key on `curve_name`, or nullptr.
EVP_PKEY* MakeEcTemplate(const char* curve_name, const char* group) {
  OsslPtr<EVP_PKEY> full(EVP_EC_gen(curve_name));
  unsigned char point[200];
  size_t len = 0;
  if (!full || EVP_PKEY_get_octet_string_param(full.get(), OSSL_PKEY_PARAM_PUB_KEY, point,
                                               sizeof(point), &len) != 1) {
    ERR_clear_error();
    return nullptr;
  }
  auto pub = ImportEcPublicKey(group, point, len);
  return pub ? pub->release() : nullptr;
}

// EcTemplate returns a process-wide public-only key on a curve hallmark certifies (P-256, P-384,
// P-521), or nullptr for other curves. Thread-safe; the templates live until exit.
EVP_PKEY* EcTemplate(int curve) {
  static EVP_PKEY* const p256 = MakeEcTemplate("P-256", "prime256v1");
  static EVP_PKEY* const p384 = MakeEcTemplate("P-384", "secp384r1");
  static EVP_PKEY* const p521 = MakeEcTemplate("P-521", "secp521r1");
  switch (curve) {
    case NID_X9_62_prime256v1:
      return p256;
    case NID_secp384r1:
      return p384;
    case NID_secp521r1:
      return p521;
    default:
      return nullptr;
  }
}

// DecodeKey turns the parts of a SubjectPublicKeyInfo into an EVP_PKEY. Named-curve EC keys and
// Ed25519 go through EVP_PKEY_fromdata / raw import (about 14 us); anything else through
// OpenSSL's generic decoder (about 95 us).
Result<OsslPtr<EVP_PKEY>> DecodeKey(const HALLMARK_SPKI& spki, std::span<const uint8_t> der) {
  const ASN1_OBJECT* alg_obj = nullptr;
  int ptype = 0;
  const void* pval = nullptr;
  X509_ALGOR_get0(&alg_obj, &ptype, &pval, spki.algor);
  const int alg = OBJ_obj2nid(alg_obj);
  const unsigned char* bits = ASN1_STRING_get0_data(spki.public_key);
  const auto bits_len = static_cast<size_t>(ASN1_STRING_length(spki.public_key));
  if (alg == NID_X9_62_id_ecPublicKey && ptype == V_ASN1_OBJECT) {
    int curve = OBJ_obj2nid(static_cast<const ASN1_OBJECT*>(pval));
    const char* group = curve == NID_undef ? nullptr : OBJ_nid2sn(curve);
    if (group == nullptr) {
      return Error(Code::kInvalidArgument, "EC public key uses an unknown curve");
    }
    // SEC 1 section 2.3.3: 0x00 alone is the point at infinity, for which OpenSSL's ECDSA
    // verification accepts forged signatures; 0x06/0x07 are the hybrid forms. Only compressed
    // (0x02, 0x03) and uncompressed (0x04) points are keys.
    if (bits_len < 2 || (bits[0] != 0x02 && bits[0] != 0x03 && bits[0] != 0x04)) {
      return Error(Code::kInvalidArgument,
                   std::string("EC public key is not a valid point on ") + group +
                       " (the point at infinity or an unsupported encoding)");
    }
    EVP_PKEY* tmpl = EcTemplate(curve);
    OsslPtr<EVP_PKEY> out;
    if (tmpl != nullptr) {
      // Copying a public-only key of the same curve reuses its group's precomputation; setting
      // the point checks that it is on the curve.
      out.reset(EVP_PKEY_dup(tmpl));
      if (!out || EVP_PKEY_set1_encoded_public_key(out.get(), bits, bits_len) != 1) {
        return OsslError(Code::kInvalidArgument,
                         std::string("EC public key is not a valid point on ") + group);
      }
      return out;
    }
    auto imported = ImportEcPublicKey(group, bits, bits_len);
    if (!imported) {
      return imported.error();
    }
    return std::move(*imported);
  }
  if (alg == NID_X9_62_id_ecPublicKey) {
    // RFC 5480 section 2.1.1: implicitCurve and specifiedCurve MUST NOT be used.
    return Error(Code::kInvalidArgument,
                 "EC public key does not name its curve (explicit parameters are not allowed, "
                 "RFC 5480)");
  }
  if (alg == NID_ED25519) {
    if (ptype != V_ASN1_UNDEF) {
      return Error(Code::kInvalidArgument, "Ed25519 public key has algorithm parameters");
    }
    if (bits_len == 32 && IsWeakEd25519Key(bits)) {
      return Error(Code::kInvalidArgument,
                   "Ed25519 public key is a small-order point or not canonically encoded "
                   "(signatures could be forged for it)");
    }
    OsslPtr<EVP_PKEY> out(EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr, bits, bits_len));
    if (!out) {
      return OsslError(Code::kInvalidArgument, "Ed25519 public key is not 32 bytes");
    }
    return out;
  }
  const unsigned char* p = der.data();
  OsslPtr<EVP_PKEY> out(d2i_PUBKEY(nullptr, &p, static_cast<long>(der.size())));
  if (!out) {
    return OsslError(Code::kInvalidArgument, "public key of this algorithm does not decode");
  }
  return out;
}

}  // namespace

namespace internal {

Status SetSpkiParams(X509_PUBKEY* dst, const X509_ALGOR* alg, const unsigned char* bits,
                     int bits_len) {
  const ASN1_OBJECT* obj = nullptr;
  int ptype = 0;
  const void* pval = nullptr;
  X509_ALGOR_get0(&obj, &ptype, &pval, alg);
  OsslPtr<ASN1_OBJECT> obj_copy(OBJ_dup(obj));
  void* pval_copy = nullptr;
  if (ptype == V_ASN1_OBJECT) {
    pval_copy = OBJ_dup(static_cast<const ASN1_OBJECT*>(pval));
  } else if (ptype == V_ASN1_SEQUENCE || ptype == V_ASN1_OCTET_STRING) {
    pval_copy = ASN1_STRING_dup(static_cast<const ASN1_STRING*>(pval));
  } else if (ptype != V_ASN1_UNDEF && ptype != V_ASN1_NULL) {
    return Error(Code::kInvalidArgument, "public key algorithm has unusual parameters");
  }
  auto* enc = static_cast<unsigned char*>(OPENSSL_memdup(bits, static_cast<size_t>(bits_len)));
  if (!obj_copy || (pval != nullptr && pval_copy == nullptr) || enc == nullptr) {
    OPENSSL_free(enc);
    return OsslError("copying SubjectPublicKeyInfo");
  }
  // X509_PUBKEY_set0_param takes ownership of the object, parameter and key bits.
  if (X509_PUBKEY_set0_param(dst, obj_copy.get(), ptype, pval_copy, enc, bits_len) != 1) {
    OPENSSL_free(enc);
    return OsslError("X509_PUBKEY_set0_param");
  }
  obj_copy.release();
  return OkStatus();
}

}  // namespace internal

Result<PublicKey> PublicKey::FromDer(std::span<const uint8_t> spki) {
  const unsigned char* p = spki.data();
  OsslPtr<HALLMARK_SPKI> parsed(d2i_HALLMARK_SPKI(nullptr, &p, static_cast<long>(spki.size())));
  if (!parsed) {
    return OsslError(Code::kInvalidArgument, "public key is not a valid DER SubjectPublicKeyInfo");
  }
  if (p != spki.data() + spki.size()) {
    return Error(Code::kInvalidArgument, "public key DER has trailing bytes");
  }
  auto key = DecodeKey(*parsed, spki);
  if (!key) {
    return key.error();
  }
  std::shared_ptr<X509_PUBKEY> x509_pubkey(X509_PUBKEY_new(), X509_PUBKEY_free);
  if (!x509_pubkey) {
    return OsslError("X509_PUBKEY_new");
  }
  const unsigned char* bits = ASN1_STRING_get0_data(parsed->public_key);
  int bits_len = ASN1_STRING_length(parsed->public_key);
  // A compressed EC point is the same key as its uncompressed form; store the uncompressed form
  // so that one key has one device ID.
  unsigned char uncompressed[1 + 2 * 66];
  if (bits_len > 0 && (bits[0] == 0x02 || bits[0] == 0x03) && EVP_PKEY_is_a(key->get(), "EC")) {
    size_t len = 0;
    if (EVP_PKEY_set_utf8_string_param(key->get(), OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT,
                                       "uncompressed") != 1 ||
        EVP_PKEY_get_octet_string_param(key->get(), OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY,
                                        uncompressed, sizeof(uncompressed), &len) != 1) {
      return OsslError("decompressing EC public key");
    }
    bits = uncompressed;
    bits_len = static_cast<int>(len);
  }
  if (auto s = internal::SetSpkiParams(x509_pubkey.get(), parsed->algor, bits, bits_len); !s) {
    return s.error();
  }
  // Re-encode so that the device ID is computed over canonical DER.
  auto der = EncodeSpki(x509_pubkey.get());
  if (!der) {
    return der.error();
  }
  return PublicKey(Share(std::move(*key)), std::move(x509_pubkey), std::move(*der));
}

Result<PublicKey> PublicKey::FromPem(std::string_view pem) {
  OsslPtr<BIO> bio = MemBio(pem);
  OsslPtr<EVP_PKEY> key(PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr));
  if (!key) {
    return OsslError(Code::kInvalidArgument, "text is not a PEM public key");
  }
  return FromNative(key.get());
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
    if (EVP_PKEY_get_utf8_string_param(k, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group), &len) ==
        1) {
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
  if (!ctx ||
      EVP_DigestVerifyInit(ctx.get(), nullptr, DigestFor(key_.get()), nullptr, key_.get()) != 1) {
    return OsslError("EVP_DigestVerifyInit");
  }
  if (EVP_DigestVerify(ctx.get(), signature.data(), signature.size(), data.data(), data.size()) !=
      1) {
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
  if (!bio || PEM_write_bio_PKCS8PrivateKey(bio.get(), key_.get(), EVP_aes_256_cbc(), p.data(),
                                            static_cast<int>(p.size()), nullptr, nullptr) != 1) {
    return OsslError("encrypting private key");
  }
  return BioToString(bio.get());
}

const EVP_MD* PrivateKey::SigningDigest() const { return DigestFor(key_.get()); }

struct PrivateKey::SigningTemplate {
  std::once_flag once;
  OsslPtr<EVP_MD_CTX> ctx;  // null if the key's provider cannot copy signing contexts
};

PrivateKey::PrivateKey(std::shared_ptr<EVP_PKEY> key, PublicKey pub)
    : key_(std::move(key)),
      public_(std::move(pub)),
      signing_template_(std::make_shared<SigningTemplate>()) {}

Result<OsslPtr<EVP_MD_CTX>> PrivateKey::FreshSigningContext() const {
  OsslPtr<EVP_MD_CTX> ctx(EVP_MD_CTX_new());
  if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, SigningDigest(), nullptr, key_.get()) != 1) {
    return OsslError("EVP_DigestSignInit");
  }
  return ctx;
}

Result<OsslPtr<EVP_MD_CTX>> PrivateKey::NewSigningContext() const {
  SigningTemplate& t = *signing_template_;
  std::call_once(t.once, [this, &t]() {
    auto fresh = FreshSigningContext();
    if (fresh) {
      // Only keep the template if copying works for this key's provider.
      OsslPtr<EVP_MD_CTX> probe(EVP_MD_CTX_new());
      if (probe && EVP_MD_CTX_copy_ex(probe.get(), fresh->get()) == 1) {
        t.ctx = std::move(*fresh);
      }
    }
    ERR_clear_error();
  });
  if (t.ctx) {
    OsslPtr<EVP_MD_CTX> copy(EVP_MD_CTX_new());
    if (copy && EVP_MD_CTX_copy_ex(copy.get(), t.ctx.get()) == 1) {
      return copy;
    }
    ERR_clear_error();
  }
  return FreshSigningContext();
}

Result<Bytes> PrivateKey::Sign(std::span<const uint8_t> data) const {
  OsslPtr<EVP_MD_CTX> ctx(EVP_MD_CTX_new());
  if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, SigningDigest(), nullptr, key_.get()) != 1) {
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
