// Files: bounded reads, crash-safe writes and permission checks for key material.
#ifndef HALLMARK_CORE_FILE_H_
#define HALLMARK_CORE_FILE_H_

#include <sys/types.h>

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "core/secret_bytes.h"
#include "core/status.h"

namespace hallmark {

// kMaxInputFileSize bounds every file hallmark reads whole (certificates, CSRs, keys).
inline constexpr size_t kMaxInputFileSize = 1 << 20;

// ReadFile returns the contents of `path`. kNotFound if it does not exist, kOutOfRange if it is
// larger than `max_size`, kUnavailable on other I/O errors.
Result<std::string> ReadFile(const std::string& path, size_t max_size = kMaxInputFileSize);

// ReadSecretFile reads a passphrase or other secret from `path`, dropping one trailing newline.
// Same errors as `ReadFile`, plus kInvalidArgument if the file is empty.
Result<SecretBytes> ReadSecretFile(const std::string& path);
// ReadOptionalSecretFile is ReadSecretFile for an optional setting: nullopt when `path` is empty.
Result<std::optional<SecretBytes>> ReadOptionalSecretFile(const std::string& path);

// WriteFileAtomic writes `data` to `path` with permissions `mode` so that a crash leaves either
// the old file or the complete new one: it writes a temporary file in the same directory, fsyncs
// it, renames it over `path` and fsyncs the directory. If `exclusive`, fails with kAlreadyExists
// when `path` exists; kNotFound if the directory does not exist; kUnavailable on other I/O
// errors. Nothing is left behind on failure.
Status WriteFileAtomic(const std::string& path, std::string_view data, mode_t mode,
                       bool exclusive = false);

// CheckPrivateFile succeeds if `path` is a regular file that neither group nor others can access
// (like ssh, we refuse key files readable by others). kPermissionDenied names the mode found.
Status CheckPrivateFile(const std::string& path);

// MakeDirectory creates `path` (and parents) with `mode` if it does not exist.
Status MakeDirectory(const std::string& path, mode_t mode);

// FileExists reports whether `path` names an existing file system object.
bool FileExists(const std::string& path);

}  // namespace hallmark

#endif  // HALLMARK_CORE_FILE_H_
