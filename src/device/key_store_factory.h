// Key store specs: one string names where a device keeps its key, for the CLI and for
// configuration files.
//
//   file:PATH                                   PEM file, mode 0600 (optionally passphrase)
//   pkcs11:module=SO;token=LABEL[;label=KEY]    key inside a PKCS#11 token (PIN from options)
//   tpm:key=PATH[;tcti=TCTI]  or  tpm:PATH      key inside a TPM 2.0, wrapped blob at PATH
//
// Secrets (passphrase, PIN) never appear in a spec; they come in `KeyStoreOptions`.
#ifndef HALLMARK_DEVICE_KEY_STORE_FACTORY_H_
#define HALLMARK_DEVICE_KEY_STORE_FACTORY_H_

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/secret_bytes.h"
#include "core/status.h"
#include "device/key_store.h"

namespace hallmark::device {

// KeyStoreOptions carries the secrets a store may need. Each store takes only what it uses.
struct KeyStoreOptions {
  std::optional<SecretBytes> passphrase;  // file: decrypts (and, on create, encrypts) the PEM
  std::optional<SecretBytes> pin;         // pkcs11: the token's user PIN
};

// KeyStoreFactory turns specs into key stores. Schemes are registered by name; a store that
// lives in a higher part (the PUF store in src/puf) is registered by whoever assembles the
// program (the CLI), so that this part does not depend on it. Not thread-safe while
// registering; `Open` is safe to call concurrently afterwards.
class KeyStoreFactory {
 public:
  // Opener makes a store from the part of the spec after "SCHEME:".
  using Opener = std::function<Result<std::unique_ptr<KeyStore>>(std::string_view body,
                                                                 KeyStoreOptions options)>;

  // WithBuiltins returns a factory that knows `file`, `pkcs11` and `tpm`.
  static KeyStoreFactory WithBuiltins();

  // Register adds `scheme` ("puf"), described by `usage` ("puf:DIR") in error messages.
  // kAlreadyExists if the scheme is taken; kInvalidArgument if it is empty or has a ':'.
  Status Register(const std::string& scheme, std::string usage, Opener opener);

  // Open parses `spec` and opens the store it names. Opening does not touch the key: errors
  // about the key itself (missing, wrong PIN, TPM unreachable) come from Create and Load.
  // kInvalidArgument for a malformed spec or an unknown scheme (the message lists the known
  // ones).
  Result<std::unique_ptr<KeyStore>> Open(std::string_view spec, KeyStoreOptions options) const;

  // Usage lists the accepted forms, one per scheme ("file:PATH", ...).
  std::vector<std::string> Usage() const;

 private:
  struct Scheme {
    std::string usage;
    Opener opener;
  };
  std::map<std::string, Scheme, std::less<>> schemes_;
};

// OpenKeyStore opens `spec` with the built-in schemes (KeyStoreFactory::WithBuiltins()).
Result<std::unique_ptr<KeyStore>> OpenKeyStore(std::string_view spec, KeyStoreOptions options);

}  // namespace hallmark::device

#endif  // HALLMARK_DEVICE_KEY_STORE_FACTORY_H_
