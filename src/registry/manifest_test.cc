#include "registry/manifest.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <functional>
#include <ostream>
#include <sstream>

#include "core/encoding.h"
#include "registry/record.h"
#include "registry/testing/registry_fixture.h"
#include "testing/matchers.h"

namespace hallmark::registry {
namespace {

using ::hallmark::testing::HasError;
using ::hallmark::testing::IsOk;
using ::testing::HasSubstr;
using testing::MakeManifest;
using testing::ManifestEntry;
using testing::NewDeviceKey;
using testing::QueryInt;

TEST(ManifestTest, SigningTextIsTheDocumentedFormat) {
  EXPECT_EQ(ManifestSigningText("MFkw", "SN-1"),
            "hallmark-manifest-line/1\npublic_key=MFkw\nserial=SN-1\n");
}

TEST(ManifestTest, LinesFromP256AndEd25519FactoriesParse) {
  for (KeyType factory_type : {KeyType::kP256, KeyType::kEd25519}) {
    auto factory = PrivateKey::Generate(factory_type);
    PublicKey device = NewDeviceKey(KeyType::kEd25519);
    ASSERT_OK_AND_ASSIGN(std::string line, FormatManifestLine(device, "SN-1", *factory));
    EXPECT_THAT(line, HasSubstr("\"public_key\":\"" + Base64Encode(device.SpkiDer()) + "\""));
    ASSERT_OK_AND_ASSIGN(ManifestIdentity id, ParseManifestLine(line, factory->Public()));
    EXPECT_EQ(id.key, device);
    EXPECT_EQ(id.serial, "SN-1");
  }
}

struct BadLineCase {
  std::string test_name;
  std::function<std::string(const std::string& key_b64, const std::string& sig_b64)> line;
  Code code;
  std::string message;
};

void PrintTo(const BadLineCase& c, std::ostream* os) { *os << c.test_name; }

class BadManifestLineTest : public ::testing::TestWithParam<BadLineCase> {};

TEST_P(BadManifestLineTest, IsRefusedWithAReason) {
  auto factory = PrivateKey::Generate(KeyType::kP256);
  PublicKey device = NewDeviceKey();
  std::string key_b64 = Base64Encode(device.SpkiDer());
  auto sig = factory->Sign(AsBytes(ManifestSigningText(key_b64, "SN-1")));
  std::string line = GetParam().line(key_b64, Base64Encode(*sig));
  EXPECT_THAT(ParseManifestLine(line, factory->Public()),
              HasError(GetParam().code, HasSubstr(GetParam().message)));
}

std::string Line(const std::string& key, const std::string& serial, const std::string& sig) {
  return R"({"public_key": ")" + key + R"(", "serial": ")" + serial + R"(", "signature": ")" + sig +
         R"("})";
}

INSTANTIATE_TEST_SUITE_P(
    Lines, BadManifestLineTest,
    ::testing::ValuesIn(std::vector<BadLineCase>{
        {"NotJson", [](auto&, auto&) { return std::string("public_key=abc"); },
         Code::kInvalidArgument, "not a JSON object"},
        {"JsonArray", [](auto&, auto&) { return std::string("[1, 2]"); }, Code::kInvalidArgument,
         "not a JSON object"},
        {"MissingSignature",
         [](const std::string& k, auto&) {
           return R"({"public_key": ")" + k + R"(", "serial": "SN-1"})";
         },
         Code::kInvalidArgument, "\"signature\" is missing"},
        {"SerialNotAString",
         [](const std::string& k, const std::string& s) {
           return R"({"public_key": ")" + k + R"(", "serial": 1, "signature": ")" + s + "\"}";
         },
         Code::kInvalidArgument, "\"serial\" is missing or not a string"},
        {"KeyNotBase64", [](auto&, const std::string& s) { return Line("!!!", "SN-1", s); },
         Code::kInvalidArgument, "public_key is not Base64"},
        {"KeyNotAnSpki", [](auto&, const std::string& s) { return Line("AAAA", "SN-1", s); },
         Code::kInvalidArgument, "public_key"},
        {"SerialWithNewline",
         [](const std::string& k, const std::string& s) { return Line(k, "SN\\n1", s); },
         Code::kInvalidArgument, "serial contains control character 0x0a"},
        {"SerialChangedAfterSigning",
         [](const std::string& k, const std::string& s) { return Line(k, "SN-2", s); },
         Code::kUnauthenticated, "serial 'SN-2' does not verify with the factory key"},
        {"KeySwappedAfterSigning",
         [](auto&, const std::string& s) {
           return Line(Base64Encode(NewDeviceKey().SpkiDer()), "SN-1", s);
         },
         Code::kUnauthenticated, "does not verify"},
        {"SignatureNotBase64", [](const std::string& k, auto&) { return Line(k, "SN-1", "%%"); },
         Code::kInvalidArgument, "signature is not Base64"},
    }),
    [](const ::testing::TestParamInfo<BadLineCase>& row) { return row.param.test_name; });

// --- Registry::Import ---

class ImportTest : public testing::RegistryTest {
 protected:
  void SetUp() override {
    RegistryTest::SetUp();
    factory_.emplace(std::move(*PrivateKey::Generate(KeyType::kP256)));
  }

  std::vector<ManifestEntry> Entries(int n, const std::string& prefix = "SN-") {
    std::vector<ManifestEntry> out;
    for (int i = 0; i < n; ++i) {
      out.push_back({NewDeviceKey(i % 2 == 0 ? KeyType::kP256 : KeyType::kEd25519),
                     prefix + std::to_string(i)});
    }
    return out;
  }

  Result<ImportSummary> Import(const std::string& manifest, const std::string& owner = "acme") {
    std::istringstream in(manifest);
    ImportOptions options;
    options.owner = owner;
    return registry_->Import(*registrar_, in, factory_->Public(), options);
  }

  int64_t LogRows() const { return QueryInt(db_path_, "SELECT COUNT(*) FROM log"); }
  int64_t HeadRows() const { return QueryInt(db_path_, "SELECT COUNT(*) FROM tree_heads"); }

  std::optional<PrivateKey> factory_;
};

TEST_F(ImportTest, ImportsEveryLineInOneSignedHead) {
  auto entries = Entries(10);
  ASSERT_OK_AND_ASSIGN(ImportSummary s, Import(MakeManifest(*factory_, entries)));
  EXPECT_EQ(s.counts.lines, 10u);
  EXPECT_EQ(s.counts.imported, 10u);
  EXPECT_EQ(s.counts.skipped, 0u);
  EXPECT_EQ(s.head.tree_size, 10u);
  EXPECT_EQ(HeadRows(), 2);
  ASSERT_OK_AND_ASSIGN(DeviceRecord r, registry_->Find(entries[3].key.DeviceId()));
  EXPECT_EQ(r.serial, "SN-3");
  EXPECT_EQ(r.owner, "acme");
  EXPECT_EQ(r.path, ProvisioningPath::kExtract);
  EXPECT_EQ(r.status, DeviceStatus::kActive);
  EXPECT_THAT(registry_->CheckDevice(r, registrar_->Public()), IsOk());
  ASSERT_OK_AND_ASSIGN(VerifyReport report, registry_->Verify(registrar_->Public()));
  EXPECT_TRUE(report.clean());
}

TEST_F(ImportTest, ABadLineImportsNothingAndIsNamedByNumber) {
  auto entries = Entries(5);
  std::string manifest = MakeManifest(*factory_, entries);
  // Line 4's serial no longer matches its signature.
  size_t at = manifest.find("SN-3");
  manifest.replace(at, 4, "SN-9");
  EXPECT_THAT(Import(manifest),
              HasError(Code::kUnauthenticated, HasSubstr("manifest line 4: signature over serial "
                                                         "'SN-9' does not verify")));
  EXPECT_EQ(LogRows(), 0);
  EXPECT_EQ(HeadRows(), 1);
  EXPECT_THAT(Import(MakeManifest(*factory_, entries) + "garbage\n"),
              HasError(Code::kInvalidArgument, HasSubstr("manifest line 6: not a JSON object")));
  EXPECT_EQ(LogRows(), 0);
}

TEST_F(ImportTest, ALineSignedByAnotherFactoryIsRefused) {
  auto other = PrivateKey::Generate(KeyType::kEd25519);
  std::string manifest = MakeManifest(*factory_, Entries(2)) + MakeManifest(*other, Entries(1));
  EXPECT_THAT(Import(manifest), HasError(Code::kUnauthenticated, HasSubstr("manifest line 3")));
  EXPECT_EQ(LogRows(), 0);
}

TEST_F(ImportTest, ReRunningIsIdempotentAndWritesNothing) {
  std::string manifest = MakeManifest(*factory_, Entries(6));
  ASSERT_THAT(Import(manifest), IsOk());
  ASSERT_OK_AND_ASSIGN(ImportSummary again, Import(manifest));
  EXPECT_EQ(again.counts.imported, 0u);
  EXPECT_EQ(again.counts.skipped, 6u);
  EXPECT_EQ(again.head.tree_size, 6u);
  EXPECT_EQ(LogRows(), 6);
  EXPECT_EQ(HeadRows(), 2);
}

TEST_F(ImportTest, DuplicatesWithinAManifestAreSkippedAndBlankLinesIgnored) {
  auto entries = Entries(3);
  std::string manifest = MakeManifest(*factory_, entries);
  std::string crlf = manifest;
  for (size_t p = crlf.find('\n'); p != std::string::npos; p = crlf.find('\n', p + 2)) {
    crlf.replace(p, 1, "\r\n");
  }
  ASSERT_OK_AND_ASSIGN(ImportSummary s, Import(crlf + "\n  \n" + manifest));
  EXPECT_EQ(s.counts.lines, 8u);
  EXPECT_EQ(s.counts.imported, 3u);
  EXPECT_EQ(s.counts.skipped, 3u);
}

TEST_F(ImportTest, NeverChangesARegisteredDevice) {
  auto entries = Entries(2);
  ASSERT_THAT(Import(MakeManifest(*factory_, entries)), IsOk());
  // Same key, another serial.
  std::vector<ManifestEntry> changed = {{entries[1].key, "SN-other"}};
  EXPECT_THAT(Import(MakeManifest(*factory_, changed)),
              HasError(Code::kAlreadyExists,
                       HasSubstr("manifest line 1: device " + entries[1].key.DeviceId() +
                                 " is already registered with serial 'SN-1'")));
  // Same line, another owner.
  EXPECT_THAT(Import(MakeManifest(*factory_, entries), "globex"),
              HasError(Code::kAlreadyExists, HasSubstr("owner 'acme'")));
  // A revoked device is not revived by re-importing it.
  Revoke(entries[0].key.DeviceId());
  EXPECT_THAT(Import(MakeManifest(*factory_, entries)),
              HasError(Code::kAlreadyExists, HasSubstr("status revoked")));
  EXPECT_EQ(LogRows(), 3);
}

TEST_F(ImportTest, AnOverlongLineIsRefusedByNumber) {
  std::string manifest = MakeManifest(*factory_, Entries(1)) + std::string(20000, 'x') + "\n";
  EXPECT_THAT(Import(manifest),
              HasError(Code::kInvalidArgument, HasSubstr("line 2 is longer than 16384 bytes")));
  EXPECT_EQ(LogRows(), 0);
}

TEST_F(ImportTest, ReportsProgress) {
  std::string manifest = MakeManifest(*factory_, Entries(5));
  std::istringstream in(manifest);
  ImportOptions options;
  options.progress_every = 2;
  std::vector<uint64_t> seen;
  options.progress = [&seen](const ImportProgress& p) { seen.push_back(p.lines); };
  ASSERT_THAT(registry_->Import(*registrar_, in, factory_->Public(), options), IsOk());
  EXPECT_EQ(seen, (std::vector<uint64_t>{2, 4, 5}));
}

TEST_F(ImportTest, EmptyManifestChangesNothing) {
  ASSERT_OK_AND_ASSIGN(ImportSummary s, Import(""));
  EXPECT_EQ(s.counts.lines, 0u);
  EXPECT_EQ(HeadRows(), 1);
}

}  // namespace
}  // namespace hallmark::registry
