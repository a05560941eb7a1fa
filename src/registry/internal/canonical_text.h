// Canonical text: the signed encodings of registry log entries (device records, batch
// definitions) are a magic line followed by `name=value` lines in a fixed order, every line
// ending in "\n". These helpers split and check such text; each entry kind lists its fields.
#ifndef HALLMARK_REGISTRY_INTERNAL_CANONICAL_TEXT_H_
#define HALLMARK_REGISTRY_INTERNAL_CANONICAL_TEXT_H_

#include <charconv>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace hallmark::registry::internal {

// AsText views bytes as characters.
inline std::string_view AsText(std::span<const uint8_t> bytes) {
  return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
}

// ParseDecimal accepts a decimal number without '+' or leading zeros (re-encoding the parsed
// entry catches any other non-canonical spelling).
template <typename Int>
bool ParseDecimal(std::string_view text, Int* out) {
  if (text.empty() || (text.size() > 1 && text[0] == '0') || text[0] == '+') {
    return false;
  }
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), *out);
  return ec == std::errc() && end == text.data() + text.size();
}

// SplitCanonical checks that `text` is `magic`, then one line per name of `fields` in order, and
// nothing else, and returns the values. kInvalidArgument names the first problem (prefixed with
// `what`, e.g. "not a canonical device record").
Result<std::vector<std::string_view>> SplitCanonical(std::string_view text, std::string_view magic,
                                                     std::span<const std::string_view> fields,
                                                     std::string_view what);

// CanonicalWriter appends the magic line and `name=value` lines.
class CanonicalWriter {
 public:
  explicit CanonicalWriter(std::string_view magic) { out_.append(magic).append("\n"); }
  CanonicalWriter& Line(std::string_view name, std::string_view value) {
    out_.append(name).append("=").append(value).append("\n");
    return *this;
  }
  std::string Take() { return std::move(out_); }

 private:
  std::string out_;
};

}  // namespace hallmark::registry::internal

#endif  // HALLMARK_REGISTRY_INTERNAL_CANONICAL_TEXT_H_
