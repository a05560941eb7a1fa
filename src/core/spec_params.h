// Key store specs ("pkcs11:module=...;token=...", "tpm:key=...;tcti=...") carry their settings as
// `key=value` pairs separated by ';'. One parser for the device and CA key stores.
#ifndef HALLMARK_CORE_SPEC_PARAMS_H_
#define HALLMARK_CORE_SPEC_PARAMS_H_

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace hallmark {

struct SpecParamRules {
  std::string scheme;                          // for messages: "pkcs11"
  std::vector<std::string> allowed;            // accepted keys
  std::map<std::string, std::string> aliases;  // other spellings: {"object", "label"}
};

// ParseSpecParams splits `body` ("key=value;key=value"; empty items are skipped) into a map
// keyed by canonical names. kInvalidArgument for an unknown key, a repeated key, an empty value,
// or a PIN (`pin`, `pin-value`, `pin-source`): a PIN in a spec would show in `ps` and shell
// history, so it must come from a file or the environment.
Result<std::map<std::string, std::string>> ParseSpecParams(std::string_view body,
                                                           const SpecParamRules& rules);

}  // namespace hallmark

#endif  // HALLMARK_CORE_SPEC_PARAMS_H_
