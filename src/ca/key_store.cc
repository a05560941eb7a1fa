#include "ca/key_store.h"

#include "core/file.h"

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
  Status written;
  if (passphrase_.has_value()) {
    auto pem = key->ToEncryptedPem(*passphrase_);
    if (!pem) {
      return pem.error();
    }
    written = WriteFileAtomic(PathFor(label), *pem, 0600);
  } else {
    auto pem = key->ToPem(SecretAccess::Grant());
    if (!pem) {
      return pem.error();
    }
    written = WriteFileAtomic(PathFor(label), pem->view(SecretAccess::Grant()), 0600);
  }
  if (!written) {
    return written.error();
  }
  return key;
}

Result<PrivateKey> FileKeyStore::Load(std::string_view label) {
  std::string path = PathFor(label);
  if (auto s = CheckPrivateFile(path); !s) {
    return s.error();
  }
  auto text = ReadFile(path);
  if (!text) {
    return text.error();
  }
  SecretBytes pem(*text);
  Wipe(*text);
  auto key = PrivateKey::FromPem(pem.view(SecretAccess::Grant()),
                                 passphrase_.has_value() ? &*passphrase_ : nullptr);
  if (!key) {
    if (key.error().code() == Code::kFailedPrecondition) {
      return Error(Code::kFailedPrecondition,
                   "key " + path +
                       " is encrypted; give its passphrase with --passphrase-file "
                       "or HALLMARK_PASSPHRASE_FILE");
    }
    return key.error().WithContext("key " + path);
  }
  return key;
}

}  // namespace hallmark::ca
