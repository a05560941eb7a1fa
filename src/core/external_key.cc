// OpenSSL 3.0 offers two ways to give libssl and X509_sign a key whose signing happens outside
// OpenSSL: a provider (keymgmt + signature + encoders, several hundred lines) or an
// EC_KEY_METHOD, which is deprecated but supported throughout 3.x and is what libp11's PKCS#11
// engine uses. A key with a non-default method is "foreign" to OpenSSL 3, so every signing path
// (EVP_DigestSign, X509_sign_ctx, the TLS CertificateVerify) takes the legacy route into the
// method instead of exporting the key to the default provider, which would lose the private
// half. That is what makes keys from providers such as tpm2-openssl usable here too: a
// provider key used with the default library context would be exported as public-only.
#define OPENSSL_SUPPRESS_DEPRECATED

#include "core/external_key.h"

#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>

#include <cstring>
#include <mutex>

#include "core/ossl.h"

namespace hallmark {
namespace {

using SignerRef = std::shared_ptr<ExternalSigner>;

void FreeSigner(void* /*parent*/, void* ptr, CRYPTO_EX_DATA* /*ad*/, int /*idx*/, long /*argl*/,
                void* /*argp*/) {
  delete static_cast<SignerRef*>(ptr);
}

// DupSigner runs when OpenSSL copies the EC_KEY (EC_KEY_dup): the copy gets its own reference.
int DupSigner(CRYPTO_EX_DATA* /*to*/, const CRYPTO_EX_DATA* /*from*/, void** from_d, int /*idx*/,
              long /*argl*/, void* /*argp*/) {
  auto** slot = reinterpret_cast<SignerRef**>(from_d);
  if (*slot != nullptr) {
    *slot = new SignerRef(**slot);
  }
  return 1;
}

int SignerIndex() {
  static const int index =
      CRYPTO_get_ex_new_index(CRYPTO_EX_INDEX_EC_KEY, 0, nullptr, nullptr, DupSigner, FreeSigner);
  return index;
}

// RaiseError puts `message` on OpenSSL's error queue, so that the caller's OsslError carries it
// in its detail.
void RaiseError(const std::string& message) {
  ERR_raise_data(ERR_LIB_USER, ERR_R_OPERATION_FAIL, "external key: %s", message.c_str());
}

Result<Bytes> SignWith(const unsigned char* dgst, int dlen, EC_KEY* eckey) {
  auto* signer = static_cast<SignerRef*>(EC_KEY_get_ex_data(eckey, SignerIndex()));
  if (signer == nullptr || !*signer || dlen < 0) {
    return Error(Code::kInternal, "external key has no signer");
  }
  return (*signer)->SignDigest(std::span<const uint8_t>(dgst, static_cast<size_t>(dlen)));
}

int Sign(int /*type*/, const unsigned char* dgst, int dlen, unsigned char* sig,
         unsigned int* siglen, const BIGNUM* /*kinv*/, const BIGNUM* /*r*/, EC_KEY* eckey) {
  auto der = SignWith(dgst, dlen, eckey);
  if (!der) {
    RaiseError(der.error().ToString());
    return 0;
  }
  // ECDSA_sign's contract: `sig` holds ECDSA_size(eckey) bytes.
  if (der->size() > static_cast<size_t>(ECDSA_size(eckey))) {
    RaiseError("signature is larger than ECDSA_size");
    return 0;
  }
  std::memcpy(sig, der->data(), der->size());
  *siglen = static_cast<unsigned int>(der->size());
  return 1;
}

ECDSA_SIG* SignSig(const unsigned char* dgst, int dlen, const BIGNUM* /*kinv*/, const BIGNUM* /*r*/,
                   EC_KEY* eckey) {
  auto der = SignWith(dgst, dlen, eckey);
  if (!der) {
    RaiseError(der.error().ToString());
    return nullptr;
  }
  const unsigned char* p = der->data();
  ECDSA_SIG* sig = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(der->size()));
  if (sig == nullptr) {
    RaiseError("signer returned a malformed ECDSA signature");
  }
  return sig;
}

// Method returns the process-wide method: OpenSSL's EC key method with signing replaced.
// Verification, key checks and everything else stay OpenSSL's.
const EC_KEY_METHOD* Method() {
  static const EC_KEY_METHOD* const method = [] {
    EC_KEY_METHOD* m = EC_KEY_METHOD_new(EC_KEY_get_default_method());
    if (m != nullptr) {
      EC_KEY_METHOD_set_sign(m, Sign, nullptr, SignSig);
    }
    return m;
  }();
  return method;
}

struct EcKeyDeleter {
  void operator()(EC_KEY* k) const { EC_KEY_free(k); }
};

struct EcPoint {
  std::string group;  // OpenSSL's short name: "prime256v1"
  Bytes point;        // encoded (uncompressed) point
};

Result<EcPoint> ReadEcPoint(EVP_PKEY* key) {
  char group[64] = {0};
  size_t group_len = 0;
  unsigned char point[1 + 2 * 66];
  size_t point_len = 0;
  if (EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
                                     &group_len) != 1 ||
      EVP_PKEY_get_octet_string_param(key, OSSL_PKEY_PARAM_PUB_KEY, point, sizeof(point),
                                      &point_len) != 1) {
    return OsslError("reading an EC key's curve and public point");
  }
  return EcPoint{std::string(group, group_len), Bytes(point, point + point_len)};
}

}  // namespace

Result<PrivateKey> WrapExternalKey(const PublicKey& public_key,
                                   std::shared_ptr<ExternalSigner> signer) {
  EVP_PKEY* pub = public_key.native();
  if (!EVP_PKEY_is_a(pub, "EC")) {
    return Error(Code::kInvalidArgument,
                 "external keys must be EC keys; got " + public_key.Algorithm().Describe());
  }
  if (!signer) {
    return Error(Code::kInvalidArgument, "external key needs a signer");
  }
  auto ec_point = ReadEcPoint(pub);
  if (!ec_point) {
    return ec_point.error();
  }
  const int nid = OBJ_sn2nid(ec_point->group.c_str());
  const EC_KEY_METHOD* method = Method();
  if (nid == NID_undef || method == nullptr || SignerIndex() < 0) {
    return OsslError("setting up the external key method");
  }
  std::unique_ptr<EC_KEY, EcKeyDeleter> ec(EC_KEY_new_by_curve_name(nid));
  if (!ec || EC_KEY_set_method(ec.get(), method) != 1 ||
      EC_KEY_oct2key(ec.get(), ec_point->point.data(), ec_point->point.size(), nullptr) != 1) {
    return OsslError("building the external key");
  }
  auto* ref = new SignerRef(std::move(signer));
  if (EC_KEY_set_ex_data(ec.get(), SignerIndex(), ref) != 1) {
    delete ref;
    return OsslError("EC_KEY_set_ex_data");
  }
  OsslPtr<EVP_PKEY> key(EVP_PKEY_new());
  if (!key || EVP_PKEY_set1_EC_KEY(key.get(), ec.get()) != 1) {
    return OsslError("EVP_PKEY_set1_EC_KEY");
  }
  return PrivateKey::FromNative(std::move(key));
}

Result<PublicKey> EcPublicKeyFromPoint(std::string_view group_name,
                                       std::span<const uint8_t> point) {
  std::string group(group_name);
  if (group == "P-256") {
    group = "prime256v1";
  } else if (group == "P-384") {
    group = "secp384r1";
  }
  if (OBJ_sn2nid(group.c_str()) == NID_undef) {
    return Error(Code::kInvalidArgument, "unknown EC curve '" + group + "'");
  }
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, group.data(), 0),
      OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, const_cast<uint8_t*>(point.data()),
                                        point.size()),
      OSSL_PARAM_construct_end(),
  };
  OsslPtr<EVP_PKEY_CTX> ctx(EVP_PKEY_CTX_new_from_name(nullptr, "EC", nullptr));
  EVP_PKEY* out = nullptr;
  if (!ctx || EVP_PKEY_fromdata_init(ctx.get()) != 1 ||
      EVP_PKEY_fromdata(ctx.get(), &out, EVP_PKEY_PUBLIC_KEY, params) != 1) {
    return OsslError(Code::kInvalidArgument, "EC public key is not a valid point on " + group);
  }
  OsslPtr<EVP_PKEY> key(out);
  return PublicKey::FromNative(key.get());
}

Result<PublicKey> EcPublicKeyOf(EVP_PKEY* key) {
  auto ec_point = ReadEcPoint(key);
  if (!ec_point) {
    return ec_point.error();
  }
  return EcPublicKeyFromPoint(ec_point->group, ec_point->point);
}

bool IsExternalKey(const PrivateKey& key) {
  EVP_PKEY* k = key.native();
  // Provider-native keys are never ours; asking them for an EC_KEY would make a legacy copy.
  if (k == nullptr || EVP_PKEY_get0_provider(k) != nullptr ||
      EVP_PKEY_get_base_id(k) != EVP_PKEY_EC) {
    return false;
  }
  const EC_KEY* ec = EVP_PKEY_get0_EC_KEY(k);
  return ec != nullptr && EC_KEY_get_method(ec) == Method();
}

}  // namespace hallmark
