#include "enroll/testing/enroll_fixture.h"

#include <nlohmann/json.hpp>

#include "core/file.h"
#include "core/random.h"
#include "device/enroll_client.h"
#include "device/tls_client.h"

namespace hallmark::enroll::testing {

std::string ErrorOf(const server::HttpResponse& res) {
  auto j = nlohmann::json::parse(res.body, nullptr, false);
  return j.is_object() ? j.value("error", std::string()) : std::string();
}

FakeConnection::FakeConnection(const PrivateKey& key, const Clock& clock, std::string peer)
    : leaf_(*device::SelfSignedCertificate(key, clock)),
      peer_(std::move(peer)),
      secret_(RandomBytes(32)) {}

FakeConnection::FakeConnection(Certificate leaf, std::string peer)
    : leaf_(std::move(leaf)), peer_(std::move(peer)), secret_(RandomBytes(32)) {}

Bytes FakeConnection::Exporter() const {
  auto out = Context().export_keying_material(device::kClaimExporterLabel,
                                              AsBytes(device::kClaimExporterContext),
                                              device::kClaimExporterLength);
  auto view = out->bytes(SecretAccess::Grant());
  return Bytes(view.begin(), view.end());
}

server::ClientContext FakeConnection::Context(const server::PeerIdentity* identity) const {
  server::ClientContext c;
  c.identity = identity;
  c.leaf = &leaf_;
  c.peer_address = peer_;
  Bytes secret = secret_;
  c.export_keying_material = [secret](std::string_view label, std::span<const uint8_t> context,
                                      size_t length) -> Result<SecretBytes> {
    Bytes input = secret;
    input.insert(input.end(), label.begin(), label.end());
    input.push_back(0);
    input.insert(input.end(), context.begin(), context.end());
    Bytes digest = Sha256(input);
    digest.resize(std::min(length, digest.size()));
    return SecretBytes(digest);
  };
  return c;
}

PrivateKey EnrollTest::NewKey(KeyType type) {
  auto key = PrivateKey::Generate(type);
  EXPECT_TRUE(key.has_value());
  return std::move(*key);
}

void EnrollTest::SetUp() {
  auto registrar = registry::RegistrarKey::Create(dir_ / "registrar.key", std::nullopt);
  ASSERT_TRUE(registrar.has_value()) << registrar.error();
  registrar_.emplace(std::move(*registrar));
  ASSERT_TRUE(WriteFileAtomic(dir_ / "registrar.pub", registrar_->Public().ToPem(), 0644));
  auto enrollment = registry::RegistrarKey::Create(dir_ / "enrollment.key", std::nullopt);
  ASSERT_TRUE(enrollment.has_value()) << enrollment.error();
  enrollment_public_ = enrollment->Public();
  auto reg = registry::Registry::Create(dir_ / "registry.db", *registrar_, &clock_);
  ASSERT_TRUE(reg.has_value()) << reg.error();
  registry_.emplace(std::move(*reg));
  auto authority = ca::Authority::Init(dir_ / "ca", ca::InitOptions{}, std::nullopt, &clock_);
  ASSERT_TRUE(authority.has_value()) << authority.error();
  ca_.emplace(std::move(*authority));
  ca::CustomerOptions customer;
  customer.organization = "Acme";
  ASSERT_TRUE(ca_->AddCustomer("acme", customer).has_value());

  auto directory = registry::ServingDirectory::Open(dir_ / "registry.db", registrar_->Public());
  ASSERT_TRUE(directory.has_value()) << directory.error();
  directory_ = std::move(*directory);
  cache_ = std::make_unique<server::RecordCache>(directory_.get(), server::RecordCache::Options{});
  policy_ = server::MakeRegistryPolicy(cache_.get());

  config_.registry_db = dir_ / "registry.db";
  config_.registrar_public_key = dir_ / "registrar.pub";
  config_.enrollment_key = dir_ / "enrollment.key";
  config_.ca_dir = dir_ / "ca";
  config_.ca_name = "acme";
  config_.rate_per_source = {1.0, 5.0};
  config_.rate_per_batch = {1.0, 8.0};
  config_.rate_per_device = {1.0, 5.0};
  EnrollDeps deps;
  deps.directory = directory_.get();
  deps.clock = &clock_;
  deps.monotonic = [this] { return mono_; };
  deps.on_enrolled = [this](const std::string& id) { enrolled_.push_back(id); };
  auto handlers = MakeHandlers(config_, deps);
  ASSERT_TRUE(handlers.has_value()) << handlers.error();
  for (auto& [path, handler] : *handlers) {
    handlers_.emplace(path, std::move(handler));
  }
}

server::Handler& EnrollTest::Handler(std::string_view path) {
  auto it = handlers_.find(path);
  EXPECT_NE(it, handlers_.end()) << "no handler on " << path;
  return *it->second;
}

SecretBytes EnrollTest::CreateBatch(const std::string& id, uint64_t size, int64_t lifetime) {
  SecretBytes secret = device::GenerateBatchSecret();
  auto verifier = device::DeriveBatchKey(secret, id);
  EXPECT_TRUE(verifier.has_value());
  auto batch = registry_->CreateBatch(
      *registrar_, registry::BatchRequest{id, "acme", size, clock_.Now() + lifetime,
                                          verifier->Public(), *enrollment_public_});
  EXPECT_TRUE(batch.has_value()) << batch.error();
  Refresh();
  return secret;
}

std::string EnrollTest::ClaimBody(const FakeConnection& conn, const PrivateKey& key,
                                  const SecretBytes& secret, const std::string& batch_id,
                                  const std::string& serial) {
  auto proof_key = device::DeriveBatchKey(secret, batch_id);
  EXPECT_TRUE(proof_key.has_value());
  auto proof = proof_key->Sign(
      device::ClaimProofMessage(batch_id, serial, key.Public().DeviceId(), conn.Exporter()));
  EXPECT_TRUE(proof.has_value());
  return nlohmann::json{{"batch_id", batch_id}, {"serial", serial}, {"proof", Base64Encode(*proof)}}
      .dump();
}

server::HttpResponse EnrollTest::Post(std::string_view path, const FakeConnection& conn,
                                      const std::string& body,
                                      const server::PeerIdentity* identity) {
  server::HttpRequest request{"POST", std::string(path), "application/json", body};
  return Handler(path).Handle(request, conn.Context(identity));
}

server::HttpResponse EnrollTest::Claim(const PrivateKey& key, const SecretBytes& secret,
                                       const std::string& batch_id, const std::string& serial,
                                       const std::string& peer) {
  FakeConnection conn(key, clock_, peer);
  return Post(device::kClaimPath, conn, ClaimBody(conn, key, secret, batch_id, serial));
}

Result<server::PeerIdentity> EnrollTest::Identity(const Certificate& leaf) {
  return policy_->Authorize(leaf, {});
}

void EnrollTest::Refresh() {
  auto dropped = cache_->Refresh();
  ASSERT_TRUE(dropped.has_value()) << dropped.error();
}

}  // namespace hallmark::enroll::testing
