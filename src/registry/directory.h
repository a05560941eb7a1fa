// DeviceRecord and Directory: what the server needs from the owner's device registry.
#ifndef HALLMARK_REGISTRY_DIRECTORY_H_
#define HALLMARK_REGISTRY_DIRECTORY_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/encoding.h"
#include "core/status.h"
#include "registry/batch.h"

namespace hallmark::registry {

enum class DeviceStatus { kPending, kActive, kRevoked };
std::string_view DeviceStatusName(DeviceStatus status);

// ProvisioningPath says how the identity entered the registry (../shared/DESIGN.md).
enum class ProvisioningPath { kExtract, kInject, kBatch, kEngineer, kManual };
std::string_view ProvisioningPathName(ProvisioningPath path);

// DeviceRecord is one device's current, signed state.
struct DeviceRecord {
  std::string device_id;  // lowercase hex SHA-256 of the DER SubjectPublicKeyInfo
  Bytes public_key;       // DER SubjectPublicKeyInfo
  DeviceStatus status = DeviceStatus::kPending;
  std::string owner;
  ProvisioningPath path = ProvisioningPath::kManual;
  std::string serial;  // human serial number; an attribute, not the identity
  std::string reason;  // why the status last changed ("key compromise"); empty if none given
  int64_t created_at = 0;
  int64_t updated_at = 0;
  uint64_t seq = 0;    // index of the log entry that produced this state
  std::string signer;  // "registrar", or "enrollment:<batch>" for a batch enrollment
  Bytes signature;     // over the record's canonical encoding (docs/adr/0004)

  bool operator==(const DeviceRecord&) const = default;
};

// VerifiedBatch is a batch as the verified log defines it.
struct VerifiedBatch {
  BatchDefinition definition;  // its newest valid entry
  uint64_t claims = 0;         // devices the log enrolled through it within its limits
};

// Directory is the registry as the server sees it: verified lookups and change notification.
// Implementations are thread-safe.
class Directory {
 public:
  virtual ~Directory() = default;

  // Lookup returns the current record of `device_id` after checking its signature and that it
  // is the latest entry for that device in the verified log. kNotFound if there is none;
  // kDataLoss if the stored row fails those checks (tampering).
  virtual Result<DeviceRecord> Lookup(std::string_view device_id) = 0;

  // Refresh reads signed tree heads newer than the last one seen, checks that they extend it,
  // and returns the IDs of devices whose records changed since the last call. kDataLoss if the
  // log was rewritten.
  virtual Result<std::vector<std::string>> Refresh() = 0;

  // LookupBatch returns batch `batch_id` as the verified log defines it (registrar-signed, its
  // newest valid entry). kNotFound if there is none; kFailedPrecondition if this directory does
  // not track batches.
  virtual Result<VerifiedBatch> LookupBatch(std::string_view batch_id) {
    return Error(Code::kFailedPrecondition,
                 "this registry view does not track batches (looking up " +
                     std::string(batch_id.substr(0, 80)) + ")");
  }
};

}  // namespace hallmark::registry

#endif  // HALLMARK_REGISTRY_DIRECTORY_H_
