// Integration tests for `hallmark device ...`: they drive the real binary and check the key, CSR
// and device ID it makes with `openssl`, a tool nobody here wrote.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <ostream>
#include <sstream>
#include <string>
#include <vector>

#include "integration/cli_runner.h"
#include "testing/matchers.h"

namespace hallmark {

namespace testing {
namespace {

namespace fs = std::filesystem;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::MatchesRegex;
using ::testing::Not;

// OpensslDeviceId computes what the device ID must be, with openssl only: the SHA-256 of the
// DER SubjectPublicKeyInfo of the key in `key_pem`, in lowercase hex.
std::string OpensslDeviceId(const std::string& key_pem) {
  const std::string spki = key_pem + ".spki.der";
  ProcessResult pub = Openssl({"pkey", "-in", key_pem, "-pubout", "-outform", "DER", "-out", spki});
  EXPECT_EQ(pub.exit_code, 0) << pub.err;
  ProcessResult digest = Openssl({"dgst", "-sha256", "-r", spki});
  EXPECT_EQ(digest.exit_code, 0) << digest.err;
  // `-r` prints "HEX *FILE".
  return digest.out.substr(0, digest.out.find(' '));
}

class DeviceCliTest : public ::testing::Test {
 protected:
  // Device runs `hallmark device --key KEY args...`.
  ProcessResult Device(const std::vector<std::string>& args) const {
    std::vector<std::string> argv = {"device", "--key", key_};
    argv.insert(argv.end(), args.begin(), args.end());
    return Hallmark(argv);
  }

  // DeviceJson runs `hallmark --json device --key KEY args...`.
  ProcessResult DeviceJson(const std::vector<std::string>& args) const {
    std::vector<std::string> argv = {"--json", "device", "--key", key_};
    argv.insert(argv.end(), args.begin(), args.end());
    return Hallmark(argv);
  }

  // Keygen creates the device key and returns its reported device ID.
  std::string Keygen(const std::vector<std::string>& args = {}) {
    std::vector<std::string> argv = {"keygen"};
    argv.insert(argv.end(), args.begin(), args.end());
    ProcessResult r = DeviceJson(argv);
    EXPECT_THAT(r, Succeeds());
    return Json(r)["device_id"].get<std::string>();
  }

  // MakeCa creates a CA with customer "acme" so a test can have the device's CSR signed.
  void MakeCa() {
    ASSERT_THAT(Hallmark({"ca", "init", "--dir", ca_}), Succeeds());
    ASSERT_THAT(Hallmark({"ca", "--dir", ca_, "customer", "add", "acme"}), Succeeds());
  }

  // IssueCert has the CA sign `csr` under `profile` into `cert`.
  ProcessResult IssueCert(const std::string& csr, const std::string& profile,
                          const std::string& cert) const {
    return Hallmark({"ca", "--dir", ca_, "issue", csr, "--customer", "acme", "--profile", profile,
                     "--out", cert});
  }

  ProcessResult VerifyChain(const std::string& cert) const {
    return Openssl({"verify", "-CAfile", ca_ + "/root.pem", "-untrusted",
                    ca_ + "/customers/acme/ca.pem", cert});
  }

  TempDir tmp_;
  const std::string key_ = tmp_ / "device-key.pem";
  const std::string ca_ = tmp_ / "ca";
};

// --- keygen ---

TEST_F(DeviceCliTest, KeygenCreatesKeyFileOnlyTheOwnerCanRead) {
  ProcessResult r = DeviceJson({"keygen"});
  ASSERT_THAT(r, Succeeds());
  EXPECT_EQ(Json(r)["key"], key_);
  EXPECT_EQ(Json(r)["algorithm"], "EC P-256");
  EXPECT_EQ(fs::status(key_).permissions() & fs::perms::mask,
            fs::perms::owner_read | fs::perms::owner_write);
  EXPECT_THAT(ReadText(key_), HasSubstr("-----BEGIN PRIVATE KEY-----"));
}

TEST_F(DeviceCliTest, KeygenOverExistingKeyIsConflictAndKeepsTheIdentity) {
  const std::string id = Keygen();
  const std::string before = ReadText(key_);
  EXPECT_THAT(Device({"keygen"}), FailsWith(6, HasSubstr("already exists")));
  EXPECT_THAT(Device({"keygen", "--key-type", "ed25519"}),
              FailsWith(6, HasSubstr("refusing to replace")));
  EXPECT_EQ(ReadText(key_), before);
  EXPECT_EQ(Json(DeviceJson({"id"}))["device_id"], id);
}

TEST_F(DeviceCliTest, KeygenWithUnknownKeyTypeIsInvalidInputAndWritesNothing) {
  EXPECT_EQ(Device({"keygen", "--key-type", "rsa512"}).exit_code, 3);
  EXPECT_FALSE(fs::exists(key_));
}

struct KeyTypeCase {
  std::string test_name;
  std::string key_type;
  std::string algorithm;          // as hallmark describes it
  std::string openssl_algorithm;  // in `openssl pkey -text_pub`
};

void PrintTo(const KeyTypeCase& c, std::ostream* os) { *os << c.test_name; }

class KeyTypeTest : public DeviceCliTest, public ::testing::WithParamInterface<KeyTypeCase> {};

TEST_P(KeyTypeTest, DeviceIdIsSha256OfSubjectPublicKeyInfoEverywhere) {
  const KeyTypeCase& c = GetParam();
  ProcessResult r = DeviceJson({"keygen", "--key-type", c.key_type});
  ASSERT_THAT(r, Succeeds());
  const nlohmann::json made = Json(r);
  const std::string id = made["device_id"].get<std::string>();
  EXPECT_EQ(made["algorithm"], c.algorithm);
  EXPECT_THAT(id, MatchesRegex("[0-9a-f]{64}"));
  EXPECT_EQ(fs::status(key_).permissions() & fs::perms::mask,
            fs::perms::owner_read | fs::perms::owner_write);

  // openssl reads the key and computes the same ID from its SubjectPublicKeyInfo.
  EXPECT_THAT(Openssl({"pkey", "-in", key_, "-noout", "-text_pub"}).out,
              HasSubstr(c.openssl_algorithm));
  EXPECT_EQ(OpensslDeviceId(key_), id);

  // The CSR is signed by the key (openssl checks the proof of possession) and names the serial.
  const std::string csr = tmp_ / "device.csr";
  ASSERT_THAT(Device({"csr", "--serial", "SN-1", "--out", csr}), Succeeds());
  ProcessResult verify = Openssl({"req", "-verify", "-in", csr, "-noout"});
  EXPECT_EQ(verify.exit_code, 0) << verify.err;
  EXPECT_THAT(verify.out + verify.err, HasSubstr("verify OK"));
  EXPECT_THAT(Openssl({"req", "-in", csr, "-noout", "-subject", "-nameopt", "RFC2253"}).out,
              HasSubstr("serialNumber=SN-1"));

  // Key, CSR, public key and certificate all give the same ID.
  const std::string pub = tmp_ / "device-pub.pem";
  WriteText(pub, made["public_key_pem"].get<std::string>());
  EXPECT_EQ(Json(DeviceJson({"id"}))["device_id"], id);
  EXPECT_EQ(Json(Hallmark({"--json", "device", "id", "--csr", csr}))["device_id"], id);
  EXPECT_EQ(Json(Hallmark({"--json", "device", "id", "--pubkey", pub}))["device_id"], id);
  MakeCa();
  const std::string cert = tmp_ / "device.pem";
  ASSERT_THAT(IssueCert(csr, "device", cert), Succeeds());
  EXPECT_THAT(VerifyChain(cert).out, HasSubstr(": OK"));
  EXPECT_EQ(Json(Hallmark({"--json", "device", "id", "--cert", cert}))["device_id"], id);
  ProcessResult plain = Hallmark({"device", "id", "--cert", cert});
  ASSERT_THAT(plain, Succeeds());
  EXPECT_EQ(plain.out, id + "\n");
}

INSTANTIATE_TEST_SUITE_P(Types, KeyTypeTest,
                         ::testing::ValuesIn(std::vector<KeyTypeCase>{
                             {"P256", "p256", "EC P-256", "NIST CURVE: P-256"},
                             {"P384", "p384", "EC P-384", "NIST CURVE: P-384"},
                             {"Ed25519", "ed25519", "Ed25519", "ED25519 Public-Key"},
                         }),
                         CaseName<KeyTypeCase>);

TEST_F(DeviceCliTest, DeviceIdOfAnotherKeyDiffers) {
  const std::string id = Keygen();
  const std::string other = tmp_ / "other-key.pem";
  ProcessResult r = Hallmark({"--json", "device", "--key", other, "keygen"});
  ASSERT_THAT(r, Succeeds());
  EXPECT_NE(Json(r)["device_id"], id);
  EXPECT_EQ(OpensslDeviceId(other), Json(r)["device_id"]);
}

// --- csr ---

struct CsrArgsCase {
  std::string test_name;
  std::vector<std::string> args;
  int exit_code;        // 0: written
  std::string message;  // in stderr when refused; in the subject when written
};

void PrintTo(const CsrArgsCase& c, std::ostream* os) { *os << c.test_name; }

class CsrArgsTest : public DeviceCliTest, public ::testing::WithParamInterface<CsrArgsCase> {};

TEST_P(CsrArgsTest, CsrNeedsASubjectOrSan) {
  const CsrArgsCase& c = GetParam();
  Keygen();
  const std::string csr = tmp_ / "out.csr";
  std::vector<std::string> args = {"csr", "--out", csr};
  args.insert(args.end(), c.args.begin(), c.args.end());
  ProcessResult r = Device(args);
  if (c.exit_code == 0) {
    ASSERT_THAT(r, Succeeds());
    EXPECT_EQ(Openssl({"req", "-verify", "-in", csr, "-noout"}).exit_code, 0);
    EXPECT_THAT(Openssl({"req", "-in", csr, "-noout", "-text", "-nameopt", "RFC2253"}).out,
                HasSubstr(c.message));
  } else {
    EXPECT_THAT(r, FailsWith(c.exit_code, HasSubstr(c.message)));
    EXPECT_FALSE(fs::exists(csr));
  }
}

INSTANTIATE_TEST_SUITE_P(
    Args, CsrArgsTest,
    ::testing::ValuesIn(std::vector<CsrArgsCase>{
        {"SerialWritten", {"--serial", "SN-7"}, 0, "serialNumber=SN-7"},
        {"SanWritten", {"--san", "dns:gw.example"}, 0, "DNS:gw.example"},
        {"CommonNameWritten", {"--cn", "thermostat"}, 0, "CN=thermostat"},
        {"NeitherSerialNorSanRefused", {}, 3, "give --serial"},
        {"WildcardSanRefused", {"--san", "dns:*.example"}, 3, "not a valid DNS name"},
        {"BadIpSanRefused", {"--san", "ip:999.1.1.1"}, 3, "not an IP address"},
        {"NonPrintableSerialRefused", {"--serial", "SN_1"}, 3, "PrintableString"},
    }),
    CaseName<CsrArgsCase>);

TEST_F(DeviceCliTest, CsrWithoutOutGoesToStdout) {
  Keygen();
  ProcessResult r = Device({"csr", "--serial", "SN-1"});
  ASSERT_THAT(r, Succeeds());
  EXPECT_THAT(r.out, HasSubstr("-----BEGIN CERTIFICATE REQUEST-----"));
  ProcessResult verify =
      ::hallmark::testing::RunCommand({"openssl", "req", "-verify", "-noout"}, r.out);
  EXPECT_EQ(verify.exit_code, 0) << verify.err;

  ProcessResult j = DeviceJson({"csr", "--serial", "SN-1"});
  ASSERT_THAT(j, Succeeds());
  EXPECT_THAT(Json(j)["pem"].get<std::string>(), HasSubstr("BEGIN CERTIFICATE REQUEST"));
  EXPECT_EQ(Json(j)["subject"], "serialNumber=SN-1,CN=SN-1");
}

TEST_F(DeviceCliTest, CsrWithoutKeyIsNotFound) {
  EXPECT_THAT(Device({"csr", "--serial", "SN-1", "--out", tmp_ / "c.csr"}),
              FailsWith(4, HasSubstr(key_)));
  EXPECT_FALSE(fs::exists(tmp_ / "c.csr"));
}

TEST_F(DeviceCliTest, KeyReadableByOthersIsRefusedUntilChmod600) {
  Keygen();
  fs::permissions(key_, fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read |
                            fs::perms::others_read);
  EXPECT_THAT(Device({"csr", "--serial", "SN-1", "--out", tmp_ / "c.csr"}),
              FailsWith(5, HasSubstr("chmod 600")));
  EXPECT_FALSE(fs::exists(tmp_ / "c.csr"));
  fs::permissions(key_, fs::perms::owner_read | fs::perms::owner_write);
  EXPECT_THAT(Device({"csr", "--serial", "SN-1", "--out", tmp_ / "c.csr"}), Succeeds());
}

TEST_F(DeviceCliTest, SanCsrIsIssuedAServerCertificateForThatName) {
  Keygen();
  MakeCa();
  const std::string csr = tmp_ / "gw.csr";
  const std::string cert = tmp_ / "gw.pem";
  ASSERT_THAT(Device({"csr", "--san", "dns:gw.example", "--san", "ip:10.0.0.1", "--out", csr}),
              Succeeds());
  ASSERT_THAT(IssueCert(csr, "server", cert), Succeeds());
  ProcessResult text = Openssl({"x509", "-in", cert, "-noout", "-text"});
  EXPECT_THAT(text.out, AllOf(HasSubstr("DNS:gw.example, IP Address:10.0.0.1"),
                              HasSubstr("TLS Web Server Authentication")));
  EXPECT_THAT(VerifyChain(cert).out, HasSubstr(": OK"));
}

// --- passphrase-encrypted device key ---

TEST_F(DeviceCliTest, EncryptedKeyNeedsTheRightPassphrase) {
  const std::string pass = tmp_ / "pass.txt";
  const std::string wrong = tmp_ / "wrong.txt";
  WriteText(pass, "device secret\n");
  WriteText(wrong, "not it\n");
  const std::string id = Keygen({"--passphrase-file", pass});
  EXPECT_THAT(ReadText(key_), HasSubstr("-----BEGIN ENCRYPTED PRIVATE KEY-----"));

  const std::string csr = tmp_ / "c.csr";
  EXPECT_THAT(Device({"csr", "--serial", "SN-1", "--out", csr}),
              FailsWith(6, HasSubstr("passphrase")));
  EXPECT_THAT(Device({"--passphrase-file", wrong, "csr", "--serial", "SN-1", "--out", csr}),
              FailsWith(5, HasSubstr("wrong passphrase")));
  EXPECT_FALSE(fs::exists(csr));
  ASSERT_THAT(Device({"--passphrase-file", pass, "csr", "--serial", "SN-1", "--out", csr}),
              Succeeds());
  EXPECT_EQ(Json(Hallmark({"--json", "device", "id", "--csr", csr}))["device_id"], id);
  ProcessResult env =
      ::hallmark::testing::RunCommand({"env", "HALLMARK_PASSPHRASE_FILE=" + pass, HALLMARK_BINARY,
                                       "--json", "device", "--key", key_, "id"});
  ASSERT_THAT(env, Succeeds());
  EXPECT_EQ(Json(env)["device_id"], id);
}

// --- id ---

TEST_F(DeviceCliTest, IdOfUnparseableInputIsInvalidInput) {
  const std::string junk = tmp_ / "junk.pem";
  WriteText(junk, "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n");
  EXPECT_EQ(Hallmark({"device", "id", "--cert", junk}).exit_code, 3);
  EXPECT_EQ(Hallmark({"device", "id", "--csr", junk}).exit_code, 3);
  EXPECT_EQ(Hallmark({"device", "id", "--pubkey", junk}).exit_code, 3);
  EXPECT_THAT(Hallmark({"device", "id", "--cert", tmp_ / "missing.pem"}),
              FailsWith(4, Not(HasSubstr("internal"))));
}

TEST_F(DeviceCliTest, IdTakesOnlyOneSource) {
  Keygen();
  ASSERT_THAT(Device({"csr", "--serial", "SN-1", "--out", tmp_ / "c.csr"}), Succeeds());
  EXPECT_EQ(
      Hallmark({"device", "id", "--csr", tmp_ / "c.csr", "--pubkey", tmp_ / "c.csr"}).exit_code, 2);
}

}  // namespace
}  // namespace testing
}  // namespace hallmark
