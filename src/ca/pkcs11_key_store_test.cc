// CA keys inside a PKCS#11 token (SoftHSM2 in a temporary directory): a whole CA (root,
// customer intermediate, device certificates, CRL) signs through the token.
#include <string>

#include "ca/authority.h"
#include "ca/key_store.h"
#include "ca/testing/ca_fixture.h"
#include "core/external_key.h"
#include "core/file.h"
#include "testing/matchers.h"
#include "testing/softhsm.h"

namespace hallmark::ca {
namespace {

using ::hallmark::testing::HasError;
using ::hallmark::testing::IsOk;
using ::hallmark::testing::SoftHsm;
using ::hallmark::testing::TempDir;
using ::testing::HasSubstr;
using testing::kNow;
using testing::MakeCsr;
using testing::MakeKey;
using ::testing::Not;

constexpr char kPin[] = "13579";

KeySecrets Pin(const char* pin) {
  KeySecrets s;
  if (pin != nullptr) {
    s.pin = SecretBytes(std::string_view(pin));
  }
  return s;
}

class Pkcs11CaTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (SoftHsm::Module().empty()) {
      GTEST_SKIP() << "SoftHSM2 is not installed (scripts/install-deps.sh)";
    }
    ASSERT_TRUE(hsm_.InitToken("ca", kPin));
  }

  // InitCa makes a CA in `dir` whose keys live in the token.
  Result<Authority> InitCa(const std::string& dir) {
    auto keys = OpenKeyStore(SoftHsm::Spec("ca"), dir, Pin(kPin));
    if (!keys) {
      return keys.error();
    }
    return Authority::Init(dir, {}, std::move(*keys), &clock_);
  }

  SoftHsm hsm_;
  TempDir dir_;
  FakeClock clock_{kNow};
};

TEST_F(Pkcs11CaTest, CaInATokenIssuesCertificatesThatVerify) {
  ASSERT_OK_AND_ASSIGN(Authority ca, InitCa(dir_ / "ca"));
  ASSERT_OK_AND_ASSIGN(Certificate acme, ca.AddCustomer("acme", {}));
  ASSERT_OK_AND_ASSIGN(Issuer issuer, ca.IssuerFor("acme"));
  EXPECT_TRUE(IsExternalKey(issuer.key()));
  ASSERT_OK_AND_ASSIGN(Issued issued,
                       issuer.Issue(IssueRequest{
                           MakeCsr(MakeKey("p256"), "SN-1"), Profile::kDevice, {}, {}, {}, false}));
  const Certificate anchors[] = {ca.root()};
  const Certificate intermediates[] = {acme};
  VerifyOptions at;
  at.at_time = kNow;
  EXPECT_THAT(VerifyCertificate(issued.certificate, intermediates, anchors, at), IsOk());
  EXPECT_THAT(ca.MakeCrl("acme", 86400), IsOk());
  // No key file anywhere: the keys are in the token.
  EXPECT_FALSE(FileExists(dir_ / "ca/keys"));
}

TEST_F(Pkcs11CaTest, ReopensFromTheRecordedReferenceWithThePin) {
  {
    ASSERT_OK_AND_ASSIGN(Authority ca, InitCa(dir_ / "ca"));
    ASSERT_THAT(ca.AddCustomer("acme", {}), IsOk());
  }
  ASSERT_OK_AND_ASSIGN(Authority ca, Authority::Open(dir_ / "ca", Pin(kPin), &clock_));
  ASSERT_OK_AND_ASSIGN(Issuer issuer, ca.IssuerFor("acme"));
  EXPECT_TRUE(IsExternalKey(issuer.key()));
  ASSERT_OK_AND_ASSIGN(auto root, ca.log().FindAuthority("root"));
  EXPECT_THAT(root.key_ref, HasSubstr("pkcs11:module="));
  EXPECT_THAT(root.key_ref, HasSubstr(";token=ca;"));
  EXPECT_THAT(root.key_ref, Not(HasSubstr(kPin)));
}

TEST_F(Pkcs11CaTest, WrongPinCannotSign) {
  { ASSERT_THAT(InitCa(dir_ / "ca"), IsOk()); }
  ASSERT_OK_AND_ASSIGN(Authority ca, Authority::Open(dir_ / "ca", Pin("00000"), &clock_));
  EXPECT_THAT(ca.AddCustomer("acme", {}),
              HasError(Code::kPermissionDenied, HasSubstr("wrong PIN")));
  EXPECT_THAT(ca.Customers(), IsOk());
  EXPECT_TRUE(ca.Customers()->empty());
}

TEST_F(Pkcs11CaTest, MissingPinSaysHowToGiveIt) {
  { ASSERT_THAT(InitCa(dir_ / "ca"), IsOk()); }
  ASSERT_OK_AND_ASSIGN(Authority ca, Authority::Open(dir_ / "ca", Pin(nullptr), &clock_));
  EXPECT_THAT(ca.IssuerFor("root"), HasError(Code::kFailedPrecondition, HasSubstr("--pin-file")));
}

TEST_F(Pkcs11CaTest, TwoCasShareATokenWithoutTouchingEachOther) {
  ASSERT_OK_AND_ASSIGN(Authority first, InitCa(dir_ / "one"));
  ASSERT_OK_AND_ASSIGN(Authority second, InitCa(dir_ / "two"));
  EXPECT_NE(first.root().Key(), second.root().Key());
  // Each still signs with its own root key (IssuerFor checks key against certificate).
  EXPECT_THAT(first.IssuerFor("root"), IsOk());
  EXPECT_THAT(second.IssuerFor("root"), IsOk());
}

TEST_F(Pkcs11CaTest, MissingTokenIsNotFoundAndLeavesNoCa) {
  auto keys = OpenKeyStore(SoftHsm::Spec("absent"), dir_ / "ca", Pin(kPin));
  ASSERT_THAT(keys, IsOk());
  EXPECT_THAT(Authority::Init(dir_ / "ca", {}, std::move(*keys), &clock_),
              HasError(Code::kNotFound, HasSubstr("no token labelled 'absent'")));
  EXPECT_FALSE(FileExists(dir_ / "ca/ca.db"));
}

TEST(CaKeyStoreSpec, RefusesPinsAndUnknownStores) {
  EXPECT_THAT(OpenKeyStore("pkcs11:module=/m.so;token=ca;pin-value=1", "/d", {}),
              HasError(Code::kInvalidArgument, HasSubstr("do not put the PIN")));
  EXPECT_THAT(OpenKeyStore("tpm:/k", "/d", {}),
              HasError(Code::kInvalidArgument, HasSubstr("unknown CA key store")));
  EXPECT_THAT(OpenKeyStore("pkcs11:token=ca", "/d", {}),
              HasError(Code::kInvalidArgument, HasSubstr("module= and token=")));
}

}  // namespace
}  // namespace hallmark::ca
