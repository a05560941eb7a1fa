#include "registry/tree_head.h"

#include <charconv>
#include <nlohmann/json.hpp>

#include "core/encoding.h"
#include "core/signature_memo.h"
#include "registry/record.h"

namespace hallmark::registry {

std::string CanonicalTreeHead(const TreeHead& head) {
  std::string out(kTreeHeadMagic);
  out.append("\ntree_size=")
      .append(std::to_string(head.tree_size))
      .append("\nroot_hash=")
      .append(HashHex(head.root_hash))
      .append("\ntimestamp=")
      .append(std::to_string(head.timestamp))
      .append("\n");
  return out;
}

Result<TreeHead> ParseCanonicalTreeHead(std::string_view text) {
  auto bad = [&text]() {
    return Error(Code::kInvalidArgument,
                 "not a canonical tree head: '" + std::string(text.substr(0, 200)) + "'");
  };
  constexpr std::string_view kSize = "\ntree_size=";
  constexpr std::string_view kRoot = "\nroot_hash=";
  constexpr std::string_view kTime = "\ntimestamp=";
  if (text.substr(0, kTreeHeadMagic.size()) != kTreeHeadMagic) {
    return bad();
  }
  size_t size_at = kTreeHeadMagic.size();
  size_t root_at = text.find(kRoot);
  size_t time_at = text.find(kTime);
  if (text.substr(size_at, kSize.size()) != kSize || root_at == std::string_view::npos ||
      time_at == std::string_view::npos || root_at > time_at) {
    return bad();
  }
  TreeHead head;
  std::string_view size = text.substr(size_at + kSize.size(), root_at - size_at - kSize.size());
  auto [size_end, size_ec] =
      std::from_chars(size.data(), size.data() + size.size(), head.tree_size);
  if (size_ec != std::errc() || size_end != size.data() + size.size()) {
    return bad();
  }
  auto root = HashFromHex(text.substr(root_at + kRoot.size(), time_at - root_at - kRoot.size()));
  if (!root) {
    return bad();
  }
  head.root_hash = *root;
  std::string_view time = text.substr(time_at + kTime.size());
  if (time.empty() || time.back() != '\n') {
    return bad();
  }
  time.remove_suffix(1);
  auto [time_end, time_ec] =
      std::from_chars(time.data(), time.data() + time.size(), head.timestamp);
  if (time_ec != std::errc() || time_end != time.data() + time.size()) {
    return bad();
  }
  // Only the canonical spelling (no leading zeros, lowercase hex) is accepted.
  if (CanonicalTreeHead(head) != text) {
    return bad();
  }
  return head;
}

Status SignTreeHead(const PrivateKey& key, TreeHead* head) {
  std::string text = CanonicalTreeHead(*head);
  auto sig = key.Sign(AsBytes(text));
  if (!sig) {
    return sig.error();
  }
  head->signature = std::move(*sig);
  return OkStatus();
}

Status VerifyTreeHead(const PublicKey& key, const TreeHead& head) {
  std::string text = CanonicalTreeHead(head);
  if (auto s = SignatureMemo::Shared().Verify(key, AsBytes(text), head.signature); !s) {
    return Error(Code::kUnauthenticated, "signature of the tree head of size " +
                                             std::to_string(head.tree_size) +
                                             " does not verify with the registrar key");
  }
  return OkStatus();
}

std::string TreeHeadToJson(const TreeHead& head) {
  nlohmann::json j = {{"tree_size", head.tree_size},
                      {"root_hash", HashHex(head.root_hash)},
                      {"timestamp", head.timestamp},
                      {"signer", head.signer},
                      {"signature", Base64Encode(head.signature)}};
  return j.dump();
}

Result<TreeHead> TreeHeadFromJson(std::string_view text) {
  auto j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  auto bad = [](const std::string& why) {
    return Error(Code::kInvalidArgument, "tree head: " + why);
  };
  if (j.is_discarded() || !j.is_object() || !j["tree_size"].is_number_unsigned() ||
      !j["root_hash"].is_string() || !j["timestamp"].is_number_integer() ||
      !j["signature"].is_string()) {
    return bad("expected the JSON object `hallmark registry head` prints");
  }
  TreeHead h;
  h.tree_size = j["tree_size"].get<uint64_t>();
  auto root = HashFromHex(j["root_hash"].get<std::string>());
  if (!root) {
    return bad(root.error().message());
  }
  h.root_hash = *root;
  h.timestamp = j["timestamp"].get<int64_t>();
  h.signer = j.value("signer", std::string(kRegistrarSigner));
  auto sig = Base64Decode(j["signature"].get<std::string>());
  if (!sig) {
    return bad("signature is not Base64");
  }
  h.signature = std::move(*sig);
  return h;
}

}  // namespace hallmark::registry
