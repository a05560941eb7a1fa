#include "core/csr.h"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <algorithm>

#include "core/internal/asn1_types.h"

namespace hallmark {
namespace {

constexpr std::string_view kPemMarker = "-----BEGIN";

bool IsValidDnsName(std::string_view name) {
  if (name.empty() || name.size() > 253) {
    return false;
  }
  if (name.back() == '.') {
    name.remove_suffix(1);
  }
  size_t start = 0;
  while (start <= name.size()) {
    size_t end = name.find('.', start);
    if (end == std::string_view::npos) {
      end = name.size();
    }
    std::string_view label = name.substr(start, end - start);
    if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-') {
      return false;
    }
    for (char c : label) {
      bool ok =
          (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
      if (!ok) {
        return false;
      }
    }
    start = end + 1;
  }
  return true;
}

std::string Asn1ToUtf8(const ASN1_STRING* s) {
  unsigned char* utf8 = nullptr;
  int len = ASN1_STRING_to_UTF8(&utf8, s);
  if (len < 0) {
    ERR_clear_error();
    return {};
  }
  std::string out(reinterpret_cast<char*>(utf8), static_cast<size_t>(len));
  OPENSSL_free(utf8);
  return out;
}

}  // namespace

bool IsPrintableString(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           std::string_view(" '()+,-./:=?").find(c) != std::string_view::npos;
  });
}

Result<SubjectAltName> ParseSubjectAltName(std::string_view text) {
  SubjectAltName san{SubjectAltName::Type::kDns, ""};
  std::string_view value = text;
  auto starts = [&](std::string_view p) {
    if (text.size() >= p.size() && std::equal(p.begin(), p.end(), text.begin(), [](char a, char b) {
          return a == std::tolower(static_cast<unsigned char>(b));
        })) {
      value = text.substr(p.size());
      return true;
    }
    return false;
  };
  unsigned char buf[16];
  if (starts("dns:")) {
    san.type = SubjectAltName::Type::kDns;
  } else if (starts("ip:")) {
    san.type = SubjectAltName::Type::kIp;
  } else if (starts("uri:")) {
    san.type = SubjectAltName::Type::kUri;
  } else if (inet_pton(AF_INET, std::string(text).c_str(), buf) == 1 ||
             inet_pton(AF_INET6, std::string(text).c_str(), buf) == 1) {
    san.type = SubjectAltName::Type::kIp;
  }
  san.value = std::string(value);
  switch (san.type) {
    case SubjectAltName::Type::kDns:
      if (!IsValidDnsName(san.value)) {
        return Error(Code::kInvalidArgument,
                     "subjectAltName '" + std::string(text) +
                         "' is not a valid DNS name (letters, digits and '-' in dot-separated "
                         "labels; no wildcards)");
      }
      break;
    case SubjectAltName::Type::kIp:
      if (inet_pton(AF_INET, san.value.c_str(), buf) != 1 &&
          inet_pton(AF_INET6, san.value.c_str(), buf) != 1) {
        return Error(Code::kInvalidArgument,
                     "subjectAltName '" + std::string(text) + "' is not an IP address");
      }
      break;
    case SubjectAltName::Type::kUri:
      if (san.value.find(':') == std::string::npos || san.value.size() > 2048 ||
          !IsPrintableString(san.value.substr(0, san.value.find(':')))) {
        return Error(Code::kInvalidArgument,
                     "subjectAltName '" + std::string(text) + "' is not a URI");
      }
      break;
  }
  return san;
}

std::string FormatSubjectAltName(const SubjectAltName& san) {
  switch (san.type) {
    case SubjectAltName::Type::kDns:
      return "dns:" + san.value;
    case SubjectAltName::Type::kIp:
      return "ip:" + san.value;
    case SubjectAltName::Type::kUri:
      return "uri:" + san.value;
  }
  return san.value;
}

Result<OsslPtr<X509_NAME>> BuildName(const DistinguishedName& name) {
  OsslPtr<X509_NAME> out(X509_NAME_new());
  if (!out) {
    return OsslError("X509_NAME_new");
  }
  auto add = [&](int nid, const std::string& value, int type, const char* label) -> Status {
    if (value.empty()) {
      return OkStatus();
    }
    if (value.size() > 64) {
      return Error(Code::kInvalidArgument, std::string(label) + " is longer than 64 characters");
    }
    if (type == V_ASN1_PRINTABLESTRING && !IsPrintableString(value)) {
      return Error(Code::kInvalidArgument,
                   std::string(label) + " '" + value +
                       "' has characters outside PrintableString (letters, digits, space and "
                       "'()+,-./:=?)");
    }
    if (X509_NAME_add_entry_by_NID(out.get(), nid, type,
                                   reinterpret_cast<const unsigned char*>(value.data()),
                                   static_cast<int>(value.size()), -1, 0) != 1) {
      return OsslError(Code::kInvalidArgument, std::string("cannot encode ") + label);
    }
    return OkStatus();
  };
  if (!name.country.empty() && name.country.size() != 2) {
    return Error(Code::kInvalidArgument, "country must be a two-letter code");
  }
  Status s = add(NID_countryName, name.country, V_ASN1_PRINTABLESTRING, "country");
  if (s) {
    s = add(NID_organizationName, name.organization, MBSTRING_UTF8, "organization");
  }
  if (s) {
    s = add(NID_organizationalUnitName, name.organizational_unit, MBSTRING_UTF8,
            "organizational unit");
  }
  if (s) {
    s = add(NID_commonName, name.common_name, MBSTRING_UTF8, "common name");
  }
  if (s) {
    s = add(NID_serialNumber, name.serial_number, V_ASN1_PRINTABLESTRING, "serial number");
  }
  if (!s) {
    return s.error();
  }
  return out;
}

Result<Csr> Csr::FromDer(std::span<const uint8_t> der) {
  const unsigned char* p = der.data();
  OsslPtr<HALLMARK_CSR> req(d2i_HALLMARK_CSR(nullptr, &p, static_cast<long>(der.size())));
  if (!req) {
    return OsslError(Code::kInvalidArgument,
                     "CSR is neither PEM nor a valid DER certificate request");
  }
  if (p != der.data() + der.size()) {
    return Error(Code::kInvalidArgument,
                 "CSR DER has " + std::to_string(der.data() + der.size() - p) + " trailing bytes");
  }
  if (ASN1_INTEGER_get(req->info->version) != 0) {
    return Error(Code::kInvalidArgument, "CSR version is not v1 (0)");
  }
  Bytes spki(static_cast<size_t>(std::max(0, i2d_HALLMARK_SPKI(req->info->spki, nullptr))));
  unsigned char* out = spki.data();
  if (spki.empty() || i2d_HALLMARK_SPKI(req->info->spki, &out) <= 0) {
    return OsslError(Code::kInvalidArgument, "CSR's public key does not encode");
  }
  auto key = PublicKey::FromDer(spki);
  if (!key) {
    return Error(Code::kInvalidArgument, "CSR's public key: " + key.error().message(),
                 key.error().detail());
  }
  return Csr(std::shared_ptr<HALLMARK_CSR>(req.release(), HALLMARK_CSR_free), std::move(*key));
}

Result<Csr> Csr::FromPem(std::string_view pem) {
  OsslPtr<BIO> bio = MemBio(pem);
  char* name = nullptr;
  char* header = nullptr;
  unsigned char* data = nullptr;
  long len = 0;
  if (PEM_read_bio(bio.get(), &name, &header, &data, &len) != 1) {
    return OsslError(Code::kInvalidArgument,
                     "CSR is not a valid PEM certificate request (truncated or corrupt?)");
  }
  std::string label(name);
  Bytes der(data, data + len);
  OPENSSL_free(name);
  OPENSSL_free(header);
  OPENSSL_free(data);
  if (label != "CERTIFICATE REQUEST" && label != "NEW CERTIFICATE REQUEST") {
    return Error(Code::kInvalidArgument,
                 "PEM block is a \"" + label + "\", not a \"CERTIFICATE REQUEST\"");
  }
  return FromDer(der);
}

Result<Csr> Csr::Parse(std::span<const uint8_t> bytes) {
  if (bytes.empty()) {
    return Error(Code::kInvalidArgument, "CSR is empty");
  }
  std::string_view text(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  if (text.find(kPemMarker) != std::string_view::npos) {
    return FromPem(text);
  }
  return FromDer(bytes);
}

Result<Csr> Csr::Create(const PrivateKey& key, const DistinguishedName& subject,
                        std::span<const SubjectAltName> sans) {
  OsslPtr<X509_REQ> req(X509_REQ_new());
  if (!req) {
    return OsslError("X509_REQ_new");
  }
  auto name = BuildName(subject);
  if (!name) {
    return name.error();
  }
  if (X509_REQ_set_version(req.get(), X509_REQ_VERSION_1) != 1 ||
      X509_REQ_set_subject_name(req.get(), name->get()) != 1 ||
      X509_REQ_set_pubkey(req.get(), key.native()) != 1) {
    return OsslError("building CSR");
  }
  if (!sans.empty()) {
    OsslPtr<GENERAL_NAMES> names(GENERAL_NAMES_new());
    for (const SubjectAltName& san : sans) {
      int type = san.type == SubjectAltName::Type::kDns  ? GEN_DNS
                 : san.type == SubjectAltName::Type::kIp ? GEN_IPADD
                                                         : GEN_URI;
      OsslPtr<GENERAL_NAME> gn(
          a2i_GENERAL_NAME(nullptr, nullptr, nullptr, type, san.value.c_str(), 0));
      if (!gn || sk_GENERAL_NAME_push(names.get(), gn.get()) <= 0) {
        return OsslError(Code::kInvalidArgument, "cannot encode " + FormatSubjectAltName(san));
      }
      gn.release();  // sk_GENERAL_NAME_push took ownership.
    }
    OsslPtr<STACK_OF(X509_EXTENSION)> exts(sk_X509_EXTENSION_new_null());
    OsslPtr<X509_EXTENSION> ext(X509V3_EXT_i2d(NID_subject_alt_name, 0, names.get()));
    if (!exts || !ext || sk_X509_EXTENSION_push(exts.get(), ext.get()) <= 0) {
      return OsslError("encoding subjectAltName request");
    }
    ext.release();  // sk_X509_EXTENSION_push took ownership.
    if (X509_REQ_add_extensions(req.get(), exts.get()) != 1) {
      return OsslError("X509_REQ_add_extensions");
    }
  }
  if (X509_REQ_sign(req.get(), key.native(), key.SigningDigest()) <= 0) {
    return OsslError("signing CSR");
  }
  int len = i2d_X509_REQ(req.get(), nullptr);
  Bytes der(static_cast<size_t>(std::max(len, 0)));
  unsigned char* out = der.data();
  if (len <= 0 || i2d_X509_REQ(req.get(), &out) != len) {
    return OsslError("encoding CSR");
  }
  return FromDer(der);
}

Status Csr::VerifySignature() const {
  const X509_ALGOR* alg = req_->sig_alg;
  const ASN1_OBJECT* alg_obj = nullptr;
  X509_ALGOR_get0(&alg_obj, nullptr, nullptr, alg);
  int sig_nid = OBJ_obj2nid(alg_obj);
  int md_nid = NID_undef;
  int pk_nid = NID_undef;
  if (sig_nid == NID_undef || OBJ_find_sigid_algs(sig_nid, &md_nid, &pk_nid) != 1) {
    ERR_clear_error();
    return Error(Code::kInvalidArgument, "CSR signature algorithm is unknown");
  }
  if (md_nid == NID_md5 || md_nid == NID_sha1 || md_nid == NID_md4) {
    return Error(Code::kInvalidArgument, std::string("CSR is signed with ") + OBJ_nid2sn(md_nid) +
                                             ", which is not collision resistant; use SHA-256");
  }
  int rc = ASN1_item_verify(ASN1_ITEM_rptr(HALLMARK_CSR_INFO), req_->sig_alg, req_->signature,
                            req_->info, key_.native());
  if (rc != 1) {
    return OsslError(Code::kInvalidArgument,
                     "CSR signature does not verify: the request was not signed by the key it "
                     "contains (no proof of possession)");
  }
  return OkStatus();
}

std::string Csr::Subject() const {
  OsslPtr<BIO> bio(BIO_new(BIO_s_mem()));
  X509_NAME_print_ex(bio.get(), req_->info->subject, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB);
  return BioToString(bio.get());
}

std::optional<std::string> Csr::Attribute(int nid) const {
  const X509_NAME* name = req_->info->subject;
  int idx = X509_NAME_get_index_by_NID(name, nid, -1);
  if (idx < 0) {
    return std::nullopt;
  }
  return Asn1ToUtf8(X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, idx)));
}

Result<OsslPtr<STACK_OF(X509_EXTENSION)>> Csr::Extensions() const {
  const STACK_OF(X509_ATTRIBUTE)* attrs = req_->info->attributes;
  int idx = X509at_get_attr_by_NID(attrs, NID_ext_req, -1);
  if (idx < 0) {
    idx = X509at_get_attr_by_NID(attrs, NID_ms_ext_req, -1);
  }
  if (idx < 0) {
    return OsslPtr<STACK_OF(X509_EXTENSION)>();
  }
  const bool both_kinds = X509at_get_attr_by_NID(attrs, NID_ext_req, -1) >= 0 &&
                          X509at_get_attr_by_NID(attrs, NID_ms_ext_req, -1) >= 0;
  if (X509at_get_attr_by_NID(attrs, NID_ext_req, idx) >= 0 || both_kinds) {
    return Error(Code::kInvalidArgument, "CSR has more than one extensionRequest attribute");
  }
  X509_ATTRIBUTE* attr = X509at_get_attr(attrs, idx);
  if (X509_ATTRIBUTE_count(attr) != 1) {
    return Error(Code::kInvalidArgument, "CSR's extensionRequest attribute must hold one value");
  }
  ASN1_TYPE* value = X509_ATTRIBUTE_get0_type(attr, 0);
  if (value == nullptr || value->type != V_ASN1_SEQUENCE) {
    return Error(Code::kInvalidArgument, "CSR's extensionRequest attribute is malformed");
  }
  const unsigned char* p = value->value.sequence->data;
  const unsigned char* end = p + value->value.sequence->length;
  OsslPtr<STACK_OF(X509_EXTENSION)> exts(
      d2i_X509_EXTENSIONS(nullptr, &p, value->value.sequence->length));
  if (!exts) {
    return OsslError(Code::kInvalidArgument, "CSR's extensionRequest does not parse");
  }
  if (p != end) {
    return Error(Code::kInvalidArgument, "CSR's extensionRequest has trailing bytes");
  }
  return exts;
}

std::vector<RequestedExtension> Csr::RequestedExtensions() const {
  std::vector<RequestedExtension> out;
  auto parsed = Extensions();
  if (!parsed || !*parsed) {
    return out;
  }
  OsslPtr<STACK_OF(X509_EXTENSION)> exts = std::move(*parsed);
  for (int i = 0; i < sk_X509_EXTENSION_num(exts.get()); ++i) {
    X509_EXTENSION* ext = sk_X509_EXTENSION_value(exts.get(), i);
    const ASN1_OBJECT* obj = X509_EXTENSION_get_object(ext);
    char oid[128];
    OBJ_obj2txt(oid, sizeof(oid), obj, 1);
    int nid = OBJ_obj2nid(obj);
    RequestedExtension r;
    r.oid = oid;
    r.name = nid == NID_undef ? std::string(oid) : std::string(OBJ_nid2sn(nid));
    r.critical = X509_EXTENSION_get_critical(ext) != 0;
    out.push_back(std::move(r));
  }
  return out;
}

Result<std::vector<SubjectAltName>> Csr::RequestedSubjectAltNames() const {
  std::vector<SubjectAltName> out;
  auto parsed = Extensions();
  if (!parsed) {
    return parsed.error();
  }
  if (!*parsed) {
    return out;
  }
  OsslPtr<STACK_OF(X509_EXTENSION)> exts = std::move(*parsed);
  int crit = 0;
  OsslPtr<GENERAL_NAMES> names(static_cast<GENERAL_NAMES*>(
      X509V3_get_d2i(exts.get(), NID_subject_alt_name, &crit, nullptr)));
  if (!names) {
    if (crit == -2) {
      return Error(Code::kInvalidArgument, "CSR has more than one subjectAltName extension");
    }
    if (crit >= 0) {
      return OsslError(Code::kInvalidArgument, "CSR's subjectAltName extension does not parse");
    }
    return out;
  }
  for (int i = 0; i < sk_GENERAL_NAME_num(names.get()); ++i) {
    const GENERAL_NAME* gn = sk_GENERAL_NAME_value(names.get(), i);
    if (gn->type == GEN_DNS) {
      out.push_back({SubjectAltName::Type::kDns, Asn1ToUtf8(gn->d.dNSName)});
    } else if (gn->type == GEN_URI) {
      out.push_back({SubjectAltName::Type::kUri, Asn1ToUtf8(gn->d.uniformResourceIdentifier)});
    } else if (gn->type == GEN_IPADD) {
      char buf[INET6_ADDRSTRLEN] = {0};
      const ASN1_OCTET_STRING* ip = gn->d.iPAddress;
      int af = ip->length == 4 ? AF_INET : ip->length == 16 ? AF_INET6 : -1;
      if (af < 0 || inet_ntop(af, ip->data, buf, sizeof(buf)) == nullptr) {
        return Error(Code::kInvalidArgument, "CSR has a malformed IP address subjectAltName");
      }
      out.push_back({SubjectAltName::Type::kIp, buf});
    } else {
      return Error(Code::kInvalidArgument,
                   "CSR asks for a subjectAltName of a type hallmark does not issue (only DNS, "
                   "IP and URI)");
    }
  }
  return out;
}

bool Csr::RequestsCa() const {
  auto parsed = Extensions();
  if (!parsed) {
    return true;  // an unreadable extension request is treated as the worst case
  }
  if (!*parsed) {
    return false;
  }
  OsslPtr<STACK_OF(X509_EXTENSION)> exts = std::move(*parsed);
  int crit = 0;
  OsslPtr<BASIC_CONSTRAINTS> bc(static_cast<BASIC_CONSTRAINTS*>(
      X509V3_get_d2i(exts.get(), NID_basic_constraints, &crit, nullptr)));
  ERR_clear_error();
  // An unparseable or duplicated basicConstraints request is treated as asking for CA.
  if (!bc) {
    return crit != -1;
  }
  return bc->ca != 0;
}

std::string Csr::ToPem() const {
  Bytes der = ToDer();
  OsslPtr<BIO> bio(BIO_new(BIO_s_mem()));
  PEM_write_bio(bio.get(), "CERTIFICATE REQUEST", "", der.data(), static_cast<long>(der.size()));
  return BioToString(bio.get());
}

Bytes Csr::ToDer() const {
  int len = i2d_HALLMARK_CSR(req_.get(), nullptr);
  Bytes der(static_cast<size_t>(len > 0 ? len : 0));
  unsigned char* p = der.data();
  i2d_HALLMARK_CSR(req_.get(), &p);
  return der;
}

}  // namespace hallmark
