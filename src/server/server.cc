#include "server/server.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <nlohmann/json.hpp>
#include <thread>

#include "core/file.h"
#include "server/policy.h"
#include "server/record_cache.h"
#include "server/tls.h"

namespace hallmark::server {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using asio::awaitable;
using asio::use_awaitable;
using tcp = asio::ip::tcp;

constexpr auto kShutdownTimeout = std::chrono::seconds(1);

// Listener is one device endpoint: its policy and TLS context.
struct Listener {
  ListenerConfig config;
  std::unique_ptr<TrustPolicy> policy;
  std::unique_ptr<asio::ssl::context> tls;
  std::unique_ptr<tcp::acceptor> acceptor;
};

// ClassifyHandshakeError maps a failed handshake to a metrics reason.
HandshakeFailure Classify(const beast::error_code& ec, SSL* ssl) {
  // The deadline cancels the pending read; through the TLS layer that can surface as
  // operation_aborted rather than beast's timeout. Nothing else cancels a handshake.
  if (ec == beast::error::timeout || ec == asio::error::operation_aborted) {
    return HandshakeFailure::kTimeout;
  }
  const HandshakeOutcome* outcome = OutcomeOf(ssl);
  if (outcome != nullptr && !outcome->identity.has_value()) {
    return HandshakeFailure::kPolicyRejected;
  }
  if (ec.category() == asio::error::get_ssl_category()) {
    int reason = ERR_GET_REASON(static_cast<unsigned long>(ec.value()));
    if (reason == SSL_R_UNSUPPORTED_PROTOCOL) {
      return HandshakeFailure::kTlsVersion;
    }
    if (reason == SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE) {
      return HandshakeFailure::kNoClientCertificate;
    }
  }
  return HandshakeFailure::kProtocol;
}

http::response<http::string_body> JsonResponse(http::status status, const nlohmann::json& body,
                                               unsigned version, bool keep_alive) {
  http::response<http::string_body> res{status, version};
  res.set(http::field::server, "hallmark");
  res.set(http::field::content_type, "application/json");
  res.keep_alive(keep_alive);
  res.body() = body.dump() + "\n";
  res.prepare_payload();
  return res;
}

class ServerImpl : public Server {
 public:
  ServerImpl(ServerConfig config, const Clock* clock) : config_(std::move(config)), clock_(clock) {}

  Status Init(registry::Directory* directory);
  Status Start() override;
  std::vector<BoundListener> Listeners() const override;
  std::optional<Endpoint> Admin() const override;
  void Run() override;
  void Stop() override;
  const Metrics& metrics() const override { return metrics_; }

 private:
  awaitable<void> Accept(Listener* listener);
  awaitable<void> Serve(tcp::socket socket, Listener* listener);
  awaitable<void> AcceptAdmin();
  awaitable<void> ServeAdmin(tcp::socket socket);
  // Reauthorize runs the listener's policy again on the connection's peer certificate.
  Status Reauthorize(SSL* ssl, Listener* listener);
  http::response<http::string_body> Route(const http::request<http::empty_body>& req,
                                          const PeerIdentity& id);

  ServerConfig config_;
  const Clock* clock_;
  // Destroyed in reverse order: the acceptors first (they must not outlive io_), then io_ with
  // the coroutine frames it still holds (which touch metrics_ and the cache), then the rest.
  Metrics metrics_;
  std::unique_ptr<RecordCache> cache_;
  asio::io_context io_;
  std::vector<std::unique_ptr<Listener>> listeners_;
  std::unique_ptr<tcp::acceptor> admin_;
};

Status ServerImpl::Init(registry::Directory* directory) {
  auto chain = Certificate::ChainFromFile(config_.certificate);
  if (!chain) {
    return chain.error();
  }
  std::optional<SecretBytes> passphrase;
  if (!config_.passphrase_file.empty()) {
    auto p = ReadSecretFile(config_.passphrase_file);
    if (!p) {
      return p.error();
    }
    passphrase.emplace(std::move(*p));
  }
  if (auto s = CheckPrivateFile(config_.private_key); !s) {
    return s.error();
  }
  auto key_pem = ReadFile(config_.private_key);
  if (!key_pem) {
    return key_pem.error();
  }
  auto key = PrivateKey::FromPem(*key_pem, passphrase.has_value() ? &*passphrase : nullptr);
  Wipe(*key_pem);
  if (!key) {
    return key.error().WithContext(config_.private_key);
  }
  if (directory != nullptr) {
    RecordCache::Options opts;
    opts.refresh_interval = config_.registry_refresh;
    cache_ = std::make_unique<RecordCache>(directory, opts);
  }
  for (const ListenerConfig& lc : config_.listeners) {
    auto l = std::make_unique<Listener>();
    l->config = lc;
    if (lc.policy == "ca") {
      CaPolicyOptions opts;
      for (const std::string& path : lc.anchors) {
        auto anchors = Certificate::ChainFromFile(path);
        if (!anchors) {
          return anchors.error();
        }
        opts.anchors.insert(opts.anchors.end(), anchors->begin(), anchors->end());
      }
      for (const std::string& path : lc.crls) {
        auto pem = ReadFile(path);
        if (!pem) {
          return pem.error();
        }
        auto crl = Crl::FromPem(*pem);
        if (!crl) {
          return crl.error().WithContext(path);
        }
        opts.crls.push_back(std::move(*crl));
      }
      opts.registry = cache_.get();
      opts.clock = clock_;
      auto policy = MakeCaPolicy(std::move(opts));
      if (!policy) {
        return policy.error();
      }
      l->policy = std::move(*policy);
    } else {
      if (!cache_) {
        return Error(Code::kInvalidArgument, "the registry policy needs a registry");
      }
      l->policy = MakeRegistryPolicy(cache_.get());
    }
    auto ctx = MakeServerContext(*chain, *key, l->policy.get());
    if (!ctx) {
      return ctx.error();
    }
    // asio::ssl::context takes ownership of the SSL_CTX.
    l->tls = std::make_unique<asio::ssl::context>(ctx->release());
    listeners_.push_back(std::move(l));
  }
  return OkStatus();
}

Result<std::unique_ptr<tcp::acceptor>> Bind(asio::io_context& io, const Endpoint& ep) {
  beast::error_code ec;
  auto address = asio::ip::make_address(ep.host, ec);
  if (ec) {
    return Error(Code::kInvalidArgument, "invalid address " + ep.host);
  }
  auto acceptor = std::make_unique<tcp::acceptor>(io);
  tcp::endpoint endpoint(address, ep.port);
  acceptor->open(endpoint.protocol(), ec);
  if (!ec) {
    acceptor->set_option(asio::socket_base::reuse_address(true), ec);
  }
  if (!ec) {
    acceptor->bind(endpoint, ec);
  }
  if (!ec) {
    acceptor->listen(asio::socket_base::max_listen_connections, ec);
  }
  if (ec) {
    return Error(Code::kUnavailable, "cannot listen on " + ep.host + ":" + std::to_string(ep.port) +
                                         ": " + ec.message());
  }
  return acceptor;
}

Status ServerImpl::Start() {
  for (auto& l : listeners_) {
    auto acceptor = Bind(io_, l->config.listen);
    if (!acceptor) {
      return acceptor.error();
    }
    l->acceptor = std::move(*acceptor);
  }
  if (config_.admin.has_value()) {
    auto acceptor = Bind(io_, *config_.admin);
    if (!acceptor) {
      return acceptor.error();
    }
    admin_ = std::move(*acceptor);
  }
  for (auto& l : listeners_) {
    asio::co_spawn(io_, Accept(l.get()), asio::detached);
  }
  if (admin_) {
    asio::co_spawn(io_, AcceptAdmin(), asio::detached);
  }
  if (cache_) {
    cache_->StartRefresher();
  }
  return OkStatus();
}

std::vector<BoundListener> ServerImpl::Listeners() const {
  std::vector<BoundListener> out;
  for (const auto& l : listeners_) {
    beast::error_code ec;
    auto ep = l->acceptor->local_endpoint(ec);
    out.push_back({l->config.policy, Endpoint{ep.address().to_string(), ep.port()}});
  }
  return out;
}

std::optional<Endpoint> ServerImpl::Admin() const {
  if (!admin_) {
    return std::nullopt;
  }
  beast::error_code ec;
  auto ep = admin_->local_endpoint(ec);
  return Endpoint{ep.address().to_string(), ep.port()};
}

void ServerImpl::Run() {
  int n = config_.threads > 0 ? config_.threads
                              : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  std::vector<std::thread> workers;
  for (int i = 1; i < n; ++i) {
    workers.emplace_back([this]() { io_.run(); });
  }
  io_.run();
  for (auto& t : workers) {
    t.join();
  }
}

void ServerImpl::Stop() { io_.stop(); }

awaitable<void> ServerImpl::Accept(Listener* listener) {
  for (;;) {
    beast::error_code ec;
    tcp::socket socket =
        co_await listener->acceptor->async_accept(asio::redirect_error(use_awaitable, ec));
    if (ec) {
      if (ec == asio::error::operation_aborted) {
        co_return;
      }
      // EMFILE and friends: the pending connection stays queued, so retrying at once would
      // spin. Back off briefly; connections that close meanwhile free descriptors.
      spdlog::warn("event=accept_failed error=\"{}\"", ec.message());
      asio::steady_timer backoff(io_, std::chrono::milliseconds(100));
      co_await backoff.async_wait(asio::redirect_error(use_awaitable, ec));
      continue;
    }
    metrics_.ConnectionAccepted();
    // Handshake flights and responses are small: send them at once (no Nagle + delayed ACK).
    socket.set_option(tcp::no_delay(true), ec);
    if (static_cast<size_t>(metrics_.active()) >= config_.max_connections) {
      metrics_.ConnectionRefusedAtLimit();
      socket.close(ec);
      continue;
    }
    // Counted here, not when Serve starts, so a burst cannot overshoot the cap.
    metrics_.ConnectionOpened();
    asio::co_spawn(io_, Serve(std::move(socket), listener), asio::detached);
  }
}

awaitable<void> ServerImpl::Serve(tcp::socket socket, Listener* listener) {
  struct Closer {
    Metrics* m;
    ~Closer() { m->ConnectionClosed(); }
  } closer{&metrics_};
  beast::error_code ec;
  const auto peer = socket.remote_endpoint(ec);
  const std::string peer_text =
      ec ? std::string("unknown") : peer.address().to_string() + ":" + std::to_string(peer.port());
  beast::ssl_stream<beast::tcp_stream> stream(std::move(socket), *listener->tls);
  auto& tcp_stream = beast::get_lowest_layer(stream);
  const auto start = std::chrono::steady_clock::now();
  tcp_stream.expires_after(config_.handshake_timeout);
  co_await stream.async_handshake(asio::ssl::stream_base::server,
                                  asio::redirect_error(use_awaitable, ec));
  SSL* ssl = stream.native_handle();
  const HandshakeOutcome* outcome = OutcomeOf(ssl);
  if (ec || outcome == nullptr || !outcome->identity.has_value()) {
    HandshakeFailure why = Classify(ec, ssl);
    metrics_.HandshakeFailed(why);
    spdlog::info("event=handshake_rejected peer={} policy={} reason={} detail=\"{}\"", peer_text,
                 listener->policy->name(), HandshakeFailureName(why),
                 outcome != nullptr ? outcome->rejection : ec.message());
    co_return;
  }
  const PeerIdentity identity = *outcome->identity;
  metrics_.HandshakeSucceeded(identity.policy, std::chrono::steady_clock::now() - start);
  spdlog::debug("event=handshake_ok peer={} policy={} device={}", peer_text, identity.policy,
                identity.device_id);

  for (;;) {
    tcp_stream.expires_after(config_.idle_timeout);
    // A fresh buffer per request: an idle connection holds no request memory.
    beast::flat_buffer buffer(config_.max_header_bytes);
    http::request_parser<http::empty_body> parser;
    parser.header_limit(config_.max_header_bytes);
    parser.body_limit(0);
    co_await http::async_read(stream, buffer, parser, asio::redirect_error(use_awaitable, ec));
    if (ec) {
      if (ec == http::error::header_limit || ec == http::error::buffer_overflow) {
        auto res = JsonResponse(http::status::request_header_fields_too_large,
                                {{"error", "request header too large"}}, 11, false);
        metrics_.Request(431);
        tcp_stream.expires_after(kShutdownTimeout);
        co_await http::async_write(stream, res, asio::redirect_error(use_awaitable, ec));
      } else if (ec == http::error::body_limit || ec == http::error::unexpected_body) {
        auto res = JsonResponse(http::status::payload_too_large,
                                {{"error", "this endpoint takes no request body"}}, 11, false);
        metrics_.Request(413);
        tcp_stream.expires_after(kShutdownTimeout);
        co_await http::async_write(stream, res, asio::redirect_error(use_awaitable, ec));
      }
      break;
    }
    http::request<http::empty_body> req = parser.release();
    // The identity was decided at the handshake; a long-lived connection must not outlive a
    // revocation or an expiry, so the policy decides again for every request.
    if (auto s = Reauthorize(ssl, listener); !s) {
      metrics_.HandshakeFailed(HandshakeFailure::kPolicyRejected);
      spdlog::info("event=connection_revoked peer={} policy={} device={} detail=\"{}\"", peer_text,
                   listener->policy->name(), identity.device_id, s.error().message());
      break;
    }
    auto res = Route(req, identity);
    metrics_.Request(static_cast<int>(res.result_int()));
    co_await http::async_write(stream, res, asio::redirect_error(use_awaitable, ec));
    if (ec || !res.keep_alive()) {
      break;
    }
  }
  tcp_stream.expires_after(kShutdownTimeout);
  co_await stream.async_shutdown(asio::redirect_error(use_awaitable, ec));
}

Status ServerImpl::Reauthorize(SSL* ssl, Listener* listener) {
  X509* leaf = SSL_get0_peer_certificate(ssl);
  if (leaf == nullptr) {
    return Error(Code::kUnauthenticated, "no peer certificate");
  }
  auto cert = Certificate::FromNative(leaf);
  if (!cert) {
    return cert.error();
  }
  std::vector<Certificate> chain;
  STACK_OF(X509)* peer_chain = SSL_get_peer_cert_chain(ssl);
  for (int i = 0; peer_chain != nullptr && i < sk_X509_num(peer_chain); ++i) {
    X509* c = sk_X509_value(peer_chain, i);
    if (X509_cmp(c, leaf) == 0) {
      continue;
    }
    auto next = Certificate::FromNative(c);
    if (!next) {
      return next.error();
    }
    chain.push_back(std::move(*next));
  }
  auto id = listener->policy->Authorize(*cert, chain);
  if (!id) {
    return id.error();
  }
  return OkStatus();
}

http::response<http::string_body> ServerImpl::Route(const http::request<http::empty_body>& req,
                                                    const PeerIdentity& id) {
  const bool keep_alive = req.keep_alive();
  std::string_view target(req.target().data(), req.target().size());
  if (target == "/v1/hello") {
    if (req.method() != http::verb::get) {
      auto res = JsonResponse(http::status::method_not_allowed, {{"error", "use GET"}},
                              req.version(), keep_alive);
      res.set(http::field::allow, "GET");
      return res;
    }
    nlohmann::json body = {{"device_id", id.device_id},
                           {"policy", id.policy},
                           {"owner", id.owner},
                           {"serial", id.serial},
                           {"path", id.path},
                           {"subject", id.subject},
                           {"message", "hello, " + (id.serial.empty() ? id.device_id : id.serial)}};
    if (id.not_after != 0) {
      body["certificate_not_after"] = FormatTime(id.not_after);
    }
    return JsonResponse(http::status::ok, body, req.version(), keep_alive);
  }
  return JsonResponse(http::status::not_found, {{"error", "no such endpoint"}}, req.version(),
                      keep_alive);
}

awaitable<void> ServerImpl::AcceptAdmin() {
  for (;;) {
    beast::error_code ec;
    tcp::socket socket = co_await admin_->async_accept(asio::redirect_error(use_awaitable, ec));
    if (ec) {
      if (ec == asio::error::operation_aborted) {
        co_return;
      }
      continue;
    }
    asio::co_spawn(io_, ServeAdmin(std::move(socket)), asio::detached);
  }
}

awaitable<void> ServerImpl::ServeAdmin(tcp::socket socket) {
  beast::tcp_stream stream(std::move(socket));
  beast::flat_buffer buffer;
  beast::error_code ec;
  stream.expires_after(std::chrono::seconds(10));
  http::request_parser<http::empty_body> parser;
  parser.header_limit(8192);
  co_await http::async_read(stream, buffer, parser, asio::redirect_error(use_awaitable, ec));
  if (ec) {
    co_return;
  }
  auto req = parser.release();
  http::response<http::string_body> res{http::status::ok, req.version()};
  res.set(http::field::server, "hallmark");
  res.keep_alive(false);
  if (req.target() == "/metrics") {
    res.set(http::field::content_type, "text/plain; version=0.0.4");
    res.body() = metrics_.Render();
  } else if (req.target() == "/healthz") {
    res.set(http::field::content_type, "text/plain");
    res.body() = "ok\n";
  } else {
    res.result(http::status::not_found);
    res.set(http::field::content_type, "text/plain");
    res.body() = "not found\n";
  }
  res.prepare_payload();
  co_await http::async_write(stream, res, asio::redirect_error(use_awaitable, ec));
  stream.socket().shutdown(tcp::socket::shutdown_both, ec);
}

}  // namespace

Result<std::unique_ptr<Server>> Server::Create(const ServerConfig& config,
                                               registry::Directory* directory, const Clock* clock) {
  auto server = std::make_unique<ServerImpl>(config, clock);
  bool needs_registry = false;
  for (const ListenerConfig& l : config.listeners) {
    needs_registry = needs_registry || l.policy == "registry";
  }
  if (needs_registry && directory == nullptr) {
    return Error(Code::kInvalidArgument, "a listener uses the registry policy but no registry");
  }
  if (auto s = server->Init(directory); !s) {
    return s.error();
  }
  return std::unique_ptr<Server>(std::move(server));
}

}  // namespace hallmark::server
