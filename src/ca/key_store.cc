#include "ca/key_store.h"

#include "core/file.h"
#include "core/key_file.h"

namespace hallmark::ca {

std::string FileKeyStore::PathFor(std::string_view label) const {
  std::string file(label);
  for (char& c : file) {
    if (c == '/') {
      c = '-';
    }
  }
  return dir_ + "/" + file + ".key";
}

std::string FileKeyStore::Reference(std::string_view label) const {
  std::string path = PathFor(label);
  return "file:" + path.substr(path.rfind('/') + 1);
}

Result<PrivateKey> FileKeyStore::Generate(std::string_view label, KeyType type) {
  auto key = PrivateKey::Generate(type);
  if (!key) {
    return key.error();
  }
  if (auto s = MakeDirectory(dir_, 0700); !s) {
    return s.error();
  }
  if (auto s = WritePrivateKeyFile(PathFor(label), *key, passphrase_, /*exclusive=*/false); !s) {
    return s.error();
  }
  return key;
}

Result<PrivateKey> FileKeyStore::Load(std::string_view label) {
  return ReadPrivateKeyFile(PathFor(label), "CA key", passphrase_);
}

}  // namespace hallmark::ca
