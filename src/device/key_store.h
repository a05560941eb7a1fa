// KeyStore: where a device keeps (or regenerates) its identity key. The file store lives here;
// PKCS#11, TPM 2.0 and PUF stores implement the same interface.
#ifndef HALLMARK_DEVICE_KEY_STORE_H_
#define HALLMARK_DEVICE_KEY_STORE_H_

#include <optional>
#include <string>

#include "core/key.h"
#include "core/secret_bytes.h"
#include "core/status.h"

namespace hallmark::device {

// KeyStore holds one device identity key. The private key never leaves the store in a form
// other than an OpenSSL key handle that signs. Implementations state their thread-safety.
class KeyStore {
 public:
  virtual ~KeyStore() = default;
  // Create makes the device key inside the store and returns its public key.
  // kAlreadyExists if the store already holds a key (a device identity is never silently
  // replaced).
  virtual Result<PublicKey> Create(KeyType type) = 0;
  // Load returns a handle that signs with the device key. kNotFound if there is none;
  // kPermissionDenied or kFailedPrecondition if it is locked (file mode, passphrase, PIN).
  virtual Result<PrivateKey> Load() = 0;
  // Describe names the store for messages ("file:/path/key.pem").
  virtual std::string Describe() const = 0;
};

// FileKeyStore keeps the key as PKCS#8 PEM (mode 0600, optionally passphrase-encrypted) at
// `path`. Thread-compatible: concurrent Loads are safe, Create is not.
class FileKeyStore : public KeyStore {
 public:
  FileKeyStore(std::string path, std::optional<SecretBytes> passphrase)
      : path_(std::move(path)), passphrase_(std::move(passphrase)) {}

  Result<PublicKey> Create(KeyType type) override;
  Result<PrivateKey> Load() override;
  std::string Describe() const override { return "file:" + path_; }

 private:
  std::string path_;
  std::optional<SecretBytes> passphrase_;
};

}  // namespace hallmark::device

#endif  // HALLMARK_DEVICE_KEY_STORE_H_
