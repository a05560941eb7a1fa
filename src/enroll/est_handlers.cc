// EST (RFC 7030) on the device listener: cacerts, simpleenroll, simplereenroll.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/beast/core/string.hpp>

#include "core/csr.h"
#include "core/pkcs7.h"
#include "enroll/internal/shared.h"

namespace hallmark::enroll::internal {
namespace {

using server::ClientContext;
using server::HttpRequest;
using server::HttpResponse;
using server::JsonError;

// RFC 7030 section 4.1.3 / 4.2.3: base64 DER PKCS#7 certs-only.
constexpr std::string_view kCertsOnlyType = "application/pkcs7-mime; smime-type=certs-only";

HttpResponse CertsOnly(std::string body, std::string content_type) {
  HttpResponse res;
  res.status = 200;
  res.content_type = std::move(content_type);
  res.body = std::move(body);
  res.headers.emplace_back("Content-Transfer-Encoding", "base64");
  return res;
}

// ParseCsrBody decodes the request body: base64 of a DER PKCS#10 request (RFC 7030 section
// 4.2.1). A PEM request is accepted too, for clients that send one.
Result<Csr> ParseCsrBody(std::string_view body) {
  auto bad = Error(Code::kInvalidArgument,
                   "the request body is not a base64-encoded DER PKCS#10 certificate request");
  if (body.find("-----BEGIN") != std::string_view::npos) {
    auto csr = Csr::FromPem(body);
    return csr ? csr : bad;
  }
  auto der = Base64Decode(body);
  if (!der || der->empty()) {
    return bad;
  }
  auto csr = Csr::FromDer(*der);
  return csr ? csr : bad;
}

// IsPkcs10 is true for an absent Content-Type or application/pkcs10 (RFC 7030 section 4.2.1),
// parameters and case ignored.
bool IsPkcs10(std::string_view content_type) {
  std::string_view media = content_type.substr(0, content_type.find(';'));
  const size_t first = media.find_first_not_of(" \t");
  media = first == std::string_view::npos
              ? std::string_view()
              : media.substr(first, media.find_last_not_of(" \t") - first + 1);
  return media.empty() || boost::beast::iequals({media.data(), media.size()}, "application/pkcs10");
}

// IssuableSerial returns the subject serialNumber for an operational certificate: the serial
// the registry (or the IDevID) gives the device, else the CSR's, else the device ID.
std::string IssuableSerial(const server::PeerIdentity& id, const Csr& csr) {
  if (!id.serial.empty() && id.serial.size() <= 64 && IsPrintableString(id.serial)) {
    return id.serial;
  }
  return csr.SerialNumber().value_or(id.device_id);
}

class CaCertsHandler : public SharedHandler {
 public:
  explicit CaCertsHandler(std::shared_ptr<Shared> shared)
      : SharedHandler(std::move(shared), "GET", 0, false) {}

 protected:
  HttpResponse Serve(const HttpRequest&, const ClientContext&) override {
    return CertsOnly(shared().est->cacerts_body(), "application/pkcs7-mime");
  }
};

class EstEnrollHandler : public SharedHandler {
 public:
  EstEnrollHandler(std::shared_ptr<Shared> shared, bool reenroll)
      : SharedHandler(shared, "POST", shared->config.max_csr_bytes, true), reenroll_(reenroll) {}

 protected:
  HttpResponse Serve(const HttpRequest& request, const ClientContext& client) override {
    const char* what = reenroll_ ? "simplereenroll" : "simpleenroll";
    if (client.identity == nullptr || client.leaf == nullptr) {
      return JsonError(403,
                       "EST enrollment needs an authenticated device: a registered key or a "
                       "certificate from the owner's CA");
    }
    const server::PeerIdentity& id = *client.identity;
    if (auto limited = Limit(shared().per_device, id.device_id, "for this device")) {
      return *limited;
    }
    if (!IsPkcs10(request.content_type)) {
      return JsonError(415, std::string(what) +
                                " takes Content-Type: application/pkcs10 (RFC 7030 "
                                "section 4.2.1), not " +
                                request.content_type);
    }
    auto csr = ParseCsrBody(request.body);
    if (!csr) {
      return ErrorResponse(csr.error(), what);
    }
    // The CSR's own signature is checked by the issuer (once: it costs a P-256 verify). The
    // identity is the key: a CSR may only ask for a certificate over the very key this
    // connection proved (RFC 7030 section 3.5 binds the request to the TLS session; the key
    // itself is the stronger binding here).
    if (!(csr->Key() == client.leaf->Key()) || csr->Key().DeviceId() != id.device_id) {
      spdlog::warn("event=est_refused what={} device={} peer={} reason=\"CSR for another key\"",
                   what, id.device_id, client.peer_address);
      return JsonError(403,
                       "the CSR is for another key than the one this connection "
                       "authenticated with (device " +
                           id.device_id + ")");
    }
    if (auto refused = CheckRegistry(id)) {
      return *refused;
    }
    auto cert = shared().est->Issue(*csr, IssuableSerial(id, *csr));
    if (!cert) {
      return ErrorResponse(cert.error(), what);
    }
    auto body = EncodeCertsOnly(std::span<const Certificate>(&*cert, 1));
    if (!body) {
      return ErrorResponse(body.error(), what);
    }
    spdlog::info("event=est_issued what={} device={} serial={} not_after={} peer={}", what,
                 id.device_id, cert->SerialHex(), cert->NotAfter(), client.peer_address);
    return CertsOnly(std::move(*body), std::string(kCertsOnlyType));
  }

 private:
  // CheckRegistry refuses a device the registry knows as revoked or pending. A device the
  // registry does not know may enroll only under the `ca` policy (its IDevID vouches for it);
  // EST never creates a registry record.
  std::optional<HttpResponse> CheckRegistry(const server::PeerIdentity& id) {
    if (shared().registry == nullptr && shared().directory == nullptr) {
      return std::nullopt;
    }
    Result<std::optional<registry::DeviceStatus>> status = Error(Code::kInternal, "unset");
    if (shared().registry != nullptr) {
      status = shared().registry->DeviceStatus(id.device_id);
    } else {
      auto record = shared().directory->Lookup(id.device_id);
      status = record ? Result<std::optional<registry::DeviceStatus>>(record->status)
               : record.error().code() == Code::kNotFound
                   ? Result<std::optional<registry::DeviceStatus>>(std::nullopt)
                   : Result<std::optional<registry::DeviceStatus>>(record.error());
    }
    if (!status) {
      return ErrorResponse(status.error(), "EST enrollment");
    }
    if (!status->has_value()) {
      if (id.policy == "ca") {
        return std::nullopt;
      }
      return JsonError(403, "device " + id.device_id + " is not registered");
    }
    if (**status != registry::DeviceStatus::kActive) {
      return JsonError(403, "device " + id.device_id + " is " +
                                std::string(registry::DeviceStatusName(**status)));
    }
    return std::nullopt;
  }

  const bool reenroll_;
};

}  // namespace

std::unique_ptr<server::Handler> MakeCaCertsHandler(std::shared_ptr<Shared> shared) {
  return std::make_unique<CaCertsHandler>(std::move(shared));
}

std::unique_ptr<server::Handler> MakeEstEnrollHandler(std::shared_ptr<Shared> shared,
                                                      bool reenroll) {
  return std::make_unique<EstEnrollHandler>(std::move(shared), reenroll);
}

}  // namespace hallmark::enroll::internal
