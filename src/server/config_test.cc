#include "server/config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <ostream>
#include <utility>

#include "testing/matchers.h"

namespace hallmark::server {
namespace {

using ::hallmark::testing::HasError;
using ::hallmark::testing::IsOk;
using ::testing::AllOf;
using ::testing::HasSubstr;

constexpr std::string_view kMinimal = R"(
[server]
certificate = "server.pem"
private_key = "/abs/server.key"

[[listener]]
listen = "127.0.0.1:8443"
policy = "ca"
anchors = ["acme.pem"]
)";

TEST(ConfigTest, ParsesMinimalConfigWithDefaultsAndResolvesPaths) {
  auto c = ParseConfig(kMinimal, "/etc/hallmark");
  ASSERT_THAT(c, IsOk());
  EXPECT_EQ(c->certificate, "/etc/hallmark/server.pem");
  EXPECT_EQ(c->private_key, "/abs/server.key");
  EXPECT_EQ(c->handshake_timeout, std::chrono::milliseconds(5000));
  EXPECT_EQ(c->max_header_bytes, 8192u);
  ASSERT_EQ(c->listeners.size(), 1u);
  EXPECT_EQ(c->listeners[0].listen.host, "127.0.0.1");
  EXPECT_EQ(c->listeners[0].listen.port, 8443);
  EXPECT_EQ(c->listeners[0].anchors[0], "/etc/hallmark/acme.pem");
  EXPECT_FALSE(c->admin.has_value());
  EXPECT_TRUE(c->session_resumption);
}

TEST(ConfigTest, ParsesEverySection) {
  auto c = ParseConfig(R"(
[server]
certificate = "s.pem"
private_key = "s.key"
threads = 3
reuse_port = true
[limits]
handshake_timeout_ms = 250
idle_timeout_s = 60
max_connections = 50000
max_header_bytes = 2048
[tls]
resumption = false
session_cache_size = 500
session_lifetime_s = 600
[registry]
db = "r.db"
registrar_public_key = "r.pub"
refresh_interval_ms = 100
[admin]
listen = "127.0.0.1:0"
[[listener]]
listen = "[::1]:0"
policy = "registry"
admit_unknown = true
)",
                       ".");
  ASSERT_THAT(c, IsOk());
  EXPECT_EQ(c->threads, 3);
  EXPECT_TRUE(c->reuse_port);
  EXPECT_EQ(c->handshake_timeout, std::chrono::milliseconds(250));
  EXPECT_EQ(c->idle_timeout, std::chrono::seconds(60));
  EXPECT_EQ(c->max_connections, 50000u);
  EXPECT_FALSE(c->session_resumption);
  EXPECT_EQ(c->session_cache_size, 500u);
  EXPECT_EQ(c->session_lifetime, std::chrono::seconds(600));
  EXPECT_EQ(c->registry_refresh, std::chrono::milliseconds(100));
  EXPECT_EQ(c->listeners[0].listen.host, "::1");
  EXPECT_TRUE(c->listeners[0].admit_unknown);
  EXPECT_EQ(c->admin->port, 0);
}

struct BadConfig {
  std::string test_name;
  std::string toml;
  std::string message;
};

class BadConfigTest : public ::testing::TestWithParam<BadConfig> {};

TEST_P(BadConfigTest, IsRefusedNamingTheProblem) {
  EXPECT_THAT(ParseConfig(GetParam().toml, "."),
              HasError(Code::kInvalidArgument, HasSubstr(GetParam().message)));
}

const std::string kServer = "[server]\ncertificate = \"s.pem\"\nprivate_key = \"s.key\"\n";
const std::string kCaListener =
    "[[listener]]\nlisten = \"127.0.0.1:1\"\npolicy = \"ca\"\nanchors = [\"a.pem\"]\n";

INSTANTIATE_TEST_SUITE_P(
    Cases, BadConfigTest,
    ::testing::Values(
        BadConfig{"NotToml", "[server\n", "line 1"},
        BadConfig{"NoServer", kCaListener, "server: section is required"},
        BadConfig{"NoListener", kServer, "at least one [[listener]]"},
        BadConfig{"ResumptionNotBoolean", kServer + kCaListener + "[tls]\nresumption = 1\n",
                  "tls.resumption: must be true or false"},
        BadConfig{"UnknownTopLevelKey", kServer + kCaListener + "[tcp]\nx = 1\n",
                  "tcp: unknown key"},
        BadConfig{"UnknownServerKey", kServer + "ciphers = \"x\"\n" + kCaListener,
                  "server.ciphers: unknown key"},
        BadConfig{"MissingKey", "[server]\ncertificate = \"s.pem\"\n" + kCaListener,
                  "server.private_key: is required"},
        BadConfig{"WrongType", kServer + "threads = \"two\"\n" + kCaListener,
                  "server.threads: must be an integer"},
        BadConfig{"LimitOutOfRange", kServer + "[limits]\nhandshake_timeout_ms = 0\n" + kCaListener,
                  "between 10 and"},
        BadConfig{"BadPort",
                  kServer + "[[listener]]\nlisten = \"127.0.0.1:99999\"\npolicy = "
                            "\"ca\"\nanchors = [\"a\"]\n",
                  "invalid port"},
        BadConfig{"HostName",
                  kServer + "[[listener]]\nlisten = \"example.com:1\"\npolicy = "
                            "\"ca\"\nanchors = [\"a\"]\n",
                  "not an IP address"},
        BadConfig{"AdminOffLoopback",
                  kServer + "[admin]\nlisten = \"0.0.0.0:9100\"\n" + kCaListener,
                  "must be bound to loopback"},
        BadConfig{"CaWithoutAnchors",
                  kServer + "[[listener]]\nlisten = \"127.0.0.1:1\"\npolicy = \"ca\"\n",
                  "needs the customer intermediate"},
        BadConfig{"RegistryWithoutRegistry",
                  kServer + "[[listener]]\nlisten = \"127.0.0.1:1\"\npolicy = \"registry\"\n",
                  "needs a [registry] section"},
        BadConfig{"UnknownPolicy",
                  kServer + "[[listener]]\nlisten = \"127.0.0.1:1\"\npolicy = \"trust-all\"\n",
                  "unknown policy 'trust-all'"},
        BadConfig{"NegativeCacheSize",
                  kServer +
                      "[registry]\ndb = \"r.db\"\nregistrar_public_key = \"r.pub\"\n"
                      "negative_cache_size = -1\n" +
                      kCaListener,
                  "registry.negative_cache_size: must be between 0 and"},
        BadConfig{"CrlReloadZero", kServer + kCaListener + "crl_reload_s = 0\n",
                  "crl_reload_s: must be between 1 and"},
        BadConfig{"CrlReloadOnRegistryListener",
                  kServer + "[registry]\ndb = \"r.db\"\nregistrar_public_key = \"r.pub\"\n" +
                      "[[listener]]\nlisten = \"127.0.0.1:1\"\npolicy = \"registry\"\n" +
                      "crl_reload_s = 5\n",
                  "belong to the ca policy"}),
    [](const ::testing::TestParamInfo<BadConfig>& p) { return p.param.test_name; });

TEST(ConfigTest, ParsesCacheSizesAndCrlReload) {
  auto c = ParseConfig(kServer +
                           "[registry]\ndb = \"r.db\"\nregistrar_public_key = \"r.pub\"\n"
                           "cache_size = 5000\nnegative_cache_size = 0\n" +
                           kCaListener + "crls = [\"a.crl\"]\ncrl_reload_s = 3\n",
                       "/etc/hallmark");
  ASSERT_THAT(c, IsOk());
  EXPECT_EQ(c->registry_cache_size, 5000u);
  EXPECT_EQ(c->registry_negative_cache_size, 0u);
  EXPECT_EQ(c->listeners[0].crls[0], "/etc/hallmark/a.crl");
  EXPECT_EQ(c->listeners[0].crl_reload, std::chrono::seconds(3));
  auto defaults = ParseConfig(kMinimal, ".");
  ASSERT_THAT(defaults, IsOk());
  EXPECT_EQ(defaults->registry_cache_size, 100000u);
  EXPECT_EQ(defaults->registry_negative_cache_size, 10000u);
  EXPECT_EQ(defaults->listeners[0].crl_reload, std::chrono::seconds(10));
}

TEST(ConfigTest, TlsLibraryIsGnutlsUnlessOpensslIsChosen) {
  auto defaults = ParseConfig(kMinimal, ".");
  ASSERT_THAT(defaults, IsOk());
  EXPECT_EQ(defaults->tls_library, TlsLibrary::kGnuTls);
  for (auto [name, library] :
       {std::pair{"openssl", TlsLibrary::kOpenSsl}, std::pair{"gnutls", TlsLibrary::kGnuTls}}) {
    auto c = ParseConfig(kServer + kCaListener + "[tls]\nlibrary = \"" + name + "\"\n", ".");
    ASSERT_THAT(c, IsOk()) << name;
    EXPECT_EQ(c->tls_library, library) << name;
  }
}

// A library the server does not have (or a typo) must not fall back to the default silently: the
// error names the key and the choices.
struct BadTlsLibrary {
  std::string test_name;
  std::string value;  // TOML
};

void PrintTo(const BadTlsLibrary& c, std::ostream* os) { *os << "library = " << c.value; }

class BadTlsLibraryTest : public ::testing::TestWithParam<BadTlsLibrary> {};

TEST_P(BadTlsLibraryTest, IsRefusedNamingTheKeyAndTheChoices) {
  auto c = ParseConfig(kServer + kCaListener + "[tls]\nlibrary = " + GetParam().value + "\n", ".");
  ASSERT_FALSE(c.has_value()) << "library = " << GetParam().value << " was accepted as "
                              << TlsLibraryName(c->tls_library);
  EXPECT_EQ(c.error().code(), Code::kInvalidArgument);
  EXPECT_THAT(c.error().message(),
              AllOf(HasSubstr("tls.library"), HasSubstr("\"openssl\""), HasSubstr("\"gnutls\"")));
}

INSTANTIATE_TEST_SUITE_P(Cases, BadTlsLibraryTest,
                         ::testing::Values(BadTlsLibrary{"LibraryWeDoNotHave", "\"boringssl\""},
                                           BadTlsLibrary{"WrongCase", "\"OpenSSL\""},
                                           BadTlsLibrary{"EmptyString", "\"\""},
                                           BadTlsLibrary{"Number", "1"},
                                           BadTlsLibrary{"Array", "[\"gnutls\"]"}),
                         [](const ::testing::TestParamInfo<BadTlsLibrary>& p) {
                           return p.param.test_name;
                         });

TEST(EndpointTest, ParsesAddressesAndRefusesNames) {
  EXPECT_EQ(ParseEndpoint("localhost:80")->host, "127.0.0.1");
  EXPECT_EQ(ParseEndpoint("[::1]:443")->port, 443);
  EXPECT_THAT(ParseEndpoint("127.0.0.1"), HasError(Code::kInvalidArgument, HasSubstr("HOST:PORT")));
  EXPECT_THAT(ParseEndpoint("127.0.0.1:x"),
              HasError(Code::kInvalidArgument, HasSubstr("invalid port")));
}

TEST(ConfigTest, MissingFileIsNotFound) {
  EXPECT_THAT(LoadConfig("/nonexistent/hallmark.toml"),
              HasError(Code::kNotFound, HasSubstr("/nonexistent/hallmark.toml")));
}

}  // namespace
}  // namespace hallmark::server
