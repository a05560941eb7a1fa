// RegistrarKey: the owner's Ed25519 key that signs device records and tree heads. It lives in a
// file of mode 0600 (optionally passphrase-encrypted PKCS#8), which may stay on another machine;
// the registry database and the server hold only its public key.
#ifndef HALLMARK_REGISTRY_REGISTRAR_KEY_H_
#define HALLMARK_REGISTRY_REGISTRAR_KEY_H_

#include <optional>
#include <string>

#include "core/key.h"
#include "core/secret_bytes.h"
#include "core/status.h"

namespace hallmark::registry {

// RegistrarKey is movable, not copyable. Signing is thread-safe.
class RegistrarKey {
 public:
  // Create generates a new Ed25519 key and writes it to `path` (mode 0600, encrypted with
  // `passphrase` if given). kAlreadyExists if `path` exists (a key is never overwritten);
  // kNotFound if its directory does not exist; kUnavailable on other I/O errors. Nothing is left
  // behind on failure.
  static Result<RegistrarKey> Create(const std::string& path,
                                     const std::optional<SecretBytes>& passphrase);

  // Load reads the key at `path`. kNotFound if there is none; kPermissionDenied if group or
  // others can access the file or the passphrase is wrong; kFailedPrecondition if the key is
  // encrypted and no passphrase was given; kInvalidArgument if it is not an Ed25519 key.
  static Result<RegistrarKey> Load(const std::string& path,
                                   const std::optional<SecretBytes>& passphrase);

  // FromPrivateKey wraps an existing key. kInvalidArgument unless it is Ed25519.
  static Result<RegistrarKey> FromPrivateKey(PrivateKey key);

  const PublicKey& Public() const { return key_.Public(); }
  const PrivateKey& key() const { return key_; }

 private:
  explicit RegistrarKey(PrivateKey key) : key_(std::move(key)) {}
  PrivateKey key_;
};

// LoadRegistrarPublicKey reads a PEM public key from `path` (for example the `KEY.pub` that
// `registry init` writes). kNotFound if the file does not exist; kInvalidArgument if it is not
// an Ed25519 public key.
Result<PublicKey> LoadRegistrarPublicKey(const std::string& path);

// CheckRegistrarPublicKey succeeds if `key` is Ed25519. kInvalidArgument names what it is.
Status CheckRegistrarPublicKey(const PublicKey& key);

}  // namespace hallmark::registry

#endif  // HALLMARK_REGISTRY_REGISTRAR_KEY_H_
