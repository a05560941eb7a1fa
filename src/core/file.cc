#include "core/file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "core/encoding.h"
#include "core/random.h"

namespace hallmark {
namespace {

Error ErrnoError(std::string_view what, const std::string& path, int err) {
  Code code = err == ENOENT                     ? Code::kNotFound
              : (err == EACCES || err == EPERM) ? Code::kPermissionDenied
                                                : Code::kUnavailable;
  return Error(code, std::string(what) + " " + path + ": " + std::strerror(err));
}

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() {
    if (fd_ >= 0) {
      ::close(fd_);
    }
  }
  int get() const { return fd_; }
  // Close reports the error of close(2), which can be the first sign of a failed write.
  int Close() {
    int rc = ::close(fd_);
    fd_ = -1;
    return rc;
  }

 private:
  int fd_;
};

Status WriteAll(int fd, std::string_view data, const std::string& path) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      return ErrnoError("cannot write", path, errno);
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return OkStatus();
}

}  // namespace

Result<std::string> ReadFile(const std::string& path, size_t max_size) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) {
    return ErrnoError("cannot open", path, errno);
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) {
    return ErrnoError("cannot stat", path, errno);
  }
  if (S_ISDIR(st.st_mode)) {
    return Error(Code::kInvalidArgument, path + " is a directory, expected a file");
  }
  std::string out;
  char buf[16384];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      return ErrnoError("cannot read", path, errno);
    }
    if (n == 0) {
      break;
    }
    if (out.size() + static_cast<size_t>(n) > max_size) {
      return Error(Code::kOutOfRange,
                   path + " is larger than the " + std::to_string(max_size) + "-byte limit");
    }
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

Result<std::optional<SecretBytes>> ReadOptionalSecretFile(const std::string& path) {
  if (path.empty()) {
    return std::optional<SecretBytes>();
  }
  auto secret = ReadSecretFile(path);
  if (!secret) {
    return secret.error();
  }
  return std::optional<SecretBytes>(std::move(*secret));
}

Result<SecretBytes> ReadSecretFile(const std::string& path) {
  auto text = ReadFile(path, 4096);
  if (!text) {
    return text.error();
  }
  std::string s = std::move(*text);
  if (!s.empty() && s.back() == '\n') {
    s.pop_back();
  }
  if (!s.empty() && s.back() == '\r') {
    s.pop_back();
  }
  if (s.empty()) {
    return Error(Code::kInvalidArgument, "passphrase file " + path + " is empty");
  }
  SecretBytes secret(s);
  Wipe(s);
  return secret;
}

Status WriteFileAtomic(const std::string& path, std::string_view data, mode_t mode,
                       bool exclusive) {
  namespace fs = std::filesystem;
  if (exclusive && FileExists(path)) {
    return Error(Code::kAlreadyExists, path + " already exists");
  }
  fs::path target(path);
  fs::path dir = target.has_parent_path() ? target.parent_path() : fs::path(".");
  // Appended piecewise: `"." + std::string` trips GCC 12's -Wrestrict false positive at -O3.
  std::string name = ".";
  name += target.filename().string();
  name += ".tmp-";
  name += HexEncode(RandomBytes(6));
  std::string tmp = (dir / name).string();
  Fd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode));
  if (fd.get() < 0) {
    return ErrnoError("cannot create", tmp, errno);
  }
  auto cleanup = [&tmp]() { ::unlink(tmp.c_str()); };
  // open(2) applies the umask; set the exact mode asked for.
  if (::fchmod(fd.get(), mode) != 0) {
    Error e = ErrnoError("cannot chmod", tmp, errno);
    cleanup();
    return e;
  }
  if (auto s = WriteAll(fd.get(), data, tmp); !s) {
    cleanup();
    return s.error();
  }
  if (::fsync(fd.get()) != 0 || fd.Close() != 0) {
    Error e = ErrnoError("cannot flush", tmp, errno);
    cleanup();
    return e;
  }
  if (exclusive) {
    // link(2) fails if the target exists, closing the race between the check above and now.
    if (::link(tmp.c_str(), path.c_str()) != 0) {
      Error e = errno == EEXIST ? Error(Code::kAlreadyExists, path + " already exists")
                                : ErrnoError("cannot create", path, errno);
      cleanup();
      return e;
    }
    cleanup();
  } else if (::rename(tmp.c_str(), path.c_str()) != 0) {
    Error e = ErrnoError("cannot rename onto", path, errno);
    cleanup();
    return e;
  }
  Fd dfd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dfd.get() >= 0) {
    ::fsync(dfd.get());
  }
  return OkStatus();
}

Status CheckPrivateFile(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    return ErrnoError("cannot stat", path, errno);
  }
  if (!S_ISREG(st.st_mode)) {
    return Error(Code::kInvalidArgument, path + " is not a regular file");
  }
  if ((st.st_mode & 077) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof(mode), "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return Error(Code::kPermissionDenied,
                 "key file " + path + " has mode " + mode +
                     "; it must not be accessible by group or others (chmod 600 " + path + ")");
  }
  return OkStatus();
}

Status MakeDirectory(const std::string& path, mode_t mode) {
  std::error_code ec;
  std::filesystem::create_directories(path, ec);
  if (ec) {
    return Error(Code::kUnavailable, "cannot create directory " + path + ": " + ec.message());
  }
  ::chmod(path.c_str(), mode);
  return OkStatus();
}

bool FileExists(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0;
}

}  // namespace hallmark
