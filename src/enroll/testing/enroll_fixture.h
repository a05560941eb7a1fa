// Test fixture for the enrollment handlers: a registry with a registrar key, a server
// enrollment key, an owner CA with customer "acme", one batch, the handlers built by
// `MakeHandlers` from files as the server would, and fake TLS connections.
#ifndef HALLMARK_ENROLL_TESTING_ENROLL_FIXTURE_H_
#define HALLMARK_ENROLL_TESTING_ENROLL_FIXTURE_H_

#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "ca/authority.h"
#include "core/clock.h"
#include "core/key.h"
#include "core/secret_bytes.h"
#include "enroll/enroll.h"
#include "registry/registrar_key.h"
#include "registry/registry.h"
#include "registry/serving_directory.h"
#include "server/handler.h"
#include "server/policy.h"
#include "testing/matchers.h"

namespace hallmark::enroll::testing {

// FakeConnection is what the TLS layer would report for one connection: the client's
// certificate, its address and the connection's exporter (derived from a per-connection random
// secret, so two connections never share one).
class FakeConnection {
 public:
  FakeConnection(const PrivateKey& key, const Clock& clock, std::string peer = "192.0.2.10:4000");
  // FromCertificate presents `leaf` (any certificate over the device key).
  FakeConnection(Certificate leaf, std::string peer);

  // Exporter returns the claim exporter of this connection.
  Bytes Exporter() const;
  // Context returns the ClientContext, with `identity` if the listener's policy accepted it.
  server::ClientContext Context(const server::PeerIdentity* identity = nullptr) const;
  const Certificate& leaf() const { return leaf_; }

 private:
  Certificate leaf_;
  std::string peer_;
  Bytes secret_;
};

// ErrorOf returns the "error" member of a JSON refusal, or "" if the body is not one.
std::string ErrorOf(const server::HttpResponse& res);

class EnrollTest : public ::testing::Test {
 protected:
  void SetUp() override;

  // Handler returns the handler mounted on `path` (fails the test if there is none).
  server::Handler& Handler(std::string_view path);

  // CreateBatch makes a batch in the registry and refreshes the server's view. Returns its
  // secret.
  SecretBytes CreateBatch(const std::string& id, uint64_t size, int64_t lifetime = 86400);

  // ClaimBody returns the JSON a device with `key` sends on `conn` for `batch_id`/`serial`,
  // proving `secret`.
  std::string ClaimBody(const FakeConnection& conn, const PrivateKey& key,
                        const SecretBytes& secret, const std::string& batch_id,
                        const std::string& serial);

  // Post sends `body` to `path` on `conn`.
  server::HttpResponse Post(std::string_view path, const FakeConnection& conn,
                            const std::string& body,
                            const server::PeerIdentity* identity = nullptr);

  // Claim makes a fresh connection for `key` and claims.
  server::HttpResponse Claim(const PrivateKey& key, const SecretBytes& secret,
                             const std::string& batch_id, const std::string& serial,
                             const std::string& peer = "192.0.2.10:4000");

  // Identity runs the registry policy on `leaf`, as the device listener would.
  Result<server::PeerIdentity> Identity(const Certificate& leaf);

  // Refresh makes the server's view and its cache pick up registry changes.
  void Refresh();

  static PrivateKey NewKey(KeyType type = KeyType::kP256);

  ::hallmark::testing::TempDir dir_;
  FakeClock clock_{1'700'000'000};
  std::chrono::steady_clock::time_point mono_{};
  std::optional<registry::RegistrarKey> registrar_;
  std::optional<registry::Registry> registry_;
  std::optional<ca::Authority> ca_;
  std::optional<PublicKey> enrollment_public_;
  std::unique_ptr<registry::ServingDirectory> directory_;
  std::unique_ptr<server::RecordCache> cache_;
  std::unique_ptr<server::TrustPolicy> policy_;
  EnrollConfig config_;
  std::map<std::string, std::unique_ptr<server::Handler>, std::less<>> handlers_;
  std::vector<std::string> enrolled_;  // what on_enrolled reported
};

}  // namespace hallmark::enroll::testing

#endif  // HALLMARK_ENROLL_TESTING_ENROLL_FIXTURE_H_
