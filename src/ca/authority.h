// Authority: a production-line CA on disk: the manufacturer root, its per-customer
// intermediates, their keys (behind a `KeyStore`) and the issuance log.
//
// Layout of the CA directory (mode 0700):
//   ca.db                      issuance log (SQLite, WAL)
//   root.pem                   the manufacturer root certificate
//   customers/NAME/ca.pem      customer NAME's intermediate
//   customers/NAME/chain.pem   the intermediate followed by the root
//   keys/*.key                 private keys (mode 0600) for the file key store
#ifndef HALLMARK_CA_AUTHORITY_H_
#define HALLMARK_CA_AUTHORITY_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "ca/issuance_log.h"
#include "ca/issuer.h"
#include "ca/key_store.h"
#include "core/certificate.h"
#include "core/clock.h"
#include "core/crl.h"
#include "core/secret_bytes.h"
#include "core/status.h"

namespace hallmark::ca {

inline constexpr std::string_view kRootName = "root";

struct InitOptions {
  std::string organization = "hallmark Manufacturer";
  KeyType key_type = KeyType::kP256;
  std::optional<int64_t> validity;  // default: the root profile's 30 years
  bool no_expiry = false;
};

struct CustomerOptions {
  std::string organization;  // default: the customer's name
  KeyType key_type = KeyType::kP256;
  std::optional<int64_t> validity;  // default: 20 years, capped at the root's notAfter
  bool no_expiry = false;
};

struct CustomerInfo {
  std::string name;
  std::string organization;
  Certificate certificate;
  int64_t created_at = 0;
  int64_t issued = 0;
};

// ValidateCustomerName accepts 1-63 characters of [a-z0-9._-] starting with a letter or digit,
// other than "root".
Status ValidateCustomerName(std::string_view name);

// NormalizeSerial turns a hex serial in any common spelling into the log's form (lowercase,
// whole octets, no leading zero octet). kInvalidArgument if it is not hex.
Result<std::string> NormalizeSerial(std::string_view serial);

// Authority is one CA directory. Not thread-safe.
class Authority {
 public:
  // Init creates a CA in `dir` (created if needed) with a new root key and self-signed root
  // certificate. kAlreadyExists if `dir` already holds a CA. Keys are encrypted with
  // `passphrase` when given.
  static Result<Authority> Init(const std::string& dir, const InitOptions& options,
                                std::optional<SecretBytes> passphrase, const Clock* clock);
  // Init with the CA's keys in `keys` (a PKCS#11 token, say); the issuance log records where
  // each key lives, so that Open finds them again.
  static Result<Authority> Init(const std::string& dir, const InitOptions& options,
                                std::unique_ptr<KeyStore> keys, const Clock* clock);

  // Open opens an existing CA. kFailedPrecondition if `dir` holds no CA. Keys are loaded lazily,
  // so a wrong or missing passphrase shows only when a key is needed.
  static Result<Authority> Open(const std::string& dir, std::optional<SecretBytes> passphrase,
                                const Clock* clock);
  // Open with the secrets of whichever key store the CA was created with (recorded as the root
  // key's reference): a passphrase for key files, a PIN for a PKCS#11 token.
  static Result<Authority> Open(const std::string& dir, KeySecrets secrets, const Clock* clock);

  const Certificate& root() const { return root_; }
  const std::string& dir() const { return dir_; }

  // AddCustomer creates customer `name`'s intermediate (pathLen 0) under the root.
  // kInvalidArgument for a bad name; kAlreadyExists if the customer exists.
  Result<Certificate> AddCustomer(const std::string& name, const CustomerOptions& options);
  Result<std::vector<CustomerInfo>> Customers();
  // CustomerCertificate returns customer `name`'s intermediate. kNotFound names the customers
  // that exist.
  Result<Certificate> CustomerCertificate(const std::string& name);

  // IssuerFor loads the key of authority `name` ("root" or a customer) and returns its Issuer.
  Result<Issuer> IssuerFor(const std::string& name);

  // Find returns the issuance record of `serial`, given in hex as `ca list` or
  // `openssl x509 -serial` print it (any case, optional ':' separators and leading zeros).
  // kInvalidArgument if it is not hex; kNotFound if no such certificate was issued.
  Result<IssuedRecord> Find(const std::string& serial);

  // Revoke marks a certificate revoked. kNotFound, kFailedPrecondition as IssuanceLog::Revoke.
  Result<IssuedRecord> Revoke(const std::string& serial, RevocationReason reason);

  // MakeCrl signs a new CRL for authority `name` listing its revoked, unexpired certificates,
  // valid for `validity` seconds.
  Result<Crl> MakeCrl(const std::string& name, int64_t validity);

  IssuanceLog& log() { return *log_; }

  std::string RootCertPath() const { return dir_ + "/root.pem"; }
  std::string CustomerCertPath(const std::string& name) const {
    return dir_ + "/customers/" + name + "/ca.pem";
  }
  std::string CustomerChainPath(const std::string& name) const {
    return dir_ + "/customers/" + name + "/chain.pem";
  }

 private:
  Authority(std::string dir, std::unique_ptr<KeyStore> keys, std::unique_ptr<IssuanceLog> log,
            Certificate root, const Clock* clock)
      : dir_(std::move(dir)),
        keys_(std::move(keys)),
        log_(std::move(log)),
        root_(std::move(root)),
        clock_(clock) {}

  std::string dir_;
  std::unique_ptr<KeyStore> keys_;
  std::unique_ptr<IssuanceLog> log_;
  Certificate root_;
  const Clock* clock_;
};

}  // namespace hallmark::ca

#endif  // HALLMARK_CA_AUTHORITY_H_
