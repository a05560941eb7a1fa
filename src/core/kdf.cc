#include "core/kdf.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/hmac.h>
#include <openssl/kdf.h>

#include <memory>
#include <vector>

#include "core/ossl.h"

namespace hallmark {
namespace {

struct KdfFree {
  void operator()(EVP_KDF* p) const { EVP_KDF_free(p); }
  void operator()(EVP_KDF_CTX* p) const { EVP_KDF_CTX_free(p); }
};

}  // namespace

Result<SecretBytes> HkdfSha256(std::span<const uint8_t> ikm, std::span<const uint8_t> salt,
                               std::span<const uint8_t> info, size_t length) {
  std::unique_ptr<EVP_KDF, KdfFree> kdf(EVP_KDF_fetch(nullptr, "HKDF", nullptr));
  if (!kdf) {
    return OsslError("EVP_KDF_fetch(HKDF)");
  }
  std::unique_ptr<EVP_KDF_CTX, KdfFree> ctx(EVP_KDF_CTX_new(kdf.get()));
  if (!ctx) {
    return OsslError("EVP_KDF_CTX_new");
  }
  // OSSL_PARAM takes non-const pointers but only reads these buffers. OpenSSL 3.0's HKDF
  // refuses an empty salt or info parameter, so those are left out when empty.
  std::vector<OSSL_PARAM> params = {
      OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, const_cast<char*>("SHA256"), 0),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, const_cast<uint8_t*>(ikm.data()),
                                        ikm.size()),
  };
  if (!salt.empty()) {
    params.push_back(OSSL_PARAM_construct_octet_string(
        OSSL_KDF_PARAM_SALT, const_cast<uint8_t*>(salt.data()), salt.size()));
  }
  if (!info.empty()) {
    params.push_back(OSSL_PARAM_construct_octet_string(
        OSSL_KDF_PARAM_INFO, const_cast<uint8_t*>(info.data()), info.size()));
  }
  params.push_back(OSSL_PARAM_construct_end());
  std::vector<uint8_t> out(length);
  if (EVP_KDF_derive(ctx.get(), out.data(), out.size(), params.data()) != 1) {
    OPENSSL_cleanse(out.data(), out.size());
    return OsslError("HKDF-SHA-256");
  }
  SecretBytes secret(out);
  OPENSSL_cleanse(out.data(), out.size());
  return secret;
}

Result<Bytes> HmacSha256(const SecretBytes& key, std::span<const uint8_t> data) {
  Bytes mac(32);
  size_t len = 0;
  std::span<const uint8_t> k = key.bytes(SecretAccess::Grant());
  if (EVP_Q_mac(nullptr, "HMAC", nullptr, "SHA256", nullptr, k.data(), k.size(), data.data(),
                data.size(), mac.data(), mac.size(), &len) == nullptr ||
      len != mac.size()) {
    return OsslError("HMAC-SHA-256");
  }
  return mac;
}

}  // namespace hallmark
