// Profile: the kinds of certificate the CA issues, and what each one allows.
#ifndef HALLMARK_CA_PROFILE_H_
#define HALLMARK_CA_PROFILE_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "core/status.h"

namespace hallmark::ca {

enum class Profile {
  // kRoot: the manufacturer root, self-signed, CA with pathLen 1.
  kRoot,
  // kCustomerCa: a per-customer intermediate under the root, CA with pathLen 0.
  kCustomerCa,
  // kDevice: an IEEE 802.1AR IDevID: clientAuth, serialNumber in the subject, may have no
  // well-defined expiration.
  kDevice,
  // kServer: a TLS server certificate: serverAuth, subjectAltName required.
  kServer,
  // kOperational: a short-lived LDevID for a device in the field: clientAuth.
  kOperational,
};

// ParseProfile accepts the names `ProfileName` returns for issuable profiles: "device",
// "server", "operational". kInvalidArgument otherwise.
Result<Profile> ParseIssuableProfile(std::string_view name);
std::string_view ProfileName(Profile profile);

// ProfileLimits are the validity rules of a profile, in seconds.
struct ProfileLimits {
  int64_t default_validity;  // kNoWellDefinedExpiration-relative value handled by the issuer
  int64_t max_validity;      // 0 = no maximum other than the issuer's notAfter
  bool allows_no_expiry;     // may use 99991231235959Z
};

ProfileLimits LimitsFor(Profile profile);

}  // namespace hallmark::ca

#endif  // HALLMARK_CA_PROFILE_H_
