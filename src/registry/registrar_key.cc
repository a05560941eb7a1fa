#include "registry/registrar_key.h"

#include "core/file.h"
#include "core/key_file.h"

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
  Status written = WritePrivateKeyFile(path, *key, passphrase, /*exclusive=*/true);
  if (!written) {
    return written.error().WithContext("registrar key");
  }
  return RegistrarKey(std::move(*key));
}

Result<RegistrarKey> RegistrarKey::Load(const std::string& path,
                                        const std::optional<SecretBytes>& passphrase) {
  auto key = ReadPrivateKeyFile(path, "registrar key", passphrase);
  if (!key) {
    return key.error();
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
