#include "core/ossl.h"

#include <openssl/err.h>

namespace hallmark {

OsslPtr<X509> UpRef(X509* cert) {
  if (cert == nullptr || X509_up_ref(cert) != 1) {
    return nullptr;
  }
  return OsslPtr<X509>(cert);
}

OsslPtr<EVP_PKEY> UpRef(EVP_PKEY* key) {
  if (key == nullptr || EVP_PKEY_up_ref(key) != 1) {
    return nullptr;
  }
  return OsslPtr<EVP_PKEY>(key);
}

std::string DrainOsslErrors() {
  std::string out;
  const char* data = nullptr;
  int flags = 0;
  unsigned long err = 0;
  while ((err = ERR_get_error_all(nullptr, nullptr, nullptr, &data, &flags)) != 0) {
    char buf[256];
    ERR_error_string_n(err, buf, sizeof(buf));
    if (!out.empty()) {
      out += "; ";
    }
    out += buf;
    if ((flags & ERR_TXT_STRING) != 0 && data != nullptr && *data != '\0') {
      out += " (";
      out += data;
      out += ")";
    }
  }
  return out;
}

Error OsslError(std::string_view what, Code code) {
  return Error(code, std::string(what) + " failed", DrainOsslErrors());
}

Error OsslError(Code code, std::string message) {
  return Error(code, std::move(message), DrainOsslErrors());
}

OsslPtr<BIO> MemBio(std::string_view data) {
  return OsslPtr<BIO>(BIO_new_mem_buf(data.data(), static_cast<int>(data.size())));
}

std::string BioToString(BIO* bio) {
  char* data = nullptr;
  long len = BIO_get_mem_data(bio, &data);
  if (len <= 0 || data == nullptr) {
    return {};
  }
  return std::string(data, static_cast<size_t>(len));
}

ScopedErrorClear::~ScopedErrorClear() { ERR_clear_error(); }

}  // namespace hallmark
