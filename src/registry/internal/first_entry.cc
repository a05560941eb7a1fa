#include "registry/internal/first_entry.h"

#include <algorithm>
#include <cstring>

namespace hallmark::registry::internal {
namespace {

// Seven probes at ten bits per entry: about 1% false "maybe seen", each costing one index read.
constexpr int kProbes = 7;
constexpr uint64_t kBitsPerEntry = 10;

}  // namespace

FirstEntryTracker::FirstEntryTracker(Reader* reader, uint64_t expected, const LatestIndex* before)
    : reader_(reader), before_(before) {
  uint64_t words = std::max<uint64_t>(16, (expected * kBitsPerEntry + 63) / 64);
  bits_.assign(words, 0);
  bit_count_ = words * 64;
}

uint64_t FirstEntryTracker::Bit(const DeviceKey& key, int i) const {
  // The key is a SHA-256 output, so its bytes are independent hash values already (double
  // hashing: h1 + i * h2).
  uint64_t h1;
  uint64_t h2;
  std::memcpy(&h1, key.data(), sizeof(h1));
  std::memcpy(&h2, key.data() + 8, sizeof(h2));
  return (h1 + static_cast<uint64_t>(i) * (h2 | 1)) % bit_count_;
}

void FirstEntryTracker::Add(const DeviceKey& key) {
  for (int i = 0; i < kProbes; ++i) {
    uint64_t b = Bit(key, i);
    bits_[b / 64] |= uint64_t{1} << (b % 64);
  }
}

Result<bool> FirstEntryTracker::IsFirst(const DeviceKey& key, std::string_view device_id,
                                        uint64_t seq) {
  if (before_ != nullptr && before_->Find(key) != nullptr) {
    return false;
  }
  bool maybe_seen = true;
  for (int i = 0; i < kProbes && maybe_seen; ++i) {
    uint64_t b = Bit(key, i);
    maybe_seen = (bits_[b / 64] >> (b % 64)) & 1;
  }
  if (!maybe_seen) {
    return true;
  }
  bool earlier = false;
  Status s = reader_->ScanDeviceLog(device_id, [&earlier, seq](LogEntry&& e) -> Status {
    earlier = earlier || e.seq < seq;
    return OkStatus();
  });
  if (!s) {
    return s.error();
  }
  return !earlier;
}

}  // namespace hallmark::registry::internal
