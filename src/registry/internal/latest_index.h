// LatestIndex: device ID -> (seq, leaf hash) of the device's newest log entry, compact enough for
// millions of devices (72 bytes each in a sorted array, plus a small hash map for recent changes).
#ifndef HALLMARK_REGISTRY_INTERNAL_LATEST_INDEX_H_
#define HALLMARK_REGISTRY_INTERNAL_LATEST_INDEX_H_

#include <array>
#include <cstdint>
#include <cstring>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "registry/merkle.h"

namespace hallmark::registry::internal {

// DeviceKey is a device ID in binary (the SHA-256 of the SubjectPublicKeyInfo).
using DeviceKey = std::array<uint8_t, 32>;

// DeviceKeyFromId parses 64 lowercase hex digits; nullopt for anything else.
std::optional<DeviceKey> DeviceKeyFromId(std::string_view id);
std::string DeviceKeyToId(const DeviceKey& key);

struct Latest {
  uint64_t seq = 0;
  Hash leaf{};
};

// LatestIndex is not thread-safe.
class LatestIndex {
 public:
  struct Item {
    DeviceKey key;
    Latest latest;
  };

  // BulkLoad replaces the contents with `items`, given in log order: for a device listed
  // several times, the last item wins.
  void BulkLoad(std::vector<Item> items);
  // Set makes (`seq`, `leaf`) the newest entry of `key`.
  void Set(const DeviceKey& key, const Latest& latest);
  // Find returns the newest entry of `key`, or nullptr. The pointer is valid until the next
  // non-const call.
  const Latest* Find(const DeviceKey& key) const;
  size_t size() const { return base_.size() + overlay_.size(); }
  // Rank returns the position of `key` in key order among the devices `BulkLoad` added (before
  // any `Set`), or nullopt: a dense index for per-device flags.
  std::optional<size_t> Rank(const DeviceKey& key) const;
  // ForEach visits every device in key order (which is also device ID order).
  void ForEach(const std::function<void(const DeviceKey&, const Latest&)>& visit);

 private:
  struct KeyHash {
    size_t operator()(const DeviceKey& k) const noexcept {
      // The key is a SHA-256 output: any 8 of its bytes are already uniformly distributed.
      size_t h;
      std::memcpy(&h, k.data(), sizeof(h));
      return h;
    }
  };
  void Compact();

  std::vector<Item> base_;                                  // sorted by key, one item per device
  std::unordered_map<DeviceKey, Latest, KeyHash> overlay_;  // keys not (yet) in base_
};

}  // namespace hallmark::registry::internal

#endif  // HALLMARK_REGISTRY_INTERNAL_LATEST_INDEX_H_
