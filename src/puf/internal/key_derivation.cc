#include "puf/internal/key_derivation.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/obj_mac.h>
#include <openssl/param_build.h>

#include <memory>
#include <string>
#include <vector>

#include "core/kdf.h"
#include "core/ossl.h"

namespace hallmark::puf::internal {
namespace {

// Owners for the OpenSSL types core/ossl.h has no deleter for; local to keep them out of the
// shared header.
struct EcFree {
  void operator()(EC_GROUP* p) const { EC_GROUP_free(p); }
  void operator()(EC_POINT* p) const { EC_POINT_free(p); }
  void operator()(BN_CTX* p) const { BN_CTX_free(p); }
  void operator()(BIGNUM* p) const { BN_clear_free(p); }
  void operator()(OSSL_PARAM_BLD* p) const { OSSL_PARAM_BLD_free(p); }
  // The secure scalar lives in the secure block, which OSSL_PARAM_free clears.
  void operator()(OSSL_PARAM* p) const { OSSL_PARAM_free(p); }
};
template <typename T>
using Owned = std::unique_ptr<T, EcFree>;

constexpr std::string_view kKeyInfo = "hallmark-puf-v1 p256 key";
constexpr size_t kScalarBytes = 48;  // 384 bits reduced mod a 256-bit order
constexpr int kMaxCounter = 16;

}  // namespace

Result<PrivateKey> DeriveP256Key(const SecretBytes& secret) {
  Owned<EC_GROUP> group(EC_GROUP_new_by_curve_name(NID_X9_62_prime256v1));
  Owned<BN_CTX> bn_ctx(BN_CTX_secure_new());
  Owned<BIGNUM> d(BN_secure_new());
  Owned<EC_POINT> point(group ? EC_POINT_new(group.get()) : nullptr);
  if (!group || !bn_ctx || !d || !point) {
    return OsslError("preparing P-256 arithmetic");
  }
  const BIGNUM* order = EC_GROUP_get0_order(group.get());
  for (int counter = 0; counter < kMaxCounter; ++counter) {
    const std::string info = std::string(kKeyInfo) + " " + std::to_string(counter);
    auto wide = HkdfSha256(secret.bytes(SecretAccess::Grant()), {}, AsBytes(info), kScalarBytes);
    if (!wide) {
      return wide.error();
    }
    std::span<const uint8_t> w = wide->bytes(SecretAccess::Grant());
    if (BN_bin2bn(w.data(), static_cast<int>(w.size()), d.get()) == nullptr ||
        BN_nnmod(d.get(), d.get(), order, bn_ctx.get()) != 1) {
      return OsslError("reducing the P-256 scalar");
    }
    if (BN_is_zero(d.get())) {
      continue;
    }
    if (EC_POINT_mul(group.get(), point.get(), d.get(), nullptr, nullptr, bn_ctx.get()) != 1) {
      return OsslError("computing the P-256 public point");
    }
    unsigned char pub[65];
    size_t pub_len = EC_POINT_point2oct(group.get(), point.get(), POINT_CONVERSION_UNCOMPRESSED,
                                        pub, sizeof(pub), bn_ctx.get());
    Owned<OSSL_PARAM_BLD> bld(OSSL_PARAM_BLD_new());
    if (pub_len != sizeof(pub) || !bld ||
        OSSL_PARAM_BLD_push_utf8_string(bld.get(), OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) !=
            1 ||
        OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_PRIV_KEY, d.get()) != 1 ||
        OSSL_PARAM_BLD_push_octet_string(bld.get(), OSSL_PKEY_PARAM_PUB_KEY, pub, pub_len) != 1) {
      return OsslError("building P-256 key parameters");
    }
    Owned<OSSL_PARAM> params(OSSL_PARAM_BLD_to_param(bld.get()));
    OsslPtr<EVP_PKEY_CTX> ctx(EVP_PKEY_CTX_new_from_name(nullptr, "EC", nullptr));
    EVP_PKEY* key = nullptr;
    if (!params || !ctx || EVP_PKEY_fromdata_init(ctx.get()) != 1 ||
        EVP_PKEY_fromdata(ctx.get(), &key, EVP_PKEY_KEYPAIR, params.get()) != 1) {
      return OsslError("EVP_PKEY_fromdata(P-256 key pair)");
    }
    return PrivateKey::FromNative(OsslPtr<EVP_PKEY>(key));
  }
  return Error(Code::kInternal, "P-256 key derivation found no non-zero scalar");
}

}  // namespace hallmark::puf::internal
