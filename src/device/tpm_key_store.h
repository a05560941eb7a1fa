// TpmKeyStore: the device key inside a TPM 2.0, through the tpm2-openssl provider.
#ifndef HALLMARK_DEVICE_TPM_KEY_STORE_H_
#define HALLMARK_DEVICE_TPM_KEY_STORE_H_

#include <string>

#include "core/key.h"
#include "core/status.h"
#include "device/key_store.h"

namespace hallmark::device {

// TpmOptions says which TPM to use and where to keep the key's blob.
struct TpmOptions {
  // key_path holds the key as the TPM wraps it ("TSS2 PRIVATE KEY" PEM): its private part is
  // encrypted under the TPM's storage hierarchy, so it is useless to anyone without this TPM.
  std::string key_path;
  // tcti reaches the TPM: "device:/dev/tpmrm0", "swtpm:path=/run/swtpm.sock",
  // "swtpm:host=127.0.0.1,port=2321", ... Empty: the TPM2OPENSSL_TCTI environment variable, or
  // the TSS default (/dev/tpmrm0, /dev/tpm0, then 127.0.0.1:2321).
  std::string tcti;
};

// TpmKeyStore keeps an EC key (P-256 or P-384) inside a TPM 2.0. The key is created by the TPM
// under the owner hierarchy's storage primary (the provider's default parent) and never leaves
// it in the clear; the file at `key_path` is only the TPM-wrapped blob. Signatures are made by
// the TPM.
//
// Thread-safe: calls into one TPM are serialised (the TSS context is not thread-safe).
// Loading or creating the first key for a TCTI sets TPM2OPENSSL_TCTI (and, unless it is set,
// TSS2_LOG, to keep the TSS quiet: errors come back as hallmark errors) while the provider
// starts; do that before starting other threads that read the environment.
class TpmKeyStore : public KeyStore {
 public:
  explicit TpmKeyStore(TpmOptions options) : options_(std::move(options)) {}

  // Create makes the key inside the TPM and writes its wrapped blob to `key_path` (mode 0600,
  // never replacing a file). kAlreadyExists if the file exists; kInvalidArgument for Ed25519;
  // kUnavailable if the TPM cannot be reached (message names the TCTI).
  Result<PublicKey> Create(KeyType type) override;
  // Load loads the blob into the TPM and returns a handle that signs with it. kNotFound if there
  // is no blob; kFailedPrecondition if this TPM cannot load it (another TPM's key, or corrupt);
  // kUnavailable if the TPM cannot be reached.
  Result<PrivateKey> Load() override;
  std::string Describe() const override;

 private:
  TpmOptions options_;
};

}  // namespace hallmark::device

#endif  // HALLMARK_DEVICE_TPM_KEY_STORE_H_
