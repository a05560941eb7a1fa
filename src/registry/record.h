// The canonical encoding of a `DeviceRecord`: the exact bytes the registrar signs and the Merkle
// log stores as a leaf (docs/adr/0004-registry-integrity.md, docs/registry.md).
//
//   hallmark-device-record/1
//   device_id=<64 lowercase hex: SHA-256 of the DER SubjectPublicKeyInfo>
//   public_key=<standard Base64 of the DER SubjectPublicKeyInfo>
//   status=<pending|active|revoked>
//   owner=<text>
//   path=<extract|inject|batch|engineer|manual>
//   serial=<text>
//   reason=<text>
//   created_at=<decimal seconds since the epoch>
//   updated_at=<decimal seconds since the epoch>
//   seq=<decimal log index>
//   signer=<registrar|enrollment:NAME>
//
// Every line ends in "\n". Text is UTF-8 without control characters, so a value can never
// contain a line break and every record has exactly one encoding.
#ifndef HALLMARK_REGISTRY_RECORD_H_
#define HALLMARK_REGISTRY_RECORD_H_

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "core/key.h"
#include "core/status.h"
#include "registry/directory.h"

namespace hallmark::registry {

inline constexpr std::string_view kRecordMagic = "hallmark-device-record/1";
inline constexpr std::string_view kRegistrarSigner = "registrar";
// Limits on text fields, in bytes.
inline constexpr size_t kMaxSerialLength = 128;
inline constexpr size_t kMaxOwnerLength = 256;
inline constexpr size_t kMaxReasonLength = 256;
inline constexpr size_t kMaxSignerLength = 64;

// ParseDeviceStatus accepts "pending", "active" and "revoked". kInvalidArgument otherwise.
Result<DeviceStatus> ParseDeviceStatus(std::string_view name);
// ParseProvisioningPath accepts the names `ProvisioningPathName` returns. kInvalidArgument
// otherwise.
Result<ProvisioningPath> ParseProvisioningPath(std::string_view name);

// ValidateText checks that `value` (the field called `field`) is UTF-8 without control
// characters and at most `max_length` bytes. kInvalidArgument names the field and the problem.
Status ValidateText(std::string_view field, std::string_view value, size_t max_length);

// IsDeviceId reports whether `id` is 64 lowercase hex digits.
bool IsDeviceId(std::string_view id);
// NormalizeDeviceId accepts a device ID in upper- or lowercase hex (optionally with ':'
// separators) and returns it in lowercase. kInvalidArgument names the input otherwise.
Result<std::string> NormalizeDeviceId(std::string_view id);

// CanonicalRecord returns the canonical encoding of `record` (every field except `signature`).
// kInvalidArgument if a field cannot be encoded: a text field with a control character, invalid
// UTF-8 or too long, an empty public key, or a `device_id` that is not the SHA-256 of
// `public_key`.
Result<std::string> CanonicalRecord(const DeviceRecord& record);

// ParseCanonicalRecord parses the canonical encoding back into a record (without signature).
// kInvalidArgument unless `bytes` is exactly the canonical encoding of some record.
Result<DeviceRecord> ParseCanonicalRecord(std::span<const uint8_t> bytes);

// EntryDeviceId returns the device ID of a canonical record without parsing the rest: the fast
// path for replaying the log. kInvalidArgument if `bytes` does not start like a record.
Result<std::string_view> EntryDeviceId(std::span<const uint8_t> bytes);

// EntrySigner returns the value of the last line of a log entry, if it is a `signer=` line
// (device records and batch definitions both end with one); nullopt otherwise.
std::optional<std::string_view> EntrySigner(std::span<const uint8_t> bytes);

// SignRecord sets `record->signature` to `key`'s signature over the canonical encoding.
// Errors of `CanonicalRecord`, or of signing.
Status SignRecord(const PrivateKey& key, DeviceRecord* record);

// VerifyRecord checks `record.signature` over its canonical encoding with `key` (the registrar's,
// or for an "enrollment:B" record the enrollment key batch B names). kUnauthenticated if it does
// not verify; kInvalidArgument if the record cannot be encoded.
Status VerifyRecord(const PublicKey& key, const DeviceRecord& record);

}  // namespace hallmark::registry

#endif  // HALLMARK_REGISTRY_RECORD_H_
