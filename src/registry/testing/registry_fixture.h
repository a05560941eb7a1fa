// Test helpers for the registry: a fresh registry in a temp directory, device keys, signed
// manifests, and an "attacker" that edits the database file with plain SQL.
#ifndef HALLMARK_REGISTRY_TESTING_REGISTRY_FIXTURE_H_
#define HALLMARK_REGISTRY_TESTING_REGISTRY_FIXTURE_H_

#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/clock.h"
#include "core/key.h"
#include "registry/registrar_key.h"
#include "registry/registry.h"
#include "testing/matchers.h"

namespace hallmark::registry::testing {

// ManifestEntry is one identity for `MakeManifest`.
struct ManifestEntry {
  PublicKey key;
  std::string serial;
};

// MakeManifest returns a JSON Lines manifest of `entries`, each line signed by `factory`: the
// generator tests use in place of a factory station.
std::string MakeManifest(const PrivateKey& factory, const std::vector<ManifestEntry>& entries);

// NewDeviceKey returns the public half of a fresh key of `type`.
PublicKey NewDeviceKey(KeyType type = KeyType::kP256);

// ExecSql runs `sql` on the database at `path` through its own connection, as an attacker with
// write access to the file would. Fails the test on SQL errors.
void ExecSql(const std::string& path, const std::string& sql);

// QueryInt returns the first column of the first row of `sql` on `path`.
int64_t QueryInt(const std::string& path, const std::string& sql);

// RegistryTest gives each test a registry with a registrar key and a fake clock.
class RegistryTest : public ::testing::Test {
 protected:
  void SetUp() override;

  // Add registers a fresh P-256 device with `serial` and returns its record.
  DeviceRecord Add(const std::string& serial, const std::string& owner = "acme");
  // Revoke revokes `device_id` and returns the new record.
  DeviceRecord Revoke(const std::string& device_id, const std::string& reason = "lost");
  // Sql runs attacker SQL on the registry database.
  void Sql(const std::string& sql) const { ExecSql(db_path_, sql); }
  // Reopen drops and reopens the registry (after the attacker changed the file).
  void Reopen();

  ::hallmark::testing::TempDir dir_;
  FakeClock clock_{1'700'000'000};
  std::string db_path_;
  std::optional<RegistrarKey> registrar_;
  std::optional<Registry> registry_;
};

}  // namespace hallmark::registry::testing

#endif  // HALLMARK_REGISTRY_TESTING_REGISTRY_FIXTURE_H_
