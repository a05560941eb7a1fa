// IssuanceLog: the CA's durable record of its authorities and of every certificate it issued,
// kept in SQLite (WAL, synchronous=FULL). A certificate leaves the CA only after its record has
// committed.
#ifndef HALLMARK_CA_ISSUANCE_LOG_H_
#define HALLMARK_CA_ISSUANCE_LOG_H_

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/crl.h"
#include "core/encoding.h"
#include "core/sqlite.h"
#include "core/status.h"

namespace hallmark::ca {

// IssuedRecord is one row of the log.
struct IssuedRecord {
  std::string serial;  // lowercase hex, as Certificate::SerialHex()
  std::string issuer;  // authority name: "root" or a customer name
  std::string profile;
  std::string subject;
  std::string device_id;  // SHA-256 of the subject's SPKI
  int64_t not_before = 0;
  int64_t not_after = 0;
  int64_t issued_at = 0;
  Bytes der;
  std::optional<int64_t> revoked_at;
  RevocationReason reason = RevocationReason::kUnspecified;
};

// AuthorityRecord is a CA the log knows: the root or a customer intermediate.
struct AuthorityRecord {
  std::string name;
  std::string kind;  // "root" or "customer"
  std::string organization;
  Bytes cert_der;
  std::string key_ref;
  int64_t created_at = 0;
};

// IssuanceLog is not thread-safe: use one per thread (SQLite serialises writers across them).
class IssuanceLog {
 public:
  // Open opens or creates the log at `path` and brings its schema up to date.
  static Result<IssuanceLog> Open(const std::string& path);

  // AddAuthority records a new authority together with its own certificate (for a customer, the
  // record of the intermediate the root issued), in one transaction. kAlreadyExists if the name
  // or the serial is taken; nothing is written then.
  Status AddAuthority(const AuthorityRecord& authority, const IssuedRecord& cert);
  Result<AuthorityRecord> FindAuthority(const std::string& name);
  Result<std::vector<AuthorityRecord>> Authorities();

  // Record stores all of `records` in one transaction (one fsync), or none of them.
  // kAlreadyExists if a serial is taken.
  Status Record(std::span<const IssuedRecord> records);

  // Find returns the record with `serial`. kNotFound if there is none.
  Result<IssuedRecord> Find(const std::string& serial);
  // List returns up to `limit` records, newest first, optionally only those of `issuer`.
  Result<std::vector<IssuedRecord>> List(const std::string& issuer, int limit);
  // CountIssued returns how many certificates `issuer` has issued.
  Result<int64_t> CountIssued(const std::string& issuer);

  // Revoke marks `serial` revoked at `at`. kNotFound for an unknown serial; kFailedPrecondition
  // if it is already revoked.
  Status Revoke(const std::string& serial, RevocationReason reason, int64_t at);
  // Revoked lists the revoked certificates of `issuer` that have not expired before `now`.
  Result<std::vector<IssuedRecord>> Revoked(const std::string& issuer, int64_t now);
  // NextCrlNumber returns the next cRLNumber for `issuer`, durably incremented.
  Result<uint64_t> NextCrlNumber(const std::string& issuer);

 private:
  explicit IssuanceLog(sqlite::Database db) : db_(std::move(db)) {}
  Status InsertLocked(const IssuedRecord& r);
  sqlite::Database db_;
  std::optional<sqlite::Statement> insert_;  // cached: issuance is the hot path
};

}  // namespace hallmark::ca

#endif  // HALLMARK_CA_ISSUANCE_LOG_H_
