#include "device/key_store.h"

#include "core/file.h"

namespace hallmark::device {

Result<PublicKey> FileKeyStore::Create(KeyType type) {
  if (FileExists(path_)) {
    return Error(Code::kAlreadyExists,
                 "device key " + path_ + " already exists; refusing to replace an identity");
  }
  auto key = PrivateKey::Generate(type);
  if (!key) {
    return key.error();
  }
  Status written;
  if (passphrase_.has_value()) {
    auto pem = key->ToEncryptedPem(*passphrase_);
    if (!pem) {
      return pem.error();
    }
    written = WriteFileAtomic(path_, *pem, 0600, /*exclusive=*/true);
  } else {
    auto pem = key->ToPem(SecretAccess::Grant());
    if (!pem) {
      return pem.error();
    }
    written = WriteFileAtomic(path_, pem->view(SecretAccess::Grant()), 0600, /*exclusive=*/true);
  }
  if (!written) {
    return written.error();
  }
  return key->Public();
}

Result<PrivateKey> FileKeyStore::Load() {
  if (auto s = CheckPrivateFile(path_); !s) {
    return s.error();
  }
  auto text = ReadFile(path_);
  if (!text) {
    return text.error();
  }
  SecretBytes pem(*text);
  Wipe(*text);
  auto key = PrivateKey::FromPem(pem.view(SecretAccess::Grant()),
                                 passphrase_.has_value() ? &*passphrase_ : nullptr);
  if (!key) {
    return key.error().WithContext("device key " + path_);
  }
  return key;
}

}  // namespace hallmark::device
