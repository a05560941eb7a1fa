#include "core/key_file.h"

#include "core/file.h"

namespace hallmark {

Status WritePrivateKeyFile(const std::string& path, const PrivateKey& key,
                           const std::optional<SecretBytes>& passphrase, bool exclusive) {
  if (passphrase.has_value()) {
    auto pem = key.ToEncryptedPem(*passphrase);
    if (!pem) {
      return pem.error();
    }
    return WriteFileAtomic(path, *pem, 0600, exclusive);
  }
  auto pem = key.ToPem(SecretAccess::Grant());
  if (!pem) {
    return pem.error();
  }
  return WriteFileAtomic(path, pem->view(SecretAccess::Grant()), 0600, exclusive);
}

Result<PrivateKey> ReadPrivateKeyFile(const std::string& path, std::string_view what,
                                      const std::optional<SecretBytes>& passphrase) {
  const std::string name = std::string(what) + " " + path;
  if (auto s = CheckPrivateFile(path); !s) {
    if (s.error().code() == Code::kNotFound) {
      return Error(Code::kNotFound, name + " does not exist");
    }
    return s.error();
  }
  auto text = ReadFile(path);
  if (!text) {
    return text.error();
  }
  SecretBytes pem(*text);
  Wipe(*text);
  auto key = PrivateKey::FromPem(pem.view(SecretAccess::Grant()),
                                 passphrase.has_value() ? &*passphrase : nullptr);
  if (!key) {
    if (key.error().code() == Code::kFailedPrecondition) {
      return Error(Code::kFailedPrecondition,
                   name +
                       " is encrypted; give its passphrase with --passphrase-file or "
                       "HALLMARK_PASSPHRASE_FILE");
    }
    return key.error().WithContext(name);
  }
  return key;
}

}  // namespace hallmark
