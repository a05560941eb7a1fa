#include "ca/profile.h"

namespace hallmark::ca {
namespace {

constexpr int64_t kDay = 86400;
constexpr int64_t kYear = 365 * kDay;

}  // namespace

Result<Profile> ParseIssuableProfile(std::string_view name) {
  if (name == "device") {
    return Profile::kDevice;
  }
  if (name == "server") {
    return Profile::kServer;
  }
  if (name == "operational") {
    return Profile::kOperational;
  }
  return Error(Code::kInvalidArgument, "unknown profile '" + std::string(name) +
                                           "'; expected device, server or operational");
}

std::string_view ProfileName(Profile profile) {
  switch (profile) {
    case Profile::kRoot:
      return "root";
    case Profile::kCustomerCa:
      return "customer-ca";
    case Profile::kDevice:
      return "device";
    case Profile::kServer:
      return "server";
    case Profile::kOperational:
      return "operational";
  }
  return "unknown";
}

ProfileLimits LimitsFor(Profile profile) {
  switch (profile) {
    case Profile::kRoot:
      return {30 * kYear, 0, true};
    case Profile::kCustomerCa:
      return {20 * kYear, 0, true};
    case Profile::kDevice:
      // IEEE 802.1AR: an IDevID lives as long as the device; capped at the issuer's notAfter.
      return {0, 0, true};
    case Profile::kServer:
      return {397 * kDay, 825 * kDay, false};
    case Profile::kOperational:
      return {7 * kDay, 90 * kDay, false};
  }
  return {kDay, kDay, false};
}

}  // namespace hallmark::ca
