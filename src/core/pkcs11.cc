#include "core/pkcs11.h"

#include <dlfcn.h>
#include <openssl/ec.h>
#include <openssl/objects.h>

#include <algorithm>
#include <cstdio>
#include <mutex>

#include "core/external_key.h"
#include "core/file.h"
#include "core/ossl.h"
#include "core/random.h"
#include "core/spec_params.h"

// p11-kit's PKCS#11 header in its GNU flavour: lowercase struct members, no renaming macros.
#define CRYPTOKI_GNU 1
#include <p11-kit/pkcs11.h>

namespace hallmark {
namespace {

constexpr unsigned char kTokenPresent = 1;

std::string CkrName(ck_rv_t rv) {
  switch (rv) {
    case CKR_GENERAL_ERROR:
      return "CKR_GENERAL_ERROR";
    case CKR_ARGUMENTS_BAD:
      return "CKR_ARGUMENTS_BAD";
    case CKR_DEVICE_ERROR:
      return "CKR_DEVICE_ERROR";
    case CKR_DEVICE_REMOVED:
      return "CKR_DEVICE_REMOVED";
    case CKR_KEY_HANDLE_INVALID:
      return "CKR_KEY_HANDLE_INVALID";
    case CKR_MECHANISM_INVALID:
      return "CKR_MECHANISM_INVALID";
    case CKR_OBJECT_HANDLE_INVALID:
      return "CKR_OBJECT_HANDLE_INVALID";
    case CKR_PIN_INCORRECT:
      return "CKR_PIN_INCORRECT";
    case CKR_PIN_LOCKED:
      return "CKR_PIN_LOCKED";
    case CKR_SESSION_HANDLE_INVALID:
      return "CKR_SESSION_HANDLE_INVALID";
    case CKR_TEMPLATE_INCONSISTENT:
      return "CKR_TEMPLATE_INCONSISTENT";
    case CKR_TOKEN_NOT_PRESENT:
      return "CKR_TOKEN_NOT_PRESENT";
    case CKR_TOKEN_WRITE_PROTECTED:
      return "CKR_TOKEN_WRITE_PROTECTED";
    case CKR_USER_NOT_LOGGED_IN:
      return "CKR_USER_NOT_LOGGED_IN";
    case CKR_DEVICE_MEMORY:
      return "CKR_DEVICE_MEMORY";
    default:
      break;
  }
  char buf[32];
  std::snprintf(buf, sizeof(buf), "CKR 0x%lx", rv);
  return buf;
}

// TrimPadded returns a blank-padded PKCS#11 text field without its padding.
std::string TrimPadded(const unsigned char* field, size_t size) {
  std::string s(reinterpret_cast<const char*>(field), size);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\0')) {
    s.pop_back();
  }
  return s;
}

// Module is one loaded PKCS#11 library. A process shares one Module per path, because
// C_Initialize/C_Finalize are per process: the last user finalises and unloads it.
class Module {
 public:
  static Result<std::shared_ptr<Module>> Load(const std::string& path);
  ~Module() {
    if (initialized_) {
      fn_->C_Finalize(nullptr);
    }
    dlclose(handle_);
  }
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  struct ck_function_list* fn() const {
    return fn_;
  }
  const std::string& path() const { return path_; }

 private:
  Module(std::string path, void* handle, struct ck_function_list* fn, bool initialized)
      : path_(std::move(path)), handle_(handle), fn_(fn), initialized_(initialized) {}

  std::string path_;
  void* handle_;
  struct ck_function_list* fn_;
  bool initialized_;  // we called C_Initialize, so we call C_Finalize
};

Result<std::shared_ptr<Module>> Module::Load(const std::string& path) {
  static std::mutex mu;
  static std::map<std::string, std::weak_ptr<Module>> loaded;
  std::lock_guard<std::mutex> lock(mu);
  if (auto existing = loaded[path].lock()) {
    return existing;
  }
  if (path.empty()) {
    return Error(Code::kInvalidArgument, "no PKCS#11 module given (module=PATH)");
  }
  if (!FileExists(path)) {
    return Error(Code::kNotFound, "PKCS#11 module " + path + " does not exist");
  }
  void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    const char* why = dlerror();
    return Error(Code::kInvalidArgument, "cannot load PKCS#11 module " + path + ": " +
                                             (why != nullptr ? why : "dlopen failed"));
  }
  using GetFunctionList = ck_rv_t (*)(struct ck_function_list**);
  auto get = reinterpret_cast<GetFunctionList>(dlsym(handle, "C_GetFunctionList"));
  struct ck_function_list* fn = nullptr;
  if (get == nullptr || get(&fn) != CKR_OK || fn == nullptr) {
    dlclose(handle);
    return Error(Code::kInvalidArgument,
                 path + " is not a PKCS#11 module (no usable C_GetFunctionList)");
  }
  struct ck_c_initialize_args args = {};
  args.flags = CKF_OS_LOCKING_OK;
  ck_rv_t rv = fn->C_Initialize(&args);
  if (rv != CKR_OK && rv != CKR_CRYPTOKI_ALREADY_INITIALIZED) {
    dlclose(handle);
    return Error(Code::kUnavailable,
                 "PKCS#11 module " + path + " failed to initialise: " + CkrName(rv) +
                     " (for SoftHSM2, check SOFTHSM2_CONF and its token directory)");
  }
  std::shared_ptr<Module> module(new Module(path, handle, fn, rv == CKR_OK));
  loaded[path] = module;
  return module;
}

// Attr builds a CK_ATTRIBUTE over `value`, which must outlive its use.
template <typename T>
struct ck_attribute Attr(ck_attribute_type_t type, T* value, size_t size = sizeof(T)) {
  struct ck_attribute a;
  a.type = type;
  a.value = const_cast<void*>(static_cast<const void*>(value));
  a.value_len = size;
  return a;
}

Result<Bytes> CurveOid(KeyType type) {
  int nid = NID_undef;
  if (type == KeyType::kP256) {
    nid = NID_X9_62_prime256v1;
  } else if (type == KeyType::kP384) {
    nid = NID_secp384r1;
  } else {
    return Error(Code::kInvalidArgument, "PKCS#11 tokens here hold EC P-256 or P-384 keys; " +
                                             std::string(KeyTypeName(type)) + " is not supported");
  }
  const ASN1_OBJECT* obj = OBJ_nid2obj(nid);
  int len = i2d_ASN1_OBJECT(obj, nullptr);
  Bytes der(static_cast<size_t>(len > 0 ? len : 0));
  unsigned char* p = der.data();
  if (len <= 0 || i2d_ASN1_OBJECT(obj, &p) != len) {
    return OsslError("encoding the curve OID");
  }
  return der;
}

// EcPublicKey builds the public key from a token's CKA_EC_PARAMS (DER OID) and CKA_EC_POINT
// (DER OCTET STRING around the point, or the bare point from older tokens).
Result<PublicKey> EcPublicKey(const Bytes& params, const Bytes& point) {
  const unsigned char* p = params.data();
  OsslPtr<ASN1_OBJECT> oid(d2i_ASN1_OBJECT(nullptr, &p, static_cast<long>(params.size())));
  const char* group = oid ? OBJ_nid2sn(OBJ_obj2nid(oid.get())) : nullptr;
  if (group == nullptr || OBJ_obj2nid(oid.get()) == NID_undef) {
    return Error(Code::kInvalidArgument, "token key uses an unknown or explicit EC curve");
  }
  // An uncompressed point is 0x04 || X || Y; its DER wrapping is two or three bytes longer.
  const int nid = OBJ_obj2nid(oid.get());
  const size_t field_bytes = nid == NID_X9_62_prime256v1 ? 32 : nid == NID_secp384r1 ? 48 : 66;
  if (point.size() == 1 + 2 * field_bytes) {
    return EcPublicKeyFromPoint(group, point);
  }
  p = point.data();
  OsslPtr<ASN1_STRING> octets(d2i_ASN1_OCTET_STRING(nullptr, &p, static_cast<long>(point.size())));
  if (!octets || p != point.data() + point.size()) {
    return Error(Code::kInvalidArgument, "token's CKA_EC_POINT is neither a point nor DER");
  }
  const unsigned char* data = ASN1_STRING_get0_data(octets.get());
  return EcPublicKeyFromPoint(
      group, std::span<const uint8_t>(data, static_cast<size_t>(ASN1_STRING_length(octets.get()))));
}

}  // namespace

// Session is a logged-in session on one token. `mu` serialises every call on `handle`:
// PKCS#11 sessions are not safe for concurrent operations.
struct Pkcs11Token::Session {
  std::shared_ptr<Module> module;
  ck_session_handle_t handle = 0;
  std::mutex mu;

  struct ck_function_list* fn() const {
    return module->fn();
  }
  ~Session() {
    if (handle != CK_INVALID_HANDLE) {
      fn()->C_CloseSession(handle);
    }
  }

  // Find returns the objects matching `tmpl`. Caller holds `mu`.
  Result<std::vector<ck_object_handle_t>> Find(std::vector<struct ck_attribute> tmpl) {
    ck_rv_t rv = fn()->C_FindObjectsInit(handle, tmpl.data(), tmpl.size());
    if (rv != CKR_OK) {
      return Error(Code::kUnavailable, "searching the token failed: " + CkrName(rv));
    }
    std::vector<ck_object_handle_t> found;
    for (;;) {
      ck_object_handle_t batch[16];
      unsigned long n = 0;
      rv = fn()->C_FindObjects(handle, batch, 16, &n);
      if (rv != CKR_OK || n == 0) {
        break;
      }
      found.insert(found.end(), batch, batch + n);
    }
    fn()->C_FindObjectsFinal(handle);
    if (rv != CKR_OK) {
      return Error(Code::kUnavailable, "searching the token failed: " + CkrName(rv));
    }
    return found;
  }

  // Attribute reads one variable-length attribute. Caller holds `mu`.
  Result<Bytes> Attribute(ck_object_handle_t object, ck_attribute_type_t type) {
    struct ck_attribute a = {type, nullptr, 0};
    ck_rv_t rv = fn()->C_GetAttributeValue(handle, object, &a, 1);
    if (rv != CKR_OK || a.value_len == static_cast<unsigned long>(-1)) {
      return Error(Code::kUnavailable,
                   "reading a key attribute from the token failed: " + CkrName(rv));
    }
    Bytes value(a.value_len);
    a.value = value.data();
    rv = fn()->C_GetAttributeValue(handle, object, &a, 1);
    if (rv != CKR_OK) {
      return Error(Code::kUnavailable,
                   "reading a key attribute from the token failed: " + CkrName(rv));
    }
    value.resize(a.value_len);
    return value;
  }

  Result<PublicKey> ReadPublic(ck_object_handle_t object) {
    auto params = Attribute(object, CKA_EC_PARAMS);
    if (!params) {
      return params.error();
    }
    auto point = Attribute(object, CKA_EC_POINT);
    if (!point) {
      return point.error();
    }
    return EcPublicKey(*params, *point);
  }

  std::vector<struct ck_attribute> LabelTemplate(const std::string& label) {
    return {Attr(CKA_LABEL, label.data(), label.size())};
  }
};

namespace {

// TokenSigner signs digests with a private key object inside the token (CKM_ECDSA).
class TokenSigner : public ExternalSigner {
 public:
  TokenSigner(std::shared_ptr<Pkcs11Token::Session> session, ck_object_handle_t key,
              std::string what)
      : session_(std::move(session)), key_(key), what_(std::move(what)) {}

  Result<Bytes> SignDigest(std::span<const uint8_t> digest) override {
    std::lock_guard<std::mutex> lock(session_->mu);
    struct ck_mechanism mech = {CKM_ECDSA, nullptr, 0};
    auto* fn = session_->fn();
    ck_rv_t rv = fn->C_SignInit(session_->handle, &mech, key_);
    unsigned char raw[2 * 66];
    unsigned long raw_len = sizeof(raw);
    if (rv == CKR_OK) {
      rv = fn->C_Sign(session_->handle, const_cast<unsigned char*>(digest.data()), digest.size(),
                      raw, &raw_len);
    }
    if (rv != CKR_OK) {
      return Error(Code::kUnavailable, what_ + " could not sign: " + CkrName(rv));
    }
    if (raw_len == 0 || raw_len % 2 != 0) {
      return Error(Code::kInternal, what_ + " returned a malformed ECDSA signature");
    }
    // PKCS#11 returns r || s; X.509 and TLS want the DER ECDSA-Sig-Value.
    const int half = static_cast<int>(raw_len / 2);
    OsslPtr<BIGNUM> r(BN_bin2bn(raw, half, nullptr));
    OsslPtr<BIGNUM> s(BN_bin2bn(raw + half, half, nullptr));
    ECDSA_SIG* sig = ECDSA_SIG_new();
    if (sig == nullptr || !r || !s || ECDSA_SIG_set0(sig, r.get(), s.get()) != 1) {
      ECDSA_SIG_free(sig);
      return OsslError("ECDSA_SIG_set0");
    }
    // ECDSA_SIG_set0 took ownership of r and s.
    r.release();
    s.release();
    unsigned char* der = nullptr;
    int len = i2d_ECDSA_SIG(sig, &der);
    ECDSA_SIG_free(sig);
    if (len <= 0) {
      return OsslError("i2d_ECDSA_SIG");
    }
    Bytes out(der, der + len);
    OPENSSL_free(der);
    return out;
  }

 private:
  std::shared_ptr<Pkcs11Token::Session> session_;
  ck_object_handle_t key_;
  std::string what_;
};

}  // namespace

Result<std::map<std::string, std::string>> ParsePkcs11Params(
    std::string_view params, const std::vector<std::string>& extra_keys) {
  SpecParamRules rules;
  rules.scheme = "pkcs11";
  rules.allowed = {"module", "token", "label"};
  rules.allowed.insert(rules.allowed.end(), extra_keys.begin(), extra_keys.end());
  rules.aliases = {{"module-path", "module"}, {"object", "label"}};
  return ParseSpecParams(params, rules);
}

Result<std::shared_ptr<Pkcs11Token>> Pkcs11Token::Open(const Pkcs11Options& options) {
  if (options.token.empty()) {
    return Error(Code::kInvalidArgument, "no PKCS#11 token label given (token=LABEL)");
  }
  auto module = Module::Load(options.module);
  if (!module) {
    return module.error();
  }
  auto* fn = (*module)->fn();
  unsigned long count = 0;
  ck_rv_t rv = fn->C_GetSlotList(kTokenPresent, nullptr, &count);
  std::vector<ck_slot_id_t> slots(count);
  if (rv == CKR_OK && count > 0) {
    rv = fn->C_GetSlotList(kTokenPresent, slots.data(), &count);
    slots.resize(count);
  }
  if (rv != CKR_OK) {
    return Error(Code::kUnavailable,
                 "cannot list the slots of " + options.module + ": " + CkrName(rv));
  }
  std::vector<std::string> labels;
  std::optional<ck_slot_id_t> slot;
  struct ck_token_info info = {};
  for (ck_slot_id_t s : slots) {
    struct ck_token_info i = {};
    if (fn->C_GetTokenInfo(s, &i) != CKR_OK) {
      continue;
    }
    std::string label = TrimPadded(i.label, sizeof(i.label));
    labels.push_back(label.empty() ? "(unlabelled)" : label);
    if (label == options.token) {
      if (slot.has_value()) {
        return Error(Code::kFailedPrecondition,
                     "two tokens are labelled '" + options.token + "' in " + options.module);
      }
      slot = s;
      info = i;
    }
  }
  const std::string what = "pkcs11 token '" + options.token + "'";
  if (!slot.has_value()) {
    std::string known;
    for (const std::string& l : labels) {
      known += (known.empty() ? "" : ", ") + l;
    }
    return Error(Code::kNotFound, "no token labelled '" + options.token + "' in " + options.module +
                                      (known.empty() ? " (it has no initialised tokens)"
                                                     : " (tokens: " + known + ")"));
  }
  if ((info.flags & CKF_TOKEN_INITIALIZED) == 0) {
    return Error(Code::kFailedPrecondition, what + " is not initialised");
  }
  auto session = std::make_shared<Session>();
  session->module = std::move(*module);
  rv = fn->C_OpenSession(*slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, nullptr, nullptr,
                         &session->handle);
  if (rv != CKR_OK) {
    session->handle = CK_INVALID_HANDLE;
    return Error(Code::kUnavailable, "cannot open a session on " + what + ": " + CkrName(rv));
  }
  if ((info.flags & CKF_LOGIN_REQUIRED) != 0) {
    if (!options.pin.has_value()) {
      return Error(Code::kFailedPrecondition,
                   what + " needs its user PIN; give it with --pin-file or HALLMARK_PIN");
    }
    if ((info.flags & CKF_USER_PIN_LOCKED) != 0) {
      return Error(Code::kPermissionDenied,
                   "the user PIN of " + what + " is locked after too many wrong attempts");
    }
    std::string_view pin = options.pin->view(SecretAccess::Grant());
    rv = fn->C_Login(session->handle, CKU_USER,
                     reinterpret_cast<unsigned char*>(const_cast<char*>(pin.data())), pin.size());
    if (rv == CKR_PIN_INCORRECT || rv == CKR_PIN_LEN_RANGE) {
      return Error(Code::kPermissionDenied, "wrong PIN for " + what);
    }
    if (rv == CKR_PIN_LOCKED) {
      return Error(Code::kPermissionDenied,
                   "the user PIN of " + what + " is locked after too many wrong attempts");
    }
    if (rv == CKR_USER_PIN_NOT_INITIALIZED) {
      return Error(Code::kFailedPrecondition, what + " has no user PIN set");
    }
    if (rv != CKR_OK && rv != CKR_USER_ALREADY_LOGGED_IN) {
      return Error(Code::kUnavailable, "cannot log in to " + what + ": " + CkrName(rv));
    }
  }
  return std::shared_ptr<Pkcs11Token>(
      new Pkcs11Token(options.module, options.token, std::move(session)));
}

Pkcs11Token::~Pkcs11Token() = default;

std::string Pkcs11Token::Describe() const { return "pkcs11 token '" + token_ + "'"; }

Result<bool> Pkcs11Token::HasKey(std::string_view label) {
  std::lock_guard<std::mutex> lock(session_->mu);
  auto found = session_->Find(session_->LabelTemplate(std::string(label)));
  if (!found) {
    return found.error();
  }
  return !found->empty();
}

Result<PublicKey> Pkcs11Token::GenerateKey(std::string_view label_view, KeyType type,
                                           bool replace) {
  auto oid = CurveOid(type);
  if (!oid) {
    return oid.error();
  }
  const std::string label(label_view);
  std::lock_guard<std::mutex> lock(session_->mu);
  auto* fn = session_->fn();
  auto existing = session_->Find(session_->LabelTemplate(label));
  if (!existing) {
    return existing.error();
  }
  if (!existing->empty() && !replace) {
    return Error(Code::kAlreadyExists, Describe() + " already holds a key labelled '" + label +
                                           "'; refusing to replace it");
  }
  for (ck_object_handle_t object : *existing) {
    if (ck_rv_t rv = fn->C_DestroyObject(session_->handle, object); rv != CKR_OK) {
      return Error(Code::kUnavailable, "cannot remove the old key '" + label + "' from " +
                                           Describe() + ": " + CkrName(rv));
    }
  }
  Bytes id = RandomBytes(16);
  unsigned char yes = 1;
  unsigned char no = 0;
  ck_object_class_t pub_class = CKO_PUBLIC_KEY;
  ck_object_class_t priv_class = CKO_PRIVATE_KEY;
  ck_key_type_t key_type = CKK_EC;
  std::vector<struct ck_attribute> pub_tmpl = {
      Attr(CKA_CLASS, &pub_class),
      Attr(CKA_KEY_TYPE, &key_type),
      Attr(CKA_TOKEN, &yes),
      Attr(CKA_PRIVATE, &no),
      Attr(CKA_VERIFY, &yes),
      Attr(CKA_EC_PARAMS, oid->data(), oid->size()),
      Attr(CKA_LABEL, label.data(), label.size()),
      Attr(CKA_ID, id.data(), id.size()),
  };
  std::vector<struct ck_attribute> priv_tmpl = {
      Attr(CKA_CLASS, &priv_class),
      Attr(CKA_KEY_TYPE, &key_type),
      Attr(CKA_TOKEN, &yes),
      Attr(CKA_PRIVATE, &yes),
      Attr(CKA_SENSITIVE, &yes),
      Attr(CKA_EXTRACTABLE, &no),
      Attr(CKA_SIGN, &yes),
      Attr(CKA_DERIVE, &no),
      Attr(CKA_LABEL, label.data(), label.size()),
      Attr(CKA_ID, id.data(), id.size()),
  };
  struct ck_mechanism mech = {CKM_EC_KEY_PAIR_GEN, nullptr, 0};
  ck_object_handle_t pub = CK_INVALID_HANDLE;
  ck_object_handle_t priv = CK_INVALID_HANDLE;
  ck_rv_t rv = fn->C_GenerateKeyPair(session_->handle, &mech, pub_tmpl.data(), pub_tmpl.size(),
                                     priv_tmpl.data(), priv_tmpl.size(), &pub, &priv);
  if (rv == CKR_MECHANISM_INVALID) {
    return Error(Code::kInvalidArgument, Describe() + " cannot generate EC keys");
  }
  if (rv != CKR_OK) {
    return Error(Code::kUnavailable,
                 Describe() + " could not generate the key '" + label + "': " + CkrName(rv));
  }
  auto public_key = session_->ReadPublic(pub);
  if (!public_key) {
    // Leave no half-made key behind.
    fn->C_DestroyObject(session_->handle, priv);
    fn->C_DestroyObject(session_->handle, pub);
    return public_key.error();
  }
  return public_key;
}

Result<PrivateKey> Pkcs11Token::LoadKey(std::string_view label_view) {
  const std::string label(label_view);
  ck_object_handle_t priv = CK_INVALID_HANDLE;
  Result<PublicKey> public_key = Error(Code::kInternal, "unset");
  {
    std::lock_guard<std::mutex> lock(session_->mu);
    ck_object_class_t priv_class = CKO_PRIVATE_KEY;
    ck_object_class_t pub_class = CKO_PUBLIC_KEY;
    auto tmpl = session_->LabelTemplate(label);
    tmpl.push_back(Attr(CKA_CLASS, &priv_class));
    auto found = session_->Find(tmpl);
    if (!found) {
      return found.error();
    }
    if (found->empty()) {
      return Error(Code::kNotFound, Describe() + " holds no private key labelled '" + label + "'");
    }
    if (found->size() > 1) {
      return Error(Code::kFailedPrecondition,
                   Describe() + " holds several private keys labelled '" + label + "'");
    }
    priv = found->front();
    tmpl.back() = Attr(CKA_CLASS, &pub_class);
    auto pub = session_->Find(tmpl);
    if (!pub) {
      return pub.error();
    }
    if (pub->size() != 1) {
      return Error(Code::kNotFound, Describe() + " holds the private key '" + label +
                                        "' but not exactly one public key object for it");
    }
    public_key = session_->ReadPublic(pub->front());
  }
  if (!public_key) {
    return public_key.error();
  }
  auto signer = std::make_shared<TokenSigner>(session_, priv, Describe() + " key '" + label + "'");
  return WrapExternalKey(*public_key, std::move(signer));
}

}  // namespace hallmark
