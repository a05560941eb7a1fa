#include "registry/serving_directory.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "registry/record.h"
#include "registry/testing/registry_fixture.h"
#include "testing/matchers.h"

namespace hallmark::registry {
namespace {

using ::hallmark::testing::HasError;
using ::hallmark::testing::IsOk;
using ::hallmark::testing::TempDir;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

class ServingDirectoryTest : public testing::RegistryTest {
 protected:
  std::unique_ptr<ServingDirectory> OpenDirectory(ServingDirectory::Options options = {}) {
    auto dir = ServingDirectory::Open(db_path_, registrar_->Public(), options);
    EXPECT_THAT(dir, IsOk());
    return dir ? std::move(*dir) : nullptr;
  }
};

TEST_F(ServingDirectoryTest, ServesVerifiedRecordsWithOnlyThePublicKey) {
  DeviceRecord a = Add("SN-1");
  DeviceRecord b = Add("SN-2");
  auto dir = OpenDirectory();
  EXPECT_EQ(dir->head().tree_size, 2u);
  EXPECT_EQ(dir->device_count(), 2u);
  ASSERT_OK_AND_ASSIGN(DeviceRecord served, dir->Lookup(a.device_id));
  EXPECT_EQ(served, a);
  EXPECT_EQ(dir->Lookup(b.device_id)->serial, "SN-2");
  std::string unknown = testing::NewDeviceKey().DeviceId();
  EXPECT_THAT(dir->Lookup(unknown), HasError(Code::kNotFound, HasSubstr(unknown)));
}

TEST_F(ServingDirectoryTest, RefreshReportsEachChangedDeviceOnceInLogOrder) {
  DeviceRecord a = Add("SN-1");
  auto dir = OpenDirectory();
  EXPECT_THAT(dir->Refresh(), IsOk());
  EXPECT_THAT(*dir->Refresh(), IsEmpty());

  DeviceRecord b = Add("SN-2");
  Revoke(a.device_id);
  DeviceRecord c = Add("SN-3");
  ASSERT_OK_AND_ASSIGN(auto changed, dir->Refresh());
  EXPECT_THAT(changed, ElementsAre(b.device_id, a.device_id, c.device_id));
  EXPECT_EQ(dir->Lookup(a.device_id)->status, DeviceStatus::kRevoked);
  EXPECT_EQ(dir->head().tree_size, 4u);
  EXPECT_THAT(*dir->Refresh(), IsEmpty());
}

TEST_F(ServingDirectoryTest, ChangesAreInvisibleUntilRefreshVerifiesTheirHead) {
  DeviceRecord a = Add("SN-1");
  auto dir = OpenDirectory();
  DeviceRecord b = Add("SN-2");
  Revoke(a.device_id);
  // The new device is unknown and the revoked one is served as it was in the verified log.
  EXPECT_THAT(dir->Lookup(b.device_id), HasError(Code::kNotFound, HasSubstr(b.device_id)));
  ASSERT_OK_AND_ASSIGN(DeviceRecord before, dir->Lookup(a.device_id));
  EXPECT_EQ(before, a);
  ASSERT_THAT(dir->Refresh(), IsOk());
  EXPECT_EQ(dir->Lookup(a.device_id)->status, DeviceStatus::kRevoked);
  EXPECT_THAT(dir->Lookup(b.device_id), IsOk());
}

TEST_F(ServingDirectoryTest, TrustedHeadMustBeAPrefix) {
  Add("SN-1");
  ServingDirectory::Options options;
  options.trusted_head = OpenDirectory()->head();
  Add("SN-2");
  EXPECT_EQ(OpenDirectory(options)->head().tree_size, 2u);

  // A head of the same size from another history (a fork) is refused.
  ServingDirectory::Options forked;
  forked.trusted_head = options.trusted_head;
  forked.trusted_head->root_hash[0] ^= 1;
  EXPECT_THAT(ServingDirectory::Open(db_path_, registrar_->Public(), forked),
              HasError(Code::kDataLoss, HasSubstr("does not extend the trusted tree head")));
}

TEST_F(ServingDirectoryTest, RegistrarKeyMustBeEd25519AndDatabaseMustExist) {
  auto p256 = PrivateKey::Generate(KeyType::kP256);
  EXPECT_THAT(ServingDirectory::Open(db_path_, p256->Public()),
              HasError(Code::kInvalidArgument, HasSubstr("must be Ed25519")));
  EXPECT_THAT(ServingDirectory::Open(dir_ / "missing.db", registrar_->Public()),
              HasError(Code::kNotFound, HasSubstr("missing.db")));
}

TEST_F(ServingDirectoryTest, LookupsRunConcurrentlyWithRefreshes) {
  std::vector<DeviceRecord> devices;
  for (int i = 0; i < 8; ++i) {
    devices.push_back(Add("SN-" + std::to_string(i)));
  }
  auto dir = OpenDirectory();
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 3; ++t) {
    threads.emplace_back([&dir, &devices, &failures, t]() {
      for (int i = 0; i < 60; ++i) {
        auto r = dir->Lookup(devices[(i + t) % devices.size()].device_id);
        if (!r) {
          failures.fetch_add(1);
        }
      }
    });
  }
  for (int i = 0; i < 5; ++i) {
    Add("SN-new-" + std::to_string(i));
    EXPECT_THAT(dir->Refresh(), IsOk());
  }
  for (std::thread& t : threads) {
    t.join();
  }
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(dir->device_count(), 13u);
}

}  // namespace
}  // namespace hallmark::registry
