#include "registry/registrar_key.h"

#include "core/file.h"

namespace hallmark::registry {

Status CheckRegistrarPublicKey(const PublicKey& key) {
  if (key.Algorithm().family != KeyAlgorithm::Family::kEd25519) {
    return Error(Code::kInvalidArgument,
                 "the registrar key must be Ed25519, not " + key.Algorithm().Describe());
  }
  return OkStatus();
}

Result<RegistrarKey> RegistrarKey::FromPrivateKey(PrivateKey key) {
  if (auto s = CheckRegistrarPublicKey(key.Public()); !s) {
    return s.error();
  }
  return RegistrarKey(std::move(key));
}

Result<RegistrarKey> RegistrarKey::Create(const std::string& path,
                                          const std::optional<SecretBytes>& passphrase) {
  if (FileExists(path)) {
    return Error(Code::kAlreadyExists,
                 "registrar key " + path + " already exists; refusing to overwrite it");
  }
  auto key = PrivateKey::Generate(KeyType::kEd25519);
  if (!key) {
    return key.error();
  }
  Status written;
  if (passphrase.has_value()) {
    auto pem = key->ToEncryptedPem(*passphrase);
    if (!pem) {
      return pem.error();
    }
    written = WriteFileAtomic(path, *pem, 0600, /*exclusive=*/true);
  } else {
    auto pem = key->ToPem(SecretAccess::Grant());
    if (!pem) {
      return pem.error();
    }
    written = WriteFileAtomic(path, pem->view(SecretAccess::Grant()), 0600, /*exclusive=*/true);
  }
  if (!written) {
    return written.error().WithContext("registrar key");
  }
  return RegistrarKey(std::move(*key));
}

Result<RegistrarKey> RegistrarKey::Load(const std::string& path,
                                        const std::optional<SecretBytes>& passphrase) {
  if (auto s = CheckPrivateFile(path); !s) {
    if (s.error().code() == Code::kNotFound) {
      return Error(Code::kNotFound, "registrar key " + path + " does not exist");
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
                   "registrar key " + path +
                       " is encrypted; give its passphrase with --passphrase-file or "
                       "HALLMARK_PASSPHRASE_FILE");
    }
    return key.error().WithContext("registrar key " + path);
  }
  auto registrar = FromPrivateKey(std::move(*key));
  if (!registrar) {
    return registrar.error().WithContext(path);
  }
  return registrar;
}

Result<PublicKey> LoadRegistrarPublicKey(const std::string& path) {
  auto text = ReadFile(path);
  if (!text) {
    return text.error();
  }
  auto key = PublicKey::FromPem(*text);
  if (!key) {
    return key.error().WithContext("registrar public key " + path);
  }
  if (auto s = CheckRegistrarPublicKey(*key); !s) {
    return s.error().WithContext(path);
  }
  return key;
}

}  // namespace hallmark::registry
