// Pkcs11Token: EC keys generated and kept inside a PKCS#11 token (an HSM, a secure element,
// SoftHSM2 in tests), used through the PKCS#11 API directly. Private keys are created
// sensitive and non-extractable; signing goes through the token (see core/external_key.h), so
// a key from a token signs TLS handshakes, CSRs, certificates and CRLs like any other key.
#ifndef HALLMARK_CORE_PKCS11_H_
#define HALLMARK_CORE_PKCS11_H_

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/key.h"
#include "core/secret_bytes.h"
#include "core/status.h"

namespace hallmark {

// Pkcs11Options names a token: the module (shared library) that drives it, the token's label
// and the user PIN.
struct Pkcs11Options {
  std::string module;
  std::string token;
  std::optional<SecretBytes> pin;
};

// ParsePkcs11Params parses the body of a `pkcs11:` spec: `module` (alias `module-path`),
// `token`, `label` (alias `object`) and whatever `extra_keys` lists. Errors as ParseSpecParams.
Result<std::map<std::string, std::string>> ParsePkcs11Params(
    std::string_view params, const std::vector<std::string>& extra_keys = {});

// Pkcs11Token is a logged-in session on one token. Thread-safe: operations on the session are
// serialised by a mutex (so signatures from one token are made one at a time). Keys loaded from
// the token keep the session (and the module) alive as long as they live.
class Pkcs11Token {
 public:
  // Open loads `options.module`, finds the token labelled `options.token` and logs in with the
  // PIN. kNotFound if the module file or the token does not exist (the message lists the tokens
  // there are); kInvalidArgument if the file is not a PKCS#11 module; kFailedPrecondition if
  // the token needs a PIN and none was given; kPermissionDenied if the PIN is wrong or locked;
  // kUnavailable for other token failures.
  static Result<std::shared_ptr<Pkcs11Token>> Open(const Pkcs11Options& options);

  ~Pkcs11Token();
  Pkcs11Token(const Pkcs11Token&) = delete;
  Pkcs11Token& operator=(const Pkcs11Token&) = delete;

  // GenerateKey makes an EC key pair (P-256 or P-384) labelled `label` inside the token; the
  // private key is a token object, private, sensitive and never extractable. Returns its public
  // key. If a key labelled `label` exists: kAlreadyExists, unless `replace`, in which case the
  // old objects are destroyed first. kInvalidArgument for Ed25519 (not offered through
  // PKCS#11 here); kUnavailable if the token refuses.
  Result<PublicKey> GenerateKey(std::string_view label, KeyType type, bool replace);

  // LoadKey returns a handle that signs with the private key labelled `label`.
  // kNotFound if the token holds no such private key (or its public key object is missing).
  Result<PrivateKey> LoadKey(std::string_view label);

  // HasKey reports whether any object (private or public key) is labelled `label`.
  Result<bool> HasKey(std::string_view label);

  // Describe returns "pkcs11 token 'LABEL'".
  std::string Describe() const;
  const std::string& module() const { return module_; }
  const std::string& token() const { return token_; }

  struct Session;  // the module and the open session; defined in pkcs11.cc

 private:
  Pkcs11Token(std::string module, std::string token, std::shared_ptr<Session> session)
      : module_(std::move(module)), token_(std::move(token)), session_(std::move(session)) {}

  std::string module_;
  std::string token_;
  std::shared_ptr<Session> session_;
};

}  // namespace hallmark

#endif  // HALLMARK_CORE_PKCS11_H_
