#include "device/key_store_factory.h"

#include <string>

#include "testing/matchers.h"

namespace hallmark::device {
namespace {

using ::hallmark::testing::HasError;
using ::hallmark::testing::IsOk;
using ::testing::HasSubstr;

struct SpecCase {
  std::string test_name;
  std::string spec;
  std::string describe;  // expected Describe(), or empty if the spec is refused
  std::string error;     // substring of the refusal
};

class KeyStoreSpecTest : public ::testing::TestWithParam<SpecCase> {};

TEST_P(KeyStoreSpecTest, OpensOrExplains) {
  auto store = OpenKeyStore(GetParam().spec, {});
  if (GetParam().describe.empty()) {
    EXPECT_THAT(store, HasError(Code::kInvalidArgument, HasSubstr(GetParam().error)));
  } else {
    ASSERT_THAT(store, IsOk());
    EXPECT_EQ((*store)->Describe(), GetParam().describe);
  }
}

INSTANTIATE_TEST_SUITE_P(
    Specs, KeyStoreSpecTest,
    ::testing::Values(
        SpecCase{"File", "file:/d/key.pem", "file:/d/key.pem", ""},
        SpecCase{"FileWithoutPath", "file:", "", "needs a path"},
        SpecCase{"Pkcs11", "pkcs11:module=/m.so;token=dev;label=id",
                 "pkcs11:module=/m.so;token=dev;label=id", ""},
        SpecCase{"Pkcs11DefaultLabel", "pkcs11:module=/m.so;token=dev",
                 "pkcs11:module=/m.so;token=dev;label=hallmark-device", ""},
        SpecCase{"Pkcs11Rfc7512Names", "pkcs11:module-path=/m.so;token=dev;object=id",
                 "pkcs11:module=/m.so;token=dev;label=id", ""},
        SpecCase{"Pkcs11WithoutToken", "pkcs11:module=/m.so", "", "needs module= and token="},
        SpecCase{"Pkcs11PinInSpec", "pkcs11:module=/m.so;token=dev;pin-value=1234", "",
                 "do not put the PIN"},
        SpecCase{"TpmPath", "tpm:/d/key.tss2", "tpm:key=/d/key.tss2", ""},
        SpecCase{"TpmParams", "tpm:key=/d/k;tcti=swtpm:path=/run/s.sock",
                 "tpm:key=/d/k;tcti=swtpm:path=/run/s.sock", ""},
        SpecCase{"TpmUnknownParam", "tpm:key=/d/k;parent=1", "", "unknown tpm parameter 'parent'"},
        SpecCase{"TpmWithoutKey", "tpm:tcti=device:/dev/tpmrm0", "", "path of the key blob"},
        SpecCase{"NoScheme", "/d/key.pem", "", "names no scheme"},
        SpecCase{"UnknownScheme", "hsm:x", "", "unknown key store 'hsm'"}),
    [](const auto& row) { return row.param.test_name; });

TEST(KeyStoreFactory, ListsTheKnownFormsWhenTheSchemeIsUnknown) {
  EXPECT_THAT(OpenKeyStore("puf:/d", {}),
              HasError(Code::kInvalidArgument,
                       HasSubstr("file:PATH, pkcs11:module=SO;token=LABEL[;label=KEY], tpm:")));
}

// A part above `device` (the PUF store) plugs in through Register.
class NamedStore : public KeyStore {
 public:
  explicit NamedStore(std::string name) : name_(std::move(name)) {}
  Result<PublicKey> Create(KeyType) override { return Error(Code::kInternal, "unused"); }
  Result<PrivateKey> Load() override { return Error(Code::kInternal, "unused"); }
  std::string Describe() const override { return name_; }

 private:
  std::string name_;
};

TEST(KeyStoreFactory, RegisteredSchemesOpen) {
  KeyStoreFactory f = KeyStoreFactory::WithBuiltins();
  ASSERT_THAT(f.Register("puf", "puf:DIR",
                         [](std::string_view body, KeyStoreOptions) {
                           return Result<std::unique_ptr<KeyStore>>(
                               std::make_unique<NamedStore>("puf:" + std::string(body)));
                         }),
              IsOk());
  ASSERT_OK_AND_ASSIGN(auto store, f.Open("puf:/chip", {}));
  EXPECT_EQ(store->Describe(), "puf:/chip");
  EXPECT_THAT(
      f.Register("puf", "puf:DIR",
                 [](std::string_view, KeyStoreOptions) {
                   return Result<std::unique_ptr<KeyStore>>(Error(Code::kInternal, "unused"));
                 }),
      HasError(Code::kAlreadyExists, HasSubstr("already registered")));
}

}  // namespace
}  // namespace hallmark::device
