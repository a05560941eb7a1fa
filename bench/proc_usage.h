// What the benchmarks read about a server process from /proc (CPU time, resident memory, run
// queue wait) and the nearest-rank percentile they report. Header-only; bench tools only.
#ifndef HALLMARK_BENCH_PROC_USAGE_H_
#define HALLMARK_BENCH_PROC_USAGE_H_

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

namespace hallmark::bench {

inline std::string ReadProcFile(int pid, const char* name) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/" + name);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// CpuTicks returns utime + stime (fields 14 and 15 of /proc/PID/stat), which cover every thread
// of the process, in clock ticks; nullopt if the process is gone.
inline std::optional<uint64_t> CpuTicks(int pid) {
  const std::string stat = ReadProcFile(pid, "stat");
  // The command name (field 2) is in parentheses and may hold spaces: count from the last ')'.
  const size_t paren = stat.rfind(')');
  if (paren == std::string::npos) {
    return std::nullopt;
  }
  std::istringstream fields(stat.substr(paren + 1));
  std::vector<std::string> f{std::istream_iterator<std::string>(fields),
                             std::istream_iterator<std::string>()};
  if (f.size() < 13) {  // f[0] is field 3
    return std::nullopt;
  }
  return std::strtoull(f[11].c_str(), nullptr, 10) + std::strtoull(f[12].c_str(), nullptr, 10);
}

// RssKiB returns VmRSS from /proc/PID/status; nullopt if the process is gone.
inline std::optional<uint64_t> RssKiB(int pid) {
  std::istringstream status(ReadProcFile(pid, "status"));
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) {
      return std::strtoull(line.c_str() + 6, nullptr, 10);
    }
  }
  return std::nullopt;
}

// RunQueueNs returns how long the threads of `pid` waited for a CPU while runnable (field 2 of
// /proc/PID/task/TID/schedstat): on a shared machine, the time other tenants held the core.
inline std::optional<uint64_t> RunQueueNs(int pid) {
  uint64_t ns = 0;
  std::error_code ec;
  for (const auto& task :
       std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/task", ec)) {
    std::ifstream in(task.path() / "schedstat");
    uint64_t on_cpu = 0;
    uint64_t waiting = 0;
    if (in >> on_cpu >> waiting) {
      ns += waiting;
    }
  }
  if (ec) {
    return std::nullopt;
  }
  return ns;
}

// SumOver adds `probe` over every pid; nullopt if there are none or one is unreadable.
inline std::optional<uint64_t> SumOver(const std::vector<int>& pids,
                                       const std::function<std::optional<uint64_t>(int)>& probe) {
  if (pids.empty()) {
    return std::nullopt;
  }
  uint64_t total = 0;
  for (int pid : pids) {
    auto v = probe(pid);
    if (!v) {
      return std::nullopt;
    }
    total += *v;
  }
  return total;
}

inline double TicksToSeconds(uint64_t ticks) {
  return static_cast<double>(ticks) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

// Percentile is the nearest-rank percentile (ceil(p * n), 1-based) of sorted values.
inline uint32_t Percentile(const std::vector<uint32_t>& sorted, double p) {
  if (sorted.empty()) {
    return 0;
  }
  const auto rank = static_cast<size_t>(std::ceil(p * static_cast<double>(sorted.size())));
  return sorted[std::clamp<size_t>(rank, 1, sorted.size()) - 1];
}

}  // namespace hallmark::bench

#endif  // HALLMARK_BENCH_PROC_USAGE_H_
