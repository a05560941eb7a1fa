// Integration tests for `hallmark registry ...`: they drive the real binary, make keys,
// certificates and CSRs with `openssl`, check exported signatures with `openssl pkeyutl`, and
// tamper with the database through the `sqlite3` shell, as an attacker with write access would.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cctype>
#include <filesystem>
#include <functional>
#include <optional>
#include <ostream>
#include <sstream>
#include <string>
#include <vector>

#include "core/encoding.h"
#include "core/key.h"
#include "integration/cli_runner.h"
#include "testing/matchers.h"

namespace hallmark::testing {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::Not;

// OpensslDeviceId is the device ID computed with openssl only: the SHA-256 of the DER
// SubjectPublicKeyInfo of the key in `pem` (a private or public key).
std::string OpensslDeviceId(const std::string& pem, bool is_public) {
  const std::string der = pem + ".spki.der";
  std::vector<std::string> args = {"pkey", "-in", pem, "-pubout", "-outform", "DER", "-out", der};
  if (is_public) {
    args.insert(args.begin() + 1, "-pubin");
  }
  ProcessResult r = Openssl(args);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  ProcessResult digest = Openssl({"dgst", "-sha256", "-r", der});
  EXPECT_EQ(digest.exit_code, 0) << digest.err;
  return digest.out.substr(0, digest.out.find(' '));
}

// ManifestLine writes one manifest line exactly as docs/registry.md specifies, independently of
// the registry library: the test's stand-in for a factory station.
std::string ManifestLine(const PublicKey& device, const std::string& serial,
                         const PrivateKey& factory) {
  std::string key = Base64Encode(device.SpkiDer());
  std::string text = "hallmark-manifest-line/1\npublic_key=" + key + "\nserial=" + serial + "\n";
  auto sig = factory.Sign(AsBytes(text));
  EXPECT_TRUE(sig.has_value());
  return nlohmann::json{{"public_key", key}, {"serial", serial}, {"signature", Base64Encode(*sig)}}
      .dump();
}

std::string BlobSql(const std::string& base64) {
  auto bytes = Base64Decode(base64);
  EXPECT_TRUE(bytes.has_value());
  return "X'" + HexEncode(*bytes) + "'";
}

class RegistryCliTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_THAT(Registry({"init"}), Succeeds()); }

  // Registry runs `hallmark registry --db DB --registrar-key KEY args...`.
  ProcessResult Registry(const std::vector<std::string>& args, const std::string& input = {}) {
    std::vector<std::string> argv = {"registry", "--db", db_, "--registrar-key", key_};
    argv.insert(argv.end(), args.begin(), args.end());
    return Hallmark(argv, input);
  }

  // RegistryJson is Registry with --json.
  nlohmann::json RegistryJson(const std::vector<std::string>& args, int expect_exit = 0) {
    std::vector<std::string> argv = {"--json", "registry", "--db", db_, "--registrar-key", key_};
    argv.insert(argv.end(), args.begin(), args.end());
    ProcessResult r = Hallmark(argv);
    EXPECT_EQ(r.exit_code, expect_exit) << r.err;
    return Json(r);
  }

  // NewKey makes a P-256 key with openssl and returns the path of its public key (PEM).
  std::string NewKey(const std::string& name) {
    const std::string key = tmp_ / (name + ".key");
    const std::string pub = tmp_ / (name + ".pub");
    EXPECT_EQ(
        Openssl({"genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", key})
            .exit_code,
        0);
    EXPECT_EQ(Openssl({"pkey", "-in", key, "-pubout", "-out", pub}).exit_code, 0);
    return pub;
  }

  // AddDevice registers a fresh key with `serial` and returns its device ID.
  std::string AddDevice(const std::string& serial) {
    nlohmann::json j =
        RegistryJson({"add", "--pubkey", NewKey(serial), "--serial", serial, "--owner", "acme"});
    return j.value("device_id", "");
  }

  ProcessResult Sqlite(const std::string& sql) const { return RunCommand({"sqlite3", db_, sql}); }

  int64_t DeviceCount() { return RegistryJson({"list"})["count"].get<int64_t>(); }

  // Verify runs `registry verify` against the public key file written by init.
  ProcessResult Verify(const std::vector<std::string>& extra = {}) {
    std::vector<std::string> argv = {"--json",          "registry", "--db",  db_,
                                     "--registrar-pub", pub_,       "verify"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    return Hallmark(argv);
  }

  TempDir tmp_;
  const std::string db_ = tmp_ / "registry.db";
  const std::string key_ = tmp_ / "registrar.key";
  const std::string pub_ = tmp_ / "registrar.key.pub";
};

// --- init ---

TEST_F(RegistryCliTest, InitWritesAPrivateKeyOnlyItsOwnerCanReadAndAPublicKey) {
  struct stat st {};
  ASSERT_EQ(::stat(key_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_THAT(ReadText(key_), HasSubstr("BEGIN PRIVATE KEY"));
  EXPECT_THAT(ReadText(pub_), HasSubstr("BEGIN PUBLIC KEY"));
  ProcessResult text = Openssl({"pkey", "-pubin", "-in", pub_, "-noout", "-text"});
  EXPECT_THAT(text.out, HasSubstr("ED25519 Public-Key"));
  EXPECT_THAT(Verify(), Succeeds());
}

TEST_F(RegistryCliTest, InitRefusesToOverwriteAndLeavesEverythingAsItWas) {
  const std::string key = ReadText(key_);
  const std::string db = ReadText(db_);
  EXPECT_THAT(Registry({"init"}), FailsWith(6, HasSubstr("already exists")));
  EXPECT_EQ(ReadText(key_), key);
  EXPECT_EQ(ReadText(db_), db);
  // A new database with an existing key file is refused too, and creates nothing.
  EXPECT_THAT(Hallmark({"registry", "--db", tmp_ / "other.db", "--registrar-key", key_, "init"}),
              FailsWith(6, HasSubstr(key_)));
  EXPECT_FALSE(fs::exists(tmp_ / "other.db"));
}

TEST_F(RegistryCliTest, InitWithAPassphraseEncryptsTheKeyAndSigningNeedsIt) {
  const std::string pass = tmp_ / "pass";
  WriteText(pass, "correct horse\n");
  const std::string db = tmp_ / "enc.db";
  const std::string key = tmp_ / "enc.key";
  ASSERT_THAT(
      Hallmark({"registry", "--db", db, "--registrar-key", key, "--passphrase-file", pass, "init"}),
      Succeeds());
  EXPECT_THAT(ReadText(key), HasSubstr("ENCRYPTED PRIVATE KEY"));
  const std::string dev = NewKey("d");
  EXPECT_THAT(Hallmark({"registry", "--db", db, "--registrar-key", key, "add", "--pubkey", dev,
                        "--serial", "SN-1"}),
              FailsWith(6, HasSubstr("--passphrase-file")));
  EXPECT_THAT(Hallmark({"registry", "--db", db, "--registrar-key", key, "--passphrase-file", pass,
                        "add", "--pubkey", dev, "--serial", "SN-1"}),
              Succeeds());
}

TEST(RegistryCliInitTest, InitNeedsADatabaseAndAKeyPath) {
  TempDir tmp;
  EXPECT_THAT(Hallmark({"registry", "--registrar-key", tmp / "k", "init"}),
              FailsWith(3, HasSubstr("--db PATH")));
  EXPECT_FALSE(fs::exists(tmp / "k"));
}

TEST(RegistryCliInitTest, EnvironmentVariablesNameTheDatabaseAndTheKey) {
  TempDir tmp;
  const std::string db = "HALLMARK_REGISTRY_DB=" + (tmp / "env.db");
  const std::string key = "HALLMARK_REGISTRAR_KEY=" + (tmp / "env.key");
  ASSERT_THAT(RunCommand({"env", db, key, HALLMARK_BINARY, "registry", "init"}), Succeeds());
  EXPECT_TRUE(fs::exists(tmp / "env.db"));
  EXPECT_TRUE(fs::exists(tmp / "env.key"));
  ProcessResult list = RunCommand({"env", db, HALLMARK_BINARY, "--json", "registry", "list"});
  ASSERT_THAT(list, Succeeds());
  EXPECT_EQ(Json(list)["count"], 0);
}

// --- add, revoke, show, list, export ---

TEST_F(RegistryCliTest, AddTakesAPublicKeyACertificateOrACsrAndUsesTheSpkiHashAsId) {
  const std::string pub = NewKey("pub");
  nlohmann::json a = RegistryJson({"add", "--pubkey", pub, "--serial", "SN-1"});
  EXPECT_EQ(a["device_id"], OpensslDeviceId(pub, /*is_public=*/true));
  EXPECT_EQ(a["status"], "active");
  EXPECT_EQ(a["path"], "manual");
  EXPECT_EQ(a["seq"], 0);

  const std::string cert_key = tmp_ / "cert.key";
  const std::string cert = tmp_ / "cert.pem";
  ASSERT_EQ(Openssl({"req", "-x509", "-newkey", "ed25519", "-nodes", "-keyout", cert_key, "-subj",
                     "/CN=self-signed", "-days", "1", "-out", cert})
                .exit_code,
            0);
  nlohmann::json b = RegistryJson({"add", "--cert", cert, "--serial", "SN-2"});
  EXPECT_EQ(b["device_id"], OpensslDeviceId(cert_key, /*is_public=*/false));

  const std::string csr_key = tmp_ / "csr.key";
  const std::string csr = tmp_ / "req.csr";
  ASSERT_EQ(Openssl({"req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                     "-nodes", "-keyout", csr_key, "-subj", "/serialNumber=SN-3", "-out", csr})
                .exit_code,
            0);
  nlohmann::json c = RegistryJson({"add", "--csr", csr});
  EXPECT_EQ(c["device_id"], OpensslDeviceId(csr_key, /*is_public=*/false));
  EXPECT_EQ(c["serial"], "SN-3");
  EXPECT_EQ(c["seq"], 2);
  EXPECT_THAT(Verify(), Succeeds());
}

TEST_F(RegistryCliTest, AddRefusesWhatItCannotSignOrAlreadyHas) {
  const std::string pub = NewKey("d");
  ASSERT_THAT(Registry({"add", "--pubkey", pub, "--serial", "SN-1"}), Succeeds());
  EXPECT_THAT(Registry({"add", "--pubkey", pub, "--serial", "SN-1"}),
              FailsWith(6, HasSubstr("already registered")));
  EXPECT_THAT(Hallmark({"registry", "--db", db_, "add", "--pubkey", NewKey("e"), "--serial", "X"}),
              FailsWith(3, HasSubstr("--registrar-key")));
  EXPECT_THAT(Registry({"add", "--pubkey", NewKey("f")}), FailsWith(3, HasSubstr("--serial")));
  EXPECT_THAT(Registry({"add", "--serial", "X"}),
              FailsWith(3, HasSubstr("exactly one of --pubkey, --cert or --csr")));
  EXPECT_THAT(Registry({"add", "--pubkey", tmp_ / "missing.pem", "--serial", "X"}),
              FailsWith(4, HasSubstr("missing.pem")));
  EXPECT_THAT(Hallmark({"registry", "--db", tmp_ / "none.db", "--registrar-key", key_, "add",
                        "--pubkey", pub, "--serial", "SN-1"}),
              FailsWith(4, HasSubstr("registry init")));
  EXPECT_FALSE(fs::exists(tmp_ / "none.db"));
  EXPECT_EQ(DeviceCount(), 1);
}

TEST_F(RegistryCliTest, RevokeIsFinalAndShowsInShowListAndExport) {
  std::string a = AddDevice("SN-A");
  std::string b = AddDevice("SN-B");
  std::string upper = b;
  for (char& ch : upper) {
    ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  }
  ASSERT_THAT(Registry({"revoke", upper, "--reason", "stolen"}), Succeeds());
  EXPECT_THAT(Registry({"revoke", b}), FailsWith(6, HasSubstr("already revoked")));
  EXPECT_THAT(Registry({"revoke", std::string(64, 'f')}), FailsWith(4, HasSubstr("no device")));
  EXPECT_THAT(Registry({"revoke", "xyz"}), FailsWith(3, HasSubstr("not a device ID")));

  nlohmann::json shown = RegistryJson({"show", b, "--history"});
  EXPECT_EQ(shown["status"], "revoked");
  EXPECT_EQ(shown["reason"], "stolen");
  EXPECT_EQ(shown["verified_with"], key_ + ".pub");
  ASSERT_EQ(shown["history"].size(), 2u);
  EXPECT_EQ(shown["history"][0]["status"], "active");

  nlohmann::json revoked = RegistryJson({"list", "--status", "revoked"});
  ASSERT_EQ(revoked["count"], 1);
  EXPECT_EQ(revoked["devices"][0]["device_id"], b);
  EXPECT_EQ(RegistryJson({"list", "--status", "active"})["devices"][0]["device_id"], a);
  EXPECT_THAT(Registry({"list", "--status", "gone"}), FailsWith(3, HasSubstr("'gone'")));

  ProcessResult exported = Registry({"export"});
  ASSERT_THAT(exported, Succeeds());
  std::istringstream lines(exported.out);
  std::string line;
  int count = 0;
  while (std::getline(lines, line)) {
    nlohmann::json j = nlohmann::json::parse(line);
    EXPECT_TRUE(j["device_id"] == a || j["device_id"] == b);
    ++count;
  }
  EXPECT_EQ(count, 2);
  EXPECT_THAT(Registry({"show", std::string(64, 'f')}), FailsWith(4, HasSubstr("no device")));
}

// A third party can check an exported record with openssl alone, from docs/registry.md.
TEST_F(RegistryCliTest, ExportedSignaturesVerifyWithOpenssl) {
  AddDevice("SN-1");
  const std::string out = tmp_ / "export.jsonl";
  ASSERT_THAT(Registry({"export", "--out", out}), Succeeds());
  nlohmann::json r = nlohmann::json::parse(ReadText(out).substr(0, ReadText(out).find('\n')));
  std::string text = "hallmark-device-record/1\n";
  for (const char* field : {"device_id", "public_key", "status", "owner", "path", "serial",
                            "reason", "created_at", "updated_at", "seq", "signer"}) {
    const nlohmann::json& v = r[field];
    text += std::string(field) + "=" + (v.is_string() ? v.get<std::string>() : v.dump()) + "\n";
  }
  WriteText(tmp_ / "record.txt", text);
  auto sig = Base64Decode(r["signature"].get<std::string>());
  ASSERT_TRUE(sig.has_value());
  WriteText(tmp_ / "record.sig", std::string(sig->begin(), sig->end()));
  ProcessResult ok = Openssl({"pkeyutl", "-verify", "-pubin", "-inkey", pub_, "-rawin", "-in",
                              tmp_ / "record.txt", "-sigfile", tmp_ / "record.sig"});
  EXPECT_EQ(ok.exit_code, 0) << ok.out << ok.err;
  EXPECT_THAT(ok.out, HasSubstr("Signature Verified Successfully"));

  WriteText(tmp_ / "record.txt", text.replace(text.find("status=active"), 13, "status=revoked"));
  EXPECT_NE(Openssl({"pkeyutl", "-verify", "-pubin", "-inkey", pub_, "-rawin", "-in",
                     tmp_ / "record.txt", "-sigfile", tmp_ / "record.sig"})
                .exit_code,
            0);
  EXPECT_THAT(Registry({"export", "--out", out}), FailsWith(6, HasSubstr("already exists")));
}

// --- verify: attacks through plain SQL ---

// The fixture for attacks: a and c active, b added and then revoked (log entries 0..3).
class RegistryTamperTest : public RegistryCliTest {
 protected:
  void SetUp() override {
    RegistryCliTest::SetUp();
    a_ = AddDevice("SN-A");
    b_ = AddDevice("SN-B");
    c_ = AddDevice("SN-C");
    ASSERT_THAT(Registry({"revoke", b_, "--reason", "stolen"}), Succeeds());
    b_history_ = RegistryJson({"show", b_, "--history"})["history"];
    ASSERT_THAT(Verify(), Succeeds());
  }

  std::string a_, b_, c_;
  nlohmann::json b_history_;
};

struct CliAttack {
  std::string test_name;
  std::function<std::string(RegistryTamperTest&)> sql;
  std::string kind;
  bool writes_refused;  // registrar commands must refuse to sign on top of this
};

void PrintTo(const CliAttack& c, std::ostream* os) { *os << c.test_name; }

class RegistryCliAttackTest : public RegistryTamperTest,
                              public ::testing::WithParamInterface<CliAttack> {
 public:
  std::string a() const { return a_; }
  std::string b() const { return b_; }
  const nlohmann::json& b_history() const { return b_history_; }
  std::string NewDeviceId() { return OpensslDeviceId(NewKey("intruder"), /*is_public=*/true); }
  std::string IntruderPub() const { return tmp_ / "intruder.pub"; }
};

RegistryCliAttackTest& Fixture(RegistryTamperTest& t) {
  return static_cast<RegistryCliAttackTest&>(t);
}

TEST_P(RegistryCliAttackTest, IsReportedByVerifyWithExitCode8) {
  const CliAttack& attack = GetParam();
  ProcessResult sql = Sqlite(attack.sql(*this));
  ASSERT_THAT(sql, Succeeds());
  ProcessResult r = Verify();
  EXPECT_EQ(r.exit_code, 8) << r.out << r.err;
  EXPECT_THAT(r.err, HasSubstr("failed verification"));
  nlohmann::json report = Json(r);
  EXPECT_EQ(report["clean"], false);
  std::vector<std::string> kinds;
  for (const nlohmann::json& f : report["findings"]) {
    kinds.push_back(f["kind"].get<std::string>());
  }
  EXPECT_THAT(kinds, ::testing::Contains(attack.kind)) << r.out;
  // The human report names the category too.
  EXPECT_THAT(Hallmark({"registry", "--db", db_, "--registrar-pub", pub_, "verify"}).out,
              HasSubstr(attack.kind));
  if (attack.writes_refused) {
    EXPECT_THAT(Registry({"add", "--pubkey", NewKey("late"), "--serial", "SN-LATE"}),
                FailsWith(8, HasSubstr("registry verify")));
  }
}

INSTANTIATE_TEST_SUITE_P(
    Attacks, RegistryCliAttackTest,
    ::testing::ValuesIn(std::vector<CliAttack>{
        {"InsertedRowReusingASignature",
         [](RegistryTamperTest& fx) {
           auto& f = Fixture(fx);
           std::string id = f.NewDeviceId();
           std::string spki = ReadText(f.IntruderPub() + ".spki.der");
           return "INSERT INTO devices SELECT '" + id + "', X'" + HexEncode(AsBytes(spki)) +
                  "', 'active', owner, path, 'SN-EVIL', reason, created_at, updated_at, seq, "
                  "signer, signature FROM devices WHERE device_id = '" +
                  f.a() + "'";
         },
         "inserted-row", false},
        {"RevokedRowRolledBackToItsOlderSignedRecord",
         [](RegistryTamperTest& fx) {
           auto& f = Fixture(fx);
           const nlohmann::json& old = f.b_history()[0];
           return "UPDATE devices SET status = 'active', reason = '', updated_at = " +
                  old["updated_at"].dump() + ", seq = " + old["seq"].dump() +
                  ", signature = " + BlobSql(old["signature"].get<std::string>()) +
                  " WHERE device_id = '" + f.b() + "'";
         },
         "rolled-back-row", false},
        {"RevokedRowFlippedToActive",
         [](RegistryTamperTest& fx) {
           return "UPDATE devices SET status = 'active' WHERE device_id = '" + Fixture(fx).b() +
                  "'";
         },
         "altered-row", false},
        {"OwnerAltered",
         [](RegistryTamperTest& fx) {
           return "UPDATE devices SET owner = 'mallory' WHERE device_id = '" + Fixture(fx).a() +
                  "'";
         },
         "altered-row", false},
        {"RowDeleted",
         [](RegistryTamperTest& fx) {
           return "DELETE FROM devices WHERE device_id = '" + Fixture(fx).a() + "'";
         },
         "deleted-row", false},
        {"LogRowDeleted",
         [](RegistryTamperTest&) { return std::string("DELETE FROM log WHERE seq = 3"); },
         "broken-log", true},
        {"LogRowAltered",
         [](RegistryTamperTest&) {
           return std::string(
               "UPDATE log SET entry = CAST(replace(CAST(entry AS TEXT), 'SN-A', 'SN-Z') AS "
               "BLOB) WHERE seq = 0");
         },
         "broken-log", false},
        {"LogRowInserted",
         [](RegistryTamperTest&) {
           return std::string("INSERT INTO log SELECT 4, entry, signature FROM log WHERE seq = 0");
         },
         "broken-log", true},
        {"NewestHeadReplacedByAnOlderOne",
         [](RegistryTamperTest&) {
           return std::string(
               "DELETE FROM tree_heads WHERE id = (SELECT MAX(id) FROM tree_heads); "
               "INSERT INTO tree_heads(tree_size, root_hash, timestamp, signer, signature, "
               "compact_range) SELECT tree_size, root_hash, timestamp, signer, signature, "
               "compact_range FROM tree_heads WHERE tree_size = 1");
         },
         "rolled-back-head", true},
        {"HeadForged",
         [](RegistryTamperTest&) {
           return std::string(
               "UPDATE tree_heads SET timestamp = timestamp + 1 WHERE id = (SELECT MAX(id) "
               "FROM tree_heads)");
         },
         "broken-head", true},
    }),
    CaseName<CliAttack>);

TEST_F(RegistryCliTest, AWholeDatabaseRollbackIsFoundOnlyWithAKeptHead) {
  // The attacker keeps a copy from before the revocation and later puts it back: everything in
  // it is genuine, so only a tree head saved after the revocation can tell.
  std::string id = AddDevice("SN-R");
  const std::string copy = tmp_ / "copy.db";
  fs::copy_file(db_, copy);
  ASSERT_THAT(Registry({"revoke", id}), Succeeds());
  ProcessResult head = Registry({"head"});
  ASSERT_THAT(head, Succeeds());
  WriteText(tmp_ / "head.json", head.out);

  fs::copy_file(copy, db_, fs::copy_options::overwrite_existing);
  EXPECT_THAT(Verify(), Succeeds());
  ProcessResult r = Verify({"--trusted-head", tmp_ / "head.json"});
  EXPECT_EQ(r.exit_code, 8) << r.out;
  EXPECT_EQ(Json(r)["findings"][0]["kind"], "rolled-back-head");
}

// --- import ---

class RegistryImportTest : public RegistryCliTest {
 protected:
  void SetUp() override {
    RegistryCliTest::SetUp();
    auto factory = PrivateKey::Generate(KeyType::kP256);
    ASSERT_TRUE(factory.has_value());
    factory_.emplace(std::move(*factory));
    WriteText(factory_pub_, factory_->Public().ToPem());
  }

  // Manifest returns `n` signed lines for fresh Ed25519 and P-256 device keys.
  std::string Manifest(int n, const std::string& prefix = "SN-") {
    std::string out;
    for (int i = 0; i < n; ++i) {
      auto key = PrivateKey::Generate(i % 2 == 0 ? KeyType::kP256 : KeyType::kEd25519);
      out += ManifestLine(key->Public(), prefix + std::to_string(i), *factory_) + "\n";
    }
    return out;
  }

  ProcessResult Import(const std::string& manifest_path, const std::vector<std::string>& extra = {},
                       const std::string& input = {}) {
    std::vector<std::string> args = {"--json",          "registry",  "--db",   db_,
                                     "--registrar-key", key_,        "import", manifest_path,
                                     "--factory-key",   factory_pub_};
    args.insert(args.end(), extra.begin(), extra.end());
    return Hallmark(args, input);
  }

  std::optional<PrivateKey> factory_;
  const std::string factory_pub_ = tmp_ / "factory.pub";
};

TEST_F(RegistryImportTest, ImportsEveryLineAndIsIdempotent) {
  const std::string manifest = tmp_ / "manifest.jsonl";
  WriteText(manifest, Manifest(20));
  ProcessResult r = Import(manifest, {"--owner", "acme"});
  ASSERT_THAT(r, Succeeds());
  EXPECT_EQ(Json(r)["imported"], 20);
  EXPECT_EQ(Json(r)["head"]["tree_size"], 20);
  // Not a terminal: no progress output.
  EXPECT_THAT(r.err, Not(HasSubstr("lines/s")));
  nlohmann::json list = RegistryJson({"list"});
  EXPECT_EQ(list["count"], 20);
  EXPECT_EQ(list["devices"][0]["path"], "extract");
  EXPECT_EQ(list["devices"][0]["owner"], "acme");

  ProcessResult again = Import(manifest, {"--owner", "acme"});
  ASSERT_THAT(again, Succeeds());
  EXPECT_EQ(Json(again)["imported"], 0);
  EXPECT_EQ(Json(again)["skipped"], 20);
  EXPECT_THAT(Verify(), Succeeds());
}

TEST_F(RegistryImportTest, ABadLineImportsNothingAndIsNamedByLineNumber) {
  std::string lines = Manifest(10);
  // Line 7 claims another serial than the factory signed.
  size_t at = lines.find("\"SN-6\"");
  lines.replace(at, 6, "\"SN-X\"");
  WriteText(tmp_ / "bad.jsonl", lines);
  EXPECT_THAT(Import(tmp_ / "bad.jsonl"), FailsWith(5, HasSubstr("manifest line 7")));
  WriteText(tmp_ / "garbage.jsonl", Manifest(3) + "{not json\n");
  EXPECT_THAT(Import(tmp_ / "garbage.jsonl"),
              FailsWith(3, HasSubstr("manifest line 4: not a JSON object")));
  EXPECT_EQ(DeviceCount(), 0);
}

TEST_F(RegistryImportTest, ALineFromAnotherFactoryIsRefused) {
  auto other = PrivateKey::Generate(KeyType::kEd25519);
  WriteText(tmp_ / "m.jsonl",
            Manifest(2) + ManifestLine(other->Public(), "SN-other", *other) + "\n");
  EXPECT_THAT(Import(tmp_ / "m.jsonl"),
              FailsWith(5, HasSubstr("manifest line 3: signature over serial 'SN-other'")));
  EXPECT_EQ(DeviceCount(), 0);
}

TEST_F(RegistryImportTest, ReadsStandardInputAndNeedsTheFactoryKey) {
  ProcessResult r = Import("-", {}, Manifest(3));
  ASSERT_THAT(r, Succeeds());
  EXPECT_EQ(Json(r)["imported"], 3);
  EXPECT_THAT(Registry({"import", tmp_ / "none.jsonl", "--factory-key", factory_pub_}),
              FailsWith(4, HasSubstr("none.jsonl")));
  EXPECT_THAT(Registry({"import", "-"}), FailsWith(2, HasSubstr("--factory-key")));
}

TEST_F(RegistryImportTest, ShowsProgressOnlyOnATerminal) {
  const std::string manifest = tmp_ / "m.jsonl";
  WriteText(manifest, Manifest(3));
  // `script` runs the command on a pseudo-terminal (util-linux; not ours).
  std::string command = std::string(HALLMARK_BINARY) + " registry --db " + db_ +
                        " --registrar-key " + key_ + " import " + manifest + " --factory-key " +
                        factory_pub_;
  ProcessResult r = RunCommand({"script", "-qec", command, "/dev/null"});
  ASSERT_THAT(r, Succeeds());
  EXPECT_THAT(r.out, HasSubstr("3 lines, 3 new, 0 skipped"));
  EXPECT_THAT(r.out, HasSubstr("lines/s"));
}

// --- help ---

TEST(RegistryCliHelpTest, EveryCommandHasHelp) {
  ProcessResult help = Hallmark({"registry", "--help"});
  ASSERT_THAT(help, Succeeds());
  for (const char* cmd :
       {"init", "add", "revoke", "show", "list", "export", "verify", "head", "import"}) {
    EXPECT_THAT(help.out, HasSubstr(cmd));
    EXPECT_THAT(Hallmark({"registry", cmd, "--help"}), Succeeds()) << cmd;
  }
  EXPECT_THAT(help.out, HasSubstr("HALLMARK_REGISTRY_DB"));
}

}  // namespace
}  // namespace hallmark::testing
