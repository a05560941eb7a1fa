// Integration tests for `hallmark ca ...`: they drive the real binary and check what it makes
// with `openssl`, a tool nobody here wrote.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cctype>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
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
using ::testing::ContainsRegex;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

std::vector<std::string> P256() { return {"-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"}; }

// OpensslReq writes a CSR for a fresh key to `out`: `key` chooses the key (`-newkey ...`),
// `extra` adds options such as `-addext`.
void OpensslReq(const std::string& out, const std::string& subject,
                const std::vector<std::string>& key = P256(),
                const std::vector<std::string>& extra = {}) {
  std::vector<std::string> args = {"req", "-new"};
  args.insert(args.end(), key.begin(), key.end());
  args.insert(args.end(), {"-nodes", "-keyout", "/dev/null", "-subj", subject, "-out", out});
  args.insert(args.end(), extra.begin(), extra.end());
  ProcessResult r = Openssl(args);
  ASSERT_EQ(r.exit_code, 0) << "openssl req failed: " << r.err;
}

// OpensslReqDer writes a P-256 CSR to `out` in DER, with one signature byte flipped if `tamper`.
void OpensslReqDer(const std::string& out, const std::string& subject, bool tamper) {
  const std::string pem = out + ".pem";
  OpensslReq(pem, subject);
  ProcessResult r = Openssl({"req", "-in", pem, "-outform", "DER", "-out", out});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  if (tamper) {
    std::string der = ReadText(out);
    ASSERT_GT(der.size(), 16u);
    // The CSR ends with the signature BIT STRING: five bytes from the end is inside it.
    der[der.size() - 5] = static_cast<char>(der[der.size() - 5] ^ 0x01);
    WriteText(out, der);
  }
}

// OpensslX509 returns `openssl x509 -in cert -noout args...` output.
std::string OpensslX509(const std::string& cert, const std::vector<std::string>& args) {
  std::vector<std::string> argv = {"x509", "-in", cert, "-noout"};
  argv.insert(argv.end(), args.begin(), args.end());
  ProcessResult r = Openssl(argv);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return r.out;
}

// SerialOf returns the serial number of `cert` as `openssl x509 -serial` prints it (uppercase
// hex, no colons).
std::string SerialOf(const std::string& cert) {
  std::string line = OpensslX509(cert, {"-serial"});
  const std::string prefix = "serial=";
  if (line.rfind(prefix, 0) != 0) {
    ADD_FAILURE() << "unexpected openssl -serial output: " << line;
    return {};
  }
  line = line.substr(prefix.size());
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) {
    line.pop_back();
  }
  return line;
}

// Lowercase returns `hex` in lowercase, as `hallmark ca list` prints serials.
std::string Lowercase(const std::string& text) {
  std::string hex = text;
  for (char& ch : hex) {
    ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  }
  return hex;
}

// CaCliTest gives each test a fresh CA with one customer, "acme".
class CaCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_THAT(Hallmark({"ca", "init", "--dir", dir_}), Succeeds());
    ASSERT_THAT(Ca({"customer", "add", "acme"}), Succeeds());
  }

  // Ca runs `hallmark ca --dir DIR args...`.
  ProcessResult Ca(const std::vector<std::string>& args) const {
    std::vector<std::string> argv = {"ca", "--dir", dir_};
    argv.insert(argv.end(), args.begin(), args.end());
    return Hallmark(argv);
  }

  // CaJson runs `hallmark --json ca --dir DIR args...`.
  ProcessResult CaJson(const std::vector<std::string>& args) const {
    std::vector<std::string> argv = {"--json", "ca", "--dir", dir_};
    argv.insert(argv.end(), args.begin(), args.end());
    return Hallmark(argv);
  }

  // Issue runs `hallmark ca issue CSR --customer acme --profile PROFILE --out OUT args...`.
  ProcessResult Issue(const std::string& csr, const std::string& profile, const std::string& out,
                      const std::vector<std::string>& args = {}) const {
    std::vector<std::string> argv = {"issue",     csr,     "--customer", "acme",
                                     "--profile", profile, "--out",      out};
    argv.insert(argv.end(), args.begin(), args.end());
    return Ca(argv);
  }

  // IssueDevice makes a P-256 CSR with serialNumber `serial` and issues a device certificate
  // for it, returning the certificate's path.
  std::string IssueDevice(const std::string& serial) {
    const std::string csr = tmp_ / (serial + ".csr");
    const std::string cert = tmp_ / (serial + ".pem");
    OpensslReq(csr, "/serialNumber=" + serial);
    EXPECT_THAT(Issue(csr, "device", cert), Succeeds());
    return cert;
  }

  // IssuedCount is the number of records in the issuance log.
  size_t IssuedCount() const {
    ProcessResult r = CaJson({"list", "--limit", "100000"});
    EXPECT_THAT(r, Succeeds());
    return Json(r)["certificates"].size();
  }

  // VerifyChain runs `openssl verify` on `cert` with the root as anchor and acme's intermediate.
  ProcessResult VerifyChain(const std::string& cert,
                            const std::vector<std::string>& extra = {}) const {
    std::vector<std::string> args = {"verify", "-CAfile", RootPem(), "-untrusted", AcmePem()};
    args.insert(args.end(), extra.begin(), extra.end());
    args.push_back(cert);
    return Openssl(args);
  }

  std::string RootPem() const { return dir_ + "/root.pem"; }
  std::string AcmePem() const { return dir_ + "/customers/acme/ca.pem"; }
  std::string AcmeKey() const { return dir_ + "/keys/customer-acme.key"; }

  TempDir tmp_;
  const std::string dir_ = tmp_ / "ca";
};

// --- ca init ---

TEST(CaInitTest, CreatesRootWithPathLenOneThatSignsOnlyCertificatesAndCrls) {
  TempDir tmp;
  const std::string dir = tmp / "ca";
  ProcessResult r = Hallmark({"--json", "ca", "init", "--dir", dir});
  ASSERT_THAT(r, Succeeds());
  EXPECT_EQ(Json(r)["certificate_path"], dir + "/root.pem");

  const std::string text = OpensslX509(dir + "/root.pem", {"-text"});
  EXPECT_THAT(text, ContainsRegex("Basic Constraints: critical[[:space:]]+CA:TRUE, pathlen:1\n"));
  EXPECT_THAT(text, ContainsRegex("Key Usage: critical[[:space:]]+Certificate Sign, CRL Sign\n"));
  EXPECT_THAT(text, Not(HasSubstr("Digital Signature")));
  // Self-signed: it is its own trust anchor.
  EXPECT_THAT(Openssl({"verify", "-CAfile", dir + "/root.pem", dir + "/root.pem"}).out,
              HasSubstr(": OK"));
}

TEST(CaInitTest, InitTwiceIsConflictAndKeepsTheRoot) {
  TempDir tmp;
  const std::string dir = tmp / "ca";
  ASSERT_THAT(Hallmark({"ca", "init", "--dir", dir}), Succeeds());
  const std::string root = ReadText(dir + "/root.pem");
  const std::string key = ReadText(dir + "/keys/root.key");

  EXPECT_THAT(Hallmark({"ca", "init", "--dir", dir}), FailsWith(6, HasSubstr("already exists")));
  EXPECT_EQ(ReadText(dir + "/root.pem"), root);
  EXPECT_EQ(ReadText(dir + "/keys/root.key"), key);
}

TEST(CaInitTest, CommandsOnADirectoryWithoutCaAreConflict) {
  TempDir tmp;
  EXPECT_THAT(Hallmark({"ca", "--dir", tmp / "none", "list"}), FailsWith(6, HasSubstr("ca init")));
}

// --- ca customer ---

TEST_F(CaCliTest, AddCustomerCreatesIntermediateWithPathLenZeroUnderTheRoot) {
  const std::string text = OpensslX509(AcmePem(), {"-text"});
  EXPECT_THAT(text, ContainsRegex("Basic Constraints: critical[[:space:]]+CA:TRUE, pathlen:0\n"));
  EXPECT_THAT(text, ContainsRegex("Key Usage: critical[[:space:]]+Certificate Sign, CRL Sign\n"));
  EXPECT_THAT(Openssl({"verify", "-CAfile", RootPem(), AcmePem()}).out, HasSubstr(": OK"));
}

TEST_F(CaCliTest, AddCustomerTwiceIsConflictAndKeepsTheIntermediate) {
  const std::string cert = ReadText(AcmePem());
  const std::string key = ReadText(AcmeKey());
  EXPECT_THAT(Ca({"customer", "add", "acme"}), FailsWith(6, HasSubstr("already exists")));
  EXPECT_EQ(ReadText(AcmePem()), cert);
  EXPECT_EQ(ReadText(AcmeKey()), key);
}

TEST_F(CaCliTest, CustomerListJsonShowsCustomerAndItsIssuedCount) {
  ProcessResult r = CaJson({"customer", "list"});
  ASSERT_THAT(r, Succeeds());
  nlohmann::json customers = Json(r)["customers"];
  ASSERT_EQ(customers.size(), 1u) << r.out;
  EXPECT_EQ(customers[0]["customer"], "acme");
  EXPECT_EQ(customers[0]["subject"], "CN=acme Device CA,O=acme");
  EXPECT_EQ(customers[0]["issued"], 0);

  IssueDevice("SN-1");
  EXPECT_EQ(Json(CaJson({"customer", "list"}))["customers"][0]["issued"], 1);
}

struct CustomerNameCase {
  std::string test_name;
  std::string customer;
  int exit_code;  // 0: accepted
};

void PrintTo(const CustomerNameCase& c, std::ostream* os) { *os << c.test_name; }

class CustomerNameTest : public CaCliTest,
                         public ::testing::WithParamInterface<CustomerNameCase> {};

TEST_P(CustomerNameTest, AcceptsOnlyLowercaseNamesThatStayInsideTheCaDirectory) {
  const CustomerNameCase& c = GetParam();
  ProcessResult r = Ca({"customer", "add", c.customer});
  if (c.exit_code == 0) {
    EXPECT_THAT(r, Succeeds());
    EXPECT_TRUE(fs::exists(dir_ + "/customers/" + c.customer + "/ca.pem"));
  } else {
    EXPECT_THAT(r, FailsWith(c.exit_code, HasSubstr("invalid customer name")));
    EXPECT_FALSE(fs::exists(dir_ + "/x"));
    EXPECT_FALSE(fs::exists(dir_ + "/customers/a"));
    EXPECT_EQ(Json(CaJson({"customer", "list"}))["customers"].size(), 1u);
  }
}

INSTANTIATE_TEST_SUITE_P(Names, CustomerNameTest,
                         ::testing::ValuesIn(std::vector<CustomerNameCase>{
                             {"LowercaseAccepted", "globex", 0},
                             {"UppercaseRefused", "Acme", 3},
                             {"DigitsDotsDashesAccepted", "acme-2.eu_x", 0},
                             {"ReservedRootRefused", "root", 3},
                             {"PathTraversalRefused", "../x", 3},
                             {"SlashRefused", "a/x", 3},
                             {"EmptyRefused", "", 3},
                             {"LeadingUnderscoreRefused", "_x", 3},
                         }),
                         CaseName<CustomerNameCase>);

// --- ca issue: the legitimate paths ---

TEST_F(CaCliTest, DeviceCertificateIsClientAuthOnlyAndVerifiesWithOpenssl) {
  const std::string csr = tmp_ / "device.csr";
  const std::string cert = tmp_ / "device.pem";
  OpensslReq(csr, "/serialNumber=SN-1");
  ASSERT_THAT(Issue(csr, "device", cert), Succeeds());

  ProcessResult verify = VerifyChain(cert);
  EXPECT_EQ(verify.exit_code, 0) << verify.out << verify.err;
  EXPECT_THAT(verify.out, HasSubstr(cert + ": OK"));

  const std::string text = OpensslX509(cert, {"-text"});
  EXPECT_THAT(text, HasSubstr("TLS Web Client Authentication"));
  EXPECT_THAT(text, Not(HasSubstr("TLS Web Server Authentication")));
  EXPECT_THAT(text, ContainsRegex("Key Usage: critical[[:space:]]+Digital Signature\n"));
  EXPECT_THAT(text, Not(HasSubstr("Key Encipherment")));
  EXPECT_THAT(text, ContainsRegex("Basic Constraints: critical[[:space:]]+CA:FALSE\n"));
  EXPECT_THAT(OpensslX509(cert, {"-subject", "-nameopt", "RFC2253"}),
              HasSubstr("serialNumber=SN-1"));
  // RFC 5280 / CA/B Forum: at least 64 bits of serial number.
  EXPECT_GE(SerialOf(cert).size(), 16u);
}

TEST_F(CaCliTest, ServerProfileIssuesServerAuthWithTheGivenSans) {
  const std::string csr = tmp_ / "server.csr";
  const std::string cert = tmp_ / "server.pem";
  OpensslReq(csr, "/CN=whatever");
  ASSERT_THAT(Issue(csr, "server", cert, {"--san", "dns:localhost", "--san", "ip:127.0.0.1"}),
              Succeeds());

  const std::string text = OpensslX509(cert, {"-text"});
  EXPECT_THAT(text, HasSubstr("TLS Web Server Authentication"));
  EXPECT_THAT(text, Not(HasSubstr("TLS Web Client Authentication")));
  EXPECT_THAT(text, HasSubstr("DNS:localhost, IP Address:127.0.0.1"));
  EXPECT_THAT(VerifyChain(cert, {"-purpose", "sslserver", "-verify_hostname", "localhost"}).out,
              HasSubstr(": OK"));
  EXPECT_THAT(VerifyChain(cert, {"-purpose", "sslserver", "-verify_ip", "127.0.0.1"}).out,
              HasSubstr(": OK"));
}

TEST_F(CaCliTest, ServerProfileWithoutSanIsRefused) {
  const std::string csr = tmp_ / "server.csr";
  OpensslReq(csr, "/CN=whatever");
  const size_t before = IssuedCount();
  EXPECT_THAT(Issue(csr, "server", tmp_ / "server.pem"),
              FailsWith(3, HasSubstr("requires a subjectAltName")));
  EXPECT_EQ(IssuedCount(), before);
  EXPECT_FALSE(fs::exists(tmp_ / "server.pem"));
}

// BUG (src/cli/ca_command.cc, `--san` option of `ca issue`): CLI11 lets a vector option take
// every following word, so in `--san dns:localhost server.csr` the CSR is swallowed as a second
// SAN value and the command fails with "csr is required" (exit 2). `--san` should take exactly
// one value per occurrence. Enable once fixed.
TEST_F(CaCliTest, SanOptionBeforeTheCsrDoesNotSwallowTheCsr) {
  const std::string csr = tmp_ / "server.csr";
  const std::string cert = tmp_ / "server.pem";
  OpensslReq(csr, "/CN=whatever");
  ASSERT_THAT(Ca({"issue", "--customer", "acme", "--profile", "server", "--san", "dns:localhost",
                  "--san", "ip:127.0.0.1", csr, "--out", cert}),
              Succeeds());
  EXPECT_THAT(OpensslX509(cert, {"-ext", "subjectAltName"}),
              HasSubstr("DNS:localhost, IP Address:127.0.0.1"));
}

TEST_F(CaCliTest, OperationalProfileDefaultsToSevenDays) {
  const std::string csr = tmp_ / "op.csr";
  const std::string cert = tmp_ / "op.pem";
  OpensslReq(csr, "/serialNumber=OP-1");
  ASSERT_THAT(Issue(csr, "operational", cert), Succeeds());
  // Still valid in six days, expired in eight.
  EXPECT_EQ(Openssl({"x509", "-in", cert, "-noout", "-checkend", "518400"}).exit_code, 0);
  EXPECT_EQ(Openssl({"x509", "-in", cert, "-noout", "-checkend", "691200"}).exit_code, 1);
  EXPECT_THAT(OpensslX509(cert, {"-text"}), HasSubstr("TLS Web Client Authentication"));
}

TEST_F(CaCliTest, DeviceWithoutExpiryIsCappedAtTheIntermediatesNotAfter) {
  const std::string csr = tmp_ / "dev.csr";
  const std::string cert = tmp_ / "dev.pem";
  OpensslReq(csr, "/serialNumber=SN-1");
  ProcessResult r = Issue(csr, "device", cert, {"--no-expiry"});
  ASSERT_THAT(r, Succeeds());
  EXPECT_THAT(r.err, HasSubstr("capped"));
  const std::string end = OpensslX509(cert, {"-enddate"});
  EXPECT_THAT(end, HasSubstr("notAfter="));
  EXPECT_EQ(end, OpensslX509(AcmePem(), {"-enddate"}));
  EXPECT_THAT(VerifyChain(cert).out, HasSubstr(": OK"));
}

TEST_F(CaCliTest, DeviceProfileIgnoresRequestedServerAuthWithANote) {
  const std::string csr = tmp_ / "eku.csr";
  const std::string cert = tmp_ / "eku.pem";
  OpensslReq(csr, "/serialNumber=EKU-1", P256(), {"-addext", "extendedKeyUsage=serverAuth"});
  ProcessResult r = Issue(csr, "device", cert);
  ASSERT_THAT(r, Succeeds());
  EXPECT_THAT(r.err, AllOf(HasSubstr("note"), HasSubstr("ignored requested extension "
                                                        "extendedKeyUsage")));
  const std::string eku = OpensslX509(cert, {"-ext", "extendedKeyUsage"});
  EXPECT_THAT(eku, HasSubstr("TLS Web Client Authentication"));
  EXPECT_THAT(eku, Not(HasSubstr("Server")));
}

TEST_F(CaCliTest, DeviceCsrWithoutExtensionsGetsNoIgnoredExtensionNote) {
  const std::string csr = tmp_ / "plain.csr";
  OpensslReq(csr, "/serialNumber=PLAIN-1");
  ProcessResult r = Issue(csr, "device", tmp_ / "plain.pem");
  ASSERT_THAT(r, Succeeds());
  EXPECT_THAT(r.err, Not(HasSubstr("ignored requested extension")));
}

TEST_F(CaCliTest, JsonIssueWithoutOutCarriesThePem) {
  const std::string csr = tmp_ / "dev.csr";
  OpensslReq(csr, "/serialNumber=SN-1");
  ProcessResult r = CaJson({"issue", csr, "--customer", "acme", "--profile", "device"});
  ASSERT_THAT(r, Succeeds());
  nlohmann::json issued = Json(r)["issued"];
  ASSERT_EQ(issued.size(), 1u) << r.out;
  const std::string cert = tmp_ / "from-json.pem";
  WriteText(cert, issued[0]["pem"].get<std::string>());
  EXPECT_THAT(VerifyChain(cert).out, HasSubstr(": OK"));
  EXPECT_EQ(issued[0]["serial"],
            Json(CaJson({"list", "--limit", "1"}))["certificates"][0]["serial"]);
}

// BUG (src/cli/ca_command.cc:340-345, `ca issue` without --out/--out-dir/--json): the JSON
// array is only filled when there is a destination or --json, but `arr.back()["pem"] = pem` runs
// whenever there is no destination, so it dereferences an empty array and the process dies with
// SIGSEGV (exit 139) after the certificate is already signed and logged. It should print the
// PEM on stdout and exit 0. Enable once fixed.
TEST_F(CaCliTest, IssueWithoutOutPrintsTheCertificateOnStdout) {
  const std::string csr = tmp_ / "dev.csr";
  OpensslReq(csr, "/serialNumber=SN-1");
  ProcessResult r = Ca({"issue", csr, "--customer", "acme", "--profile", "device"});
  ASSERT_THAT(r, Succeeds());
  EXPECT_THAT(r.out, HasSubstr("-----BEGIN CERTIFICATE-----"));
  const std::string cert = tmp_ / "stdout.pem";
  WriteText(cert, r.out);
  EXPECT_THAT(VerifyChain(cert).out, HasSubstr(": OK"));
}

TEST_F(CaCliTest, ReadsCsrFromStandardInput) {
  const std::string csr = tmp_ / "dev.csr";
  const std::string cert = tmp_ / "dev.pem";
  OpensslReq(csr, "/serialNumber=STDIN-1");
  ProcessResult r = Hallmark({"ca", "--dir", dir_, "issue", "-", "--customer", "acme", "--profile",
                              "device", "--out", cert},
                             ReadText(csr));
  ASSERT_THAT(r, Succeeds());
  EXPECT_THAT(OpensslX509(cert, {"-subject", "-nameopt", "RFC2253"}),
              HasSubstr("serialNumber=STDIN-1"));
}

TEST_F(CaCliTest, ChainOptionAppendsTheIntermediate) {
  const std::string csr = tmp_ / "dev.csr";
  const std::string cert = tmp_ / "dev.pem";
  OpensslReq(csr, "/serialNumber=SN-1");
  ASSERT_THAT(Issue(csr, "device", cert, {"--chain"}), Succeeds());
  const std::string pem = ReadText(cert);
  EXPECT_THAT(pem, HasSubstr(ReadText(AcmePem())));
  // The chain file alone, with only the root as anchor, verifies the leaf (its first cert).
  EXPECT_THAT(Openssl({"verify", "-CAfile", RootPem(), "-untrusted", cert, cert}).out,
              HasSubstr(": OK"));
}

// --- ca issue: each refusal next to its legitimate twin ---

struct CsrCase {
  std::string test_name;
  // make writes the request to `path`.
  std::function<void(const std::string& path)> make;
  // args for `ca issue CSR --out OUT args...`.
  std::vector<std::string> args;
  int exit_code;        // 0: issued
  std::string message;  // in stderr when refused
};

void PrintTo(const CsrCase& c, std::ostream* os) { *os << c.test_name; }

std::vector<std::string> DeviceArgs(const std::vector<std::string>& extra = {}) {
  std::vector<std::string> args = {"--customer", "acme", "--profile", "device"};
  args.insert(args.end(), extra.begin(), extra.end());
  return args;
}

void GoodP256(const std::string& path) { OpensslReq(path, "/serialNumber=SN-1"); }

std::vector<CsrCase> CsrCases() {
  return {
      {"WellFormedP256Issued", GoodP256, DeviceArgs(), 0, ""},
      {"GarbageBytesRefused",
       [](const std::string& p) { WriteText(p, "\x30\x82\xff\xff not a request \x01\x02"); },
       DeviceArgs(), 3, "neither PEM nor a valid DER"},
      {"TruncatedPemRefused",
       [](const std::string& p) {
         GoodP256(p);
         const std::string pem = ReadText(p);
         WriteText(p, pem.substr(0, pem.size() / 2));
       },
       DeviceArgs(), 3, "truncated or corrupt"},
      {"EmptyFileRefused", [](const std::string& p) { WriteText(p, ""); }, DeviceArgs(), 3,
       "CSR is empty"},
      {"Rsa2048Issued",
       [](const std::string& p) {
         OpensslReq(p, "/serialNumber=R-1", {"-newkey", "rsa:2048"});
       },
       DeviceArgs(), 0, ""},
      {"Rsa1024Refused",
       [](const std::string& p) {
         OpensslReq(p, "/serialNumber=R-1", {"-newkey", "rsa:1024"});
       },
       DeviceArgs(), 5, "RSA-1024"},
      {"P384Issued",
       [](const std::string& p) {
         OpensslReq(p, "/serialNumber=P-1",
                    {"-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-384"});
       },
       DeviceArgs(), 0, ""},
      {"P192Refused",
       [](const std::string& p) {
         const std::string key = p + ".key";
         ASSERT_EQ(Openssl({"ecparam", "-name", "prime192v1", "-genkey", "-noout", "-out", key})
                       .exit_code,
                   0);
         ASSERT_EQ(Openssl({"req", "-new", "-key", key, "-subj", "/serialNumber=P-1", "-out", p})
                       .exit_code,
                   0);
       },
       DeviceArgs(), 5, "prime192v1"},
      {"Ed25519Issued",
       [](const std::string& p) {
         OpensslReq(p, "/serialNumber=ED-1", {"-newkey", "ed25519"});
       },
       DeviceArgs(), 0, ""},
      {"UntamperedDerIssued",
       [](const std::string& p) { OpensslReqDer(p, "/serialNumber=SN-1", /*tamper=*/false); },
       DeviceArgs(), 0, ""},
      {"FlippedSignatureByteRefused",
       [](const std::string& p) { OpensslReqDer(p, "/serialNumber=SN-1", /*tamper=*/true); },
       DeviceArgs(), 3, "proof of possession"},
      {"Sha1SignatureRefused",
       [](const std::string& p) { OpensslReq(p, "/serialNumber=SN-1", P256(), {"-sha1"}); },
       DeviceArgs(), 3, "SHA1"},
      {"RequestsCaFalseIssued",
       [](const std::string& p) {
         OpensslReq(p, "/serialNumber=SN-1", P256(),
                    {"-addext", "basicConstraints=critical,CA:FALSE"});
       },
       DeviceArgs(), 0, ""},
      {"RequestsCaTrueRefused",
       [](const std::string& p) {
         OpensslReq(p, "/serialNumber=SN-1", P256(),
                    {"-addext", "basicConstraints=critical,CA:TRUE"});
       },
       DeviceArgs(), 5, "CA:TRUE"},
      {"NoSerialNumberWithSerialFlagIssued",
       [](const std::string& p) { OpensslReq(p, "/CN=no-serial"); },
       DeviceArgs({"--serial", "SN-9"}), 0, ""},
      {"NoSerialNumberRefused", [](const std::string& p) { OpensslReq(p, "/CN=no-serial"); },
       DeviceArgs(), 3, "requires a device serial number"},
      {"SerialFlagMatchingCsrIssued", GoodP256, DeviceArgs({"--serial", "SN-1"}), 0, ""},
      {"SerialFlagMismatchingCsrRefused", GoodP256, DeviceArgs({"--serial", "SN-2"}), 3,
       "does not match"},
      {"UnknownCustomerRefused",
       GoodP256,
       {"--customer", "initech", "--profile", "device"},
       4,
       "unknown customer 'initech'"},
      {"OperationalProfileIssued",
       GoodP256,
       {"--customer", "acme", "--profile", "operational"},
       0,
       ""},
      {"UnknownProfileRefused",
       GoodP256,
       {"--customer", "acme", "--profile", "firmware"},
       3,
       "unknown profile 'firmware'"},
      {"OperationalAtMaximumValidityIssued",
       GoodP256,
       {"--customer", "acme", "--profile", "operational", "--validity", "90d"},
       0,
       ""},
      {"OperationalAboveMaximumValidityRefused",
       GoodP256,
       {"--customer", "acme", "--profile", "operational", "--validity", "91d"},
       3,
       "exceeds"},
      {"OperationalWithoutExpiryRefused",
       GoodP256,
       {"--customer", "acme", "--profile", "operational", "--no-expiry"},
       3,
       "cannot issue certificates without expiry"},
      {"DeviceProfileWithSanRefused", GoodP256, DeviceArgs({"--san", "dns:device.example"}), 3,
       "does not take subjectAltNames"},
  };
}

class CsrPolicyTest : public CaCliTest, public ::testing::WithParamInterface<CsrCase> {};

TEST_P(CsrPolicyTest, IssuesOnlyAcceptableRequestsAndLogsNothingOnRefusal) {
  const CsrCase& c = GetParam();
  const std::string csr = tmp_ / "request.csr";
  const std::string cert = tmp_ / "request.pem";
  c.make(csr);
  if (HasFatalFailure()) {
    return;
  }
  const size_t before = IssuedCount();
  std::vector<std::string> args = {"issue", csr, "--out", cert};
  args.insert(args.end(), c.args.begin(), c.args.end());
  ProcessResult r = Ca(args);
  if (c.exit_code == 0) {
    ASSERT_THAT(r, Succeeds());
    EXPECT_EQ(IssuedCount(), before + 1);
    EXPECT_THAT(VerifyChain(cert).out, HasSubstr(cert + ": OK"));
  } else {
    EXPECT_THAT(r, FailsWith(c.exit_code, AllOf(HasSubstr("error"), HasSubstr(c.message))));
    EXPECT_EQ(IssuedCount(), before);
    EXPECT_FALSE(fs::exists(cert));
  }
}

INSTANTIATE_TEST_SUITE_P(Requests, CsrPolicyTest, ::testing::ValuesIn(CsrCases()),
                         CaseName<CsrCase>);

// --- ca issue with several CSRs: all or nothing ---

struct BatchCase {
  std::string test_name;
  std::function<void(const std::string& path)> make_bad;
  int exit_code;
};

void PrintTo(const BatchCase& c, std::ostream* os) { *os << c.test_name; }

class BatchTest : public CaCliTest {
 protected:
  void SetUp() override {
    CaCliTest::SetUp();
    fs::create_directory(out_dir_);
    OpensslReq(good1_, "/serialNumber=GOOD-1");
    OpensslReq(good2_, "/serialNumber=GOOD-2");
  }

  const std::string out_dir_ = tmp_ / "out";
  const std::string good1_ = tmp_ / "good1.csr";
  const std::string good2_ = tmp_ / "good2.csr";
};

TEST_F(BatchTest, BatchOfGoodCsrsIssuesEachIntoOutDir) {
  const size_t before = IssuedCount();
  ASSERT_THAT(Ca({"issue", good1_, good2_, "--customer", "acme", "--profile", "device", "--out-dir",
                  out_dir_}),
              Succeeds());
  EXPECT_EQ(IssuedCount(), before + 2);
  EXPECT_THAT(VerifyChain(out_dir_ + "/good1.pem").out, HasSubstr(": OK"));
  EXPECT_THAT(VerifyChain(out_dir_ + "/good2.pem").out, HasSubstr(": OK"));
}

class BadBatchMemberTest : public BatchTest, public ::testing::WithParamInterface<BatchCase> {};

TEST_P(BadBatchMemberTest, OneBadCsrIssuesNothingAndNamesIt) {
  const std::string bad = tmp_ / "bad.csr";
  GetParam().make_bad(bad);
  const size_t before = IssuedCount();
  ProcessResult r = Ca({"issue", good1_, bad, good2_, "--customer", "acme", "--profile", "device",
                        "--out-dir", out_dir_});
  EXPECT_THAT(r, FailsWith(GetParam().exit_code, HasSubstr("bad.csr")));
  EXPECT_THAT(r.err, AllOf(Not(HasSubstr("good1.csr")), Not(HasSubstr("good2.csr"))));
  EXPECT_EQ(IssuedCount(), before);
  EXPECT_TRUE(fs::is_empty(out_dir_));
}

INSTANTIATE_TEST_SUITE_P(Kinds, BadBatchMemberTest,
                         ::testing::ValuesIn(std::vector<BatchCase>{
                             {"PolicyRefusal",
                              [](const std::string& p) {
                                OpensslReq(p, "/serialNumber=R-1", {"-newkey", "rsa:1024"});
                              },
                              5},
                             {"Unparseable", [](const std::string& p) { WriteText(p, "garbage"); },
                              3},
                         }),
                         CaseName<BatchCase>);

// --- revocation and CRLs ---

class RevocationTest : public CaCliTest {
 protected:
  void SetUp() override {
    CaCliTest::SetUp();
    victim_ = IssueDevice("VICTIM-1");
    bystander_ = IssueDevice("BYSTANDER-1");
  }

  // Crl signs acme's CRL into `path`.
  void Crl(const std::string& path) {
    ASSERT_THAT(Ca({"crl", "--customer", "acme", "--out", path}), Succeeds());
  }

  ProcessResult CrlCheck(const std::string& cert, const std::string& crl) const {
    return VerifyChain(cert, {"-crl_check", "-CRLfile", crl});
  }

  // CrlNumber returns the CRL number of `crl` (from `openssl crl -crlnumber`).
  static uint64_t CrlNumber(const std::string& crl) {
    ProcessResult r = Openssl({"crl", "-in", crl, "-noout", "-crlnumber"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    const size_t at = r.out.find("0x");
    if (at == std::string::npos) {
      ADD_FAILURE() << "no crlNumber in: " << r.out;
      return 0;
    }
    return std::stoull(r.out.substr(at + 2), nullptr, 16);
  }

  std::string victim_;
  std::string bystander_;
};

TEST_F(RevocationTest, UnrevokedCertificatesPassOpensslCrlCheck) {
  const std::string crl = tmp_ / "crl.pem";
  Crl(crl);
  EXPECT_THAT(Openssl({"crl", "-in", crl, "-noout", "-text"}).out,
              HasSubstr("No Revoked Certificates"));
  EXPECT_THAT(CrlCheck(victim_, crl).out, HasSubstr(": OK"));
}

TEST_F(RevocationTest, RevokedCertificateFailsOpensslCrlCheckWhileOthersPass) {
  const std::string serial = SerialOf(victim_);
  ASSERT_THAT(Ca({"revoke", serial, "--reason", "keyCompromise"}), Succeeds());
  const std::string crl = tmp_ / "crl.pem";
  Crl(crl);

  ProcessResult text = Openssl({"crl", "-in", crl, "-noout", "-text"});
  ASSERT_EQ(text.exit_code, 0) << text.err;
  EXPECT_THAT(text.out, HasSubstr("Serial Number: " + serial));
  EXPECT_THAT(text.out, HasSubstr("Key Compromise"));
  EXPECT_THAT(text.out, Not(HasSubstr(SerialOf(bystander_))));

  ProcessResult revoked = CrlCheck(victim_, crl);
  EXPECT_NE(revoked.exit_code, 0);
  EXPECT_THAT(revoked.out + revoked.err, HasSubstr("certificate revoked"));
  ProcessResult good = CrlCheck(bystander_, crl);
  EXPECT_EQ(good.exit_code, 0) << good.out << good.err;
  EXPECT_THAT(good.out, HasSubstr(bystander_ + ": OK"));
}

TEST_F(RevocationTest, RevokingTwiceIsConflict) {
  const std::string serial = SerialOf(victim_);
  ASSERT_THAT(Ca({"revoke", serial}), Succeeds());
  EXPECT_THAT(Ca({"revoke", serial, "--reason", "superseded"}),
              FailsWith(6, HasSubstr("already revoked")));
  nlohmann::json shown = Json(CaJson({"show", Lowercase(serial)}));
  EXPECT_EQ(shown["revocation_reason"], "unspecified");
}

TEST_F(RevocationTest, ShowFindsSerialAsCaListPrintsIt) {
  ProcessResult r = CaJson({"show", Lowercase(SerialOf(victim_))});
  ASSERT_THAT(r, Succeeds());
  EXPECT_EQ(Json(r)["subject"], "serialNumber=VICTIM-1,CN=VICTIM-1,O=acme");
}

// BUG (src/cli/ca_command.cc AddShow, `ca show SERIAL`): `ca revoke` normalizes the serial
// (Authority::Revoke: case, colons, leading zero octets) so it accepts what `openssl x509 -serial`
// prints, but `ca show` passes the text straight to IssuanceLog::Find, so the same uppercase
// serial gives exit 4 "no certificate with serial ...". `ca show` should accept the same forms as
// `ca revoke`. Enable once fixed.
TEST_F(RevocationTest, ShowFindsSerialAsOpensslPrintsIt) {
  ProcessResult r = CaJson({"show", SerialOf(victim_)});
  ASSERT_THAT(r, Succeeds());
  EXPECT_EQ(Json(r)["subject"], "serialNumber=VICTIM-1,CN=VICTIM-1,O=acme");
}

TEST_F(RevocationTest, RevokingUnknownSerialIsNotFound) {
  EXPECT_THAT(Ca({"revoke", "0123456789abcdef0123456789abcdef"}),
              FailsWith(4, HasSubstr("no certificate with serial")));
}

TEST_F(RevocationTest, RevokingNonHexSerialIsInvalidInput) {
  EXPECT_THAT(Ca({"revoke", "not-a-serial"}), FailsWith(3, HasSubstr("not a hex number")));
}

TEST_F(RevocationTest, RevokingWithUnknownReasonIsInvalidInputAndRevokesNothing) {
  const std::string serial = SerialOf(victim_);
  EXPECT_EQ(Ca({"revoke", serial, "--reason", "boredom"}).exit_code, 3);
  EXPECT_EQ(Json(CaJson({"show", Lowercase(serial)}))["revoked"], false);
}

struct SerialFormCase {
  std::string test_name;
  std::string (*format)(const std::string& openssl_serial);
};

void PrintTo(const SerialFormCase& c, std::ostream* os) { *os << c.test_name; }

class RevokeSerialFormTest : public RevocationTest,
                             public ::testing::WithParamInterface<SerialFormCase> {};

TEST_P(RevokeSerialFormTest, AcceptsSerialAsToolsPrintIt) {
  const std::string serial = GetParam().format(SerialOf(victim_));
  ProcessResult r = CaJson({"revoke", serial, "--reason", "keyCompromise"});
  ASSERT_THAT(r, Succeeds());
  EXPECT_EQ(Json(r)["revoked"], true);
  const std::string crl = tmp_ / "crl.pem";
  Crl(crl);
  ProcessResult check = CrlCheck(victim_, crl);
  EXPECT_NE(check.exit_code, 0);
  EXPECT_THAT(check.out + check.err, HasSubstr("certificate revoked"));
}

INSTANTIATE_TEST_SUITE_P(Forms, RevokeSerialFormTest,
                         ::testing::ValuesIn(std::vector<SerialFormCase>{
                             {"OpensslUppercase", [](const std::string& s) { return s; }},
                             {"LowercaseAsCaListPrints", Lowercase},
                             {"ColonSeparatedAsX509TextPrints",
                              [](const std::string& s) {
                                std::string out;
                                for (size_t i = 0; i < s.size(); i += 2) {
                                  out += (i == 0 ? "" : ":") + s.substr(i, 2);
                                }
                                return out;
                              }},
                         }),
                         CaseName<SerialFormCase>);

TEST_F(RevocationTest, CrlNumbersIncreaseAcrossRuns) {
  const std::string first = tmp_ / "crl1.pem";
  const std::string second = tmp_ / "crl2.pem";
  Crl(first);
  Crl(second);
  const uint64_t n1 = CrlNumber(first);
  const uint64_t n2 = CrlNumber(second);
  EXPECT_GE(n1, 1u);
  EXPECT_GT(n2, n1);
}

TEST_F(RevocationTest, CrlForUnknownCustomerIsNotFound) {
  EXPECT_THAT(Ca({"crl", "--customer", "initech", "--out", tmp_ / "crl.pem"}),
              FailsWith(4, HasSubstr("unknown customer")));
  EXPECT_FALSE(fs::exists(tmp_ / "crl.pem"));
}

// --- key file protection ---

TEST_F(CaCliTest, CustomerKeyReadableByOthersIsRefusedUntilChmod600) {
  const std::string csr = tmp_ / "dev.csr";
  OpensslReq(csr, "/serialNumber=SN-1");
  const size_t before = IssuedCount();

  fs::permissions(AcmeKey(), fs::perms::owner_read | fs::perms::owner_write |
                                 fs::perms::group_read | fs::perms::others_read);
  EXPECT_THAT(Issue(csr, "device", tmp_ / "refused.pem"),
              FailsWith(5, AllOf(HasSubstr("0644"), HasSubstr("chmod 600"))));
  EXPECT_EQ(IssuedCount(), before);

  fs::permissions(AcmeKey(), fs::perms::owner_read | fs::perms::owner_write);
  EXPECT_THAT(Issue(csr, "device", tmp_ / "issued.pem"), Succeeds());
  EXPECT_EQ(IssuedCount(), before + 1);
}

TEST_F(CaCliTest, CaKeyFilesAreOwnerOnly) {
  for (const std::string& key : {dir_ + "/keys/root.key", AcmeKey()}) {
    EXPECT_EQ(fs::status(key).permissions() & fs::perms::mask,
              fs::perms::owner_read | fs::perms::owner_write)
        << key;
  }
}

// --- passphrase-encrypted CA keys ---

class EncryptedCaTest : public ::testing::Test {
 protected:
  void SetUp() override {
    WriteText(pass_, "correct horse battery staple\n");
    WriteText(wrong_, "Tr0ub4dor&3\n");
    ASSERT_THAT(Hallmark({"ca", "init", "--dir", dir_, "--passphrase-file", pass_}), Succeeds());
    ASSERT_THAT(
        Hallmark({"ca", "--dir", dir_, "--passphrase-file", pass_, "customer", "add", "acme"}),
        Succeeds());
    OpensslReq(csr_, "/serialNumber=SN-1");
  }

  TempDir tmp_;
  const std::string dir_ = tmp_ / "ca";
  const std::string pass_ = tmp_ / "pass.txt";
  const std::string wrong_ = tmp_ / "wrong.txt";
  const std::string csr_ = tmp_ / "dev.csr";
};

TEST_F(EncryptedCaTest, KeyFilesAreEncrypted) {
  for (const std::string& key : {dir_ + "/keys/root.key", dir_ + "/keys/customer-acme.key"}) {
    const std::string pem = ReadText(key);
    EXPECT_THAT(pem, HasSubstr("-----BEGIN ENCRYPTED PRIVATE KEY-----")) << key;
    EXPECT_THAT(pem, Not(HasSubstr("-----BEGIN PRIVATE KEY-----"))) << key;
  }
}

TEST_F(EncryptedCaTest, AddingCustomerWithoutPassphraseIsConflict) {
  EXPECT_THAT(Hallmark({"ca", "--dir", dir_, "customer", "add", "globex"}),
              FailsWith(6, HasSubstr("passphrase")));
  EXPECT_FALSE(fs::exists(dir_ + "/customers/globex"));
}

enum class PassphraseSource { kNone, kFlag, kEnvironment };

struct PassphraseCase {
  std::string test_name;
  PassphraseSource source;
  bool right;  // the right passphrase, or a wrong one
  int exit_code;
  std::string message;
};

void PrintTo(const PassphraseCase& c, std::ostream* os) { *os << c.test_name; }

class PassphraseTest : public EncryptedCaTest,
                       public ::testing::WithParamInterface<PassphraseCase> {};

TEST_P(PassphraseTest, IssuesOnlyWithTheRightPassphrase) {
  const PassphraseCase& c = GetParam();
  const std::string file = c.right ? pass_ : wrong_;
  const std::string cert = tmp_ / "dev.pem";
  std::vector<std::string> argv;
  if (c.source == PassphraseSource::kEnvironment) {
    argv = {"env", "HALLMARK_PASSPHRASE_FILE=" + file, HALLMARK_BINARY};
  } else {
    argv = {HALLMARK_BINARY};
  }
  argv.insert(argv.end(), {"ca", "--dir", dir_});
  if (c.source == PassphraseSource::kFlag) {
    argv.insert(argv.end(), {"--passphrase-file", file});
  }
  argv.insert(argv.end(),
              {"issue", csr_, "--customer", "acme", "--profile", "device", "--out", cert});
  ProcessResult r = ::hallmark::testing::RunCommand(argv);
  if (c.exit_code == 0) {
    ASSERT_THAT(r, Succeeds());
    EXPECT_THAT(Openssl({"verify", "-CAfile", dir_ + "/root.pem", "-untrusted",
                         dir_ + "/customers/acme/ca.pem", cert})
                    .out,
                HasSubstr(": OK"));
  } else {
    EXPECT_THAT(r, FailsWith(c.exit_code, HasSubstr(c.message)));
    EXPECT_FALSE(fs::exists(cert));
  }
}

INSTANTIATE_TEST_SUITE_P(
    Sources, PassphraseTest,
    ::testing::ValuesIn(std::vector<PassphraseCase>{
        {"NoneIsConflict", PassphraseSource::kNone, false, 6, "passphrase"},
        {"RightFlagIssues", PassphraseSource::kFlag, true, 0, ""},
        {"WrongFlagRefused", PassphraseSource::kFlag, false, 5, "wrong passphrase"},
        {"RightEnvironmentIssues", PassphraseSource::kEnvironment, true, 0, ""},
        {"WrongEnvironmentRefused", PassphraseSource::kEnvironment, false, 5, "wrong passphrase"},
    }),
    CaseName<PassphraseCase>);

// --- output, help and usage ---

TEST_F(CaCliTest, JsonOutputOfEveryCommandParses) {
  const std::string csr = tmp_ / "dev.csr";
  OpensslReq(csr, "/serialNumber=SN-1");
  ProcessResult issued = CaJson(
      {"issue", csr, "--customer", "acme", "--profile", "device", "--out", tmp_ / "dev.pem"});
  ASSERT_THAT(issued, Succeeds());
  const std::string serial = Json(issued)["issued"][0]["serial"].get<std::string>();
  EXPECT_EQ(serial.size(), 32u);

  struct Step {
    std::vector<std::string> args;
    std::string key;  // a member the output must have
  };
  const std::vector<Step> steps = {
      {{"list"}, "certificates"},
      {{"list", "--customer", "acme"}, "certificates"},
      {{"customer", "list"}, "customers"},
      {{"customer", "add", "globex"}, "chain_path"},
      {{"show", serial}, "pem"},
      {{"revoke", serial, "--reason", "superseded"}, "revocation_reason"},
      {{"crl", "--customer", "acme"}, "pem"},
      {{"crl", "--root"}, "revoked"},
  };
  for (const Step& step : steps) {
    SCOPED_TRACE(::testing::PrintToString(step.args));
    ProcessResult r = CaJson(step.args);
    ASSERT_THAT(r, Succeeds());
    nlohmann::json j = nlohmann::json::parse(r.out, nullptr, /*allow_exceptions=*/false);
    ASSERT_FALSE(j.is_discarded()) << r.out;
    EXPECT_TRUE(j.contains(step.key)) << r.out;
  }
}

TEST_F(CaCliTest, JsonErrorCarriesCodeAndExitCode) {
  ProcessResult r = CaJson({"revoke", "00"});
  EXPECT_THAT(r, FailsWith(4, HasSubstr("hallmark: error:")));
  nlohmann::json j = Json(r);
  EXPECT_EQ(j["error"]["exit_code"], 4) << r.out;
  EXPECT_EQ(j["error"]["code"], "not_found");
  EXPECT_THAT(j["error"]["message"].get<std::string>(), HasSubstr("no certificate"));
}

struct HelpCase {
  std::vector<std::string> args;
  std::vector<std::string> mentions;
};

TEST(HelpTest, EverySubcommandHasHelpNamingItsOptions) {
  const std::vector<HelpCase> cases = {
      {{}, {"ca", "device", "demo", "--json", "Exit codes"}},
      {{"ca"}, {"--dir", "--passphrase-file", "init", "customer", "issue", "revoke", "crl"}},
      {{"ca", "init"}, {"--org", "--key-type", "--validity", "--no-expiry"}},
      {{"ca", "customer"}, {"add", "list"}},
      {{"ca", "customer", "add"}, {"name", "--org", "--key-type", "--validity", "--no-expiry"}},
      {{"ca", "customer", "list"}, {"--help"}},
      {{"ca", "issue"},
       {"--customer", "--profile", "--serial", "--san", "--validity", "--no-expiry", "--out",
        "--out-dir", "--chain"}},
      {{"ca", "revoke"}, {"serial", "--reason", "keyCompromise"}},
      {{"ca", "crl"}, {"--customer", "--root", "--out", "--next-update"}},
      {{"ca", "list"}, {"--customer", "--limit"}},
      {{"ca", "show"}, {"serial"}},
      {{"device"}, {"--key", "--passphrase-file", "keygen", "csr", "id"}},
      {{"device", "keygen"}, {"--key-type"}},
      {{"device", "csr"}, {"--serial", "--cn", "--san", "--out"}},
      {{"device", "id"}, {"--cert", "--csr", "--pubkey"}},
      {{"demo"}, {"--dir", "--devices"}},
  };
  for (const HelpCase& c : cases) {
    std::vector<std::string> args = c.args;
    args.push_back("--help");
    SCOPED_TRACE(::testing::PrintToString(args));
    ProcessResult r = Hallmark(args);
    EXPECT_THAT(r, Succeeds());
    for (const std::string& option : c.mentions) {
      EXPECT_THAT(r.out, HasSubstr(option));
    }
  }
}

TEST(UsageTest, UnknownSubcommandOrOptionIsUsageError) {
  const std::vector<std::vector<std::string>> cases = {
      {"frobnicate"},           {"ca", "frobnicate"},      {"ca", "customer", "frobnicate"},
      {"device", "frobnicate"}, {"ca", "init", "--bogus"}, {},
  };
  for (const auto& args : cases) {
    SCOPED_TRACE(::testing::PrintToString(args));
    ProcessResult r = Hallmark(args);
    EXPECT_EQ(r.exit_code, 2) << r.err;
    EXPECT_THAT(r.out, IsEmpty());
  }
}

TEST(UsageTest, VersionFlagSucceeds) {
  ProcessResult r = Hallmark({"--version"});
  EXPECT_THAT(r, Succeeds());
  EXPECT_THAT(r.out, HasSubstr("hallmark"));
}

// --- demo ---

TEST(DemoTest, DemoRunsEndToEndWithEveryCheckOk) {
  TempDir tmp;
  ProcessResult r = Hallmark({"--json", "demo", "--devices", "5", "--dir", tmp / "demo"});
  ASSERT_THAT(r, Succeeds());
  nlohmann::json j = Json(r);
  EXPECT_EQ(j["devices_issued"], 5) << r.out;
  ASSERT_TRUE(j["checks"].is_array()) << r.out;
  EXPECT_GE(j["checks"].size(), 10u);
  std::vector<std::string> names;
  for (const nlohmann::json& check : j["checks"]) {
    EXPECT_EQ(check["ok"], true) << check.dump();
    names.push_back(check["check"]);
  }
  // Enrollment in the field: batch claims and their refusals, operator approval, EST.
  for (const char* expected :
       {"claims: own key, secret proven on the TLS connection",
        "claimed devices say hello with their own key", "claim with a wrong batch secret",
        "clone: ", "claims 1 and 2 of a batch of 2", "claim 3 of a batch of 2",
        "approval request", "pending device on /v1/hello", "operator compares the code",
        "approved device on /v1/hello", "registry verify (claims", "cacerts + simpleenroll",
        "operational certificate, openssl verify", "for another key",
        "simpleenroll by a key nobody enrolled"}) {
    EXPECT_THAT(names, ::testing::Contains(HasSubstr(expected))) << r.err;
  }
  EXPECT_EQ(j["enrollment"]["claimed"], 5) << j["enrollment"].dump();
  EXPECT_EQ(j["enrollment"]["hellos"], 5) << j["enrollment"].dump();
}

TEST(DemoTest, DemoRefusesNonEmptyWorkspace) {
  TempDir tmp;
  WriteText(tmp / "precious.txt", "keep me");
  EXPECT_THAT(Hallmark({"demo", "--devices", "1", "--dir", tmp.path()}),
              FailsWith(6, HasSubstr("not empty")));
  EXPECT_EQ(ReadText(tmp / "precious.txt"), "keep me");
}

}  // namespace
}  // namespace testing
}  // namespace hallmark
