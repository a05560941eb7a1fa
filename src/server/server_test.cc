// In-process tests of the server: real TLS over 127.0.0.1 with an OpenSSL client, a directory
// the test controls. Every test runs against both TLS libraries (server/tls.h).
#include "server/server.h"

#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <csignal>
#include <mutex>
#include <string>
#include <thread>

#include "core/certificate_builder.h"
#include "core/encoding.h"
#include "core/file.h"
#include "core/key_file.h"
#include "server/testing_directory.h"
#include "server/tls_library.h"
#include "testing/matchers.h"

namespace hallmark::server {
namespace {

using ::hallmark::testing::HasError;
using ::hallmark::testing::IsOk;
using ::hallmark::testing::TempDir;
using registry::DeviceStatus;
using testing::FakeDirectory;
using testing::Record;

Certificate SelfSigned(const PrivateKey& key, const std::string& cn, bool server) {
  CertificateTemplate t;
  t.serial = {1};
  t.subject.common_name = cn;
  t.not_before = SystemClock().Now() - 60;
  t.not_after = SystemClock().Now() + 3600;
  t.key_usage = kDigitalSignature;
  t.extended_key_usage = {server ? ExtendedKeyUsage::kServerAuth : ExtendedKeyUsage::kClientAuth};
  if (server) {
    t.subject_alt_names = {*ParseSubjectAltName("ip:127.0.0.1")};
  }
  return *SignCertificate(t, key.Public(), nullptr, key);
}

// KeepAliveClient is one TLS connection that sends several requests.
class KeepAliveClient {
 public:
  // Connect opens a connection, resuming `session` if given.
  bool Connect(uint16_t port, const PrivateKey& key, const Certificate& cert,
               SSL_SESSION* session = nullptr) {
    ctx_.reset(SSL_CTX_new(TLS_client_method()));
    SSL_CTX_set_min_proto_version(ctx_.get(), TLS1_3_VERSION);
    SSL_CTX_use_certificate(ctx_.get(), cert.native());
    SSL_CTX_use_PrivateKey(ctx_.get(), key.native());
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
      return false;
    }
    // A broken server must fail the test, not hang it.
    timeval timeout{30, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
    ssl_.reset(SSL_new(ctx_.get()));
    SSL_set_fd(ssl_.get(), fd_);
    if (session != nullptr) {
      SSL_set_session(ssl_.get(), session);
    }
    return SSL_connect(ssl_.get()) == 1;
  }
  bool resumed() const { return SSL_session_reused(ssl_.get()) == 1; }
  // Session returns the session to resume later (after a response: tickets arrive after the
  // handshake).
  OsslPtr<SSL_SESSION> Session() const {
    return OsslPtr<SSL_SESSION>(SSL_get1_session(ssl_.get()));
  }
  // Exporter is this connection's TLS exporter value for `label` and an empty context.
  std::string Exporter(const std::string& label) {
    unsigned char out[32];
    SSL_export_keying_material(ssl_.get(), out, sizeof(out), label.data(), label.size(), nullptr, 0,
                               1);
    return HexEncode(out);
  }
  ~KeepAliveClient() {
    // A client that ends without close_notify loses its session for resumption (OpenSSL
    // marks it not resumable), so say goodbye properly.
    if (ssl_) {
      SSL_shutdown(ssl_.get());
    }
    ssl_.reset();
    if (fd_ >= 0) {
      ::close(fd_);
    }
  }
  // KeyUpdate sends a TLS 1.3 KeyUpdate that asks the server to update its keys too.
  int KeyUpdate() {
    if (SSL_key_update(ssl_.get(), SSL_KEY_UPDATE_REQUESTED) != 1) {
      return 0;
    }
    return SSL_do_handshake(ssl_.get());
  }
  // Get sends GET /v1/hello and returns the status code, or 0 if the connection was closed.
  int Get() {
    if (!Send("GET /v1/hello HTTP/1.1\r\nHost: x\r\n\r\n")) {
      return 0;
    }
    return Receive().status;
  }
  bool Send(const std::string& raw) {
    return SSL_write(ssl_.get(), raw.data(), static_cast<int>(raw.size())) > 0;
  }
  struct Response {
    int status = 0;  // 0: the connection closed first
    std::string body;
  };
  // Receive reads one response.
  Response Receive() {
    char buf[4096];
    for (;;) {
      size_t end = pending_.find("\r\n\r\n");
      if (end != std::string::npos) {
        size_t cl = pending_.find("Content-Length: ");
        size_t len = cl == std::string::npos ? 0 : std::stoul(pending_.substr(cl + 16));
        if (pending_.size() >= end + 4 + len) {
          Response r{std::stoi(pending_.substr(9, 3)), pending_.substr(end + 4, len)};
          pending_.erase(0, end + 4 + len);
          return r;
        }
      }
      int n = SSL_read(ssl_.get(), buf, sizeof(buf));
      if (n <= 0) {
        return {};
      }
      pending_.append(buf, static_cast<size_t>(n));
    }
  }

 private:
  OsslPtr<SSL_CTX> ctx_;
  OsslPtr<SSL> ssl_;
  int fd_ = -1;
  std::string pending_;
};

// Eventually polls `condition` for up to 30 s (state another thread updates after the client has
// seen its effect).
bool Eventually(const std::function<bool()>& condition) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (!condition()) {
    if (std::chrono::steady_clock::now() > deadline) {
      return false;
    }
    std::this_thread::yield();
  }
  return true;
}

class OpenHandler : public Handler {
 public:
  bool authenticated_only() const override { return false; }
  HttpResponse Handle(const HttpRequest&, const ClientContext& client) override {
    HttpResponse res;
    res.content_type = "text/plain";
    res.body = std::string(client.identity != nullptr ? "known " : "unknown ") +
               (client.leaf != nullptr ? client.leaf->Key().DeviceId() : "no-leaf");
    return res;
  }
};

// ExporterHandler answers POST /test/exporter with the connection's exporter value for the label
// in the body, so a test can check that handlers see the client's own TLS connection.
class ExporterHandler : public Handler {
 public:
  size_t max_body_bytes() const override { return 64; }
  HttpResponse Handle(const HttpRequest& req, const ClientContext& client) override {
    auto value = client.export_keying_material(req.body, {}, 32);
    if (!value) {
      return JsonError(500, value.error().message());
    }
    HttpResponse res;
    res.content_type = "text/plain";
    res.body = HexEncode(value->bytes(SecretAccess::Grant()));
    return res;
  }
};

// Gate holds a handler until the test opens it.
struct Gate {
  std::mutex mu;
  std::condition_variable cv;
  bool open = false;
  std::atomic<bool> entered{false};
  void Open() {
    std::lock_guard<std::mutex> lock(mu);
    open = true;
    cv.notify_all();
  }
};

// BlockingHandler stands for an endpoint that waits for the disk: it runs off the event loop
// and answers once the gate opens.
class BlockingHandler : public Handler {
 public:
  explicit BlockingHandler(std::shared_ptr<Gate> gate) : gate_(std::move(gate)) {}
  bool blocking() const override { return true; }
  HttpResponse Handle(const HttpRequest&, const ClientContext&) override {
    gate_->entered = true;
    std::unique_lock<std::mutex> lock(gate_->mu);
    gate_->cv.wait(lock, [this] { return gate_->open; });
    HttpResponse res;
    res.content_type = "text/plain";
    res.body = "done";
    return res;
  }

 private:
  std::shared_ptr<Gate> gate_;
};

// BlockingExporterHandler is ExporterHandler run on the server's blocking pool.
class BlockingExporterHandler : public ExporterHandler {
 public:
  bool blocking() const override { return true; }
};

class ServerTest : public ::testing::TestWithParam<TlsLibrary> {
 protected:
  void SetUp() override {
    ::signal(SIGPIPE, SIG_IGN);  // the client writes to connections the server refused
    PrivateKey key = *PrivateKey::Generate(KeyType::kP256);
    ASSERT_THAT(WriteFileAtomic(dir_ / "server.pem", SelfSigned(key, "server", true).ToPem(), 0644),
                IsOk());
    ASSERT_THAT(WritePrivateKeyFile(dir_ / "server.key", key, std::nullopt, true), IsOk());
    ServerConfig config;
    config.certificate = dir_ / "server.pem";
    config.private_key = dir_ / "server.key";
    config.threads = 1;
    config.registry_refresh = std::chrono::milliseconds(10);
    config.idle_timeout = std::chrono::seconds(1);
    config.tls_library = GetParam();
    config.listeners.push_back({{"127.0.0.1", 0}, "registry", {}, {}});
    ListenerConfig open{{"127.0.0.1", 0}, "registry", {}, {}};
    open.admit_unknown = true;
    config.listeners.push_back(open);
    auto server = Server::Create(config, &directory_, &SystemClock());
    ASSERT_THAT(server, IsOk());
    server_ = std::move(*server);
    ASSERT_THAT(server_->AddRoute("/test/exporter", std::make_unique<ExporterHandler>()), IsOk());
    ASSERT_THAT(server_->AddRoute("/test/open", std::make_unique<OpenHandler>()), IsOk());
    ASSERT_THAT(server_->AddRoute("/test/blocking", std::make_unique<BlockingHandler>(gate_)),
                IsOk());
    ASSERT_THAT(
        server_->AddRoute("/test/exporter-off-loop", std::make_unique<BlockingExporterHandler>()),
        IsOk());
    ASSERT_THAT(server_->Start(), IsOk());
    port_ = server_->Listeners()[0].endpoint.port;
    open_port_ = server_->Listeners()[1].endpoint.port;
    thread_ = std::thread([this]() { server_->Run(); });
  }
  void TearDown() override {
    gate_->Open();  // a failed test must not leave a handler waiting: Run joins the pool
    server_->Stop();
    thread_.join();
  }

  TempDir dir_;
  FakeDirectory directory_;
  std::unique_ptr<Server> server_;
  std::thread thread_;
  uint16_t port_ = 0;
  uint16_t open_port_ = 0;  // admits unknown devices to open endpoints
  std::shared_ptr<Gate> gate_ = std::make_shared<Gate>();
  PrivateKey device_ = *PrivateKey::Generate(KeyType::kP256);
  Certificate device_cert_ = SelfSigned(device_, "device", false);
};

TEST_P(ServerTest, KeptAliveConnectionServesSeveralRequests) {
  directory_.Put(Record(device_.Public().DeviceId(), DeviceStatus::kActive));
  KeepAliveClient client;
  ASSERT_TRUE(client.Connect(port_, device_, device_cert_));
  EXPECT_EQ(client.Get(), 200);
  EXPECT_EQ(client.Get(), 200);
}

TEST_P(ServerTest, RevocationEndsAConnectionThatStaysOpen) {
  directory_.Put(Record(device_.Public().DeviceId(), DeviceStatus::kActive));
  KeepAliveClient client;
  ASSERT_TRUE(client.Connect(port_, device_, device_cert_));
  ASSERT_EQ(client.Get(), 200);
  directory_.Put(Record(device_.Public().DeviceId(), DeviceStatus::kRevoked));
  // Two refreshes after the change: the cache has dropped the record.
  ASSERT_TRUE(directory_.WaitForRefreshes(2, std::chrono::seconds(30)));
  EXPECT_EQ(client.Get(), 0);
  EXPECT_EQ(server_->metrics().failures(HandshakeFailure::kPolicyRejected), 1u);
}

TEST_P(ServerTest, ResumedSessionIsAuthorizedAgainAndSaysHello) {
  directory_.Put(Record(device_.Public().DeviceId(), DeviceStatus::kActive));
  OsslPtr<SSL_SESSION> session;
  {
    KeepAliveClient first;
    ASSERT_TRUE(first.Connect(port_, device_, device_cert_));
    ASSERT_EQ(first.Get(), 200);
    session = first.Session();
  }
  KeepAliveClient again;
  ASSERT_TRUE(again.Connect(port_, device_, device_cert_, session.get()));
  EXPECT_EQ(again.Get(), 200);
  EXPECT_TRUE(again.resumed());
  EXPECT_EQ(server_->metrics().resumed(), 1u);
}

TEST_P(ServerTest, RevokedDeviceCannotResumeItsSession) {
  directory_.Put(Record(device_.Public().DeviceId(), DeviceStatus::kActive));
  OsslPtr<SSL_SESSION> session;
  {
    KeepAliveClient first;
    ASSERT_TRUE(first.Connect(port_, device_, device_cert_));
    ASSERT_EQ(first.Get(), 200);
    session = first.Session();
  }
  directory_.Put(Record(device_.Public().DeviceId(), DeviceStatus::kRevoked));
  ASSERT_TRUE(directory_.WaitForRefreshes(2, std::chrono::seconds(30)));
  KeepAliveClient again;
  again.Connect(port_, device_, device_cert_, session.get());
  EXPECT_EQ(again.Get(), 0);
  EXPECT_EQ(server_->metrics().resumed(), 1u);
  EXPECT_EQ(server_->metrics().failures(HandshakeFailure::kPolicyRejected), 1u);
}

TEST_P(ServerTest, PipelinedRequestsAreAllAnswered) {
  directory_.Put(Record(device_.Public().DeviceId(), DeviceStatus::kActive));
  KeepAliveClient client;
  ASSERT_TRUE(client.Connect(port_, device_, device_cert_));
  const std::string hello = "GET /v1/hello HTTP/1.1\r\nHost: x\r\n\r\n";
  ASSERT_TRUE(client.Send(hello + hello + "GET /nowhere HTTP/1.1\r\nHost: x\r\n\r\n"));
  EXPECT_EQ(client.Receive().status, 200);
  EXPECT_EQ(client.Receive().status, 200);
  EXPECT_EQ(client.Receive().status, 404);
}

TEST_P(ServerTest, IdleConnectionIsClosedAfterTheIdleTimeout) {
  directory_.Put(Record(device_.Public().DeviceId(), DeviceStatus::kActive));
  KeepAliveClient client;
  ASSERT_TRUE(client.Connect(port_, device_, device_cert_));
  ASSERT_EQ(client.Get(), 200);
  // The server closes after idle_timeout (1 s); the read sees the close, not its own 30 s limit.
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(client.Receive().status, 0);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(25));
}

TEST_P(ServerTest, KeyUpdateOnAnIdleConnectionIsNotARequest) {
  directory_.Put(Record(device_.Public().DeviceId(), DeviceStatus::kActive));
  KeepAliveClient client;
  ASSERT_TRUE(client.Connect(port_, device_, device_cert_));
  ASSERT_EQ(client.Get(), 200);
  // TLS housekeeping wakes the idle connection without a byte of a request; the server updates
  // its keys too (requested) and keeps waiting for the next request.
  ASSERT_EQ(client.KeyUpdate(), 1);
  EXPECT_EQ(client.Get(), 200);
  EXPECT_EQ(client.Get(), 200);
}

TEST_P(ServerTest, HandlerSeesTheClientsOwnTlsExporter) {
  directory_.Put(Record(device_.Public().DeviceId(), DeviceStatus::kActive));
  KeepAliveClient client;
  ASSERT_TRUE(client.Connect(port_, device_, device_cert_));
  const std::string label = "EXPORTER-hallmark-test";
  // On the event loop and, for a blocking handler, on the server's pool.
  for (const char* path : {"/test/exporter", "/test/exporter-off-loop"}) {
    ASSERT_TRUE(client.Send(std::string("POST ") + path +
                            " HTTP/1.1\r\nHost: x\r\nContent-Length: " +
                            std::to_string(label.size()) + "\r\n\r\n" + label));
    auto res = client.Receive();
    EXPECT_EQ(res.status, 200) << path;
    EXPECT_EQ(res.body, client.Exporter(label)) << path;
  }
}

// An endpoint waiting for the disk runs off the event loop: with one loop, other devices'
// handshakes and hellos go on while it waits, and its own answer comes when it is done.
TEST_P(ServerTest, BlockingHandlerDoesNotStallOtherConnections) {
  directory_.Put(Record(device_.Public().DeviceId(), DeviceStatus::kActive));
  KeepAliveClient slow;
  ASSERT_TRUE(slow.Connect(port_, device_, device_cert_));
  ASSERT_TRUE(slow.Send("GET /test/blocking HTTP/1.1\r\nHost: x\r\n\r\n"));
  ASSERT_TRUE(Eventually([this] { return gate_->entered.load(); }));
  for (int i = 0; i < 3; ++i) {
    KeepAliveClient other;
    ASSERT_TRUE(other.Connect(port_, device_, device_cert_));
    EXPECT_EQ(other.Get(), 200);
  }
  gate_->Open();
  auto res = slow.Receive();
  EXPECT_EQ(res.status, 200);
  EXPECT_EQ(res.body, "done");
  // The connection goes on serving after the handler came back from the pool.
  EXPECT_EQ(slow.Get(), 200);
}

TEST_P(ServerTest, OversizedBodyIsRefusedWith413) {
  directory_.Put(Record(device_.Public().DeviceId(), DeviceStatus::kActive));
  KeepAliveClient client;
  ASSERT_TRUE(client.Connect(port_, device_, device_cert_));
  ASSERT_TRUE(client.Send("POST /test/exporter HTTP/1.1\r\nHost: x\r\nContent-Length: 65\r\n\r\n" +
                          std::string(65, 'x')));
  EXPECT_EQ(client.Receive().status, 413);
  KeepAliveClient hello;
  ASSERT_TRUE(hello.Connect(port_, device_, device_cert_));
  ASSERT_TRUE(hello.Send("GET /v1/hello HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nx"));
  EXPECT_EQ(hello.Receive().status, 413);
}

// A client that sends a large body before reading the answer (curl does) still gets its 413:
// the server reads and discards the body it refused instead of resetting the connection.
TEST_P(ServerTest, RefusedLargeBodyStillGetsItsAnswer) {
  directory_.Put(Record(device_.Public().DeviceId(), DeviceStatus::kActive));
  for (size_t size : {size_t{64} * 1024, size_t{512} * 1024}) {
    KeepAliveClient client;
    ASSERT_TRUE(client.Connect(port_, device_, device_cert_));
    ASSERT_TRUE(client.Send("POST /test/exporter HTTP/1.1\r\nHost: x\r\nContent-Length: " +
                            std::to_string(size) + "\r\n\r\n" + std::string(size, 'x')))
        << size;
    EXPECT_EQ(client.Receive().status, 413) << size;
  }
}

TEST_P(ServerTest, RouteCannotBeAddedTwice) {
  EXPECT_THAT(server_->AddRoute("/v1/hello", std::make_unique<ExporterHandler>()),
              HasError(Code::kAlreadyExists, ::testing::_));
  EXPECT_THAT(server_->AddRoute("relative", std::make_unique<ExporterHandler>()),
              HasError(Code::kInvalidArgument, ::testing::_));
}

TEST_P(ServerTest, UnknownDeviceReachesOnlyOpenEndpointsOnAnAdmittingListener) {
  KeepAliveClient client;
  ASSERT_TRUE(client.Connect(open_port_, device_, device_cert_));
  ASSERT_TRUE(client.Send("GET /test/open HTTP/1.1\r\nHost: x\r\n\r\n"));
  auto open = client.Receive();
  EXPECT_EQ(open.status, 200);
  EXPECT_EQ(open.body, "unknown " + device_.Public().DeviceId());
  EXPECT_EQ(client.Get(), 403);  // hello needs an identity
  EXPECT_EQ(server_->metrics().handshakes(), 0u);
}

TEST_P(ServerTest, KnownDeviceOnAnAdmittingListenerKeepsItsIdentity) {
  directory_.Put(Record(device_.Public().DeviceId(), DeviceStatus::kActive));
  KeepAliveClient client;
  ASSERT_TRUE(client.Connect(open_port_, device_, device_cert_));
  EXPECT_EQ(client.Get(), 200);
  ASSERT_TRUE(client.Send("GET /test/open HTTP/1.1\r\nHost: x\r\n\r\n"));
  EXPECT_EQ(client.Receive().body, "known " + device_.Public().DeviceId());
}

TEST_P(ServerTest, UnknownDeviceIsRefusedOnAListenerThatDoesNotAdmitIt) {
  KeepAliveClient client;
  client.Connect(port_, device_, device_cert_);
  EXPECT_EQ(client.Get(), 0);
  // The alert reaches the client before the server's loop counts the failure.
  EXPECT_TRUE(Eventually(
      [&]() { return server_->metrics().failures(HandshakeFailure::kPolicyRejected) == 1u; }));
}

INSTANTIATE_TEST_SUITE_P(Tls, ServerTest,
                         ::testing::Values(TlsLibrary::kOpenSsl, TlsLibrary::kGnuTls),
                         [](const ::testing::TestParamInfo<TlsLibrary>& p) {
                           return std::string(TlsLibraryName(p.param));
                         });

}  // namespace
}  // namespace hallmark::server
