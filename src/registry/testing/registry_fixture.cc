#include "registry/testing/registry_fixture.h"

#include "core/sqlite.h"
#include "registry/manifest.h"

namespace hallmark::registry::testing {

std::string MakeManifest(const PrivateKey& factory, const std::vector<ManifestEntry>& entries) {
  std::string out;
  for (const ManifestEntry& e : entries) {
    auto line = FormatManifestLine(e.key, e.serial, factory);
    EXPECT_TRUE(line.has_value()) << line.error();
    if (line) {
      out += *line + "\n";
    }
  }
  return out;
}

PublicKey NewDeviceKey(KeyType type) {
  auto key = PrivateKey::Generate(type);
  EXPECT_TRUE(key.has_value());
  return key->Public();
}

void ExecSql(const std::string& path, const std::string& sql) {
  auto db = sqlite::Database::Open(path);
  ASSERT_TRUE(db.has_value()) << db.error();
  auto s = db->Exec(sql);
  ASSERT_TRUE(s.has_value()) << s.error() << " in: " << sql;
}

int64_t QueryInt(const std::string& path, const std::string& sql) {
  auto db = sqlite::Database::Open(path);
  EXPECT_TRUE(db.has_value());
  auto st = db->Prepare(sql);
  EXPECT_TRUE(st.has_value()) << st.error();
  auto row = st->Step();
  EXPECT_TRUE(row.has_value() && *row) << sql;
  return st->ColumnInt(0);
}

void RegistryTest::SetUp() {
  db_path_ = dir_ / "registry.db";
  auto key = PrivateKey::Generate(KeyType::kEd25519);
  ASSERT_TRUE(key.has_value());
  auto registrar = RegistrarKey::FromPrivateKey(std::move(*key));
  ASSERT_TRUE(registrar.has_value()) << registrar.error();
  registrar_.emplace(std::move(*registrar));
  auto registry = Registry::Create(db_path_, *registrar_, &clock_);
  ASSERT_TRUE(registry.has_value()) << registry.error();
  registry_.emplace(std::move(*registry));
}

DeviceRecord RegistryTest::Add(const std::string& serial, const std::string& owner) {
  clock_.Advance(1);
  auto record = registry_->Add(*registrar_, AddRequest{NewDeviceKey(), serial, owner});
  EXPECT_TRUE(record.has_value()) << record.error();
  return record ? *record : DeviceRecord{};
}

DeviceRecord RegistryTest::Revoke(const std::string& device_id, const std::string& reason) {
  clock_.Advance(1);
  auto record = registry_->Revoke(*registrar_, device_id, reason);
  EXPECT_TRUE(record.has_value()) << record.error();
  return record ? *record : DeviceRecord{};
}

void RegistryTest::Reopen() {
  registry_.reset();
  auto registry = Registry::Open(db_path_, &clock_);
  ASSERT_TRUE(registry.has_value()) << registry.error();
  registry_.emplace(std::move(*registry));
}

}  // namespace hallmark::registry::testing
