// TlsLibrary: which TLS library serves a server's device listeners (server/tls.h).
#ifndef HALLMARK_SERVER_TLS_LIBRARY_H_
#define HALLMARK_SERVER_TLS_LIBRARY_H_

#include <string_view>

#include "core/status.h"

namespace hallmark::server {

enum class TlsLibrary { kOpenSsl, kGnuTls };

// TlsLibraryName is "openssl" or "gnutls"; ParseTlsLibrary is its inverse (kInvalidArgument
// otherwise, naming the choices).
std::string_view TlsLibraryName(TlsLibrary library);
Result<TlsLibrary> ParseTlsLibrary(std::string_view name);

}  // namespace hallmark::server

#endif  // HALLMARK_SERVER_TLS_LIBRARY_H_
