#include "core/kdf.h"

#include <string>

#include "testing/matchers.h"

namespace hallmark {
namespace {

Bytes Hex(const std::string& hex) { return *HexDecode(hex); }

// RFC 5869 appendix A.1 (basic test case with SHA-256).
TEST(HkdfSha256Test, MatchesRfc5869TestCase1) {
  Bytes ikm(22, 0x0b);
  ASSERT_OK_AND_ASSIGN(SecretBytes okm, HkdfSha256(ikm, Hex("000102030405060708090a0b0c"),
                                                   Hex("f0f1f2f3f4f5f6f7f8f9"), 42));
  EXPECT_EQ(HexEncode(okm.bytes(SecretAccess::Grant())),
            "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865");
}

// RFC 5869 appendix A.3: zero-length salt and info.
TEST(HkdfSha256Test, EmptySaltAndInfoMatchRfc5869TestCase3) {
  Bytes ikm(22, 0x0b);
  ASSERT_OK_AND_ASSIGN(SecretBytes okm, HkdfSha256(ikm, {}, {}, 42));
  EXPECT_EQ(HexEncode(okm.bytes(SecretAccess::Grant())),
            "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8");
}

TEST(HkdfSha256Test, DifferentInfoGivesAnUnrelatedKey) {
  Bytes ikm(32, 0x42);
  ASSERT_OK_AND_ASSIGN(SecretBytes a, HkdfSha256(ikm, {}, AsBytes("batch-a"), 32));
  ASSERT_OK_AND_ASSIGN(SecretBytes b, HkdfSha256(ikm, {}, AsBytes("batch-b"), 32));
  EXPECT_NE(HexEncode(a.bytes(SecretAccess::Grant())), HexEncode(b.bytes(SecretAccess::Grant())));
}

// RFC 4231 test case 2.
TEST(HmacSha256Test, MatchesRfc4231TestCase2) {
  SecretBytes key(std::string_view("Jefe"));
  ASSERT_OK_AND_ASSIGN(Bytes mac, HmacSha256(key, AsBytes("what do ya want for nothing?")));
  EXPECT_EQ(HexEncode(mac), "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

}  // namespace
}  // namespace hallmark
