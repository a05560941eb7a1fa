#include "server/server.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <csignal>
#include <map>
#include <nlohmann/json.hpp>
#include <thread>

#include "core/file.h"
#include "server/handler.h"
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
using Io = TlsConnection::Io;

constexpr size_t kReadChunk = 4096;
// kMaxLingerBytes bounds what a refused request may still send before the connection closes.
constexpr uint64_t kMaxLingerBytes = uint64_t{1} << 20;

// Listener is one device endpoint: its policy and TLS context.
struct Listener {
  ListenerConfig config;
  std::unique_ptr<TrustPolicy> policy;
  PeerVerification verification;
  std::unique_ptr<TlsServer> tls;
};

// Worker is one event loop on its own thread, with its own acceptor on every listening socket
// (dup'ed descriptors: the kernel hands each connection to whichever loop accepts first). A
// connection stays on the loop that accepted it, so nothing per connection is shared between
// threads.
struct Worker {
  asio::io_context io{1};
  std::vector<std::unique_ptr<tcp::acceptor>> acceptors;  // parallel to the listeners
};

// Connection is the per-connection state that outlives single requests. Small on purpose: an
// idle device costs this, the TLS session, the socket and one pending wait; no coroutine frame
// (ServerImpl::Active runs only while a handshake or a request is in progress). Closing is
// counted when the last reference goes.
struct Connection {
  Connection(tcp::socket s, std::unique_ptr<TlsConnection> t, Listener* l, Metrics* m)
      : socket(std::move(s)), tls(std::move(t)), deadline(socket.get_executor()), listener(l),
        metrics(m) {}
  ~Connection() { metrics->ConnectionClosed(); }
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  tcp::socket socket;
  std::unique_ptr<TlsConnection> tls;
  asio::steady_timer deadline;
  Listener* listener;
  Metrics* metrics;
  // Peer is "address:port", for logs.
  std::string Peer() const {
    return remote.address().to_string() + ":" + std::to_string(remote.port());
  }

  tcp::endpoint remote;
  // identified: the listener's policy accepted the device at the handshake (false: an unknown
  // device admitted to open endpoints). Its identity is not kept: the policy decides again for
  // every request, and that fresh answer is what the request sees.
  bool identified = false;
  std::string read_ahead;   // bytes of the next pipelined request(s), usually empty
  uint32_t generation = 0;  // of the armed deadline
  bool timed_out = false;
};

// Arm (re)starts the connection's deadline: when it fires, the pending wait ends. The handler
// holds only a weak reference and the arming generation: a connection that finished, or a
// deadline that was re-armed, after the timer fired but before its handler ran is left alone.
void Arm(const std::shared_ptr<Connection>& c, std::chrono::steady_clock::duration timeout) {
  c->timed_out = false;
  const uint32_t generation = ++c->generation;
  c->deadline.expires_after(timeout);
  c->deadline.async_wait(
      [weak = std::weak_ptr<Connection>(c), generation](const beast::error_code& ec) {
        auto conn = weak.lock();
        if (ec || conn == nullptr || conn->generation != generation) {
          return;
        }
        conn->timed_out = true;
        beast::error_code ignored;
        conn->socket.cancel(ignored);
      });
}

// Wait suspends until the socket is ready for what the TLS layer asked for. False on timeout or
// socket error.
awaitable<bool> Wait(Connection& c, Io want) {
  beast::error_code ec;
  co_await c.socket.async_wait(
      want == Io::kWantWrite ? tcp::socket::wait_write : tcp::socket::wait_read,
      asio::redirect_error(use_awaitable, ec));
  co_return !ec && !c.timed_out;
}

// ReadMore appends decrypted bytes to `buffer`. False when the peer closed, failed or timed out.
awaitable<bool> ReadMore(Connection& c, beast::flat_buffer& buffer) {
  for (;;) {
    auto space = buffer.prepare(kReadChunk);
    size_t n = 0;
    Io io = c.tls->Read({static_cast<char*>(space.data()), space.size()}, n);
    if (io == Io::kDone) {
      buffer.commit(n);
      co_return true;
    }
    if ((io != Io::kWantRead && io != Io::kWantWrite) || !co_await Wait(c, io)) {
      co_return false;
    }
  }
}

// WriteAll sends `data` through the TLS layer.
awaitable<bool> WriteAll(Connection& c, std::string_view data) {
  for (;;) {
    Io io = c.tls->Write(data);
    if (io == Io::kDone) {
      co_return true;
    }
    if ((io != Io::kWantRead && io != Io::kWantWrite) || !co_await Wait(c, io)) {
      co_return false;
    }
  }
}

// Parse feeds buffered bytes to `parser`, reading more until `done(parser)`. `limit` bounds the
// buffered bytes. Returns the parser's error, or eof if the connection ended first.
template <typename Parser, typename Done>
awaitable<beast::error_code> Parse(Connection& c, beast::flat_buffer& buffer, Parser& parser,
                                   Done done, size_t limit) {
  for (;;) {
    if (buffer.size() > 0) {
      beast::error_code ec;
      size_t used = parser.put(buffer.data(), ec);
      buffer.consume(used);
      if (ec && ec != http::error::need_more) {
        co_return ec;
      }
      if (done(parser)) {
        co_return beast::error_code{};
      }
      if (used > 0 && !ec) {
        continue;
      }
    }
    if (buffer.size() >= limit) {
      co_return http::error::buffer_overflow;
    }
    if (!co_await ReadMore(c, buffer)) {
      co_return asio::error::eof;
    }
  }
}

// Linger reads and discards what the client still sends after a refusal: up to `expected` bytes
// (the body it announced; at most kMaxLingerBytes), until it closes or the request's deadline.
// Closing a socket with unread data makes the kernel reset the connection, and a client still
// sending its body would lose the answer it had not read yet (nginx's "lingering close").
awaitable<void> Linger(Connection& c, beast::flat_buffer& buffer, uint64_t expected) {
  const uint64_t limit = std::min<uint64_t>(expected, kMaxLingerBytes);
  uint64_t drained = 0;
  for (;;) {
    drained += buffer.size();
    buffer.consume(buffer.size());
    if (drained >= limit || !co_await ReadMore(c, buffer)) {
      co_return;
    }
  }
}

// Close ends an established connection for `reason` (logged at debug level): its deadline, and a
// close_notify (OpenSSL also keeps the session resumable only after one). The socket closes
// with the last reference.
void Close(Connection& c, std::string_view reason) {
  if (spdlog::should_log(spdlog::level::debug)) {
    spdlog::debug("event=connection_closed peer={} reason={}", c.Peer(), reason);
  }
  c.deadline.cancel();
  c.tls->Shutdown();
}

// ReadAhead reads what is there of the next request into c.read_ahead, without waiting.
Io ReadAhead(Connection& c) {
  c.read_ahead.resize(kReadChunk);
  size_t n = 0;
  Io io = c.tls->Read({c.read_ahead.data(), c.read_ahead.size()}, n);
  c.read_ahead.resize(n);
  if (n == 0) {
    std::string().swap(c.read_ahead);
  }
  return io;
}

// Serialize renders a response in HTTP/1.x.
std::string Serialize(const HttpResponse& res, unsigned version, bool keep_alive) {
  auto reason_text = http::obsolete_reason(static_cast<http::status>(res.status));
  std::string_view reason(reason_text.data(), reason_text.size());
  std::string out = fmt::format("HTTP/{}.{} {} {}\r\nServer: hallmark\r\n", version / 10,
                                version % 10, res.status, reason);
  if (!res.body.empty() || res.status >= 200) {
    out += fmt::format("Content-Type: {}\r\nContent-Length: {}\r\n", res.content_type,
                       res.body.size());
  }
  for (const auto& [name, value] : res.headers) {
    out += fmt::format("{}: {}\r\n", name, value);
  }
  if (!keep_alive) {
    out += "Connection: close\r\n";
  } else if (version == 10) {
    out += "Connection: keep-alive\r\n";
  }
  out += "\r\n";
  out += res.body;
  return out;
}

// HelloHandler answers `GET /v1/hello`: who the server believes it is talking to.
class HelloHandler : public Handler {
 public:
  HttpResponse Handle(const HttpRequest& req, const ClientContext& client) override {
    if (req.method != "GET") {
      HttpResponse res = JsonError(405, "use GET");
      res.headers.emplace_back("Allow", "GET");
      return res;
    }
    const PeerIdentity& id = *client.identity;
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
    HttpResponse res;
    res.body = body.dump() + "\n";
    return res;
  }
};

// HandshakeFailureOf maps a failed handshake (with the policy's decision, if it ran) to a metrics
// reason.
HandshakeFailure HandshakeFailureOf(const Connection& c, const HandshakeOutcome* outcome) {
  if (c.timed_out) {
    return HandshakeFailure::kTimeout;
  }
  if (outcome != nullptr && !outcome->identity.has_value()) {
    return HandshakeFailure::kPolicyRejected;
  }
  return c.tls->FailureReason();
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
  Status AddRoute(std::string path, std::unique_ptr<Handler> handler) override;
  void ForgetDevice(std::string_view device_id) override {
    if (cache_) {
      // The endpoint has just written the registry: bring the verified view up to date now
      // rather than at the next refresh, then drop what the cache held for the device.
      if (auto r = cache_->Refresh(); !r) {
        spdlog::warn("event=registry_refresh_failed detail=\"{}\"", r.error().message());
      }
      cache_->Forget(device_id);
    }
  }

 private:
  awaitable<void> Accept(Worker* worker, size_t index);
  // Connect sets up a connection just accepted (nullptr: it could not be, logged here).
  std::shared_ptr<Connection> Connect(tcp::socket socket, Listener* listener);
  // Active drives a connection while it has work: the handshake (for a connection just
  // accepted), then requests until none is pending. Then it hands the connection to WaitIdle and
  // ends, so that a connection waiting for its next request holds no coroutine frame. `woken`:
  // WaitIdle saw the socket readable (the handshake is behind it).
  awaitable<void> Active(std::shared_ptr<Connection> c, bool woken);
  // WaitIdle waits, with a plain completion handler, until the connection's next request starts
  // (then Active again) or its idle timeout (then it closes).
  void WaitIdle(std::shared_ptr<Connection> c);
  // Decide turns a finished handshake into the connection's identity. False: close the
  // connection (logged and counted here).
  bool Decide(Connection& c, Io io, std::chrono::steady_clock::time_point start);
  // ServeRequest reads, authorizes, routes and answers one request. False: close the connection.
  awaitable<bool> ServeRequest(Connection& c);
  awaitable<void> AcceptAdmin();
  awaitable<void> ServeAdmin(tcp::socket socket);
  // Authorize runs the listener's policy on the connection's peer certificate and chain (the
  // certificate of the session, for a resumed handshake).
  Result<PeerIdentity> Authorize(const Result<std::vector<Certificate>>& chain,
                                 Listener* listener);

  ServerConfig config_;
  const Clock* clock_;
  // Destroyed in reverse order: the workers first (their io_contexts destroy the coroutine frames
  // they still hold, which touch metrics_, the cache and the listeners), then the rest.
  Metrics metrics_;
  std::unique_ptr<RecordCache> cache_;
  std::map<std::string, std::unique_ptr<Handler>, std::less<>> routes_;
  std::vector<std::unique_ptr<Listener>> listeners_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::unique_ptr<tcp::acceptor> admin_;  // on the first worker
  // blocking_ runs the handlers that wait for the disk (Handler::blocking) off the event loops,
  // one thread per loop. Declared last: stopped and joined before the workers, whose loops its
  // completions resume, are destroyed.
  std::unique_ptr<asio::thread_pool> blocking_;
};

Status ServerImpl::Init(registry::Directory* directory) {
  auto chain = Certificate::ChainFromFile(config_.certificate);
  if (!chain) {
    return chain.error();
  }
  auto passphrase = ReadOptionalSecretFile(config_.passphrase_file);
  if (!passphrase) {
    return passphrase.error();
  }
  if (auto s = CheckPrivateFile(config_.private_key); !s) {
    return s.error();
  }
  auto key_pem = ReadFile(config_.private_key);
  if (!key_pem) {
    return key_pem.error();
  }
  auto key = PrivateKey::FromPem(*key_pem, passphrase->has_value() ? &**passphrase : nullptr);
  Wipe(*key_pem);
  if (!key) {
    return key.error().WithContext(config_.private_key);
  }
  if (directory != nullptr) {
    RecordCache::Options opts;
    opts.refresh_interval = config_.registry_refresh;
    opts.cache_size = config_.registry_cache_size;
    opts.negative_cache_size = config_.registry_negative_cache_size;
    opts.metrics = &metrics_;
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
      opts.crl_files = lc.crls;
      opts.crl_reload = lc.crl_reload;
      opts.metrics = &metrics_;
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
    l->verification = {.policy = l->policy.get(), .admit_unknown = lc.admit_unknown};
    auto tls = MakeTlsServer({.library = config_.tls_library,
                              .chain = *chain,
                              .key = &*key,
                              .verification = &l->verification,
                              .sessions = {.resumption = config_.session_resumption,
                                           .cache_size = config_.session_cache_size,
                                           .lifetime = config_.session_lifetime}});
    if (!tls) {
      return tls.error();
    }
    l->tls = std::move(*tls);
    listeners_.push_back(std::move(l));
  }
  routes_.emplace("/v1/hello", std::make_unique<HelloHandler>());
  int threads = config_.threads > 0
                    ? config_.threads
                    : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  for (int i = 0; i < threads; ++i) {
    workers_.push_back(std::make_unique<Worker>());
  }
  blocking_ = std::make_unique<asio::thread_pool>(static_cast<size_t>(threads));
  return OkStatus();
}

Status ServerImpl::AddRoute(std::string path, std::unique_ptr<Handler> handler) {
  if (path.empty() || path.front() != '/' || handler == nullptr) {
    return Error(Code::kInvalidArgument, "a route needs a path starting with / and a handler");
  }
  if (!routes_.emplace(path, std::move(handler)).second) {
    return Error(Code::kAlreadyExists, "route " + path + " is already served");
  }
  return OkStatus();
}

Result<std::unique_ptr<tcp::acceptor>> Bind(asio::io_context& io, const Endpoint& ep,
                                            bool reuse_port = false) {
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
  if (!ec && reuse_port) {
    using ReusePort = asio::detail::socket_option::boolean<SOL_SOCKET, SO_REUSEPORT>;
    acceptor->set_option(ReusePort(true), ec);
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
  // OpenSSL writes the sockets with send() without MSG_NOSIGNAL: a device that resets its
  // connection must cost an EPIPE, not the process.
  std::signal(SIGPIPE, SIG_IGN);
  Worker& first = *workers_.front();
  for (auto& l : listeners_) {
    auto acceptor = Bind(first.io, l->config.listen, config_.reuse_port);
    if (!acceptor) {
      return acceptor.error();
    }
    // Every other worker accepts on its own descriptor for the same listening socket.
    for (size_t w = 1; w < workers_.size(); ++w) {
      int fd = ::dup((*acceptor)->native_handle());
      beast::error_code ec;
      auto other = std::make_unique<tcp::acceptor>(workers_[w]->io);
      if (fd < 0 || other->assign((*acceptor)->local_endpoint().protocol(), fd, ec)) {
        if (fd >= 0) {
          ::close(fd);
        }
        return Error(Code::kUnavailable, "cannot share the listening socket with worker threads");
      }
      workers_[w]->acceptors.push_back(std::move(other));
    }
    first.acceptors.push_back(std::move(*acceptor));
  }
  if (config_.admin.has_value()) {
    auto acceptor = Bind(first.io, *config_.admin);
    if (!acceptor) {
      return acceptor.error();
    }
    admin_ = std::move(*acceptor);
  }
  for (auto& w : workers_) {
    for (size_t i = 0; i < listeners_.size(); ++i) {
      asio::co_spawn(w->io, Accept(w.get(), i), asio::detached);
    }
  }
  if (admin_) {
    asio::co_spawn(first.io, AcceptAdmin(), asio::detached);
  }
  if (cache_) {
    cache_->StartRefresher();
  }
  return OkStatus();
}

std::vector<BoundListener> ServerImpl::Listeners() const {
  std::vector<BoundListener> out;
  for (size_t i = 0; i < listeners_.size(); ++i) {
    beast::error_code ec;
    auto ep = workers_.front()->acceptors[i]->local_endpoint(ec);
    out.push_back({listeners_[i]->config.policy, Endpoint{ep.address().to_string(), ep.port()}});
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
  std::vector<std::thread> threads;
  for (size_t i = 1; i < workers_.size(); ++i) {
    threads.emplace_back([w = workers_[i].get()]() { w->io.run(); });
  }
  workers_.front()->io.run();
  for (auto& t : threads) {
    t.join();
  }
  // Handlers still running finish; their answers go to the stopped loops and are dropped.
  if (blocking_) {
    blocking_->join();
  }
}

void ServerImpl::Stop() {
  for (auto& w : workers_) {
    w->io.stop();
  }
}

awaitable<void> ServerImpl::Accept(Worker* worker, size_t index) {
  tcp::acceptor& acceptor = *worker->acceptors[index];
  Listener* listener = listeners_[index].get();
  for (;;) {
    beast::error_code ec;
    tcp::socket socket = co_await acceptor.async_accept(asio::redirect_error(use_awaitable, ec));
    if (ec) {
      if (ec == asio::error::operation_aborted) {
        co_return;
      }
      if (ec == asio::error::try_again || ec == asio::error::would_block) {
        continue;  // another worker took the connection
      }
      // EMFILE and friends: the pending connection stays queued, so retrying at once would
      // spin. Back off briefly; connections that close meanwhile free descriptors.
      spdlog::warn("event=accept_failed error=\"{}\"", ec.message());
      asio::steady_timer backoff(worker->io, std::chrono::milliseconds(100));
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
    if (auto c = Connect(std::move(socket), listener); c != nullptr) {
      asio::co_spawn(worker->io, Active(std::move(c), false), asio::detached);
    }
  }
}

std::shared_ptr<Connection> ServerImpl::Connect(tcp::socket socket, Listener* listener) {
  beast::error_code ec;
  const tcp::endpoint remote = socket.remote_endpoint(ec);
  if (!ec) {
    socket.non_blocking(true, ec);
  }
  auto tls = listener->tls->Accept(socket.native_handle());
  if (ec || !tls) {
    spdlog::warn("event=connection_setup_failed detail=\"{}\"",
                 tls ? ec.message() : tls.error().message());
    metrics_.ConnectionClosed();
    return nullptr;
  }
  auto c = std::make_shared<Connection>(std::move(socket), std::move(*tls), listener, &metrics_);
  c->remote = remote;
  return c;
}

bool ServerImpl::Decide(Connection& c, Io io, std::chrono::steady_clock::time_point start) {
  Listener* listener = c.listener;
  std::optional<PeerIdentity> identity;
  // The policy's decision leaves the TLS session and is freed before the connection goes idle.
  std::unique_ptr<HandshakeOutcome> decided = c.tls->TakeOutcome();
  std::string rejection;
  if (io == Io::kDone && c.tls->resumed()) {
    // A resumed session carries no certificate exchange: decide again on the session's
    // certificate, so revocation and registry changes apply to resumed devices as well.
    metrics_.HandshakeResumed();
    auto id = Authorize(c.tls->PeerChain(), listener);
    if (id) {
      identity = std::move(*id);
    } else {
      rejection = id.error().message();
    }
  } else if (io == Io::kDone && decided != nullptr && decided->identity.has_value()) {
    identity = std::move(decided->identity);
  }
  // A listener that admits unknown devices serves them the endpoints open to everyone (claims,
  // pending approval) when the handshake itself succeeded, i.e. the client holds the
  // certificate's key. Resumed sessions of such clients are admitted the same way.
  const bool admitted_unknown = !identity.has_value() && io == Io::kDone &&
                                listener->config.admit_unknown &&
                                (c.tls->resumed() || decided != nullptr);
  if (admitted_unknown) {
    spdlog::info("event=unknown_device_admitted peer={} policy={} detail=\"{}\"", c.Peer(),
                 listener->policy->name(),
                 !rejection.empty() ? rejection : (decided != nullptr ? decided->rejection : ""));
    return true;
  }
  if (!identity.has_value()) {
    HandshakeFailure why =
        io == Io::kDone ? HandshakeFailure::kPolicyRejected : HandshakeFailureOf(c, decided.get());
    if (rejection.empty()) {
      rejection = decided != nullptr ? decided->rejection
                                     : (c.timed_out ? "handshake timed out" : c.tls->ErrorText());
    }
    metrics_.HandshakeFailed(why);
    spdlog::info("event=handshake_rejected peer={} policy={} reason={} detail=\"{}\"", c.Peer(),
                 listener->policy->name(), HandshakeFailureName(why), rejection);
    return false;
  }
  c.identified = true;
  metrics_.HandshakeSucceeded(identity->policy, std::chrono::steady_clock::now() - start);
  if (spdlog::should_log(spdlog::level::debug)) {
    spdlog::debug("event=handshake_ok peer={} policy={} device={} resumed={}", c.Peer(),
                  identity->policy, identity->device_id, c.tls->resumed());
  }
  return true;
}

awaitable<void> ServerImpl::Active(std::shared_ptr<Connection> shared, bool woken) {
  Connection& c = *shared;
  bool readable = woken;
  if (!woken) {
    const auto start = std::chrono::steady_clock::now();
    Arm(shared, config_.handshake_timeout);
    Io io;
    while ((io = c.tls->Handshake()) == Io::kWantRead || io == Io::kWantWrite) {
      if (!co_await Wait(c, io)) {
        break;
      }
    }
    if (!Decide(c, io, start)) {
      c.deadline.cancel();
      co_return;
    }
  }
  for (;;) {
    if (readable && c.read_ahead.empty()) {
      // Readiness can be spurious, or only TLS housekeeping arrived (a key update): the next
      // request has begun only once a byte of it is here.
      switch (ReadAhead(c)) {
        case Io::kDone:
        case Io::kWantWrite:
          break;
        case Io::kWantRead:
          readable = false;
          break;
        default:
          Close(c, "peer_closed");  // or broken
          co_return;
      }
    }
    if (!readable && c.read_ahead.empty() && !c.tls->HasBufferedInput()) {
      WaitIdle(std::move(shared));
      co_return;
    }
    readable = false;
    // A request that has begun must arrive in full within the handshake timeout.
    Arm(shared, config_.handshake_timeout);
    if (!co_await ServeRequest(c)) {
      break;
    }
  }
  Close(c, c.timed_out ? "request_timeout" : "request_ended");
}

void ServerImpl::WaitIdle(std::shared_ptr<Connection> shared) {
  Connection& c = *shared;
  c.tls->Idle();
  Arm(shared, config_.idle_timeout);
  c.socket.async_wait(tcp::socket::wait_read,
                      [this, shared = std::move(shared)](const beast::error_code& ec) mutable {
                        Connection& conn = *shared;
                        if (ec || conn.timed_out) {
                          Close(conn, conn.timed_out ? "idle_timeout" : ec.message());
                          return;
                        }
                        auto executor = conn.socket.get_executor();
                        asio::co_spawn(executor, Active(std::move(shared), true), asio::detached);
                      });
}

awaitable<bool> ServerImpl::ServeRequest(Connection& c) {
  Listener* listener = c.listener;
  const uint32_t header_limit = config_.max_header_bytes;
  beast::flat_buffer buffer;
  if (!c.read_ahead.empty()) {
    auto space = buffer.prepare(c.read_ahead.size());
    std::memcpy(space.data(), c.read_ahead.data(), c.read_ahead.size());
    buffer.commit(c.read_ahead.size());
    std::string().swap(c.read_ahead);
  }
  // refuse answers with an error and closes, after reading what the client still sends of a
  // body (`unread` bytes) so that it gets to read the answer.
  auto refuse = [&](int status, std::string_view message, uint64_t unread) -> awaitable<bool> {
    metrics_.Request(status);
    HttpResponse res = JsonError(status, message);
    if (co_await WriteAll(c, Serialize(res, 11, false))) {
      co_await Linger(c, buffer, unread);
    }
    co_return false;
  };

  http::request_parser<http::empty_body> head;
  head.header_limit(header_limit);
  head.eager(false);
  auto ec = co_await Parse(
      c, buffer, head, [](const auto& p) { return p.is_header_done(); }, size_t{header_limit} + 1);
  if (ec == http::error::header_limit || ec == http::error::buffer_overflow) {
    co_return co_await refuse(431, "request header too large", kMaxLingerBytes);
  }
  if (ec) {
    co_return false;  // closed, timed out or not HTTP: nothing useful to answer
  }
  const auto& header = head.get();
  std::string_view target(header.target().data(), header.target().size());
  std::string_view path = target.substr(0, target.find('?'));
  auto route = routes_.find(path);
  Handler* handler = route == routes_.end() ? nullptr : route->second.get();
  const size_t body_limit = handler != nullptr ? handler->max_body_bytes() : 0;
  // Bodies are framed by Content-Length only, checked against the route before any is read.
  if (head.chunked()) {
    co_return co_await refuse(411, "send the body with a Content-Length", kMaxLingerBytes);
  }
  if (head.content_length().value_or(0) > body_limit) {
    co_return co_await refuse(
        413, body_limit == 0 ? "this endpoint takes no request body" : "request body too large",
        *head.content_length());
  }

  http::request_parser<http::string_body> full(std::move(head));
  full.body_limit(body_limit);
  if (!full.is_done()) {
    ec = co_await Parse(
        c, buffer, full, [](const auto& p) { return p.is_done(); }, header_limit + body_limit + 1);
  }
  if (ec) {
    co_return false;
  }
  if (buffer.size() > 0) {  // the start of a pipelined request
    c.read_ahead.assign(static_cast<const char*>(buffer.data().data()), buffer.size());
  }
  auto req = full.release();
  const bool keep_alive = req.keep_alive();

  // The identity was decided at the handshake; a long-lived connection must not outlive a
  // revocation or an expiry, so the policy decides again for every request.
  const auto chain = c.tls->PeerChain();
  std::optional<PeerIdentity> fresh;
  if (c.identified) {
    auto id = Authorize(chain, listener);
    if (!id) {
      metrics_.HandshakeFailed(HandshakeFailure::kPolicyRejected);
      spdlog::info("event=connection_revoked peer={} policy={} device={} detail=\"{}\"", c.Peer(),
                   listener->policy->name(),
                   chain && !chain->empty() ? chain->front().Key().DeviceId() : "unknown",
                   id.error().message());
      co_return false;
    }
    fresh = std::move(*id);
  }
  const PeerIdentity* identity = fresh ? &*fresh : nullptr;
  HttpResponse res;
  if (handler == nullptr) {
    res = JsonError(404, "no such endpoint");
  } else if (handler->authenticated_only() && identity == nullptr) {
    res = JsonError(403, "this endpoint needs an authenticated device");
  } else {
    HttpRequest request;
    request.method = std::string(req.method_string());
    request.target = std::string(target);
    request.content_type = std::string(req[http::field::content_type]);
    request.body = std::move(req.body());
    ClientContext client;
    client.identity = identity;
    client.leaf = chain && !chain->empty() ? &chain->front() : nullptr;
    client.peer_address = c.Peer();
    client.export_keying_material = [&c](std::string_view label, std::span<const uint8_t> context,
                                         size_t length) {
      return c.tls->ExportKeyingMaterial(label, context, length);
    };
    if (handler->blocking()) {
      // The coroutine waits on the pool's answer; the connection is touched by nothing else
      // meanwhile (its deadline timer only cancels the socket, which the handler does not use).
      res = co_await asio::co_spawn(
          blocking_->get_executor(),
          [&]() -> awaitable<HttpResponse> { co_return handler->Handle(request, client); },
          use_awaitable);
    } else {
      res = handler->Handle(request, client);
    }
  }
  metrics_.Request(res.status);
  const bool keep = keep_alive && !res.close;
  if (!co_await WriteAll(c, Serialize(res, req.version(), keep))) {
    co_return false;
  }
  co_return keep;
}

Result<PeerIdentity> ServerImpl::Authorize(const Result<std::vector<Certificate>>& chain,
                                           Listener* listener) {
  if (!chain) {
    return chain.error();
  }
  return listener->policy->Authorize(chain->front(), std::span(*chain).subspan(1));
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
    asio::co_spawn(admin_->get_executor(), ServeAdmin(std::move(socket)), asio::detached);
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
