// End to end through `hallmark serve` with an [enroll] table, with clients nobody here wrote:
// devices claim through a batch secret or wait for an operator, curl speaks EST (RFC 7030) to
// get and renew operational certificates, and a stock mosquitto broker with
// `require_certificate true` accepts the issued certificate. Each attack sits next to its
// legitimate twin: wrong secret, clone, exhausted, expired and revoked batches, a proof replayed
// on a new connection, a pending device saying hello, EST for another key, from a stranger,
// with no certificate, and garbage, oversized or mistyped CSR bodies. Claims and EST run against
// both TLS libraries of the server (`[tls] library`).
#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <ctime>
#include <string>
#include <thread>
#include <vector>

#include "core/certificate.h"
#include "core/key.h"
#include "core/secret_bytes.h"
#include "device/enroll_client.h"
#include "device/tls_client.h"
#include "integration/cli_runner.h"
#include "integration/server_process.h"
#include "testing/matchers.h"

namespace hallmark::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

// What curl reports about one request.
struct CurlReply {
  int exit_code = -1;
  int status = 0;  // 0 if no HTTP response (e.g. the handshake was refused)
  std::string content_type;
  std::string body;
  std::string err;
};

// EnrollServeFixture: a CA, a registry with batch b1 (2 devices), and `hallmark serve` with the
// enrollment endpoints on an admitting registry listener, served by `Library()`'s TLS.
class EnrollServeFixture : public ::testing::Test {
 protected:
  // Library is the server's `[tls] library`. The claim proof is bound to the TLS exporter, which
  // each library computes on the server's side (the devices here use OpenSSL).
  virtual std::string Library() const { return "openssl"; }

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
    ASSERT_THAT(Registry({"init"}), Succeeds());
    ASSERT_THAT(Hallmark({"batch", "enrollment-key", "--out", P("enroll.key")}), Succeeds());
    ASSERT_THAT(CreateBatch("b1", "2", "1d"), Succeeds());
    // A generous per-source limit: every client here comes from 127.0.0.1.
    WriteText(P("hallmark.toml"), R"([server]
certificate = "server.pem"
private_key = "server.key"
threads = 1
[tls]
library = ")" + Library() + R"("
[registry]
db = "reg.db"
registrar_public_key = "registrar.key.pub"
refresh_interval_ms = 50
[[listener]]
listen = "127.0.0.1:0"
policy = "registry"
admit_unknown = true
[enroll]
enrollment_key = "enroll.key"
approval = true
ca_dir = "ca"
ca_name = "acme"
rate_per_source = { per_second = 1000.0, burst = 1000.0 }
)");
    ASSERT_TRUE(
        server_.Start({HALLMARK_BINARY, "serve", "--config", P("hallmark.toml")}, P("serve.log")));
    auto ready = server_.ReadLine(std::chrono::seconds(30));
    ASSERT_TRUE(ready.has_value()) << ReadText(P("serve.log"));
    auto j = nlohmann::json::parse(*ready);
    server_addr_ = j["listeners"][0]["listen"];
    WriteText(P("trust.pem"), ReadText(P("ca/customers/acme/ca.pem")));
  }
  void TearDown() override { EXPECT_EQ(server_.Stop(), 0); }

  std::string P(const std::string& name) const { return tmp_ / name; }
  ProcessResult Registry(std::vector<std::string> args) {
    args.insert(args.begin(),
                {"registry", "--db", P("reg.db"), "--registrar-key", P("registrar.key")});
    return Hallmark(args);
  }
  ProcessResult Batch(std::vector<std::string> args) {
    args.insert(args.begin(),
                {"batch", "--db", P("reg.db"), "--registrar-key", P("registrar.key")});
    return Hallmark(args);
  }
  ProcessResult CreateBatch(const std::string& id, const std::string& size,
                            const std::string& expires) {
    return Batch({"create", "--size", size, "--expires", expires, "--owner", "ACME", "--id", id,
                  "--enrollment-pub", P("enroll.key.pub"), "--secret-out", P(id + ".secret")});
  }
  ProcessResult Device(const std::string& key, std::vector<std::string> args) {
    std::vector<std::string> argv = {"device", "--key", P(key)};
    argv.insert(argv.end(), args.begin(), args.end());
    argv.insert(argv.end(), {"--server", server_addr_, "--trust", P("trust.pem")});
    return Hallmark(argv);
  }
  ProcessResult Claim(const std::string& key, const std::string& serial,
                      const std::string& batch = "b1") {
    return Device(key, {"claim", "--batch", batch, "--serial", serial, "--secret-file",
                        P(batch + ".secret")});
  }
  void Keygen(const std::string& key) {
    ASSERT_THAT(Hallmark({"device", "--key", P(key), "keygen"}), Succeeds());
  }
  // HelloSoon tries `hello` until its outcome is `accepted`; each try is a real handshake and
  // the loop is bounded (the server refreshes its registry view every 50 ms).
  bool HelloSoon(const std::string& key, bool accepted) {
    for (int attempt = 0; attempt < 200; ++attempt) {
      if ((Device(key, {"hello"}).exit_code == 0) == accepted) {
        return true;
      }
    }
    return false;
  }

  // --- Tools nobody here wrote ---

  // SelfSigned makes a self-signed certificate over a device key with openssl, for curl.
  std::string SelfSigned(const std::string& key) {
    std::string out = P(key + ".self.pem");
    EXPECT_THAT(Openssl({"req", "-x509", "-new", "-key", P(key), "-subj", "/CN=" + key, "-days",
                         "1", "-out", out}),
                Succeeds());
    return out;
  }
  // CsrBase64 writes base64 of a DER PKCS#10 request over `key`, made by openssl.
  std::string CsrBase64(const std::string& key, const std::string& serial) {
    std::string der = P(key + ".csr.der");
    std::string b64 = P(key + ".csr.b64");
    EXPECT_THAT(
        Openssl({"req", "-new", "-key", P(key), "-subj",
                 "/CN=" + serial + "/serialNumber=" + serial, "-outform", "DER", "-out", der}),
        Succeeds());
    EXPECT_THAT(Openssl({"base64", "-in", der, "-out", b64}), Succeeds());
    return b64;
  }
  // Curl sends one request to the device listener: GET `path`, or POST the file `body_file` with
  // `content_type`. `cert` empty: no client certificate.
  CurlReply Curl(const std::string& cert, const std::string& key, const std::string& path,
                 const std::string& body_file = "",
                 const std::string& content_type = "application/pkcs10") {
    std::vector<std::string> argv = {
        "curl",         "-sS", "--max-time",   "20", "--cacert",
        P("trust.pem"), "-o",  P("curl.body"), "-w", "%{http_code} %{content_type}"};
    if (!cert.empty()) {
      argv.insert(argv.end(), {"--cert", cert, "--key", P(key)});
    }
    if (!body_file.empty()) {
      argv.insert(argv.end(),
                  {"--data-binary", "@" + body_file, "-H", "Content-Type: " + content_type});
    }
    argv.push_back("https://" + server_addr_ + path);
    ::unlink(P("curl.body").c_str());
    ProcessResult r = RunCommand(argv);
    CurlReply reply;
    reply.exit_code = r.exit_code;
    reply.err = r.err;
    reply.status = std::atoi(r.out.c_str());
    if (size_t space = r.out.find(' '); space != std::string::npos) {
      reply.content_type = r.out.substr(space + 1);
    }
    if (::access(P("curl.body").c_str(), R_OK) == 0) {
      reply.body = ReadText(P("curl.body"));
    }
    return reply;
  }
  // CertsOnlyToPem decodes an EST certs-only body with openssl into PEM certificates at `out`.
  void CertsOnlyToPem(const std::string& body, const std::string& out) {
    WriteText(P("p7.b64"), body);
    ASSERT_THAT(Openssl({"base64", "-d", "-in", P("p7.b64"), "-out", P("p7.der")}), Succeeds());
    ASSERT_THAT(
        Openssl({"pkcs7", "-inform", "DER", "-in", P("p7.der"), "-print_certs", "-out", out}),
        Succeeds());
  }

  TempDir tmp_;
  ServerProcess server_;
  std::string server_addr_;
};

// EnrollServeTest runs each test against each TLS library: claims (the proof is bound to the
// connection's TLS exporter) and EST (authenticated by the client certificate, large bodies).
class EnrollServeTest : public EnrollServeFixture,
                        public ::testing::WithParamInterface<std::string> {
 protected:
  std::string Library() const override { return GetParam(); }
};

INSTANTIATE_TEST_SUITE_P(Tls, EnrollServeTest, ::testing::Values("openssl", "gnutls"),
                         [](const ::testing::TestParamInfo<std::string>& row) {
                           return row.param;
                         });

// EnrollServeDefaultTlsTest runs on the default library only: what it tests lies behind the TLS
// layer that EnrollServeTest covers for both (batch and registry rules, approval, the wall clock,
// a broker's view of the issued certificate).
class EnrollServeDefaultTlsTest : public EnrollServeFixture {};

// --- Batch claims ---

TEST_P(EnrollServeTest, ClaimedDeviceSaysHelloWithItsOwnKeyAtOnce) {
  Keygen("dev1.key");
  EXPECT_THAT(Device("dev1.key", {"hello"}), FailsWith(7, HasSubstr("403")));
  ASSERT_THAT(Claim("dev1.key", "S1"), Succeeds());
  ProcessResult hello = Device("dev1.key", {"hello"});
  ASSERT_THAT(hello, Succeeds());
  EXPECT_THAT(hello.out, HasSubstr("hello, S1"));
}

TEST_P(EnrollServeTest, WrongSecretIsRefusedAndTheRightOneWorks) {
  Keygen("dev1.key");
  // A well-formed secret that is not the batch's.
  WriteText(P("other.secret"), std::string(43, 'A') + "\n");
  ::chmod(P("other.secret").c_str(), 0600);
  EXPECT_THAT(Device("dev1.key", {"claim", "--batch", "b1", "--serial", "S1", "--secret-file",
                                  P("other.secret")}),
              FailsWith(5, HasSubstr("refused")));
  EXPECT_THAT(Device("dev1.key", {"hello"}), FailsWith(7, HasSubstr("403")));
  EXPECT_THAT(Claim("dev1.key", "S1"), Succeeds());
}

TEST_F(EnrollServeDefaultTlsTest, CloneOfAClaimedSerialAndAnExhaustedBatchAreRefused) {
  for (const char* k : {"dev1.key", "dev2.key", "dev3.key"}) {
    Keygen(k);
  }
  ASSERT_THAT(Claim("dev1.key", "S1"), Succeeds());
  EXPECT_THAT(Claim("dev2.key", "S1"), FailsWith(6, HasSubstr("possible clone")));
  EXPECT_THAT(Device("dev2.key", {"hello"}), FailsWith(7, HasSubstr("403")));
  ASSERT_THAT(Claim("dev2.key", "S2"), Succeeds());
  EXPECT_THAT(Claim("dev3.key", "S3"), FailsWith(5, HasSubstr("exhausted")));
}

TEST_F(EnrollServeDefaultTlsTest, ExpiredBatchRefusesClaims) {
  ASSERT_THAT(CreateBatch("short", "5", "1s"), Succeeds());
  ProcessResult show = Batch({"show", "short", "--json"});
  ASSERT_THAT(show, Succeeds());
  const int64_t expires_at = Json(show).value("expires_at", int64_t{0});
  ASSERT_GT(expires_at, 0) << show.out;
  // Wait for the wall clock to pass the batch's expiry (what is tested is time itself).
  for (int i = 0; i < 100 && std::time(nullptr) <= expires_at; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_GT(std::time(nullptr), expires_at);
  Keygen("dev1.key");
  EXPECT_THAT(Claim("dev1.key", "S1", "short"), FailsWith(5, HasSubstr("expired")));
  EXPECT_THAT(Device("dev1.key", {"hello"}), FailsWith(7, HasSubstr("403")));
  // Twin: the same device through a batch that has not expired.
  EXPECT_THAT(Claim("dev1.key", "S1"), Succeeds());
}

TEST_F(EnrollServeDefaultTlsTest, RevokedBatchRefusesClaimsAndCanTakeItsDevicesWithIt) {
  for (const char* k : {"dev1.key", "dev2.key"}) {
    Keygen(k);
  }
  ASSERT_THAT(Claim("dev1.key", "S1"), Succeeds());
  ASSERT_THAT(Device("dev1.key", {"hello"}), Succeeds());
  ASSERT_THAT(Batch({"revoke", "b1", "--reason", "leaked", "--revoke-devices"}), Succeeds());
  // No claim after the revocation, even before the server's view refreshes.
  EXPECT_THAT(Claim("dev2.key", "S2"), FailsWith(5, HasSubstr("revoked")));
  // The device it had enrolled is refused once the revocation reaches the server.
  EXPECT_TRUE(HelloSoon("dev1.key", /*accepted=*/false));
  EXPECT_THAT(Device("dev1.key", {"hello"}), Not(Succeeds()));
}

// A proof is bound to its TLS connection: an attacker who captured one (even with the device's
// key, e.g. a proxy in the factory network) cannot use it on another connection.
TEST_P(EnrollServeTest, ProofReplayedOnANewConnectionIsRefused) {
  ASSERT_OK_AND_ASSIGN(PrivateKey key, PrivateKey::Generate(KeyType::kP256));
  ASSERT_OK_AND_ASSIGN(Certificate self, device::SelfSignedCertificate(key, SystemClock()));
  std::vector<Certificate> chain = {self};
  ASSERT_OK_AND_ASSIGN(SecretBytes secret, device::ParseBatchSecret(ReadText(P("b1.secret"))));
  ASSERT_OK_AND_ASSIGN(PrivateKey proof_key, device::DeriveBatchKey(secret, "b1"));
  device::ClientOptions options;
  options.host = "127.0.0.1";
  options.port = static_cast<uint16_t>(std::stoi(server_addr_.substr(server_addr_.find(':') + 1)));
  ASSERT_OK_AND_ASSIGN(options.trust, Certificate::ChainFromFile(P("trust.pem")));

  // ClaimOn builds a claim body with the proof of the connection `ssl`.
  auto claim_on = [&](SSL* ssl) -> Result<std::string> {
    Bytes exporter(device::kClaimExporterLength);
    if (SSL_export_keying_material(
            ssl, exporter.data(), exporter.size(), device::kClaimExporterLabel.data(),
            device::kClaimExporterLabel.size(),
            reinterpret_cast<const unsigned char*>(device::kClaimExporterContext.data()),
            device::kClaimExporterContext.size(), 1) != 1) {
      return Error(Code::kInternal, "exporter");
    }
    auto proof =
        proof_key.Sign(device::ClaimProofMessage("b1", "S1", key.Public().DeviceId(), exporter));
    if (!proof) {
      return proof.error();
    }
    return nlohmann::json{{"batch_id", "b1"}, {"serial", "S1"}, {"proof", Base64Encode(*proof)}}
        .dump();
  };
  auto post = [](std::string body) {
    return device::ClientRequest{"POST", std::string(device::kClaimPath), "application/json",
                                 std::move(body)};
  };
  // The captured proof: made on a first connection, which only says hello (and is refused).
  std::string captured;
  ASSERT_THAT(device::Exchange(key, chain, options,
                               [&](SSL* ssl) -> Result<device::ClientRequest> {
                                 auto body = claim_on(ssl);
                                 if (!body) {
                                   return body.error();
                                 }
                                 captured = *body;
                                 return device::ClientRequest{"GET", "/v1/hello", "", ""};
                               }),
              IsOk());
  // Replayed on a second connection.
  ASSERT_OK_AND_ASSIGN(
      device::RawReply replayed,
      device::Exchange(key, chain, options,
                       [&](SSL*) -> Result<device::ClientRequest> { return post(captured); }));
  EXPECT_THAT(replayed.raw, StartsWith("HTTP/1.1 403"));
  EXPECT_THAT(replayed.raw, HasSubstr("no valid proof"));
  // Twin: a proof made on the connection that carries it.
  ASSERT_OK_AND_ASSIGN(
      device::RawReply fresh,
      device::Exchange(key, chain, options, [&](SSL* ssl) -> Result<device::ClientRequest> {
        auto body = claim_on(ssl);
        if (!body) {
          return body.error();
        }
        return post(*body);
      }));
  EXPECT_THAT(fresh.raw, StartsWith("HTTP/1.1 201"));
}

// --- Operator approval (engineer present) ---

TEST_F(EnrollServeDefaultTlsTest, PendingDeviceIsRefusedUntilTheOperatorApprovesItsCode) {
  Keygen("dev1.key");
  ProcessResult asked = Device("dev1.key", {"request-approval", "--serial", "P1", "--json"});
  ASSERT_THAT(asked, Succeeds());
  const std::string code = Json(asked).value("code", "");
  ASSERT_EQ(code.size(), 9u) << asked.out;
  ProcessResult code_on_device = Hallmark({"device", "--key", P("dev1.key"), "code"});
  EXPECT_THAT(code_on_device.out, HasSubstr(code));
  // Pending grants nothing.
  EXPECT_THAT(Device("dev1.key", {"hello"}), FailsWith(7, HasSubstr("403")));

  ProcessResult pending = Registry({"pending", "--json"});
  ASSERT_THAT(pending, Succeeds());
  EXPECT_THAT(pending.out, HasSubstr(code));
  const std::string id = Hallmark({"device", "--key", P("dev1.key"), "id"}).out.substr(0, 64);
  // The operator compares codes: the wrong one approves nothing.
  EXPECT_THAT(Registry({"approve", id.substr(0, 16), "--code", "0000-0000"}), Not(Succeeds()));
  EXPECT_THAT(Device("dev1.key", {"hello"}), FailsWith(7, HasSubstr("403")));
  ASSERT_THAT(Registry({"approve", id.substr(0, 16), "--code", code}), Succeeds());
  EXPECT_TRUE(HelloSoon("dev1.key", /*accepted=*/true));
  ProcessResult hello = Device("dev1.key", {"hello"});
  ASSERT_THAT(hello, Succeeds());
  EXPECT_THAT(hello.out, HasSubstr("P1"));
}

TEST_F(EnrollServeDefaultTlsTest, RejectedRequestLeavesTheDeviceOut) {
  Keygen("dev1.key");
  ASSERT_THAT(Device("dev1.key", {"request-approval", "--serial", "P1"}), Succeeds());
  const std::string id = Hallmark({"device", "--key", P("dev1.key"), "id"}).out.substr(0, 64);
  ASSERT_THAT(Registry({"reject", id.substr(0, 16)}), Succeeds());
  ProcessResult pending = Registry({"pending", "--json"});
  EXPECT_THAT(pending.out, Not(HasSubstr(id.substr(0, 16))));
  EXPECT_THAT(Device("dev1.key", {"hello"}), FailsWith(7, HasSubstr("403")));
}

// --- EST (RFC 7030) with curl ---

TEST_P(EnrollServeTest, CurlGetsAnOperationalCertificateOverEstAndRenewsWithIt) {
  Keygen("dev1.key");
  ASSERT_THAT(Claim("dev1.key", "S1"), Succeeds());
  const std::string self = SelfSigned("dev1.key");

  CurlReply cacerts = Curl(self, "dev1.key", "/.well-known/est/cacerts");
  ASSERT_EQ(cacerts.status, 200) << cacerts.err << cacerts.body;
  EXPECT_THAT(cacerts.content_type, StartsWith("application/pkcs7-mime"));
  CertsOnlyToPem(cacerts.body, P("est-chain.pem"));

  CurlReply issued =
      Curl(self, "dev1.key", "/.well-known/est/simpleenroll", CsrBase64("dev1.key", "S1"));
  ASSERT_EQ(issued.status, 200) << issued.err << issued.body;
  EXPECT_EQ(issued.content_type, "application/pkcs7-mime; smime-type=certs-only");
  CertsOnlyToPem(issued.body, P("op.pem"));
  ProcessResult verify = Openssl(
      {"verify", "-CAfile", P("ca/root.pem"), "-untrusted", P("est-chain.pem"), P("op.pem")});
  ASSERT_THAT(verify, Succeeds());
  EXPECT_THAT(verify.out, HasSubstr("op.pem: OK"));
  // Over the device's own key, with the registry's serial.
  EXPECT_EQ(Openssl({"x509", "-in", P("op.pem"), "-noout", "-pubkey"}).out,
            Openssl({"pkey", "-in", P("dev1.key"), "-pubout"}).out);
  EXPECT_THAT(Openssl({"x509", "-in", P("op.pem"), "-noout", "-subject"}).out, HasSubstr("S1"));

  // Renewal authenticates with the operational certificate itself.
  CurlReply renewed =
      Curl(P("op.pem"), "dev1.key", "/.well-known/est/simplereenroll", P("dev1.key.csr.b64"));
  ASSERT_EQ(renewed.status, 200) << renewed.err << renewed.body;
  CertsOnlyToPem(renewed.body, P("op2.pem"));
  EXPECT_THAT(Openssl({"verify", "-CAfile", P("ca/root.pem"), "-untrusted", P("est-chain.pem"),
                       P("op2.pem")}),
              Succeeds());
  EXPECT_NE(Openssl({"x509", "-in", P("op2.pem"), "-noout", "-serial"}).out,
            Openssl({"x509", "-in", P("op.pem"), "-noout", "-serial"}).out);
  // Both are in the CA's issuance log.
  ProcessResult issued_list = Hallmark({"ca", "--dir", P("ca"), "list", "--json"});
  ASSERT_THAT(issued_list, Succeeds());
  auto lower = [](std::string text) {
    std::transform(text.begin(), text.end(), text.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return text;
  };
  for (const char* pem : {"op.pem", "op2.pem"}) {
    std::string serial = Openssl({"x509", "-in", P(pem), "-noout", "-serial"}).out;
    serial = lower(serial.substr(serial.find('=') + 1));
    serial.erase(serial.find_last_not_of("\n") + 1);
    ASSERT_GE(serial.size(), 16u) << pem;
    EXPECT_THAT(lower(issued_list.out), HasSubstr(serial)) << pem;
  }
  // A new certificate is not a new device: the registry still has one record for the key.
  ProcessResult list = Registry({"list", "--json"});
  ASSERT_THAT(list, Succeeds());
  EXPECT_EQ(Json(list).value("count", -1), 1) << list.out;
}

TEST_P(EnrollServeTest, EstRefusesOtherKeysStrangersAndBadBodies) {
  for (const char* k : {"dev1.key", "dev2.key"}) {
    Keygen(k);
  }
  ASSERT_THAT(Claim("dev1.key", "S1"), Succeeds());
  const std::string self1 = SelfSigned("dev1.key");
  const std::string self2 = SelfSigned("dev2.key");  // dev2 is not registered
  const std::string csr1 = CsrBase64("dev1.key", "S1");
  const std::string csr2 = CsrBase64("dev2.key", "S2");

  // A registered device asking for a certificate over someone else's key.
  for (const char* path : {"/.well-known/est/simpleenroll", "/.well-known/est/simplereenroll"}) {
    CurlReply other = Curl(self1, "dev1.key", path, csr2);
    EXPECT_EQ(other.status, 403) << path;
    EXPECT_THAT(other.body, HasSubstr("another key")) << path;
  }
  // A stranger: admitted by the listener (it may claim), but EST needs an authenticated device.
  CurlReply stranger = Curl(self2, "dev2.key", "/.well-known/est/simpleenroll", csr2);
  EXPECT_EQ(stranger.status, 403);
  EXPECT_THAT(stranger.body, HasSubstr("authenticated device"));
  // No client certificate at all: refused in the handshake.
  CurlReply anonymous = Curl("", "", "/.well-known/est/simpleenroll", csr1);
  EXPECT_NE(anonymous.exit_code, 0);
  EXPECT_EQ(anonymous.status, 0);

  // Bodies: garbage, oversized, and a CSR sent as a form (curl's default type).
  WriteText(P("garbage.b64"), "this is not a certificate request\n");
  CurlReply garbage = Curl(self1, "dev1.key", "/.well-known/est/simpleenroll", P("garbage.b64"));
  EXPECT_EQ(garbage.status, 400);
  EXPECT_THAT(garbage.body, HasSubstr("PKCS#10"));
  WriteText(P("big.b64"), std::string(64 * 1024, 'A'));
  EXPECT_EQ(Curl(self1, "dev1.key", "/.well-known/est/simpleenroll", P("big.b64")).status, 413);
  CurlReply form = Curl(self1, "dev1.key", "/.well-known/est/simpleenroll", csr1,
                        "application/x-www-form-urlencoded");
  EXPECT_EQ(form.status, 415);
  EXPECT_THAT(form.body, HasSubstr("application/pkcs10"));

  // Twin: the registered device, its own key, a well-formed request.
  EXPECT_EQ(Curl(self1, "dev1.key", "/.well-known/est/simpleenroll", csr1).status, 200);
  // Nothing above created a record.
  EXPECT_EQ(Json(Registry({"list", "--json"})).value("count", -1), 1);
}

TEST_F(EnrollServeDefaultTlsTest, DeviceClientEnrollsAndRenewsOnlyWhenDueUnlessForced) {
  Keygen("dev1.key");
  ASSERT_THAT(Claim("dev1.key", "S1"), Succeeds());
  ASSERT_THAT(Device("dev1.key", {"enroll", "--out", P("op.pem")}), Succeeds());
  const std::string first = Openssl({"x509", "-in", P("op.pem"), "-noout", "-serial"}).out;
  ProcessResult early = Device("dev1.key", {"renew", "--cert", P("op.pem"), "--json"});
  ASSERT_THAT(early, Succeeds());
  EXPECT_FALSE(Json(early).value("renewed", true)) << early.out;
  EXPECT_EQ(Openssl({"x509", "-in", P("op.pem"), "-noout", "-serial"}).out, first);
  ASSERT_THAT(Device("dev1.key", {"renew", "--cert", P("op.pem"), "--force"}), Succeeds());
  EXPECT_NE(Openssl({"x509", "-in", P("op.pem"), "-noout", "-serial"}).out, first);
  // The renewed certificate is a credential on the device listener too.
  EXPECT_THAT(Device("dev1.key", {"hello", "--cert", P("op.pem")}), Succeeds());
}

// --- A stock MQTT broker accepts the operational certificate ---

// FreeLoopbackPort asks the kernel for a port no one listens on (mosquitto takes no port 0).
uint16_t FreeLoopbackPort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    if (fd >= 0) {
      ::close(fd);
    }
    return 0;
  }
  ::close(fd);
  return ntohs(addr.sin_port);
}

bool AcceptsConnections(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  bool ok = fd >= 0 && ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  if (fd >= 0) {
    ::close(fd);
  }
  return ok;
}

TEST_F(EnrollServeDefaultTlsTest, OperationalCertificateAuthenticatesAgainstMosquitto) {
  Keygen("dev1.key");
  ASSERT_THAT(Claim("dev1.key", "S1"), Succeeds());
  ASSERT_THAT(Device("dev1.key", {"enroll", "--out", P("op.pem"), "--ca-out", P("est-chain.pem")}),
              Succeeds());

  // The broker trusts the owner's CA chain and requires a client certificate.
  const uint16_t port = FreeLoopbackPort();
  ASSERT_NE(port, 0);
  WriteText(P("mqtt-ca.pem"), ReadText(P("est-chain.pem")));
  WriteText(P("mosquitto.conf"),
            "per_listener_settings true\n"
            "listener " +
                std::to_string(port) +
                " 127.0.0.1\n"
                "cafile " +
                P("mqtt-ca.pem") +
                "\n"
                "certfile " +
                P("server.pem") +
                "\n"
                "keyfile " +
                P("server.key") +
                "\n"
                "require_certificate true\n"
                "use_identity_as_username true\n"
                "allow_anonymous false\n"
                "tls_version tlsv1.3\n"
                "persistence false\n"
                "log_dest stderr\n"
                "log_type all\n"
                // As root mosquitto would switch to the `mosquitto` user, who cannot read this
                // test's private directory; as anyone else the setting is ignored.
                "user root\n");
  ServerProcess broker;
  ASSERT_TRUE(broker.Start({"mosquitto", "-c", P("mosquitto.conf")}, P("mosquitto.log")));
  bool up = false;
  for (int i = 0; i < 200 && !up; ++i) {
    up = AcceptsConnections(port);
    if (!up) {
      std::this_thread::sleep_for(std::chrono::milliseconds(25));
    }
  }
  ASSERT_TRUE(up) << ReadText(P("mosquitto.log"));

  auto publish = [&](const std::string& cert) {
    // `timeout` bounds a client that would wait forever for an answer (a broken broker).
    return RunCommand({"timeout",
                       "30",
                       "mosquitto_pub",
                       "-h",
                       "127.0.0.1",
                       "-p",
                       std::to_string(port),
                       "--cafile",
                       P("mqtt-ca.pem"),
                       "--cert",
                       cert,
                       "--key",
                       P("dev1.key"),
                       "-t",
                       "hallmark/S1",
                       "-m",
                       "hello",
                       "-q",
                       "1",
                       "-d"});
  };
  ProcessResult ok = publish(P("op.pem"));
  EXPECT_THAT(ok, Succeeds()) << ReadText(P("mosquitto.log"));
  EXPECT_THAT(ok.out, HasSubstr("PUBACK"));
  // Attack twin: the same key with a self-signed certificate is not let in.
  ProcessResult self = publish(SelfSigned("dev1.key"));
  EXPECT_THAT(self, Not(Succeeds()));
  EXPECT_THAT(self.out, Not(HasSubstr("PUBACK")));
  EXPECT_EQ(broker.Stop(), 0) << ReadText(P("mosquitto.log"));
}

}  // namespace
}  // namespace hallmark::testing
