#include "server/policy.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <openssl/x509v3.h>

#include <fstream>

#include "ca/testing/ca_fixture.h"
#include "core/certificate_builder.h"
#include "core/file.h"
#include "core/ossl.h"
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

TEST_F(PolicyTest, MakeCaPolicyRequiresExactlyOneCrlPerAnchor) {
  auto acme_crl = ca_->MakeCrl("acme", 86400);
  auto globex_crl = ca_->MakeCrl("globex", 86400);
  ASSERT_THAT(acme_crl, IsOk());
  ASSERT_THAT(globex_crl, IsOk());
  auto options = [&](std::vector<Crl> crls) {
    CaPolicyOptions o;
    o.anchors = {*ca_->CustomerCertificate("acme"), *ca_->CustomerCertificate("globex")};
    o.crls = std::move(crls);
    o.clock = &clock_;
    return o;
  };
  // A CRL for one anchor only would leave the other anchor's devices unchecked (or, in
  // OpenSSL, refused as "unable to get certificate CRL"): refused at start, naming the anchor.
  EXPECT_THAT(MakeCaPolicy(options({*acme_crl})),
              HasError(Code::kInvalidArgument,
                       HasSubstr("anchor " + ca_->CustomerCertificate("globex")->Subject() +
                                 " has no CRL")));
  EXPECT_THAT(MakeCaPolicy(options({*acme_crl, *acme_crl, *globex_crl})),
              HasError(Code::kInvalidArgument, HasSubstr("has two CRLs")));
  EXPECT_THAT(MakeCaPolicy(options({*acme_crl, *globex_crl})), IsOk());
  EXPECT_THAT(MakeCaPolicy(options({})), IsOk());
}

// ExtendedCrl signs, with `key`, an empty CRL of `issuer` carrying the extension `conf` (in
// OpenSSL's config syntax, for `nid`), or an unknown critical extension if `nid` is NID_undef.
Crl ExtendedCrl(const Certificate& issuer, const PrivateKey& key, int nid, const char* conf) {
  OsslPtr<X509_CRL> crl(X509_CRL_new());
  OsslPtr<ASN1_TIME> last(ASN1_TIME_set(nullptr, ca::testing::kNow - 60));
  OsslPtr<ASN1_TIME> next(ASN1_TIME_set(nullptr, ca::testing::kNow + 86400));
  EXPECT_EQ(X509_CRL_set_version(crl.get(), 1), 1);
  EXPECT_EQ(X509_CRL_set_issuer_name(crl.get(), X509_get_subject_name(issuer.native())), 1);
  EXPECT_EQ(X509_CRL_set1_lastUpdate(crl.get(), last.get()), 1);
  EXPECT_EQ(X509_CRL_set1_nextUpdate(crl.get(), next.get()), 1);
  OsslPtr<X509_EXTENSION> ext;
  if (nid == NID_undef) {
    OsslPtr<ASN1_OBJECT> oid(OBJ_txt2obj("1.3.6.1.4.1.55555.1", 1));
    OsslPtr<ASN1_STRING> value(ASN1_OCTET_STRING_new());
    const unsigned char null_der[] = {0x05, 0x00};
    EXPECT_EQ(ASN1_OCTET_STRING_set(value.get(), null_der, 2), 1);
    ext.reset(X509_EXTENSION_create_by_OBJ(nullptr, oid.get(), 1, value.get()));
  } else if (nid == NID_crl_number || nid == NID_delta_crl) {
    // INTEGER extensions have no config syntax: `conf` is "critical" or "".
    OsslPtr<ASN1_INTEGER> number(ASN1_INTEGER_new());
    EXPECT_EQ(ASN1_INTEGER_set(number.get(), 7), 1);
    ext.reset(X509V3_EXT_i2d(nid, std::string_view(conf) == "critical" ? 1 : 0, number.get()));
  } else {
    ext.reset(X509V3_EXT_conf_nid(nullptr, nullptr, nid, conf));
  }
  EXPECT_TRUE(ext != nullptr);
  EXPECT_EQ(X509_CRL_add_ext(crl.get(), ext.get(), -1), 1);
  EXPECT_GT(X509_CRL_sign(crl.get(), key.native(), EVP_sha256()), 0);
  Bytes der(static_cast<size_t>(i2d_X509_CRL(crl.get(), nullptr)));
  unsigned char* p = der.data();
  i2d_X509_CRL(crl.get(), &p);
  auto parsed = Crl::FromDer(der);
  EXPECT_THAT(parsed, IsOk());
  return *parsed;
}

struct CrlKind {
  std::string test_name;
  int nid;
  const char* conf;
  std::string message;  // empty: accepted
};

class CrlKindTest : public ::testing::TestWithParam<CrlKind> {};

// The revocation check reads a CRL as the complete list of its anchor's revocations; a CRL
// that covers only part of them, or says something the check would not understand, is refused
// at load rather than read wrongly. The legitimate twin: an ordinary extension is fine.
TEST_P(CrlKindTest, OnlyCompleteCrlsAreAccepted) {
  PrivateKey root_key = MakeKey("p256");
  PrivateKey ca_key = MakeKey("p256");
  CertificateTemplate t;
  t.serial = {1};
  t.subject.common_name = "Root";
  t.not_before = ca::testing::kNow - 86400;
  t.not_after = ca::testing::kNow + 86400 * 365;
  t.is_ca = true;
  t.key_usage = kKeyCertSign | kCrlSign;
  Certificate root = *SignCertificate(t, root_key.Public(), nullptr, root_key);
  t.serial = {2};
  t.subject.common_name = "Device CA";
  Certificate anchor = *SignCertificate(t, ca_key.Public(), &root, root_key);
  CaPolicyOptions opts;
  opts.anchors = {anchor};
  opts.crls = {ExtendedCrl(anchor, ca_key, GetParam().nid, GetParam().conf)};
  auto policy = MakeCaPolicy(std::move(opts));
  if (GetParam().message.empty()) {
    EXPECT_THAT(policy, IsOk());
  } else {
    EXPECT_THAT(policy, HasError(Code::kInvalidArgument, HasSubstr(GetParam().message)));
  }
}

INSTANTIATE_TEST_SUITE_P(
    Cases, CrlKindTest,
    ::testing::Values(CrlKind{"CrlNumberIsFine", NID_crl_number, "", ""},
                      CrlKind{"PartialByDistributionPoint", NID_issuing_distribution_point,
                              "critical,onlyuser:TRUE", "issuingDistributionPoint"},
                      CrlKind{"Delta", NID_delta_crl, "critical", "deltaCRL"},
                      CrlKind{"UnknownCriticalExtension", NID_undef, nullptr,
                              "critical extension"}),
    [](const ::testing::TestParamInfo<CrlKind>& p) { return p.param.test_name; });

// CaPolicyTest runs the ca policy with its CRL in a file, a registry and metrics.
class CaPolicyTest : public PolicyTest {
 protected:
  std::string CrlPath() const { return dir_ / "acme.crl"; }

  // WriteCrl writes acme's current CRL (revocations as of now) to its file.
  void WriteCrl(int64_t validity = 86400) {
    auto crl = ca_->MakeCrl("acme", validity);
    ASSERT_THAT(crl, IsOk());
    ASSERT_THAT(WriteFileAtomic(CrlPath(), crl->ToPem(), 0644), IsOk());
  }
  // Overwrite replaces the CRL file's bytes in place (a CA that does not write-then-rename).
  void Overwrite(const std::string& bytes) {
    std::ofstream out(CrlPath(), std::ios::binary | std::ios::trunc);
    out << bytes;
  }

  std::unique_ptr<CaPolicy> Policy(bool with_crl) {
    CaPolicyOptions opts;
    opts.anchors = {*ca_->CustomerCertificate("acme")};
    if (with_crl) {
      opts.crl_files = {CrlPath()};
    }
    opts.crl_reload = std::chrono::milliseconds(0);  // the tests call ReloadCrls
    opts.registry = &cache_;
    opts.clock = &clock_;
    opts.metrics = &metrics_;
    auto policy = MakeCaPolicy(std::move(opts));
    EXPECT_THAT(policy, IsOk());
    return policy ? std::move(*policy) : nullptr;
  }

  void Revoke(const Certificate& cert) {
    ASSERT_THAT(ca_->Revoke(cert.SerialHex(), RevocationReason::kKeyCompromise), IsOk());
  }

  Metrics metrics_;
  FakeDirectory dir_registry_;
  RecordCache cache_{&dir_registry_, {}};
};

TEST_F(CaPolicyTest, ReloadedCrlRevokesWithoutRestart) {
  Certificate device = Issue("acme", ca::Profile::kDevice);
  WriteCrl();
  auto policy = Policy(true);
  ASSERT_THAT(policy->Authorize(device, {}), IsOk());
  EXPECT_TRUE(policy->ReloadCrls().reloaded.empty());  // unchanged file: nothing to do
  Revoke(device);
  WriteCrl();
  CrlReloadReport report = policy->ReloadCrls();
  EXPECT_THAT(report.reloaded, ::testing::ElementsAre(CrlPath()));
  EXPECT_THAT(report.refused, ::testing::IsEmpty());
  EXPECT_THAT(policy->Authorize(device, {}),
              HasError(Code::kUnauthenticated, HasSubstr("certificate revoked")));
  EXPECT_THAT(metrics_.Render(), HasSubstr("result=\"ok\"} 2"));
}

struct BadCrlFile {
  std::string test_name;
  std::string message;
};

class BadCrlFileTest : public CaPolicyTest, public ::testing::WithParamInterface<BadCrlFile> {};

// Attack (or accident): the CRL file is replaced by something that must not take effect. The
// new file is refused with a reason and the CRL in force stays: a device it revokes stays
// refused, and a good device stays accepted.
TEST_P(BadCrlFileTest, IsRefusedAndThePreviousCrlStays) {
  Certificate revoked = Issue("acme", ca::Profile::kDevice);
  Certificate good = Issue("acme", ca::Profile::kDevice);
  const std::string name = GetParam().test_name;
  auto old_crl = ca_->MakeCrl("acme", 86400);  // before the revocation, for the rollback case
  ASSERT_THAT(old_crl, IsOk());
  Revoke(revoked);
  clock_.Advance(60);
  WriteCrl();
  auto policy = Policy(true);
  if (name == "Garbage") {
    Overwrite("this is not a CRL\n");
  } else if (name == "Truncated") {
    std::string pem = *ReadFile(CrlPath());
    Overwrite(pem.substr(0, pem.size() / 2));
  } else if (name == "WrongSigner") {
    ASSERT_THAT(WriteFileAtomic(CrlPath(), ca_->MakeCrl("globex", 86400)->ToPem(), 0644), IsOk());
  } else if (name == "OlderCrl") {
    ASSERT_THAT(WriteFileAtomic(CrlPath(), old_crl->ToPem(), 0644), IsOk());
  } else if (name == "Deleted") {
    ASSERT_EQ(std::remove(CrlPath().c_str()), 0);
  }
  CrlReloadReport report = policy->ReloadCrls();
  EXPECT_THAT(report.reloaded, ::testing::IsEmpty());
  ASSERT_EQ(report.refused.size(), 1u);
  EXPECT_THAT(report.refused[0].message(), HasSubstr(GetParam().message));
  EXPECT_THAT(policy->Authorize(revoked, {}),
              HasError(Code::kUnauthenticated, HasSubstr("certificate revoked")));
  EXPECT_THAT(policy->Authorize(good, {}), IsOk());
  EXPECT_THAT(metrics_.Render(), HasSubstr("result=\"refused\"} 1"));
  // Refused once, not again on every check while the file stays the same.
  EXPECT_THAT(policy->ReloadCrls().refused, ::testing::IsEmpty());
}

INSTANTIATE_TEST_SUITE_P(
    Cases, BadCrlFileTest,
    ::testing::Values(BadCrlFile{"Garbage", "not a DER CRL"},
                      BadCrlFile{"Truncated", "not a PEM CRL"},
                      BadCrlFile{"WrongSigner", "is not issued and signed by anchor"},
                      BadCrlFile{"OlderCrl", "is older than the CRL in force"},
                      BadCrlFile{"Deleted", "cannot stat"}),
    [](const ::testing::TestParamInfo<BadCrlFile>& p) { return p.param.test_name; });

// A CRL past its nextUpdate must not pass as "nothing revoked": every device of its anchor is
// refused, saying why, until a fresh CRL is loaded; then the same device is accepted again.
TEST_F(CaPolicyTest, StaleCrlRefusesTheAnchorsDevicesUntilAFreshOneIsLoaded) {
  Certificate device = Issue("acme", ca::Profile::kDevice);
  WriteCrl(3600);
  auto policy = Policy(true);
  ASSERT_THAT(policy->Authorize(device, {}), IsOk());
  clock_.Advance(7200);
  EXPECT_THAT(policy->Authorize(device, {}),
              HasError(Code::kUnauthenticated,
                       ::testing::AllOf(HasSubstr("CRL has expired"), HasSubstr(CrlPath()),
                                        HasSubstr("refused until a fresh CRL is loaded"))));
  WriteCrl(3600);
  EXPECT_THAT(policy->ReloadCrls().reloaded, ::testing::ElementsAre(CrlPath()));
  EXPECT_THAT(policy->Authorize(device, {}), IsOk());
}

TEST_F(CaPolicyTest, InPlaceRewriteOfTheCrlFileIsNoticed) {
  Certificate device = Issue("acme", ca::Profile::kDevice);
  WriteCrl();
  auto policy = Policy(true);
  Revoke(device);
  clock_.Advance(1);
  Overwrite(ca_->MakeCrl("acme", 86400)->ToPem());
  EXPECT_THAT(policy->ReloadCrls().reloaded, ::testing::ElementsAre(CrlPath()));
  EXPECT_THAT(policy->Authorize(device, {}),
              HasError(Code::kUnauthenticated, HasSubstr("certificate revoked")));
}

TEST_F(CaPolicyTest, RepeatedDecisionsReuseTheChainVerification) {
  Certificate device = Issue("acme", ca::Profile::kDevice);
  auto policy = Policy(false);
  ASSERT_THAT(policy->Authorize(device, {}), IsOk());
  ASSERT_THAT(policy->Authorize(device, {}), IsOk());
  EXPECT_EQ(metrics_.chain_cache_misses(), 1u);
  EXPECT_EQ(metrics_.chain_cache_hits(), 1u);
  // The presented intermediates are part of the key: another presentation is verified anew.
  Certificate intermediate[] = {*ca_->CustomerCertificate("acme")};
  ASSERT_THAT(policy->Authorize(device, intermediate), IsOk());
  ASSERT_THAT(policy->Authorize(device, intermediate), IsOk());
  EXPECT_EQ(metrics_.chain_cache_misses(), 2u);
  EXPECT_EQ(metrics_.chain_cache_hits(), 2u);
}

// FlipLastByte returns `cert` with the last byte of its signature changed: the same
// to-be-signed part, a different (invalid) signature.
Certificate FlipLastByte(const Certificate& cert) {
  Bytes der = cert.ToDer();
  der.back() ^= 0x01;
  auto tampered = Certificate::FromDer(der);
  EXPECT_THAT(tampered, IsOk());
  return *tampered;
}

// Attack: a peer presents a certificate whose to-be-signed part is that of a device the cache
// knows, with a forged signature. The cache is keyed by the whole certificate, so the forgery
// gets a full verification and is refused; the genuine device is still served from the cache.
TEST_F(CaPolicyTest, ACertificateWithTheSameTbsAndAnotherSignatureIsNotServedFromTheCache) {
  Certificate device = Issue("acme", ca::Profile::kDevice);
  auto policy = Policy(false);
  ASSERT_THAT(policy->Authorize(device, {}), IsOk());
  Certificate forged = FlipLastByte(device);
  ASSERT_EQ(forged.Key().DeviceId(), device.Key().DeviceId());
  EXPECT_THAT(policy->Authorize(forged, {}),
              HasError(Code::kUnauthenticated, HasSubstr("certificate signature failure")));
  EXPECT_EQ(metrics_.chain_cache_hits(), 0u);
  EXPECT_THAT(policy->Authorize(device, {}), IsOk());
  EXPECT_EQ(metrics_.chain_cache_hits(), 1u);
}

TEST_F(CaPolicyTest, CachedChainStillRefusesAnExpiredCertificate) {
  Certificate op = Issue("acme", ca::Profile::kOperational, {}, 86400);
  auto policy = Policy(false);
  ASSERT_THAT(policy->Authorize(op, {}), IsOk());
  ASSERT_THAT(policy->Authorize(op, {}), IsOk());
  ASSERT_EQ(metrics_.chain_cache_hits(), 1u);
  clock_.Advance(2 * 86400);
  EXPECT_THAT(policy->Authorize(op, {}),
              HasError(Code::kUnauthenticated, HasSubstr("certificate has expired")));
  // The entry did not outlive the certificate: that decision was not a cache hit.
  EXPECT_EQ(metrics_.chain_cache_hits(), 1u);
}

TEST_F(CaPolicyTest, CachedChainStillChecksValidityTimes) {
  Certificate device = Issue("acme", ca::Profile::kDevice);
  auto policy = Policy(false);
  ASSERT_THAT(policy->Authorize(device, {}), IsOk());
  // A clock set back before notBefore: the cached path itself checks the times.
  clock_.Set(device.NotBefore() - 3600);
  EXPECT_THAT(policy->Authorize(device, {}),
              HasError(Code::kUnauthenticated, HasSubstr("certificate is not yet valid")));
  EXPECT_EQ(metrics_.chain_cache_hits(), 1u);
}

TEST_F(CaPolicyTest, CachedChainStillRefusesACertificateRevokedByCrl) {
  Certificate device = Issue("acme", ca::Profile::kDevice);
  WriteCrl();
  auto policy = Policy(true);
  ASSERT_THAT(policy->Authorize(device, {}), IsOk());
  Revoke(device);
  WriteCrl();
  ASSERT_THAT(policy->ReloadCrls().reloaded, ::testing::SizeIs(1));
  EXPECT_THAT(policy->Authorize(device, {}),
              HasError(Code::kUnauthenticated, HasSubstr("certificate revoked")));
  EXPECT_EQ(metrics_.chain_cache_hits(), 1u);
}

TEST_F(CaPolicyTest, CachedChainStillRefusesADeviceRevokedInTheRegistry) {
  Certificate device = Issue("acme", ca::Profile::kDevice);
  auto policy = Policy(false);
  ASSERT_THAT(policy->Authorize(device, {}), IsOk());
  ASSERT_THAT(policy->Authorize(device, {}), IsOk());
  dir_registry_.Put(Record(device.Key().DeviceId(), DeviceStatus::kRevoked));
  ASSERT_THAT(cache_.Refresh(), IsOk());
  EXPECT_THAT(policy->Authorize(device, {}),
              HasError(Code::kUnauthenticated, HasSubstr("revoked in the registry")));
  EXPECT_EQ(metrics_.chain_cache_hits(), 2u);
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
