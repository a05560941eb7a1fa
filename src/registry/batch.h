// Batches: the registrar-signed limits within which the server's enrollment key may enroll
// devices that prove knowledge of a batch secret (docs/enrollment.md). A batch definition is a
// log entry like a device record, so it is covered by the Merkle log and the signed tree heads:
// it cannot be altered, deleted or rolled back (un-revoked) without the registrar key.
//
//   hallmark-batch/1
//   batch_id=<1-40 of [a-z0-9._-], starting with a letter or digit>
//   status=<active|revoked>
//   owner=<text>
//   size=<decimal: how many devices may claim>
//   expires_at=<decimal seconds since the epoch: no claim after this>
//   verifier=<standard Base64 DER SubjectPublicKeyInfo of the key derived from the secret>
//   enrollment_key=<standard Base64 DER SubjectPublicKeyInfo of the enrollment key>
//   reason=<text>
//   created_at=<decimal>
//   updated_at=<decimal>
//   seq=<decimal log index>
//   signer=registrar
//
// A device enrolled through batch B has a record signed by the enrollment key with
// `signer=enrollment:B`. Such a record is valid only when (in log order) B was defined before it
// and not yet revoked, it is the device's first entry, active, path `batch`, owner B's owner,
// created no later than B's expiry, its serial is not yet claimed in B, and fewer than B's size
// devices claimed before it. The server's `ServingDirectory` and `registry verify` both apply
// these rules (internal/batch_book.h), so a stolen enrollment key can enroll at most `size`
// devices per batch that names it, and none after the registrar revoked the batch.
#ifndef HALLMARK_REGISTRY_BATCH_H_
#define HALLMARK_REGISTRY_BATCH_H_

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "core/encoding.h"
#include "core/key.h"
#include "core/status.h"

namespace hallmark::registry {

inline constexpr std::string_view kBatchMagic = "hallmark-batch/1";
inline constexpr std::string_view kEnrollmentSignerPrefix = "enrollment:";
inline constexpr size_t kMaxBatchIdLength = 40;
// kMaxBatchSize bounds a batch: a leaked secret enrolls at most this many devices.
inline constexpr uint64_t kMaxBatchSize = 10'000'000;

enum class BatchStatus { kActive, kRevoked };
std::string_view BatchStatusName(BatchStatus status);

// BatchDefinition is one signed batch entry: the batch's state after the entry.
struct BatchDefinition {
  std::string batch_id;
  BatchStatus status = BatchStatus::kActive;
  std::string owner;
  uint64_t size = 0;
  int64_t expires_at = 0;
  Bytes verifier;        // DER SPKI: the public key derived from the batch secret
  Bytes enrollment_key;  // DER SPKI: the server key allowed to sign this batch's enrollments
  std::string reason;    // why it was revoked; empty otherwise
  int64_t created_at = 0;
  int64_t updated_at = 0;
  uint64_t seq = 0;
  std::string signer;  // always "registrar"
  Bytes signature;

  bool operator==(const BatchDefinition&) const = default;
};

// ClaimRow is one row of the `claims` table: the index of enrollments by (batch, serial) that
// the claim path consults. It is derived from the log; `registry verify` checks it.
struct ClaimRow {
  std::string batch_id;
  std::string serial;
  std::string device_id;
  uint64_t seq = 0;  // the log entry of the enrollment record
  int64_t claimed_at = 0;
};

// CloneAlert records a refused claim for a serial that another key already claimed: two
// devices holding the batch secret and the same serial, so possibly a cloned device.
struct CloneAlert {
  int64_t id = 0;
  std::string batch_id;
  std::string serial;
  std::string device_id;   // the key that was refused
  std::string claimed_by;  // the device that holds the serial
  std::string peer;        // network address of the refused claim
  int64_t at = 0;
};

// ValidateBatchId accepts 1..kMaxBatchIdLength characters of [a-z0-9._-] starting with a letter
// or digit. kInvalidArgument otherwise.
Status ValidateBatchId(std::string_view batch_id);

// EnrollmentSigner returns "enrollment:<batch_id>".
std::string EnrollmentSigner(std::string_view batch_id);
// SignerBatch returns the batch of an "enrollment:<batch_id>" signer, or nullopt for any other.
std::optional<std::string_view> SignerBatch(std::string_view signer);

// IsBatchEntry reports whether log entry bytes start like a batch definition.
bool IsBatchEntry(std::span<const uint8_t> entry);

// CanonicalBatch returns the canonical encoding (without signature). kInvalidArgument if a field
// cannot be encoded (bad batch ID or text, size 0 or above kMaxBatchSize, empty keys).
Result<std::string> CanonicalBatch(const BatchDefinition& batch);

// ParseCanonicalBatch parses the canonical encoding (signature empty). kInvalidArgument unless
// `bytes` is exactly the canonical encoding of some batch.
Result<BatchDefinition> ParseCanonicalBatch(std::span<const uint8_t> bytes);

// VerifyBatch checks `batch.signature` with the registrar key. kUnauthenticated if it does not
// verify (or the batch names another signer); kInvalidArgument if it cannot be encoded.
Status VerifyBatch(const PublicKey& registrar, const BatchDefinition& batch);

}  // namespace hallmark::registry

#endif  // HALLMARK_REGISTRY_BATCH_H_
