#include "ca/testing/ca_fixture.h"

#include <openssl/ec.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <stdexcept>

#include "core/ossl.h"

namespace hallmark::ca::testing {

PrivateKey MakeKey(const std::string& kind) {
  if (kind == "p256" || kind == "p384" || kind == "ed25519") {
    return std::move(*PrivateKey::Generate(*ParseKeyType(kind)));
  }
  OsslPtr<EVP_PKEY> key;
  if (kind == "rsa1024") {
    key.reset(EVP_RSA_gen(1024));
  } else if (kind == "rsa2048") {
    key.reset(EVP_RSA_gen(2048));
  } else if (kind == "p192") {
    key.reset(EVP_EC_gen("P-192"));
  }
  if (!key) {
    throw std::runtime_error("cannot make key " + kind);
  }
  return std::move(*PrivateKey::FromNative(std::move(key)));
}

Csr MakeCsr(const PrivateKey& key, const std::string& serial,
            const std::vector<std::pair<std::string, std::string>>& extensions) {
  OsslPtr<X509_REQ> req(X509_REQ_new());
  X509_NAME* name = X509_REQ_get_subject_name(req.get());
  if (!serial.empty()) {
    X509_NAME_add_entry_by_NID(name, NID_serialNumber, MBSTRING_ASC,
                               reinterpret_cast<const unsigned char*>(serial.c_str()), -1, -1, 0);
  }
  X509_REQ_set_pubkey(req.get(), key.native());
  if (!extensions.empty()) {
    OsslPtr<STACK_OF(X509_EXTENSION)> exts(sk_X509_EXTENSION_new_null());
    for (const auto& [ext_name, value] : extensions) {
      X509_EXTENSION* ext = X509V3_EXT_conf(nullptr, nullptr, ext_name.c_str(), value.c_str());
      if (ext == nullptr) {
        throw std::runtime_error("bad extension " + ext_name + "=" + value);
      }
      sk_X509_EXTENSION_push(exts.get(), ext);
    }
    X509_REQ_add_extensions(req.get(), exts.get());
  }
  X509_REQ_sign(req.get(), key.native(), key.SigningDigest());
  int len = i2d_X509_REQ(req.get(), nullptr);
  Bytes der(static_cast<size_t>(len));
  unsigned char* p = der.data();
  i2d_X509_REQ(req.get(), &p);
  return std::move(*Csr::FromDer(der));
}

Csr TamperSignature(const Csr& csr) {
  Bytes der = csr.ToDer();
  der[der.size() - 3] ^= 0x01;
  return std::move(*Csr::FromDer(der));
}

void CaTest::SetUp() {
  auto a = Authority::Init(CaDir(), {}, std::nullopt, &clock_);
  ASSERT_TRUE(a.has_value()) << a.error();
  ca_.emplace(std::move(*a));
  ASSERT_TRUE(ca_->AddCustomer("acme", {}).has_value());
  ASSERT_TRUE(ca_->AddCustomer("globex", {}).has_value());
}

IssueRequest CaTest::DeviceRequest(const std::string& serial, const std::string& key_kind) {
  return IssueRequest{MakeCsr(MakeKey(key_kind), serial), Profile::kDevice, {}, {}, {}, false};
}

int64_t CaTest::IssuedCount(const std::string& issuer) {
  auto n = ca_->log().CountIssued(issuer);
  EXPECT_TRUE(n.has_value());
  return n ? *n : -1;
}

}  // namespace hallmark::ca::testing
