#include "core/spec_params.h"

#include <algorithm>

namespace hallmark {

Result<std::map<std::string, std::string>> ParseSpecParams(std::string_view body,
                                                           const SpecParamRules& rules) {
  std::map<std::string, std::string> out;
  size_t pos = 0;
  while (pos <= body.size()) {
    size_t end = std::min(body.find(';', pos), body.size());
    std::string_view item = body.substr(pos, end - pos);
    pos = end + 1;
    if (item.empty()) {
      continue;
    }
    const size_t eq = item.find('=');
    std::string key(item.substr(0, eq));
    std::string value(eq == std::string_view::npos ? "" : item.substr(eq + 1));
    if (auto alias = rules.aliases.find(key); alias != rules.aliases.end()) {
      key = alias->second;
    }
    if (key == "pin" || key == "pin-value" || key == "pin-source") {
      return Error(Code::kInvalidArgument,
                   "do not put the PIN in the key store spec (it would show in ps and shell "
                   "history); give it with --pin-file or the HALLMARK_PIN environment variable");
    }
    if (std::find(rules.allowed.begin(), rules.allowed.end(), key) == rules.allowed.end()) {
      std::string expected;
      for (const std::string& a : rules.allowed) {
        expected += (expected.empty() ? "" : ", ") + a + "=";
      }
      return Error(Code::kInvalidArgument, "unknown " + rules.scheme + " parameter '" + key +
                                               "' (expected " + expected + ")");
    }
    if (value.empty()) {
      return Error(Code::kInvalidArgument, rules.scheme + " parameter '" + key + "' has no value");
    }
    if (!out.emplace(key, value).second) {
      return Error(Code::kInvalidArgument,
                   rules.scheme + " parameter '" + key + "' is given twice");
    }
  }
  return out;
}

}  // namespace hallmark
