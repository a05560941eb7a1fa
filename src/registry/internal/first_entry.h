// FirstEntryTracker: during an in-order replay of the log, answers "is this entry the device's
// first?", which decides whether an enrollment key may write it (it may only add new devices,
// never revive or change one). Keeping every device key of a large log in a hash set would double
// the replay's memory, so the tracker keeps a Bloom filter of the keys seen (about 10 bits per
// entry) and confirms a "maybe seen" through the storage's index of each device's entries.
#ifndef HALLMARK_REGISTRY_INTERNAL_FIRST_ENTRY_H_
#define HALLMARK_REGISTRY_INTERNAL_FIRST_ENTRY_H_

#include <cstdint>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "registry/internal/latest_index.h"
#include "registry/storage.h"

namespace hallmark::registry::internal {

// FirstEntryTracker is not thread-safe. `reader` and `before` must outlive it.
class FirstEntryTracker {
 public:
  // `expected` is about how many entries the replay adds; `before`, if given, holds the devices
  // of the log before the replayed range.
  FirstEntryTracker(Reader* reader, uint64_t expected, const LatestIndex* before = nullptr);

  // Add records that the entry at the current position names `key`. Call for every entry, in
  // order, after IsFirst for that entry.
  void Add(const DeviceKey& key);

  // IsFirst reports whether no entry before `seq` names `key` (`device_id` in hex).
  Result<bool> IsFirst(const DeviceKey& key, std::string_view device_id, uint64_t seq);

 private:
  uint64_t Bit(const DeviceKey& key, int i) const;

  Reader* reader_;
  const LatestIndex* before_;
  std::vector<uint64_t> bits_;
  uint64_t bit_count_;
};

}  // namespace hallmark::registry::internal

#endif  // HALLMARK_REGISTRY_INTERNAL_FIRST_ENTRY_H_
