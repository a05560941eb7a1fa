#include "server/tls.h"

#include <openssl/crypto.h>

namespace hallmark::server {

Result<SecretBytes> TlsConnection::ExportKeyingMaterial(std::string_view label,
                                                        std::span<const uint8_t> context,
                                                        size_t length) const {
  if (length == 0 || length > kMaxExporterLength) {
    return Error(Code::kInvalidArgument, "exporter length must be 1.." +
                                             std::to_string(kMaxExporterLength) + " bytes");
  }
  std::vector<uint8_t> out(length);
  if (auto s = Export(label, context, out); !s) {
    return s.error();
  }
  SecretBytes secret{std::span<const uint8_t>(out)};
  OPENSSL_cleanse(out.data(), out.size());
  return secret;
}

std::string_view TlsLibraryName(TlsLibrary library) {
  return library == TlsLibrary::kGnuTls ? "gnutls" : "openssl";
}

Result<TlsLibrary> ParseTlsLibrary(std::string_view name) {
  if (name == "openssl") {
    return TlsLibrary::kOpenSsl;
  }
  if (name == "gnutls") {
    return TlsLibrary::kGnuTls;
  }
  return Error(Code::kInvalidArgument,
               "unknown TLS library \"" + std::string(name) + "\" (use \"openssl\" or \"gnutls\")");
}

std::unique_ptr<HandshakeOutcome> PeerVerification::Decide(
    const Result<std::vector<Certificate>>& chain, bool& accept) const {
  auto outcome = std::make_unique<HandshakeOutcome>();
  accept = false;
  if (!chain) {
    outcome->rejection = chain.error().message();
    return outcome;
  }
  if (chain->empty()) {
    outcome->rejection = "no client certificate";
    return outcome;
  }
  auto id = policy->Authorize(chain->front(), std::span(*chain).subspan(1));
  if (id) {
    outcome->identity = std::move(*id);
    accept = true;
  } else {
    outcome->rejection = id.error().message();
    accept = admit_unknown;  // admitted without an identity
  }
  return outcome;
}

Result<std::unique_ptr<TlsServer>> MakeTlsServer(const TlsServerOptions& options) {
  if (options.chain.empty()) {
    return Error(Code::kInvalidArgument, "server certificate chain is empty");
  }
  if (options.key == nullptr || !(options.chain.front().Key() == options.key->Public())) {
    return Error(Code::kInvalidArgument, "server private key does not match the certificate " +
                                             options.chain.front().Subject());
  }
  if (options.verification == nullptr || options.verification->policy == nullptr) {
    return Error(Code::kInvalidArgument, "a TLS listener needs a trust policy");
  }
  return options.library == TlsLibrary::kGnuTls ? MakeGnuTlsServer(options)
                                                 : MakeOpenSslServer(options);
}

}  // namespace hallmark::server
