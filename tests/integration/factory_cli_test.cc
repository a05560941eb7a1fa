// Integration tests for `hallmark factory run`: a simulated production line whose devices are
// separate `hallmark factory device-agent` processes with their own key stores (files, a
// SoftHSM2 token, a swtpm TPM). The manifest goes through `hallmark registry import`, the IDevIDs
// through `openssl verify`, and the station's memory and files are searched for device keys.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "core/encoding.h"
#include "core/key.h"
#include "core/ossl.h"
#include "integration/cli_runner.h"
#include "testing/matchers.h"
#include "testing/softhsm.h"
#include "testing/swtpm.h"

namespace hallmark::testing {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::Not;

// Shared world: a CA with customer "acme", a factory key, and a registry to import into.
class FactoryCliTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    suite_ = new TempDir();
    ASSERT_THAT(Hallmark({"ca", "--dir", S("ca"), "init"}), Succeeds());
    ASSERT_THAT(Hallmark({"ca", "--dir", S("ca"), "customer", "add", "acme", "--org", "ACME"}),
                Succeeds());
    ASSERT_THAT(Hallmark({"device", "--key", S("factory.key"), "keygen"}), Succeeds());
    ASSERT_THAT(Openssl({"pkey", "-in", S("factory.key"), "-pubout", "-out", S("factory.pub")}),
                Succeeds());
  }
  static void TearDownTestSuite() {
    delete suite_;
    suite_ = nullptr;
  }

  static std::string S(const std::string& name) { return suite_->path() + "/" + name; }
  std::string P(const std::string& name) const { return dir_ / name; }

  // Run runs `hallmark --json factory run --customer acme --line-dir LINE args...`.
  ProcessResult Run(const std::vector<std::string>& args) const {
    std::vector<std::string> argv = {"--json", "factory",    "run",    "--customer",
                                     "acme",   "--line-dir", P("line")};
    argv.insert(argv.end(), args.begin(), args.end());
    return Hallmark(argv);
  }

  std::vector<std::string> Extract(const std::string& count) const {
    return {"--mode", "extract", "--count", count, "--factory-key", S("factory.key")};
  }
  std::vector<std::string> Inject(const std::string& count) const {
    return {"--mode", "inject", "--count", count, "--ca-dir", S("ca")};
  }

  std::string DeviceDir(const std::string& serial) const { return P("line/devices/" + serial); }

  // ImportManifest imports the line's manifest into a fresh registry; returns the result.
  ProcessResult ImportManifest() const {
    std::vector<std::string> reg = {"registry", "--db", P("reg.db"), "--registrar-key",
                                    P("registrar.key")};
    std::vector<std::string> init = reg;
    init.push_back("init");
    EXPECT_THAT(Hallmark(init), Succeeds());
    std::vector<std::string> import = reg;
    import.insert(import.end(), {"--json", "import", "--factory-key", S("factory.pub"), "--owner",
                                 "ACME", P("line/manifest.jsonl")});
    return Hallmark(import);
  }

  // VerifyIdevid checks a device's stored IDevID with openssl and returns its device ID.
  std::string VerifyIdevid(const std::string& serial) const {
    const std::string cert = DeviceDir(serial) + "/idevid.pem";
    EXPECT_THAT(Openssl({"verify", "-CAfile", S("ca/root.pem"), "-untrusted",
                         S("ca/customers/acme/ca.pem"), cert}),
                Succeeds());
    ProcessResult id = Hallmark({"device", "id", "--cert", cert});
    EXPECT_THAT(id, Succeeds());
    return id.out.substr(0, id.out.find('\n'));
  }

  static inline TempDir* suite_ = nullptr;
  TempDir dir_;
};

TEST_F(FactoryCliTest, ExtractWritesASignedManifestTheRegistryImports) {
  ProcessResult r = Run(Extract("3"));
  ASSERT_THAT(r, Succeeds());
  auto j = Json(r);
  EXPECT_EQ(j["provisioned"], 3);
  EXPECT_EQ(j["refused"], 0);
  EXPECT_GT(j["devices_per_second"].get<double>(), 0);
  ASSERT_EQ(j["devices"].size(), 3u);
  // The device IDs are those of the keys the devices keep.
  for (const auto& d : j["devices"]) {
    const std::string key = DeviceDir(d["serial"]) + "/key.pem";
    EXPECT_EQ(Hallmark({"device", "--key", key, "id"}).out,
              d["device_id"].get<std::string>() + "\n");
  }
  EXPECT_EQ(j["devices"][0]["serial"], "acme-000001");
  ProcessResult imported = ImportManifest();
  ASSERT_THAT(imported, Succeeds());
  EXPECT_EQ(Json(imported)["imported"], 3);
}

TEST_F(FactoryCliTest, InjectIssuesIdevidsTheDevicesStore) {
  ProcessResult r = Run(Inject("2"));
  ASSERT_THAT(r, Succeeds());
  auto j = Json(r);
  ASSERT_EQ(j["provisioned"], 2);
  for (const auto& d : j["devices"]) {
    EXPECT_EQ(VerifyIdevid(d["serial"]), d["device_id"]);
    EXPECT_THAT(Hallmark({"ca", "--dir", S("ca"), "show", d["certificate_serial"]}), Succeeds());
  }
}

struct FaultCase {
  std::string test_name;
  std::string fault;
  std::string message;
};

class FactoryFaultTest : public FactoryCliTest, public ::testing::WithParamInterface<FaultCase> {};

// A misbehaving device is refused with a reason; nothing is issued for it and the line goes on.
TEST_P(FactoryFaultTest, RefusesTheDeviceAndIssuesNothingForIt) {
  ProcessResult r = Run({"--mode", "inject", "--count", "3", "--ca-dir", S("ca"), "--fault",
                         "2:" + GetParam().fault, "--serial-prefix", GetParam().fault + "-"});
  EXPECT_EQ(r.exit_code, 5) << r.err;
  auto j = Json(r);
  EXPECT_EQ(j["provisioned"], 2);
  EXPECT_EQ(j["refused"], 1);
  const auto& refused = j["devices"][1];
  EXPECT_FALSE(refused["provisioned"].get<bool>());
  EXPECT_THAT(refused["error"].get<std::string>(), HasSubstr(GetParam().message));
  EXPECT_FALSE(refused.contains("certificate_serial"));
  EXPECT_FALSE(fs::exists(DeviceDir(refused["serial"]) + "/idevid.pem"));
  ProcessResult listed = Hallmark({"--json", "ca", "--dir", S("ca"), "list", "--customer", "acme"});
  EXPECT_THAT(listed.out, Not(HasSubstr(refused["serial"].get<std::string>())));
  EXPECT_THAT(listed.out, HasSubstr(j["devices"][2]["serial"].get<std::string>()));
}

INSTANTIATE_TEST_SUITE_P(
    Faults, FactoryFaultTest,
    ::testing::Values(FaultCase{"CsrWithoutProofOfPossession", "bad-csr", "does not verify"},
                      FaultCase{"CsrForAnotherKey", "other-key", "another key"},
                      FaultCase{"DeviceCrashes", "crash", "the device stopped"}),
    CaseName<FaultCase>);

TEST_F(FactoryCliTest, UnknownCustomerTouchesNothing) {
  ProcessResult r = Hallmark({"factory", "run", "--customer", "nobody", "--line-dir", P("line"),
                              "--mode", "inject", "--count", "2", "--ca-dir", S("ca")});
  EXPECT_THAT(r, FailsWith(4, HasSubstr("unknown customer 'nobody'")));
  EXPECT_FALSE(fs::exists(P("line")));
}

TEST_F(FactoryCliTest, BadInputWritesNoManifest) {
  EXPECT_THAT(Run({"--mode", "extract", "--count", "2", "--factory-key", P("missing.key")}),
              FailsWith(4, HasSubstr("does not exist")));
  EXPECT_THAT(Run({"--mode", "extract", "--count", "0", "--factory-key", S("factory.key")}),
              FailsWith(3, HasSubstr("--count")));
  EXPECT_THAT(Run({"--mode", "mint", "--count", "1"}), FailsWith(3, HasSubstr("unknown mode")));
  EXPECT_THAT(Run({"--mode", "extract", "--count", "1", "--factory-key", S("factory.key"),
                   "--keystore", "hsm"}),
              FailsWith(3, HasSubstr("unknown line key store")));
  EXPECT_THAT(Run({"--mode", "extract", "--count", "1", "--factory-key", S("factory.key"),
                   "--manifest", P("no/such/dir/manifest.jsonl")}),
              FailsWith(4, HasSubstr("cannot open manifest")));
  EXPECT_FALSE(fs::exists(P("line/manifest.jsonl")));
  EXPECT_FALSE(fs::exists(P("line/devices/acme-000001")));
}

TEST_F(FactoryCliTest, RerunningTheSameSerialsIsRefused) {
  ASSERT_THAT(Run(Extract("1")), Succeeds());
  const std::string before = ReadText(P("line/manifest.jsonl"));
  EXPECT_THAT(Run(Extract("1")), FailsWith(6, HasSubstr("already exists")));
  EXPECT_EQ(ReadText(P("line/manifest.jsonl")), before);
  EXPECT_THAT(Run({"--mode", "extract", "--count", "1", "--factory-key", S("factory.key"),
                   "--first-number", "2"}),
              Succeeds());
}

TEST_F(FactoryCliTest, Pkcs11LineKeepsEveryKeyInTheToken) {
  SoftHsm hsm;
  ASSERT_FALSE(SoftHsm::Module().empty());
  ASSERT_TRUE(hsm.InitToken("line", "7777"));
  WriteText(P("pin"), "7777\n");
  ProcessResult r = Run({"--mode", "inject", "--count", "2", "--ca-dir", S("ca"), "--keystore",
                         SoftHsm::Spec("line"), "--device-pin-file", P("pin")});
  ASSERT_THAT(r, Succeeds());
  const nlohmann::json summary = Json(r);
  for (const auto& d : summary["devices"]) {
    EXPECT_EQ(VerifyIdevid(d["serial"]), d["device_id"]);
    EXPECT_FALSE(fs::exists(DeviceDir(d["serial"]) + "/key.pem"));
  }
}

TEST_F(FactoryCliTest, PufLineInjectsWithNoKeyStoredAnywhere) {
  std::vector<std::string> args = Inject("2");
  args.insert(args.end(), {"--keystore", "puf"});
  ProcessResult r = Run(args);
  ASSERT_THAT(r, Succeeds());
  auto j = Json(r);
  ASSERT_EQ(j["provisioned"], 2);
  for (const auto& d : j["devices"]) {
    EXPECT_EQ(VerifyIdevid(d["serial"]), d["device_id"]);
  }
  EXPECT_TRUE(std::filesystem::exists(DeviceDir("acme-000001") + "/chip.puf"));
  EXPECT_FALSE(std::filesystem::exists(DeviceDir("acme-000001") + "/key.pem"));
}

TEST_F(FactoryCliTest, TpmLineExtractsKeysTheRegistryImports) {
  Swtpm tpm;
  ASSERT_TRUE(tpm.ok()) << tpm.error();
  ProcessResult r = Run({"--mode", "extract", "--count", "2", "--factory-key", S("factory.key"),
                         "--keystore", "tpm:tcti=" + tpm.Tcti()});
  ASSERT_THAT(r, Succeeds());
  EXPECT_THAT(ReadText(DeviceDir("acme-000001") + "/key.tss2"), HasSubstr("TSS2 PRIVATE KEY"));
  ProcessResult imported = ImportManifest();
  ASSERT_THAT(imported, Succeeds());
  EXPECT_EQ(Json(imported)["imported"], 2);
}

// --- The station never holds a device's private key ---

// KeyPatterns returns the byte strings that would betray a private key in memory or on disk: its
// scalar big-endian (DER, PEM after decoding) and little-endian (OpenSSL's BIGNUM words on this
// machine), its hex, and the Base64 of its PEM file.
std::vector<std::string> KeyPatterns(const std::string& key_file) {
  const std::string pem = ReadText(key_file);
  auto key = PrivateKey::FromPem(pem);
  EXPECT_TRUE(key.has_value());
  BIGNUM* raw = nullptr;
  EXPECT_EQ(EVP_PKEY_get_bn_param(key->native(), OSSL_PKEY_PARAM_PRIV_KEY, &raw), 1);
  OsslPtr<BIGNUM> scalar(raw);
  std::string be(32, '\0');
  BN_bn2binpad(scalar.get(), reinterpret_cast<unsigned char*>(be.data()), 32);
  std::string le(be.rbegin(), be.rend());
  std::string body = pem.substr(pem.find('\n') + 1, 64);  // first Base64 line of the PEM
  return {be, le, HexEncode(AsBytes(be)), body};
}

// Contains reports which of `patterns` occur in `haystack`.
bool ContainsAny(std::string_view haystack, const std::vector<std::string>& patterns) {
  return std::any_of(patterns.begin(), patterns.end(), [&](const std::string& p) {
    return haystack.find(p) != std::string_view::npos;
  });
}

// MemoryContains searches every readable mapping of process `pid` (through /proc/PID/mem) for
// any of `patterns`. Mappings above 256 MiB (sanitizer shadow memory) are skipped.
bool MemoryContains(pid_t pid, const std::vector<std::string>& patterns, size_t* scanned) {
  const std::string proc = "/proc/" + std::to_string(pid);
  std::ifstream maps(proc + "/maps");
  int mem = ::open((proc + "/mem").c_str(), O_RDONLY | O_CLOEXEC);
  EXPECT_GE(mem, 0) << "cannot open " << proc << "/mem";
  std::string line;
  bool found = false;
  while (!found && mem >= 0 && std::getline(maps, line)) {
    unsigned long start = 0;
    unsigned long end = 0;
    char perms[5] = {0};
    if (std::sscanf(line.c_str(), "%lx-%lx %4s", &start, &end, perms) != 3 || perms[0] != 'r' ||
        end - start > (256ul << 20)) {
      continue;
    }
    std::string region(end - start, '\0');
    ssize_t n = ::pread(mem, region.data(), region.size(), static_cast<off_t>(start));
    if (n <= 0) {
      continue;  // [vvar] and the like cannot be read
    }
    *scanned += static_cast<size_t>(n);
    found = ContainsAny(std::string_view(region.data(), static_cast<size_t>(n)), patterns);
  }
  if (mem >= 0) {
    ::close(mem);
  }
  return found;
}

// HeldStation runs `hallmark factory run ... --hold` and keeps it alive until destroyed.
class HeldStation {
 public:
  explicit HeldStation(const std::vector<std::string>& args) {
    int in[2];
    int out[2];
    if (::pipe2(in, O_CLOEXEC) != 0 || ::pipe2(out, O_CLOEXEC) != 0) {
      return;
    }
    pid_ = ::fork();
    if (pid_ == 0) {
      ::dup2(in[0], 0);
      ::dup2(out[1], 1);
      std::vector<char*> argv = {const_cast<char*>(HALLMARK_BINARY)};
      for (const std::string& a : args) {
        argv.push_back(const_cast<char*>(a.c_str()));
      }
      argv.push_back(nullptr);
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
    ::close(in[0]);
    ::close(out[1]);
    to_station_ = in[1];
    from_station_ = out[0];
  }
  ~HeldStation() {
    ::close(to_station_);  // --hold ends when its input closes
    ::close(from_station_);
    int status = 0;
    ::waitpid(pid_, &status, 0);
  }
  // WaitForSummary returns the first output line: the station has finished its devices.
  std::string WaitForSummary() {
    std::string line;
    char c = 0;
    pollfd p{from_station_, POLLIN, 0};
    // A bound for a broken station, not a synchronisation delay.
    while (::poll(&p, 1, 120000) == 1 && ::read(from_station_, &c, 1) == 1 && c != '\n') {
      line.push_back(c);
    }
    return line;
  }
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
  int to_station_ = -1;
  int from_station_ = -1;
};

// KeyHolder is `hallmark device --key KEY hello` stuck in its handshake with a listener that
// never answers: a process that certainly holds the device key in memory, to show that the
// memory search finds a key where there is one.
class KeyHolder {
 public:
  KeyHolder(const std::string& key, const std::string& trust) {
    listener_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(addr);
    if (::bind(listener_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
        ::listen(listener_, 1) != 0 ||
        ::getsockname(listener_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      return;
    }
    const std::string server = "127.0.0.1:" + std::to_string(ntohs(addr.sin_port));
    pid_ = ::fork();
    if (pid_ == 0) {
      int null = ::open("/dev/null", O_RDWR);
      ::dup2(null, 1);
      ::dup2(null, 2);
      const char* argv[] = {HALLMARK_BINARY, "device",       "--key",   key.c_str(),   "hello",
                            "--server",      server.c_str(), "--trust", trust.c_str(), nullptr};
      ::execv(argv[0], const_cast<char**>(argv));
      ::_exit(127);
    }
  }
  ~KeyHolder() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    ::close(conn_);
    ::close(listener_);
  }
  // WaitUntilConnected returns once the client has loaded its key and connected.
  bool WaitUntilConnected() {
    pollfd p{listener_, POLLIN, 0};
    // A bound for a broken client, not a synchronisation delay.
    if (::poll(&p, 1, 60000) != 1) {
      return false;
    }
    conn_ = ::accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC);
    return conn_ >= 0;
  }
  pid_t pid() const { return pid_; }

 private:
  int listener_ = -1;
  int conn_ = -1;
  pid_t pid_ = -1;
};

TEST_F(FactoryCliTest, StationMemoryAndFilesHoldNoDevicePrivateKey) {
  HeldStation station({"factory", "run", "--customer", "acme", "--line-dir", P("line"), "--mode",
                       "inject", "--count", "3", "--ca-dir", S("ca"), "--hold"});
  ASSERT_GT(station.pid(), 0);
  ASSERT_THAT(station.WaitForSummary(), HasSubstr("Provisioned 3 of 3"));

  std::vector<std::string> patterns;
  for (const auto& entry : fs::directory_iterator(P("line/devices"))) {
    auto p = KeyPatterns(entry.path().string() + "/key.pem");
    patterns.insert(patterns.end(), p.begin(), p.end());
  }
  ASSERT_EQ(patterns.size(), 12u);

  // The legitimate twin: a process that holds a device key is caught.
  size_t scanned = 0;
  {
    KeyHolder holder(DeviceDir("acme-000001") + "/key.pem", S("ca/root.pem"));
    ASSERT_TRUE(holder.WaitUntilConnected());
    EXPECT_TRUE(MemoryContains(holder.pid(), patterns, &scanned));
  }

  scanned = 0;
  EXPECT_FALSE(MemoryContains(station.pid(), patterns, &scanned));
  EXPECT_GT(scanned, 1u << 20) << "the station's memory was not read";

  // The station's files: everything it wrote outside the devices' own storage.
  std::vector<std::string> station_files;
  for (const auto& entry : fs::recursive_directory_iterator(S("ca"))) {
    if (entry.is_regular_file()) {
      station_files.push_back(entry.path().string());
    }
  }
  for (const auto& entry : fs::directory_iterator(P("line"))) {
    if (entry.is_regular_file()) {
      station_files.push_back(entry.path().string());
    }
  }
  ASSERT_FALSE(station_files.empty());
  for (const std::string& f : station_files) {
    EXPECT_FALSE(ContainsAny(ReadText(f), patterns)) << f;
  }
}

}  // namespace
}  // namespace hallmark::testing
