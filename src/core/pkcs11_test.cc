// Pkcs11Token against a real token: SoftHSM2 in a temporary directory, initialised by the test.
#include "core/pkcs11.h"

#include <string>

#include "core/csr.h"
#include "core/external_key.h"
#include "core/subprocess.h"
#include "testing/matchers.h"
#include "testing/softhsm.h"

namespace hallmark {
namespace {

using ::hallmark::testing::HasError;
using ::hallmark::testing::IsOk;
using ::hallmark::testing::SoftHsm;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kPin[] = "4321";

class Pkcs11Test : public ::testing::Test {
 protected:
  void SetUp() override {
    if (SoftHsm::Module().empty()) {
      GTEST_SKIP() << "SoftHSM2 is not installed (scripts/install-deps.sh)";
    }
    ASSERT_TRUE(hsm_.InitToken("dev", kPin));
  }

  static Pkcs11Options Options(const std::string& token = "dev",
                               std::optional<std::string> pin = kPin) {
    Pkcs11Options o;
    o.module = SoftHsm::Module();
    o.token = token;
    if (pin.has_value()) {
      o.pin = SecretBytes(std::string_view(*pin));
    }
    return o;
  }

  SoftHsm hsm_;
};

TEST_F(Pkcs11Test, GeneratedKeySignsCsrsThatVerify) {
  ASSERT_OK_AND_ASSIGN(auto token, Pkcs11Token::Open(Options()));
  ASSERT_OK_AND_ASSIGN(PublicKey pub, token->GenerateKey("id", KeyType::kP256, false));
  ASSERT_OK_AND_ASSIGN(PrivateKey key, token->LoadKey("id"));
  EXPECT_EQ(key.Public(), pub);
  EXPECT_TRUE(IsExternalKey(key));
  ASSERT_OK_AND_ASSIGN(Bytes sig, key.Sign(Bytes{7, 7}));
  EXPECT_THAT(pub.Verify(Bytes{7, 7}, sig), IsOk());
  DistinguishedName subject;
  subject.serial_number = "SN-1";
  ASSERT_OK_AND_ASSIGN(Csr csr, Csr::Create(key, subject, {}));
  EXPECT_THAT(csr.VerifySignature(), IsOk());
}

TEST_F(Pkcs11Test, P384KeysWork) {
  ASSERT_OK_AND_ASSIGN(auto token, Pkcs11Token::Open(Options()));
  ASSERT_OK_AND_ASSIGN(PublicKey pub, token->GenerateKey("id", KeyType::kP384, false));
  EXPECT_EQ(pub.Algorithm().Describe(), "EC P-384");
  ASSERT_OK_AND_ASSIGN(PrivateKey key, token->LoadKey("id"));
  ASSERT_OK_AND_ASSIGN(Bytes sig, key.Sign(Bytes{1}));
  EXPECT_THAT(pub.Verify(Bytes{1}, sig), IsOk());
}

TEST_F(Pkcs11Test, KeySurvivesReopeningTheToken) {
  PublicKey pub = [&] {
    auto token = Pkcs11Token::Open(Options());
    EXPECT_THAT(token, IsOk());
    auto p = (*token)->GenerateKey("id", KeyType::kP256, false);
    EXPECT_THAT(p, IsOk());
    return *p;
  }();
  ASSERT_OK_AND_ASSIGN(auto token, Pkcs11Token::Open(Options()));
  ASSERT_OK_AND_ASSIGN(PrivateKey key, token->LoadKey("id"));
  EXPECT_EQ(key.Public(), pub);
}

// The private key object is sensitive and never extractable, as a tool nobody here wrote sees it.
TEST_F(Pkcs11Test, PrivateKeyIsNeverExtractable) {
  {
    ASSERT_OK_AND_ASSIGN(auto token, Pkcs11Token::Open(Options()));
    ASSERT_THAT(token->GenerateKey("id", KeyType::kP256, false), IsOk());
    ASSERT_OK_AND_ASSIGN(PrivateKey key, token->LoadKey("id"));
    EXPECT_FALSE(key.ToPem(SecretAccess::Grant()).has_value());
  }
  auto r = RunProcess({"pkcs11-tool", "--module", SoftHsm::Module(), "--token-label", "dev",
                       "--login", "--pin", kPin, "--list-objects", "--type", "privkey"});
  ASSERT_THAT(r, IsOk());
  ASSERT_EQ(r->exit_code, 0) << r->err;
  EXPECT_THAT(r->out, HasSubstr("never extractable"));
  EXPECT_THAT(r->out, HasSubstr("sensitive"));
}

TEST_F(Pkcs11Test, RefusesToReplaceAKeyUnlessAsked) {
  ASSERT_OK_AND_ASSIGN(auto token, Pkcs11Token::Open(Options()));
  ASSERT_OK_AND_ASSIGN(PublicKey first, token->GenerateKey("id", KeyType::kP256, false));
  EXPECT_THAT(token->GenerateKey("id", KeyType::kP256, false),
              HasError(Code::kAlreadyExists, HasSubstr("already holds a key labelled 'id'")));
  ASSERT_OK_AND_ASSIGN(PrivateKey still, token->LoadKey("id"));
  EXPECT_EQ(still.Public(), first);

  ASSERT_OK_AND_ASSIGN(PublicKey second, token->GenerateKey("id", KeyType::kP256, true));
  EXPECT_NE(second, first);
  ASSERT_OK_AND_ASSIGN(PrivateKey now, token->LoadKey("id"));
  EXPECT_EQ(now.Public(), second);
}

TEST_F(Pkcs11Test, AbsentKeyIsNotFound) {
  ASSERT_OK_AND_ASSIGN(auto token, Pkcs11Token::Open(Options()));
  EXPECT_THAT(token->LoadKey("nothing"),
              HasError(Code::kNotFound, HasSubstr("no private key labelled 'nothing'")));
  ASSERT_OK_AND_ASSIGN(bool has, token->HasKey("nothing"));
  EXPECT_FALSE(has);
}

TEST_F(Pkcs11Test, WrongPinIsRefused) {
  EXPECT_THAT(Pkcs11Token::Open(Options("dev", "9999")),
              HasError(Code::kPermissionDenied, HasSubstr("wrong PIN for pkcs11 token 'dev'")));
  // The right PIN still works afterwards.
  EXPECT_THAT(Pkcs11Token::Open(Options()), IsOk());
}

TEST_F(Pkcs11Test, MissingPinSaysHowToGiveIt) {
  EXPECT_THAT(Pkcs11Token::Open(Options("dev", std::nullopt)),
              HasError(Code::kFailedPrecondition, HasSubstr("--pin-file")));
}

TEST_F(Pkcs11Test, MissingTokenListsTheTokensThereAre) {
  EXPECT_THAT(Pkcs11Token::Open(Options("nope")),
              HasError(Code::kNotFound, HasSubstr("no token labelled 'nope'")));
  EXPECT_THAT(Pkcs11Token::Open(Options("nope")), HasError(Code::kNotFound, HasSubstr("dev")));
}

TEST_F(Pkcs11Test, MissingModuleIsNotFound) {
  Pkcs11Options o = Options();
  o.module = hsm_.dir() + "/no-such-module.so";
  EXPECT_THAT(Pkcs11Token::Open(o), HasError(Code::kNotFound, HasSubstr("does not exist")));
}

TEST_F(Pkcs11Test, FileThatIsNotAModuleIsRefused) {
  Pkcs11Options o = Options();
  o.module = hsm_.dir() + "/softhsm2.conf";
  EXPECT_THAT(Pkcs11Token::Open(o), HasError(Code::kInvalidArgument, HasSubstr("cannot load")));
}

TEST_F(Pkcs11Test, Ed25519IsNotOffered) {
  ASSERT_OK_AND_ASSIGN(auto token, Pkcs11Token::Open(Options()));
  EXPECT_THAT(token->GenerateKey("id", KeyType::kEd25519, false),
              HasError(Code::kInvalidArgument, HasSubstr("ed25519")));
  ASSERT_OK_AND_ASSIGN(bool has, token->HasKey("id"));
  EXPECT_FALSE(has);
}

struct ParamsCase {
  std::string test_name;
  std::string params;
  std::string error;  // empty: parses
};

class ParsePkcs11ParamsTest : public ::testing::TestWithParam<ParamsCase> {};

TEST_P(ParsePkcs11ParamsTest, ParsesOrExplains) {
  auto r = ParsePkcs11Params(GetParam().params);
  if (GetParam().error.empty()) {
    ASSERT_THAT(r, IsOk());
    EXPECT_EQ(r->at("module"), "/m.so");
    EXPECT_EQ(r->at("token"), "t");
  } else {
    EXPECT_THAT(r, HasError(Code::kInvalidArgument, HasSubstr(GetParam().error)));
  }
}

INSTANTIATE_TEST_SUITE_P(
    Cases, ParsePkcs11ParamsTest,
    ::testing::Values(ParamsCase{"Plain", "module=/m.so;token=t;label=k", ""},
                      ParamsCase{"Aliases", "module-path=/m.so;token=t;object=k", ""},
                      ParamsCase{"PinValueRefused", "module=/m.so;token=t;pin-value=1234",
                                 "do not put the PIN"},
                      ParamsCase{"UnknownKey", "module=/m.so;token=t;colour=red", "unknown"},
                      ParamsCase{"Repeated", "module=/m.so;token=t;token=u", "twice"},
                      ParamsCase{"Empty", "module=/m.so;token=", "no value"}),
    [](const auto& row) { return row.param.test_name; });

}  // namespace
}  // namespace hallmark
