// The EST endpoints called directly: the RFC 7030 formats, who may enroll for which key, and
// the refusals, each attack next to its legitimate twin.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "ca/issuer.h"
#include "core/certificate_builder.h"
#include "core/csr.h"
#include "core/pkcs7.h"
#include "core/subprocess.h"
#include "device/enroll_client.h"
#include "enroll/testing/enroll_fixture.h"

namespace hallmark::enroll {
namespace {

using ::hallmark::testing::IsOk;
using testing::EnrollTest;
using testing::ErrorOf;
using testing::FakeConnection;
using ::testing::HasSubstr;

std::string Header(const server::HttpResponse& res, std::string_view name) {
  for (const auto& [n, v] : res.headers) {
    if (n == name) {
      return v;
    }
  }
  return {};
}

class EstTest : public EnrollTest {
 protected:
  void SetUp() override {
    EnrollTest::SetUp();
    ASSERT_THAT(registry_->Add(*registrar_, registry::AddRequest{device_.Public(), "SN-1", "acme"}),
                IsOk());
    Refresh();
  }

  std::string CsrBody(const PrivateKey& key, const std::string& serial = "SN-1") {
    auto csr = Csr::Create(key, DistinguishedName{"", "", "", serial, serial});
    EXPECT_THAT(csr, IsOk());
    return Base64Encode(csr->ToDer());
  }

  server::HttpResponse Enroll(std::string_view path, const FakeConnection& conn,
                              const std::string& body, bool authenticated = true,
                              const std::string& content_type = "application/pkcs10") {
    std::optional<server::PeerIdentity> id;
    if (authenticated) {
      auto authorized = Identity(conn.leaf());
      EXPECT_THAT(authorized, IsOk());
      if (authorized) {
        id = *authorized;
      }
    }
    server::HttpRequest request{"POST", std::string(path), content_type, body};
    return Handler(path).Handle(request, conn.Context(id ? &*id : nullptr));
  }

  PrivateKey device_ = NewKey();
};

TEST_F(EstTest, CaCertsIsABase64CertsOnlyMessageOfTheIssuingChain) {
  FakeConnection conn(NewKey(), clock_);
  server::HttpRequest get{"GET", std::string(device::kEstCaCertsPath), "", ""};
  server::HttpResponse res = Handler(device::kEstCaCertsPath).Handle(get, conn.Context());
  ASSERT_EQ(res.status, 200) << res.body;
  EXPECT_EQ(res.content_type, "application/pkcs7-mime");
  EXPECT_EQ(Header(res, "Content-Transfer-Encoding"), "base64");
  ASSERT_OK_AND_ASSIGN(std::vector<Certificate> chain, device::ParseCertsOnly(res.body));
  ASSERT_EQ(chain.size(), 2u);
  EXPECT_EQ(chain[0], *ca_->CustomerCertificate("acme"));
  EXPECT_EQ(chain[1], ca_->root());
  EXPECT_FALSE(Handler(device::kEstCaCertsPath).authenticated_only());
}

TEST_F(EstTest, CertsOnlyMessageIsReadByOpenssl) {
  // Interop: a tool nobody here wrote reads what we send.
  ASSERT_OK_AND_ASSIGN(std::string body, EncodeCertsOnly(std::vector<Certificate>{ca_->root()}));
  ASSERT_OK_AND_ASSIGN(Bytes der, Base64Decode(body));
  ASSERT_OK_AND_ASSIGN(ProcessResult p,
                       RunProcess({"openssl", "pkcs7", "-inform", "DER", "-print_certs", "-noout"},
                                  std::string(der.begin(), der.end())));
  EXPECT_EQ(p.exit_code, 0) << p.err;
  EXPECT_THAT(p.out, HasSubstr("hallmark Manufacturer"));
}

TEST_F(EstTest, SimpleEnrollIssuesAnOperationalCertificateForTheAuthenticatedKey) {
  FakeConnection conn(device_, clock_);
  server::HttpResponse res = Enroll(device::kEstSimpleEnrollPath, conn, CsrBody(device_));
  ASSERT_EQ(res.status, 200) << res.body;
  EXPECT_EQ(res.content_type, "application/pkcs7-mime; smime-type=certs-only");
  EXPECT_EQ(Header(res, "Content-Transfer-Encoding"), "base64");
  ASSERT_OK_AND_ASSIGN(std::vector<Certificate> certs, device::ParseCertsOnly(res.body));
  ASSERT_EQ(certs.size(), 1u);
  const Certificate& cert = certs[0];
  EXPECT_EQ(cert.Key(), device_.Public());
  EXPECT_EQ(cert.SubjectAttribute("serialNumber"), "SN-1");
  EXPECT_EQ(cert.NotAfter() - clock_.Now(), 7 * 86400);
  VerifyOptions verify;
  verify.at_time = clock_.Now();
  verify.partial_chain = true;
  verify.require_client_auth = true;
  std::vector<Certificate> anchors{*ca_->CustomerCertificate("acme")};
  EXPECT_THAT(VerifyCertificate(cert, {}, anchors, verify), IsOk());
  // Recorded in the issuance log; the registry gained no record.
  ASSERT_OK_AND_ASSIGN(ca::IssuedRecord logged, ca_->Find(cert.SerialHex()));
  EXPECT_EQ(logged.profile, "operational");
  EXPECT_EQ(logged.device_id, device_.Public().DeviceId());
  EXPECT_EQ(registry_->ListPending()->size(), 0u);
}

TEST_F(EstTest, SimpleEnrollFromAnUnauthenticatedClientIsRefused) {
  FakeConnection conn(NewKey(), clock_);
  EXPECT_TRUE(Handler(device::kEstSimpleEnrollPath).authenticated_only());
  server::HttpResponse res =
      Enroll(device::kEstSimpleEnrollPath, conn, CsrBody(NewKey()), /*authenticated=*/false);
  EXPECT_EQ(res.status, 403);
  EXPECT_THAT(res.body, HasSubstr("authenticated device"));
}

TEST_F(EstTest, EnrollingACsrForAnotherKeyIsRefused) {
  FakeConnection conn(device_, clock_);
  PrivateKey other = NewKey();
  for (std::string_view path : {device::kEstSimpleEnrollPath, device::kEstSimpleReenrollPath}) {
    server::HttpResponse res = Enroll(path, conn, CsrBody(other));
    EXPECT_EQ(res.status, 403) << path;
    EXPECT_THAT(res.body, HasSubstr("another key"));
    // Twin: the device's own key.
    EXPECT_EQ(Enroll(path, conn, CsrBody(device_)).status, 200) << path;
  }
}

TEST_F(EstTest, GarbageOrOversizedCsrIsRefused) {
  FakeConnection conn(device_, clock_);
  EXPECT_EQ(Enroll(device::kEstSimpleEnrollPath, conn, "!!! not base64").status, 400);
  EXPECT_EQ(Enroll(device::kEstSimpleEnrollPath, conn, Base64Encode(AsBytes("garbage"))).status,
            400);
  // A CSR whose signature does not verify (a byte of the signature flipped).
  auto csr = Csr::Create(device_, DistinguishedName{"", "", "", "SN-1", "SN-1"});
  Bytes der = csr->ToDer();
  der[der.size() - 3] ^= 0x01;
  EXPECT_EQ(Enroll(device::kEstSimpleEnrollPath, conn, Base64Encode(der)).status, 400);
  server::Handler& h = Handler(device::kEstSimpleEnrollPath);
  EXPECT_EQ(h.max_body_bytes(), 16384u);
  EXPECT_EQ(
      Enroll(device::kEstSimpleEnrollPath, conn, std::string(h.max_body_bytes() + 1, 'A')).status,
      413);
  EXPECT_EQ(Enroll(device::kEstSimpleEnrollPath, conn, CsrBody(device_)).status, 200);
}

TEST_F(EstTest, CsrUnderAnotherContentTypeIsRefusedAndPkcs10Works) {
  FakeConnection conn(device_, clock_);
  server::HttpResponse res = Enroll(device::kEstSimpleEnrollPath, conn, CsrBody(device_), true,
                                    "application/x-www-form-urlencoded");
  EXPECT_EQ(res.status, 415);
  EXPECT_THAT(ErrorOf(res), HasSubstr("application/pkcs10"));
  for (const char* type : {"application/pkcs10", "Application/PKCS10; charset=binary", ""}) {
    EXPECT_EQ(Enroll(device::kEstSimpleEnrollPath, conn, CsrBody(device_), true, type).status, 200)
        << type;
  }
}

TEST_F(EstTest, RevokedDeviceCannotRenew) {
  FakeConnection conn(device_, clock_);
  std::optional<server::PeerIdentity> id = *Identity(conn.leaf());
  ASSERT_THAT(registry_->Revoke(*registrar_, device_.Public().DeviceId(), "stolen"), IsOk());
  Refresh();
  // Even with an identity established before the revocation reached the listener.
  server::HttpRequest request{"POST", std::string(device::kEstSimpleReenrollPath),
                              "application/pkcs10", CsrBody(device_)};
  server::HttpResponse res =
      Handler(device::kEstSimpleReenrollPath).Handle(request, conn.Context(&*id));
  EXPECT_EQ(res.status, 403);
  EXPECT_THAT(res.body, HasSubstr("revoked"));
}

TEST_F(EstTest, DeviceOfflineForMonthsRenewsByItsRegisteredKey) {
  FakeConnection first(device_, clock_);
  ASSERT_OK_AND_ASSIGN(
      std::vector<Certificate> issued,
      device::ParseCertsOnly(Enroll(device::kEstSimpleEnrollPath, first, CsrBody(device_)).body));
  clock_.Advance(180 * 86400);
  ASSERT_LT(issued[0].NotAfter(), clock_.Now());
  // It presents its long-expired operational certificate: the key is what counts.
  FakeConnection later(issued[0], "192.0.2.10:4100");
  server::HttpResponse res = Enroll(device::kEstSimpleReenrollPath, later, CsrBody(device_));
  ASSERT_EQ(res.status, 200) << res.body;
  ASSERT_OK_AND_ASSIGN(std::vector<Certificate> renewed, device::ParseCertsOnly(res.body));
  EXPECT_GT(renewed[0].NotAfter(), clock_.Now());
  EXPECT_EQ(renewed[0].Key(), device_.Public());
}

TEST_F(EstTest, UnregisteredDeviceNeedsTheCaPolicy) {
  PrivateKey stranger = NewKey();
  FakeConnection conn(stranger, clock_);
  server::PeerIdentity id{stranger.Public().DeviceId(), "registry", "", "SN-9", "", "", 0};
  server::HttpRequest request{"POST", std::string(device::kEstSimpleEnrollPath),
                              "application/pkcs10", CsrBody(stranger, "SN-9")};
  server::HttpResponse res =
      Handler(device::kEstSimpleEnrollPath).Handle(request, conn.Context(&id));
  EXPECT_EQ(res.status, 403);
  EXPECT_THAT(res.body, HasSubstr("not registered"));
  // A device the `ca` policy let in (its IDevID chains to the owner's CA) may enroll.
  id.policy = "ca";
  EXPECT_EQ(Handler(device::kEstSimpleEnrollPath).Handle(request, conn.Context(&id)).status, 200);
}

TEST_F(EstTest, EnrollmentsAreRateLimitedPerDevice) {
  FakeConnection conn(device_, clock_, "192.0.2.10:1");
  for (int i = 0; i < 5; ++i) {
    FakeConnection from(device_, clock_, "192.0.2." + std::to_string(20 + i) + ":1");
    EXPECT_EQ(Enroll(device::kEstSimpleReenrollPath, from, CsrBody(device_)).status, 200);
  }
  EXPECT_EQ(Enroll(device::kEstSimpleReenrollPath, conn, CsrBody(device_)).status, 429);
  mono_ += std::chrono::seconds(1);
  EXPECT_EQ(Enroll(device::kEstSimpleReenrollPath, conn, CsrBody(device_)).status, 200);
}

TEST(RenewalTimeTest, IsTwoThirdsIntoTheLifetime) {
  auto key = PrivateKey::Generate(KeyType::kP256);
  CertificateTemplate t;
  t.serial = Bytes{1};
  t.subject.common_name = "x";
  t.not_before = 1000;
  t.not_after = 1000 + 3 * 86400;
  t.key_usage = kDigitalSignature;
  ASSERT_OK_AND_ASSIGN(Certificate cert, SignCertificate(t, key->Public(), nullptr, *key));
  EXPECT_EQ(device::RenewalTime(cert), 1000 + 2 * 86400);
}

}  // namespace
}  // namespace hallmark::enroll
