// OsslPtr<T>: ownership of OpenSSL objects, and OsslError(): turning OpenSSL's error queue into an
// `Error`. Only `core` and the TLS glue of `server`/`device` include this header.
#ifndef HALLMARK_CORE_OSSL_H_
#define HALLMARK_CORE_OSSL_H_

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <memory>
#include <string>
#include <string_view>

#include "core/status.h"

namespace hallmark {

// Deleter<T> frees one OpenSSL object; one specialisation per type.
template <typename T>
struct Deleter;

#define HALLMARK_OSSL_DELETER(type, free_fn)       \
  template <>                                      \
  struct Deleter<type> {                           \
    void operator()(type* p) const { free_fn(p); } \
  }

HALLMARK_OSSL_DELETER(BIO, BIO_free_all);
HALLMARK_OSSL_DELETER(BIGNUM, BN_free);
HALLMARK_OSSL_DELETER(EVP_PKEY, EVP_PKEY_free);
HALLMARK_OSSL_DELETER(EVP_PKEY_CTX, EVP_PKEY_CTX_free);
HALLMARK_OSSL_DELETER(EVP_MD_CTX, EVP_MD_CTX_free);
HALLMARK_OSSL_DELETER(EVP_MD, EVP_MD_free);
HALLMARK_OSSL_DELETER(X509, X509_free);
HALLMARK_OSSL_DELETER(SSL_CTX, SSL_CTX_free);
HALLMARK_OSSL_DELETER(SSL, SSL_free);
HALLMARK_OSSL_DELETER(SSL_SESSION, SSL_SESSION_free);
HALLMARK_OSSL_DELETER(X509_REQ, X509_REQ_free);
HALLMARK_OSSL_DELETER(X509_CRL, X509_CRL_free);
HALLMARK_OSSL_DELETER(X509_REVOKED, X509_REVOKED_free);
HALLMARK_OSSL_DELETER(X509_NAME, X509_NAME_free);
HALLMARK_OSSL_DELETER(X509_EXTENSION, X509_EXTENSION_free);
HALLMARK_OSSL_DELETER(X509_STORE, X509_STORE_free);
HALLMARK_OSSL_DELETER(X509_STORE_CTX, X509_STORE_CTX_free);
HALLMARK_OSSL_DELETER(X509_PUBKEY, X509_PUBKEY_free);
// ASN1_TIME, ASN1_INTEGER, ASN1_OCTET_STRING, ASN1_BIT_STRING and ASN1_ENUMERATED are all
// ASN1_STRING underneath, so one deleter serves them.
HALLMARK_OSSL_DELETER(ASN1_STRING, ASN1_STRING_free);
HALLMARK_OSSL_DELETER(ASN1_OBJECT, ASN1_OBJECT_free);
HALLMARK_OSSL_DELETER(BASIC_CONSTRAINTS, BASIC_CONSTRAINTS_free);
HALLMARK_OSSL_DELETER(AUTHORITY_KEYID, AUTHORITY_KEYID_free);
HALLMARK_OSSL_DELETER(EXTENDED_KEY_USAGE, EXTENDED_KEY_USAGE_free);
HALLMARK_OSSL_DELETER(GENERAL_NAMES, GENERAL_NAMES_free);
HALLMARK_OSSL_DELETER(GENERAL_NAME, GENERAL_NAME_free);

template <>
struct Deleter<STACK_OF(X509_EXTENSION)> {
  void operator()(STACK_OF(X509_EXTENSION) * p) const {
    sk_X509_EXTENSION_pop_free(p, X509_EXTENSION_free);
  }
};

template <>
struct Deleter<STACK_OF(X509)> {
  void operator()(STACK_OF(X509) * p) const { sk_X509_pop_free(p, X509_free); }
};

#undef HALLMARK_OSSL_DELETER

template <typename T>
using OsslPtr = std::unique_ptr<T, Deleter<T>>;

// UpRef takes another reference on a reference-counted object and returns it owned.
OsslPtr<X509> UpRef(X509* cert);
OsslPtr<EVP_PKEY> UpRef(EVP_PKEY* key);

// OsslError returns an Error with code `code` whose message is "`what` failed" (or `message` if
// given) and whose detail is OpenSSL's error queue, which it clears.
Error OsslError(std::string_view what, Code code = Code::kInternal);
Error OsslError(Code code, std::string message);

// DrainOsslErrors returns OpenSSL's error queue as text ("lib:reason; ...") and clears it.
std::string DrainOsslErrors();

// MemBio returns a read-only BIO over `data`, which must outlive it.
OsslPtr<BIO> MemBio(std::string_view data);

// BioToString returns everything written to a memory BIO.
std::string BioToString(BIO* bio);

// ScopedErrorClear clears the error queue when it goes out of scope; for places that ignore an
// OpenSSL failure on purpose.
class ScopedErrorClear {
 public:
  ScopedErrorClear() = default;
  ScopedErrorClear(const ScopedErrorClear&) = delete;
  ScopedErrorClear& operator=(const ScopedErrorClear&) = delete;
  ~ScopedErrorClear();
};

}  // namespace hallmark

#endif  // HALLMARK_CORE_OSSL_H_
