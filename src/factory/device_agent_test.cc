#include "factory/device_agent.h"

#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "core/csr.h"
#include "core/encoding.h"
#include "core/file.h"
#include "testing/matchers.h"

namespace hallmark::factory {
namespace {

using ::hallmark::testing::IsOk;
using ::hallmark::testing::TempDir;
using nlohmann::json;
using ::testing::HasSubstr;

class DeviceAgentTest : public ::testing::Test {
 protected:
  // Serve runs the agent over `requests` and returns its replies.
  std::vector<json> Serve(const std::vector<json>& requests,
                          DeviceFault fault = DeviceFault::kNone) {
    std::stringstream in;
    for (const json& r : requests) {
      in << r.dump() << "\n";
    }
    std::stringstream out;
    device::FileKeyStore store(dir_ / "key.pem", std::nullopt);
    EXPECT_THAT(RunDeviceAgent(in, out, store, {dir_ / "idevid.pem", fault}), IsOk());
    std::vector<json> replies;
    std::string line;
    while (std::getline(out, line)) {
      replies.push_back(json::parse(line));
    }
    return replies;
  }

  static PublicKey KeyOf(const json& reply) {
    auto der = Base64Decode(reply["public_key"].get<std::string>());
    EXPECT_THAT(der, IsOk());
    auto key = PublicKey::FromDer(*der);
    EXPECT_THAT(key, IsOk());
    return *key;
  }

  static Csr CsrOf(const json& reply) {
    auto der = Base64Decode(reply["csr"].get<std::string>());
    EXPECT_THAT(der, IsOk());
    auto csr = Csr::FromDer(*der);
    EXPECT_THAT(csr, IsOk());
    return *csr;
  }

  TempDir dir_;
};

const json kKeygen = {{"op", "keygen"}, {"key_type", "p256"}};
const json kCsr = {{"op", "csr"}, {"serial", "SN-7"}};

TEST_F(DeviceAgentTest, ReportsOnlyThePublicKeyAndAVerifiableCsr) {
  auto replies = Serve({kKeygen, kCsr});
  ASSERT_EQ(replies.size(), 2u);
  ASSERT_TRUE(replies[0]["ok"].get<bool>()) << replies[0];
  EXPECT_FALSE(replies[0].contains("private_key"));
  PublicKey key = KeyOf(replies[0]);
  Csr csr = CsrOf(replies[1]);
  EXPECT_THAT(csr.VerifySignature(), IsOk());
  EXPECT_EQ(csr.Key(), key);
  EXPECT_THAT(csr.Subject(), HasSubstr("SN-7"));
}

TEST_F(DeviceAgentTest, BadCsrFaultBreaksProofOfPossession) {
  auto replies = Serve({kKeygen, kCsr}, DeviceFault::kBadCsr);
  ASSERT_EQ(replies.size(), 2u);
  EXPECT_FALSE(CsrOf(replies[1]).VerifySignature().has_value());
}

TEST_F(DeviceAgentTest, OtherKeyFaultSignsWithAnotherKey) {
  auto replies = Serve({kKeygen, kCsr}, DeviceFault::kOtherKey);
  ASSERT_EQ(replies.size(), 2u);
  Csr csr = CsrOf(replies[1]);
  EXPECT_THAT(csr.VerifySignature(), IsOk());
  EXPECT_NE(csr.Key(), KeyOf(replies[0]));
}

TEST_F(DeviceAgentTest, InstallStoresTheCertificateAndRefusesGarbage) {
  auto replies =
      Serve({{{"op", "install"}, {"certificate", "not a certificate"}},
             {{"op", "install"},
              {"certificate", "-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n"}}});
  ASSERT_EQ(replies.size(), 2u);
  EXPECT_FALSE(replies[0]["ok"].get<bool>());
  EXPECT_EQ(replies[0]["code"], "invalid_argument");
  EXPECT_TRUE(replies[1]["ok"].get<bool>());
  EXPECT_TRUE(FileExists(dir_ / "idevid.pem"));
}

TEST_F(DeviceAgentTest, SecondKeygenIsRefused) {
  auto replies = Serve({kKeygen, kKeygen, {{"op", "reboot"}}, json("not an object")});
  ASSERT_EQ(replies.size(), 4u);
  EXPECT_THAT(replies[1]["error"].get<std::string>(), HasSubstr("refusing to replace"));
  EXPECT_THAT(replies[2]["error"].get<std::string>(), HasSubstr("unknown request 'reboot'"));
  EXPECT_THAT(replies[3]["error"].get<std::string>(), HasSubstr("not a JSON object"));
}

TEST(DeviceFault, NamesRoundTrip) {
  for (const char* name : {"none", "bad-csr", "other-key", "crash"}) {
    auto fault = ParseDeviceFault(name);
    ASSERT_THAT(fault, IsOk());
    EXPECT_EQ(DeviceFaultName(*fault), name);
  }
  EXPECT_FALSE(ParseDeviceFault("explode").has_value());
}

}  // namespace
}  // namespace hallmark::factory
