// KeyStore: where the CA keeps its signing keys. FileKeyStore is the file back end; a PKCS#11
// back end (SoftHSM2, HSMs) implements the same interface.
#ifndef HALLMARK_CA_KEY_STORE_H_
#define HALLMARK_CA_KEY_STORE_H_

#include <optional>
#include <string>
#include <string_view>

#include "core/key.h"
#include "core/secret_bytes.h"
#include "core/status.h"

namespace hallmark::ca {

// KeyStore creates and loads CA private keys by label ("root", "customer/acme").
// Implementations document their thread-safety; FileKeyStore is safe for concurrent Loads.
class KeyStore {
 public:
  virtual ~KeyStore() = default;

  // Generate creates a key of `type` under `label` and returns it. If a key with that label
  // exists, it is replaced: callers only generate for labels that no committed CA state refers
  // to (a leftover from an attempt that crashed before committing). kUnavailable on storage
  // errors.
  virtual Result<PrivateKey> Generate(std::string_view label, KeyType type) = 0;

  // Load returns the key under `label`. kNotFound if there is none; kPermissionDenied if its
  // storage is not private enough or the passphrase/PIN is wrong; kFailedPrecondition if a
  // passphrase/PIN is needed and none was given.
  virtual Result<PrivateKey> Load(std::string_view label) = 0;

  // Reference names where the key lives, for the issuance log ("file:keys/root.key").
  virtual std::string Reference(std::string_view label) const = 0;
};

// FileKeyStore keeps each key as a PKCS#8 PEM file of mode 0600 under `dir`, encrypted with
// `passphrase` when one is given, and refuses to load a key file that group or others can read.
class FileKeyStore : public KeyStore {
 public:
  FileKeyStore(std::string dir, std::optional<SecretBytes> passphrase)
      : dir_(std::move(dir)), passphrase_(std::move(passphrase)) {}

  Result<PrivateKey> Generate(std::string_view label, KeyType type) override;
  Result<PrivateKey> Load(std::string_view label) override;
  std::string Reference(std::string_view label) const override;

  // PathFor returns the file that holds `label`.
  std::string PathFor(std::string_view label) const;

 private:
  std::string dir_;
  std::optional<SecretBytes> passphrase_;
};

}  // namespace hallmark::ca

#endif  // HALLMARK_CA_KEY_STORE_H_
