// PendingDevice: a device that asked to be enrolled by an operator (the "engineer present" path,
// docs/enrollment.md). Pending requests live in their own table, outside the signed log: they
// grant nothing, and anyone who can reach the claim endpoint can make one. An operator compares
// the request's code with the one the device shows and approves it (`Registry::Approve`, which
// the registrar signs) or rejects it.
#ifndef HALLMARK_REGISTRY_PENDING_H_
#define HALLMARK_REGISTRY_PENDING_H_

#include <cstdint>
#include <string>

#include "core/encoding.h"

namespace hallmark::registry {

struct PendingDevice {
  std::string device_id;  // SHA-256 of `public_key`, checked before anything is approved
  Bytes public_key;       // DER SubjectPublicKeyInfo
  std::string serial;     // what the device says its serial is (may be empty)
  std::string peer;       // network address of the latest request
  int64_t first_seen = 0;
  int64_t last_seen = 0;
  uint64_t requests = 0;  // how many times the device asked

  bool operator==(const PendingDevice&) const = default;
};

}  // namespace hallmark::registry

#endif  // HALLMARK_REGISTRY_PENDING_H_
