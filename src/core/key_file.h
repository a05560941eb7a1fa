// Private key files: PKCS#8 PEM, mode 0600, optionally encrypted with a passphrase. One place
// for what the CA, the registrar and the devices all do with their key files.
#ifndef HALLMARK_CORE_KEY_FILE_H_
#define HALLMARK_CORE_KEY_FILE_H_

#include <optional>
#include <string>
#include <string_view>

#include "core/key.h"
#include "core/secret_bytes.h"
#include "core/status.h"

namespace hallmark {

// WritePrivateKeyFile writes `key` to `path` (mode 0600, crash-safe), encrypted with
// `passphrase` when given. With `exclusive`, kAlreadyExists if `path` exists. Errors of
// WriteFileAtomic otherwise.
Status WritePrivateKeyFile(const std::string& path, const PrivateKey& key,
                           const std::optional<SecretBytes>& passphrase, bool exclusive);

// ReadPrivateKeyFile loads the key at `path`, described as `what` in messages ("registrar
// key"). kNotFound if there is none; kPermissionDenied if group or others can access the file
// or the passphrase is wrong; kFailedPrecondition, telling how to give the passphrase, if the
// key is encrypted and none was given; kInvalidArgument if it does not parse.
Result<PrivateKey> ReadPrivateKeyFile(const std::string& path, std::string_view what,
                                      const std::optional<SecretBytes>& passphrase);

}  // namespace hallmark

#endif  // HALLMARK_CORE_KEY_FILE_H_
