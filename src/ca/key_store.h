// KeyStore: where the CA keeps its signing keys. FileKeyStore is the file back end;
// Pkcs11KeyStore keeps them inside a PKCS#11 token (an HSM; SoftHSM2 in tests).
#ifndef HALLMARK_CA_KEY_STORE_H_
#define HALLMARK_CA_KEY_STORE_H_

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "core/key.h"
#include "core/pkcs11.h"
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

// Pkcs11KeyStore keeps each CA key as a key pair generated inside a PKCS#11 token, labelled
// `PREFIX/LABEL` ("hallmark-ca-1a2b3c4d/root"). The private keys are sensitive and never
// extractable; the CA signs through the token. `prefix` keeps the keys of CAs that share a
// token apart. Each Generate and Load opens and logs in to the token; the returned key keeps
// its session. Thread-safe.
class Pkcs11KeyStore : public KeyStore {
 public:
  Pkcs11KeyStore(Pkcs11Options token, std::string prefix)
      : token_(std::move(token)), prefix_(std::move(prefix)) {}

  // Generate replaces any key pair labelled `PREFIX/LABEL` in the token (see KeyStore). Errors
  // of Pkcs11Token::Open (missing module or token, wrong PIN) and GenerateKey (kInvalidArgument
  // for Ed25519).
  Result<PrivateKey> Generate(std::string_view label, KeyType type) override;
  Result<PrivateKey> Load(std::string_view label) override;
  // Reference returns "pkcs11:module=SO;token=T;prefix=P;label=LABEL", from which
  // OpenKeyStore reopens the store (the PIN is never part of it).
  std::string Reference(std::string_view label) const override;

 private:
  std::string ObjectLabel(std::string_view label) const {
    return prefix_ + "/" + std::string(label);
  }

  Pkcs11Options token_;
  std::string prefix_;
};

// KeySecrets are what a CA key store may need to unlock its keys.
struct KeySecrets {
  std::optional<SecretBytes> passphrase;  // file store: encrypts the key files
  std::optional<SecretBytes> pin;         // pkcs11 store: the token's user PIN
};

// OpenKeyStore opens the CA key store named by `spec` for the CA in `dir`. `spec` is a store
// spec or a key reference recorded in the issuance log:
//   "", "file" or "file:..."                      FileKeyStore in DIR/keys
//   "pkcs11:module=SO;token=T[;prefix=P][;label=...]"   Pkcs11KeyStore (a new CA without
//                                                  `prefix` gets a fresh random one)
// kInvalidArgument for anything else, or a malformed pkcs11 spec (PIN in the spec included).
// The store is not contacted: token errors show on Generate and Load.
Result<std::unique_ptr<KeyStore>> OpenKeyStore(std::string_view spec, const std::string& dir,
                                               KeySecrets secrets);

}  // namespace hallmark::ca

#endif  // HALLMARK_CA_KEY_STORE_H_
