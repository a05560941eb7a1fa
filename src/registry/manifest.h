// Manifests: the JSON Lines files a factory station writes while it extracts device identities,
// and `hallmark registry import` reads. One identity per line:
//
//   {"public_key": "<Base64 DER SubjectPublicKeyInfo>", "serial": "<serial>",
//    "signature": "<Base64 signature by the factory key over the signing text>"}
//
// The signing text binds the key and serial exactly as written in the line:
//
//   hallmark-manifest-line/1\npublic_key=<the same Base64>\nserial=<serial>\n
//
// The factory key is ECDSA (P-256 or P-384, DER signature over SHA-256/384) or Ed25519.
#ifndef HALLMARK_REGISTRY_MANIFEST_H_
#define HALLMARK_REGISTRY_MANIFEST_H_

#include <string>
#include <string_view>

#include "core/key.h"
#include "core/status.h"

namespace hallmark::registry {

inline constexpr std::string_view kManifestMagic = "hallmark-manifest-line/1";
// kMaxManifestLineLength bounds one line (an RSA-4096 key and signature fit with room to spare).
inline constexpr size_t kMaxManifestLineLength = 16384;

// ManifestSigningText returns the text the factory key signs for one line.
std::string ManifestSigningText(std::string_view public_key_base64, std::string_view serial);

// ManifestIdentity is one verified line.
struct ManifestIdentity {
  PublicKey key;
  std::string serial;
};

// ParseManifestLine parses one line and verifies its signature with `factory_key`.
// kInvalidArgument if it is not a JSON object with string fields public_key, serial and
// signature, or the key or serial is malformed; kUnauthenticated if the signature does not
// verify; kPermissionDenied if the device key's algorithm is not accepted (CheckDeviceKey).
Result<ManifestIdentity> ParseManifestLine(std::string_view line, const PublicKey& factory_key);

// FormatManifestLine returns the line (without newline) for `device_key` and `serial`, signed
// by `factory_key`: what a factory station writes. kInvalidArgument for a bad serial.
Result<std::string> FormatManifestLine(const PublicKey& device_key, std::string_view serial,
                                       const PrivateKey& factory_key);

// CheckDeviceKey accepts the device keys hallmark registers: EC P-256, P-384, P-521, Ed25519
// and RSA of at least 2048 bits. kPermissionDenied names anything else.
Status CheckDeviceKey(const PublicKey& key);

// ValidateSerial accepts 1..kMaxSerialLength bytes of UTF-8 without control characters.
Status ValidateSerial(std::string_view serial);

}  // namespace hallmark::registry

#endif  // HALLMARK_REGISTRY_MANIFEST_H_
