// In-process tests of the server: real TLS over 127.0.0.1 with an OpenSSL client, a directory
// the test controls.
#include "server/server.h"

#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <thread>

#include "core/certificate_builder.h"
#include "core/file.h"
#include "core/key_file.h"
#include "server/testing_directory.h"
#include "testing/matchers.h"

namespace hallmark::server {
namespace {

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
  bool Connect(uint16_t port, const PrivateKey& key, const Certificate& cert) {
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
    ssl_.reset(SSL_new(ctx_.get()));
    SSL_set_fd(ssl_.get(), fd_);
    return SSL_connect(ssl_.get()) == 1;
  }
  ~KeepAliveClient() {
    ssl_.reset();
    if (fd_ >= 0) {
      ::close(fd_);
    }
  }
  // Get sends GET /v1/hello and returns the status code, or 0 if the connection was closed.
  int Get() {
    const std::string req = "GET /v1/hello HTTP/1.1\r\nHost: x\r\n\r\n";
    if (SSL_write(ssl_.get(), req.data(), static_cast<int>(req.size())) <= 0) {
      return 0;
    }
    std::string raw;
    char buf[4096];
    for (;;) {
      size_t end = raw.find("\r\n\r\n");
      if (end != std::string::npos) {
        size_t cl = raw.find("Content-Length: ");
        size_t len = cl == std::string::npos ? 0 : std::stoul(raw.substr(cl + 16));
        if (raw.size() >= end + 4 + len) {
          return std::stoi(raw.substr(9, 3));
        }
      }
      int n = SSL_read(ssl_.get(), buf, sizeof(buf));
      if (n <= 0) {
        return 0;
      }
      raw.append(buf, static_cast<size_t>(n));
    }
  }

 private:
  OsslPtr<SSL_CTX> ctx_;
  OsslPtr<SSL> ssl_;
  int fd_ = -1;
};

class ServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    PrivateKey key = *PrivateKey::Generate(KeyType::kP256);
    ASSERT_THAT(WriteFileAtomic(dir_ / "server.pem", SelfSigned(key, "server", true).ToPem(), 0644),
                IsOk());
    ASSERT_THAT(WritePrivateKeyFile(dir_ / "server.key", key, std::nullopt, true), IsOk());
    ServerConfig config;
    config.certificate = dir_ / "server.pem";
    config.private_key = dir_ / "server.key";
    config.threads = 1;
    config.registry_refresh = std::chrono::milliseconds(10);
    config.listeners.push_back({{"127.0.0.1", 0}, "registry", {}, {}});
    auto server = Server::Create(config, &directory_, &SystemClock());
    ASSERT_THAT(server, IsOk());
    server_ = std::move(*server);
    ASSERT_THAT(server_->Start(), IsOk());
    port_ = server_->Listeners()[0].endpoint.port;
    thread_ = std::thread([this]() { server_->Run(); });
  }
  void TearDown() override {
    server_->Stop();
    thread_.join();
  }

  TempDir dir_;
  FakeDirectory directory_;
  std::unique_ptr<Server> server_;
  std::thread thread_;
  uint16_t port_ = 0;
  PrivateKey device_ = *PrivateKey::Generate(KeyType::kP256);
  Certificate device_cert_ = SelfSigned(device_, "device", false);
};

TEST_F(ServerTest, KeptAliveConnectionServesSeveralRequests) {
  directory_.Put(Record(device_.Public().DeviceId(), DeviceStatus::kActive));
  KeepAliveClient client;
  ASSERT_TRUE(client.Connect(port_, device_, device_cert_));
  EXPECT_EQ(client.Get(), 200);
  EXPECT_EQ(client.Get(), 200);
}

TEST_F(ServerTest, RevocationEndsAConnectionThatStaysOpen) {
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

}  // namespace
}  // namespace hallmark::server
