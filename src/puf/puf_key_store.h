// PufKeyStore: a device key store that keeps no key at all. The P-256 device key is regenerated
// from a (simulated) SRAM PUF through the fuzzy extractor each time it is loaded; only the public
// helper data is stored.
#ifndef HALLMARK_PUF_PUF_KEY_STORE_H_
#define HALLMARK_PUF_PUF_KEY_STORE_H_

#include <cstdint>
#include <optional>
#include <string>

#include "core/key.h"
#include "core/status.h"
#include "device/key_store.h"
#include "puf/fuzzy_extractor.h"
#include "puf/sram_puf.h"

namespace hallmark::puf {

struct PufKeyStoreOptions {
  std::string helper_path;  // the helper data file (public; written at Create, mode 0644)
  // The simulated chip: its seed and family model stand in for the silicon.
  uint64_t chip_seed = 0;
  SramPufModel model;
  // params: the construction; unset means ExtractorParams::For(RecommendedDebiasing(bias)).
  std::optional<ExtractorParams> params;
  int enrollment_reads = 15;  // Create enrolls from the majority of this many reads
  double temperature_c = kReferenceTemperatureC;  // of the reads
};

// PufKeyStore implements device::KeyStore over a simulated SRAM PUF. Not thread-safe (each
// Create or Load reads the PUF, which advances its noise stream).
class PufKeyStore : public device::KeyStore {
 public:
  // Open builds the simulated chip. kInvalidArgument for a bad model.
  static Result<PufKeyStore> Open(PufKeyStoreOptions options);

  // Create enrolls the chip and writes the helper data. kInvalidArgument unless `type` is
  // kP256; kAlreadyExists if the helper data file exists; kResourceExhausted if the PUF has too
  // few usable cells; kUnavailable on I/O errors. No private key is written anywhere.
  Result<PublicKey> Create(KeyType type) override;
  // Load reads the PUF afresh and regenerates the key. kNotFound if there is no helper data;
  // kDataLoss if the helper data is corrupt, tampered with, belongs to another chip, or the read
  // is too noisy (see puf::Reconstruct).
  Result<PrivateKey> Load() override;
  std::string Describe() const override { return "puf:" + options_.helper_path; }

 private:
  PufKeyStore(PufKeyStoreOptions options, SimulatedSramPuf chip)
      : options_(std::move(options)), chip_(std::move(chip)) {}
  PufKeyStoreOptions options_;
  SimulatedSramPuf chip_;
};

}  // namespace hallmark::puf

#endif  // HALLMARK_PUF_PUF_KEY_STORE_H_
