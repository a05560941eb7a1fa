#include "device/key_store.h"

#include "core/file.h"
#include "core/key_file.h"

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
  if (auto s = WritePrivateKeyFile(path_, *key, passphrase_, /*exclusive=*/true); !s) {
    return s.error();
  }
  return key->Public();
}

Result<PrivateKey> FileKeyStore::Load() {
  return ReadPrivateKeyFile(path_, "device key", passphrase_);
}

}  // namespace hallmark::device
