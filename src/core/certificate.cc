#include "core/certificate.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <ctime>

#include "core/file.h"
#include "core/ossl.h"

namespace hallmark {
namespace {

std::shared_ptr<X509> ShareCert(OsslPtr<X509> cert) {
  return std::shared_ptr<X509>(cert.release(), X509_free);
}

std::string NameToString(const X509_NAME* name) {
  OsslPtr<BIO> bio(BIO_new(BIO_s_mem()));
  X509_NAME_print_ex(bio.get(), name, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB);
  return BioToString(bio.get());
}

int64_t AsnTimeToEpoch(const ASN1_TIME* t) {
  struct tm tm {};
  if (ASN1_TIME_to_tm(t, &tm) != 1) {
    ERR_clear_error();
    return 0;
  }
  return static_cast<int64_t>(timegm(&tm));
}

}  // namespace

std::string FormatTime(int64_t epoch_seconds) {
  if (epoch_seconds == kNoWellDefinedExpiration) {
    return "never (99991231235959Z)";
  }
  time_t t = static_cast<time_t>(epoch_seconds);
  struct tm tm {};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

Result<Certificate> Certificate::Wrap(OsslPtr<X509> cert) {
  std::shared_ptr<X509> shared = ShareCert(std::move(cert));
  // The key shares ownership of the certificate it lives in.
  auto pk = PublicKey::FromX509Pubkey(
      std::shared_ptr<X509_PUBKEY>(shared, X509_get_X509_PUBKEY(shared.get())));
  if (!pk) {
    return Error(Code::kInvalidArgument, "certificate's public key does not parse",
                 pk.error().detail());
  }
  return Certificate(std::move(shared), std::move(*pk));
}

Result<Certificate> Certificate::FromNative(X509* cert) {
  OsslPtr<X509> ref = UpRef(cert);
  if (!ref) {
    return Error(Code::kInvalidArgument, "no certificate");
  }
  return Wrap(std::move(ref));
}

Certificate Certificate::FromSigned(OsslPtr<X509> cert, PublicKey key) {
  Certificate c(ShareCert(std::move(cert)), std::move(key));
  c.der_ = std::make_shared<const Bytes>(c.ToDer());
  c.reparsed_ = std::make_shared<Reparsed>();
  return c;
}

X509* Certificate::native() const {
  if (!reparsed_) {
    return cert_.get();
  }
  std::call_once(reparsed_->once, [this]() {
    Bytes der = ToDer();
    const unsigned char* p = der.data();
    reparsed_->x509.reset(d2i_X509(nullptr, &p, static_cast<long>(der.size())));
  });
  return reparsed_->x509 ? reparsed_->x509.get() : cert_.get();
}

Result<Certificate> Certificate::FromPem(std::string_view pem) {
  OsslPtr<BIO> bio = MemBio(pem);
  OsslPtr<X509> cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  if (!cert) {
    return OsslError(Code::kInvalidArgument, "text is not a PEM certificate");
  }
  return Wrap(std::move(cert));
}

Result<Certificate> Certificate::FromDer(std::span<const uint8_t> der) {
  const unsigned char* p = der.data();
  OsslPtr<X509> cert(d2i_X509(nullptr, &p, static_cast<long>(der.size())));
  if (!cert) {
    return OsslError(Code::kInvalidArgument, "bytes are not a DER certificate");
  }
  if (p != der.data() + der.size()) {
    return Error(Code::kInvalidArgument, "certificate DER has trailing bytes");
  }
  return Wrap(std::move(cert));
}

Result<std::vector<Certificate>> Certificate::ChainFromPem(std::string_view pem) {
  std::vector<Certificate> out;
  OsslPtr<BIO> bio = MemBio(pem);
  for (;;) {
    OsslPtr<X509> cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
    if (!cert) {
      unsigned long err = ERR_peek_last_error();
      if (ERR_GET_REASON(err) == PEM_R_NO_START_LINE && !out.empty()) {
        ERR_clear_error();
        break;
      }
      return OsslError(Code::kInvalidArgument, "certificate " + std::to_string(out.size() + 1) +
                                                   " of the PEM text does not parse");
    }
    auto c = Wrap(std::move(cert));
    if (!c) {
      return c.error();
    }
    out.push_back(std::move(*c));
  }
  return out;
}

Result<std::vector<Certificate>> Certificate::ChainFromFile(const std::string& path) {
  auto pem = ReadFile(path);
  if (!pem) {
    return pem.error();
  }
  auto chain = ChainFromPem(*pem);
  if (!chain) {
    return chain.error().WithContext(path);
  }
  return chain;
}

std::string Certificate::ToPem() const {
  Bytes der = ToDer();
  OsslPtr<BIO> bio(BIO_new(BIO_s_mem()));
  PEM_write_bio(bio.get(), "CERTIFICATE", "", der.data(), static_cast<long>(der.size()));
  return BioToString(bio.get());
}

Bytes Certificate::ToDer() const {
  if (der_) {
    return *der_;
  }
  int len = i2d_X509(cert_.get(), nullptr);
  Bytes der(static_cast<size_t>(len > 0 ? len : 0));
  unsigned char* p = der.data();
  i2d_X509(cert_.get(), &p);
  return der;
}

std::string Certificate::Subject() const {
  return NameToString(X509_get_subject_name(cert_.get()));
}

std::string Certificate::Issuer() const { return NameToString(X509_get_issuer_name(cert_.get())); }

std::optional<std::string> Certificate::SubjectAttribute(std::string_view short_name) const {
  int nid = OBJ_sn2nid(std::string(short_name).c_str());
  if (nid == NID_undef) {
    return std::nullopt;
  }
  const X509_NAME* name = X509_get_subject_name(cert_.get());
  int idx = X509_NAME_get_index_by_NID(name, nid, -1);
  if (idx < 0) {
    return std::nullopt;
  }
  const ASN1_STRING* data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, idx));
  unsigned char* utf8 = nullptr;
  int len = ASN1_STRING_to_UTF8(&utf8, data);
  if (len < 0) {
    ERR_clear_error();
    return std::nullopt;
  }
  std::string out(reinterpret_cast<char*>(utf8), static_cast<size_t>(len));
  OPENSSL_free(utf8);
  return out;
}

std::string Certificate::SerialHex() const {
  OsslPtr<BIGNUM> bn(ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert_.get()), nullptr));
  if (!bn) {
    ERR_clear_error();
    return {};
  }
  Bytes bytes(static_cast<size_t>(BN_num_bytes(bn.get())));
  BN_bn2bin(bn.get(), bytes.data());
  return HexEncode(bytes);
}

int64_t Certificate::NotBefore() const { return AsnTimeToEpoch(X509_get0_notBefore(cert_.get())); }

int64_t Certificate::NotAfter() const { return AsnTimeToEpoch(X509_get0_notAfter(cert_.get())); }

bool Certificate::IsCa() const {
  uint32_t flags = X509_get_extension_flags(native());
  return (flags & EXFLAG_BCONS) != 0 && (flags & EXFLAG_CA) != 0;
}

PublicKey Certificate::Key() const { return key_; }

std::string Certificate::Sha256Fingerprint() const { return HexEncode(Sha256(ToDer())); }

std::string ChainToPem(std::span<const Certificate> chain) {
  std::string out;
  for (const Certificate& c : chain) {
    out += c.ToPem();
  }
  return out;
}

Status VerifyCertificate(const Certificate& leaf, std::span<const Certificate> intermediates,
                         std::span<const Certificate> anchors, const VerifyOptions& options) {
  OsslPtr<X509_STORE> store(X509_STORE_new());
  OsslPtr<STACK_OF(X509)> untrusted(sk_X509_new_null());
  OsslPtr<X509_STORE_CTX> ctx(X509_STORE_CTX_new());
  if (!store || !untrusted || !ctx) {
    return OsslError("allocating a certificate store");
  }
  for (const Certificate& a : anchors) {
    if (X509_STORE_add_cert(store.get(), a.native()) != 1) {
      return OsslError("X509_STORE_add_cert");
    }
  }
  for (const Certificate& c : intermediates) {
    OsslPtr<X509> ref = UpRef(c.native());
    if (!ref || sk_X509_push(untrusted.get(), ref.get()) <= 0) {
      return OsslError("sk_X509_push");
    }
    ref.release();  // sk_X509_push took ownership.
  }
  if (X509_STORE_CTX_init(ctx.get(), store.get(), leaf.native(), untrusted.get()) != 1) {
    return OsslError("X509_STORE_CTX_init");
  }
  X509_VERIFY_PARAM* param = X509_STORE_CTX_get0_param(ctx.get());
  if (options.at_time != 0) {
    X509_VERIFY_PARAM_set_time(param, static_cast<time_t>(options.at_time));
  }
  if (options.partial_chain) {
    X509_VERIFY_PARAM_set_flags(param, X509_V_FLAG_PARTIAL_CHAIN);
  }
  if (options.require_client_auth) {
    X509_VERIFY_PARAM_set_purpose(param, X509_PURPOSE_SSL_CLIENT);
  }
  if (X509_verify_cert(ctx.get()) != 1) {
    int err = X509_STORE_CTX_get_error(ctx.get());
    ERR_clear_error();
    return Error(Code::kUnauthenticated,
                 std::string("certificate does not verify: ") + X509_verify_cert_error_string(err));
  }
  return OkStatus();
}

}  // namespace hallmark
