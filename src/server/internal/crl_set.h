// CrlSet: the CRLs of the `ca` policy's anchors, one per anchor, reloaded from their files when
// they change.
#ifndef HALLMARK_SERVER_INTERNAL_CRL_SET_H_
#define HALLMARK_SERVER_INTERNAL_CRL_SET_H_

#include <openssl/x509.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/certificate.h"
#include "core/clock.h"
#include "core/crl.h"
#include "core/status.h"
#include "server/metrics.h"
#include "server/policy.h"

namespace hallmark::server::internal {

// CrlSet is thread-safe: `Current` is lock-free and may run concurrently with `Reload`; reloads
// are serialised.
class CrlSet {
 public:
  // Snapshot is the set of CRLs in force at one moment. Immutable.
  struct Snapshot {
    std::vector<Crl> crls;             // in anchor order
    std::vector<std::string> origins;  // where each came from: a file path, or "(given)"
    std::vector<const X509*> issuers;  // the anchors, as the verification store holds them

    // For returns the CRL of the anchor `issuer` (compared by identity), or null.
    const Crl* For(const X509* issuer) const;
    // Describe names the CRL of `issuer`, its origin and nextUpdate, for a log line.
    std::string Describe(const X509* issuer) const;
  };

  // Create assigns each CRL (given or read from `files`) to the anchor that issued and signed
  // it. Since only such CRLs are ever in force, a verification can trust them without checking
  // their signatures again. kInvalidArgument if a CRL matches no anchor, two CRLs match one
  // anchor, (when there are CRLs at all) an anchor has none, or a CRL is of a kind this check
  // does not handle (no nextUpdate; partial or delta; a critical extension); errors of reading
  // a file name the file. `clock` and
  // `metrics` (may be null) must outlive the set.
  static Result<std::unique_ptr<CrlSet>> Create(std::span<const Certificate> anchors,
                                                std::vector<Crl> crls,
                                                const std::vector<std::string>& files,
                                                const Clock* clock, Metrics* metrics);

  // Current returns the CRLs in force; null if no CRLs are configured.
  std::shared_ptr<const Snapshot> Current() const { return current_.load(); }

  // Reload re-reads the files that changed since they were last read (see
  // `CaPolicy::ReloadCrls`), and reports a CRL in force that went stale since the last call.
  CrlReloadReport Reload();

  bool has_files() const { return !files_.empty(); }

 private:
  // FileState is what Reload knows about one CRL file.
  struct FileState {
    std::string path;
    size_t anchor = 0;
    std::string stamp;  // size, times and inode when last read; "" if it could not be stat'ed
  };

  CrlSet(std::span<const Certificate> anchors, const Clock* clock, Metrics* metrics)
      : anchors_(anchors.begin(), anchors.end()), clock_(clock), metrics_(metrics) {}
  // Check returns the index of the anchor that issued and signed `crl`, if it is `expected`
  // (any anchor when nullopt). kInvalidArgument otherwise, naming `origin`.
  Result<size_t> Check(const Crl& crl, const std::string& origin,
                       std::optional<size_t> expected) const;
  void Publish(std::vector<Crl> crls, std::vector<std::string> origins);
  void Loaded(size_t anchor, const Crl& crl, const std::string& origin) const;

  const std::vector<Certificate> anchors_;
  const Clock* clock_;
  Metrics* metrics_;
  std::mutex reload_mu_;
  std::vector<FileState> files_;
  std::vector<bool> stale_reported_;  // by anchor: the CRL in force was reported stale
  std::atomic<std::shared_ptr<const Snapshot>> current_;
};

}  // namespace hallmark::server::internal

#endif  // HALLMARK_SERVER_INTERNAL_CRL_SET_H_
