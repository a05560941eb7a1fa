#include "registry/sqlite_storage.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/file.h"
#include "registry/record.h"
#include "testing/matchers.h"

namespace hallmark::registry {
namespace {

using ::hallmark::testing::HasError;
using ::hallmark::testing::IsOk;
using ::hallmark::testing::TempDir;
using ::testing::HasSubstr;

LogEntry Entry(uint64_t seq, const std::string& id) {
  std::string text = "hallmark-device-record/1\ndevice_id=" + id + "\nrest\n";
  return LogEntry{seq, id, Bytes(text.begin(), text.end()), Bytes{1, 2, 3}};
}

TEST(SqliteStorageTest, CreateRefusesAnExistingPathAndOpenRefusesAMissingOne) {
  TempDir dir;
  ASSERT_THAT(SqliteStorage::Create(dir / "r.db"), IsOk());
  EXPECT_THAT(SqliteStorage::Create(dir / "r.db"),
              HasError(Code::kAlreadyExists, HasSubstr("refusing to overwrite")));
  EXPECT_THAT(SqliteStorage::Open(dir / "r.db"), IsOk());
  EXPECT_THAT(SqliteStorage::Open(dir / "x.db"), HasError(Code::kNotFound, HasSubstr("x.db")));
  EXPECT_FALSE(FileExists(dir / "x.db"));
  EXPECT_THAT(SqliteStorage::Create(dir / "no/such/dir.db"),
              HasError(Code::kNotFound, HasSubstr("cannot create")));
}

TEST(SqliteStorageTest, WritesAreInvisibleAndDiscardedWithoutCommit) {
  TempDir dir;
  ASSERT_OK_AND_ASSIGN(auto storage, SqliteStorage::Create(dir / "r.db"));
  ASSERT_OK_AND_ASSIGN(auto other, SqliteStorage::Open(dir / "r.db"));
  std::string id(64, 'a');
  {
    ASSERT_OK_AND_ASSIGN(auto w, storage->Write());
    ASSERT_THAT(w->AppendLog(Entry(0, id)), IsOk());
    ASSERT_OK_AND_ASSIGN(auto reader, other->Read());
    EXPECT_EQ(*reader->LogSize(), 0u);
  }
  ASSERT_OK_AND_ASSIGN(auto r, storage->Read());
  EXPECT_EQ(*r->LogSize(), 0u);
}

TEST(SqliteStorageTest, ReadersKeepTheirSnapshotWhileAWriterCommits) {
  TempDir dir;
  ASSERT_OK_AND_ASSIGN(auto storage, SqliteStorage::Create(dir / "r.db"));
  ASSERT_OK_AND_ASSIGN(auto other, SqliteStorage::Open(dir / "r.db"));
  ASSERT_OK_AND_ASSIGN(auto reader, other->Read());
  EXPECT_EQ(*reader->LogSize(), 0u);
  {
    ASSERT_OK_AND_ASSIGN(auto w, storage->Write());
    ASSERT_THAT(w->AppendLog(Entry(0, std::string(64, 'a'))), IsOk());
    ASSERT_THAT(w->Commit(), IsOk());
  }
  EXPECT_EQ(*reader->LogSize(), 0u);
  reader.reset();
  ASSERT_OK_AND_ASSIGN(auto fresh, other->Read());
  EXPECT_EQ(*fresh->LogSize(), 1u);
}

TEST(SqliteStorageTest, DeviceHistoryIsFoundThroughTheEntriesThemselves) {
  TempDir dir;
  ASSERT_OK_AND_ASSIGN(auto storage, SqliteStorage::Create(dir / "r.db"));
  std::string a(64, 'a');
  std::string b(64, 'b');
  {
    ASSERT_OK_AND_ASSIGN(auto w, storage->Write());
    ASSERT_THAT(w->AppendLog(Entry(0, a)), IsOk());
    ASSERT_THAT(w->AppendLog(Entry(1, b)), IsOk());
    ASSERT_THAT(w->AppendLog(Entry(2, a)), IsOk());
    EXPECT_THAT(w->AppendLog(Entry(2, b)), HasError(Code::kAlreadyExists, HasSubstr("2")));
    ASSERT_THAT(w->Commit(), IsOk());
  }
  ASSERT_OK_AND_ASSIGN(auto r, storage->Read());
  std::vector<uint64_t> seqs;
  ASSERT_THAT(r->ScanDeviceLog(a,
                               [&seqs](LogEntry&& e) -> Status {
                                 seqs.push_back(e.seq);
                                 return OkStatus();
                               }),
              IsOk());
  EXPECT_EQ(seqs, (std::vector<uint64_t>{0, 2}));
  ASSERT_OK_AND_ASSIGN(std::optional<LogEntry> e, r->GetLogEntry(1));
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->device_id, b);
  EXPECT_THAT(storage->Read(), HasError(Code::kInternal, HasSubstr("open transaction")));
}

TEST(SqliteStorageTest, UndecodableRowsAreDataLoss) {
  TempDir dir;
  ASSERT_OK_AND_ASSIGN(auto storage, SqliteStorage::Create(dir / "r.db"));
  DeviceRecord r;
  r.device_id = std::string(64, 'c');
  r.public_key = {1};
  r.seq = 1;
  {
    ASSERT_OK_AND_ASSIGN(auto w, storage->Write());
    ASSERT_THAT(w->PutDevice(r), IsOk());
    ASSERT_THAT(w->Commit(), IsOk());
  }
  auto db = sqlite::Database::Open(dir / "r.db");
  ASSERT_THAT(db->Exec("UPDATE devices SET path = 'teleport'"), IsOk());
  ASSERT_OK_AND_ASSIGN(auto reader, storage->Read());
  EXPECT_THAT(reader->GetDevice(r.device_id),
              HasError(Code::kDataLoss, HasSubstr("unknown provisioning path 'teleport'")));
}

}  // namespace
}  // namespace hallmark::registry
