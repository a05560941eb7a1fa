#include "core/signature_memo.h"

#include <openssl/evp.h>

#include <cstring>

#include "core/ossl.h"

namespace hallmark {
namespace {

// Digest of one check: lengths first, so no two different (key, signature, message) triples
// hash the same bytes.
bool DigestOf(const PublicKey& key, std::span<const uint8_t> data,
              std::span<const uint8_t> signature, std::array<uint8_t, 32>& out) {
  OsslPtr<EVP_MD_CTX> ctx(EVP_MD_CTX_new());
  uint64_t lengths[3] = {key.SpkiDer().size(), signature.size(), data.size()};
  unsigned int len = 0;
  return ctx && EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) == 1 &&
         EVP_DigestUpdate(ctx.get(), lengths, sizeof(lengths)) == 1 &&
         EVP_DigestUpdate(ctx.get(), key.SpkiDer().data(), key.SpkiDer().size()) == 1 &&
         EVP_DigestUpdate(ctx.get(), signature.data(), signature.size()) == 1 &&
         EVP_DigestUpdate(ctx.get(), data.data(), data.size()) == 1 &&
         EVP_DigestFinal_ex(ctx.get(), out.data(), &len) == 1 && len == out.size();
}

}  // namespace

size_t SignatureMemo::DigestHash::operator()(const Digest& d) const {
  size_t h = 0;
  std::memcpy(&h, d.data(), sizeof(h));
  return h;
}

Status SignatureMemo::Verify(const PublicKey& key, std::span<const uint8_t> data,
                             std::span<const uint8_t> signature) {
  Digest digest;
  if (!DigestOf(key, data, signature, digest)) {
    return key.Verify(data, signature);  // no memo without a digest
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (seen_.count(digest) > 0) {
      ++hits_;
      return OkStatus();
    }
  }
  if (auto s = key.Verify(data, signature); !s) {
    return s;
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (capacity_ > 0 && seen_.insert(digest).second) {
    order_.push_back(digest);
    if (order_.size() > capacity_) {
      seen_.erase(order_.front());
      order_.pop_front();
    }
  }
  return OkStatus();
}

SignatureMemo& SignatureMemo::Shared() {
  static SignatureMemo* memo = new SignatureMemo(8192);  // never destroyed: used at exit too
  return *memo;
}

uint64_t SignatureMemo::hits() const {
  std::lock_guard<std::mutex> lock(mu_);
  return hits_;
}

size_t SignatureMemo::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return seen_.size();
}

}  // namespace hallmark
