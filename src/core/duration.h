// Durations as people type them: "90s", "15m", "12h", "30d", "2w", "1y".
#ifndef HALLMARK_CORE_DURATION_H_
#define HALLMARK_CORE_DURATION_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "core/status.h"

namespace hallmark {

// ParseDuration returns seconds. A year is 365 days. kInvalidArgument for anything else
// (negative, zero, no unit, overflow).
Result<int64_t> ParseDuration(std::string_view text);

// FormatDuration returns the largest exact unit: 2592000 -> "30d".
std::string FormatDuration(int64_t seconds);

}  // namespace hallmark

#endif  // HALLMARK_CORE_DURATION_H_
