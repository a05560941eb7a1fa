#include "server/record_cache.h"

#include <spdlog/spdlog.h>

namespace hallmark::server {

RecordCache::RecordCache(registry::Directory* directory, Options options)
    : directory_(directory), options_(options) {}

RecordCache::~RecordCache() {
  {
    std::lock_guard<std::mutex> lock(stop_mu_);
    stop_ = true;
  }
  stop_cv_.notify_all();
  if (refresher_.joinable()) {
    refresher_.join();
  }
}

Result<registry::DeviceRecord> RecordCache::Lookup(std::string_view device_id) {
  const auto now = std::chrono::steady_clock::now();
  uint64_t generation = 0;
  {
    std::shared_lock lock(mu_);
    generation = generation_;
    auto it = entries_.find(std::string(device_id));
    if (it != entries_.end() && now - it->second.loaded < options_.max_age) {
      hits_.fetch_add(1, std::memory_order_relaxed);
      if (!it->second.record.has_value()) {
        return Error(Code::kNotFound, "device " + std::string(device_id) + " is not registered");
      }
      return *it->second.record;
    }
  }
  misses_.fetch_add(1, std::memory_order_relaxed);
  auto record = directory_->Lookup(device_id);
  if (!record && record.error().code() != Code::kNotFound) {
    // Tampered or unreadable: never cached, so a repaired row is seen at once.
    return record.error();
  }
  std::unique_lock lock(mu_);
  if (generation != generation_) {
    // A refresh ran meanwhile and may have dropped this very device: answer, don't cache.
    if (record) {
      return record;
    }
    return Error(Code::kNotFound, "device " + std::string(device_id) + " is not registered");
  }
  if (entries_.size() >= options_.max_entries) {
    entries_.clear();  // crude but bounded; the directory stays authoritative
  }
  Entry& e = entries_[std::string(device_id)];
  e.loaded = now;
  if (record) {
    e.record = *record;
    return record;
  }
  e.record.reset();
  return Error(Code::kNotFound, "device " + std::string(device_id) + " is not registered");
}

Result<size_t> RecordCache::Refresh() {
  auto changed = directory_->Refresh();
  if (!changed) {
    return changed.error();
  }
  refreshes_.fetch_add(1, std::memory_order_relaxed);
  size_t dropped = 0;
  if (!changed->empty()) {
    std::unique_lock lock(mu_);
    ++generation_;
    for (const std::string& id : *changed) {
      dropped += entries_.erase(id);
    }
  }
  return dropped;
}

void RecordCache::StartRefresher() {
  refresher_ = std::thread([this]() {
    std::unique_lock<std::mutex> lock(stop_mu_);
    while (!stop_cv_.wait_for(lock, options_.refresh_interval, [this] { return stop_; })) {
      lock.unlock();
      if (auto r = Refresh(); !r) {
        // Refusing to serve stale data would lock every device out; keep serving what was
        // verified and shout.
        spdlog::error("event=registry_refresh_failed error=\"{}\"", r.error().message());
        std::unique_lock wlock(mu_);
        ++generation_;
        entries_.clear();
      }
      lock.lock();
    }
  });
}

}  // namespace hallmark::server
