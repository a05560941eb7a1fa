// Integration tests for `--keystore`: device keys inside a PKCS#11 token (SoftHSM2) and a TPM
// 2.0 (swtpm), and CA keys inside a token, driven through the real `hallmark` binary. The
// devices say hello to a running `hallmark serve`; `openssl` checks their CSRs and certificates.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "integration/cli_runner.h"
#include "integration/server_process.h"
#include "testing/matchers.h"
#include "testing/softhsm.h"
#include "testing/swtpm.h"

namespace hallmark::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kPin[] = "8642";

// Shared world: a file-backed CA with customer "acme" and a server whose "ca" listener trusts
// acme's intermediate. Each test brings its own token or TPM.
class KeyStoreCliTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite();
  static void TearDownTestSuite();

  void SetUp() override {
    ASSERT_FALSE(SoftHsm::Module().empty()) << "SoftHSM2 is not installed";
    ASSERT_TRUE(hsm_.InitToken("dev", kPin));
    WriteText(pin_file_, std::string(kPin) + "\n");
  }

  static std::string S(const std::string& name) { return suite_dir_->path() + "/" + name; }
  std::string P(const std::string& name) const { return dir_ / name; }

  // Device runs `hallmark --json device --keystore SPEC --pin-file PIN args...`.
  ProcessResult Device(const std::string& spec, const std::vector<std::string>& args) const {
    std::vector<std::string> argv = {"--json", "device",     "--keystore",
                                     spec,     "--pin-file", pin_file_};
    argv.insert(argv.end(), args.begin(), args.end());
    return Hallmark(argv);
  }

  // Provision makes the key in `spec`, a CSR with proof of possession, and a certificate from
  // acme's CA, all checked by openssl. Returns the device ID.
  std::string Provision(const std::string& spec, const std::string& serial) {
    ProcessResult made = Device(spec, {"keygen"});
    EXPECT_THAT(made, Succeeds());
    const std::string id = Json(made)["device_id"].get<std::string>();
    EXPECT_EQ(Json(Device(spec, {"id"}))["device_id"], id);
    EXPECT_THAT(Device(spec, {"csr", "--serial", serial, "--out", P("dev.csr")}), Succeeds());
    EXPECT_THAT(Openssl({"req", "-in", P("dev.csr"), "-verify", "-noout"}), Succeeds());
    EXPECT_THAT(Hallmark({"ca", "--dir", S("ca"), "issue", "--customer", "acme", "--profile",
                          "device", P("dev.csr"), "--out", P("dev.pem")}),
                Succeeds());
    EXPECT_THAT(Openssl({"verify", "-CAfile", S("ca/root.pem"), "-untrusted",
                         S("ca/customers/acme/ca.pem"), P("dev.pem")}),
                Succeeds());
    return id;
  }

  ProcessResult Hello(const std::string& spec, const std::vector<std::string>& extra = {}) const {
    std::vector<std::string> args = {"hello", "--server", "127.0.0.1:" + std::to_string(port_),
                                     "--trust", S("ca/customers/acme/ca.pem")};
    args.insert(args.end(), extra.begin(), extra.end());
    return Device(spec, args);
  }

  static inline TempDir* suite_dir_ = nullptr;
  static inline ServerProcess* server_ = nullptr;
  static inline int port_ = 0;

  TempDir dir_;
  SoftHsm hsm_;
  const std::string pin_file_ = dir_ / "pin";
  const std::string token_spec_ = SoftHsm::Spec("dev", "identity");
};

void KeyStoreCliTest::SetUpTestSuite() {
  suite_dir_ = new TempDir();
  ASSERT_THAT(Hallmark({"ca", "--dir", S("ca"), "init"}), Succeeds());
  ASSERT_THAT(Hallmark({"ca", "--dir", S("ca"), "customer", "add", "acme", "--org", "ACME"}),
              Succeeds());
  ASSERT_THAT(Hallmark({"device", "--key", S("server.key"), "keygen"}), Succeeds());
  ASSERT_THAT(Hallmark({"device", "--key", S("server.key"), "csr", "--san", "ip:127.0.0.1", "--out",
                        S("server.csr")}),
              Succeeds());
  ASSERT_THAT(Hallmark({"ca", "--dir", S("ca"), "issue", "--customer", "acme", "--profile",
                        "server", S("server.csr"), "--out", S("server.pem"), "--chain"}),
              Succeeds());
  WriteText(S("hallmark.toml"),
            "[server]\n"
            "certificate = \"server.pem\"\n"
            "private_key = \"server.key\"\n"
            "threads = 1\n"
            "[[listener]]\n"
            "listen = \"127.0.0.1:0\"\n"
            "policy = \"ca\"\n"
            "anchors = [\"ca/customers/acme/ca.pem\"]\n");
  server_ = new ServerProcess();
  ASSERT_TRUE(
      server_->Start({HALLMARK_BINARY, "serve", "--config", S("hallmark.toml")}, S("server.log")));
  auto ready = server_->ReadLine(std::chrono::seconds(30));
  ASSERT_TRUE(ready.has_value()) << ReadText(S("server.log"));
  auto j = nlohmann::json::parse(*ready);
  ASSERT_EQ(j["event"], "ready") << *ready;
  const std::string listen = j["listeners"][0]["listen"];
  port_ = std::stoi(listen.substr(listen.rfind(':') + 1));
}

void KeyStoreCliTest::TearDownTestSuite() {
  if (server_ != nullptr) {
    EXPECT_EQ(server_->Stop(), 0) << ReadText(S("server.log"));
    delete server_;
    server_ = nullptr;
  }
  delete suite_dir_;
  suite_dir_ = nullptr;
}

// --- PKCS#11 ---

TEST_F(KeyStoreCliTest, Pkcs11DeviceSaysHelloWithItsCertificate) {
  const std::string id = Provision(token_spec_, "TOK-1");
  ProcessResult r = Hello(token_spec_, {"--cert", P("dev.pem")});
  ASSERT_THAT(r, Succeeds());
  EXPECT_EQ(Json(r)["device_id"], id);
  EXPECT_EQ(Json(r)["policy"], "ca");
  EXPECT_EQ(Json(r)["owner"], "ACME");
}

TEST_F(KeyStoreCliTest, Pkcs11DeviceWithAnotherDevicesCertificateIsRefused) {
  Provision(token_spec_, "TOK-2");
  const std::string other = SoftHsm::Spec("dev", "other");
  ASSERT_THAT(Device(other, {"keygen"}), Succeeds());
  EXPECT_THAT(Hello(other, {"--cert", P("dev.pem")}), Not(Succeeds()));
}

TEST_F(KeyStoreCliTest, PinComesFromTheEnvironmentToo) {
  ASSERT_THAT(Device(token_spec_, {"keygen"}), Succeeds());
  ProcessResult r = RunCommand({"env", "HALLMARK_PIN=" + std::string(kPin), HALLMARK_BINARY,
                                "device", "--keystore", token_spec_, "id"});
  EXPECT_THAT(r, Succeeds());
}

struct ErrorCase {
  std::string test_name;
  std::string spec;  // "@" is replaced by the SoftHSM module path
  std::vector<std::string> args;
  std::string pin;  // written to the PIN file
  int exit_code;
  std::string message;
};

class Pkcs11ErrorTest : public KeyStoreCliTest, public ::testing::WithParamInterface<ErrorCase> {};

TEST_P(Pkcs11ErrorTest, ExplainsWhatIsWrong) {
  const ErrorCase& c = GetParam();
  std::string spec = c.spec;
  if (size_t at = spec.find('@'); at != std::string::npos) {
    spec.replace(at, 1, SoftHsm::Module());
  }
  ASSERT_THAT(Device(token_spec_, {"keygen"}), Succeeds());
  WriteText(pin_file_, c.pin);
  EXPECT_THAT(Device(spec, c.args), FailsWith(c.exit_code, HasSubstr(c.message)));
}

INSTANTIATE_TEST_SUITE_P(Cases, Pkcs11ErrorTest,
                         ::testing::Values(ErrorCase{"WrongPin",
                                                     "pkcs11:module=@;token=dev;label=identity",
                                                     {"id"},
                                                     "1111",
                                                     5,
                                                     "wrong PIN for pkcs11 token 'dev'"},
                                           ErrorCase{"MissingToken",
                                                     "pkcs11:module=@;token=gone;label=identity",
                                                     {"id"},
                                                     kPin,
                                                     4,
                                                     "no token labelled 'gone'"},
                                           ErrorCase{"MissingModule",
                                                     "pkcs11:module=/nonexistent/p11.so;token=dev",
                                                     {"id"},
                                                     kPin,
                                                     4,
                                                     "/nonexistent/p11.so does not exist"},
                                           ErrorCase{"AbsentKey",
                                                     "pkcs11:module=@;token=dev;label=nothing",
                                                     {"id"},
                                                     kPin,
                                                     4,
                                                     "no private key labelled 'nothing'"},
                                           ErrorCase{"SecondKeygen",
                                                     "pkcs11:module=@;token=dev;label=identity",
                                                     {"keygen"},
                                                     kPin,
                                                     6,
                                                     "refusing to replace"},
                                           ErrorCase{"PinInSpec",
                                                     "pkcs11:module=@;token=dev;pin-value=8642",
                                                     {"id"},
                                                     kPin,
                                                     3,
                                                     "do not put the PIN"}),
                         CaseName<ErrorCase>);

TEST_F(KeyStoreCliTest, KeyAndKeystoreTogetherIsAUsageError) {
  EXPECT_THAT(Hallmark({"device", "--key", P("k.pem"), "--keystore", token_spec_, "id"}),
              FailsWith(2, HasSubstr("excludes")));
}

// --- TPM 2.0 ---

TEST_F(KeyStoreCliTest, TpmDeviceSaysHelloWithItsCertificate) {
  Swtpm tpm;
  ASSERT_TRUE(tpm.ok()) << tpm.error();
  const std::string spec = "tpm:key=" + P("dev.tss2") + ";tcti=" + tpm.Tcti();
  const std::string id = Provision(spec, "TPM-1");
  EXPECT_THAT(ReadText(P("dev.tss2")), HasSubstr("BEGIN TSS2 PRIVATE KEY"));
  ProcessResult r = Hello(spec, {"--cert", P("dev.pem")});
  ASSERT_THAT(r, Succeeds());
  EXPECT_EQ(Json(r)["device_id"], id);
  EXPECT_EQ(Json(r)["owner"], "ACME");
}

TEST_F(KeyStoreCliTest, TpmErrorsAreSpecific) {
  Swtpm tpm;
  ASSERT_TRUE(tpm.ok()) << tpm.error();
  const std::string spec = "tpm:key=" + P("dev.tss2") + ";tcti=" + tpm.Tcti();
  EXPECT_THAT(Device(spec, {"id"}), FailsWith(4, HasSubstr("does not exist")));
  ASSERT_THAT(Device(spec, {"keygen"}), Succeeds());
  EXPECT_THAT(Device(spec, {"keygen"}), FailsWith(6, HasSubstr("refusing to replace")));
  ASSERT_TRUE(tpm.Stop());
  EXPECT_THAT(Device(spec, {"id"}), FailsWith(7, HasSubstr("cannot reach the TPM")));
}

// --- CA keys in a token ---

TEST_F(KeyStoreCliTest, CaWithKeysInATokenIssuesWhatOpensslVerifies) {
  ASSERT_TRUE(hsm_.InitToken("ca", kPin));
  const std::string ca = P("ca");
  ASSERT_THAT(Hallmark({"ca", "--dir", ca, "--pin-file", pin_file_, "init", "--keystore",
                        SoftHsm::Spec("ca")}),
              Succeeds());
  EXPECT_THAT(Hallmark({"ca", "--dir", ca, "customer", "add", "acme"}),
              FailsWith(6, HasSubstr("needs its user PIN")));
  ASSERT_THAT(Hallmark({"ca", "--dir", ca, "--pin-file", pin_file_, "customer", "add", "acme"}),
              Succeeds());
  ASSERT_THAT(Device(token_spec_, {"keygen"}), Succeeds());
  ASSERT_THAT(Device(token_spec_, {"csr", "--serial", "CA-1", "--out", P("dev.csr")}), Succeeds());
  WriteText(P("wrong-pin"), "0000\n");
  EXPECT_THAT(Hallmark({"ca", "--dir", ca, "--pin-file", P("wrong-pin"), "issue", "--customer",
                        "acme", "--profile", "device", P("dev.csr"), "--out", P("dev.pem")}),
              FailsWith(5, HasSubstr("wrong PIN")));
  EXPECT_EQ(ReadText(P("dev.pem")), "");
  ASSERT_THAT(Hallmark({"ca", "--dir", ca, "--pin-file", pin_file_, "issue", "--customer", "acme",
                        "--profile", "device", P("dev.csr"), "--out", P("dev.pem")}),
              Succeeds());
  EXPECT_THAT(Openssl({"verify", "-CAfile", ca + "/root.pem", "-untrusted",
                       ca + "/customers/acme/ca.pem", P("dev.pem")}),
              Succeeds());
  // No CA key file: the keys live in the token.
  EXPECT_EQ(ReadText(ca + "/keys/root.key"), "");
}

}  // namespace
}  // namespace hallmark::testing
