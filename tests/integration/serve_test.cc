// Integration tests for `hallmark serve`: a real server process on 127.0.0.1, real certificates
// from `hallmark ca`, and clients nobody here wrote (curl, openssl s_client, gnutls-cli) next to
// hallmark's own device client. Each attack is refused; its legitimate twin says hello. Every test
// runs against each TLS library the server can use (`[tls] library`).
#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/inotify.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "core/encoding.h"
#include "integration/cli_runner.h"
#include "integration/server_process.h"
#include "testing/matchers.h"

namespace hallmark::testing {
namespace {

using ::testing::ContainsRegex;
using ::testing::HasSubstr;
using ::testing::Not;

// Shared world: one CA and many devices, built once for the process (issuing takes real key
// generation), and one server per TLS library (`[tls] library`), each with its own registry, log
// and ports, started the first time a test needs it and stopped by PID at the end of the run.
// Every test runs against both libraries.
class ServeFixture : public ::testing::Test {
 public:
  static void SetUpTestSuite();
  // StopServers stops every server (at the end of the run) and checks that each exits cleanly.
  static void StopServers();

 protected:
  // Library is the `[tls] library` the test's server uses: "openssl" or "gnutls".
  virtual std::string Library() const = 0;
  void SetUp() override;

  static std::string P(const std::string& name) { return dir_->path() + "/" + name; }
  // L names a file of the test's own server (registry, configuration, log).
  std::string L(const std::string& name) const { return P(Library() + "-" + name); }
  std::string Log() const { return L("server.log"); }
  std::string Url(const std::string& path) const {
    return "https://localhost:" + std::to_string(port_) + path;
  }
  ProcessResult Registry(std::vector<std::string> args) const {
    args.insert(args.begin(),
                {"registry", "--db", L("reg.db"), "--registrar-key", L("registrar.key")});
    return Hallmark(args);
  }
  // RegistryHello says hello on the registry listener with `key` and a self-signed certificate.
  ProcessResult RegistryHello(const std::string& key) const {
    return Hallmark({"device", "--key", P(key), "hello", "--server",
                     "127.0.0.1:" + std::to_string(registry_port_), "--trust",
                     P("ca/customers/acme/ca.pem")});
  }
  static ProcessResult Ca(std::vector<std::string> args) {
    args.insert(args.begin(), {"ca", "--dir", P("ca")});
    return Hallmark(args);
  }
  // MakeDevice creates NAME.key and NAME.pem issued by `customer` under `profile`.
  static void MakeDevice(const std::string& name, const std::string& customer,
                         const std::string& profile, const std::vector<std::string>& subject);
  ProcessResult Curl(const std::vector<std::string>& extra, const std::string& path) const {
    std::vector<std::string> argv = {"curl", "-sS",      "--max-time",
                                     "20",   "--cacert", P("ca/root.pem")};
    argv.insert(argv.end(), extra.begin(), extra.end());
    argv.push_back(Url(path));
    return RunCommand(argv);
  }
  ProcessResult CurlAs(const std::string& device, const std::string& path = "/v1/hello") const {
    return Curl({"--cert", P(device + ".pem"), "--key", P(device + ".key")}, path);
  }
  std::string Metrics() const {
    return RunCommand({"curl", "-sS", "--max-time", "20",
                       "http://127.0.0.1:" + std::to_string(admin_port_) + "/metrics"})
        .out;
  }
  static std::string DeviceId(const std::string& device) {
    ProcessResult r = Hallmark({"device", "id", "--cert", P(device + ".pem")});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return r.out.substr(0, r.out.find('\n'));
  }

  int port_ = 0;
  int admin_port_ = 0;
  int registry_port_ = 0;

 private:
  // Served is one `hallmark serve` process and its ports.
  struct Served {
    ServerProcess process;
    int port = 0;
    int admin_port = 0;
    int registry_port = 0;
  };
  // Serve sets up the registry and configuration of this test's library and starts its server.
  void Serve(Served& served) const;

  static inline TempDir* dir_ = nullptr;
  static inline std::map<std::string, std::unique_ptr<Served>>* servers_ = nullptr;
};

// ServeTest runs each test against each TLS library.
class ServeTest : public ServeFixture, public ::testing::WithParamInterface<std::string> {
 protected:
  std::string Library() const override { return GetParam(); }
};

const auto kTlsLibraries = ::testing::Values("openssl", "gnutls");

void ServeFixture::MakeDevice(const std::string& name, const std::string& customer,
                              const std::string& profile, const std::vector<std::string>& subject) {
  ASSERT_THAT(Hallmark({"device", "--key", P(name + ".key"), "keygen"}), Succeeds());
  std::vector<std::string> csr = {"device", "--key", P(name + ".key"),
                                  "csr",    "--out", P(name + ".csr")};
  csr.insert(csr.end(), subject.begin(), subject.end());
  ASSERT_THAT(Hallmark(csr), Succeeds());
  ASSERT_THAT(Ca({"issue", "--customer", customer, "--profile", profile, P(name + ".csr"), "--out",
                  P(name + ".pem")}),
              Succeeds());
}

int PortOf(const std::string& listen) { return std::stoi(listen.substr(listen.rfind(':') + 1)); }

void ServeFixture::SetUpTestSuite() {
  if (dir_ != nullptr) {
    return;  // built for an earlier suite
  }
  dir_ = new TempDir();
  servers_ = new std::map<std::string, std::unique_ptr<Served>>();
  ASSERT_THAT(Ca({"init", "--org", "Test Vendor"}), Succeeds());
  ASSERT_THAT(Ca({"customer", "add", "acme", "--org", "ACME"}), Succeeds());
  ASSERT_THAT(Ca({"customer", "add", "globex", "--org", "Globex"}), Succeeds());

  // The server's own certificate, from ACME's CA; devices pin ACME's intermediate.
  ASSERT_THAT(Hallmark({"device", "--key", P("server.key"), "keygen"}), Succeeds());
  ASSERT_THAT(Hallmark({"device", "--key", P("server.key"), "csr", "--san", "dns:localhost",
                        "--san", "ip:127.0.0.1", "--out", P("server.csr")}),
              Succeeds());
  ASSERT_THAT(Ca({"issue", "--customer", "acme", "--profile", "server", P("server.csr"), "--out",
                  P("server.pem"), "--chain"}),
              Succeeds());

  MakeDevice("acme-1", "acme", "device", {"--serial", "ACME-1"});
  MakeDevice("globex-1", "globex", "device", {"--serial", "GLX-1"});
  MakeDevice("server-only", "acme", "server", {"--san", "dns:device.example"});
  MakeDevice("revoked", "acme", "device", {"--serial", "ACME-R"});
  ProcessResult serial = Openssl({"x509", "-in", P("revoked.pem"), "-noout", "-serial"});
  ASSERT_THAT(
      Ca({"revoke", serial.out.substr(serial.out.find('=') + 1, 32), "--reason", "keyCompromise"}),
      Succeeds());
  ASSERT_THAT(Ca({"crl", "--customer", "acme", "--out", P("acme.crl")}), Succeeds());
  ASSERT_THAT(
      Openssl({"req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
               "-keyout", P("rogue.key"), "-out", P("rogue.pem"), "-subj", "/CN=rogue", "-days",
               "30", "-addext", "basicConstraints=critical,CA:FALSE"}),
      Succeeds());
  // The owner's device keys (extract path): each server's registry has two, not the rogue one.
  for (const char* name : {"reg-1", "reg-2"}) {
    ASSERT_THAT(Hallmark({"device", "--key", P(std::string(name) + ".key"), "keygen"}), Succeeds());
    ASSERT_THAT(Openssl({"pkey", "-in", P(std::string(name) + ".key"), "-pubout", "-out",
                         P(std::string(name) + ".pub")}),
                Succeeds());
  }
}

void ServeFixture::SetUp() {
  ASSERT_NE(dir_, nullptr);
  std::unique_ptr<Served>& served = (*servers_)[Library()];
  if (served == nullptr) {
    served = std::make_unique<Served>();
    Serve(*served);
    if (served->port == 0) {
      served.reset();  // the next test tries again (and fails on its own)
      FAIL() << "the " << Library() << " server did not start: " << ReadText(Log());
    }
  }
  port_ = served->port;
  admin_port_ = served->admin_port;
  registry_port_ = served->registry_port;
}

void ServeFixture::Serve(Served& served) const {
  ASSERT_THAT(Registry({"init"}), Succeeds());
  ASSERT_THAT(Registry({"add", "--pubkey", P("reg-1.pub"), "--serial", "REG-1", "--owner", "ACME"}),
              Succeeds());
  ASSERT_THAT(Registry({"add", "--pubkey", P("reg-2.pub"), "--serial", "REG-2", "--owner", "ACME"}),
              Succeeds());
  WriteText(L("hallmark.toml"),
            "[server]\n"
            "certificate = \"server.pem\"\n"
            "private_key = \"server.key\"\n"
            "threads = 2\n"
            "[limits]\n"
            "handshake_timeout_ms = 500\n"
            "max_header_bytes = 4096\n"
            "[tls]\n"
            "library = \"" +
                Library() +
                "\"\n"
                "[admin]\n"
                "listen = \"127.0.0.1:0\"\n"
                "[[listener]]\n"
                "listen = \"127.0.0.1:0\"\n"
                "policy = \"ca\"\n"
                "anchors = [\"ca/customers/acme/ca.pem\"]\n"
                "crls = [\"acme.crl\"]\n"
                "[registry]\n"
                "db = \"" +
                L("reg.db") +
                "\"\n"
                "registrar_public_key = \"" +
                L("registrar.key.pub") +
                "\"\n"
                "refresh_interval_ms = 50\n"
                "[[listener]]\n"
                "listen = \"127.0.0.1:0\"\n"
                "policy = \"registry\"\n");
  ASSERT_TRUE(
      served.process.Start({HALLMARK_BINARY, "serve", "--config", L("hallmark.toml")}, Log()));
  auto ready = served.process.ReadLine(std::chrono::seconds(30));
  ASSERT_TRUE(ready.has_value());
  auto j = nlohmann::json::parse(*ready);
  ASSERT_EQ(j["event"], "ready") << *ready;
  served.registry_port = PortOf(j["listeners"][1]["listen"]);
  served.admin_port = PortOf(j["admin"]);
  served.port = PortOf(j["listeners"][0]["listen"]);
}

void ServeFixture::StopServers() {
  if (servers_ == nullptr) {
    return;
  }
  for (auto& [library, served] : *servers_) {
    if (served != nullptr) {
      EXPECT_EQ(served->process.Stop(), 0)
          << library << ": " << ReadText(P(library + "-server.log"));
    }
  }
  delete servers_;
  servers_ = nullptr;
  delete dir_;
  dir_ = nullptr;
}

// The servers live until every suite that uses them has run.
class StopServersAtTheEnd : public ::testing::Environment {
 public:
  void TearDown() override { ServeFixture::StopServers(); }
};
[[maybe_unused]] ::testing::Environment* const kStopServers =
    ::testing::AddGlobalTestEnvironment(new StopServersAtTheEnd);

TEST_P(ServeTest, CurlSaysHelloAndTheServerKnowsWhoItIs) {
  ProcessResult r = CurlAs("acme-1");
  ASSERT_THAT(r, Succeeds());
  auto j = Json(r);
  EXPECT_EQ(j["device_id"], DeviceId("acme-1"));
  EXPECT_EQ(j["serial"], "ACME-1");
  EXPECT_EQ(j["policy"], "ca");
  EXPECT_EQ(j["owner"], "ACME");
}

TEST_P(ServeTest, OpensslSClientSaysHello) {
  ProcessResult r =
      RunCommand({"openssl", "s_client", "-connect", "127.0.0.1:" + std::to_string(port_),
                  "-servername", "localhost", "-cert", P("acme-1.pem"), "-key", P("acme-1.key"),
                  "-CAfile", P("ca/root.pem"), "-verify_return_error", "-quiet"},
                 "GET /v1/hello HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
  EXPECT_THAT(r.out, HasSubstr("HTTP/1.1 200"));
  EXPECT_THAT(r.out, HasSubstr(DeviceId("acme-1")));
}

TEST_P(ServeTest, HallmarkDeviceSaysHelloTrustingOnlyThePinnedIntermediate) {
  ProcessResult r = Hallmark({"device", "--key", P("acme-1.key"), "hello", "--server",
                              "localhost:" + std::to_string(port_), "--trust",
                              P("ca/customers/acme/ca.pem"), "--cert", P("acme-1.pem")});
  ASSERT_THAT(r, Succeeds());
  EXPECT_THAT(r.out, HasSubstr("ACME-1"));
}

TEST_P(ServeTest, DeviceRefusesAServerItDidNotPin) {
  // The device pins Globex's intermediate; the server's certificate is from ACME's.
  ProcessResult r = Hallmark({"device", "--key", P("acme-1.key"), "hello", "--server",
                              "localhost:" + std::to_string(port_), "--trust",
                              P("ca/customers/globex/ca.pem"), "--cert", P("acme-1.pem")});
  EXPECT_THAT(r, FailsWith(5, HasSubstr("server certificate rejected")));
}

TEST_P(ServeTest, DeviceChecksTheServerName) {
  ProcessResult r =
      Hallmark({"device", "--key", P("acme-1.key"), "hello", "--server",
                "localhost:" + std::to_string(port_), "--server-name", "other.example", "--trust",
                P("ca/customers/acme/ca.pem"), "--cert", P("acme-1.pem")});
  EXPECT_THAT(r, FailsWith(5, HasSubstr("server certificate rejected")));
}

struct Attack {
  std::string test_name;
  std::vector<std::string> curl_args;
  std::string logged_reason;  // what the server log must say about it
  // gnutls_logged_reason: what it says on GnuTLS when GnuTLS refuses before the policy runs
  // (empty: the same as logged_reason).
  std::string gnutls_logged_reason = {};
};

void PrintTo(const Attack& attack, std::ostream* os) { *os << attack.test_name; }

size_t Count(const std::string& haystack, const std::string& needle) {
  size_t n = 0;
  for (size_t pos = haystack.find(needle); pos != std::string::npos;
       pos = haystack.find(needle, pos + 1)) {
    ++n;
  }
  return n;
}

// WaitForLog returns once `path` holds `needle` at least `count` times, watching the file with
// inotify; false after 20 s (a bound for a broken server, not a delay).
bool WaitForLog(const std::string& path, const std::string& needle, size_t count) {
  int fd = ::inotify_init1(IN_CLOEXEC);
  int wd = ::inotify_add_watch(fd, path.c_str(), IN_MODIFY);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  bool found = false;
  while (!(found = Count(ReadText(path), needle) >= count)) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    pollfd p{fd, POLLIN, 0};
    if (left.count() <= 0 || ::poll(&p, 1, static_cast<int>(left.count())) <= 0) {
      break;
    }
    char buf[4096];
    [[maybe_unused]] ssize_t n = ::read(fd, buf, sizeof(buf));
  }
  ::inotify_rm_watch(fd, wd);
  ::close(fd);
  return found;
}

// ServeAttackTest runs each attack against each TLS library.
class ServeAttackTest : public ServeFixture,
                        public ::testing::WithParamInterface<std::tuple<std::string, Attack>> {
 protected:
  std::string Library() const override { return std::get<0>(GetParam()); }
  const Attack& attack() const { return std::get<1>(GetParam()); }
  const std::string& LoggedReason() const {
    return Library() == "gnutls" && !attack().gnutls_logged_reason.empty()
               ? attack().gnutls_logged_reason
               : attack().logged_reason;
  }
};

TEST_P(ServeAttackTest, IsRefusedWhileTheLegitimateDeviceSaysHello) {
  std::vector<std::string> args = attack().curl_args;
  for (std::string& a : args) {
    if (a.rfind("@DIR@", 0) == 0) {
      a = P(a.substr(6));
    }
  }
  const size_t logged_before = Count(ReadText(Log()), LoggedReason());
  ProcessResult refused = Curl(args, "/v1/hello");
  EXPECT_NE(refused.exit_code, 0) << refused.out;
  // Refused for the right reason, which only the server's log knows. The server may log just
  // after the client gave up, so wait for the line (bounded).
  EXPECT_TRUE(WaitForLog(Log(), LoggedReason(), logged_before + 1)) << ReadText(Log());
  EXPECT_THAT(refused.out, Not(HasSubstr("device_id")));
  EXPECT_THAT(CurlAs("acme-1"), Succeeds());
}

std::vector<std::string> As(const std::string& device) {
  return {"--cert", "@DIR@/" + device + ".pem", "--key", "@DIR@/" + device + ".key"};
}

INSTANTIATE_TEST_SUITE_P(
    Attacks, ServeAttackTest,
    ::testing::Combine(
        kTlsLibraries,
        ::testing::Values(Attack{"NoClientCertificate", {}, "reason=no_client_certificate"},
                          Attack{"SelfSignedUnknownKey", As("rogue"), "self-signed certificate"},
                          Attack{"DeviceOfAnotherCustomerSignedByTheSameVendorRoot", As("globex-1"),
                                 "unable to get local issuer certificate"},
                          Attack{"ServerAuthOnlyCertificateFromTheRightCa", As("server-only"),
                                 "unsuitable certificate purpose"},
                          Attack{"CaCertificatePresentedAsDevice",
                                 {"--cert", "@DIR@/ca/customers/acme/ca.pem", "--key",
                                  "@DIR@/ca/keys/customer-acme.key"},
                                 "CA certificate was presented as a device certificate",
                                 // GnuTLS refuses a key that may not sign before the policy.
                                 "reason=policy_rejected detail=\"the certificate's key usage does "
                                 "not allow signing"},
                          Attack{"RevokedDevice", As("revoked"), "certificate revoked"})),
    [](const ::testing::TestParamInfo<std::tuple<std::string, Attack>>& row) {
      return std::get<1>(row.param).test_name + "_" + std::get<0>(row.param);
    });

TEST_P(ServeTest, Tls12ClientIsRefusedAndTls13Works) {
  const std::string request = "GET /v1/hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
  auto s_client = [&](const std::string& version) {
    return RunCommand(
        {"openssl", "s_client", version, "-connect", "127.0.0.1:" + std::to_string(port_), "-cert",
         P("acme-1.pem"), "-key", P("acme-1.key"), "-CAfile", P("ca/root.pem"), "-quiet"},
        request);
  };
  EXPECT_THAT(s_client("-tls1_2").out, Not(HasSubstr("200")));
  EXPECT_THAT(s_client("-tls1_3").out, HasSubstr("HTTP/1.1 200"));
  EXPECT_TRUE(WaitForLog(Log(), "reason=tls_version", 1));
  EXPECT_THAT(Metrics(),
              ContainsRegex("hallmark_handshake_failures_total\\{reason=\"tls_version\"\\} [1-9]"));
}

// gnutls-cli, a client nobody here wrote on another TLS library than s_client's, gets the hello
// with the device's certificate and is refused without one. On end of input it half-closes and
// reads on until the server closes, as `s_client -quiet` does.
TEST_P(ServeTest, GnutlsCliSaysHelloAndIsRefusedWithoutACertificate) {
  auto gnutls_cli = [&](const std::vector<std::string>& credentials) {
    std::vector<std::string> argv = {"gnutls-cli", "--x509cafile", P("ca/root.pem"), "-p",
                                     std::to_string(port_)};
    argv.insert(argv.end(), credentials.begin(), credentials.end());
    argv.push_back("127.0.0.1");
    return RunCommand(argv,
                      "GET /v1/hello HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
  };
  ProcessResult hello =
      gnutls_cli({"--x509certfile", P("acme-1.pem"), "--x509keyfile", P("acme-1.key")});
  EXPECT_THAT(hello.out, HasSubstr("HTTP/1.1 200")) << hello.err;
  EXPECT_THAT(hello.out, HasSubstr(DeviceId("acme-1")));
  const std::string refused = "reason=no_client_certificate";
  const size_t before = Count(ReadText(Log()), refused);
  ProcessResult anonymous = gnutls_cli({});
  EXPECT_NE(anonymous.exit_code, 0);
  EXPECT_THAT(anonymous.out, Not(HasSubstr("HTTP/1.1")));
  // The client is told why: TLS 1.3's certificate_required alert.
  EXPECT_THAT(anonymous.out, HasSubstr("Certificate is required"));
  EXPECT_TRUE(WaitForLog(Log(), refused, before + 1)) << ReadText(Log());
}

// RawConnect opens a TCP connection to the device listener.
int RawConnect(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  return fd;
}

// ClosedByPeer waits (at most `bound`, a limit for a broken server, not a delay) for the server
// to close the connection, reading whatever it sends first (an alert).
bool ClosedByPeer(int fd, std::chrono::milliseconds bound) {
  const auto deadline = std::chrono::steady_clock::now() + bound;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    pollfd p{fd, POLLIN, 0};
    if (left.count() <= 0 || ::poll(&p, 1, static_cast<int>(left.count())) <= 0) {
      return false;
    }
    char buf[256];
    ssize_t n;
    while ((n = ::recv(fd, buf, sizeof(buf), MSG_DONTWAIT)) > 0) {
    }
    if (n == 0 || (n < 0 && errno == ECONNRESET)) {
      return true;
    }
    if (errno != EAGAIN && errno != EWOULDBLOCK) {
      return false;
    }
  }
}

TEST_P(ServeTest, GarbageInsteadOfClientHelloIsDroppedAndServingGoesOn) {
  const size_t logged_before = Count(ReadText(Log()), "reason=protocol_error");
  int fd = RawConnect(port_);
  std::string garbage(1024, '\0');
  for (size_t i = 0; i < garbage.size(); ++i) {
    garbage[i] = static_cast<char>((i * 131 + 7) & 0xff);
  }
  ASSERT_EQ(::send(fd, garbage.data(), garbage.size(), MSG_NOSIGNAL),
            static_cast<ssize_t>(garbage.size()));
  EXPECT_TRUE(ClosedByPeer(fd, std::chrono::seconds(10)));
  ::close(fd);
  EXPECT_TRUE(WaitForLog(Log(), "reason=protocol_error", logged_before + 1)) << ReadText(Log());
  EXPECT_THAT(
      Metrics(),
      ContainsRegex("hallmark_handshake_failures_total\\{reason=\"protocol_error\"\\} [1-9]"));
  EXPECT_THAT(CurlAs("acme-1"), Succeeds());
}

TEST_P(ServeTest, ClientThatStallsMidHandshakeIsCutOffAtTheTimeout) {
  int fd = RawConnect(port_);
  // The first bytes of a TLS record header, then nothing.
  const char partial[] = {0x16, 0x03, 0x01};
  ASSERT_EQ(::send(fd, partial, sizeof(partial), MSG_NOSIGNAL), 3);
  EXPECT_TRUE(ClosedByPeer(fd, std::chrono::seconds(20)));
  ::close(fd);
  // The server counts, then logs; once the line is there the counter is too.
  EXPECT_TRUE(WaitForLog(Log(), "reason=timeout", 1)) << ReadText(Log());
  EXPECT_THAT(Metrics(),
              ContainsRegex("hallmark_handshake_failures_total\\{reason=\"timeout\"\\} [1-9]"));
  EXPECT_THAT(CurlAs("acme-1"), Succeeds());
}

// A peer can send certificates whose public key does not decode (OpenSSL parses them anyway);
// the policy must refuse them, and the server must live on.
TEST_P(ServeTest, ChainWithAnUndecodableKeyIsRefusedAndTheServerLivesOn) {
  ProcessResult der = Openssl({"x509", "-in", P("ca/customers/acme/ca.pem"), "-outform", "DER"});
  ASSERT_THAT(der, Succeeds());
  std::string bytes = der.out;
  // The P-256 point follows "03 42 00 04" (BIT STRING of 66 bytes, uncompressed point).
  const std::string marker("\x03\x42\x00\x04", 4);
  size_t at = bytes.find(marker);
  ASSERT_NE(at, std::string::npos);
  bytes[at + 10] = static_cast<char>(bytes[at + 10] ^ 0x01);  // now off the curve
  std::string b64 = Base64Encode(AsBytes(bytes));
  std::string pem = "-----BEGIN CERTIFICATE-----\n";
  for (size_t i = 0; i < b64.size(); i += 64) {
    pem += b64.substr(i, 64) + "\n";
  }
  pem += "-----END CERTIFICATE-----\n";
  WriteText(P("bad-chain.pem"), pem);
  const std::string refused = "does not decode";
  const size_t before = Count(ReadText(Log()), refused);
  ProcessResult attack =
      RunCommand({"openssl", "s_client", "-connect", "127.0.0.1:" + std::to_string(port_), "-cert",
                  P("acme-1.pem"), "-key", P("acme-1.key"), "-cert_chain", P("bad-chain.pem"),
                  // Security level 0 lets the client send a chain with an undecodable key.
                  "-cipher", "DEFAULT@SECLEVEL=0", "-CAfile", P("ca/root.pem"), "-quiet"},
                 "GET /v1/hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_THAT(attack.out, Not(HasSubstr("200")));
  EXPECT_TRUE(WaitForLog(Log(), refused, before + 1)) << ReadText(Log());
  EXPECT_THAT(CurlAs("acme-1"), Succeeds());
}

TEST_P(ServeTest, UnknownEndpointIs404) {
  ProcessResult r = Curl({"--cert", P("acme-1.pem"), "--key", P("acme-1.key"), "-o", "/dev/null",
                          "-w", "%{http_code}"},
                         "/v1/nothing");
  EXPECT_EQ(r.out, "404");
}

TEST_P(ServeTest, OversizedHeaderIs431) {
  ProcessResult r = Curl({"--cert", P("acme-1.pem"), "--key", P("acme-1.key"), "-o", "/dev/null",
                          "-w", "%{http_code}", "-H", "X-Big: " + std::string(8000, 'a')},
                         "/v1/hello");
  EXPECT_EQ(r.out, "431");
}

TEST_P(ServeTest, MetricsCountHandshakesAndRefusalsByReason) {
  ASSERT_THAT(CurlAs("acme-1"), Succeeds());
  ASSERT_NE(Curl({"--cert", P("rogue.pem"), "--key", P("rogue.key")}, "/v1/hello").exit_code, 0);
  ASSERT_NE(Curl({}, "/v1/hello").exit_code, 0);
  EXPECT_TRUE(WaitForLog(Log(), "reason=no_client_certificate", 1));
  EXPECT_TRUE(WaitForLog(Log(), "reason=policy_rejected", 1));
  std::string m = Metrics();
  EXPECT_THAT(m, ContainsRegex("hallmark_handshakes_total\\{policy=\"ca\"\\} [1-9]"));
  EXPECT_THAT(
      m, ContainsRegex("hallmark_handshake_failures_total\\{reason=\"policy_rejected\"\\} [1-9]"));
  EXPECT_THAT(m,
              ContainsRegex(
                  "hallmark_handshake_failures_total\\{reason=\"no_client_certificate\"\\} [1-9]"));
  EXPECT_THAT(m, HasSubstr("hallmark_handshake_seconds_bucket"));
}

TEST_P(ServeTest, ServerLogSaysWhyWithoutSecrets) {
  ASSERT_NE(Curl({"--cert", P("globex-1.pem"), "--key", P("globex-1.key")}, "/v1/hello").exit_code,
            0);
  EXPECT_TRUE(WaitForLog(Log(), "unable to get local issuer certificate", 1));
  std::string log = ReadText(Log());
  EXPECT_THAT(log, HasSubstr("event=handshake_rejected"));
  EXPECT_THAT(log, Not(HasSubstr("PRIVATE KEY")));
}

TEST_P(ServeTest, RegisteredDeviceSaysHelloWithAMereSelfSignedCertificate) {
  ProcessResult r = RegistryHello("reg-1.key");
  ASSERT_THAT(r, Succeeds());
  EXPECT_THAT(r.out, HasSubstr("REG-1"));
  EXPECT_THAT(r.out, HasSubstr("registry"));
}

TEST_P(ServeTest, CurlWithASelfSignedCertificateOverARegisteredKeySaysHello) {
  ASSERT_THAT(
      Openssl({"req", "-x509", "-key", P("reg-1.key"), "-subj", "/CN=whatever", "-days", "1",
               "-addext", "basicConstraints=critical,CA:FALSE", "-out", P("reg-1-self.pem")}),
      Succeeds());
  ProcessResult r =
      RunCommand({"curl", "-sS", "--max-time", "20", "--cacert", P("ca/root.pem"), "--cert",
                  P("reg-1-self.pem"), "--key", P("reg-1.key"),
                  "https://127.0.0.1:" + std::to_string(registry_port_) + "/v1/hello"});
  ASSERT_THAT(r, Succeeds());
  EXPECT_EQ(Json(r)["serial"], "REG-1");
  EXPECT_EQ(Json(r)["policy"], "registry");
}

TEST_P(ServeTest, UnregisteredKeyIsRefusedOnTheRegistryListener) {
  EXPECT_THAT(RegistryHello("rogue.key"), FailsWith(5, HasSubstr("refused")));
  EXPECT_TRUE(WaitForLog(Log(), "is not registered", 1));
  EXPECT_THAT(RegistryHello("reg-1.key"), Succeeds());
}

TEST_P(ServeTest, RowInsertedByPlainSqlGrantsNothing) {
  // An attacker who can write the database copies a valid row onto their own key.
  ProcessResult id = Hallmark({"device", "--key", P("rogue.key"), "id"});
  ASSERT_THAT(id, Succeeds());
  ASSERT_THAT(Openssl({"pkey", "-in", P("rogue.key"), "-pubout", "-outform", "DER", "-out",
                       P("rogue.spki")}),
              Succeeds());
  std::string sql = "INSERT INTO devices SELECT '" + id.out.substr(0, 64) + "', readfile('" +
                    P("rogue.spki") +
                    "'), status, owner, path, 'ROGUE', reason, created_at, updated_at, seq, "
                    "signer, signature FROM devices WHERE serial = 'REG-1';";
  ASSERT_THAT(RunCommand({"sqlite3", L("reg.db"), sql}), Succeeds());
  const std::string refused = "policy=registry reason=policy_rejected";
  const size_t before = Count(ReadText(Log()), refused);
  EXPECT_THAT(RegistryHello("rogue.key"), FailsWith(5, HasSubstr("refused")));
  // The server trusts only devices in the verified log: the row is reported as inserted (or, if
  // the server had already cached the key as unknown, as not registered).
  EXPECT_TRUE(WaitForLog(Log(), refused, before + 1)) << ReadText(Log());
  ProcessResult verify = Registry({"verify"});
  EXPECT_EQ(verify.exit_code, 8);
  EXPECT_THAT(verify.out, HasSubstr("inserted-row"));
  EXPECT_THAT(RegistryHello("reg-1.key"), Succeeds());
}

TEST_P(ServeTest, RevocationReachesTheServerAndPlainSqlCannotUndoIt) {
  ASSERT_THAT(RegistryHello("reg-2.key"), Succeeds());
  ProcessResult id = Hallmark({"device", "--key", P("reg-2.key"), "id"});
  const auto revoked_at = std::chrono::steady_clock::now();
  ASSERT_THAT(Registry({"revoke", id.out.substr(0, 64), "--reason", "stolen"}), Succeeds());
  // The server refreshes every 50 ms: new connections are refused shortly after. Each try is a
  // real handshake; the loop is bounded.
  bool refused = false;
  for (int attempt = 0; attempt < 200 && !refused; ++attempt) {
    refused = RegistryHello("reg-2.key").exit_code != 0;
  }
  ASSERT_TRUE(refused);
  std::cout << "[ revocation ] refused "
            << std::chrono::duration_cast<std::chrono::milliseconds>(
                   std::chrono::steady_clock::now() - revoked_at)
                   .count()
            << " ms after `registry revoke` returned\n";
  ASSERT_THAT(RunCommand({"sqlite3", L("reg.db"),
                          "UPDATE devices SET status = 'active' WHERE serial = 'REG-2';"}),
              Succeeds());
  EXPECT_THAT(RegistryHello("reg-2.key"), FailsWith(5, HasSubstr("refused")));
}

INSTANTIATE_TEST_SUITE_P(Tls, ServeTest, kTlsLibraries,
                         [](const ::testing::TestParamInfo<std::string>& row) {
                           return row.param;
                         });

// A server restarted on a registry copied back from before a revocation must refuse to serve it:
// it keeps the newest tree head it verified (head_file) and the old copy does not extend it.
TEST(ServeRollbackTest, RefusesARegistryRolledBackToBeforeARevocation) {
  TempDir dir;
  auto p = [&dir](const std::string& name) { return dir / name; };
  auto registry = [&](std::vector<std::string> args) {
    args.insert(args.begin(), {"registry", "--db", p("reg.db"), "--registrar-key", p("reg.key")});
    return Hallmark(args);
  };
  ASSERT_THAT(registry({"init"}), Succeeds());
  ASSERT_THAT(Hallmark({"device", "--key", p("dev.key"), "keygen"}), Succeeds());
  ASSERT_THAT(Openssl({"pkey", "-in", p("dev.key"), "-pubout", "-out", p("dev.pub")}), Succeeds());
  ASSERT_THAT(registry({"add", "--pubkey", p("dev.pub"), "--serial", "DEV-1"}), Succeeds());
  // The copy an attacker (or a careless restore) will put back later.
  ASSERT_THAT(RunCommand({"sqlite3", p("reg.db"), ".backup " + p("before-revoke.db")}), Succeeds());

  // Server certificate from a throwaway CA.
  ASSERT_THAT(Hallmark({"ca", "--dir", p("ca"), "init"}), Succeeds());
  ASSERT_THAT(Hallmark({"ca", "--dir", p("ca"), "customer", "add", "acme"}), Succeeds());
  ASSERT_THAT(Hallmark({"device", "--key", p("server.key"), "keygen"}), Succeeds());
  ASSERT_THAT(Hallmark({"device", "--key", p("server.key"), "csr", "--san", "ip:127.0.0.1", "--out",
                        p("server.csr")}),
              Succeeds());
  ASSERT_THAT(Hallmark({"ca", "--dir", p("ca"), "issue", "--customer", "acme", "--profile",
                        "server", p("server.csr"), "--out", p("server.pem"), "--chain"}),
              Succeeds());
  WriteText(p("hallmark.toml"),
            "[server]\ncertificate = \"server.pem\"\nprivate_key = \"server.key\"\n"
            "[registry]\ndb = \"reg.db\"\nregistrar_public_key = \"reg.key.pub\"\n"
            "refresh_interval_ms = 20\nhead_file = \"server-head.json\"\n"
            "[[listener]]\nlisten = \"127.0.0.1:0\"\npolicy = \"registry\"\n");
  auto start = [&](ServerProcess& server) -> std::optional<int> {
    if (!server.Start({HALLMARK_BINARY, "serve", "--config", p("hallmark.toml")},
                      p("server.log"))) {
      return std::nullopt;
    }
    auto ready = server.ReadLine(std::chrono::seconds(30));
    if (!ready.has_value()) {
      return std::nullopt;
    }
    return PortOf(nlohmann::json::parse(*ready)["listeners"][0]["listen"]);
  };
  auto hello = [&](int port) {
    return Hallmark({"device", "--key", p("dev.key"), "hello", "--server",
                     "127.0.0.1:" + std::to_string(port), "--trust",
                     p("ca/customers/acme/ca.pem")});
  };

  {
    ServerProcess server;
    auto port = start(server);
    ASSERT_TRUE(port.has_value()) << ReadText(p("server.log"));
    ASSERT_THAT(hello(*port), Succeeds());
    ProcessResult id = Hallmark({"device", "--key", p("dev.key"), "id"});
    ASSERT_THAT(registry({"revoke", id.out.substr(0, 64)}), Succeeds());
    bool refused = false;
    for (int attempt = 0; attempt < 200 && !refused; ++attempt) {
      refused = hello(*port).exit_code != 0;
    }
    ASSERT_TRUE(refused);
    EXPECT_EQ(server.Stop(), 0);
  }
  // Legitimate twin: a restart on the genuine registry serves (and still refuses the device).
  {
    ServerProcess server;
    auto port = start(server);
    ASSERT_TRUE(port.has_value()) << ReadText(p("server.log"));
    EXPECT_NE(hello(*port).exit_code, 0);
    EXPECT_EQ(server.Stop(), 0);
  }
  // The rollback: the pre-revocation copy is put back. The server must not start on it.
  ASSERT_THAT(RunCommand({"sqlite3", p("reg.db"), ".restore " + p("before-revoke.db")}),
              Succeeds());
  ProcessResult refused = Hallmark({"serve", "--config", p("hallmark.toml")});
  EXPECT_EQ(refused.exit_code, 8) << refused.err;
  EXPECT_THAT(refused.err, HasSubstr("registry"));
  std::cout << "[ rollback ] " << refused.err;
}

}  // namespace
}  // namespace hallmark::testing
