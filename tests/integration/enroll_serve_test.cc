// End to end through `hallmark serve` with an [enroll] table: a device with a batch secret claims
// on a listener that admits unknown devices, and says hello with its own key right after; a wrong
// secret, a clone of a claimed serial and a claim past the batch size are refused.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "integration/cli_runner.h"
#include "integration/server_process.h"
#include "testing/matchers.h"

namespace hallmark::testing {
namespace {

using ::testing::HasSubstr;

class EnrollServeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_THAT(Hallmark({"ca", "--dir", P("ca"), "init", "--org", "Vendor"}), Succeeds());
    ASSERT_THAT(Hallmark({"ca", "--dir", P("ca"), "customer", "add", "acme", "--org", "ACME"}),
                Succeeds());
    ASSERT_THAT(Hallmark({"device", "--key", P("server.key"), "keygen"}), Succeeds());
    ASSERT_THAT(Hallmark({"device", "--key", P("server.key"), "csr", "--san", "ip:127.0.0.1",
                          "--out", P("server.csr")}),
                Succeeds());
    ASSERT_THAT(Hallmark({"ca", "--dir", P("ca"), "issue", "--customer", "acme", "--profile",
                          "server", P("server.csr"), "--out", P("server.pem"), "--chain"}),
                Succeeds());
    ASSERT_THAT(
        Hallmark({"registry", "--db", P("reg.db"), "--registrar-key", P("registrar.key"), "init"}),
        Succeeds());
    ASSERT_THAT(Hallmark({"batch", "enrollment-key", "--out", P("enroll.key")}), Succeeds());
    ASSERT_THAT(Hallmark({"batch", "--db", P("reg.db"), "--registrar-key", P("registrar.key"),
                          "create", "--size", "2", "--expires", "1d", "--owner", "ACME", "--id",
                          "b1", "--enrollment-pub", P("enroll.key.pub"), "--secret-out",
                          P("b1.secret")}),
                Succeeds());
    WriteText(P("hallmark.toml"), R"([server]
certificate = "server.pem"
private_key = "server.key"
threads = 1
[registry]
db = "reg.db"
registrar_public_key = "registrar.key.pub"
[[listener]]
listen = "127.0.0.1:0"
policy = "registry"
admit_unknown = true
[enroll]
enrollment_key = "enroll.key"
)");
    ASSERT_TRUE(server_.Start({HALLMARK_BINARY, "serve", "--config", P("hallmark.toml")},
                              P("serve.log")));
    auto ready = server_.ReadLine(std::chrono::seconds(30));
    ASSERT_TRUE(ready.has_value()) << ReadText(P("serve.log"));
    auto j = nlohmann::json::parse(*ready);
    server_addr_ = j["listeners"][0]["listen"];
    WriteText(P("trust.pem"), ReadText(P("ca/customers/acme/ca.pem")));
  }
  void TearDown() override { EXPECT_EQ(server_.Stop(), 0); }

  std::string P(const std::string& name) const { return tmp_ / name; }
  ProcessResult Device(const std::string& key, std::vector<std::string> args) {
    std::vector<std::string> argv = {"device", "--key", P(key)};
    argv.insert(argv.end(), args.begin(), args.end());
    argv.insert(argv.end(), {"--server", server_addr_, "--trust", P("trust.pem")});
    return Hallmark(argv);
  }
  ProcessResult Claim(const std::string& key, const std::string& serial,
                      const std::string& secret) {
    return Device(key, {"claim", "--batch", "b1", "--serial", serial, "--secret-file", P(secret)});
  }
  void Keygen(const std::string& key) {
    ASSERT_THAT(Hallmark({"device", "--key", P(key), "keygen"}), Succeeds());
  }

  TempDir tmp_;
  ServerProcess server_;
  std::string server_addr_;
};

TEST_F(EnrollServeTest, ClaimedDeviceSaysHelloWithItsOwnKeyAtOnce) {
  Keygen("dev1.key");
  EXPECT_THAT(Device("dev1.key", {"hello"}), FailsWith(7, HasSubstr("403")));
  ASSERT_THAT(Claim("dev1.key", "S1", "b1.secret"), Succeeds());
  ProcessResult hello = Device("dev1.key", {"hello"});
  ASSERT_THAT(hello, Succeeds());
  EXPECT_THAT(hello.out, HasSubstr("hello, S1"));
}

TEST_F(EnrollServeTest, WrongSecretIsRefusedAndTheRightOneWorks) {
  Keygen("dev1.key");
  // A well-formed secret that is not the batch's.
  WriteText(P("other.secret"), std::string(43, 'A') + "\n");
  ::chmod(P("other.secret").c_str(), 0600);
  EXPECT_THAT(Claim("dev1.key", "S1", "other.secret"), FailsWith(5, HasSubstr("refused")));
  EXPECT_THAT(Device("dev1.key", {"hello"}), FailsWith(7, HasSubstr("403")));
  EXPECT_THAT(Claim("dev1.key", "S1", "b1.secret"), Succeeds());
}

TEST_F(EnrollServeTest, CloneOfAClaimedSerialAndAnExhaustedBatchAreRefused) {
  for (const char* k : {"dev1.key", "dev2.key", "dev3.key"}) {
    Keygen(k);
  }
  ASSERT_THAT(Claim("dev1.key", "S1", "b1.secret"), Succeeds());
  EXPECT_THAT(Claim("dev2.key", "S1", "b1.secret"), FailsWith(6, HasSubstr("possible clone")));
  EXPECT_THAT(Device("dev2.key", {"hello"}), FailsWith(7, HasSubstr("403")));
  ASSERT_THAT(Claim("dev2.key", "S2", "b1.secret"), Succeeds());
  EXPECT_THAT(Claim("dev3.key", "S3", "b1.secret"), FailsWith(5, HasSubstr("exhausted")));
}

}  // namespace
}  // namespace hallmark::testing
