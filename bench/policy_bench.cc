// The `ca` policy's decision, as the server makes it in every handshake: with and without the
// chain verification cache, with and without a CRL, next to the one ECDSA P-256 verify the cache
// saves. Each decision gets a freshly parsed certificate (a handshake parses the peer's anew, so
// OpenSSL's per-certificate caches start cold).
#include <benchmark/benchmark.h>
#include <openssl/x509.h>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <cstdlib>
#include <vector>

#include "core/certificate_builder.h"
#include "core/crl.h"
#include "core/key.h"
#include "server/policy.h"

namespace {

using namespace hallmark;          // NOLINT: benchmark file
using namespace hallmark::server;  // NOLINT: benchmark file

constexpr int64_t kNow = 1767225600;  // 2026-01-01

template <typename T>
T Must(Result<T> r, const char* what) {
  if (!r) {
    std::fprintf(stderr, "%s: %s\n", what, r.error().ToString().c_str());
    std::abort();
  }
  return std::move(*r);
}

// Pki is a vendor root, a customer intermediate (the anchor), one device and the anchor's CRL
// (listing 1,000 other devices, as a CRL of a real fleet would).
struct Pki {
  Pki() {
    PrivateKey root_key = Must(PrivateKey::Generate(KeyType::kP256), "root key");
    PrivateKey ca_key = Must(PrivateKey::Generate(KeyType::kP256), "ca key");
    PrivateKey device_key = Must(PrivateKey::Generate(KeyType::kP256), "device key");
    CertificateTemplate t;
    t.serial = {1};
    t.subject.organization = "ACME";
    t.subject.common_name = "Vendor Root";
    t.not_before = kNow - 86400;
    t.not_after = kNow + 10 * 365 * 86400;
    t.is_ca = true;
    t.key_usage = kKeyCertSign | kCrlSign;
    Certificate root = Must(SignCertificate(t, root_key.Public(), nullptr, root_key), "root");
    t.serial = {2};
    t.subject.common_name = "ACME Device CA";
    t.path_len = 0;
    anchor = Must(SignCertificate(t, ca_key.Public(), &root, root_key), "anchor");
    t.serial = {3};
    t.subject.common_name = "SN-000001";
    t.subject.serial_number = "SN-000001";
    t.is_ca = false;
    t.path_len.reset();
    t.key_usage = kDigitalSignature;
    t.extended_key_usage = {ExtendedKeyUsage::kClientAuth};
    Certificate device = Must(SignCertificate(t, device_key.Public(), &*anchor, ca_key), "device");
    device_der = device.ToDer();
    CrlTemplate c;
    c.this_update = kNow - 60;
    c.next_update = kNow + 86400;
    c.crl_number = 1;
    for (uint32_t i = 0; i < 1000; ++i) {
      c.revoked.push_back({{0x10, static_cast<uint8_t>(i >> 8), static_cast<uint8_t>(i)}, kNow});
    }
    // Parsed, as the server reads it from a file (OpenSSL then keeps the encoding it verifies).
    crl = Must(Crl::FromDer(Must(SignCrl(c, *anchor, ca_key), "crl").ToDer()), "parse crl");
  }

  // FreshDevices parses the device certificate `n` times.
  std::vector<Certificate> FreshDevices(size_t n) const {
    std::vector<Certificate> out;
    out.reserve(n);
    for (size_t i = 0; i < n; ++i) {
      out.push_back(Must(Certificate::FromDer(device_der), "parse"));
    }
    return out;
  }

  std::optional<Certificate> anchor;
  Bytes device_der;
  std::optional<Crl> crl;
};

const Pki& SharedPki() {
  static const Pki pki;
  return pki;
}

FakeClock& Clock() {
  static FakeClock clock(kNow);
  return clock;
}

// BM_CaAuthorize: args are {chain cache on, CRL configured}.
void BM_CaAuthorize(benchmark::State& state) {
  const Pki& pki = SharedPki();
  CaPolicyOptions opts;
  opts.anchors = {*pki.anchor};
  if (state.range(1) != 0) {
    opts.crls = {*pki.crl};
  }
  opts.clock = &Clock();
  opts.chain_cache_size = state.range(0) != 0 ? 1000 : 0;
  Metrics metrics;
  opts.metrics = &metrics;
  auto policy = Must(MakeCaPolicy(std::move(opts)), "policy");
  constexpr size_t kBatch = 512;
  std::vector<Certificate> devices;
  size_t next = kBatch;
  for (auto _ : state) {
    if (next == kBatch) {
      state.PauseTiming();
      devices = pki.FreshDevices(kBatch);
      next = 0;
      state.ResumeTiming();
    }
    auto id = policy->Authorize(devices[next++], {});
    if (!id) {
      std::fprintf(stderr, "refused: %s\n", id.error().message().c_str());
      std::abort();
    }
    benchmark::DoNotOptimize(id);
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["cache_hits"] = static_cast<double>(metrics.chain_cache_hits());
}
BENCHMARK(BM_CaAuthorize)
    ->ArgNames({"cache", "crl"})
    ->Args({0, 0})
    ->Args({1, 0})
    ->Args({0, 1})
    ->Args({1, 1})
    ->Unit(benchmark::kMicrosecond);

// BM_VerifyP256Certificate is the signature check the cache skips: one ECDSA P-256 verify of
// the device certificate with the anchor's key (X509_verify).
void BM_VerifyP256Certificate(benchmark::State& state) {
  const Pki& pki = SharedPki();
  Certificate device = pki.FreshDevices(1)[0];
  EVP_PKEY* key = X509_get0_pubkey(pki.anchor->native());
  for (auto _ : state) {
    int ok = X509_verify(device.native(), key);
    if (ok != 1) {
      std::abort();
    }
    benchmark::DoNotOptimize(ok);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_VerifyP256Certificate)->Unit(benchmark::kMicrosecond);

// BM_ParseDeviceCertificate is Certificate::FromDer of the device certificate: what a server on
// GnuTLS pays on top of GnuTLS's own parse to hand the policy an OpenSSL certificate (with
// OpenSSL, libssl parses the peer's certificate itself).
void BM_ParseDeviceCertificate(benchmark::State& state) {
  const Pki& pki = SharedPki();
  for (auto _ : state) {
    auto cert = Certificate::FromDer(pki.device_der);
    benchmark::DoNotOptimize(cert);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ParseDeviceCertificate)->Unit(benchmark::kMicrosecond);

}  // namespace

int main(int argc, char** argv) {
  spdlog::set_level(spdlog::level::warn);  // one "crl_loaded" line per policy otherwise
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
