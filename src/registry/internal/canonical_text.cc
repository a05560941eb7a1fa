#include "registry/internal/canonical_text.h"

namespace hallmark::registry::internal {

Result<std::vector<std::string_view>> SplitCanonical(std::string_view text, std::string_view magic,
                                                     std::span<const std::string_view> fields,
                                                     std::string_view what) {
  auto bad = [what](const std::string& why) {
    return Error(Code::kInvalidArgument, std::string(what) + ": " + why);
  };
  if (text.size() <= magic.size() || text.substr(0, magic.size()) != magic ||
      text[magic.size()] != '\n') {
    return bad("it does not start with '" + std::string(magic) + "'");
  }
  text.remove_prefix(magic.size() + 1);
  std::vector<std::string_view> values;
  values.reserve(fields.size());
  for (size_t i = 0; i < fields.size(); ++i) {
    const std::string_view name = fields[i];
    size_t eol = text.find('\n');
    if (eol == std::string_view::npos) {
      return bad("field " + std::string(name) + " is missing or unterminated");
    }
    std::string_view line = text.substr(0, eol);
    text.remove_prefix(eol + 1);
    if (line.substr(0, name.size()) != name || line.size() <= name.size() ||
        line[name.size()] != '=') {
      return bad("expected field " + std::string(name) + " in line " + std::to_string(i + 2));
    }
    values.push_back(line.substr(name.size() + 1));
  }
  if (!text.empty()) {
    return bad("trailing bytes after the " + std::string(fields.back()) + " field");
  }
  return values;
}

}  // namespace hallmark::registry::internal
