// Trust policies: how the server decides, from the certificate chain a device presented in the
// TLS handshake, who the device is and whether it is let in.
#ifndef HALLMARK_SERVER_POLICY_H_
#define HALLMARK_SERVER_POLICY_H_

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/certificate.h"
#include "core/clock.h"
#include "core/crl.h"
#include "core/status.h"
#include "server/record_cache.h"

namespace hallmark::server {

// PeerIdentity is who the server believes it is talking to.
struct PeerIdentity {
  std::string device_id;  // SHA-256 of the device key's SubjectPublicKeyInfo
  std::string policy;     // "ca" or "registry"
  std::string owner;
  std::string serial;
  std::string path;       // provisioning path
  std::string subject;    // certificate subject, for logs
  int64_t not_after = 0;  // certificate notAfter (0 if not meaningful)
};

// TrustPolicy decides on a presented chain. Implementations are thread-safe: handshakes on all
// worker threads call Authorize concurrently.
class TrustPolicy {
 public:
  virtual ~TrustPolicy() = default;
  virtual std::string_view name() const = 0;
  // Authorize returns the identity of the device that presented `leaf` (with `untrusted` as the
  // rest of its chain) if this policy lets it in. It runs during the handshake, before the
  // peer has proved possession of the leaf's key (the TLS layer checks CertificateVerify
  // afterwards and fails the handshake if it does not verify), so it must treat its input as
  // hostile. kUnauthenticated with a reason for the server log (never sent to the device).
  virtual Result<PeerIdentity> Authorize(const Certificate& leaf,
                                         std::span<const Certificate> untrusted) const = 0;
};

// CaPolicyOptions configures the `ca` policy.
struct CaPolicyOptions {
  // anchors: the owner's customer intermediate(s). Only chains ending at one of them are
  // accepted; the vendor root is deliberately not an anchor, so a device made for another
  // customer is refused even though the vendor signed it.
  std::vector<Certificate> anchors;
  // crls: revocation lists of the anchors (optional). When given, every anchor must have one.
  std::vector<Crl> crls;
  // cache: optional registry view; a device whose registry record is revoked is refused.
  RecordCache* registry = nullptr;
  const Clock* clock = nullptr;
};

// MakeCaPolicy checks the options (at least one anchor, each a CA certificate; CRLs signed by an
// anchor) and returns the policy. kInvalidArgument names the problem.
Result<std::unique_ptr<TrustPolicy>> MakeCaPolicy(CaPolicyOptions options);

// MakeRegistryPolicy returns the `registry` policy: any certificate over a key whose device ID is
// an active, validly signed registry record (looked up through `cache`).
std::unique_ptr<TrustPolicy> MakeRegistryPolicy(RecordCache* cache);

}  // namespace hallmark::server

#endif  // HALLMARK_SERVER_POLICY_H_
