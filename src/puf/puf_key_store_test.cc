#include "puf/puf_key_store.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>

#include "core/file.h"
#include "puf/helper_data.h"
#include "testing/matchers.h"

namespace hallmark::puf {
namespace {

using ::hallmark::testing::HasError;
using ::hallmark::testing::IsOk;
using ::hallmark::testing::TempDir;
using ::testing::HasSubstr;

PufKeyStoreOptions Options(const TempDir& dir, uint64_t chip_seed) {
  PufKeyStoreOptions o;
  o.helper_path = dir / "device.puf";
  o.chip_seed = chip_seed;
  o.model.cells = 4096;
  return o;
}

TEST(PufKeyStoreTest, LoadGivesTheKeyCreateMade) {
  TempDir dir;
  ASSERT_OK_AND_ASSIGN(PufKeyStore store, PufKeyStore::Open(Options(dir, 1)));
  device::KeyStore& ks = store;
  ASSERT_OK_AND_ASSIGN(PublicKey pub, ks.Create(KeyType::kP256));
  for (int i = 0; i < 5; ++i) {
    ASSERT_OK_AND_ASSIGN(PrivateKey key, ks.Load());
    EXPECT_EQ(key.Public(), pub);
  }
  // A fresh store over the same chip (a reboot) regenerates it too.
  ASSERT_OK_AND_ASSIGN(PufKeyStore rebooted, PufKeyStore::Open(Options(dir, 1)));
  ASSERT_OK_AND_ASSIGN(PrivateKey key, rebooted.Load());
  EXPECT_EQ(key.Public(), pub);
  EXPECT_EQ(ks.Describe(), "puf:" + (dir / "device.puf"));
}

TEST(PufKeyStoreTest, StoresOnlyPublicHelperData) {
  TempDir dir;
  ASSERT_OK_AND_ASSIGN(PufKeyStore store, PufKeyStore::Open(Options(dir, 2)));
  ASSERT_THAT(store.Create(KeyType::kP256), IsOk());
  std::vector<std::string> files;
  for (const auto& entry : std::filesystem::directory_iterator(dir.path())) {
    files.push_back(entry.path().filename().string());
  }
  EXPECT_THAT(files, ::testing::ElementsAre("device.puf"));
  ASSERT_OK_AND_ASSIGN(std::string blob, ReadFile(dir / "device.puf"));
  EXPECT_EQ(blob.size(), 512u);
  EXPECT_THAT(HelperData::Parse(AsBytes(blob)), IsOk());
}

TEST(PufKeyStoreTest, RefusesToReplaceAnIdentity) {
  TempDir dir;
  ASSERT_OK_AND_ASSIGN(PufKeyStore store, PufKeyStore::Open(Options(dir, 3)));
  ASSERT_THAT(store.Create(KeyType::kP256), IsOk());
  ASSERT_OK_AND_ASSIGN(std::string before, ReadFile(dir / "device.puf"));
  EXPECT_THAT(store.Create(KeyType::kP256),
              HasError(Code::kAlreadyExists, HasSubstr("already exists")));
  ASSERT_OK_AND_ASSIGN(std::string after, ReadFile(dir / "device.puf"));
  EXPECT_EQ(before, after);
}

TEST(PufKeyStoreTest, OnlyP256) {
  TempDir dir;
  ASSERT_OK_AND_ASSIGN(PufKeyStore store, PufKeyStore::Open(Options(dir, 4)));
  EXPECT_THAT(store.Create(KeyType::kEd25519),
              HasError(Code::kInvalidArgument, HasSubstr("P-256 keys only")));
  EXPECT_FALSE(FileExists(dir / "device.puf"));
}

TEST(PufKeyStoreTest, LoadWithoutEnrollmentIsNotFound) {
  TempDir dir;
  ASSERT_OK_AND_ASSIGN(PufKeyStore store, PufKeyStore::Open(Options(dir, 5)));
  EXPECT_THAT(store.Load(), HasError(Code::kNotFound, HasSubstr("PUF helper data")));
}

TEST(PufKeyStoreTest, AnotherChipOrTamperedHelperDataIsRefused) {
  TempDir dir;
  ASSERT_OK_AND_ASSIGN(PufKeyStore store, PufKeyStore::Open(Options(dir, 6)));
  ASSERT_THAT(store.Create(KeyType::kP256), IsOk());
  ASSERT_OK_AND_ASSIGN(PufKeyStore other_chip, PufKeyStore::Open(Options(dir, 7)));
  EXPECT_THAT(other_chip.Load(), HasError(Code::kDataLoss, HasSubstr("reconstruction failed")));

  ASSERT_OK_AND_ASSIGN(std::string blob, ReadFile(dir / "device.puf"));
  blob[200] = static_cast<char>(blob[200] ^ 0x10);
  ASSERT_THAT(WriteFileAtomic(dir / "device.puf", blob, 0644), IsOk());
  EXPECT_THAT(store.Load(), HasError(Code::kDataLoss, HasSubstr("reconstruction failed")));
}

TEST(PufKeyStoreTest, BiasedChipEnrollsWithPairs) {
  TempDir dir;
  PufKeyStoreOptions o = Options(dir, 8);
  o.model.bias = 0.3;
  o.model.cells = 16384;
  ASSERT_OK_AND_ASSIGN(PufKeyStore store, PufKeyStore::Open(o));
  ASSERT_OK_AND_ASSIGN(PublicKey pub, store.Create(KeyType::kP256));
  ASSERT_OK_AND_ASSIGN(PrivateKey key, store.Load());
  EXPECT_EQ(key.Public(), pub);
  ASSERT_OK_AND_ASSIGN(std::string blob, ReadFile(dir / "device.puf"));
  ASSERT_OK_AND_ASSIGN(HelperData h, HelperData::Parse(AsBytes(blob)));
  EXPECT_EQ(h.debiasing, Debiasing::kPairs);
}

}  // namespace
}  // namespace hallmark::puf
