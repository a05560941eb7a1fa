#include "core/pkcs7.h"

#include <string>
#include <vector>

#include "core/certificate_builder.h"
#include "core/file.h"
#include "core/key.h"
#include "core/subprocess.h"
#include "testing/matchers.h"

namespace hallmark {
namespace {

using ::hallmark::testing::HasError;
using ::hallmark::testing::IsOk;
using ::testing::HasSubstr;

Certificate SelfSigned(const PrivateKey& key, const std::string& cn) {
  CertificateTemplate t;
  t.serial = {0x01};
  t.subject.common_name = cn;
  t.not_before = 1700000000;
  t.not_after = 1900000000;
  t.key_usage = kDigitalSignature;
  return *SignCertificate(t, key.Public(), nullptr, key);
}

class CertsOnlyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* cn : {"leaf", "issuer"}) {
      keys_.push_back(*PrivateKey::Generate(KeyType::kP256));
      certs_.push_back(SelfSigned(keys_.back(), cn));
    }
  }
  std::vector<PrivateKey> keys_;
  std::vector<Certificate> certs_;
};

TEST_F(CertsOnlyTest, RoundTripsCertificatesInOrder) {
  ASSERT_OK_AND_ASSIGN(std::string text, EncodeCertsOnly(certs_));
  ASSERT_OK_AND_ASSIGN(std::vector<Certificate> back, DecodeCertsOnly(text));
  ASSERT_EQ(back.size(), 2u);
  EXPECT_EQ(back[0].ToDer(), certs_[0].ToDer());
  EXPECT_EQ(back[1].ToDer(), certs_[1].ToDer());
}

TEST_F(CertsOnlyTest, OpensslReadsWhatWeWrite) {
  ASSERT_OK_AND_ASSIGN(std::string text, EncodeCertsOnly(certs_));
  ASSERT_OK_AND_ASSIGN(Bytes der, Base64Decode(text));
  ::hallmark::testing::TempDir tmp;
  std::string path = tmp / "certs.p7";
  ASSERT_THAT(WriteFileAtomic(path, std::string(der.begin(), der.end()), 0644), IsOk());
  ASSERT_OK_AND_ASSIGN(ProcessResult r, RunProcess({"openssl", "pkcs7", "-inform", "DER", "-in",
                                                    path, "-print_certs", "-noout"}));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("subject=CN = leaf"));
  EXPECT_THAT(r.out, HasSubstr("subject=CN = issuer"));
}

TEST(DecodeCertsOnlyTest, RefusesGarbageTruncationAndEmptyMessages) {
  EXPECT_THAT(DecodeCertsOnly("%%% not base64"), HasError(Code::kInvalidArgument, ::testing::_));
  EXPECT_THAT(DecodeCertsOnly(Base64Encode(Bytes{0x30, 0x03, 0x02, 0x01, 0x01})),
              HasError(Code::kInvalidArgument, HasSubstr("PKCS#7")));
  PrivateKey key = *PrivateKey::Generate(KeyType::kP256);
  std::vector<Certificate> one = {SelfSigned(key, "x")};
  Bytes der = *Base64Decode(*EncodeCertsOnly(one));
  der.resize(der.size() - 10);
  EXPECT_THAT(DecodeCertsOnly(Base64Encode(der)), HasError(Code::kInvalidArgument, ::testing::_));
  EXPECT_THAT(DecodeCertsOnly(*EncodeCertsOnly({})),
              HasError(Code::kInvalidArgument, HasSubstr("no certificate")));
}

}  // namespace
}  // namespace hallmark
