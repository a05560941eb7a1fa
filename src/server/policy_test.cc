#include "server/policy.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "ca/testing/ca_fixture.h"
#include "server/testing_directory.h"

namespace hallmark::server {
namespace {

using ca::testing::MakeCsr;
using ca::testing::MakeKey;
using ::hallmark::testing::HasError;
using ::hallmark::testing::IsOk;
using registry::DeviceStatus;
using testing::FakeDirectory;
using ::testing::HasSubstr;
using testing::Record;

class PolicyTest : public ca::testing::CaTest {
 protected:
  Certificate Issue(const std::string& customer, ca::Profile profile,
                    std::vector<SubjectAltName> sans = {}, std::optional<int64_t> validity = {}) {
    auto issuer = ca_->IssuerFor(customer);
    EXPECT_TRUE(issuer.has_value());
    auto issued = issuer->Issue(
        ca::IssueRequest{MakeCsr(MakeKey("p256"), profile == ca::Profile::kServer ? "" : "SN-1"),
                         profile,
                         {},
                         std::move(sans),
                         validity,
                         false});
    EXPECT_TRUE(issued.has_value()) << issued.error();
    return issued->certificate;
  }

  std::unique_ptr<TrustPolicy> AcmePolicy(std::vector<Crl> crls = {},
                                          RecordCache* cache = nullptr) {
    CaPolicyOptions opts;
    opts.anchors = {*ca_->CustomerCertificate("acme")};
    opts.crls = std::move(crls);
    opts.registry = cache;
    opts.clock = &clock_;
    auto policy = MakeCaPolicy(std::move(opts));
    EXPECT_TRUE(policy.has_value()) << policy.error();
    return std::move(*policy);
  }
};

TEST_F(PolicyTest, CaPolicyAcceptsADeviceOfTheAnchorCustomer) {
  Certificate device = Issue("acme", ca::Profile::kDevice);
  auto id = AcmePolicy()->Authorize(device, {});
  ASSERT_THAT(id, IsOk());
  EXPECT_EQ(id->device_id, device.Key().DeviceId());
  EXPECT_EQ(id->serial, "SN-1");
  EXPECT_EQ(id->owner, "acme");
  EXPECT_EQ(id->policy, "ca");
}

TEST_F(PolicyTest, CaPolicyRefusesADeviceOfAnotherCustomerOfTheSameVendor) {
  Certificate other = Issue("globex", ca::Profile::kDevice);
  Certificate chain[] = {*ca_->CustomerCertificate("globex"), ca_->root()};
  // Whether the device sends its chain up to the vendor root or not, it is refused.
  EXPECT_THAT(AcmePolicy()->Authorize(other, chain),
              HasError(Code::kUnauthenticated, HasSubstr("certificate chain rejected")));
  EXPECT_THAT(AcmePolicy()->Authorize(other, {}),
              HasError(Code::kUnauthenticated, HasSubstr("unable to get local issuer")));
}

TEST_F(PolicyTest, CaPolicyRefusesServerAuthOnlyCertificates) {
  Certificate server = Issue("acme", ca::Profile::kServer, {*ParseSubjectAltName("dns:a.b")});
  EXPECT_THAT(AcmePolicy()->Authorize(server, {}),
              HasError(Code::kUnauthenticated, HasSubstr("unsuitable certificate purpose")));
}

TEST_F(PolicyTest, CaPolicyRefusesTheAnchorItselfPresentedAsADevice) {
  EXPECT_THAT(AcmePolicy()->Authorize(*ca_->CustomerCertificate("acme"), {}),
              HasError(Code::kUnauthenticated, HasSubstr("CA certificate")));
}

TEST_F(PolicyTest, CaPolicyRefusesAnExpiredCertificate) {
  Certificate op = Issue("acme", ca::Profile::kOperational, {}, 86400);
  auto policy = AcmePolicy();
  EXPECT_THAT(policy->Authorize(op, {}), IsOk());
  clock_.Advance(2 * 86400);
  EXPECT_THAT(policy->Authorize(op, {}),
              HasError(Code::kUnauthenticated, HasSubstr("certificate has expired")));
}

TEST_F(PolicyTest, CaPolicyRefusesACertificateOnTheCrl) {
  Certificate revoked = Issue("acme", ca::Profile::kDevice);
  Certificate good = Issue("acme", ca::Profile::kDevice);
  ASSERT_THAT(ca_->Revoke(revoked.SerialHex(), RevocationReason::kKeyCompromise), IsOk());
  auto crl = ca_->MakeCrl("acme", 86400);
  ASSERT_THAT(crl, IsOk());
  auto policy = AcmePolicy({*crl});
  EXPECT_THAT(policy->Authorize(revoked, {}),
              HasError(Code::kUnauthenticated, HasSubstr("certificate revoked")));
  EXPECT_THAT(policy->Authorize(good, {}), IsOk());
}

TEST_F(PolicyTest, CaPolicyRefusesADeviceRevokedInTheRegistry) {
  Certificate device = Issue("acme", ca::Profile::kDevice);
  FakeDirectory dir;
  RecordCache cache(&dir, {});
  auto policy = AcmePolicy({}, &cache);
  EXPECT_THAT(policy->Authorize(device, {}), IsOk());  // unknown to the registry: CA decides
  dir.Put(Record(device.Key().DeviceId(), DeviceStatus::kRevoked));
  ASSERT_THAT(cache.Refresh(), IsOk());
  EXPECT_THAT(policy->Authorize(device, {}),
              HasError(Code::kUnauthenticated, HasSubstr("revoked in the registry")));
}

TEST_F(PolicyTest, MakeCaPolicyRefusesBadAnchorsAndForeignCrls) {
  EXPECT_THAT(MakeCaPolicy({}), HasError(Code::kInvalidArgument, HasSubstr("at least one anchor")));
  CaPolicyOptions leaf_anchor;
  leaf_anchor.anchors = {Issue("acme", ca::Profile::kDevice)};
  EXPECT_THAT(MakeCaPolicy(std::move(leaf_anchor)),
              HasError(Code::kInvalidArgument, HasSubstr("not a CA certificate")));
  CaPolicyOptions root_anchor;
  root_anchor.anchors = {ca_->root()};
  EXPECT_THAT(MakeCaPolicy(std::move(root_anchor)),
              HasError(Code::kInvalidArgument, HasSubstr("self-signed")));
  CaPolicyOptions foreign;
  foreign.anchors = {*ca_->CustomerCertificate("acme")};
  foreign.crls = {*ca_->MakeCrl("globex", 86400)};
  EXPECT_THAT(MakeCaPolicy(std::move(foreign)),
              HasError(Code::kInvalidArgument, HasSubstr("not signed by any configured anchor")));
}

class RegistryPolicyTest : public ::testing::Test {
 protected:
  FakeDirectory dir_;
  RecordCache cache_{&dir_, {}};
  std::unique_ptr<TrustPolicy> policy_ = MakeRegistryPolicy(&cache_);
  PrivateKey key_ = MakeKey("p256");
  Certificate SelfSigned() {
    CertificateTemplate t;
    t.serial = {1};
    t.subject.common_name = "device";
    t.not_before = 0;
    t.not_after = 100;  // validity does not matter to this policy
    t.key_usage = kDigitalSignature;
    return *SignCertificate(t, key_.Public(), nullptr, key_);
  }
};

TEST_F(RegistryPolicyTest, AcceptsAnActiveRegisteredKeyInAnyCertificate) {
  dir_.Put(Record(key_.Public().DeviceId(), DeviceStatus::kActive));
  auto id = policy_->Authorize(SelfSigned(), {});
  ASSERT_THAT(id, IsOk());
  EXPECT_EQ(id->policy, "registry");
  EXPECT_EQ(id->owner, "ACME");
  EXPECT_EQ(id->path, "extract");
}

struct RegistryRefusal {
  std::string test_name;
  std::optional<DeviceStatus> status;  // nullopt: not registered
  bool tampered;
  std::string message;
};

class RegistryRefusalTest : public RegistryPolicyTest,
                            public ::testing::WithParamInterface<RegistryRefusal> {};

TEST_P(RegistryRefusalTest, Refuses) {
  const RegistryRefusal& c = GetParam();
  if (c.status.has_value()) {
    dir_.Put(Record(key_.Public().DeviceId(), *c.status));
  }
  if (c.tampered) {
    dir_.Tamper(key_.Public().DeviceId());
  }
  EXPECT_THAT(policy_->Authorize(SelfSigned(), {}),
              HasError(Code::kUnauthenticated, HasSubstr(c.message)));
}

INSTANTIATE_TEST_SUITE_P(
    Cases, RegistryRefusalTest,
    ::testing::Values(RegistryRefusal{"Unknown", std::nullopt, false, "not registered"},
                      RegistryRefusal{"Revoked", DeviceStatus::kRevoked, false, "is revoked"},
                      RegistryRefusal{"Pending", DeviceStatus::kPending, false, "is pending"},
                      RegistryRefusal{"TamperedRow", DeviceStatus::kActive, true,
                                      "failed verification"}),
    [](const ::testing::TestParamInfo<RegistryRefusal>& p) { return p.param.test_name; });

}  // namespace
}  // namespace hallmark::server
