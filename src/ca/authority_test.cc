#include "ca/authority.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>

#include "ca/testing/ca_fixture.h"
#include "core/file.h"

namespace hallmark::ca {
namespace {

using ::hallmark::testing::HasError;
using ::hallmark::testing::IsOk;
using ::hallmark::testing::TempDir;
using testing::CaTest;
using ::testing::HasSubstr;
using testing::MakeCsr;
using testing::MakeKey;

class AuthorityTest : public CaTest {
 protected:
  Certificate IssueDevice(const std::string& customer, const std::string& serial,
                          Profile profile = Profile::kDevice,
                          std::optional<int64_t> validity = {}) {
    auto issuer = ca_->IssuerFor(customer);
    EXPECT_TRUE(issuer.has_value());
    auto issued = issuer->Issue(
        IssueRequest{MakeCsr(MakeKey("p256"), serial), profile, {}, {}, validity, false});
    EXPECT_TRUE(issued.has_value()) << issued.error();
    return issued->certificate;
  }
};

TEST_F(AuthorityTest, RootIsCaWithPathLenOneAndCertSignCrlSign) {
  X509* root = ca_->root().native();
  EXPECT_TRUE(ca_->root().IsCa());
  EXPECT_EQ(X509_get_pathlen(root), 1);
  EXPECT_EQ(X509_get_key_usage(root), static_cast<uint32_t>(KU_KEY_CERT_SIGN | KU_CRL_SIGN));
  EXPECT_EQ(X509_check_issued(root, root), X509_V_OK);
  auto file = ReadFile(CaDir() + "/root.pem");
  ASSERT_THAT(file, IsOk());
  EXPECT_EQ(*file, ca_->root().ToPem());
}

TEST_F(AuthorityTest, InitRefusesAnExistingCaAndLeavesItAlone) {
  auto before = ReadFile(CaDir() + "/root.pem");
  EXPECT_THAT(Authority::Init(CaDir(), {}, std::nullopt, &clock_),
              HasError(Code::kAlreadyExists, HasSubstr("already exists")));
  EXPECT_EQ(*ReadFile(CaDir() + "/root.pem"), *before);
}

TEST_F(AuthorityTest, OpenWithoutCaExplainsWhatToDo) {
  TempDir empty;
  EXPECT_THAT(Authority::Open(empty.path(), std::nullopt, &clock_),
              HasError(Code::kFailedPrecondition, HasSubstr("hallmark ca init")));
}

TEST_F(AuthorityTest, CustomerIntermediateHasPathLenZeroUnderTheRoot) {
  auto acme = ca_->CustomerCertificate("acme");
  ASSERT_THAT(acme, IsOk());
  EXPECT_EQ(X509_get_pathlen(acme->native()), 0);
  EXPECT_EQ(X509_get_key_usage(acme->native()),
            static_cast<uint32_t>(KU_KEY_CERT_SIGN | KU_CRL_SIGN));
  Certificate anchors[] = {ca_->root()};
  VerifyOptions opts;
  opts.at_time = testing::kNow;
  EXPECT_THAT(VerifyCertificate(*acme, {}, anchors, opts), IsOk());
  auto chain = ReadFile(CaDir() + "/customers/acme/chain.pem");
  ASSERT_THAT(chain, IsOk());
  EXPECT_EQ(*chain, acme->ToPem() + ca_->root().ToPem());
}

TEST_F(AuthorityTest, NothingUnderASubCaOfAnIntermediateVerifies) {
  // pathLen 0: even if a customer key signed a sub-CA, what that sub-CA signs must not verify.
  auto acme = ca_->IssuerFor("acme");
  ASSERT_THAT(acme, IsOk());
  PrivateKey rogue_key = MakeKey("p256");
  DistinguishedName name;
  name.common_name = "rogue";
  auto sub = acme->SignCustomerCa(rogue_key.Public(), name, 86400, false);
  ASSERT_THAT(sub, IsOk());
  CertificateTemplate t;
  t.serial = NewSerial();
  t.subject.serial_number = "SN-ROGUE";
  t.not_before = testing::kNow - 60;
  t.not_after = testing::kNow + 3600;
  t.key_usage = kDigitalSignature;
  t.extended_key_usage = {ExtendedKeyUsage::kClientAuth};
  auto leaf = SignCertificate(t, MakeKey("p256").Public(), &*sub, rogue_key);
  ASSERT_THAT(leaf, IsOk());
  Certificate anchors[] = {ca_->root()};
  Certificate intermediates[] = {acme->certificate(), *sub};
  VerifyOptions opts;
  opts.at_time = testing::kNow;
  EXPECT_THAT(VerifyCertificate(*leaf, intermediates, anchors, opts),
              HasError(Code::kUnauthenticated, HasSubstr("path length")));
}

TEST_F(AuthorityTest, DuplicateCustomerIsRefused) {
  EXPECT_THAT(ca_->AddCustomer("acme", {}),
              HasError(Code::kAlreadyExists, HasSubstr("already exists")));
}

class CustomerNameTest : public ::testing::TestWithParam<std::string> {};

TEST_P(CustomerNameTest, RejectsInvalidName) {
  EXPECT_THAT(ValidateCustomerName(GetParam()),
              HasError(Code::kInvalidArgument, HasSubstr("invalid customer name")));
}

INSTANTIATE_TEST_SUITE_P(BadNames, CustomerNameTest,
                         ::testing::Values("", "root", "Acme", "../etc", "a/b", "-acme", ".hidden",
                                           "acme corp", std::string(64, 'a')));

TEST(CustomerNameValidTest, AcceptsReasonableNames) {
  for (const char* name : {"acme", "acme-thermostats", "a.b_c-9", "0day"}) {
    EXPECT_THAT(ValidateCustomerName(name), IsOk()) << name;
  }
}

TEST_F(AuthorityTest, UnknownCustomerNamesTheKnownOnes) {
  EXPECT_THAT(ca_->IssuerFor("initech"),
              HasError(Code::kNotFound, HasSubstr("customers: acme, globex")));
}

TEST_F(AuthorityTest, RefusesKeyFileReadableByOthers) {
  std::string key = CaDir() + "/keys/customer-acme.key";
  ASSERT_EQ(::chmod(key.c_str(), 0644), 0);
  EXPECT_THAT(ca_->IssuerFor("acme"), HasError(Code::kPermissionDenied, HasSubstr("chmod 600")));
  ASSERT_EQ(::chmod(key.c_str(), 0600), 0);
  EXPECT_THAT(ca_->IssuerFor("acme"), IsOk());
}

TEST_F(AuthorityTest, DetectsAKeyThatDoesNotMatchItsCertificate) {
  std::string key = CaDir() + "/keys/customer-acme.key";
  auto other = MakeKey("p256").ToPem(SecretAccess::Grant());
  ASSERT_THAT(WriteFileAtomic(key, other->view(SecretAccess::Grant()), 0600), IsOk());
  EXPECT_THAT(ca_->IssuerFor("acme"), HasError(Code::kDataLoss, HasSubstr("does not match")));
}

TEST_F(AuthorityTest, KeyLeftByACrashedCustomerAddIsReplaced) {
  // A crash after writing the key but before the log commit leaves an orphan key file.
  auto orphan = MakeKey("p256");
  ASSERT_THAT(
      WriteFileAtomic(CaDir() + "/keys/customer-initech.key",
                      orphan.ToPem(SecretAccess::Grant())->view(SecretAccess::Grant()), 0600),
      IsOk());
  auto cert = ca_->AddCustomer("initech", {});
  ASSERT_THAT(cert, IsOk());
  EXPECT_FALSE(cert->Key() == orphan.Public());
  EXPECT_THAT(ca_->IssuerFor("initech"), IsOk());
}

TEST(AuthorityPassphraseTest, EncryptedKeysNeedTheRightPassphrase) {
  TempDir dir;
  FakeClock clock(testing::kNow);
  {
    auto ca =
        Authority::Init(dir.path(), {}, SecretBytes(std::string_view("correct horse")), &clock);
    ASSERT_THAT(ca, IsOk());
    ASSERT_THAT(ca->AddCustomer("acme", {}), IsOk());
  }
  auto key = ReadFile(dir / "keys/customer-acme.key");
  ASSERT_THAT(key, IsOk());
  EXPECT_THAT(*key, HasSubstr("ENCRYPTED PRIVATE KEY"));

  auto none = Authority::Open(dir.path(), std::nullopt, &clock);
  ASSERT_THAT(none, IsOk());
  EXPECT_THAT(none->IssuerFor("acme"),
              HasError(Code::kFailedPrecondition, HasSubstr("passphrase")));
  auto wrong = Authority::Open(dir.path(), SecretBytes(std::string_view("wrong")), &clock);
  ASSERT_THAT(wrong, IsOk());
  EXPECT_THAT(wrong->IssuerFor("acme"), HasError(Code::kPermissionDenied, HasSubstr("passphrase")));
  auto right = Authority::Open(dir.path(), SecretBytes(std::string_view("correct horse")), &clock);
  ASSERT_THAT(right, IsOk());
  EXPECT_THAT(right->IssuerFor("acme"), IsOk());
}

TEST_F(AuthorityTest, RevokedCertificateAppearsOnTheCustomersCrl) {
  Certificate revoked = IssueDevice("acme", "SN-R");
  Certificate good = IssueDevice("acme", "SN-G");
  auto record = ca_->Revoke(revoked.SerialHex(), RevocationReason::kKeyCompromise);
  ASSERT_THAT(record, IsOk());
  EXPECT_EQ(record->reason, RevocationReason::kKeyCompromise);
  auto crl = ca_->MakeCrl("acme", 7 * 86400);
  ASSERT_THAT(crl, IsOk());
  EXPECT_TRUE(crl->IsRevoked(revoked));
  EXPECT_FALSE(crl->IsRevoked(good));
  EXPECT_EQ(crl->NextUpdate(), testing::kNow + 7 * 86400);
  EXPECT_THAT(crl->VerifySignature(*ca_->CustomerCertificate("acme")), IsOk());
  EXPECT_FALSE(crl->VerifySignature(*ca_->CustomerCertificate("globex")).has_value());
}

TEST_F(AuthorityTest, CrlNumbersIncrease) {
  auto first = ca_->MakeCrl("acme", 86400);
  auto second = ca_->MakeCrl("acme", 86400);
  ASSERT_THAT(first, IsOk());
  ASSERT_THAT(second, IsOk());
  auto number = [](const Crl& crl) {
    OsslPtr<ASN1_INTEGER> n(static_cast<ASN1_INTEGER*>(
        X509_CRL_get_ext_d2i(crl.native(), NID_crl_number, nullptr, nullptr)));
    return ASN1_INTEGER_get(n.get());
  };
  EXPECT_EQ(number(*first), 1);
  EXPECT_EQ(number(*second), 2);
}

TEST_F(AuthorityTest, RevokingTwiceIsRefused) {
  Certificate cert = IssueDevice("acme", "SN-T");
  ASSERT_THAT(ca_->Revoke(cert.SerialHex(), RevocationReason::kSuperseded), IsOk());
  EXPECT_THAT(ca_->Revoke(cert.SerialHex(), RevocationReason::kKeyCompromise),
              HasError(Code::kFailedPrecondition, HasSubstr("already revoked")));
}

TEST_F(AuthorityTest, RevokeAcceptsSerialsAsOpensslPrintsThem) {
  Certificate a = IssueDevice("acme", "SN-U1");
  Certificate b = IssueDevice("acme", "SN-U2");
  std::string upper;
  for (char c : a.SerialHex()) {
    upper.push_back(static_cast<char>(std::toupper(static_cast<unsigned char>(c))));
  }
  EXPECT_THAT(ca_->Revoke(upper, RevocationReason::kUnspecified), IsOk());
  std::string colons;
  std::string hex = "00" + b.SerialHex();
  for (size_t i = 0; i < hex.size(); i += 2) {
    colons += (i ? ":" : "") + hex.substr(i, 2);
  }
  EXPECT_THAT(ca_->Revoke(colons, RevocationReason::kUnspecified), IsOk());
}

TEST_F(AuthorityTest, RevokeRefusesUnknownAndMalformedSerials) {
  EXPECT_THAT(ca_->Revoke("0123456789abcdef", RevocationReason::kUnspecified),
              HasError(Code::kNotFound, HasSubstr("no certificate with serial")));
  EXPECT_THAT(ca_->Revoke("not-hex", RevocationReason::kUnspecified),
              HasError(Code::kInvalidArgument, HasSubstr("not a hex number")));
}

TEST_F(AuthorityTest, RootCrlListsARevokedIntermediate) {
  auto acme = ca_->CustomerCertificate("acme");
  ASSERT_THAT(ca_->Revoke(acme->SerialHex(), RevocationReason::kCaCompromise), IsOk());
  auto crl = ca_->MakeCrl("root", 86400);
  ASSERT_THAT(crl, IsOk());
  EXPECT_TRUE(crl->IsRevoked(*acme));
  EXPECT_THAT(crl->VerifySignature(ca_->root()), IsOk());
}

TEST_F(AuthorityTest, ExpiredCertificatesDropOffTheCrl) {
  Certificate op = IssueDevice("acme", "SN-OP", Profile::kOperational, 86400);
  ASSERT_THAT(ca_->Revoke(op.SerialHex(), RevocationReason::kSuperseded), IsOk());
  EXPECT_EQ(ca_->MakeCrl("acme", 3600)->RevokedCount(), 1u);
  clock_.Advance(2 * 86400);
  EXPECT_EQ(ca_->MakeCrl("acme", 3600)->RevokedCount(), 0u);
}

TEST_F(AuthorityTest, ReopenedCaSeesEverything) {
  Certificate cert = IssueDevice("acme", "SN-P");
  auto reopened = Authority::Open(CaDir(), std::nullopt, &clock_);
  ASSERT_THAT(reopened, IsOk());
  EXPECT_EQ(reopened->root(), ca_->root());
  auto customers = reopened->Customers();
  ASSERT_THAT(customers, IsOk());
  ASSERT_EQ(customers->size(), 2u);
  EXPECT_EQ((*customers)[0].name, "acme");
  EXPECT_EQ((*customers)[0].issued, 1);
  EXPECT_THAT(reopened->log().Find(cert.SerialHex()), IsOk());
}

}  // namespace
}  // namespace hallmark::ca
