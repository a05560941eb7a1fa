#include "core/encoding.h"

#include <cstdint>
#include <string>
#include <vector>

#include "testing/matchers.h"

namespace hallmark {
namespace {

using ::hallmark::testing::HasError;
using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

Bytes AllByteValues() {
  Bytes all;
  for (int i = 0; i < 256; ++i) {
    all.push_back(static_cast<uint8_t>(i));
  }
  return all;
}

// --- Hex ---

TEST(HexTest, EncodesLowercase) {
  EXPECT_EQ(HexEncode(Bytes{0x00, 0x0f, 0xab, 0xff}), "000fabff");
  EXPECT_EQ(HexEncode(Bytes{}), "");
}

TEST(HexTest, RoundTripsEveryByteValue) {
  Bytes all = AllByteValues();
  ASSERT_OK_AND_ASSIGN(Bytes decoded, HexDecode(HexEncode(all)));
  EXPECT_EQ(decoded, all);
}

TEST(HexTest, DecodesValidForms) {
  struct Case {
    std::string name;
    std::string text;
    Bytes want;
  };
  for (const Case& c :
       std::vector<Case>{{"empty", "", {}},
                         {"lowercase", "00abff", {0x00, 0xab, 0xff}},
                         {"uppercase", "00ABFF", {0x00, 0xab, 0xff}},
                         {"mixed case", "aBcD", {0xab, 0xcd}},
                         {"colon separated", "0a:1B:ff", {0x0a, 0x1b, 0xff}},
                         {"openssl fingerprint", "DE:AD:BE:EF", {0xde, 0xad, 0xbe, 0xef}}}) {
    SCOPED_TRACE(c.name);
    ASSERT_OK_AND_ASSIGN(Bytes got, HexDecode(c.text));
    EXPECT_EQ(got, c.want);
  }
}

TEST(HexTest, RejectsOddNumberOfDigits) {
  for (const char* text : {"a", "abc", "0a:1"}) {
    SCOPED_TRACE(text);
    EXPECT_THAT(HexDecode(text), HasError(Code::kInvalidArgument, HasSubstr("odd number")));
  }
}

TEST(HexTest, RejectsBadCharacters) {
  struct Case {
    std::string name;
    std::string text;
    std::string message;
  };
  for (const Case& c : std::vector<Case>{{"letter past f", "0g", "'g' at offset 1"},
                                         {"0x prefix", "0x12", "'x' at offset 1"},
                                         {"space", "aa bb", "' ' at offset 2"},
                                         {"newline", "aa\n", "at offset 2"},
                                         {"dash separator", "aa-bb", "'-' at offset 2"},
                                         {"leading colon", ":aa", "':' at offset 0"},
                                         {"trailing colon", "aa:", "':' at offset 2"},
                                         {"colon inside a byte", "a:a", "':' at offset 1"},
                                         {"non-ascii", "a\xc3\xa9", "offset 1"}}) {
    SCOPED_TRACE(c.name);
    EXPECT_THAT(HexDecode(c.text), HasError(Code::kInvalidArgument,
                                            AllOf(HasSubstr("invalid hex"), HasSubstr(c.message))));
  }
}

// --- Base64 ---

struct Base64Vector {
  std::string plain;
  std::string encoded;
};

// RFC 4648 section 10.
const std::vector<Base64Vector>& Rfc4648Vectors() {
  static const auto* vectors = new std::vector<Base64Vector>{{"", ""},
                                                             {"f", "Zg=="},
                                                             {"fo", "Zm8="},
                                                             {"foo", "Zm9v"},
                                                             {"foob", "Zm9vYg=="},
                                                             {"fooba", "Zm9vYmE="},
                                                             {"foobar", "Zm9vYmFy"}};
  return *vectors;
}

TEST(Base64Test, EncodesRfc4648Vectors) {
  for (const Base64Vector& v : Rfc4648Vectors()) {
    SCOPED_TRACE(v.plain);
    EXPECT_EQ(Base64Encode(AsBytes(v.plain)), v.encoded);
  }
}

TEST(Base64Test, DecodesRfc4648Vectors) {
  for (const Base64Vector& v : Rfc4648Vectors()) {
    SCOPED_TRACE(v.encoded);
    ASSERT_OK_AND_ASSIGN(Bytes got, Base64Decode(v.encoded));
    EXPECT_EQ(std::string(got.begin(), got.end()), v.plain);
  }
}

TEST(Base64Test, RoundTripsEveryByteValueWithoutLineBreaks) {
  Bytes all = AllByteValues();
  std::string encoded = Base64Encode(all);
  EXPECT_EQ(encoded.find('\n'), std::string::npos);
  ASSERT_OK_AND_ASSIGN(Bytes decoded, Base64Decode(encoded));
  EXPECT_EQ(decoded, all);
}

TEST(Base64Test, RoundTripsEveryLengthModuloThree) {
  for (size_t n = 0; n < 10; ++n) {
    Bytes data(n, 0xa5);
    ASSERT_OK_AND_ASSIGN(Bytes decoded, Base64Decode(Base64Encode(data)));
    EXPECT_EQ(decoded, data) << "length " << n;
  }
}

TEST(Base64Test, IgnoresWhitespace) {
  ASSERT_OK_AND_ASSIGN(Bytes got, Base64Decode(" Zm9v\r\nYmFy\n\tZg==\n"));
  EXPECT_EQ(std::string(got.begin(), got.end()), "foobarf");
}

TEST(Base64Test, DecodesTrailingZeroBytes) {
  // Real zero bytes at the end must survive the removal of padding.
  ASSERT_OK_AND_ASSIGN(Bytes got, Base64Decode("AAAA"));
  EXPECT_THAT(got, ElementsAre(0, 0, 0));
  ASSERT_OK_AND_ASSIGN(Bytes two, Base64Decode("AAA="));
  EXPECT_THAT(two, ElementsAre(0, 0));
}

TEST(Base64Test, RejectsBadInput) {
  struct Case {
    std::string name;
    std::string text;
    std::string message;
  };
  for (const Case& c : std::vector<Case>{{"length not multiple of 4", "Zm9", "multiple of 4"},
                                         {"one character", "Z", "multiple of 4"},
                                         {"bad character", "Zm9!", "invalid base64"},
                                         {"url-safe alphabet", "-_-_", "invalid base64"},
                                         {"non-ascii", "Zm\xc3\xa9", "invalid base64"}}) {
    SCOPED_TRACE(c.name);
    EXPECT_THAT(Base64Decode(c.text), HasError(Code::kInvalidArgument, HasSubstr(c.message)));
  }
}

// DISABLED: Base64Decode accepts '=' anywhere, because OpenSSL's EVP_DecodeBlock decodes '=' as
// a zero sextet and the code only strips padding at the very end. Today "Zg=a" decodes to
// 66 00 1a, "Zg==Zg==" to 66 00 00 66, "A=B=" to 00 00 and "====" to a single 00 byte, where
// the header promises kInvalidArgument on bad input. Enable once padding is validated.
TEST(Base64Test, RejectsMisplacedPadding) {
  for (const char* text : {"====", "Z===", "Zg=a", "=Zg=", "A=B=", "Zg==Zg=="}) {
    SCOPED_TRACE(text);
    EXPECT_THAT(Base64Decode(text), HasError(Code::kInvalidArgument, HasSubstr("base64")));
  }
}

TEST(Base64Test, DecodesEmptyAndWhitespaceOnlyToNothing) {
  ASSERT_OK_AND_ASSIGN(Bytes empty, Base64Decode(""));
  EXPECT_THAT(empty, IsEmpty());
  ASSERT_OK_AND_ASSIGN(Bytes blank, Base64Decode(" \n"));
  EXPECT_THAT(blank, IsEmpty());
}

TEST(AsBytesTest, ViewsCharacters) { EXPECT_THAT(AsBytes("A\xff"), ElementsAre(0x41, 0xff)); }

}  // namespace
}  // namespace hallmark
