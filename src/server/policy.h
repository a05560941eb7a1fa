// Trust policies: how the server decides, from the certificate chain a device presented in the
// TLS handshake, who the device is and whether it is let in.
#ifndef HALLMARK_SERVER_POLICY_H_
#define HALLMARK_SERVER_POLICY_H_

#include <chrono>
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
#include "server/metrics.h"
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
  // accepted; the vendor root is deliberately not an anchor, so a device the vendor made for
  // another customer is refused even though the vendor signed it.
  std::vector<Certificate> anchors;
  // crls and crl_files: revocation lists of the anchors, optional. When any is given, every
  // anchor must have exactly one, from either list. `crls` stay as given; `crl_files` (PEM or
  // DER) are re-read when they change on disk (see `CaPolicy::ReloadCrls`).
  std::vector<Crl> crls;
  std::vector<std::string> crl_files;
  // crl_reload: how often a background thread checks `crl_files` for changes; zero: never
  // (call `ReloadCrls` yourself).
  std::chrono::milliseconds crl_reload{std::chrono::seconds(10)};
  // registry: optional registry view; a device whose registry record is revoked is refused.
  RecordCache* registry = nullptr;
  const Clock* clock = nullptr;  // default: the system clock
  // metrics: optional; CRL loads and chain cache hits are counted there.
  Metrics* metrics = nullptr;
  // chain_cache_size: how many successful chain signature verifications are remembered, keyed
  // by the SHA-256 of the presented certificates; 0 disables the cache.
  size_t chain_cache_size = 100'000;
};

// CrlReloadReport says what one `ReloadCrls` did.
struct CrlReloadReport {
  std::vector<std::string> reloaded;  // files whose new CRL is now in force
  std::vector<Error> refused;         // files that changed but were refused (old CRL stays)
};

// CaPolicy is the `ca` policy: the presented chain must verify to one of the anchors, with
// clientAuth purpose, within validity, not revoked by the anchor's CRL nor in the registry.
//
// A successful verification of a chain's signatures is cached (keyed by the SHA-256 of the leaf
// and of the intermediates the device presented; never past the chain's earliest notAfter), so
// a device that reconnects skips the signature check. Everything else (validity times, purpose,
// CRL and CRL freshness, registry status) is decided again on every call.
//
// A CRL past its nextUpdate refuses every device of its anchor (a stale CRL must not pass as
// "nothing revoked") until a fresh one is loaded. Thread-safe.
class CaPolicy : public TrustPolicy {
 public:
  // ReloadCrls re-reads each CRL file that changed (size, times or inode) since it was last
  // read. A new CRL takes effect for the next decision if it parses, is issued and signed by
  // the same anchor as the one it replaces, and is not older (thisUpdate) than it; otherwise it
  // is refused with a log line and the previous CRL stays in force. Never fails as a whole.
  virtual CrlReloadReport ReloadCrls() = 0;
};

// MakeCaPolicy checks the options and loads the CRL files: at least one anchor, each a CA
// certificate and not self-signed; each CRL issued and signed by an anchor; when CRLs are given,
// exactly one per anchor. kInvalidArgument names the problem (and the anchor or file); errors
// of reading a CRL file name the file. Starts the CRL reload thread if `crl_reload` > 0 and
// there are `crl_files`.
Result<std::unique_ptr<CaPolicy>> MakeCaPolicy(CaPolicyOptions options);

// MakeRegistryPolicy returns the `registry` policy: any certificate over a key whose device ID is
// an active, validly signed registry record (looked up through `cache`).
std::unique_ptr<TrustPolicy> MakeRegistryPolicy(RecordCache* cache);

}  // namespace hallmark::server

#endif  // HALLMARK_SERVER_POLICY_H_
