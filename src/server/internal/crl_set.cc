#include "server/internal/crl_set.h"

#include <fmt/format.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include "core/file.h"

namespace hallmark::server::internal {
namespace {

// A CRL of a large fleet can be several megabytes; refuse only the absurd.
constexpr size_t kMaxCrlFileSize = 64 << 20;
constexpr std::string_view kGiven = "(given in memory)";

// Stamp identifies a version of a file: a write in place changes its size or times, a
// write-then-rename its inode. Empty if the file cannot be stat'ed.
std::string Stamp(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    return {};
  }
  return fmt::format("{}:{}:{}:{}.{}:{}.{}", st.st_dev, st.st_ino, st.st_size, st.st_mtim.tv_sec,
                     st.st_mtim.tv_nsec, st.st_ctim.tv_sec, st.st_ctim.tv_nsec);
}

Result<Crl> ReadCrl(const std::string& path) {
  auto text = ReadFile(path, kMaxCrlFileSize);
  if (!text) {
    return text.error();
  }
  auto crl = text->find("-----BEGIN") != std::string::npos ? Crl::FromPem(*text)
                                                           : Crl::FromDer(AsBytes(*text));
  if (!crl) {
    return crl.error().WithContext(path);
  }
  return crl;
}

}  // namespace

const Crl* CrlSet::Snapshot::For(const X509* issuer) const {
  for (size_t i = 0; i < issuers.size(); ++i) {
    if (issuers[i] == issuer) {
      return &crls[i];
    }
  }
  return nullptr;
}

std::string CrlSet::Snapshot::Describe(const X509* issuer) const {
  for (size_t i = 0; i < issuers.size(); ++i) {
    if (issuers[i] == issuer) {
      return fmt::format("the CRL of {} from {} (nextUpdate {})", crls[i].Issuer(), origins[i],
                         FormatTime(crls[i].NextUpdate()));
    }
  }
  return "the CRL";
}

Result<size_t> CrlSet::Check(const Crl& crl, const std::string& origin,
                             std::optional<size_t> expected) const {
  // Without nextUpdate a CRL never goes stale, and a CRL that stopped being refreshed would
  // pass as "nothing revoked" forever (RFC 5280 section 5.1.2.5 requires the field).
  if (X509_CRL_get0_nextUpdate(crl.native()) == nullptr) {
    return Error(Code::kInvalidArgument,
                 "CRL " + origin + " has no nextUpdate, so it could never be found stale");
  }
  // The revocation check reads a CRL as the complete list of its anchor's revoked certificates:
  // refuse what would make that wrong (a partial or delta CRL, an indirect entry) or what it
  // would not understand (any other critical extension).
  X509_CRL* native = crl.native();
  for (int i = 0; i < X509_CRL_get_ext_count(native); ++i) {
    X509_EXTENSION* ext = X509_CRL_get_ext(native, i);
    const int nid = OBJ_obj2nid(X509_EXTENSION_get_object(ext));
    if (nid == NID_issuing_distribution_point || nid == NID_delta_crl ||
        X509_EXTENSION_get_critical(ext) != 0) {
      return Error(Code::kInvalidArgument,
                   "CRL " + origin + " has a " + (nid == NID_undef ? "critical" : OBJ_nid2sn(nid)) +
                       " extension; hallmark reads only complete CRLs (no scope, no delta, no "
                       "other critical extension)");
    }
  }
  STACK_OF(X509_REVOKED)* revoked = X509_CRL_get_REVOKED(native);
  for (int i = 0; i < sk_X509_REVOKED_num(revoked); ++i) {
    const STACK_OF(X509_EXTENSION)* exts =
        X509_REVOKED_get0_extensions(sk_X509_REVOKED_value(revoked, i));
    for (int j = 0; j < sk_X509_EXTENSION_num(exts); ++j) {
      if (X509_EXTENSION_get_critical(sk_X509_EXTENSION_value(exts, j)) != 0) {
        return Error(Code::kInvalidArgument,
                     "CRL " + origin + " has an entry with a critical extension (indirect CRL?)");
      }
    }
  }
  for (size_t i = 0; i < anchors_.size(); ++i) {
    if (expected.has_value() && *expected != i) {
      continue;
    }
    const bool issued = X509_NAME_cmp(X509_CRL_get_issuer(crl.native()),
                                      X509_get_subject_name(anchors_[i].native())) == 0;
    // RFC 5280 section 4.2.1.3: an issuer with keyUsage must have cRLSign to sign CRLs.
    const bool may_sign = (X509_get_extension_flags(anchors_[i].native()) & EXFLAG_KUSAGE) == 0 ||
                          (X509_get_key_usage(anchors_[i].native()) & KU_CRL_SIGN) != 0;
    if (issued && may_sign && crl.VerifySignature(anchors_[i])) {
      return i;
    }
    ERR_clear_error();
  }
  if (expected.has_value()) {
    return Error(Code::kInvalidArgument, "CRL " + origin + " (issuer " + crl.Issuer() +
                                             ") is not issued and signed by anchor " +
                                             anchors_[*expected].Subject() +
                                             ", whose CRL it would replace");
  }
  return Error(Code::kInvalidArgument, "CRL from " + crl.Issuer() + " (" + origin +
                                           ") is not signed by any configured anchor");
}

Result<std::unique_ptr<CrlSet>> CrlSet::Create(std::span<const Certificate> anchors,
                                               std::vector<Crl> crls,
                                               const std::vector<std::string>& files,
                                               const Clock* clock, Metrics* metrics) {
  std::unique_ptr<CrlSet> set(new CrlSet(anchors, clock, metrics));
  std::vector<std::optional<Crl>> by_anchor(anchors.size());
  std::vector<std::string> origins(anchors.size());
  auto assign = [&](const Crl& crl, const std::string& origin) -> Result<size_t> {
    auto i = set->Check(crl, origin, std::nullopt);
    if (!i) {
      return i.error();
    }
    if (by_anchor[*i].has_value()) {
      return Error(Code::kInvalidArgument, "anchor " + anchors[*i].Subject() +
                                               " has two CRLs: " + origins[*i] + " and " + origin);
    }
    by_anchor[*i] = crl;
    origins[*i] = origin;
    return i;
  };
  for (const Crl& crl : crls) {
    if (auto i = assign(crl, std::string(kGiven)); !i) {
      return i.error();
    }
  }
  for (const std::string& path : files) {
    std::string stamp = Stamp(path);
    auto crl = ReadCrl(path);
    if (!crl) {
      return crl.error();
    }
    auto i = assign(*crl, path);
    if (!i) {
      return i.error();
    }
    set->files_.push_back(FileState{path, *i, std::move(stamp)});
  }
  if (crls.empty() && files.empty()) {
    return set;
  }
  std::vector<Crl> in_force;
  for (size_t i = 0; i < anchors.size(); ++i) {
    if (!by_anchor[i].has_value()) {
      return Error(Code::kInvalidArgument,
                   "anchor " + anchors[i].Subject() +
                       " has no CRL; when CRLs are configured, every anchor needs one (its "
                       "devices could not be checked for revocation)");
    }
    in_force.push_back(*by_anchor[i]);
  }
  for (size_t i = 0; i < anchors.size(); ++i) {
    set->Loaded(i, in_force[i], origins[i]);
  }
  set->Publish(std::move(in_force), std::move(origins));
  (void)set->Reload();  // reports a CRL that is stale already
  return set;
}

void CrlSet::Loaded(size_t anchor, const Crl& crl, const std::string& origin) const {
  const std::string subject = anchors_[anchor].Subject();
  spdlog::info(
      "event=crl_loaded anchor=\"{}\" file=\"{}\" this_update={} next_update={} revoked={}",
      subject, origin, FormatTime(crl.ThisUpdate()), FormatTime(crl.NextUpdate()),
      crl.RevokedCount());
  if (metrics_ != nullptr) {
    metrics_->CrlLoaded(subject, crl.NextUpdate());
  }
}

void CrlSet::Publish(std::vector<Crl> crls, std::vector<std::string> origins) {
  auto snapshot = std::make_shared<Snapshot>();
  snapshot->crls = std::move(crls);
  snapshot->origins = std::move(origins);
  for (const Certificate& anchor : anchors_) {
    snapshot->issuers.push_back(anchor.native());
  }
  current_.store(std::move(snapshot));
}

CrlReloadReport CrlSet::Reload() {
  CrlReloadReport report;
  std::lock_guard<std::mutex> lock(reload_mu_);
  std::shared_ptr<const Snapshot> current = Current();
  if (!current) {
    return report;
  }
  std::vector<Crl> crls = current->crls;
  std::vector<std::string> origins = current->origins;
  for (FileState& f : files_) {
    std::string stamp = Stamp(f.path);
    if (stamp == f.stamp) {
      continue;
    }
    // Remembered even if the new file is refused: it is reported once, not on every check.
    f.stamp = stamp;
    auto crl = stamp.empty() ? Result<Crl>(Error(Code::kNotFound, "cannot stat " + f.path))
                             : ReadCrl(f.path);
    Status verdict = crl ? Status(OkStatus()) : Status(crl.error());
    if (verdict) {
      if (auto i = Check(*crl, f.path, f.anchor); !i) {
        verdict = i.error();
      } else if (crl->ThisUpdate() < crls[f.anchor].ThisUpdate()) {
        verdict = Error(Code::kInvalidArgument,
                        "CRL " + f.path + " (thisUpdate " + FormatTime(crl->ThisUpdate()) +
                            ") is older than the CRL in force (thisUpdate " +
                            FormatTime(crls[f.anchor].ThisUpdate()) +
                            "); an old CRL may lack recent revocations");
      }
    }
    const std::string subject = anchors_[f.anchor].Subject();
    if (!verdict) {
      spdlog::error(
          "event=crl_refused anchor=\"{}\" file=\"{}\" error=\"{}\" detail=\"{}\": the previous "
          "CRL stays in force",
          subject, f.path, verdict.error().message(), verdict.error().detail());
      if (metrics_ != nullptr) {
        metrics_->CrlRefused(subject);
      }
      report.refused.push_back(verdict.error());
      continue;
    }
    crls[f.anchor] = *crl;
    origins[f.anchor] = f.path;
    Loaded(f.anchor, *crl, f.path);
    report.reloaded.push_back(f.path);
  }
  // A CRL that goes stale while in force is reported once, when the reloader first sees it.
  const int64_t now = (clock_ != nullptr ? *clock_ : SystemClock()).Now();
  stale_reported_.resize(crls.size(), false);
  for (size_t i = 0; i < crls.size(); ++i) {
    const bool stale = crls[i].NextUpdate() <= now;
    if (stale && !stale_reported_[i]) {
      spdlog::warn(
          "event=crl_stale anchor=\"{}\" file=\"{}\" next_update={}: devices of this anchor are "
          "refused until a fresh CRL is loaded",
          anchors_[i].Subject(), origins[i], FormatTime(crls[i].NextUpdate()));
    }
    stale_reported_[i] = stale;
  }
  if (!report.reloaded.empty()) {
    Publish(std::move(crls), std::move(origins));
  }
  return report;
}

}  // namespace hallmark::server::internal
