#include "puf/puf_key_store.h"

#include <string_view>

#include "core/file.h"

namespace hallmark::puf {

Result<PufKeyStore> PufKeyStore::Open(PufKeyStoreOptions options) {
  auto chip = SimulatedSramPuf::Create(options.chip_seed, options.model);
  if (!chip) {
    return chip.error();
  }
  return PufKeyStore(std::move(options), std::move(*chip));
}

Result<PublicKey> PufKeyStore::Create(KeyType type) {
  if (type != KeyType::kP256) {
    return Error(Code::kInvalidArgument, "the PUF key store derives P-256 keys only, not " +
                                             std::string(KeyTypeName(type)));
  }
  if (FileExists(options_.helper_path)) {
    return Error(Code::kAlreadyExists, "PUF helper data " + options_.helper_path +
                                           " already exists; refusing to replace an identity");
  }
  auto response = chip_.MajorityRead(options_.enrollment_reads, options_.temperature_c);
  if (!response) {
    return response.error();
  }
  auto enrollment = Enroll(
      *response,
      options_.params.value_or(ExtractorParams::For(RecommendedDebiasing(options_.model.bias))));
  WipeBits(*response);
  if (!enrollment) {
    return enrollment.error();
  }
  const Bytes& helper = enrollment->helper_data;
  std::string_view data(reinterpret_cast<const char*>(helper.data()), helper.size());
  if (auto s = WriteFileAtomic(options_.helper_path, data, 0644, /*exclusive=*/true); !s) {
    return s.error();
  }
  return enrollment->key.Public();
}

Result<PrivateKey> PufKeyStore::Load() {
  auto helper = ReadFile(options_.helper_path);
  if (!helper) {
    return helper.error().WithContext("PUF helper data");
  }
  Bits read = chip_.Read(options_.temperature_c);
  auto result = Reconstruct(read, AsBytes(*helper));
  WipeBits(read);
  if (!result) {
    return result.error();
  }
  return std::move(result->key);
}

}  // namespace hallmark::puf
