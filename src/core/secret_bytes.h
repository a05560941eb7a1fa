// SecretBytes: secret material (passphrases, private key encodings, batch secrets) that wipes
// itself on destruction and can only be read through an explicit `SecretAccess` tag, so every use
// shows up in a grep. It has no `operator<<` and is never logged.
#ifndef HALLMARK_CORE_SECRET_BYTES_H_
#define HALLMARK_CORE_SECRET_BYTES_H_

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace hallmark {

// SecretAccess is the tag that unlocks a secret's bytes. Construct it only where the secret must
// leave hallmark's control (writing a key file, handing a passphrase to OpenSSL).
class SecretAccess {
 public:
  static SecretAccess Grant() { return SecretAccess(); }

 private:
  SecretAccess() = default;
};

// SecretBytes is an owned, wipe-on-destroy byte buffer. Not thread-safe; movable, not copyable
// (use `Clone()` when a copy is really needed).
class SecretBytes {
 public:
  SecretBytes() = default;
  explicit SecretBytes(std::span<const uint8_t> bytes);
  explicit SecretBytes(std::string_view text);
  SecretBytes(SecretBytes&& other) noexcept;
  SecretBytes& operator=(SecretBytes&& other) noexcept;
  SecretBytes(const SecretBytes&) = delete;
  SecretBytes& operator=(const SecretBytes&) = delete;
  ~SecretBytes();

  SecretBytes Clone() const { return SecretBytes(std::span<const uint8_t>(bytes_)); }
  size_t size() const { return bytes_.size(); }
  bool empty() const { return bytes_.empty(); }

  std::span<const uint8_t> bytes(SecretAccess) const { return bytes_; }
  std::string_view view(SecretAccess) const {
    return std::string_view(reinterpret_cast<const char*>(bytes_.data()), bytes_.size());
  }

 private:
  void Wipe();
  std::vector<uint8_t> bytes_;
};

// Wipe overwrites a buffer holding a secret with zeros in a way the compiler cannot elide.
void Wipe(std::string& s);

}  // namespace hallmark

#endif  // HALLMARK_CORE_SECRET_BYTES_H_
