#include "core/duration.h"

#include <array>
#include <charconv>
#include <utility>

namespace hallmark {
namespace {

constexpr std::array<std::pair<char, int64_t>, 6> kUnits = {{
    {'y', 365 * 86400},
    {'w', 7 * 86400},
    {'d', 86400},
    {'h', 3600},
    {'m', 60},
    {'s', 1},
}};

}  // namespace

Result<int64_t> ParseDuration(std::string_view text) {
  auto bad = [&]() {
    return Error(Code::kInvalidArgument,
                 "invalid duration '" + std::string(text) +
                     "'; expected a positive number with a unit s, m, h, d, w or y (e.g. 30d)");
  };
  if (text.size() < 2) {
    return bad();
  }
  char unit = text.back();
  int64_t scale = 0;
  for (const auto& [u, s] : kUnits) {
    if (u == unit) {
      scale = s;
    }
  }
  if (scale == 0) {
    return bad();
  }
  std::string_view digits = text.substr(0, text.size() - 1);
  int64_t n = 0;
  auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), n);
  if (ec != std::errc() || ptr != digits.data() + digits.size() || n <= 0 ||
      n > INT64_MAX / scale / 1000) {
    return bad();
  }
  return n * scale;
}

std::string FormatDuration(int64_t seconds) {
  for (const auto& [u, s] : kUnits) {
    if (seconds >= s && seconds % s == 0) {
      return std::to_string(seconds / s) + u;
    }
  }
  return std::to_string(seconds) + "s";
}

}  // namespace hallmark
