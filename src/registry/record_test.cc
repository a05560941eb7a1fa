#include "registry/record.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <functional>
#include <ostream>

#include "core/encoding.h"
#include "registry/testing/registry_fixture.h"
#include "registry/tree_head.h"
#include "testing/matchers.h"

namespace hallmark::registry {
namespace {

using ::hallmark::testing::HasError;
using ::hallmark::testing::IsOk;
using ::testing::HasSubstr;

DeviceRecord SampleRecord(const PublicKey& key) {
  DeviceRecord r;
  r.device_id = key.DeviceId();
  r.public_key = key.SpkiDer();
  r.status = DeviceStatus::kActive;
  r.owner = "acme";
  r.path = ProvisioningPath::kExtract;
  r.serial = "SN-0001";
  r.reason = "";
  r.created_at = 1700000000;
  r.updated_at = 1700000001;
  r.seq = 42;
  r.signer = "registrar";
  return r;
}

TEST(RecordTest, CanonicalEncodingIsTheDocumentedText) {
  PublicKey key = testing::NewDeviceKey();
  DeviceRecord r = SampleRecord(key);
  ASSERT_OK_AND_ASSIGN(std::string text, CanonicalRecord(r));
  EXPECT_EQ(text,
            "hallmark-device-record/1\n"
            "device_id=" +
                key.DeviceId() + "\n" + "public_key=" + Base64Encode(key.SpkiDer()) + "\n" +
                "status=active\n"
                "owner=acme\n"
                "path=extract\n"
                "serial=SN-0001\n"
                "reason=\n"
                "created_at=1700000000\n"
                "updated_at=1700000001\n"
                "seq=42\n"
                "signer=registrar\n");
  ASSERT_OK_AND_ASSIGN(std::string_view id, EntryDeviceId(AsBytes(text)));
  EXPECT_EQ(id, key.DeviceId());
}

TEST(RecordTest, ParseRoundTripsEveryField) {
  DeviceRecord r = SampleRecord(testing::NewDeviceKey(KeyType::kEd25519));
  r.status = DeviceStatus::kRevoked;
  r.reason = "key compromise: Grüße";
  r.path = ProvisioningPath::kManual;
  r.created_at = -5;
  ASSERT_OK_AND_ASSIGN(std::string text, CanonicalRecord(r));
  ASSERT_OK_AND_ASSIGN(DeviceRecord parsed, ParseCanonicalRecord(AsBytes(text)));
  EXPECT_EQ(parsed, r);
}

struct BadFieldCase {
  std::string test_name;
  std::function<void(DeviceRecord*)> mutate;
  std::string message;
};

void PrintTo(const BadFieldCase& c, std::ostream* os) { *os << c.test_name; }

class BadFieldTest : public ::testing::TestWithParam<BadFieldCase> {};

TEST_P(BadFieldTest, IsRefusedWithANamedReason) {
  DeviceRecord r = SampleRecord(testing::NewDeviceKey());
  GetParam().mutate(&r);
  EXPECT_THAT(CanonicalRecord(r), HasError(Code::kInvalidArgument, HasSubstr(GetParam().message)));
}

INSTANTIATE_TEST_SUITE_P(
    Fields, BadFieldTest,
    ::testing::ValuesIn(std::vector<BadFieldCase>{
        {"NewlineInOwner", [](DeviceRecord* r) { r->owner = "acme\nstatus=active"; },
         "owner contains control character 0x0a"},
        {"NewlineInSerial", [](DeviceRecord* r) { r->serial = "SN\n1"; },
         "serial contains control character"},
        {"CarriageReturnInReason", [](DeviceRecord* r) { r->reason = "x\ry"; },
         "reason contains control character 0x0d"},
        {"NulInSerial", [](DeviceRecord* r) { r->serial = std::string("a\0b", 3); },
         "serial contains control character 0x00"},
        {"DeleteCharacterInOwner", [](DeviceRecord* r) { r->owner = "a\x7f"; },
         "control character 0x7f"},
        {"InvalidUtf8InOwner", [](DeviceRecord* r) { r->owner = "\xc3\x28"; },
         "owner is not valid UTF-8"},
        {"OverlongUtf8InSerial", [](DeviceRecord* r) { r->serial = "\xc0\xaf"; },
         "serial is not valid UTF-8"},
        {"SerialTooLong", [](DeviceRecord* r) { r->serial = std::string(129, 'x'); },
         "serial is 129 bytes long"},
        {"DeviceIdOfAnotherKey",
         [](DeviceRecord* r) { r->device_id = testing::NewDeviceKey().DeviceId(); },
         "is not the SHA-256 of its public key"},
        {"NoPublicKey", [](DeviceRecord* r) { r->public_key.clear(); }, "no public key"},
        {"NoSigner", [](DeviceRecord* r) { r->signer.clear(); }, "no signer"},
    }),
    [](const ::testing::TestParamInfo<BadFieldCase>& row) { return row.param.test_name; });

TEST(RecordTest, ParseRefusesAnythingButTheCanonicalForm) {
  DeviceRecord r = SampleRecord(testing::NewDeviceKey());
  ASSERT_OK_AND_ASSIGN(std::string text, CanonicalRecord(r));
  auto replace = [&text](const std::string& from, const std::string& to) {
    std::string t = text;
    t.replace(t.find(from), from.size(), to);
    return t;
  };
  for (const std::string& bad : {
           replace("seq=42", "seq=042"),
           replace("seq=42\n", "seq=42\nextra=1\n"),
           replace("status=active", "status=Active"),
           replace("hallmark-device-record/1", "hallmark-device-record/2"),
           replace("owner=acme\npath=extract\n", "path=extract\nowner=acme\n"),
           replace("device_id=" + r.device_id, "device_id=" + r.device_id.substr(0, 63) + "A"),
           text.substr(0, text.size() - 1),
           text + "\n",
       }) {
    EXPECT_THAT(ParseCanonicalRecord(AsBytes(bad)),
                HasError(Code::kInvalidArgument, HasSubstr("not a canonical device record")))
        << bad;
  }
  EXPECT_THAT(ParseCanonicalRecord(AsBytes(text)), IsOk());
}

TEST(RecordTest, SignatureCoversEveryFieldIncludingSeq) {
  auto registrar = PrivateKey::Generate(KeyType::kEd25519);
  ASSERT_THAT(registrar, IsOk());
  DeviceRecord r = SampleRecord(testing::NewDeviceKey());
  ASSERT_THAT(SignRecord(*registrar, &r), IsOk());
  EXPECT_THAT(VerifyRecord(registrar->Public(), r), IsOk());

  std::vector<std::function<void(DeviceRecord*)>> mutations = {
      [](DeviceRecord* x) { x->status = DeviceStatus::kRevoked; },
      [](DeviceRecord* x) { x->owner = "evil"; },
      [](DeviceRecord* x) { x->serial = "SN-0002"; },
      [](DeviceRecord* x) { x->reason = "r"; },
      [](DeviceRecord* x) { x->path = ProvisioningPath::kBatch; },
      [](DeviceRecord* x) { x->created_at += 1; },
      [](DeviceRecord* x) { x->updated_at += 1; },
      [](DeviceRecord* x) { x->seq += 1; },
      [](DeviceRecord* x) { x->signer = "enrollment:b1"; },
  };
  for (size_t i = 0; i < mutations.size(); ++i) {
    DeviceRecord m = r;
    mutations[i](&m);
    EXPECT_THAT(VerifyRecord(registrar->Public(), m),
                HasError(Code::kUnauthenticated, HasSubstr("does not verify")))
        << "mutation " << i;
  }
  auto other = PrivateKey::Generate(KeyType::kEd25519);
  EXPECT_THAT(VerifyRecord(other->Public(), r),
              HasError(Code::kUnauthenticated, HasSubstr(r.device_id)));
}

TEST(RecordTest, DeviceIdsAreNormalisedToLowercase) {
  std::string id(64, 'a');
  ASSERT_OK_AND_ASSIGN(std::string upper, NormalizeDeviceId(std::string(64, 'A')));
  EXPECT_EQ(upper, id);
  EXPECT_TRUE(IsDeviceId(id));
  EXPECT_FALSE(IsDeviceId(std::string(64, 'A')));
  EXPECT_FALSE(IsDeviceId(std::string(63, 'a')));
  EXPECT_THAT(NormalizeDeviceId("abc"), HasError(Code::kInvalidArgument, HasSubstr("'abc'")));
  EXPECT_THAT(NormalizeDeviceId(std::string(64, 'g')),
              HasError(Code::kInvalidArgument, HasSubstr("64 hex digits")));
}

TEST(RecordTest, StatusAndPathNamesRoundTrip) {
  for (DeviceStatus s : {DeviceStatus::kPending, DeviceStatus::kActive, DeviceStatus::kRevoked}) {
    EXPECT_EQ(*ParseDeviceStatus(DeviceStatusName(s)), s);
  }
  for (ProvisioningPath p :
       {ProvisioningPath::kExtract, ProvisioningPath::kInject, ProvisioningPath::kBatch,
        ProvisioningPath::kEngineer, ProvisioningPath::kManual}) {
    EXPECT_EQ(*ParseProvisioningPath(ProvisioningPathName(p)), p);
  }
  EXPECT_THAT(ParseDeviceStatus("gone"), HasError(Code::kInvalidArgument, HasSubstr("'gone'")));
}

// --- tree heads ---

TEST(TreeHeadTest, CanonicalTextIsTheDocumentedFormatAndParsesBack) {
  TreeHead h;
  h.tree_size = 7;
  h.root_hash.fill(0xab);
  h.timestamp = 1700000000;
  std::string text = CanonicalTreeHead(h);
  EXPECT_EQ(text,
            "hallmark-tree-head/1\ntree_size=7\n"
            "root_hash=abababababababababababababababababababababababababababababababab\n"
            "timestamp=1700000000\n");
  ASSERT_OK_AND_ASSIGN(TreeHead parsed, ParseCanonicalTreeHead(text));
  EXPECT_EQ(parsed, h);
  EXPECT_THAT(ParseCanonicalTreeHead("hallmark-tree-head/1\ntree_size=07\nroot_hash=" +
                                     HashHex(h.root_hash) + "\ntimestamp=1\n"),
              HasError(Code::kInvalidArgument, HasSubstr("not a canonical tree head")));
}

TEST(TreeHeadTest, SignatureCoversSizeRootAndTimestamp) {
  auto key = PrivateKey::Generate(KeyType::kEd25519);
  ASSERT_THAT(key, IsOk());
  TreeHead h;
  h.tree_size = 3;
  h.root_hash = EmptyTreeHash();
  h.timestamp = 10;
  ASSERT_THAT(SignTreeHead(*key, &h), IsOk());
  EXPECT_THAT(VerifyTreeHead(key->Public(), h), IsOk());
  for (int i = 0; i < 3; ++i) {
    TreeHead m = h;
    if (i == 0) {
      m.tree_size = 2;
    } else if (i == 1) {
      m.root_hash[0] ^= 1;
    } else {
      m.timestamp = 11;
    }
    EXPECT_THAT(VerifyTreeHead(key->Public(), m),
                HasError(Code::kUnauthenticated, HasSubstr("tree head")));
  }
}

}  // namespace
}  // namespace hallmark::registry
