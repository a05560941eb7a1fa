#include "server/policy.h"

#include <openssl/err.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include "core/ossl.h"

namespace hallmark::server {
namespace {

std::string IssuerOrganization(const Certificate& cert) {
  const X509_NAME* issuer = X509_get_issuer_name(cert.native());
  int idx = X509_NAME_get_index_by_NID(issuer, NID_organizationName, -1);
  if (idx < 0) {
    return {};
  }
  unsigned char* utf8 = nullptr;
  int len = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(issuer, idx)));
  if (len < 0) {
    ERR_clear_error();
    return {};
  }
  std::string out(reinterpret_cast<char*>(utf8), static_cast<size_t>(len));
  OPENSSL_free(utf8);
  return out;
}

class CaPolicy : public TrustPolicy {
 public:
  CaPolicy(CaPolicyOptions options, OsslPtr<X509_STORE> store)
      : options_(std::move(options)), store_(std::move(store)) {}

  std::string_view name() const override { return "ca"; }

  Result<PeerIdentity> Authorize(const Certificate& leaf,
                                 std::span<const Certificate> untrusted) const override {
    // A CA certificate is never a device identity, even one we trust as an anchor.
    if (leaf.IsCa()) {
      return Error(Code::kUnauthenticated,
                   "a CA certificate was presented as a device certificate");
    }
    OsslPtr<X509_STORE_CTX> ctx(X509_STORE_CTX_new());
    OsslPtr<STACK_OF(X509)> chain(sk_X509_new_null());
    if (!ctx || !chain) {
      return OsslError("allocating verification context");
    }
    for (const Certificate& c : untrusted) {
      OsslPtr<X509> ref = UpRef(c.native());
      if (!ref || sk_X509_push(chain.get(), ref.get()) <= 0) {
        return OsslError("sk_X509_push");
      }
      ref.release();  // sk_X509_push took ownership.
    }
    if (X509_STORE_CTX_init(ctx.get(), store_.get(), leaf.native(), chain.get()) != 1) {
      return OsslError("X509_STORE_CTX_init");
    }
    X509_VERIFY_PARAM* param = X509_STORE_CTX_get0_param(ctx.get());
    if (options_.clock != nullptr) {
      X509_VERIFY_PARAM_set_time(param, static_cast<time_t>(options_.clock->Now()));
    }
    if (X509_verify_cert(ctx.get()) != 1) {
      int err = X509_STORE_CTX_get_error(ctx.get());
      ERR_clear_error();
      return Error(Code::kUnauthenticated, std::string("certificate chain rejected: ") +
                                               X509_verify_cert_error_string(err));
    }
    PeerIdentity id;
    id.device_id = leaf.Key().DeviceId();
    id.policy = "ca";
    id.serial = leaf.SubjectAttribute("serialNumber").value_or("");
    id.owner = IssuerOrganization(leaf);
    id.path = "inject";
    id.subject = leaf.Subject();
    id.not_after = leaf.NotAfter();
    if (options_.registry != nullptr) {
      auto record = options_.registry->Lookup(id.device_id);
      if (record) {
        if (record->status == registry::DeviceStatus::kRevoked) {
          return Error(Code::kUnauthenticated,
                       "device " + id.device_id + " is revoked in the registry");
        }
        if (!record->owner.empty()) {
          id.owner = record->owner;
        }
      } else if (record.error().code() != Code::kNotFound) {
        return Error(Code::kUnauthenticated,
                     "registry record of device " + id.device_id +
                         " failed verification: " + record.error().message());
      }
    }
    return id;
  }

 private:
  CaPolicyOptions options_;
  OsslPtr<X509_STORE> store_;
};

class RegistryPolicy : public TrustPolicy {
 public:
  explicit RegistryPolicy(RecordCache* cache) : cache_(cache) {}

  std::string_view name() const override { return "registry"; }

  Result<PeerIdentity> Authorize(const Certificate& leaf,
                                 std::span<const Certificate> /*untrusted*/) const override {
    // The certificate is only a container for the key; the TLS handshake proved possession of
    // the key, and the registry says whether that key is a device we own.
    std::string device_id = leaf.Key().DeviceId();
    auto record = cache_->Lookup(device_id);
    if (!record) {
      if (record.error().code() == Code::kNotFound) {
        return Error(Code::kUnauthenticated, "device " + device_id + " is not registered");
      }
      return Error(Code::kUnauthenticated, "registry record of device " + device_id +
                                               " failed verification: " + record.error().message());
    }
    if (record->status != registry::DeviceStatus::kActive) {
      return Error(
          Code::kUnauthenticated,
          "device " + device_id + " is " + std::string(registry::DeviceStatusName(record->status)));
    }
    PeerIdentity id;
    id.device_id = device_id;
    id.policy = "registry";
    id.owner = record->owner;
    id.serial = record->serial;
    id.path = std::string(registry::ProvisioningPathName(record->path));
    id.subject = leaf.Subject();
    return id;
  }

 private:
  RecordCache* cache_;
};

}  // namespace

Result<std::unique_ptr<TrustPolicy>> MakeCaPolicy(CaPolicyOptions options) {
  if (options.anchors.empty()) {
    return Error(Code::kInvalidArgument, "the ca policy needs at least one anchor certificate");
  }
  OsslPtr<X509_STORE> store(X509_STORE_new());
  if (!store) {
    return OsslError("X509_STORE_new");
  }
  for (const Certificate& anchor : options.anchors) {
    if (!anchor.IsCa()) {
      return Error(Code::kInvalidArgument,
                   "anchor " + anchor.Subject() + " is not a CA certificate");
    }
    // The anchor is the customer's intermediate. A self-signed root as anchor would let in the
    // devices the vendor made for every other customer (chain.pem holds the root too).
    if (X509_check_issued(anchor.native(), anchor.native()) == X509_V_OK) {
      return Error(Code::kInvalidArgument,
                   "anchor " + anchor.Subject() +
                       " is self-signed (a vendor root?); anchor the customer's intermediate "
                       "(customers/NAME/ca.pem), not a chain or a root");
    }
    if (X509_STORE_add_cert(store.get(), anchor.native()) != 1) {
      return OsslError("X509_STORE_add_cert");
    }
  }
  for (const Crl& crl : options.crls) {
    bool signed_by_anchor = false;
    for (const Certificate& anchor : options.anchors) {
      if (crl.VerifySignature(anchor)) {
        signed_by_anchor = true;
      }
    }
    ERR_clear_error();
    if (!signed_by_anchor) {
      return Error(Code::kInvalidArgument,
                   "CRL from " + crl.Issuer() + " is not signed by any configured anchor");
    }
    if (X509_STORE_add_crl(store.get(), crl.native()) != 1) {
      return OsslError("X509_STORE_add_crl");
    }
  }
  // Trust the customer intermediate itself (partial chain): the right trust decision, and it
  // saves building and checking the path to the vendor root on every handshake.
  unsigned long flags = X509_V_FLAG_PARTIAL_CHAIN | X509_V_FLAG_X509_STRICT;
  if (!options.crls.empty()) {
    flags |= X509_V_FLAG_CRL_CHECK;
  }
  X509_STORE_set_flags(store.get(), flags);
  X509_STORE_set_purpose(store.get(), X509_PURPOSE_SSL_CLIENT);
  return std::unique_ptr<TrustPolicy>(new CaPolicy(std::move(options), std::move(store)));
}

std::unique_ptr<TrustPolicy> MakeRegistryPolicy(RecordCache* cache) {
  return std::make_unique<RegistryPolicy>(cache);
}

}  // namespace hallmark::server
