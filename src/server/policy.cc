#include "server/policy.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <array>
#include <mutex>
#include <optional>

#include "core/ossl.h"
#include "server/internal/crl_set.h"
#include "server/internal/lru_map.h"
#include "server/internal/periodic.h"

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

using internal::Digest;

// ChainEntry is a chain whose signatures verified: which anchor it ended at and which of the
// presented intermediates it went through, so that a later decision can tell it builds the
// very same path.
struct ChainEntry {
  int64_t not_after = 0;         // the chain's earliest notAfter: the entry is dropped after it
  const X509* anchor = nullptr;  // the store's anchor at the top of the chain
  std::vector<uint8_t> path;     // indices into the presented intermediates, leaf side first
};

// ChainCache is a sharded LRU of verified chains. Thread-safe.
class ChainCache {
 public:
  static constexpr size_t kShards = 16;

  explicit ChainCache(size_t capacity) : hash_(internal::NewDigestHash()) {
    for (auto& shard : shards_) {
      shard = std::make_unique<Shard>((capacity + kShards - 1) / kShards, hash_);
    }
  }

  std::optional<ChainEntry> Find(const Digest& key, int64_t now) {
    Shard& s = ShardOf(key);
    std::lock_guard<std::mutex> lock(s.mu);
    ChainEntry* e = s.map.Find(key);
    if (e == nullptr) {
      return std::nullopt;
    }
    if (now > e->not_after) {
      s.map.Erase(key);
      return std::nullopt;
    }
    return *e;
  }

  void Insert(const Digest& key, ChainEntry entry) {
    Shard& s = ShardOf(key);
    std::lock_guard<std::mutex> lock(s.mu);
    s.map.Insert(key, std::move(entry));
  }

 private:
  struct Shard {
    Shard(size_t capacity, internal::DigestHash hash) : map(capacity, hash) {}
    std::mutex mu;
    internal::LruMap<ChainEntry> map;
  };

  Shard& ShardOf(const Digest& key) { return *shards_[(hash_(key) >> 40) % kShards]; }

  internal::DigestHash hash_;
  std::array<std::unique_ptr<Shard>, kShards> shards_;
};

// VerifyState is what the replacement verify step needs; it travels as the context's app data.
struct VerifyState {
  const internal::CrlSet::Snapshot* crls = nullptr;  // null: no revocation lists configured
  const ChainEntry* cached = nullptr;
  std::span<const Certificate> untrusted;
  X509_STORE_CTX_verify_fn full_verify = nullptr;
  bool used_cache = false;

  // SameChain reports whether `chain` (leaf first) is the path `cached` describes.
  bool SameChain(STACK_OF(X509) * chain) const {
    const int n = sk_X509_num(chain);
    if (n < 2 || static_cast<size_t>(n) != cached->path.size() + 2 ||
        sk_X509_value(chain, n - 1) != cached->anchor) {
      return false;
    }
    for (int i = 1; i < n - 1; ++i) {
      const size_t k = cached->path[static_cast<size_t>(i - 1)];
      if (k >= untrusted.size() || sk_X509_value(chain, i) != untrusted[k].native()) {
        return false;
      }
    }
    return true;
  }
};

// Fail records `error` for `cert` at `depth`, as OpenSSL's own checks do, and fails.
int Fail(X509_STORE_CTX* ctx, int error, int depth, X509* cert) {
  X509_STORE_CTX_set_error(ctx, error);
  X509_STORE_CTX_set_error_depth(ctx, depth);
  X509_STORE_CTX_set_current_cert(ctx, cert);
  return 0;
}

// CheckRevocation replaces OpenSSL's revocation step (X509_V_FLAG_CRL_CHECK: the leaf only). It
// would verify the CRL's signature again in every handshake (about 80 us with P-256); the CRLs
// in force were verified, and checked to be complete CRLs of their anchor, when they were
// loaded (CrlSet), so what is left is their validity time and the leaf's serial.
int CheckRevocation(X509_STORE_CTX* ctx) {
  const auto* state = static_cast<const VerifyState*>(X509_STORE_CTX_get_app_data(ctx));
  if (state->crls == nullptr) {
    return 1;
  }
  STACK_OF(X509)* chain = X509_STORE_CTX_get0_chain(ctx);
  X509* leaf = sk_X509_value(chain, 0);
  const Crl* crl = sk_X509_num(chain) < 2 ? nullptr : state->crls->For(sk_X509_value(chain, 1));
  if (crl == nullptr) {
    // The leaf's issuer is not an anchor (a sub-CA): it has no CRL here.
    return Fail(ctx, X509_V_ERR_UNABLE_TO_GET_CRL, 0, leaf);
  }
  time_t now = X509_VERIFY_PARAM_get_time(X509_STORE_CTX_get0_param(ctx));
  if (X509_cmp_time(X509_CRL_get0_lastUpdate(crl->native()), &now) > 0) {
    return Fail(ctx, X509_V_ERR_CRL_NOT_YET_VALID, 0, leaf);
  }
  if (X509_cmp_time(X509_CRL_get0_nextUpdate(crl->native()), &now) < 0) {
    return Fail(ctx, X509_V_ERR_CRL_HAS_EXPIRED, 0, leaf);
  }
  X509_REVOKED* entry = nullptr;
  // 1: listed; 2: listed as removeFromCRL (a delta CRL's "no longer on hold"), not revoked.
  if (X509_CRL_get0_by_cert(crl->native(), &entry, leaf) == 1) {
    return Fail(ctx, X509_V_ERR_CERT_REVOKED, 0, leaf);
  }
  return 1;
}

// CheckTimes is the part of OpenSSL's signature-and-time step (internal_verify) that still
// applies to a chain whose signatures were verified before: every certificate's validity at
// the verification time, anchor first, with the errors OpenSSL would report.
int CheckTimes(X509_STORE_CTX* ctx) {
  STACK_OF(X509)* chain = X509_STORE_CTX_get0_chain(ctx);
  const X509_VERIFY_PARAM* param = X509_STORE_CTX_get0_param(ctx);
  for (int i = sk_X509_num(chain) - 1; i >= 0; --i) {
    X509* cert = sk_X509_value(chain, i);
    const int where =
        X509_cmp_timeframe(param, X509_get0_notBefore(cert), X509_get0_notAfter(cert));
    if (where != 0) {
      return Fail(ctx, where < 0 ? X509_V_ERR_CERT_NOT_YET_VALID : X509_V_ERR_CERT_HAS_EXPIRED, i,
                  cert);
    }
  }
  return 1;
}

// VerifySignaturesUnlessCached replaces the signature-and-time step of X509_verify_cert. Path
// building, extensions and purpose, and revocation have run already (OpenSSL's verify_chain
// order); only the signatures are skipped, and only for the exact path verified before.
int VerifySignaturesUnlessCached(X509_STORE_CTX* ctx) {
  auto* state = static_cast<VerifyState*>(X509_STORE_CTX_get_app_data(ctx));
  if (state->cached != nullptr && state->SameChain(X509_STORE_CTX_get0_chain(ctx))) {
    state->used_cache = true;
    return CheckTimes(ctx);
  }
  return state->full_verify(ctx);
}

class CaPolicyImpl : public CaPolicy {
 public:
  CaPolicyImpl(CaPolicyOptions options, OsslPtr<X509_STORE> store,
               std::unique_ptr<internal::CrlSet> crls, OsslPtr<EVP_MD> sha256)
      : options_(std::move(options)),
        store_(std::move(store)),
        crls_(std::move(crls)),
        sha256_(std::move(sha256)),
        chain_cache_(options_.chain_cache_size > 0
                         ? std::make_unique<ChainCache>(options_.chain_cache_size)
                         : nullptr) {}

  void StartReloader() {
    if (options_.crl_reload.count() > 0 && crls_->has_files()) {
      reloader_ = std::make_unique<internal::PeriodicThread>(options_.crl_reload,
                                                             [this]() { (void)ReloadCrls(); });
    }
  }

  std::string_view name() const override { return "ca"; }

  CrlReloadReport ReloadCrls() override { return crls_->Reload(); }

  Result<PeerIdentity> Authorize(const Certificate& leaf,
                                 std::span<const Certificate> untrusted) const override {
    // A CA certificate is never a device identity, even one we trust as an anchor.
    if (leaf.IsCa()) {
      return Error(Code::kUnauthenticated,
                   "a CA certificate was presented as a device certificate");
    }
    const int64_t now = (options_.clock != nullptr ? *options_.clock : SystemClock()).Now();
    if (auto s = VerifyChain(leaf, untrusted, now); !s) {
      return s.error();
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
        if ((*record)->status == registry::DeviceStatus::kRevoked) {
          return Error(Code::kUnauthenticated,
                       "device " + id.device_id + " is revoked in the registry");
        }
        if (!(*record)->owner.empty()) {
          id.owner = (*record)->owner;
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
  // ChainKey hashes the presented certificates (leaf, then intermediates in order): the same
  // bytes, down to the signature, or no cache hit.
  std::optional<Digest> ChainKey(const Certificate& leaf,
                                 std::span<const Certificate> untrusted) const {
    Digest key;
    unsigned int len = 0;
    if (X509_digest(leaf.native(), sha256_.get(), key.data(), &len) != 1 || len != key.size()) {
      ERR_clear_error();
      return std::nullopt;
    }
    if (untrusted.empty()) {
      return key;
    }
    std::vector<uint8_t> digests(key.begin(), key.end());
    for (const Certificate& c : untrusted) {
      Digest d;
      if (X509_digest(c.native(), sha256_.get(), d.data(), &len) != 1 || len != d.size()) {
        ERR_clear_error();
        return std::nullopt;
      }
      digests.insert(digests.end(), d.begin(), d.end());
    }
    if (EVP_Digest(digests.data(), digests.size(), key.data(), &len, sha256_.get(), nullptr) != 1) {
      ERR_clear_error();
      return std::nullopt;
    }
    return key;
  }

  // Describe returns the cache entry for the verified chain of `ctx`, or nullopt if its path
  // cannot be named (then it is not cached).
  std::optional<ChainEntry> Describe(X509_STORE_CTX* ctx, const Certificate& leaf,
                                     std::span<const Certificate> untrusted) const {
    STACK_OF(X509)* chain = X509_STORE_CTX_get0_chain(ctx);
    const int n = sk_X509_num(chain);
    if (n < 2 || n - 2 > 255) {
      return std::nullopt;
    }
    ChainEntry entry;
    entry.not_after = leaf.NotAfter();
    const X509* top = sk_X509_value(chain, n - 1);
    for (const Certificate& anchor : options_.anchors) {
      if (anchor.native() == top) {
        entry.anchor = top;
        entry.not_after = std::min(entry.not_after, anchor.NotAfter());
      }
    }
    if (entry.anchor == nullptr) {
      return std::nullopt;
    }
    for (int i = 1; i < n - 1; ++i) {
      const X509* x = sk_X509_value(chain, i);
      auto it = std::find_if(untrusted.begin(), untrusted.end(),
                             [x](const Certificate& c) { return c.native() == x; });
      if (it == untrusted.end()) {
        return std::nullopt;
      }
      entry.path.push_back(static_cast<uint8_t>(it - untrusted.begin()));
      entry.not_after = std::min(entry.not_after, it->NotAfter());
    }
    return entry;
  }

  Status VerifyChain(const Certificate& leaf, std::span<const Certificate> untrusted,
                     int64_t now) const {
    std::optional<Digest> key;
    std::optional<ChainEntry> cached;
    if (chain_cache_) {
      key = ChainKey(leaf, untrusted);
      cached = key.has_value() ? chain_cache_->Find(*key, now) : std::nullopt;
      if (options_.metrics != nullptr) {
        options_.metrics->ChainCacheLookup(cached.has_value());
      }
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
    X509_VERIFY_PARAM_set_time(X509_STORE_CTX_get0_param(ctx.get()), static_cast<time_t>(now));
    // Held until the verification is done: a reload may publish new CRLs meanwhile.
    std::shared_ptr<const internal::CrlSet::Snapshot> crls = crls_->Current();
    VerifyState state{crls.get(), cached.has_value() ? &*cached : nullptr, untrusted,
                      X509_STORE_CTX_get_verify(ctx.get())};
    X509_STORE_CTX_set_app_data(ctx.get(), &state);
    X509_STORE_CTX_set_verify(ctx.get(), VerifySignaturesUnlessCached);
    if (X509_verify_cert(ctx.get()) != 1) {
      const int err = X509_STORE_CTX_get_error(ctx.get());
      ERR_clear_error();
      std::string why =
          std::string("certificate chain rejected: ") + X509_verify_cert_error_string(err);
      if (crls && (err == X509_V_ERR_CRL_HAS_EXPIRED || err == X509_V_ERR_CRL_NOT_YET_VALID)) {
        why += ": " + crls->Describe(sk_X509_value(X509_STORE_CTX_get0_chain(ctx.get()), 1)) +
               " is not in force; devices of that anchor are refused until a fresh CRL is "
               "loaded";
      }
      return Error(Code::kUnauthenticated, why);
    }
    if (key.has_value() && !state.used_cache) {
      if (auto entry = Describe(ctx.get(), leaf, untrusted); entry.has_value()) {
        chain_cache_->Insert(*key, std::move(*entry));
      }
    }
    return OkStatus();
  }

  CaPolicyOptions options_;
  OsslPtr<X509_STORE> store_;
  std::unique_ptr<internal::CrlSet> crls_;
  OsslPtr<EVP_MD> sha256_;
  std::unique_ptr<ChainCache> chain_cache_;
  std::unique_ptr<internal::PeriodicThread> reloader_;  // last: stops first
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
    const registry::DeviceRecord& r = **record;
    if (r.status != registry::DeviceStatus::kActive) {
      return Error(Code::kUnauthenticated, "device " + device_id + " is " +
                                               std::string(registry::DeviceStatusName(r.status)));
    }
    PeerIdentity id;
    id.device_id = device_id;
    id.policy = "registry";
    id.owner = r.owner;
    id.serial = r.serial;
    id.path = std::string(registry::ProvisioningPathName(r.path));
    id.subject = leaf.Subject();
    return id;
  }

 private:
  RecordCache* cache_;
};

}  // namespace

Result<std::unique_ptr<CaPolicy>> MakeCaPolicy(CaPolicyOptions options) {
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
  auto crls = internal::CrlSet::Create(options.anchors, std::move(options.crls), options.crl_files,
                                       options.clock, options.metrics);
  if (!crls) {
    return crls.error();
  }
  OsslPtr<EVP_MD> sha256(EVP_MD_fetch(nullptr, "SHA256", nullptr));
  if (!sha256) {
    return OsslError("EVP_MD_fetch(SHA256)");
  }
  // Trust the customer intermediate itself (partial chain): the right trust decision, and it
  // saves building and checking the path to the vendor root on every handshake.
  X509_STORE_set_flags(store.get(), X509_V_FLAG_PARTIAL_CHAIN | X509_V_FLAG_X509_STRICT);
  // Revocation against the CRLs in force at each verification (CheckRevocation).
  X509_STORE_set_check_revocation(store.get(), CheckRevocation);
  X509_STORE_set_purpose(store.get(), X509_PURPOSE_SSL_CLIENT);
  auto policy = std::make_unique<CaPolicyImpl>(std::move(options), std::move(store),
                                               std::move(*crls), std::move(sha256));
  policy->StartReloader();
  return std::unique_ptr<CaPolicy>(std::move(policy));
}

std::unique_ptr<TrustPolicy> MakeRegistryPolicy(RecordCache* cache) {
  return std::make_unique<RegistryPolicy>(cache);
}

}  // namespace hallmark::server
