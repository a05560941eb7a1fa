// The device's enrollment client against the handlers over real TLS 1.3 on 127.0.0.1: the
// claim exporter computed by the device's OpenSSL connection must be the one the server side of
// the same connection computes, and the EST formats must round-trip. The transport here is a
// minimal stand-in for the server's (one connection at a time, HTTP/1.1 with Content-Length).
#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <thread>

#include "ca/issuer.h"
#include "core/ossl.h"
#include "device/enroll_client.h"
#include "enroll/testing/enroll_fixture.h"

namespace hallmark::enroll {
namespace {

using ::hallmark::testing::IsOk;
using testing::EnrollTest;
using ::testing::HasSubstr;

// MiniServer serves `connections` TLS connections one after another on a thread, dispatching
// each request to the handler of its path.
class MiniServer {
 public:
  using Authorize = std::function<Result<server::PeerIdentity>(const Certificate&)>;

  MiniServer(const Certificate& cert, const PrivateKey& key,
             const std::map<std::string, std::unique_ptr<server::Handler>, std::less<>>& routes,
             Authorize authorize)
      : routes_(routes), authorize_(std::move(authorize)) {
    ctx_.reset(SSL_CTX_new(TLS_server_method()));
    SSL_CTX_set_min_proto_version(ctx_.get(), TLS1_3_VERSION);
    EXPECT_EQ(SSL_CTX_use_certificate(ctx_.get(), cert.native()), 1);
    EXPECT_EQ(SSL_CTX_use_PrivateKey(ctx_.get(), key.native()), 1);
    // Any client certificate is fine at the TLS layer; the policy decides (as the registry
    // listener does).
    SSL_CTX_set_verify(ctx_.get(), SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT,
                       [](int, X509_STORE_CTX*) { return 1; });
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(addr);
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    EXPECT_EQ(::listen(fd_, 8), 0);
    EXPECT_EQ(::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len), 0);
    port_ = ntohs(addr.sin_port);
  }

  ~MiniServer() {
    if (thread_.joinable()) {
      thread_.join();
    }
    ::close(fd_);
  }

  uint16_t port() const { return port_; }

  void Serve(int connections) {
    thread_ = std::thread([this, connections] {
      for (int i = 0; i < connections; ++i) {
        int conn = ::accept(fd_, nullptr, nullptr);
        if (conn >= 0) {
          ServeOne(conn);
          ::close(conn);
        }
      }
    });
  }

  void Wait() { thread_.join(); }

 private:
  void ServeOne(int fd) {
    OsslPtr<SSL> ssl(SSL_new(ctx_.get()));
    SSL_set_fd(ssl.get(), fd);
    if (SSL_accept(ssl.get()) != 1) {
      ERR_clear_error();
      return;
    }
    std::string raw;
    char buf[4096];
    size_t need = std::string::npos;
    while (need == std::string::npos || raw.size() < need) {
      int n = SSL_read(ssl.get(), buf, sizeof(buf));
      if (n <= 0) {
        return;
      }
      raw.append(buf, static_cast<size_t>(n));
      size_t end = raw.find("\r\n\r\n");
      if (end != std::string::npos && need == std::string::npos) {
        size_t cl = raw.find("Content-Length: ");
        size_t body = cl == std::string::npos || cl > end
                          ? 0
                          : std::stoul(raw.substr(cl + 16, raw.find("\r\n", cl) - cl - 16));
        need = end + 4 + body;
      }
    }
    server::HttpRequest request;
    request.method = raw.substr(0, raw.find(' '));
    request.target = raw.substr(raw.find(' ') + 1, raw.find(" HTTP/") - raw.find(' ') - 1);
    request.body = raw.substr(raw.find("\r\n\r\n") + 4);
    auto leaf = Certificate::FromNative(SSL_get0_peer_certificate(ssl.get()));
    ASSERT_THAT(leaf, IsOk());
    auto identity = authorize_(*leaf);
    server::ClientContext client;
    client.identity = identity ? &*identity : nullptr;
    client.leaf = &*leaf;
    client.peer_address = "127.0.0.1:1";
    SSL* s = ssl.get();
    client.export_keying_material = [s](std::string_view label, std::span<const uint8_t> context,
                                        size_t length) -> Result<SecretBytes> {
      Bytes out(length);
      if (SSL_export_keying_material(s, out.data(), length, label.data(), label.size(),
                                     context.data(), context.size(), 1) != 1) {
        return OsslError("SSL_export_keying_material");
      }
      return SecretBytes(out);
    };
    server::HttpResponse res;
    auto route = routes_.find(request.target);
    if (route == routes_.end()) {
      res = server::JsonError(404, "no route");
    } else if (route->second->authenticated_only() && client.identity == nullptr) {
      res = server::JsonError(403, "not authenticated");
    } else {
      res = route->second->Handle(request, client);
    }
    std::string wire =
        "HTTP/1.1 " + std::to_string(res.status) + " X\r\nContent-Type: " + res.content_type +
        "\r\nContent-Length: " + std::to_string(res.body.size()) + "\r\nConnection: close\r\n";
    for (const auto& [name, value] : res.headers) {
      wire += name + ": " + value + "\r\n";
    }
    wire += "\r\n" + res.body;
    SSL_write(ssl.get(), wire.data(), static_cast<int>(wire.size()));
    SSL_shutdown(ssl.get());
    ERR_clear_error();
  }

  const std::map<std::string, std::unique_ptr<server::Handler>, std::less<>>& routes_;
  Authorize authorize_;
  OsslPtr<SSL_CTX> ctx_;
  int fd_ = -1;
  uint16_t port_ = 0;
  std::thread thread_;
};

class TlsEnrollTest : public EnrollTest {
 protected:
  void SetUp() override {
    // Real TLS checks certificates against the real time: issue everything now.
    clock_.Set(SystemClock().Now());
    EnrollTest::SetUp();
    PrivateKey server_key = NewKey();
    auto csr = Csr::Create(server_key, DistinguishedName{});
    auto issuer = ca_->IssuerFor("acme");
    ASSERT_THAT(issuer, IsOk());
    ca::IssueRequest request{*csr,         ca::Profile::kServer,
                             std::nullopt, {SubjectAltName{SubjectAltName::Type::kIp, "127.0.0.1"}},
                             std::nullopt, false};
    auto issued = issuer->Issue(request);
    ASSERT_THAT(issued, IsOk());
    server_ =
        std::make_unique<MiniServer>(issued->certificate, server_key, handlers_,
                                     [this](const Certificate& leaf) { return Identity(leaf); });
    options_.host = "127.0.0.1";
    options_.port = server_->port();
    options_.trust = {*ca_->CustomerCertificate("acme")};
  }

  std::unique_ptr<MiniServer> server_;
  device::ClientOptions options_;
};

TEST_F(TlsEnrollTest, DeviceClaimsThenEnrollsForAnOperationalCertificate) {
  SecretBytes secret = CreateBatch("b1", 10);
  PrivateKey device = NewKey();
  server_->Serve(4);
  ASSERT_OK_AND_ASSIGN(
      device::ServerReply claimed,
      device::Claim(device, options_, device::BatchClaim{"b1", "SN-1", &secret}, clock_));
  ASSERT_EQ(claimed.status, 201) << claimed.body;
  Refresh();
  auto self = device::SelfSignedCertificate(device, clock_);
  std::vector<Certificate> chain{*self};
  ASSERT_OK_AND_ASSIGN(std::vector<Certificate> cacerts,
                       device::FetchCaCerts(device, chain, options_));
  EXPECT_EQ(cacerts.size(), 2u);
  auto csr = Csr::Create(device, DistinguishedName{"", "", "", "SN-1", "SN-1"});
  ASSERT_OK_AND_ASSIGN(Certificate op,
                       device::EstEnroll(device, chain, options_, *csr, /*reenroll=*/false));
  EXPECT_EQ(op.Key(), device.Public());
  // Renewing with the operational certificate it just got.
  std::vector<Certificate> op_chain{op};
  ASSERT_OK_AND_ASSIGN(Certificate renewed,
                       device::EstEnroll(device, op_chain, options_, *csr, /*reenroll=*/true));
  EXPECT_NE(renewed.SerialHex(), op.SerialHex());
}

TEST_F(TlsEnrollTest, WrongSecretIsRefusedOverTls) {
  CreateBatch("b1", 10);
  SecretBytes wrong = device::GenerateBatchSecret();
  server_->Serve(1);
  ASSERT_OK_AND_ASSIGN(
      device::ServerReply reply,
      device::Claim(NewKey(), options_, device::BatchClaim{"b1", "SN-1", &wrong}, clock_));
  EXPECT_EQ(reply.status, 403);
  EXPECT_THAT(reply.body, HasSubstr("no valid proof"));
}

TEST_F(TlsEnrollTest, DeviceAsksForApprovalAndShowsTheSameCode) {
  PrivateKey device = NewKey();
  server_->Serve(1);
  ASSERT_OK_AND_ASSIGN(device::ServerReply reply,
                       device::RequestApproval(device, options_, "SN-5", clock_));
  ASSERT_EQ(reply.status, 202) << reply.body;
  auto j = nlohmann::json::parse(reply.body);
  EXPECT_EQ(j["code"], device::ComparisonCode(device.Public()));
}

TEST_F(TlsEnrollTest, EstFromAnUnregisteredDeviceIsRefusedByTheListener) {
  PrivateKey device = NewKey();
  server_->Serve(1);
  auto self = device::SelfSignedCertificate(device, clock_);
  std::vector<Certificate> chain{*self};
  auto csr = Csr::Create(device, DistinguishedName{"", "", "", "SN-1", "SN-1"});
  EXPECT_THAT(device::EstEnroll(device, chain, options_, *csr, false),
              ::hallmark::testing::HasError(Code::kPermissionDenied, HasSubstr("HTTP 403")));
}

}  // namespace
}  // namespace hallmark::enroll
