// Error, Result<T> and Status: how every hallmark library reports failure.
//
// Accessors follow `std::expected` (has_value, value, error, operator*, operator->), so that a
// move to C++23 is an alias. Propagate with a plain `if (!r) return r.error();`.
#ifndef HALLMARK_CORE_STATUS_H_
#define HALLMARK_CORE_STATUS_H_

#include <cassert>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>

namespace hallmark {

// Code says what kind of failure happened, so callers (the CLI's exit codes, the server's HTTP
// statuses) can map it in one place.
enum class Code {
  // kOk is never stored in an `Error`; it exists for mapping tables.
  kOk = 0,
  // kInvalidArgument: the input itself is malformed or inconsistent (garbage PEM, a CSR whose
  // signature does not verify, an unknown profile name). Retrying the same input cannot succeed.
  kInvalidArgument,
  // kNotFound: a named thing does not exist (unknown customer, serial, file).
  kNotFound,
  // kAlreadyExists: creating something whose name is taken (customer, CA directory).
  kAlreadyExists,
  // kUnauthenticated: we do not know who you are (no or unverifiable credential).
  kUnauthenticated,
  // kPermissionDenied: we know who you are, or what the input is, and policy says no
  // (RSA-1024 key, CSR asking for CA:TRUE, key file readable by others).
  kPermissionDenied,
  // kFailedPrecondition: the system is not in a state where the operation is allowed
  // (CA not initialised, certificate already revoked, encrypted key without passphrase).
  kFailedPrecondition,
  // kOutOfRange: a value is outside the range the operation accepts (validity beyond limits).
  kOutOfRange,
  // kResourceExhausted: a quota or limit was reached (batch exhausted, too many retries).
  kResourceExhausted,
  // kUnavailable: an external resource could not be reached or used right now (I/O errors,
  // database busy). Retrying later may succeed.
  kUnavailable,
  // kDataLoss: stored data is corrupt or was tampered with.
  kDataLoss,
  // kInternal: a bug or an unexpected library failure. Details go to `detail`.
  kInternal,
};

std::string_view CodeName(Code code);

// Error is a failure: a code, a message for whoever asked (with the values that matter), and an
// optional `detail` for logs only (for example the OpenSSL error queue). Never send `detail` to a
// remote peer.
class Error {
 public:
  Error(Code code, std::string message, std::string detail = {})
      : code_(code), message_(std::move(message)), detail_(std::move(detail)) {
    assert(code != Code::kOk);
  }

  Code code() const { return code_; }
  const std::string& message() const { return message_; }
  const std::string& detail() const { return detail_; }

  // WithContext returns a copy whose message is prefixed by `context: `.
  Error WithContext(std::string_view context) const {
    return Error(code_, std::string(context) + ": " + message_, detail_);
  }

  // ToString is "message (detail)" for logs and the CLI's stderr.
  std::string ToString() const {
    return detail_.empty() ? message_ : message_ + " (" + detail_ + ")";
  }

 private:
  Code code_;
  std::string message_;
  std::string detail_;
};

inline std::ostream& operator<<(std::ostream& os, const Error& e) {
  return os << CodeName(e.code()) << ": " << e.ToString();
}

// Result<T> holds a T or an Error.
template <typename T>
class [[nodiscard]] Result {
 public:
  using value_type = T;

  Result(const T& value) : v_(value) {}          // NOLINT(google-explicit-constructor)
  Result(T&& value) : v_(std::move(value)) {}    // NOLINT(google-explicit-constructor)
  Result(Error error) : v_(std::move(error)) {}  // NOLINT(google-explicit-constructor)
  template <typename U>
  requires(std::is_constructible_v<T, U&&> && !std::is_same_v<std::decay_t<U>, T> &&
           !std::is_same_v<std::decay_t<U>, Error> && !std::is_same_v<std::decay_t<U>, Result<T>>)
      Result(U&& value)
      : v_(T(std::forward<U>(value))) {}  // NOLINT(google-explicit-constructor)

  bool has_value() const { return v_.index() == 0; }
  explicit operator bool() const { return has_value(); }

  T& value() & {
    assert(has_value());
    return std::get<0>(v_);
  }
  const T& value() const& {
    assert(has_value());
    return std::get<0>(v_);
  }
  T&& value() && {
    assert(has_value());
    return std::get<0>(std::move(v_));
  }
  const Error& error() const {
    assert(!has_value());
    return std::get<1>(v_);
  }

  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

 private:
  std::variant<T, Error> v_;
};

// Result<void> (alias `Status`) is success or an Error.
template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : error_(std::move(error)) {}  // NOLINT(google-explicit-constructor)

  bool has_value() const { return !error_.has_value(); }
  explicit operator bool() const { return has_value(); }
  void value() const { assert(has_value()); }
  const Error& error() const {
    assert(!has_value());
    return *error_;
  }

 private:
  std::optional<Error> error_;
};

using Status = Result<void>;

inline Status OkStatus() { return Status(); }

}  // namespace hallmark

#endif  // HALLMARK_CORE_STATUS_H_
