#include "registry/record.h"

#include <charconv>
#include <vector>

#include "core/encoding.h"
#include "core/signature_memo.h"
#include "registry/internal/canonical_text.h"

namespace hallmark::registry {
namespace {

using internal::AsText;
using internal::ParseDecimal;

constexpr std::string_view kFieldNames[] = {
    "device_id", "public_key", "status",     "owner", "path",   "serial",
    "reason",    "created_at", "updated_at", "seq",   "signer",
};

// Utf8SequenceLength returns the length of the well-formed UTF-8 sequence starting at `s[i]`, or
// 0 if there is none (overlong forms, surrogates and code points above U+10FFFF are refused).
size_t Utf8SequenceLength(std::string_view s, size_t i) {
  auto byte = [&s](size_t k) { return static_cast<uint8_t>(s[k]); };
  uint8_t b0 = byte(i);
  if (b0 < 0x80) {
    return 1;
  }
  size_t len = 0;
  uint8_t lo = 0x80;
  uint8_t hi = 0xbf;
  if (b0 >= 0xc2 && b0 <= 0xdf) {
    len = 2;
  } else if (b0 >= 0xe0 && b0 <= 0xef) {
    len = 3;
    lo = b0 == 0xe0 ? 0xa0 : 0x80;
    hi = b0 == 0xed ? 0x9f : 0xbf;
  } else if (b0 >= 0xf0 && b0 <= 0xf4) {
    len = 4;
    lo = b0 == 0xf0 ? 0x90 : 0x80;
    hi = b0 == 0xf4 ? 0x8f : 0xbf;
  } else {
    return 0;
  }
  if (i + len > s.size()) {
    return 0;
  }
  if (byte(i + 1) < lo || byte(i + 1) > hi) {
    return 0;
  }
  for (size_t k = 2; k < len; ++k) {
    if (byte(i + k) < 0x80 || byte(i + k) > 0xbf) {
      return 0;
    }
  }
  return len;
}

}  // namespace

std::string_view DeviceStatusName(DeviceStatus status) {
  switch (status) {
    case DeviceStatus::kPending:
      return "pending";
    case DeviceStatus::kActive:
      return "active";
    case DeviceStatus::kRevoked:
      return "revoked";
  }
  return "unknown";
}

std::string_view ProvisioningPathName(ProvisioningPath path) {
  switch (path) {
    case ProvisioningPath::kExtract:
      return "extract";
    case ProvisioningPath::kInject:
      return "inject";
    case ProvisioningPath::kBatch:
      return "batch";
    case ProvisioningPath::kEngineer:
      return "engineer";
    case ProvisioningPath::kManual:
      return "manual";
  }
  return "unknown";
}

Result<DeviceStatus> ParseDeviceStatus(std::string_view name) {
  for (DeviceStatus s : {DeviceStatus::kPending, DeviceStatus::kActive, DeviceStatus::kRevoked}) {
    if (name == DeviceStatusName(s)) {
      return s;
    }
  }
  return Error(Code::kInvalidArgument, "unknown device status '" + std::string(name) +
                                           "'; expected pending, active or revoked");
}

Result<ProvisioningPath> ParseProvisioningPath(std::string_view name) {
  for (ProvisioningPath p :
       {ProvisioningPath::kExtract, ProvisioningPath::kInject, ProvisioningPath::kBatch,
        ProvisioningPath::kEngineer, ProvisioningPath::kManual}) {
    if (name == ProvisioningPathName(p)) {
      return p;
    }
  }
  return Error(Code::kInvalidArgument,
               "unknown provisioning path '" + std::string(name) +
                   "'; expected extract, inject, batch, engineer or manual");
}

Status ValidateText(std::string_view field, std::string_view value, size_t max_length) {
  if (value.size() > max_length) {
    return Error(Code::kInvalidArgument,
                 std::string(field) + " is " + std::to_string(value.size()) +
                     " bytes long; at most " + std::to_string(max_length) + " are allowed");
  }
  for (size_t i = 0; i < value.size();) {
    auto c = static_cast<uint8_t>(value[i]);
    if (c < 0x20 || c == 0x7f) {
      char code[8];
      std::snprintf(code, sizeof(code), "0x%02x", c);
      return Error(Code::kInvalidArgument, std::string(field) + " contains control character " +
                                               code + " at byte " + std::to_string(i) +
                                               "; newlines and control characters are not allowed");
    }
    size_t len = Utf8SequenceLength(value, i);
    if (len == 0) {
      return Error(Code::kInvalidArgument,
                   std::string(field) + " is not valid UTF-8 at byte " + std::to_string(i));
    }
    i += len;
  }
  return OkStatus();
}

bool IsDeviceId(std::string_view id) {
  if (id.size() != 64) {
    return false;
  }
  for (char c : id) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
      return false;
    }
  }
  return true;
}

Result<std::string> NormalizeDeviceId(std::string_view id) {
  auto bytes = HexDecode(id);
  if (!bytes || bytes->size() != 32) {
    return Error(Code::kInvalidArgument,
                 "'" + std::string(id.substr(0, 80)) +
                     "' is not a device ID; expected 64 hex digits (SHA-256 of the public key)");
  }
  return HexEncode(*bytes);
}

Result<std::string> CanonicalRecord(const DeviceRecord& r) {
  if (r.public_key.empty()) {
    return Error(Code::kInvalidArgument, "record has no public key");
  }
  if (r.device_id != DeviceIdFromSpki(r.public_key)) {
    return Error(Code::kInvalidArgument, "record device_id " + r.device_id.substr(0, 80) +
                                             " is not the SHA-256 of its public key");
  }
  struct TextField {
    std::string_view name;
    const std::string& value;
    size_t max;
  };
  for (const TextField& f : {TextField{"owner", r.owner, kMaxOwnerLength},
                             TextField{"serial", r.serial, kMaxSerialLength},
                             TextField{"reason", r.reason, kMaxReasonLength},
                             TextField{"signer", r.signer, kMaxSignerLength}}) {
    if (auto s = ValidateText(f.name, f.value, f.max); !s) {
      return s.error();
    }
  }
  if (r.signer.empty()) {
    return Error(Code::kInvalidArgument, "record has no signer");
  }
  internal::CanonicalWriter w(kRecordMagic);
  w.Line("device_id", r.device_id)
      .Line("public_key", Base64Encode(r.public_key))
      .Line("status", DeviceStatusName(r.status))
      .Line("owner", r.owner)
      .Line("path", ProvisioningPathName(r.path))
      .Line("serial", r.serial)
      .Line("reason", r.reason)
      .Line("created_at", std::to_string(r.created_at))
      .Line("updated_at", std::to_string(r.updated_at))
      .Line("seq", std::to_string(r.seq))
      .Line("signer", r.signer);
  return w.Take();
}

Result<DeviceRecord> ParseCanonicalRecord(std::span<const uint8_t> bytes) {
  auto bad = [](const std::string& why) {
    return Error(Code::kInvalidArgument, "not a canonical device record: " + why);
  };
  auto split = internal::SplitCanonical(AsText(bytes), kRecordMagic, kFieldNames,
                                        "not a canonical device record");
  if (!split) {
    return split.error();
  }
  const std::vector<std::string_view>& values = *split;
  DeviceRecord r;
  r.device_id = std::string(values[0]);
  auto key = Base64Decode(values[1]);
  if (!key) {
    return bad("public_key is not Base64");
  }
  r.public_key = std::move(*key);
  auto status = ParseDeviceStatus(values[2]);
  if (!status) {
    return bad(status.error().message());
  }
  r.status = *status;
  r.owner = std::string(values[3]);
  auto path = ParseProvisioningPath(values[4]);
  if (!path) {
    return bad(path.error().message());
  }
  r.path = *path;
  r.serial = std::string(values[5]);
  r.reason = std::string(values[6]);
  if (!ParseDecimal(values[7], &r.created_at) || !ParseDecimal(values[8], &r.updated_at) ||
      !ParseDecimal(values[9], &r.seq)) {
    return bad("created_at, updated_at or seq is not a canonical decimal number");
  }
  r.signer = std::string(values[10]);
  // Re-encoding catches everything else (non-canonical Base64, bad text, wrong device ID).
  auto again = CanonicalRecord(r);
  if (!again) {
    return bad(again.error().message());
  }
  if (*again != AsText(bytes)) {
    return bad("it is not in canonical form");
  }
  return r;
}

Result<std::string_view> EntryDeviceId(std::span<const uint8_t> bytes) {
  std::string_view text = AsText(bytes);
  constexpr std::string_view kPrefix = "hallmark-device-record/1\ndevice_id=";
  if (text.size() < kPrefix.size() + 65 || text.substr(0, kPrefix.size()) != kPrefix ||
      text[kPrefix.size() + 64] != '\n') {
    return Error(Code::kInvalidArgument, "log entry is not a device record");
  }
  std::string_view id = text.substr(kPrefix.size(), 64);
  if (!IsDeviceId(id)) {
    return Error(Code::kInvalidArgument, "log entry has a malformed device_id");
  }
  return id;
}

std::optional<std::string_view> EntrySigner(std::span<const uint8_t> bytes) {
  std::string_view text = AsText(bytes);
  constexpr std::string_view kSigner = "\nsigner=";
  if (text.empty() || text.back() != '\n') {
    return std::nullopt;
  }
  size_t start = text.rfind('\n', text.size() - 2);
  if (start == std::string_view::npos || text.substr(start, kSigner.size()) != kSigner) {
    return std::nullopt;
  }
  return text.substr(start + kSigner.size(), text.size() - 1 - start - kSigner.size());
}

Status SignRecord(const PrivateKey& key, DeviceRecord* record) {
  auto text = CanonicalRecord(*record);
  if (!text) {
    return text.error();
  }
  auto sig = key.Sign(AsBytes(*text));
  if (!sig) {
    return sig.error();
  }
  record->signature = std::move(*sig);
  return OkStatus();
}

Status VerifyRecord(const PublicKey& key, const DeviceRecord& record) {
  auto text = CanonicalRecord(record);
  if (!text) {
    return text.error();
  }
  if (auto s = SignatureMemo::Shared().Verify(key, AsBytes(*text), record.signature); !s) {
    return Error(Code::kUnauthenticated,
                 "signature of device " + record.device_id + " (seq " + std::to_string(record.seq) +
                     ") does not verify with the " + record.signer + " key");
  }
  return OkStatus();
}

}  // namespace hallmark::registry
