#include "device/pkcs11_key_store.h"

namespace hallmark::device {

std::string Pkcs11KeyStore::Describe() const {
  return "pkcs11:module=" + token_.module + ";token=" + token_.token + ";label=" + label_;
}

Result<PublicKey> Pkcs11KeyStore::Create(KeyType type) {
  auto token = Pkcs11Token::Open(token_);
  if (!token) {
    return token.error();
  }
  auto pub = (*token)->GenerateKey(label_, type, /*replace=*/false);
  if (!pub && pub.error().code() == Code::kAlreadyExists) {
    return Error(Code::kAlreadyExists, pub.error().message() +
                                           " (a device identity is never "
                                           "silently replaced)");
  }
  return pub;
}

Result<PrivateKey> Pkcs11KeyStore::Load() {
  auto token = Pkcs11Token::Open(token_);
  if (!token) {
    return token.error();
  }
  return (*token)->LoadKey(label_);
}

}  // namespace hallmark::device
