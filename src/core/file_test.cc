#include "core/file.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include "testing/matchers.h"

namespace hallmark {
namespace {

using ::hallmark::testing::HasError;
using ::hallmark::testing::IsOk;
using ::hallmark::testing::TempDir;
using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

// ScopedUmask sets the process umask and restores the old one.
class ScopedUmask {
 public:
  explicit ScopedUmask(mode_t mask) : old_(::umask(mask)) {}
  ScopedUmask(const ScopedUmask&) = delete;
  ScopedUmask& operator=(const ScopedUmask&) = delete;
  ~ScopedUmask() { ::umask(old_); }

 private:
  mode_t old_;
};

mode_t ModeOf(const std::string& path) {
  struct stat st {};
  EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
  return st.st_mode & 07777;
}

void WriteRaw(const std::string& path, const std::string& data, mode_t mode) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << data;
  ASSERT_EQ(::chmod(path.c_str(), mode), 0);
}

std::string ReadRaw(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

std::set<std::string> Listing(const TempDir& dir) {
  std::set<std::string> names;
  for (const auto& entry : std::filesystem::directory_iterator(dir.path())) {
    names.insert(entry.path().filename().string());
  }
  return names;
}

// --- WriteFileAtomic ---

struct ModeCase {
  std::string name;
  mode_t umask;
  mode_t mode;
};

class WriteModeTest : public ::testing::TestWithParam<ModeCase> {};

TEST_P(WriteModeTest, SetsExactModeDespiteUmask) {
  TempDir dir;
  std::string path = dir / "file";
  {
    ScopedUmask mask(GetParam().umask);
    ASSERT_THAT(WriteFileAtomic(path, "data", GetParam().mode), IsOk());
  }
  EXPECT_EQ(ModeOf(path), GetParam().mode);
  EXPECT_EQ(ReadRaw(path), "data");
}

INSTANTIATE_TEST_SUITE_P(Modes, WriteModeTest,
                         ::testing::Values(ModeCase{"KeyUnderStrictUmask", 0277, 0600},
                                           ModeCase{"KeyUnderUsualUmask", 022, 0600},
                                           ModeCase{"CertUnderPrivateUmask", 077, 0644},
                                           ModeCase{"ReadOnlyKey", 022, 0400}),
                         [](const ::testing::TestParamInfo<ModeCase>& p) { return p.param.name; });

TEST(WriteFileAtomicTest, ReplacesExistingFileWhenNotExclusive) {
  TempDir dir;
  std::string path = dir / "file";
  WriteRaw(path, "old contents", 0644);
  ASSERT_THAT(WriteFileAtomic(path, "new", 0600), IsOk());
  EXPECT_EQ(ReadRaw(path), "new");
  EXPECT_EQ(ModeOf(path), 0600u);
}

TEST(WriteFileAtomicTest, ExclusiveCreatesNewFile) {
  TempDir dir;
  std::string path = dir / "ca.key";
  ASSERT_THAT(WriteFileAtomic(path, "secret", 0600, /*exclusive=*/true), IsOk());
  EXPECT_EQ(ReadRaw(path), "secret");
  EXPECT_EQ(ModeOf(path), 0600u);
}

TEST(WriteFileAtomicTest, ExclusiveRefusesExistingFileAndLeavesItUnchanged) {
  TempDir dir;
  std::string path = dir / "ca.key";
  WriteRaw(path, "original key", 0600);
  EXPECT_THAT(WriteFileAtomic(path, "replacement", 0644, /*exclusive=*/true),
              HasError(Code::kAlreadyExists, HasSubstr("already exists")));
  EXPECT_EQ(ReadRaw(path), "original key");
  EXPECT_EQ(ModeOf(path), 0600u);
  EXPECT_THAT(Listing(dir), ElementsAre("ca.key"));
}

TEST(WriteFileAtomicTest, ExclusiveRefusesDanglingSymlink) {
  // A symlink planted where a key is about to be created must not redirect the write.
  TempDir dir;
  std::string path = dir / "ca.key";
  std::string target = dir / "elsewhere";
  ASSERT_EQ(::symlink(target.c_str(), path.c_str()), 0);
  EXPECT_THAT(WriteFileAtomic(path, "secret", 0600, /*exclusive=*/true),
              HasError(Code::kAlreadyExists, HasSubstr("already exists")));
  EXPECT_FALSE(FileExists(target));
}

TEST(WriteFileAtomicTest, ReplacesSymlinkRatherThanWritingThroughIt) {
  TempDir dir;
  std::string path = dir / "cert.pem";
  std::string target = dir / "victim";
  WriteRaw(target, "victim contents", 0644);
  ASSERT_EQ(::symlink(target.c_str(), path.c_str()), 0);
  ASSERT_THAT(WriteFileAtomic(path, "new", 0644), IsOk());
  EXPECT_EQ(ReadRaw(target), "victim contents");
  EXPECT_TRUE(std::filesystem::is_regular_file(std::filesystem::symlink_status(path)));
  EXPECT_EQ(ReadRaw(path), "new");
}

TEST(WriteFileAtomicTest, LeavesNoTemporaryFilesBehind) {
  TempDir dir;
  ASSERT_THAT(WriteFileAtomic(dir / "a", "1", 0600), IsOk());
  ASSERT_THAT(WriteFileAtomic(dir / "a", "2", 0600), IsOk());
  ASSERT_THAT(WriteFileAtomic(dir / "b", "3", 0600, /*exclusive=*/true), IsOk());
  EXPECT_THAT(WriteFileAtomic(dir / "b", "4", 0600, /*exclusive=*/true),
              HasError(Code::kAlreadyExists, HasSubstr("already exists")));
  EXPECT_THAT(Listing(dir), ElementsAre("a", "b"));
}

TEST(WriteFileAtomicTest, WritesEmptyAndBinaryData) {
  TempDir dir;
  ASSERT_THAT(WriteFileAtomic(dir / "empty", "", 0600), IsOk());
  EXPECT_EQ(ReadRaw(dir / "empty"), "");
  std::string binary("\0\xff\n\0", 4);
  ASSERT_THAT(WriteFileAtomic(dir / "binary", binary, 0600), IsOk());
  EXPECT_EQ(ReadRaw(dir / "binary"), binary);
}

TEST(WriteFileAtomicTest, FailsInMissingDirectoryWithoutCreatingIt) {
  TempDir dir;
  std::string missing = dir / "no-such-dir";
  EXPECT_THAT(WriteFileAtomic(missing + "/file", "data", 0600),
              HasError(Code::kNotFound, HasSubstr("cannot create")));
  EXPECT_FALSE(FileExists(missing));
}

// --- ReadFile ---

TEST(ReadFileTest, ReadsWholeFile) {
  TempDir dir;
  std::string data(40000, 'x');  // more than one read(2) buffer
  WriteRaw(dir / "f", data, 0644);
  ASSERT_OK_AND_ASSIGN(std::string got, ReadFile(dir / "f"));
  EXPECT_EQ(got, data);
}

TEST(ReadFileTest, AcceptsFileOfExactlyMaxSize) {
  TempDir dir;
  WriteRaw(dir / "f", std::string(100, 'x'), 0644);
  ASSERT_OK_AND_ASSIGN(std::string got, ReadFile(dir / "f", 100));
  EXPECT_EQ(got.size(), 100u);
}

TEST(ReadFileTest, RefusesFileLargerThanMaxSize) {
  TempDir dir;
  WriteRaw(dir / "f", std::string(101, 'x'), 0644);
  EXPECT_THAT(ReadFile(dir / "f", 100),
              HasError(Code::kOutOfRange, HasSubstr("larger than the 100-byte limit")));
}

TEST(ReadFileTest, DefaultLimitRefusesHugeFile) {
  TempDir dir;
  WriteRaw(dir / "f", std::string(kMaxInputFileSize + 1, 'x'), 0644);
  EXPECT_THAT(ReadFile(dir / "f"), HasError(Code::kOutOfRange, HasSubstr("limit")));
}

TEST(ReadFileTest, MissingFileIsNotFound) {
  TempDir dir;
  EXPECT_THAT(ReadFile(dir / "missing"),
              HasError(Code::kNotFound, AllOf(HasSubstr("cannot open"), HasSubstr("missing"))));
}

TEST(ReadFileTest, RefusesDirectory) {
  TempDir dir;
  EXPECT_THAT(ReadFile(dir.path()), HasError(Code::kInvalidArgument, HasSubstr("is a directory")));
}

// --- CheckPrivateFile ---

struct PrivateModeCase {
  std::string name;
  mode_t mode;
  bool accepted;
};

class CheckPrivateFileTest : public ::testing::TestWithParam<PrivateModeCase> {};

TEST_P(CheckPrivateFileTest, AcceptsOnlyOwnerAccess) {
  TempDir dir;
  std::string path = dir / "key.pem";
  WriteRaw(path, "key", GetParam().mode);
  Status s = CheckPrivateFile(path);
  if (GetParam().accepted) {
    EXPECT_THAT(s, IsOk());
  } else {
    char mode[8];
    std::snprintf(mode, sizeof(mode), "%04o", static_cast<unsigned>(GetParam().mode));
    EXPECT_THAT(s,
                HasError(Code::kPermissionDenied, AllOf(HasSubstr("has mode " + std::string(mode)),
                                                        HasSubstr("chmod 600 " + path))));
  }
}

INSTANTIATE_TEST_SUITE_P(Modes, CheckPrivateFileTest,
                         ::testing::Values(PrivateModeCase{"OwnerReadWrite0600", 0600, true},
                                           PrivateModeCase{"OwnerReadOnly0400", 0400, true},
                                           PrivateModeCase{"OwnerAll0700", 0700, true},
                                           PrivateModeCase{"WorldReadable0644", 0644, false},
                                           PrivateModeCase{"GroupReadable0640", 0640, false},
                                           PrivateModeCase{"GroupWritable0620", 0620, false},
                                           PrivateModeCase{"OthersReadable0604", 0604, false},
                                           PrivateModeCase{"OthersExecutable0601", 0601, false}),
                         [](const ::testing::TestParamInfo<PrivateModeCase>& p) {
                           return p.param.name;
                         });

TEST(CheckPrivateFileErrorsTest, MissingFileIsNotFound) {
  TempDir dir;
  EXPECT_THAT(CheckPrivateFile(dir / "missing"),
              HasError(Code::kNotFound, HasSubstr("cannot stat")));
}

TEST(CheckPrivateFileErrorsTest, RefusesDirectory) {
  TempDir dir;
  EXPECT_THAT(CheckPrivateFile(dir.path()),
              HasError(Code::kInvalidArgument, HasSubstr("not a regular file")));
}

// --- ReadSecretFile ---

TEST(ReadSecretFileTest, DropsOneTrailingNewline) {
  struct Case {
    std::string name;
    std::string contents;
    std::string want;
  };
  for (const Case& c : std::vector<Case>{{"no newline", "hunter2", "hunter2"},
                                         {"one newline", "hunter2\n", "hunter2"},
                                         {"crlf", "hunter2\r\n", "hunter2"},
                                         {"two newlines keep one", "hunter2\n\n", "hunter2\n"},
                                         {"inner newline kept", "a\nb\n", "a\nb"},
                                         {"trailing space kept", "pass \n", "pass "}}) {
    SCOPED_TRACE(c.name);
    TempDir dir;
    WriteRaw(dir / "pass", c.contents, 0600);
    ASSERT_OK_AND_ASSIGN(SecretBytes got, ReadSecretFile(dir / "pass"));
    EXPECT_EQ(got.view(SecretAccess::Grant()), c.want);
  }
}

TEST(ReadSecretFileTest, RefusesEmptySecret) {
  for (const char* contents : {"", "\n", "\r\n"}) {
    SCOPED_TRACE(::testing::PrintToString(std::string(contents)));
    TempDir dir;
    WriteRaw(dir / "pass", contents, 0600);
    EXPECT_THAT(ReadSecretFile(dir / "pass"),
                HasError(Code::kInvalidArgument, HasSubstr("is empty")));
  }
}

TEST(ReadSecretFileTest, MissingFileIsNotFound) {
  TempDir dir;
  EXPECT_THAT(ReadSecretFile(dir / "missing"), HasError(Code::kNotFound, HasSubstr("missing")));
}

TEST(ReadSecretFileTest, RefusesOversizedSecret) {
  TempDir dir;
  WriteRaw(dir / "pass", std::string(5000, 'p'), 0600);
  EXPECT_THAT(ReadSecretFile(dir / "pass"), HasError(Code::kOutOfRange, HasSubstr("limit")));
}

// --- MakeDirectory and FileExists ---

TEST(MakeDirectoryTest, CreatesParentsWithMode) {
  TempDir dir;
  std::string path = dir / "a/b/c";
  ASSERT_THAT(MakeDirectory(path, 0700), IsOk());
  EXPECT_TRUE(std::filesystem::is_directory(path));
  EXPECT_EQ(ModeOf(path), 0700u);
  // Existing directories are fine.
  EXPECT_THAT(MakeDirectory(path, 0700), IsOk());
}

TEST(MakeDirectoryTest, FailsWhenAFileIsInTheWay) {
  TempDir dir;
  WriteRaw(dir / "file", "x", 0600);
  EXPECT_THAT(MakeDirectory(dir / "file/sub", 0700),
              HasError(Code::kUnavailable, HasSubstr("cannot create directory")));
}

TEST(FileExistsTest, ReportsFilesDirectoriesAndSymlinks) {
  TempDir dir;
  EXPECT_TRUE(FileExists(dir.path()));
  EXPECT_FALSE(FileExists(dir / "missing"));
  WriteRaw(dir / "f", "x", 0600);
  EXPECT_TRUE(FileExists(dir / "f"));
  std::string link = dir / "dangling";
  ASSERT_EQ(::symlink((dir / "nowhere").c_str(), link.c_str()), 0);
  EXPECT_TRUE(FileExists(link));
}

}  // namespace
}  // namespace hallmark
