#include "ca/issuer.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <openssl/x509v3.h>

#include <set>

#include "ca/testing/ca_fixture.h"
#include "core/sqlite.h"

namespace hallmark::ca {
namespace {

using ::hallmark::testing::HasError;
using ::hallmark::testing::IsOk;
using testing::CaTest;
using ::testing::Contains;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using testing::MakeCsr;
using testing::MakeKey;

class IssuerTest : public CaTest {
 protected:
  void SetUp() override {
    CaTest::SetUp();
    auto issuer = ca_->IssuerFor("acme");
    ASSERT_TRUE(issuer.has_value()) << issuer.error();
    acme_.emplace(std::move(*issuer));
    acme_cert_ = acme_->certificate();
  }

  Status VerifiesAsAcmeDevice(const Certificate& cert) {
    Certificate intermediates[] = {*acme_cert_};
    Certificate anchors[] = {ca_->root()};
    VerifyOptions opts;
    opts.at_time = kNowPlus(60);
    opts.require_client_auth = true;
    return VerifyCertificate(cert, intermediates, anchors, opts);
  }
  static int64_t kNowPlus(int64_t s) { return testing::kNow + s; }

  std::optional<Issuer> acme_;
  std::optional<Certificate> acme_cert_;
};

TEST_F(IssuerTest, IssuesDeviceCertificateWithClientAuthAndSerialNumber) {
  auto issued = acme_->Issue(DeviceRequest("SN-0001"));
  ASSERT_THAT(issued, IsOk());
  const Certificate& cert = issued->certificate;
  EXPECT_EQ(cert.SubjectAttribute("serialNumber"), "SN-0001");
  EXPECT_FALSE(cert.IsCa());
  X509* x = cert.native();
  EXPECT_EQ(X509_get_key_usage(x), static_cast<uint32_t>(KU_DIGITAL_SIGNATURE));
  EXPECT_EQ(X509_get_extended_key_usage(x), static_cast<uint32_t>(XKU_SSL_CLIENT));
  EXPECT_THAT(VerifiesAsAcmeDevice(cert), IsOk());
  EXPECT_THAT(issued->notes, IsEmpty());
}

TEST_F(IssuerTest, DeviceCertificateFromAnotherCustomerDoesNotVerifyAgainstAcmeAnchor) {
  auto globex = ca_->IssuerFor("globex");
  ASSERT_THAT(globex, IsOk());
  auto issued = globex->Issue(DeviceRequest("GLX-1"));
  ASSERT_THAT(issued, IsOk());
  Certificate acme_only[] = {*acme_cert_};
  VerifyOptions opts;
  opts.at_time = kNowPlus(60);
  opts.partial_chain = true;
  EXPECT_THAT(VerifyCertificate(issued->certificate, {}, acme_only, opts),
              HasError(Code::kUnauthenticated, HasSubstr("local issuer")));
  auto mine = acme_->Issue(DeviceRequest("ACME-1"));
  ASSERT_THAT(mine, IsOk());
  EXPECT_THAT(VerifyCertificate(mine->certificate, {}, acme_only, opts), IsOk());
}

TEST_F(IssuerTest, DeviceCertificateNeverOutlivesItsIssuer) {
  IssueRequest r = DeviceRequest("SN-2");
  r.no_expiry = true;
  auto issued = acme_->Issue(r);
  ASSERT_THAT(issued, IsOk());
  EXPECT_EQ(issued->certificate.NotAfter(), acme_cert_->NotAfter());
  EXPECT_THAT(issued->notes, Contains(HasSubstr("capped")));
}

TEST_F(IssuerTest, DeviceCertificateHasNoWellDefinedExpirationWhenTheChainAllows) {
  CustomerOptions opts;
  opts.no_expiry = true;
  ASSERT_THAT(ca_->AddCustomer("forever", opts), IsOk());
  auto forever = ca_->IssuerFor("forever");
  ASSERT_THAT(forever, IsOk());
  // The root lives 30 years, so even a "no expiry" intermediate is capped at the root.
  EXPECT_EQ(forever->certificate().NotAfter(), ca_->root().NotAfter());

  hallmark::testing::TempDir other;
  InitOptions init;
  init.no_expiry = true;
  auto eternal = Authority::Init(other.path(), init, std::nullopt, &clock_);
  ASSERT_THAT(eternal, IsOk());
  ASSERT_THAT(eternal->AddCustomer("acme", opts), IsOk());
  auto issuer = eternal->IssuerFor("acme");
  ASSERT_THAT(issuer, IsOk());
  auto issued = issuer->Issue(DeviceRequest("SN-3"));
  ASSERT_THAT(issued, IsOk());
  EXPECT_EQ(issued->certificate.NotAfter(), kNoWellDefinedExpiration);
  EXPECT_THAT(issued->notes, IsEmpty());
  const ASN1_TIME* not_after = X509_get0_notAfter(issued->certificate.native());
  EXPECT_EQ(ASN1_STRING_type(not_after), V_ASN1_GENERALIZEDTIME);
}

TEST_F(IssuerTest, NotBeforeIsBackdatedButNeverBeforeTheIssuer) {
  auto issued = acme_->Issue(DeviceRequest("SN-4"));
  ASSERT_THAT(issued, IsOk());
  EXPECT_LE(issued->certificate.NotBefore(), testing::kNow);
  EXPECT_GE(issued->certificate.NotBefore(), acme_cert_->NotBefore());
}

TEST_F(IssuerTest, ServerProfileUsesGivenSubjectAltNames) {
  IssueRequest r{MakeCsr(MakeKey("p256"), ""), Profile::kServer, {}, {}, {}, false};
  r.subject_alt_names = {*ParseSubjectAltName("dns:device.example.com"),
                         *ParseSubjectAltName("ip:127.0.0.1")};
  auto issued = acme_->Issue(r);
  ASSERT_THAT(issued, IsOk());
  EXPECT_EQ(X509_get_extended_key_usage(issued->certificate.native()),
            static_cast<uint32_t>(XKU_SSL_SERVER));
  EXPECT_EQ(X509_check_host(issued->certificate.native(), "device.example.com", 0, 0, nullptr), 1);
  EXPECT_EQ(X509_check_ip_asc(issued->certificate.native(), "127.0.0.1", 0), 1);
}

TEST_F(IssuerTest, ServerProfileTakesValidatedSubjectAltNamesFromTheCsr) {
  IssueRequest r{MakeCsr(MakeKey("p256"), "", {{"subjectAltName", "DNS:srv.example.com"}}),
                 Profile::kServer,
                 {},
                 {},
                 {},
                 false};
  auto issued = acme_->Issue(r);
  ASSERT_THAT(issued, IsOk());
  EXPECT_EQ(issued->certificate.SubjectAttribute("CN"), "srv.example.com");
}

struct RefusedCase {
  std::string name;
  std::function<IssueRequest()> request;
  Code code;
  std::string message;
};

class IssuerRefusalTest : public IssuerTest, public ::testing::WithParamInterface<RefusedCase> {};

TEST_P(IssuerRefusalTest, RefusesAndLogsNothing) {
  const RefusedCase& c = GetParam();
  int64_t before = IssuedCount("acme");
  auto issued = acme_->Issue(c.request());
  EXPECT_THAT(issued, HasError(c.code, HasSubstr(c.message)));
  EXPECT_EQ(IssuedCount("acme"), before);
}

IssueRequest Device(const Csr& csr) {
  return IssueRequest{csr, Profile::kDevice, {}, {}, {}, false};
}

INSTANTIATE_TEST_SUITE_P(
    Attacks, IssuerRefusalTest,
    ::testing::Values(
        RefusedCase{"Rsa1024Key", [] { return Device(MakeCsr(MakeKey("rsa1024"), "SN")); },
                    Code::kPermissionDenied, "RSA-1024"},
        RefusedCase{"P192Key", [] { return Device(MakeCsr(MakeKey("p192"), "SN")); },
                    Code::kPermissionDenied, "prime192v1"},
        RefusedCase{"TamperedSignature",
                    [] { return Device(testing::TamperSignature(MakeCsr(MakeKey("p256"), "SN"))); },
                    Code::kInvalidArgument, "proof of possession"},
        RefusedCase{"AsksForCa",
                    [] {
                      return Device(MakeCsr(MakeKey("p256"), "SN",
                                            {{"basicConstraints", "critical,CA:TRUE"}}));
                    },
                    Code::kPermissionDenied, "CA:TRUE"},
        RefusedCase{"MissingSerial", [] { return Device(MakeCsr(MakeKey("p256"), "")); },
                    Code::kInvalidArgument, "serial number"},
        RefusedCase{"SerialMismatch",
                    [] {
                      IssueRequest r = Device(MakeCsr(MakeKey("p256"), "SN-A"));
                      r.serial_number = "SN-B";
                      return r;
                    },
                    Code::kInvalidArgument, "does not match"},
        RefusedCase{"SerialWithForbiddenCharacters",
                    [] {
                      IssueRequest r = Device(MakeCsr(MakeKey("p256"), ""));
                      r.serial_number = "SN*1";
                      return r;
                    },
                    Code::kInvalidArgument, "PrintableString"},
        RefusedCase{"ServerWithoutSan",
                    [] {
                      return IssueRequest{
                          MakeCsr(MakeKey("p256"), ""), Profile::kServer, {}, {}, {}, false};
                    },
                    Code::kInvalidArgument, "requires a subjectAltName"},
        RefusedCase{"ServerWithUriSan",
                    [] {
                      IssueRequest r{
                          MakeCsr(MakeKey("p256"), ""), Profile::kServer, {}, {}, {}, false};
                      r.subject_alt_names = {*ParseSubjectAltName("uri:urn:x:y")};
                      return r;
                    },
                    Code::kInvalidArgument, "only DNS and IP"},
        RefusedCase{"ServerSanMismatchWithCsr",
                    [] {
                      IssueRequest r{MakeCsr(MakeKey("p256"), "", {{"subjectAltName", "DNS:a.b"}}),
                                     Profile::kServer,
                                     {},
                                     {},
                                     {},
                                     false};
                      r.subject_alt_names = {*ParseSubjectAltName("dns:c.d")};
                      return r;
                    },
                    Code::kInvalidArgument, "differ"},
        RefusedCase{
            "OperationalValidityAboveMaximum",
            [] {
              IssueRequest r{
                  MakeCsr(MakeKey("p256"), "SN"), Profile::kOperational, {}, {}, 91 * 86400, false};
              return r;
            },
            Code::kOutOfRange, "maximum of 90d"},
        RefusedCase{"ServerWithoutExpiry",
                    [] {
                      IssueRequest r{
                          MakeCsr(MakeKey("p256"), ""), Profile::kServer, {}, {}, {}, true};
                      r.subject_alt_names = {*ParseSubjectAltName("dns:a.b")};
                      return r;
                    },
                    Code::kInvalidArgument, "without expiry"},
        RefusedCase{"CaProfileFromCsr",
                    [] {
                      return IssueRequest{
                          MakeCsr(MakeKey("p256"), "SN"), Profile::kCustomerCa, {}, {}, {}, false};
                    },
                    Code::kInvalidArgument, "cannot be issued from a CSR"}),
    [](const ::testing::TestParamInfo<RefusedCase>& p) { return p.param.name; });

class IssuerKeyTypeTest : public IssuerTest, public ::testing::WithParamInterface<std::string> {};

TEST_P(IssuerKeyTypeTest, AcceptsAllowedKey) {
  auto issued = acme_->Issue(DeviceRequest("SN-K", GetParam()));
  ASSERT_THAT(issued, IsOk());
  EXPECT_THAT(VerifiesAsAcmeDevice(issued->certificate), IsOk());
}

INSTANTIATE_TEST_SUITE_P(AllowedKeys, IssuerKeyTypeTest,
                         ::testing::Values("p256", "p384", "ed25519", "rsa2048"));

TEST_F(IssuerTest, IgnoresRequestedExtensionsAndSaysSo) {
  IssueRequest r = Device(MakeCsr(
      MakeKey("p256"), "SN-E",
      {{"extendedKeyUsage", "serverAuth,codeSigning"}, {"keyUsage", "critical,keyCertSign"}}));
  auto issued = acme_->Issue(r);
  ASSERT_THAT(issued, IsOk());
  EXPECT_EQ(X509_get_extended_key_usage(issued->certificate.native()),
            static_cast<uint32_t>(XKU_SSL_CLIENT));
  EXPECT_EQ(X509_get_key_usage(issued->certificate.native()),
            static_cast<uint32_t>(KU_DIGITAL_SIGNATURE));
  EXPECT_THAT(issued->notes, Contains(HasSubstr("ignored requested extension extendedKeyUsage")));
  EXPECT_THAT(issued->notes, Contains(HasSubstr("ignored requested extension keyUsage")));
}

TEST_F(IssuerTest, OperationalDefaultsToSevenDays) {
  auto issued = acme_->Issue(
      IssueRequest{MakeCsr(MakeKey("p256"), "SN-O"), Profile::kOperational, {}, {}, {}, false});
  ASSERT_THAT(issued, IsOk());
  EXPECT_EQ(issued->certificate.NotAfter(), testing::kNow + 7 * 86400);
}

TEST_F(IssuerTest, SerialNumbersAreRandomPositiveAndUnique) {
  std::set<std::string> serials;
  std::vector<IssueRequest> requests;
  Csr csr = MakeCsr(MakeKey("p256"), "SN-S");
  for (int i = 0; i < 300; ++i) {
    requests.push_back(Device(csr));
  }
  for (auto& r : acme_->IssueBatch(requests)) {
    ASSERT_THAT(r, IsOk());
    std::string serial = r->certificate.SerialHex();
    // At least 64 random bits (RFC 5280 and CA/B Forum practice); we use 127.
    EXPECT_GE(serial.size(), 16u) << serial;
    EXPECT_LE(serial.size(), 32u) << serial;
    serials.insert(serial);
    const ASN1_INTEGER* raw = X509_get0_serialNumber(r->certificate.native());
    EXPECT_EQ(ASN1_STRING_type(raw), V_ASN1_INTEGER);  // not V_ASN1_NEG_INTEGER
  }
  EXPECT_EQ(serials.size(), 300u);
}

TEST_F(IssuerTest, EveryIssuedCertificateIsInTheLog) {
  auto issued = acme_->Issue(DeviceRequest("SN-L"));
  ASSERT_THAT(issued, IsOk());
  auto record = ca_->log().Find(issued->certificate.SerialHex());
  ASSERT_THAT(record, IsOk());
  EXPECT_EQ(record->der, issued->certificate.ToDer());
  EXPECT_EQ(record->issuer, "acme");
  EXPECT_EQ(record->profile, "device");
  EXPECT_EQ(record->device_id, issued->certificate.Key().DeviceId());
  EXPECT_EQ(record->not_after, issued->certificate.NotAfter());
  EXPECT_EQ(record->subject, issued->certificate.Subject());
}

TEST_F(IssuerTest, NoCertificateIsHandedOutWhenTheLogCannotRecordIt) {
  // Inject a storage failure through a second connection to the same database.
  auto db = sqlite::Database::Open(DbPath());
  ASSERT_THAT(db, IsOk());
  ASSERT_THAT(db->Exec("CREATE TRIGGER fail BEFORE INSERT ON certificates "
                       "BEGIN SELECT RAISE(ABORT, 'disk full'); END;"),
              IsOk());
  int64_t before = IssuedCount("acme");
  auto issued = acme_->Issue(DeviceRequest("SN-F"));
  EXPECT_FALSE(issued.has_value());
  EXPECT_THAT(issued.error().message(), HasSubstr("disk full"));
  ASSERT_THAT(db->Exec("DROP TRIGGER fail"), IsOk());
  EXPECT_EQ(IssuedCount("acme"), before);
  EXPECT_THAT(acme_->Issue(DeviceRequest("SN-F")), IsOk());
}

TEST_F(IssuerTest, AllOrNothingBatchIssuesNothingWhenOneRequestIsBad) {
  std::vector<IssueRequest> requests = {
      DeviceRequest("SN-1"), Device(MakeCsr(MakeKey("rsa1024"), "SN-2")), DeviceRequest("SN-3")};
  int64_t before = IssuedCount("acme");
  auto results = acme_->IssueBatch(requests, /*all_or_nothing=*/true);
  EXPECT_THAT(results[0], HasError(Code::kFailedPrecondition, HasSubstr("not issued")));
  EXPECT_THAT(results[1], HasError(Code::kPermissionDenied, HasSubstr("RSA-1024")));
  EXPECT_THAT(results[2], HasError(Code::kFailedPrecondition, HasSubstr("not issued")));
  EXPECT_EQ(IssuedCount("acme"), before);

  auto partial = acme_->IssueBatch(requests);
  EXPECT_THAT(partial[0], IsOk());
  EXPECT_FALSE(partial[1].has_value());
  EXPECT_THAT(partial[2], IsOk());
  EXPECT_EQ(IssuedCount("acme"), before + 2);
}

TEST_F(IssuerTest, ExpiredCaRefusesToIssue) {
  clock_.Set(acme_cert_->NotAfter() + 1);
  auto issuer = ca_->IssuerFor("acme");
  ASSERT_THAT(issuer, IsOk());
  EXPECT_THAT(issuer->Issue(DeviceRequest("SN-X")),
              HasError(Code::kFailedPrecondition, HasSubstr("not valid now")));
}

TEST(ClampValidityTest, CapsAtIssuer) {
  bool capped = false;
  EXPECT_EQ(ClampValidity(100, 50, false, 1000, &capped), 150);
  EXPECT_FALSE(capped);
  EXPECT_EQ(ClampValidity(100, 5000, false, 1000, &capped), 1000);
  EXPECT_TRUE(capped);
  EXPECT_EQ(ClampValidity(100, std::nullopt, true, kNoWellDefinedExpiration, &capped),
            kNoWellDefinedExpiration);
  EXPECT_FALSE(capped);
}

}  // namespace
}  // namespace hallmark::ca
