#include "core/signature_memo.h"

#include <string>

#include "testing/matchers.h"

namespace hallmark {
namespace {

using ::hallmark::testing::IsOk;
using ::testing::Not;

class SignatureMemoTest : public ::testing::Test {
 protected:
  void SetUp() override {
    key_ = *PrivateKey::Generate(KeyType::kEd25519);
    sig_ = *key_->Sign(AsBytes(message_));
  }
  std::optional<PrivateKey> key_;
  std::string message_ = "tree_size=7\nroot=abc\n";
  Bytes sig_;
};

TEST_F(SignatureMemoTest, RemembersAGoodSignatureAndSkipsItsSecondCheck) {
  SignatureMemo memo(16);
  EXPECT_THAT(memo.Verify(key_->Public(), AsBytes(message_), sig_), IsOk());
  EXPECT_EQ(memo.hits(), 0u);
  EXPECT_THAT(memo.Verify(key_->Public(), AsBytes(message_), sig_), IsOk());
  EXPECT_EQ(memo.hits(), 1u);
  EXPECT_EQ(memo.size(), 1u);
}

TEST_F(SignatureMemoTest, AnyChangedByteIsCheckedAfreshAndFails) {
  SignatureMemo memo(16);
  ASSERT_THAT(memo.Verify(key_->Public(), AsBytes(message_), sig_), IsOk());
  std::string altered = message_;
  altered[10] ^= 1;
  EXPECT_THAT(memo.Verify(key_->Public(), AsBytes(altered), sig_), Not(IsOk()));
  Bytes bad_sig = sig_;
  bad_sig[5] ^= 1;
  EXPECT_THAT(memo.Verify(key_->Public(), AsBytes(message_), bad_sig), Not(IsOk()));
  PrivateKey other = *PrivateKey::Generate(KeyType::kEd25519);
  EXPECT_THAT(memo.Verify(other.Public(), AsBytes(message_), sig_), Not(IsOk()));
  // Failures are not remembered: asking again fails again.
  EXPECT_THAT(memo.Verify(key_->Public(), AsBytes(altered), sig_), Not(IsOk()));
  EXPECT_EQ(memo.size(), 1u);
  EXPECT_EQ(memo.hits(), 0u);
}

TEST_F(SignatureMemoTest, HoldsAtMostItsCapacityDroppingTheOldest) {
  SignatureMemo memo(2);
  std::vector<std::string> messages = {"a", "b", "c"};
  std::vector<Bytes> sigs;
  for (const std::string& m : messages) {
    sigs.push_back(*key_->Sign(AsBytes(m)));
    ASSERT_THAT(memo.Verify(key_->Public(), AsBytes(m), sigs.back()), IsOk());
  }
  EXPECT_EQ(memo.size(), 2u);
  // "a" was dropped: verified again (no hit), "c" is still there.
  ASSERT_THAT(memo.Verify(key_->Public(), AsBytes(messages[0]), sigs[0]), IsOk());
  EXPECT_EQ(memo.hits(), 0u);
  ASSERT_THAT(memo.Verify(key_->Public(), AsBytes(messages[2]), sigs[2]), IsOk());
  EXPECT_EQ(memo.hits(), 1u);
}

}  // namespace
}  // namespace hallmark
