#include "device/tpm_key_store.h"

#include <openssl/core_names.h>
#include <openssl/decoder.h>
#include <openssl/encoder.h>
#include <openssl/provider.h>

#include <cstdlib>
#include <map>
#include <mutex>
#include <optional>

#include "core/external_key.h"
#include "core/file.h"
#include "core/ossl.h"

namespace hallmark::device {
namespace {

// kProps selects the TPM's implementations inside the TPM library context.
constexpr char kProps[] = "provider=tpm2";

// TpmProvider is the tpm2-openssl provider connected to one TPM, in its own OpenSSL library
// context, so that nothing else in the process (hashing, the TLS record layer, randomness) is
// routed to the TPM by accident. Shared by all keys of one TCTI; the last key unloads it.
class TpmProvider {
 public:
  static Result<std::shared_ptr<TpmProvider>> Get(const std::string& tcti);
  ~TpmProvider() {
    OSSL_PROVIDER_unload(tpm2_);
    OSSL_PROVIDER_unload(default_);
    OSSL_LIB_CTX_free(ctx_);
  }
  TpmProvider(const TpmProvider&) = delete;
  TpmProvider& operator=(const TpmProvider&) = delete;

  OSSL_LIB_CTX* ctx() const { return ctx_; }
  const std::string& tcti() const { return tcti_; }
  // mu serialises every call into this TPM: the provider's TSS context is not thread-safe.
  std::mutex mu;

 private:
  TpmProvider(std::string tcti, OSSL_LIB_CTX* ctx, OSSL_PROVIDER* tpm2, OSSL_PROVIDER* dflt)
      : tcti_(std::move(tcti)), ctx_(ctx), tpm2_(tpm2), default_(dflt) {}

  std::string tcti_;
  OSSL_LIB_CTX* ctx_;
  OSSL_PROVIDER* tpm2_;
  OSSL_PROVIDER* default_;
};

// LoadTpm2 loads the provider into `ctx`. The provider reads its TCTI from TPM2OPENSSL_TCTI
// while it initialises (OpenSSL 3.0 has no other way to hand a provider a parameter without a
// configuration file), so the variable is set for the duration of the load and restored.
OSSL_PROVIDER* LoadTpm2(OSSL_LIB_CTX* ctx, const std::string& tcti) {
  constexpr char kVar[] = "TPM2OPENSSL_TCTI";
  std::optional<std::string> saved;
  if (const char* old = std::getenv(kVar); old != nullptr) {
    saved = old;
  }
  if (!tcti.empty()) {
    ::setenv(kVar, tcti.c_str(), 1);
  }
  // The TSS logs failures to stderr itself; ours are reported as errors instead.
  ::setenv("TSS2_LOG", "all+NONE", /*overwrite=*/0);
  OSSL_PROVIDER* p = OSSL_PROVIDER_load(ctx, "tpm2");
  if (saved.has_value()) {
    ::setenv(kVar, saved->c_str(), 1);
  } else {
    ::unsetenv(kVar);
  }
  return p;
}

Result<std::shared_ptr<TpmProvider>> TpmProvider::Get(const std::string& tcti) {
  static std::mutex mu;
  static std::map<std::string, std::weak_ptr<TpmProvider>> loaded;
  std::lock_guard<std::mutex> lock(mu);
  if (auto existing = loaded[tcti].lock()) {
    return existing;
  }
  OSSL_LIB_CTX* ctx = OSSL_LIB_CTX_new();
  if (ctx == nullptr) {
    return OsslError("OSSL_LIB_CTX_new");
  }
  OSSL_PROVIDER* dflt = OSSL_PROVIDER_load(ctx, "default");
  OSSL_PROVIDER* tpm2 = dflt != nullptr ? LoadTpm2(ctx, tcti) : nullptr;
  if (tpm2 == nullptr) {
    Error e = OsslError(Code::kUnavailable,
                        "cannot reach the TPM through TCTI '" +
                            (tcti.empty() ? std::string("default") : tcti) +
                            "' (is the TPM, or swtpm, running? is tpm2-openssl installed?)");
    OSSL_PROVIDER_unload(dflt);
    OSSL_LIB_CTX_free(ctx);
    return e;
  }
  std::shared_ptr<TpmProvider> p(new TpmProvider(tcti, ctx, tpm2, dflt));
  loaded[tcti] = p;
  return p;
}

// TpmSigner signs digests with a key loaded into the TPM. Member order matters: the key is
// freed (and flushed from the TPM) before the provider it belongs to.
class TpmSigner : public ExternalSigner {
 public:
  TpmSigner(std::shared_ptr<TpmProvider> provider, OsslPtr<EVP_PKEY> key, std::string what)
      : provider_(std::move(provider)), key_(std::move(key)), what_(std::move(what)) {}
  ~TpmSigner() override {
    // Freeing the key flushes it from the TPM, which is a TPM call like any other.
    std::lock_guard<std::mutex> lock(provider_->mu);
    key_.reset();
  }

  Result<Bytes> SignDigest(std::span<const uint8_t> digest) override {
    const EVP_MD* md = digest.size() == 48 ? EVP_sha384() : EVP_sha256();
    std::lock_guard<std::mutex> lock(provider_->mu);
    OsslPtr<EVP_PKEY_CTX> ctx(EVP_PKEY_CTX_new_from_pkey(provider_->ctx(), key_.get(), kProps));
    size_t len = 0;
    if (!ctx || EVP_PKEY_sign_init(ctx.get()) != 1 ||
        EVP_PKEY_CTX_set_signature_md(ctx.get(), md) != 1 ||
        EVP_PKEY_sign(ctx.get(), nullptr, &len, digest.data(), digest.size()) != 1) {
      return OsslError(Code::kUnavailable, what_ + " could not sign");
    }
    Bytes sig(len);
    if (EVP_PKEY_sign(ctx.get(), sig.data(), &len, digest.data(), digest.size()) != 1) {
      return OsslError(Code::kUnavailable, what_ + " could not sign");
    }
    sig.resize(len);
    return sig;
  }

 private:
  std::shared_ptr<TpmProvider> provider_;
  OsslPtr<EVP_PKEY> key_;
  std::string what_;
};

Result<const char*> CurveName(KeyType type) {
  switch (type) {
    case KeyType::kP256:
      return "P-256";
    case KeyType::kP384:
      return "P-384";
    case KeyType::kEd25519:
      break;
  }
  return Error(Code::kInvalidArgument, "TPM keys here are EC P-256 or P-384; " +
                                           std::string(KeyTypeName(type)) + " is not supported");
}

}  // namespace

std::string TpmKeyStore::Describe() const {
  std::string d = "tpm:key=" + options_.key_path;
  if (!options_.tcti.empty()) {
    d += ";tcti=" + options_.tcti;
  }
  return d;
}

Result<PublicKey> TpmKeyStore::Create(KeyType type) {
  const std::string& path = options_.key_path;
  if (FileExists(path)) {
    return Error(Code::kAlreadyExists,
                 "TPM key " + path + " already exists; refusing to replace an identity");
  }
  auto curve = CurveName(type);
  if (!curve) {
    return curve.error();
  }
  auto provider = TpmProvider::Get(options_.tcti);
  if (!provider) {
    return provider.error();
  }
  std::string blob;
  Result<PublicKey> pub = Error(Code::kInternal, "unset");
  {
    std::lock_guard<std::mutex> lock((*provider)->mu);
    OsslPtr<EVP_PKEY_CTX> gen(EVP_PKEY_CTX_new_from_name((*provider)->ctx(), "EC", kProps));
    EVP_PKEY* raw = nullptr;
    if (!gen || EVP_PKEY_keygen_init(gen.get()) != 1 ||
        EVP_PKEY_CTX_set_group_name(gen.get(), *curve) != 1 ||
        EVP_PKEY_generate(gen.get(), &raw) != 1) {
      return OsslError(Code::kUnavailable, "the TPM could not create the key");
    }
    OsslPtr<EVP_PKEY> key(raw);
    OsslPtr<BIO> out(BIO_new(BIO_s_mem()));
    OSSL_ENCODER_CTX* enc =
        OSSL_ENCODER_CTX_new_for_pkey(key.get(), EVP_PKEY_KEYPAIR, "PEM", nullptr, kProps);
    const bool encoded = enc != nullptr && out && OSSL_ENCODER_to_bio(enc, out.get()) == 1;
    OSSL_ENCODER_CTX_free(enc);
    if (!encoded) {
      return OsslError("encoding the TPM key blob");
    }
    blob = BioToString(out.get());
    pub = EcPublicKeyOf(key.get());
  }
  if (!pub) {
    return pub.error();
  }
  // The key exists only as this blob: the TPM flushed it when `key` was freed.
  if (auto s = WriteFileAtomic(path, blob, 0600, /*exclusive=*/true); !s) {
    return s.error();
  }
  return pub;
}

Result<PrivateKey> TpmKeyStore::Load() {
  const std::string& path = options_.key_path;
  if (!FileExists(path)) {
    return Error(Code::kNotFound,
                 "TPM key " + path + " does not exist (create it with 'hallmark device keygen')");
  }
  auto blob = ReadFile(path);
  if (!blob) {
    return blob.error();
  }
  auto provider = TpmProvider::Get(options_.tcti);
  if (!provider) {
    return provider.error();
  }
  OsslPtr<EVP_PKEY> key;
  Result<PublicKey> pub = Error(Code::kInternal, "unset");
  {
    std::lock_guard<std::mutex> lock((*provider)->mu);
    EVP_PKEY* raw = nullptr;
    OSSL_DECODER_CTX* dec = OSSL_DECODER_CTX_new_for_pkey(
        &raw, "PEM", nullptr, "EC", EVP_PKEY_KEYPAIR, (*provider)->ctx(), kProps);
    const auto* data = reinterpret_cast<const unsigned char*>(blob->data());
    size_t left = blob->size();
    const bool decoded = dec != nullptr && OSSL_DECODER_from_data(dec, &data, &left) == 1;
    OSSL_DECODER_CTX_free(dec);
    key.reset(raw);
    if (!decoded || !key) {
      return OsslError(Code::kFailedPrecondition,
                       "TPM key " + path +
                           " cannot be loaded into this TPM (it was made by another TPM, or it "
                           "is corrupt)");
    }
    pub = EcPublicKeyOf(key.get());
  }
  if (!pub) {
    return pub.error();
  }
  auto signer =
      std::make_shared<TpmSigner>(std::move(*provider), std::move(key), "the TPM key " + path);
  return WrapExternalKey(*pub, std::move(signer));
}

}  // namespace hallmark::device
