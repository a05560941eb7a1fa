#include "registry/internal/latest_index.h"

#include <algorithm>

#include "core/encoding.h"
#include "registry/record.h"

namespace hallmark::registry::internal {
namespace {

bool KeyLess(const LatestIndex::Item& a, const LatestIndex::Item& b) { return a.key < b.key; }

}  // namespace

std::optional<DeviceKey> DeviceKeyFromId(std::string_view id) {
  if (!IsDeviceId(id)) {
    return std::nullopt;
  }
  auto bytes = HexDecode(id);
  if (!bytes || bytes->size() != 32) {
    return std::nullopt;
  }
  DeviceKey key;
  std::memcpy(key.data(), bytes->data(), key.size());
  return key;
}

std::string DeviceKeyToId(const DeviceKey& key) { return HexEncode(key); }

void LatestIndex::BulkLoad(std::vector<Item> items) {
  std::stable_sort(items.begin(), items.end(), KeyLess);
  // Keep the last (newest) item of each run of equal keys.
  size_t out = 0;
  for (size_t i = 0; i < items.size(); ++i) {
    if (i + 1 < items.size() && items[i + 1].key == items[i].key) {
      continue;
    }
    items[out++] = items[i];
  }
  items.resize(out);
  items.shrink_to_fit();
  base_ = std::move(items);
  overlay_.clear();
}

void LatestIndex::Set(const DeviceKey& key, const Latest& latest) {
  auto it = overlay_.find(key);
  if (it != overlay_.end()) {
    it->second = latest;
    return;
  }
  Item probe{key, {}};
  auto pos = std::lower_bound(base_.begin(), base_.end(), probe, KeyLess);
  if (pos != base_.end() && pos->key == key) {
    pos->latest = latest;
    return;
  }
  overlay_.emplace(key, latest);
  if (overlay_.size() > 1024 + base_.size() / 8) {
    Compact();
  }
}

const Latest* LatestIndex::Find(const DeviceKey& key) const {
  auto it = overlay_.find(key);
  if (it != overlay_.end()) {
    return &it->second;
  }
  Item probe{key, {}};
  auto pos = std::lower_bound(base_.begin(), base_.end(), probe, KeyLess);
  if (pos != base_.end() && pos->key == key) {
    return &pos->latest;
  }
  return nullptr;
}

std::optional<size_t> LatestIndex::Rank(const DeviceKey& key) const {
  Item probe{key, {}};
  auto pos = std::lower_bound(base_.begin(), base_.end(), probe, KeyLess);
  if (pos != base_.end() && pos->key == key) {
    return static_cast<size_t>(pos - base_.begin());
  }
  return std::nullopt;
}

void LatestIndex::ForEach(const std::function<void(const DeviceKey&, const Latest&)>& visit) {
  Compact();
  for (const Item& item : base_) {
    visit(item.key, item.latest);
  }
}

void LatestIndex::Compact() {
  if (overlay_.empty()) {
    return;
  }
  // Keys already in base_ are updated in place by Set, so overlay_ holds only new keys.
  size_t middle = base_.size();
  base_.reserve(base_.size() + overlay_.size());
  for (const auto& [key, latest] : overlay_) {
    base_.push_back(Item{key, latest});
  }
  std::sort(base_.begin() + static_cast<std::ptrdiff_t>(middle), base_.end(), KeyLess);
  std::inplace_merge(base_.begin(), base_.begin() + static_cast<std::ptrdiff_t>(middle),
                     base_.end(), KeyLess);
  overlay_.clear();
}

}  // namespace hallmark::registry::internal
