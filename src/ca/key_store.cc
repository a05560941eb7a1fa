#include "ca/key_store.h"

#include "core/encoding.h"
#include "core/file.h"
#include "core/key_file.h"
#include "core/random.h"

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

Result<PrivateKey> Pkcs11KeyStore::Generate(std::string_view label, KeyType type) {
  auto token = Pkcs11Token::Open(token_);
  if (!token) {
    return token.error();
  }
  const std::string object = ObjectLabel(label);
  if (auto pub = (*token)->GenerateKey(object, type, /*replace=*/true); !pub) {
    return pub.error();
  }
  return (*token)->LoadKey(object);
}

Result<PrivateKey> Pkcs11KeyStore::Load(std::string_view label) {
  auto token = Pkcs11Token::Open(token_);
  if (!token) {
    return token.error();
  }
  return (*token)->LoadKey(ObjectLabel(label));
}

std::string Pkcs11KeyStore::Reference(std::string_view label) const {
  return "pkcs11:module=" + token_.module + ";token=" + token_.token + ";prefix=" + prefix_ +
         ";label=" + std::string(label);
}

Result<std::unique_ptr<KeyStore>> OpenKeyStore(std::string_view spec, const std::string& dir,
                                               KeySecrets secrets) {
  if (spec.empty() || spec == "file" || spec.starts_with("file:")) {
    return std::unique_ptr<KeyStore>(
        std::make_unique<FileKeyStore>(dir + "/keys", std::move(secrets.passphrase)));
  }
  if (!spec.starts_with("pkcs11:")) {
    return Error(Code::kInvalidArgument, "unknown CA key store '" + std::string(spec) +
                                             "'; expected file or pkcs11:module=SO;token=LABEL");
  }
  auto params = ParsePkcs11Params(spec.substr(7), {"prefix"});
  if (!params) {
    return params.error();
  }
  if (!params->contains("module") || !params->contains("token")) {
    return Error(Code::kInvalidArgument,
                 "pkcs11 CA key store needs module= and token=: pkcs11:module=SO;token=LABEL");
  }
  Pkcs11Options token;
  token.module = params->at("module");
  token.token = params->at("token");
  token.pin = std::move(secrets.pin);
  std::string prefix = params->contains("prefix") ? params->at("prefix")
                                                  : "hallmark-ca-" + HexEncode(RandomBytes(4));
  return std::unique_ptr<KeyStore>(
      std::make_unique<Pkcs11KeyStore>(std::move(token), std::move(prefix)));
}

}  // namespace hallmark::ca
