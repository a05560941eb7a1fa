// hallmark_loadgen: a mutual-TLS 1.3 load generator for `hallmark serve` (and for the nginx
// baseline of scripts/bench-server.sh).
//
// One thread, one epoll set, many non-blocking OpenSSL client connections to a loopback
// address. Each connection makes a full handshake with a client certificate (or resumes one, with
// --resume), sends `GET /v1/hello`, reads the response and counts it only if the status is 200:
// under TLS 1.3 the client finishes its handshake before the server has checked the client
// certificate, so only the response proves that the server accepted the device.
//
// Two modes:
//   handshake (default)  connect, hello with `Connection: close`, close, repeat; reports completed
//                        and failed connections, rate, latency percentiles (connect to response)
//                        and, with --server-pid, the server's CPU time per completed handshake
//                        (utime+stime of all its threads, from /proc/PID/stat).
//   --idle N --hold S    opens N connections that say hello with keep-alive and then stay open
//                        and silent; once they are all up it prints one JSON line
//                        {"event":"holding",...} (with the server's VmRSS) and holds them for S
//                        seconds or until SIGTERM.
//
// Every loop is bounded: --duration (default 10 s; 300 s when only --count is given) and the
// per-connection --timeout. The target must be in 127.0.0.0/8.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <fstream>
#include <functional>
#include <iterator>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "core/ossl.h"
#include "proc_usage.h"

namespace hallmark::bench {
namespace {

using Clock = std::chrono::steady_clock;
using Json = nlohmann::ordered_json;

constexpr double kDefaultDurationS = 10;
constexpr double kCountOnlyDurationS = 300;
// After the server's response we send close_notify and wait this long for the server to close.
constexpr auto kCloseGrace = std::chrono::seconds(1);
// Before reading the server's CPU time at the end, let it finish closing the last connections.
constexpr auto kSettle = std::chrono::milliseconds(200);
constexpr auto kDeadlineScanInterval = std::chrono::milliseconds(100);

volatile std::sig_atomic_t g_stop_requested = 0;

void OnStopSignal(int /*sig*/) { g_stop_requested = 1; }

struct Options {
  std::string connect = "127.0.0.1:8443";
  std::string source;
  std::string cert;
  std::string key;
  // devices: a file of "CERT KEY" lines; connections take the devices in turn (first contacts
  // for a server's per-certificate caches, once there are more devices than the caches hold).
  std::string devices;
  std::string cafile;
  std::string server_name = "localhost";
  std::string path = "/v1/hello";
  std::string label;
  size_t concurrency = 32;
  double duration_s = 0;
  uint64_t count = 0;
  double timeout_s = 10;
  bool resume = false;
  std::vector<int> server_pids;
  size_t idle = 0;
  double hold_s = 30;
};

// --- The server process, seen through /proc ---------------------------------------------------

// --- HTTP response parsing ----------------------------------------------------------------

struct ResponseState {
  bool headers_done = false;
  bool complete = false;
  int status = 0;
};

// ParseResponse says whether `text` holds a whole HTTP/1.1 response. Without Content-Length,
// the response ends when the server closes (the caller decides).
ResponseState ParseResponse(const std::string& text) {
  ResponseState state;
  const size_t end = text.find("\r\n\r\n");
  if (end == std::string::npos) {
    return state;
  }
  state.headers_done = true;
  if (text.size() >= 12 && text.rfind("HTTP/1.", 0) == 0) {
    state.status = std::atoi(text.substr(9, 3).c_str());
  }
  std::string headers = text.substr(0, end + 2);
  std::transform(headers.begin(), headers.end(), headers.begin(),
                 [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
  const size_t cl = headers.find("\r\ncontent-length:");
  if (cl != std::string::npos) {
    const uint64_t length = std::strtoull(headers.c_str() + cl + 17, nullptr, 10);
    state.complete = text.size() >= end + 4 + length;
  }
  return state;
}

// --- Connections ---------------------------------------------------------------------------

enum class Phase { kFree, kConnecting, kHandshaking, kWriting, kReading, kClosing, kIdle };

const char* PhaseName(Phase phase) {
  switch (phase) {
    case Phase::kConnecting:
      return "connect";
    case Phase::kHandshaking:
      return "handshake";
    case Phase::kWriting:
      return "request";
    case Phase::kReading:
      return "response";
    case Phase::kClosing:
      return "close";
    case Phase::kIdle:
      return "idle";
    case Phase::kFree:
      break;
  }
  return "free";
}

struct Conn {
  int fd = -1;
  OsslPtr<SSL> ssl;
  Phase phase = Phase::kFree;
  uint32_t generation = 0;  // tags epoll events, so a stale event never reaches a new connection
  uint32_t events = 0;      // registered epoll events; 0 when not registered
  bool in_flight = false;   // counted in LoadGenerator::in_flight_
  Clock::time_point start;
  Clock::time_point deadline;
  std::string response;
};

struct Stats {
  uint64_t started = 0;
  uint64_t completed = 0;
  uint64_t failed = 0;
  uint64_t resumed = 0;
  uint64_t sessions_offered = 0;
  uint64_t close_timeouts = 0;
  uint64_t dropped = 0;  // idle connections the server closed
  std::map<std::string, uint64_t> failures;
  std::vector<uint32_t> latency_us;
};

struct Target {
  sockaddr_in address{};
  std::optional<sockaddr_in> source;
};

// LoadGenerator drives the connections of one run. Single-threaded.
class LoadGenerator {
 public:
  LoadGenerator(const Options& options, std::vector<SSL_CTX*> ctxs, Target target, int epoll_fd,
                std::function<void(size_t)> on_hold)
      : options_(options),
        ctxs_(std::move(ctxs)),
        target_(target),
        epoll_fd_(epoll_fd),
        on_hold_(std::move(on_hold)),
        conns_(options.idle > 0 ? options.idle : options.concurrency) {
    request_ = "GET " + options.path + " HTTP/1.1\r\nHost: " + options.server_name +
               "\r\nUser-Agent: hallmark-loadgen\r\n" +
               (options.idle > 0 ? std::string() : std::string("Connection: close\r\n")) + "\r\n";
    const double duration = options.duration_s > 0 ? options.duration_s
                            : options.count > 0    ? kCountOnlyDurationS
                                                   : kDefaultDurationS;
    run_for_ = std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(duration));
    timeout_ = std::chrono::duration_cast<Clock::duration>(
        std::chrono::duration<double>(options.timeout_s));
  }

  LoadGenerator(const LoadGenerator&) = delete;
  LoadGenerator& operator=(const LoadGenerator&) = delete;
  ~LoadGenerator() { CloseAll(); }

  // Run returns once the run's bounds are reached and every connection is closed.
  void Run();

  const Stats& stats() const { return stats_; }
  double elapsed_s() const { return std::chrono::duration<double>(finish_ - start_).count(); }
  size_t idle_held() const { return idle_held_; }

 private:
  bool Starting(Clock::time_point now) const;
  void StartPending(Clock::time_point now);
  void Open(size_t slot, Clock::time_point now);
  void Advance(size_t slot);
  void Read(size_t slot);
  void DrainClose(size_t slot);
  void IdleEvent(size_t slot);
  void WaitOrFail(size_t slot, int ret);
  void Complete(size_t slot, int status);
  void Fail(size_t slot, const std::string& reason);
  void Release(size_t slot);
  void Watch(size_t slot, uint32_t events);
  void CheckDeadlines(Clock::time_point now);
  bool Done(Clock::time_point now);
  void CloseAll();

  const Options& options_;
  std::vector<SSL_CTX*> ctxs_;  // one per device, taken in turn
  Target target_;
  int epoll_fd_;
  std::function<void(size_t)> on_hold_;
  std::string request_;
  Clock::duration run_for_{};
  Clock::duration timeout_{};

  std::vector<Conn> conns_;
  std::deque<size_t> pending_;
  std::vector<OsslPtr<SSL_SESSION>> sessions_;  // each resumable session is used once
  size_t open_ = 0;                             // connections not kFree
  size_t in_flight_ = 0;                        // connections before their response
  size_t idle_ = 0;
  size_t idle_held_ = 0;
  bool stopping_ = false;
  bool holding_ = false;
  Clock::time_point start_;
  Clock::time_point finish_;
  Clock::time_point hold_until_;
  Stats stats_;
};

bool LoadGenerator::Starting(Clock::time_point now) const {
  if (stopping_ || holding_ || now >= start_ + run_for_) {
    return false;
  }
  if (options_.count > 0 && stats_.started >= options_.count) {
    return false;
  }
  // Idle mode retries failed connections, but not forever.
  return options_.idle == 0 || stats_.failed <= std::max<uint64_t>(100, options_.idle);
}

void LoadGenerator::StartPending(Clock::time_point now) {
  // Bounded by the queue's length on entry: a connection that fails at once goes to the back
  // and waits for the next round of the event loop.
  for (size_t n = pending_.size(); n > 0 && in_flight_ < options_.concurrency; --n) {
    if (!Starting(now)) {
      return;
    }
    const size_t slot = pending_.front();
    pending_.pop_front();
    Open(slot, now);
  }
}

void LoadGenerator::Open(size_t slot, Clock::time_point now) {
  Conn& c = conns_[slot];
  ++stats_.started;
  ++open_;
  ++in_flight_;
  c.in_flight = true;
  c.start = now;
  c.deadline = now + timeout_;
  c.phase = Phase::kConnecting;
  c.fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (c.fd < 0) {
    return Fail(slot, std::string("socket: ") + std::strerror(errno));
  }
  const int one = 1;
  ::setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  if (target_.source.has_value()) {
    // Pick the port at connect time, per destination, so many sources share the port range.
    ::setsockopt(c.fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
    if (::bind(c.fd, reinterpret_cast<const sockaddr*>(&*target_.source), sizeof(sockaddr_in)) !=
        0) {
      return Fail(slot, std::string("bind: ") + std::strerror(errno));
    }
  }
  if (::connect(c.fd, reinterpret_cast<const sockaddr*>(&target_.address), sizeof(sockaddr_in)) !=
          0 &&
      errno != EINPROGRESS) {
    return Fail(slot, std::string("connect: ") + std::strerror(errno));
  }
  c.ssl.reset(SSL_new(ctxs_[(stats_.started - 1) % ctxs_.size()]));
  if (!c.ssl || SSL_set_fd(c.ssl.get(), c.fd) != 1 ||
      // SSL_set_tlsext_host_name is a macro with a C cast.
      SSL_ctrl(c.ssl.get(), SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
               const_cast<char*>(options_.server_name.c_str())) != 1 ||
      SSL_set1_host(c.ssl.get(), options_.server_name.c_str()) != 1) {
    return Fail(slot, "SSL setup: " + DrainOsslErrors());
  }
  if (options_.resume && !sessions_.empty()) {
    if (SSL_set_session(c.ssl.get(), sessions_.back().get()) != 1) {
      ERR_clear_error();
    }
    sessions_.pop_back();
  }
  Watch(slot, EPOLLOUT);
}

void LoadGenerator::Watch(size_t slot, uint32_t events) {
  Conn& c = conns_[slot];
  if (c.events == events) {
    return;
  }
  epoll_event ev{};
  ev.events = events;
  ev.data.u64 = (static_cast<uint64_t>(c.generation) << 32) | static_cast<uint64_t>(slot);
  const int op = c.events == 0 ? EPOLL_CTL_ADD : EPOLL_CTL_MOD;
  if (::epoll_ctl(epoll_fd_, op, c.fd, &ev) != 0) {
    return Fail(slot, std::string("epoll_ctl: ") + std::strerror(errno));
  }
  c.events = events;
}

void LoadGenerator::Advance(size_t slot) {
  Conn& c = conns_[slot];
  for (;;) {
    switch (c.phase) {
      case Phase::kConnecting: {
        int err = 0;
        socklen_t len = sizeof(err);
        if (::getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) {
          err = errno;
        }
        if (err != 0) {
          return Fail(slot, std::string("connect: ") + std::strerror(err));
        }
        c.phase = Phase::kHandshaking;
        break;
      }
      case Phase::kHandshaking: {
        const int r = SSL_connect(c.ssl.get());
        if (r != 1) {
          return WaitOrFail(slot, r);
        }
        c.phase = Phase::kWriting;
        break;
      }
      case Phase::kWriting: {
        const int r = SSL_write(c.ssl.get(), request_.data(), static_cast<int>(request_.size()));
        if (r <= 0) {
          return WaitOrFail(slot, r);
        }
        c.phase = Phase::kReading;
        break;
      }
      case Phase::kReading:
        return Read(slot);
      case Phase::kClosing:
        return DrainClose(slot);
      case Phase::kIdle:
        return IdleEvent(slot);
      case Phase::kFree:
        return;
    }
  }
}

// TlsReason names a failed TLS operation for the report, e.g. "handshake: tlsv13 alert
// certificate required".
std::string TlsReason(Phase phase, int ssl_error) {
  std::string reason = PhaseName(phase);
  const unsigned long code = ERR_peek_last_error();
  if (code != 0) {
    const char* text = ERR_reason_error_string(code);
    reason += std::string(": ") + (text != nullptr ? text : "unknown TLS error");
  } else if (ssl_error == SSL_ERROR_ZERO_RETURN || (ssl_error == SSL_ERROR_SYSCALL && errno == 0)) {
    reason += ": server closed the connection";
  } else if (ssl_error == SSL_ERROR_SYSCALL) {
    reason += std::string(": ") + std::strerror(errno);
  } else {
    reason += ": SSL error " + std::to_string(ssl_error);
  }
  ERR_clear_error();
  return reason;
}

void LoadGenerator::WaitOrFail(size_t slot, int ret) {
  Conn& c = conns_[slot];
  errno = 0;
  const int e = SSL_get_error(c.ssl.get(), ret);
  if (e == SSL_ERROR_WANT_READ) {
    return Watch(slot, EPOLLIN);
  }
  if (e == SSL_ERROR_WANT_WRITE) {
    return Watch(slot, EPOLLOUT);
  }
  Fail(slot, TlsReason(c.phase, e));
}

void LoadGenerator::Read(size_t slot) {
  Conn& c = conns_[slot];
  std::array<char, 16384> buf;
  for (;;) {
    errno = 0;
    const int r = SSL_read(c.ssl.get(), buf.data(), static_cast<int>(buf.size()));
    if (r > 0) {
      c.response.append(buf.data(), static_cast<size_t>(r));
      const ResponseState state = ParseResponse(c.response);
      if (state.complete) {
        return Complete(slot, state.status);
      }
      continue;
    }
    const int e = SSL_get_error(c.ssl.get(), r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
      return WaitOrFail(slot, r);
    }
    const ResponseState state = ParseResponse(c.response);
    if (state.headers_done && (e == SSL_ERROR_ZERO_RETURN || e == SSL_ERROR_SYSCALL)) {
      ERR_clear_error();
      return Complete(slot, state.status);  // no Content-Length: the close ends the body
    }
    return Fail(slot, c.response.empty() ? TlsReason(c.phase, e) : "response: truncated");
  }
}

void LoadGenerator::Complete(size_t slot, int status) {
  Conn& c = conns_[slot];
  const auto now = Clock::now();
  if (status != 200) {
    return Fail(slot, "response: HTTP status " + std::to_string(status));
  }
  ++stats_.completed;
  stats_.latency_us.push_back(static_cast<uint32_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(now - c.start).count()));
  if (SSL_session_reused(c.ssl.get()) == 1) {
    ++stats_.resumed;
  }
  if (options_.resume) {
    // TLS 1.3 tickets arrive after the handshake; by the response they have been read.
    OsslPtr<SSL_SESSION> session(SSL_get1_session(c.ssl.get()));
    if (session && SSL_SESSION_is_resumable(session.get()) == 1) {
      ++stats_.sessions_offered;
      if (sessions_.size() < 2 * options_.concurrency) {
        sessions_.push_back(std::move(session));
      }
    }
  }
  c.in_flight = false;
  --in_flight_;
  c.response.clear();
  if (options_.idle > 0) {
    // The server keeps its side; ours needs only the socket, so the client's memory stays small
    // and the server sees a silent, authenticated connection.
    c.ssl.reset();
    c.phase = Phase::kIdle;
    ++idle_;
    return Watch(slot, EPOLLIN | EPOLLRDHUP);
  }
  c.phase = Phase::kClosing;
  c.deadline = now + kCloseGrace;
  if (SSL_shutdown(c.ssl.get()) < 0) {
    ERR_clear_error();
  }
  DrainClose(slot);
}

void LoadGenerator::DrainClose(size_t slot) {
  Conn& c = conns_[slot];
  std::array<char, 4096> buf;
  for (;;) {
    const int r = SSL_read(c.ssl.get(), buf.data(), static_cast<int>(buf.size()));
    if (r > 0) {
      continue;
    }
    const int e = SSL_get_error(c.ssl.get(), r);
    if (e == SSL_ERROR_WANT_READ) {
      return Watch(slot, EPOLLIN);
    }
    if (e == SSL_ERROR_WANT_WRITE) {
      return Watch(slot, EPOLLOUT);
    }
    ERR_clear_error();
    return Release(slot);  // the server closed: done
  }
}

void LoadGenerator::IdleEvent(size_t slot) {
  Conn& c = conns_[slot];
  std::array<char, 4096> buf;
  for (;;) {
    const ssize_t r = ::read(c.fd, buf.data(), buf.size());
    if (r > 0) {
      continue;  // a close_notify or a ticket; the close follows
    }
    if (r < 0 && (errno == EAGAIN || errno == EINTR)) {
      return;
    }
    ++stats_.dropped;
    --idle_;
    return Release(slot);
  }
}

void LoadGenerator::Fail(size_t slot, const std::string& reason) {
  ++stats_.failed;
  ++stats_.failures[reason];
  Release(slot);
}

void LoadGenerator::Release(size_t slot) {
  Conn& c = conns_[slot];
  const bool was_idle = c.phase == Phase::kIdle;
  if (c.phase != Phase::kFree) {
    --open_;
  }
  c.ssl.reset();
  if (c.fd >= 0) {
    ::close(c.fd);  // also leaves the epoll set
  }
  c.fd = -1;
  c.events = 0;
  c.phase = Phase::kFree;
  ++c.generation;
  c.response.clear();
  if (c.in_flight) {
    c.in_flight = false;
    --in_flight_;
  }
  if (!was_idle) {
    pending_.push_back(slot);
  }
}

void LoadGenerator::CheckDeadlines(Clock::time_point now) {
  for (size_t slot = 0; slot < conns_.size(); ++slot) {
    Conn& c = conns_[slot];
    if (c.phase == Phase::kFree || c.phase == Phase::kIdle || now < c.deadline) {
      continue;
    }
    if (c.phase == Phase::kClosing) {
      ++stats_.close_timeouts;
      Release(slot);
    } else {
      Fail(slot, std::string(PhaseName(c.phase)) + ": timeout");
    }
  }
}

void LoadGenerator::CloseAll() {
  for (size_t slot = 0; slot < conns_.size(); ++slot) {
    if (conns_[slot].phase != Phase::kFree) {
      Release(slot);
    }
  }
  idle_ = 0;
}

bool LoadGenerator::Done(Clock::time_point now) {
  if (options_.idle == 0) {
    return !Starting(now) && open_ == 0;
  }
  if (!holding_) {
    if (idle_ < options_.idle && (Starting(now) || in_flight_ > 0)) {
      return false;
    }
    holding_ = true;
    idle_held_ = idle_;
    hold_until_ = now + std::chrono::duration_cast<Clock::duration>(
                            std::chrono::duration<double>(options_.hold_s));
    on_hold_(idle_);
    // Connections still in flight (none, unless the setup deadline cut them short) are dropped.
    for (size_t slot = 0; slot < conns_.size(); ++slot) {
      if (conns_[slot].in_flight) {
        Fail(slot, std::string(PhaseName(conns_[slot].phase)) + ": setup deadline");
      }
    }
    return false;
  }
  if (now < hold_until_ && !stopping_ && idle_ > 0) {
    return false;
  }
  CloseAll();
  return true;
}

void LoadGenerator::Run() {
  start_ = Clock::now();
  for (size_t slot = 0; slot < conns_.size(); ++slot) {
    pending_.push_back(slot);
  }
  StartPending(start_);
  std::array<epoll_event, 512> events;
  auto next_scan = start_ + kDeadlineScanInterval;
  for (;;) {
    const int n = ::epoll_wait(epoll_fd_, events.data(), static_cast<int>(events.size()), 20);
    for (int i = 0; i < n; ++i) {
      const uint64_t tag = events[static_cast<size_t>(i)].data.u64;
      const size_t slot = static_cast<size_t>(tag & 0xffffffffu);
      if (conns_[slot].generation != static_cast<uint32_t>(tag >> 32) ||
          conns_[slot].phase == Phase::kFree) {
        continue;
      }
      Advance(slot);
    }
    auto now = Clock::now();
    if (g_stop_requested != 0) {
      stopping_ = true;
    }
    if (now >= next_scan) {
      CheckDeadlines(now);
      next_scan = now + kDeadlineScanInterval;
    }
    StartPending(now);
    if (Done(now)) {
      break;
    }
  }
  finish_ = Clock::now();
}

// --- Setup and report -----------------------------------------------------------------------

Result<sockaddr_in> ParseLoopback(const std::string& host, uint16_t port) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  if (::inet_pton(AF_INET, host.c_str(), &addr.sin_addr) != 1) {
    return Error(Code::kInvalidArgument, "not an IPv4 address: " + host);
  }
  // This tool generates load: it only ever targets this machine.
  if ((ntohl(addr.sin_addr.s_addr) >> 24) != 127) {
    return Error(Code::kInvalidArgument, host + " is not a loopback address (127.0.0.0/8)");
  }
  return addr;
}

Result<Target> ParseTarget(const Options& o) {
  const size_t colon = o.connect.rfind(':');
  if (colon == std::string::npos) {
    return Error(Code::kInvalidArgument, "--connect wants HOST:PORT, got " + o.connect);
  }
  const unsigned long port = std::strtoul(o.connect.c_str() + colon + 1, nullptr, 10);
  if (port == 0 || port > 65535) {
    return Error(Code::kInvalidArgument, "bad port in --connect " + o.connect);
  }
  Target target;
  auto address = ParseLoopback(o.connect.substr(0, colon), static_cast<uint16_t>(port));
  if (!address) {
    return address.error();
  }
  target.address = *address;
  if (!o.source.empty()) {
    auto source = ParseLoopback(o.source, 0);
    if (!source) {
      return source.error();
    }
    target.source = *source;
  }
  return target;
}

Result<OsslPtr<SSL_CTX>> MakeClientContext(const Options& o, const std::string& cert,
                                           const std::string& key) {
  OsslPtr<SSL_CTX> ctx(SSL_CTX_new(TLS_client_method()));
  if (!ctx) {
    return OsslError("SSL_CTX_new");
  }
  SSL_CTX* c = ctx.get();
  if (SSL_CTX_set_min_proto_version(c, TLS1_3_VERSION) != 1 ||
      SSL_CTX_set_max_proto_version(c, TLS1_3_VERSION) != 1) {
    return OsslError("restricting the client to TLS 1.3");
  }
  if (SSL_CTX_use_certificate_chain_file(c, cert.c_str()) != 1) {
    return OsslError(Code::kInvalidArgument, "cannot use client certificate " + cert);
  }
  if (SSL_CTX_use_PrivateKey_file(c, key.c_str(), SSL_FILETYPE_PEM) != 1 ||
      SSL_CTX_check_private_key(c) != 1) {
    return OsslError(Code::kInvalidArgument, "cannot use client key " + key);
  }
  if (!o.cafile.empty()) {
    if (SSL_CTX_load_verify_locations(c, o.cafile.c_str(), nullptr) != 1) {
      return OsslError(Code::kInvalidArgument, "cannot load --cafile " + o.cafile);
    }
    SSL_CTX_set_verify(c, SSL_VERIFY_PEER, nullptr);
  } else {
    SSL_CTX_set_verify(c, SSL_VERIFY_NONE, nullptr);
  }
  SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_OFF);
  return ctx;
}

// RaiseFileLimit lifts the soft open-file limit to the hard one.
void RaiseFileLimit() {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &limit);
  }
}

struct ServerUsage {
  std::optional<uint64_t> cpu_ticks;
  std::optional<uint64_t> rss_kib;
};

ServerUsage ReadServer(const std::vector<int>& pids) {
  return {SumOver(pids, CpuTicks), SumOver(pids, RssKiB)};
}

double ClientCpuSeconds() {
  rusage usage{};
  ::getrusage(RUSAGE_SELF, &usage);
  auto seconds = [](const timeval& tv) {
    return static_cast<double>(tv.tv_sec) + static_cast<double>(tv.tv_usec) / 1e6;
  };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

Json Report(const Options& o, LoadGenerator& gen, const ServerUsage& before,
            const ServerUsage& after) {
  const Stats& s = gen.stats();
  std::vector<uint32_t> latency = s.latency_us;
  std::sort(latency.begin(), latency.end());
  const double elapsed = gen.elapsed_s();
  Json j;
  j["mode"] = o.idle > 0 ? "idle" : "handshake";
  j["label"] = o.label;
  j["target"] = o.connect;
  j["concurrency"] = o.concurrency;
  j["resume"] = o.resume;
  j["elapsed_s"] = elapsed;
  j["started"] = s.started;
  j["completed"] = s.completed;
  j["failed"] = s.failed;
  j["rate_per_s"] = elapsed > 0 ? static_cast<double>(s.completed) / elapsed : 0.0;
  j["latency_us_p50"] = Percentile(latency, 0.50);
  j["latency_us_p90"] = Percentile(latency, 0.90);
  j["latency_us_p99"] = Percentile(latency, 0.99);
  j["latency_us_max"] = latency.empty() ? 0 : latency.back();
  j["resumed"] = s.resumed;
  j["sessions_offered"] = s.sessions_offered;
  j["close_timeouts"] = s.close_timeouts;
  if (o.idle > 0) {
    j["idle_held"] = gen.idle_held();
    j["idle_dropped"] = s.dropped;
  }
  j["client_cpu_s"] = ClientCpuSeconds();
  if (before.cpu_ticks && after.cpu_ticks) {
    const double cpu = TicksToSeconds(*after.cpu_ticks - *before.cpu_ticks);
    j["server_cpu_s"] = cpu;
    j["server_cpu_util"] = elapsed > 0 ? cpu / elapsed : 0.0;
    j["server_cpu_us_per_handshake"] =
        s.completed > 0 ? cpu * 1e6 / static_cast<double>(s.completed) : 0.0;
  }
  if (after.rss_kib) {
    j["server_rss_kib"] = *after.rss_kib;
  }
  j["failure_reasons"] = s.failures;
  return j;
}

void PrintSummary(const Json& j) {
  auto num = [&j](const char* key) { return j.value(key, 0.0); };
  std::fprintf(stderr, "hallmark_loadgen %s%s%s: %s mode, %.1f s, concurrency %zu\n",
               j["target"].get<std::string>().c_str(),
               j["label"].get<std::string>().empty() ? "" : " ",
               j["label"].get<std::string>().c_str(), j["mode"].get<std::string>().c_str(),
               num("elapsed_s"), j["concurrency"].get<size_t>());
  std::fprintf(stderr, "  completed %.0f (%.1f/s), failed %.0f\n", num("completed"),
               num("rate_per_s"), num("failed"));
  std::fprintf(stderr, "  latency connect->response (us): p50 %.0f  p90 %.0f  p99 %.0f  max %.0f\n",
               num("latency_us_p50"), num("latency_us_p90"), num("latency_us_p99"),
               num("latency_us_max"));
  if (j.contains("server_cpu_us_per_handshake")) {
    std::fprintf(stderr, "  server CPU %.2f s (%.0f%% of one core): %.0f us per completed hello\n",
                 num("server_cpu_s"), 100 * num("server_cpu_util"),
                 num("server_cpu_us_per_handshake"));
  }
  std::fprintf(stderr, "  load generator CPU %.2f s\n", num("client_cpu_s"));
  if (j["resume"].get<bool>()) {
    if (num("resumed") == 0) {
      std::fprintf(stderr, "  resumed none: %s\n",
                   num("sessions_offered") == 0 ? "the server offered no resumable session"
                                                : "the server refused the sessions it offered");
    } else {
      std::fprintf(stderr, "  resumed %.0f of %.0f\n", num("resumed"), num("completed"));
    }
  }
  if (j.contains("idle_held")) {
    std::fprintf(stderr, "  idle connections held %.0f, dropped by the server %.0f\n",
                 num("idle_held"), num("idle_dropped"));
  }
  for (const auto& [reason, count] : j["failure_reasons"].items()) {
    std::fprintf(stderr, "  failure x%llu: %s\n",
                 static_cast<unsigned long long>(count.get<uint64_t>()), reason.c_str());
  }
}

int Main(const Options& o) {
  auto target = ParseTarget(o);
  if (!target) {
    std::fprintf(stderr, "hallmark_loadgen: %s\n", target.error().message().c_str());
    return 2;
  }
  std::vector<std::pair<std::string, std::string>> devices;
  if (o.devices.empty()) {
    devices.emplace_back(o.cert, o.key);
  } else {
    std::ifstream in(o.devices);
    std::string cert, key;
    while (in >> cert >> key) {
      devices.emplace_back(cert, key);
    }
    if (devices.empty()) {
      std::fprintf(stderr, "hallmark_loadgen: no \"CERT KEY\" lines in %s\n", o.devices.c_str());
      return 2;
    }
  }
  std::vector<OsslPtr<SSL_CTX>> ctxs;
  for (const auto& [cert, key] : devices) {
    auto ctx = MakeClientContext(o, cert, key);
    if (!ctx) {
      std::fprintf(stderr, "hallmark_loadgen: %s\n", ctx.error().ToString().c_str());
      return 2;
    }
    ctxs.push_back(std::move(*ctx));
  }
  std::vector<SSL_CTX*> ctx_ptrs;
  for (const auto& ctx : ctxs) {
    ctx_ptrs.push_back(ctx.get());
  }
  RaiseFileLimit();
  std::signal(SIGPIPE, SIG_IGN);
  std::signal(SIGTERM, OnStopSignal);
  std::signal(SIGINT, OnStopSignal);
  const int epoll_fd = ::epoll_create1(EPOLL_CLOEXEC);
  if (epoll_fd < 0) {
    std::perror("epoll_create1");
    return 1;
  }
  const ServerUsage before = ReadServer(o.server_pids);
  auto on_hold = [&o, &before](size_t idle) {
    Json line = {{"event", "holding"}, {"idle", idle}};
    if (auto rss = SumOver(o.server_pids, RssKiB); rss && before.rss_kib) {
      line["server_rss_kib"] = *rss;
      line["server_rss_kib_before"] = *before.rss_kib;
    }
    std::printf("%s\n", line.dump().c_str());
    std::fflush(stdout);
  };
  LoadGenerator gen(o, std::move(ctx_ptrs), *target, epoll_fd, on_hold);
  gen.Run();
  ::close(epoll_fd);
  std::this_thread::sleep_for(kSettle);
  const ServerUsage after = ReadServer(o.server_pids);
  if (!o.server_pids.empty() && !after.cpu_ticks) {
    std::fprintf(stderr, "hallmark_loadgen: cannot read /proc of --server-pid\n");
  }
  const Json report = Report(o, gen, before, after);
  std::printf("%s\n", report.dump().c_str());
  std::fflush(stdout);
  PrintSummary(report);
  return gen.stats().completed > 0 ? 0 : 1;
}

// ParseAndRun parses the command line (CLI11 prints help and usage errors) and runs.
int ParseAndRun(int argc, char** argv) {
  Options o;
  CLI::App app{
      "Mutual-TLS 1.3 load generator: full handshakes (or --resume) with GET /v1/hello, or "
      "--idle connections. Prints one JSON report on stdout and a summary on stderr."};
  app.add_option("--connect", o.connect, "Server HOST:PORT (127.0.0.0/8 only)")
      ->capture_default_str();
  app.add_option("--source", o.source, "Source address to bind (127.0.0.x)");
  auto* cert = app.add_option("--cert", o.cert, "Client certificate (PEM, leaf first)");
  auto* key = app.add_option("--key", o.key, "Client private key (PEM)");
  auto* devices = app.add_option("--devices", o.devices,
                                 "File of \"CERT KEY\" lines: connections take the devices in "
                                 "turn (instead of --cert/--key)");
  cert->needs(key);
  key->needs(cert);
  devices->excludes(cert)->excludes(key);
  app.add_option("--cafile", o.cafile, "Verify the server against these CAs (else no check)");
  app.add_option("--server-name", o.server_name, "SNI, Host header and checked server name")
      ->capture_default_str();
  app.add_option("--path", o.path, "Request path")->capture_default_str();
  app.add_option("--label", o.label, "Name of this run in the report");
  app.add_option("--concurrency", o.concurrency, "Connections in flight at once")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  app.add_option("--duration", o.duration_s,
                 "Stop starting connections after S seconds (default 10; 300 with only --count)")
      ->check(CLI::Range(0.0, 3600.0));
  app.add_option("--count", o.count, "Stop after starting N connections");
  app.add_option("--timeout", o.timeout_s, "Per-connection limit, seconds")
      ->check(CLI::Range(0.1, 600.0))
      ->capture_default_str();
  app.add_flag("--resume", o.resume, "Reuse sessions the server offers, each once");
  app.add_option("--server-pid", o.server_pids,
                 "Server process(es) whose CPU time and RSS to report (repeatable)");
  app.add_option("--idle", o.idle, "Hold N idle authenticated connections instead")
      ->check(CLI::Range(1, 1000000));
  app.add_option("--hold", o.hold_s, "With --idle: seconds to hold them (or until SIGTERM)")
      ->check(CLI::Range(0.0, 3600.0))
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  if (o.cert.empty() && o.devices.empty()) {
    std::fprintf(stderr, "hallmark_loadgen: give --cert and --key, or --devices\n");
    return 2;
  }
  return Main(o);
}

}  // namespace
}  // namespace hallmark::bench

int main(int argc, char** argv) {
  try {
    return hallmark::bench::ParseAndRun(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "hallmark_loadgen: %s\n", e.what());
    return 1;
  }
}
