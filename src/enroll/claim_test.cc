// The claim and approval endpoints called directly, as the server's transport would: every
// attack of issue 4 that can be tried at this level, each next to its legitimate twin.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "core/file.h"
#include "device/enroll_client.h"
#include "enroll/testing/enroll_fixture.h"

namespace hallmark::enroll {
namespace {

using ::hallmark::testing::HasError;
using ::hallmark::testing::IsOk;
using testing::EnrollTest;
using testing::ErrorOf;
using testing::FakeConnection;
using ::testing::HasSubstr;
using ::testing::Not;

class ClaimTest : public EnrollTest {
 protected:
  void SetUp() override {
    EnrollTest::SetUp();
    secret_.emplace(CreateBatch("b1", 3));
  }

  std::optional<SecretBytes> secret_;
};

TEST_F(ClaimTest, RightSecretEnrollsTheDevicesOwnKey) {
  PrivateKey device = NewKey();
  server::HttpResponse res = Claim(device, *secret_, "b1", "SN-1");
  ASSERT_EQ(res.status, 201) << res.body;
  auto j = nlohmann::json::parse(res.body);
  EXPECT_EQ(j["device_id"], device.Public().DeviceId());
  EXPECT_EQ(j["status"], "active");
  EXPECT_EQ(enrolled_, std::vector<std::string>{device.Public().DeviceId()});
  // From now on the device authenticates by its own key under the registry policy.
  Refresh();
  FakeConnection later(device, clock_);
  ASSERT_OK_AND_ASSIGN(server::PeerIdentity id, Identity(later.leaf()));
  EXPECT_EQ(id.path, "batch");
  EXPECT_EQ(id.serial, "SN-1");
  // A retry (the device lost the answer) is answered again, without a second enrollment.
  server::HttpResponse again = Claim(device, *secret_, "b1", "SN-1");
  EXPECT_EQ(again.status, 200) << again.body;
  EXPECT_EQ(registry_->FindBatch(registrar_->Public(), "b1")->claims, 1u);
}

TEST_F(ClaimTest, WrongSecretIsRefused) {
  SecretBytes wrong = device::GenerateBatchSecret();
  server::HttpResponse res = Claim(NewKey(), wrong, "b1", "SN-1");
  EXPECT_EQ(res.status, 403);
  EXPECT_THAT(ErrorOf(res), HasSubstr("no valid proof"));
  EXPECT_EQ(registry_->FindBatch(registrar_->Public(), "b1")->claims, 0u);
  EXPECT_TRUE(enrolled_.empty());
}

TEST_F(ClaimTest, UnknownBatchLooksLikeAWrongSecret) {
  server::HttpResponse res = Claim(NewKey(), *secret_, "b2", "SN-1");
  EXPECT_EQ(res.status, 403);
  EXPECT_THAT(ErrorOf(res), HasSubstr("no valid proof"));
}

TEST_F(ClaimTest, ExpiredBatchIsRefused) {
  SecretBytes short_lived = CreateBatch("b2", 10, /*lifetime=*/60);
  EXPECT_EQ(Claim(NewKey(), short_lived, "b2", "SN-1").status, 201);
  clock_.Advance(61);
  server::HttpResponse res = Claim(NewKey(), short_lived, "b2", "SN-2");
  EXPECT_EQ(res.status, 403);
  EXPECT_THAT(ErrorOf(res), HasSubstr("expired"));
}

TEST_F(ClaimTest, ExhaustedBatchRefusesTheClaimAfterItsSize) {
  for (int i = 1; i <= 3; ++i) {
    ASSERT_EQ(Claim(NewKey(), *secret_, "b1", "SN-" + std::to_string(i)).status, 201);
  }
  server::HttpResponse res = Claim(NewKey(), *secret_, "b1", "SN-4");
  EXPECT_EQ(res.status, 403);
  EXPECT_THAT(ErrorOf(res), HasSubstr("exhausted"));
}

TEST_F(ClaimTest, RevokedBatchIsRefused) {
  ASSERT_EQ(Claim(NewKey(), *secret_, "b1", "SN-1").status, 201);
  ASSERT_THAT(registry_->RevokeBatch(*registrar_, "b1", "leaked", false), IsOk());
  Refresh();
  server::HttpResponse res = Claim(NewKey(), *secret_, "b1", "SN-2");
  EXPECT_EQ(res.status, 403);
  EXPECT_THAT(ErrorOf(res), HasSubstr("revoked"));
}

TEST_F(ClaimTest, RevokedBatchIsRefusedEvenBeforeTheServerViewRefreshes) {
  ASSERT_THAT(registry_->RevokeBatch(*registrar_, "b1", "leaked", false), IsOk());
  server::HttpResponse res = Claim(NewKey(), *secret_, "b1", "SN-2");
  EXPECT_EQ(res.status, 403);
  EXPECT_THAT(ErrorOf(res), HasSubstr("revoked"));
}

TEST_F(ClaimTest, ProofCapturedOnOneConnectionIsUselessOnAnother) {
  PrivateKey device = NewKey();
  FakeConnection captured(device, clock_);
  std::string body = ClaimBody(captured, device, *secret_, "b1", "SN-1");
  // The attacker replays the body on its own connection (same key even: a stolen certificate
  // does not help, the exporter differs per connection).
  FakeConnection replay(device, clock_, "198.51.100.1:999");
  server::HttpResponse res = Post(device::kClaimPath, replay, body);
  EXPECT_EQ(res.status, 403);
  EXPECT_THAT(ErrorOf(res), HasSubstr("no valid proof"));
  // The legitimate twin: the same body on the connection it was made for.
  EXPECT_EQ(Post(device::kClaimPath, captured, body).status, 201);
}

TEST_F(ClaimTest, ProofMadeForAnotherKeyIsRefused) {
  PrivateKey victim = NewKey();
  PrivateKey attacker = NewKey();
  FakeConnection conn(attacker, clock_);
  // A proof over the victim's key, sent on the attacker's connection.
  std::string body = ClaimBody(conn, victim, *secret_, "b1", "SN-1");
  EXPECT_EQ(Post(device::kClaimPath, conn, body).status, 403);
}

TEST_F(ClaimTest, ProofForAnotherSerialIsRefused) {
  PrivateKey device = NewKey();
  FakeConnection conn(device, clock_);
  auto body = nlohmann::json::parse(ClaimBody(conn, device, *secret_, "b1", "SN-1"));
  body["serial"] = "SN-2";
  EXPECT_EQ(Post(device::kClaimPath, conn, body.dump()).status, 403);
}

TEST_F(ClaimTest, SameSerialWithAnotherKeyIsRefusedAndFlaggedAsAClone) {
  PrivateKey original = NewKey();
  PrivateKey clone = NewKey();
  ASSERT_EQ(Claim(original, *secret_, "b1", "SN-1").status, 201);
  server::HttpResponse res = Claim(clone, *secret_, "b1", "SN-1", "203.0.113.9:1");
  EXPECT_EQ(res.status, 409);
  EXPECT_THAT(ErrorOf(res), HasSubstr("possible clone"));
  ASSERT_OK_AND_ASSIGN(std::vector<registry::CloneAlert> alerts, registry_->CloneAlerts("b1"));
  ASSERT_EQ(alerts.size(), 1u);
  EXPECT_EQ(alerts[0].device_id, clone.Public().DeviceId());
  EXPECT_EQ(alerts[0].peer, "203.0.113.9:1");
  Refresh();
  FakeConnection conn(clone, clock_);
  EXPECT_THAT(Identity(conn.leaf()), HasError(Code::kUnauthenticated, HasSubstr("not registered")));
}

TEST_F(ClaimTest, MalformedClaimsAreRefusedWithTheReason) {
  PrivateKey device = NewKey();
  FakeConnection conn(device, clock_);
  EXPECT_EQ(Post(device::kClaimPath, conn, "not json").status, 400);
  EXPECT_EQ(Post(device::kClaimPath, conn, R"({"batch_id":"b1"})").status, 400);
  EXPECT_EQ(
      Post(device::kClaimPath, conn, R"({"batch_id":"B 1","serial":"x","proof":"AA=="})").status,
      400);
  server::HttpRequest get{"GET", std::string(device::kClaimPath), "", ""};
  EXPECT_EQ(Handler(device::kClaimPath).Handle(get, conn.Context()).status, 405);
  EXPECT_FALSE(Handler(device::kClaimPath).authenticated_only());
  std::string big(Handler(device::kClaimPath).max_body_bytes() + 1, ' ');
  EXPECT_EQ(Post(device::kClaimPath, conn, big).status, 413);
}

TEST_F(ClaimTest, ClaimsAreRateLimitedPerSource) {
  // Burst of 5 per source: the sixth request from the same address waits, another address not.
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(Claim(NewKey(), *secret_, "b1", "SN-X", "192.0.2.50:" + std::to_string(i)).status,
              i == 0 ? 201 : 409);
  }
  server::HttpResponse limited = Claim(NewKey(), *secret_, "b1", "SN-Y", "192.0.2.50:9");
  EXPECT_EQ(limited.status, 429);
  bool retry_after = false;
  for (const auto& [name, value] : limited.headers) {
    retry_after = retry_after || name == "Retry-After";
  }
  EXPECT_TRUE(retry_after);
  EXPECT_EQ(Claim(NewKey(), *secret_, "b1", "SN-Y", "192.0.2.51:1").status, 201);
  mono_ += std::chrono::seconds(2);
  EXPECT_EQ(Claim(NewKey(), *secret_, "b1", "SN-Z", "192.0.2.50:10").status, 201);
}

TEST_F(ClaimTest, ClaimsAreRateLimitedPerBatch) {
  // Burst of 8 per batch, spread over many sources.
  SecretBytes wrong = device::GenerateBatchSecret();
  for (int i = 0; i < 8; ++i) {
    EXPECT_EQ(Claim(NewKey(), wrong, "b1", "SN", "192.0.2." + std::to_string(i) + ":1").status,
              403);
  }
  EXPECT_EQ(Claim(NewKey(), *secret_, "b1", "SN-1", "192.0.2.99:1").status, 429);
  mono_ += std::chrono::seconds(1);
  EXPECT_EQ(Claim(NewKey(), *secret_, "b1", "SN-1", "192.0.2.99:1").status, 201);
}

TEST_F(ClaimTest, TheStoredRegistryHoldsNoBatchSecret) {
  // What an attacker who copies the database gets: search the file bytes for the secret, its
  // text form, and the key derived from it (which alone would let anyone claim).
  ASSERT_EQ(Claim(NewKey(), *secret_, "b1", "SN-1").status, 201);
  ASSERT_OK_AND_ASSIGN(std::string db, ReadFile(dir_ / "registry.db", 1 << 26));
  auto wal = ReadFile(dir_ / "registry.db-wal", 1 << 26);
  if (wal) {
    db += *wal;
  }
  auto derived = device::DeriveBatchKey(*secret_, "b1");
  ASSERT_THAT(derived, IsOk());
  auto derived_pem = derived->ToPem(SecretAccess::Grant());
  std::string seed_der(derived_pem->view(SecretAccess::Grant()));
  std::vector<std::string> forbidden = {
      std::string(secret_->view(SecretAccess::Grant())),
      std::string(device::FormatBatchSecret(*secret_).view(SecretAccess::Grant())),
      seed_der,
  };
  // The raw 32-byte Ed25519 seed sits at the end of the PKCS#8 DER.
  auto pkcs8 = Base64Decode(seed_der.substr(seed_der.find('\n') + 1,
                                            seed_der.rfind("-----END") - seed_der.find('\n') - 1));
  ASSERT_THAT(pkcs8, IsOk());
  forbidden.emplace_back(pkcs8->end() - 32, pkcs8->end());
  for (const std::string& f : forbidden) {
    EXPECT_EQ(db.find(f), std::string::npos) << "the database holds secret material";
  }
  // What it does hold is the verifier: the public key, from which the secret cannot be found.
  EXPECT_NE(db.find(Base64Encode(derived->Public().SpkiDer())), std::string::npos);
}

class PendingTest : public EnrollTest {};

TEST_F(PendingTest, DeviceWithoutCredentialsBecomesPendingWithItsCode) {
  PrivateKey device = NewKey();
  FakeConnection conn(device, clock_);
  server::HttpResponse res = Post(device::kPendingPath, conn, R"({"serial":"SN-7"})");
  ASSERT_EQ(res.status, 202) << res.body;
  auto j = nlohmann::json::parse(res.body);
  EXPECT_EQ(j["code"], device::ComparisonCode(device.Public()));
  EXPECT_EQ(j["status"], "pending");
  EXPECT_FALSE(Handler(device::kPendingPath).authenticated_only());
  ASSERT_OK_AND_ASSIGN(std::vector<registry::PendingDevice> pending, registry_->ListPending());
  ASSERT_EQ(pending.size(), 1u);
  EXPECT_EQ(pending[0].serial, "SN-7");
}

TEST_F(PendingTest, PendingDeviceIsNotLetInUntilApproved) {
  PrivateKey device = NewKey();
  FakeConnection conn(device, clock_);
  ASSERT_EQ(Post(device::kPendingPath, conn, "").status, 202);
  Refresh();
  // What the device listener decides before `GET /v1/hello` could run.
  EXPECT_THAT(Identity(conn.leaf()), HasError(Code::kUnauthenticated, HasSubstr("not registered")));
  ASSERT_THAT(registry_->Approve(*registrar_, device.Public().DeviceId(),
                                 registry::ApproveOptions{"acme", "SN-7"}),
              IsOk());
  Refresh();
  ASSERT_OK_AND_ASSIGN(server::PeerIdentity id, Identity(conn.leaf()));
  EXPECT_EQ(id.path, "engineer");
  server::HttpResponse again = Post(device::kPendingPath, conn, "", &id);
  EXPECT_EQ(again.status, 200);
  EXPECT_THAT(again.body, HasSubstr("active"));
}

TEST_F(PendingTest, RevokedDeviceCannotAskAgain) {
  PrivateKey device = NewKey();
  ASSERT_THAT(registry_->Add(*registrar_, registry::AddRequest{device.Public(), "SN-1", ""}),
              IsOk());
  ASSERT_THAT(registry_->Revoke(*registrar_, device.Public().DeviceId(), "stolen"), IsOk());
  Refresh();
  FakeConnection conn(device, clock_);
  server::HttpResponse res = Post(device::kPendingPath, conn, "");
  EXPECT_EQ(res.status, 403);
  EXPECT_THAT(ErrorOf(res), HasSubstr("revoked"));
  EXPECT_TRUE(registry_->ListPending()->empty());
}

TEST_F(PendingTest, GarbageBodyIsRefused) {
  FakeConnection conn(NewKey(), clock_);
  EXPECT_EQ(Post(device::kPendingPath, conn, R"({"serial": 5})").status, 400);
  EXPECT_TRUE(registry_->ListPending()->empty());
}

TEST(MakeHandlersTest, MissingSettingsAreNamed) {
  EnrollConfig config;
  config.enrollment_key = "x.key";
  EXPECT_THAT(MakeHandlers(config, EnrollDeps{}),
              HasError(Code::kInvalidArgument, HasSubstr("registry_db")));
  config = EnrollConfig{};
  config.approval = false;
  config.ca_dir = "/nonexistent";
  EXPECT_THAT(MakeHandlers(config, EnrollDeps{}),
              HasError(Code::kInvalidArgument, HasSubstr("ca_name")));
  config.ca_dir.clear();
  ASSERT_OK_AND_ASSIGN(HandlerList none, MakeHandlers(config, EnrollDeps{}));
  EXPECT_TRUE(none.empty());
}

}  // namespace
}  // namespace hallmark::enroll
