// gnutls_idle_probe: how much memory an idle, authenticated mutual-TLS 1.3 connection costs in a
// TLS library itself, with as little server around it as possible. Evidence for the decision in
// docs/adr/0007-idle-memory.md (issue 3: at most 12 KiB per idle connection); not a product.
//
// One thread, one epoll set. Each connection: a TLS 1.3 handshake that requires a client
// certificate and verifies it against --ca (the customer intermediate as the trust anchor, as
// hallmark's `ca` policy does), then `GET /v1/hello` answered with 200 and a small body, then the
// connection stays open and silent until the client closes it or the probe stops. Per connection
// the probe keeps only the descriptor, the library's session and one state byte (in a table
// indexed by descriptor, allocated up front), so the RSS slope per connection is the TLS
// library's own cost plus the kernel's share of a socket that RSS counts (none).
//
//   --tls gnutls   GnuTLS 3.7 (no tickets: GNUTLS_NO_TICKETS)
//   --tls openssl  OpenSSL 3.0 set up as hallmark's transport is (SSL_MODE_RELEASE_BUFFERS,
//                  SSL_OP_NO_TICKET, no session cache), without the rest of hallmark
//
// It prints {"event":"ready","port":N} once listening and a stats line
// {"event":"stats","handshakes":...,"failures":...,"open":...} whenever the counts changed (at
// most every 0.5 s), and stops on SIGTERM/SIGINT or after --duration seconds. Loopback only.
#include <arpa/inet.h>
#include <gnutls/gnutls.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <array>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/ossl.h"

namespace hallmark::bench {
namespace {

using Clock = std::chrono::steady_clock;

volatile std::sig_atomic_t g_stop_requested = 0;

void OnStopSignal(int /*sig*/) { g_stop_requested = 1; }

struct Options {
  std::string tls = "gnutls";
  std::string host = "127.0.0.1";
  uint16_t port = 0;
  bool reuse_port = false;
  std::string cert;
  std::string key;
  std::string ca;
  double duration_s = 600;
};

constexpr std::string_view kHelloResponse =
    "HTTP/1.1 200 OK\r\nServer: idle-probe\r\nContent-Type: application/json\r\n"
    "Content-Length: 20\r\n\r\n{\"message\":\"hello\"}\n";

// Backend is one TLS library behind the probe's event loop. A session is an opaque pointer.
class Backend {
 public:
  enum class Io { kDone, kWantRead, kWantWrite, kClosed, kFailed };
  virtual ~Backend() = default;
  virtual void* New(int fd) = 0;
  virtual Io Handshake(void* s) = 0;
  // Read reads decrypted bytes into `out`; `n` on kDone.
  virtual Io Read(void* s, std::span<char> out, size_t& n) = 0;
  // Write sends all of `in` (it is small); called again with the same bytes after kWant*.
  virtual Io Write(void* s, std::string_view in) = 0;
  virtual void Free(void* s) = 0;
};

// --- GnuTLS --------------------------------------------------------------------------------

class GnutlsBackend : public Backend {
 public:
  ~GnutlsBackend() override {
    if (priority_ != nullptr) {
      gnutls_priority_deinit(priority_);
    }
    if (cred_ != nullptr) {
      gnutls_certificate_free_credentials(cred_);
    }
  }

  // Init loads the server chain and key and the client trust anchor; false with a message.
  bool Init(const Options& o, std::string& error) {
    int r = gnutls_certificate_allocate_credentials(&cred_);
    if (r == GNUTLS_E_SUCCESS) {
      r = gnutls_certificate_set_x509_key_file(cred_, o.cert.c_str(), o.key.c_str(),
                                               GNUTLS_X509_FMT_PEM);
    }
    if (r < 0) {
      error = "server certificate " + o.cert + " / key " + o.key + ": " + gnutls_strerror(r);
      return false;
    }
    r = gnutls_certificate_set_x509_trust_file(cred_, o.ca.c_str(), GNUTLS_X509_FMT_PEM);
    if (r <= 0) {
      error = "trust anchors " + o.ca + ": " + (r < 0 ? gnutls_strerror(r) : "none found");
      return false;
    }
    r = gnutls_priority_init(&priority_, "NORMAL:-VERS-ALL:+VERS-TLS1.3", nullptr);
    if (r < 0) {
      error = std::string("priority string: ") + gnutls_strerror(r);
      return false;
    }
    return true;
  }

  void* New(int fd) override {
    gnutls_session_t s = nullptr;
    if (gnutls_init(&s, GNUTLS_SERVER | GNUTLS_NONBLOCK | GNUTLS_NO_TICKETS) < 0) {
      return nullptr;
    }
    if (gnutls_priority_set(s, priority_) < 0 ||
        gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE, cred_) < 0) {
      gnutls_deinit(s);
      return nullptr;
    }
    gnutls_certificate_server_set_request(s, GNUTLS_CERT_REQUIRE);
    // The handshake verifies the client's chain against the trust list and fails otherwise.
    gnutls_session_set_verify_cert(s, nullptr, 0);
    gnutls_transport_set_int(s, fd);
    return s;
  }

  Io Handshake(void* s) override { return Classify(s, gnutls_handshake(Session(s))); }

  Io Read(void* s, std::span<char> out, size_t& n) override {
    const ssize_t r = gnutls_record_recv(Session(s), out.data(), out.size());
    if (r > 0) {
      n = static_cast<size_t>(r);
      return Io::kDone;
    }
    return r == 0 ? Io::kClosed : Classify(s, static_cast<int>(r));
  }

  Io Write(void* s, std::string_view in) override {
    const ssize_t r = gnutls_record_send(Session(s), in.data(), in.size());
    if (r >= 0 && static_cast<size_t>(r) == in.size()) {
      return Io::kDone;
    }
    return r >= 0 ? Io::kFailed : Classify(s, static_cast<int>(r));
  }

  void Free(void* s) override { gnutls_deinit(Session(s)); }

 private:
  static gnutls_session_t Session(void* s) { return static_cast<gnutls_session_t>(s); }

  static Io Classify(void* s, int r) {
    if (r == GNUTLS_E_SUCCESS) {
      return Io::kDone;
    }
    if (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED) {
      return gnutls_record_get_direction(Session(s)) == 1 ? Io::kWantWrite : Io::kWantRead;
    }
    if (gnutls_error_is_fatal(r) == 0) {
      return Io::kWantRead;  // a warning alert or a post-handshake message: carry on
    }
    return Io::kFailed;
  }

  gnutls_certificate_credentials_t cred_ = nullptr;
  gnutls_priority_t priority_ = nullptr;
};

// --- OpenSSL -------------------------------------------------------------------------------

class OpensslBackend : public Backend {
 public:
  bool Init(const Options& o, std::string& error) {
    ctx_.reset(SSL_CTX_new(TLS_server_method()));
    SSL_CTX* c = ctx_.get();
    if (c == nullptr || SSL_CTX_set_min_proto_version(c, TLS1_3_VERSION) != 1 ||
        SSL_CTX_use_certificate_chain_file(c, o.cert.c_str()) != 1 ||
        SSL_CTX_use_PrivateKey_file(c, o.key.c_str(), SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(c) != 1) {
      error = "server certificate " + o.cert + " / key " + o.key + ": " + DrainOsslErrors();
      return false;
    }
    if (SSL_CTX_load_verify_locations(c, o.ca.c_str(), nullptr) != 1) {
      error = "trust anchors " + o.ca + ": " + DrainOsslErrors();
      return false;
    }
    // The customer intermediate is the anchor (hallmark's partial chain).
    X509_VERIFY_PARAM_set_flags(SSL_CTX_get0_param(c), X509_V_FLAG_PARTIAL_CHAIN);
    SSL_CTX_set_verify(c, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
    SSL_CTX_set_options(c, SSL_OP_NO_RENEGOTIATION | SSL_OP_IGNORE_UNEXPECTED_EOF |
                               SSL_OP_NO_TICKET);
    SSL_CTX_set_mode(c, SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_num_tickets(c, 0);
    SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_OFF);
    return true;
  }

  void* New(int fd) override {
    SSL* ssl = SSL_new(ctx_.get());
    if (ssl == nullptr || SSL_set_fd(ssl, fd) != 1) {
      SSL_free(ssl);
      ERR_clear_error();
      return nullptr;
    }
    SSL_set_accept_state(ssl);
    return ssl;
  }

  Io Handshake(void* s) override {
    ERR_clear_error();
    const int r = SSL_do_handshake(Ssl(s));
    return r == 1 ? Io::kDone : Classify(s, r);
  }

  Io Read(void* s, std::span<char> out, size_t& n) override {
    ERR_clear_error();
    n = 0;
    return SSL_read_ex(Ssl(s), out.data(), out.size(), &n) == 1 ? Io::kDone : Classify(s, 0);
  }

  Io Write(void* s, std::string_view in) override {
    ERR_clear_error();
    size_t written = 0;
    return SSL_write_ex(Ssl(s), in.data(), in.size(), &written) == 1 ? Io::kDone
                                                                      : Classify(s, 0);
  }

  void Free(void* s) override { SSL_free(Ssl(s)); }

 private:
  static SSL* Ssl(void* s) { return static_cast<SSL*>(s); }

  static Io Classify(void* s, int r) {
    const int e = SSL_get_error(Ssl(s), r);
    ERR_clear_error();
    switch (e) {
      case SSL_ERROR_WANT_READ:
        return Io::kWantRead;
      case SSL_ERROR_WANT_WRITE:
        return Io::kWantWrite;
      case SSL_ERROR_ZERO_RETURN:
        return Io::kClosed;
      default:
        return Io::kFailed;
    }
  }

  OsslPtr<SSL_CTX> ctx_;
};

// --- The event loop ------------------------------------------------------------------------

enum class State : uint8_t { kFree, kHandshake, kRequest, kResponse, kIdle };

struct Stats {
  uint64_t handshakes = 0;  // completed and verified
  uint64_t failures = 0;    // handshakes that failed (e.g. no or a wrong client certificate)
  uint64_t requests = 0;
  uint64_t open = 0;
};

class Probe {
 public:
  Probe(Backend& tls, int listen_fd, int epoll_fd)
      : tls_(tls), listen_fd_(listen_fd), epoll_fd_(epoll_fd) {
    rlimit limit{};
    ::getrlimit(RLIMIT_NOFILE, &limit);
    // One slot per possible descriptor, allocated now: not part of the per-connection slope.
    slots_.resize(limit.rlim_cur == RLIM_INFINITY ? 1 << 20 : limit.rlim_cur);
  }

  void Run(Clock::time_point until) {
    std::array<epoll_event, 256> events;
    Stats printed;
    auto next_print = Clock::now();
    while (g_stop_requested == 0 && Clock::now() < until) {
      const int n = ::epoll_wait(epoll_fd_, events.data(), static_cast<int>(events.size()), 100);
      for (int i = 0; i < n; ++i) {
        const int fd = events[static_cast<size_t>(i)].data.fd;
        if (fd == listen_fd_) {
          AcceptAll();
        } else {
          Advance(fd);
        }
      }
      const auto now = Clock::now();
      if (now >= next_print && (stats_.handshakes != printed.handshakes ||
                                stats_.failures != printed.failures || stats_.open != printed.open)) {
        PrintStats();
        printed = stats_;
        next_print = now + std::chrono::milliseconds(500);
      }
    }
    for (size_t fd = 0; fd < slots_.size(); ++fd) {
      if (slots_[fd].state != State::kFree) {
        Close(static_cast<int>(fd));
      }
    }
    PrintStats();
  }

 private:
  struct Slot {
    void* session = nullptr;
    State state = State::kFree;
  };

  void PrintStats() const {
    std::printf(
        "{\"event\":\"stats\",\"handshakes\":%llu,\"failures\":%llu,\"requests\":%llu,"
        "\"open\":%llu}\n",
        static_cast<unsigned long long>(stats_.handshakes),
        static_cast<unsigned long long>(stats_.failures),
        static_cast<unsigned long long>(stats_.requests),
        static_cast<unsigned long long>(stats_.open));
    std::fflush(stdout);
  }

  void AcceptAll() {
    for (;;) {
      const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) {
        return;  // EAGAIN, or EMFILE: the connection waits in the backlog
      }
      if (static_cast<size_t>(fd) >= slots_.size()) {
        ::close(fd);
        continue;
      }
      const int one = 1;
      ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
      void* session = tls_.New(fd);
      if (session == nullptr) {
        ::close(fd);
        continue;
      }
      slots_[static_cast<size_t>(fd)] = {session, State::kHandshake};
      ++stats_.open;
      epoll_event ev{};
      ev.events = EPOLLIN;
      ev.data.fd = fd;
      ::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev);
      Advance(fd);
    }
  }

  void Watch(int fd, Backend::Io want) {
    epoll_event ev{};
    ev.events = want == Backend::Io::kWantWrite ? EPOLLOUT : EPOLLIN;
    ev.data.fd = fd;
    ::epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, fd, &ev);
  }

  void Close(int fd) {
    Slot& slot = slots_[static_cast<size_t>(fd)];
    tls_.Free(slot.session);
    slot = Slot{};
    ::close(fd);  // also leaves the epoll set
    --stats_.open;
  }

  // Advance drives one connection as far as it goes without blocking.
  void Advance(int fd) {
    using Io = Backend::Io;
    Slot& slot = slots_[static_cast<size_t>(fd)];
    for (;;) {
      Io io = Io::kFailed;
      switch (slot.state) {
        case State::kFree:
          return;
        case State::kHandshake:
          io = tls_.Handshake(slot.session);
          if (io == Io::kDone) {
            ++stats_.handshakes;
            slot.state = State::kRequest;
            continue;
          }
          if (io == Io::kFailed || io == Io::kClosed) {
            ++stats_.failures;
          }
          break;
        case State::kRequest:
        case State::kIdle: {
          // The request is small and comes in one record; its end is all the probe looks for.
          std::array<char, 4096> buf;
          size_t n = 0;
          io = tls_.Read(slot.session, buf, n);
          if (io == Io::kDone) {
            if (std::string_view(buf.data(), n).find("\r\n\r\n") != std::string_view::npos) {
              ++stats_.requests;
              slot.state = State::kResponse;
            }
            continue;
          }
          if (io == Io::kWantRead && slot.state == State::kRequest) {
            slot.state = State::kIdle;  // waiting for (the rest of) a request
          }
          break;
        }
        case State::kResponse:
          io = tls_.Write(slot.session, kHelloResponse);
          if (io == Io::kDone) {
            slot.state = State::kIdle;
            continue;
          }
          break;
      }
      if (io == Io::kWantRead || io == Io::kWantWrite) {
        return Watch(fd, io);
      }
      return Close(fd);
    }
  }

  Backend& tls_;
  int listen_fd_;
  int epoll_fd_;
  std::vector<Slot> slots_;
  Stats stats_;
};

int Listen(const Options& o, uint16_t& bound_port) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(o.port);
  if (::inet_pton(AF_INET, o.host.c_str(), &addr.sin_addr) != 1 ||
      (ntohl(addr.sin_addr.s_addr) >> 24) != 127) {
    std::fprintf(stderr, "gnutls_idle_probe: --host must be a loopback address, got %s\n",
                 o.host.c_str());
    return -1;
  }
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  const int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (o.reuse_port) {
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
  }
  socklen_t len = sizeof(addr);
  if (fd < 0 || ::bind(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0 ||
      ::listen(fd, SOMAXCONN) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    std::fprintf(stderr, "gnutls_idle_probe: cannot listen on %s:%u: %s\n", o.host.c_str(),
                 static_cast<unsigned>(o.port), std::strerror(errno));
    return -1;
  }
  bound_port = ntohs(addr.sin_port);
  return fd;
}

int Main(const Options& o) {
  std::unique_ptr<Backend> backend;
  std::string error;
  if (o.tls == "gnutls") {
    auto b = std::make_unique<GnutlsBackend>();
    if (b->Init(o, error)) {
      backend = std::move(b);
    }
  } else {
    auto b = std::make_unique<OpensslBackend>();
    if (b->Init(o, error)) {
      backend = std::move(b);
    }
  }
  if (!backend) {
    std::fprintf(stderr, "gnutls_idle_probe: %s\n", error.c_str());
    return 2;
  }
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &limit);
  }
  std::signal(SIGPIPE, SIG_IGN);
  std::signal(SIGTERM, OnStopSignal);
  std::signal(SIGINT, OnStopSignal);
  uint16_t port = 0;
  const int listen_fd = Listen(o, port);
  if (listen_fd < 0) {
    return 1;
  }
  const int epoll_fd = ::epoll_create1(EPOLL_CLOEXEC);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = listen_fd;
  ::epoll_ctl(epoll_fd, EPOLL_CTL_ADD, listen_fd, &ev);
  std::printf("{\"event\":\"ready\",\"tls\":\"%s\",\"port\":%u}\n", o.tls.c_str(),
              static_cast<unsigned>(port));
  std::fflush(stdout);
  Probe probe(*backend, listen_fd, epoll_fd);
  probe.Run(Clock::now() + std::chrono::duration_cast<Clock::duration>(
                               std::chrono::duration<double>(o.duration_s)));
  ::close(epoll_fd);
  ::close(listen_fd);
  return 0;
}

int ParseAndRun(int argc, char** argv) {
  Options o;
  CLI::App app{"Minimal mutual-TLS 1.3 server holding idle connections, to measure a TLS "
               "library's memory per connection (docs/performance.md)."};
  app.add_option("--tls", o.tls, "TLS library")
      ->check(CLI::IsMember({"gnutls", "openssl"}))
      ->capture_default_str();
  app.add_option("--host", o.host, "Listen address (loopback)")->capture_default_str();
  app.add_option("--port", o.port, "Listen port (0: any; printed in the ready line)");
  app.add_flag("--reuse-port", o.reuse_port, "SO_REUSEPORT: several probes share the port");
  app.add_option("--cert", o.cert, "Server certificate chain (PEM, leaf first)")->required();
  app.add_option("--key", o.key, "Server private key (PEM)")->required();
  app.add_option("--ca", o.ca, "Client trust anchor(s) (PEM)")->required();
  app.add_option("--duration", o.duration_s, "Stop after S seconds")
      ->check(CLI::Range(1.0, 3600.0))
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  return Main(o);
}

}  // namespace
}  // namespace hallmark::bench

int main(int argc, char** argv) {
  try {
    return hallmark::bench::ParseAndRun(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "gnutls_idle_probe: %s\n", e.what());
    return 1;
  }
}
