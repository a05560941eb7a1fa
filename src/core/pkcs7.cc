#include "core/pkcs7.h"

#include <openssl/err.h>
#include <openssl/pkcs7.h>

#include <memory>

#include "core/encoding.h"
#include "core/ossl.h"

namespace hallmark {
namespace {

struct Pkcs7Free {
  void operator()(PKCS7* p) const { PKCS7_free(p); }
};

}  // namespace

Result<std::string> EncodeCertsOnly(std::span<const Certificate> certs) {
  std::unique_ptr<PKCS7, Pkcs7Free> p7(PKCS7_new());
  // As `openssl crl2pkcs7 -nocrl` does: SignedData version 1, no digest algorithms, an empty
  // (absent) id-data content, the certificates, no signers.
  if (!p7 || PKCS7_set_type(p7.get(), NID_pkcs7_signed) != 1) {
    return OsslError("PKCS7_set_type");
  }
  p7->d.sign->contents->type = OBJ_nid2obj(NID_pkcs7_data);
  for (const Certificate& cert : certs) {
    if (PKCS7_add_certificate(p7.get(), cert.native()) != 1) {  // takes its own reference
      return OsslError("PKCS7_add_certificate");
    }
  }
  int len = i2d_PKCS7(p7.get(), nullptr);
  if (len <= 0) {
    return OsslError("i2d_PKCS7");
  }
  Bytes der(static_cast<size_t>(len));
  unsigned char* p = der.data();
  if (i2d_PKCS7(p7.get(), &p) != len) {
    return OsslError("i2d_PKCS7");
  }
  std::string flat = Base64Encode(der);
  std::string out;
  out.reserve(flat.size() + flat.size() / 64 + 2);
  for (size_t i = 0; i < flat.size(); i += 64) {
    out.append(flat, i, 64).append("\n");
  }
  return out;
}

Result<std::vector<Certificate>> DecodeCertsOnly(std::string_view base64) {
  auto der = Base64Decode(base64);
  if (!der || der->empty()) {
    return Error(Code::kInvalidArgument, "not base64");
  }
  const unsigned char* p = der->data();
  std::unique_ptr<PKCS7, Pkcs7Free> p7(d2i_PKCS7(nullptr, &p, static_cast<long>(der->size())));
  if (!p7 || p != der->data() + der->size() || !PKCS7_type_is_signed(p7.get()) ||
      p7->d.sign == nullptr) {
    ERR_clear_error();
    return Error(Code::kInvalidArgument, "not a DER PKCS#7 certs-only message");
  }
  std::vector<Certificate> out;
  STACK_OF(X509)* certs = p7->d.sign->cert;
  for (int i = 0; certs != nullptr && i < sk_X509_num(certs); ++i) {
    auto cert = Certificate::FromNative(sk_X509_value(certs, i));
    if (!cert) {
      return cert.error();
    }
    out.push_back(std::move(*cert));
  }
  if (out.empty()) {
    return Error(Code::kInvalidArgument, "a PKCS#7 certs-only message with no certificate");
  }
  return out;
}

}  // namespace hallmark
