#include "ca/issuance_log.h"

namespace hallmark::ca {
namespace {

constexpr int kSchemaVersion = 1;

constexpr std::string_view kSchema = R"sql(
CREATE TABLE IF NOT EXISTS meta (
  key TEXT PRIMARY KEY,
  value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS authorities (
  name TEXT PRIMARY KEY,
  kind TEXT NOT NULL CHECK (kind IN ('root', 'customer')),
  organization TEXT NOT NULL,
  cert_der BLOB NOT NULL,
  key_ref TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  next_crl_number INTEGER NOT NULL DEFAULT 1
);
CREATE TABLE IF NOT EXISTS certificates (
  serial TEXT PRIMARY KEY,
  issuer TEXT NOT NULL REFERENCES authorities(name),
  profile TEXT NOT NULL,
  subject TEXT NOT NULL,
  device_id TEXT NOT NULL,
  not_before INTEGER NOT NULL,
  not_after INTEGER NOT NULL,
  issued_at INTEGER NOT NULL,
  der BLOB NOT NULL,
  revoked_at INTEGER,
  revocation_reason INTEGER
);
CREATE INDEX IF NOT EXISTS certificates_by_issuer ON certificates(issuer, issued_at);
CREATE INDEX IF NOT EXISTS certificates_by_device ON certificates(device_id);
)sql";

constexpr std::string_view kSelectColumns =
    "SELECT serial, issuer, profile, subject, device_id, not_before, not_after, issued_at, der, "
    "revoked_at, revocation_reason FROM certificates ";

IssuedRecord ReadRecord(const sqlite::Statement& st) {
  IssuedRecord r;
  r.serial = st.ColumnText(0);
  r.issuer = st.ColumnText(1);
  r.profile = st.ColumnText(2);
  r.subject = st.ColumnText(3);
  r.device_id = st.ColumnText(4);
  r.not_before = st.ColumnInt(5);
  r.not_after = st.ColumnInt(6);
  r.issued_at = st.ColumnInt(7);
  r.der = st.ColumnBlob(8);
  if (!st.ColumnIsNull(9)) {
    r.revoked_at = st.ColumnInt(9);
    r.reason = static_cast<RevocationReason>(st.ColumnInt(10));
  }
  return r;
}

AuthorityRecord ReadAuthority(const sqlite::Statement& st) {
  AuthorityRecord a;
  a.name = st.ColumnText(0);
  a.kind = st.ColumnText(1);
  a.organization = st.ColumnText(2);
  a.cert_der = st.ColumnBlob(3);
  a.key_ref = st.ColumnText(4);
  a.created_at = st.ColumnInt(5);
  return a;
}

Result<std::vector<IssuedRecord>> Collect(sqlite::Statement& st) {
  std::vector<IssuedRecord> out;
  for (;;) {
    auto row = st.Step();
    if (!row) {
      return row.error();
    }
    if (!*row) {
      return out;
    }
    out.push_back(ReadRecord(st));
  }
}

}  // namespace

Result<IssuanceLog> IssuanceLog::Open(const std::string& path) {
  auto db = sqlite::Database::Open(path);
  if (!db) {
    return db.error();
  }
  if (auto s = db->Exec(kSchema); !s) {
    return s.error().WithContext("issuance log " + path);
  }
  auto version = db->Prepare("SELECT value FROM meta WHERE key = 'schema_version'");
  if (!version) {
    return version.error();
  }
  auto row = version->Step();
  if (!row) {
    return row.error();
  }
  if (!*row) {
    auto ins = db->Prepare("INSERT INTO meta(key, value) VALUES ('schema_version', ?)");
    if (!ins) {
      return ins.error();
    }
    if (auto s = ins->Bind(1, std::to_string(kSchemaVersion)).Run(); !s) {
      return s.error();
    }
  } else if (version->ColumnText(0) != std::to_string(kSchemaVersion)) {
    return Error(Code::kFailedPrecondition,
                 "issuance log " + path + " has schema version " + version->ColumnText(0) +
                     "; this hallmark understands version " + std::to_string(kSchemaVersion));
  }
  return IssuanceLog(std::move(*db));
}

Status IssuanceLog::InsertLocked(const IssuedRecord& r) {
  if (!insert_.has_value()) {
    auto st = db_.Prepare(
        "INSERT INTO certificates(serial, issuer, profile, subject, device_id, not_before, "
        "not_after, issued_at, der) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)");
    if (!st) {
      return st.error();
    }
    insert_.emplace(std::move(*st));
  }
  sqlite::Statement* st = &*insert_;
  st->Reset();
  st->Bind(1, r.serial)
      .Bind(2, r.issuer)
      .Bind(3, r.profile)
      .Bind(4, r.subject)
      .Bind(5, r.device_id)
      .Bind(6, r.not_before)
      .Bind(7, r.not_after)
      .Bind(8, r.issued_at)
      .Bind(9, std::span<const uint8_t>(r.der));
  Status s = st->Run();
  st->Reset();
  if (!s && s.error().code() == Code::kAlreadyExists) {
    return Error(Code::kAlreadyExists, "serial " + r.serial + " is already in the issuance log");
  }
  return s;
}

Status IssuanceLog::AddAuthority(const AuthorityRecord& a, const IssuedRecord& cert) {
  auto tx = sqlite::Transaction::Begin(db_);
  if (!tx) {
    return tx.error();
  }
  auto st = db_.Prepare(
      "INSERT INTO authorities(name, kind, organization, cert_der, key_ref, created_at) "
      "VALUES (?, ?, ?, ?, ?, ?)");
  if (!st) {
    return st.error();
  }
  st->Bind(1, a.name)
      .Bind(2, a.kind)
      .Bind(3, a.organization)
      .Bind(4, std::span<const uint8_t>(a.cert_der))
      .Bind(5, a.key_ref)
      .Bind(6, a.created_at);
  if (Status s = st->Run(); !s) {
    if (s.error().code() == Code::kAlreadyExists) {
      return Error(Code::kAlreadyExists, "authority '" + a.name + "' already exists");
    }
    return s;
  }
  if (Status s = InsertLocked(cert); !s) {
    return s;
  }
  return tx->Commit();
}

Result<AuthorityRecord> IssuanceLog::FindAuthority(const std::string& name) {
  auto st = db_.Prepare(
      "SELECT name, kind, organization, cert_der, key_ref, created_at FROM authorities "
      "WHERE name = ?");
  if (!st) {
    return st.error();
  }
  st->Bind(1, name);
  auto row = st->Step();
  if (!row) {
    return row.error();
  }
  if (!*row) {
    return Error(Code::kNotFound, "no authority named '" + name + "'");
  }
  return ReadAuthority(*st);
}

Result<std::vector<AuthorityRecord>> IssuanceLog::Authorities() {
  auto st = db_.Prepare(
      "SELECT name, kind, organization, cert_der, key_ref, created_at FROM authorities "
      "ORDER BY kind DESC, name");
  if (!st) {
    return st.error();
  }
  std::vector<AuthorityRecord> out;
  for (;;) {
    auto row = st->Step();
    if (!row) {
      return row.error();
    }
    if (!*row) {
      return out;
    }
    out.push_back(ReadAuthority(*st));
  }
}

Status IssuanceLog::Record(std::span<const IssuedRecord> records) {
  auto tx = sqlite::Transaction::Begin(db_);
  if (!tx) {
    return tx.error();
  }
  for (const IssuedRecord& r : records) {
    if (Status s = InsertLocked(r); !s) {
      return s;
    }
  }
  return tx->Commit();
}

Result<IssuedRecord> IssuanceLog::Find(const std::string& serial) {
  auto st = db_.Prepare(std::string(kSelectColumns) + "WHERE serial = ?");
  if (!st) {
    return st.error();
  }
  st->Bind(1, serial);
  auto row = st->Step();
  if (!row) {
    return row.error();
  }
  if (!*row) {
    return Error(Code::kNotFound, "no certificate with serial " + serial + " in the issuance log");
  }
  return ReadRecord(*st);
}

Result<std::vector<IssuedRecord>> IssuanceLog::List(const std::string& issuer, int limit) {
  auto st = db_.Prepare(std::string(kSelectColumns) +
                        "WHERE (?1 = '' OR issuer = ?1) ORDER BY issued_at DESC, rowid DESC "
                        "LIMIT ?2");
  if (!st) {
    return st.error();
  }
  st->Bind(1, issuer).Bind(2, static_cast<int64_t>(limit));
  return Collect(*st);
}

Result<int64_t> IssuanceLog::CountIssued(const std::string& issuer) {
  auto st = db_.Prepare("SELECT COUNT(*) FROM certificates WHERE issuer = ?");
  if (!st) {
    return st.error();
  }
  st->Bind(1, issuer);
  auto row = st->Step();
  if (!row) {
    return row.error();
  }
  return st->ColumnInt(0);
}

Status IssuanceLog::Revoke(const std::string& serial, RevocationReason reason, int64_t at) {
  auto tx = sqlite::Transaction::Begin(db_);
  if (!tx) {
    return tx.error();
  }
  auto found = Find(serial);
  if (!found) {
    return found.error();
  }
  if (found->revoked_at.has_value()) {
    return Error(Code::kFailedPrecondition, "certificate " + serial + " was already revoked at " +
                                                FormatTime(*found->revoked_at) + " (" +
                                                std::string(RevocationReasonName(found->reason)) +
                                                ")");
  }
  auto st =
      db_.Prepare("UPDATE certificates SET revoked_at = ?, revocation_reason = ? WHERE serial = ?");
  if (!st) {
    return st.error();
  }
  st->Bind(1, at).Bind(2, static_cast<int64_t>(reason)).Bind(3, serial);
  if (Status s = st->Run(); !s) {
    return s;
  }
  return tx->Commit();
}

Result<std::vector<IssuedRecord>> IssuanceLog::Revoked(const std::string& issuer, int64_t now) {
  auto st = db_.Prepare(std::string(kSelectColumns) +
                        "WHERE issuer = ? AND revoked_at IS NOT NULL AND not_after >= ? "
                        "ORDER BY serial");
  if (!st) {
    return st.error();
  }
  st->Bind(1, issuer).Bind(2, now);
  return Collect(*st);
}

Result<uint64_t> IssuanceLog::NextCrlNumber(const std::string& issuer) {
  auto tx = sqlite::Transaction::Begin(db_);
  if (!tx) {
    return tx.error();
  }
  auto st = db_.Prepare(
      "UPDATE authorities SET next_crl_number = next_crl_number + 1 WHERE name = ? "
      "RETURNING next_crl_number - 1");
  if (!st) {
    return st.error();
  }
  st->Bind(1, issuer);
  auto row = st->Step();
  if (!row) {
    return row.error();
  }
  if (!*row) {
    return Error(Code::kNotFound, "no authority named '" + issuer + "'");
  }
  auto number = static_cast<uint64_t>(st->ColumnInt(0));
  if (auto done = st->Step(); !done) {
    return done.error();
  }
  if (Status s = tx->Commit(); !s) {
    return s.error();
  }
  return number;
}

}  // namespace hallmark::ca
