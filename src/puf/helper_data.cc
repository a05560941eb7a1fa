#include "puf/helper_data.h"

#include <algorithm>
#include <string>

#include "puf/internal/bch.h"

namespace hallmark::puf {
namespace {

constexpr std::array<uint8_t, 4> kMagic = {'H', 'P', 'U', 'F'};
constexpr size_t kHeaderBytes = 4 + 1 + 1 + 1 + 2 + 2 + 1 + 4 + HelperData::kSaltBytes;

void PutU16(Bytes& out, uint16_t v) {
  out.push_back(static_cast<uint8_t>(v >> 8));
  out.push_back(static_cast<uint8_t>(v));
}

void PutU32(Bytes& out, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) {
    out.push_back(static_cast<uint8_t>(v >> shift));
  }
}

// Reader walks the file; every getter is bounds-checked by the length check before it.
class Reader {
 public:
  explicit Reader(std::span<const uint8_t> data) : data_(data) {}
  uint8_t U8() { return data_[pos_++]; }
  uint16_t U16() {
    auto v = static_cast<uint16_t>((data_[pos_] << 8) | data_[pos_ + 1]);
    pos_ += 2;
    return v;
  }
  uint32_t U32() {
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) {
      v = (v << 8) | data_[pos_++];
    }
    return v;
  }
  std::span<const uint8_t> Take(size_t n) {
    auto s = data_.subspan(pos_, n);
    pos_ += n;
    return s;
  }

 private:
  std::span<const uint8_t> data_;
  size_t pos_ = 0;
};

Error Malformed(const std::string& what) {
  return Error(Code::kDataLoss, "PUF helper data is malformed: " + what);
}

// TakeBits reads a packed bit field of `count` bits and insists on zero padding, so that every
// bit of the file means something (and a flipped padding bit is noticed before the tag).
Result<Bits> TakeBits(Reader& r, size_t count, const std::string& field) {
  std::span<const uint8_t> packed = r.Take((count + 7) / 8);
  if (count % 8 != 0 && (packed.back() & (0xffu >> (count % 8))) != 0) {
    return Malformed(field + " has non-zero padding bits");
  }
  return UnpackBits(packed, count);
}

}  // namespace

Bytes HelperData::TaggedBytes() const {
  Bytes out(kMagic.begin(), kMagic.end());
  out.push_back(kVersion);
  out.push_back(static_cast<uint8_t>(debiasing));
  out.push_back(repetition);
  PutU16(out, bch_n);
  PutU16(out, bch_k);
  out.push_back(bch_t);
  PutU32(out, cells);
  out.insert(out.end(), salt.begin(), salt.end());
  if (debiasing == Debiasing::kPairs) {
    Bytes map = PackBits(pair_map);
    out.insert(out.end(), map.begin(), map.end());
  }
  Bytes packed = PackBits(offset);
  out.insert(out.end(), packed.begin(), packed.end());
  return out;
}

Bytes HelperData::Serialize() const {
  Bytes out = TaggedBytes();
  out.insert(out.end(), tag.begin(), tag.end());
  return out;
}

size_t HelperData::FileSize(const ExtractorParams& params, size_t cells) {
  const size_t map_bytes = params.debiasing == Debiasing::kPairs ? (cells / 2 + 7) / 8 : 0;
  return kHeaderBytes + map_bytes + (params.EncodedBits() + 7) / 8 + kTagBytes;
}

Result<HelperData> HelperData::Parse(std::span<const uint8_t> data) {
  if (data.size() < kHeaderBytes + kTagBytes) {
    return Malformed(std::to_string(data.size()) + " bytes is shorter than the header");
  }
  if (!std::equal(kMagic.begin(), kMagic.end(), data.begin())) {
    return Malformed("no \"HPUF\" magic (not a PUF helper data file)");
  }
  Reader r(data.subspan(kMagic.size()));
  HelperData h;
  if (uint8_t version = r.U8(); version != kVersion) {
    return Malformed("unsupported version " + std::to_string(version) + " (this build reads " +
                     std::to_string(kVersion) + ")");
  }
  uint8_t debiasing = r.U8();
  if (debiasing > static_cast<uint8_t>(Debiasing::kPairs)) {
    return Malformed("unknown debiasing mode " + std::to_string(debiasing));
  }
  h.debiasing = static_cast<Debiasing>(debiasing);
  h.repetition = r.U8();
  if (!ValidateParams(h.Params())) {
    return Malformed("repetition " + std::to_string(h.repetition) +
                     " is not an odd length in 1..15");
  }
  h.bch_n = r.U16();
  h.bch_k = r.U16();
  h.bch_t = r.U8();
  const internal::BchCode& bch = internal::BchCode::Bch511();
  if (h.bch_n != bch.n() || h.bch_k != bch.k() || h.bch_t != bch.t()) {
    return Malformed("outer code BCH(" + std::to_string(h.bch_n) + ", " + std::to_string(h.bch_k) +
                     ", t=" + std::to_string(h.bch_t) +
                     ") unsupported; this build uses BCH(511, 295, t=26)");
  }
  h.cells = r.U32();
  const size_t encoded = h.Params().EncodedBits();
  if (h.cells > kMaxCells) {
    return Malformed("refers to " + std::to_string(h.cells) + " cells; at most " +
                     std::to_string(kMaxCells) + " are supported");
  }
  if (h.debiasing == Debiasing::kNone && h.cells != encoded) {
    return Malformed("refers to " + std::to_string(h.cells) + " cells; the code uses " +
                     std::to_string(encoded));
  }
  if (h.debiasing == Debiasing::kPairs && (h.cells % 2 != 0 || h.cells / 2 < encoded)) {
    return Malformed("refers to " + std::to_string(h.cells) + " cells; pair debiasing needs an " +
                     "even count of at least " + std::to_string(2 * encoded));
  }
  const size_t expected = FileSize(h.Params(), h.cells);
  if (data.size() != expected) {
    return Malformed(std::to_string(data.size()) + " bytes; these parameters need " +
                     std::to_string(expected));
  }
  std::span<const uint8_t> salt = r.Take(kSaltBytes);
  std::copy(salt.begin(), salt.end(), h.salt.begin());
  if (h.debiasing == Debiasing::kPairs) {
    auto map = TakeBits(r, h.cells / 2, "pair map");
    if (!map) {
      return map.error();
    }
    h.pair_map = std::move(*map);
    const auto used = static_cast<size_t>(std::count(h.pair_map.begin(), h.pair_map.end(), 1));
    if (used != encoded) {
      return Malformed("pair map selects " + std::to_string(used) + " pairs; the code needs " +
                       std::to_string(encoded));
    }
    if (h.pair_map.back() != 1) {
      return Malformed("pair map does not end with a used pair (cells count is not minimal)");
    }
  }
  auto offset = TakeBits(r, encoded, "code offset");
  if (!offset) {
    return offset.error();
  }
  h.offset = std::move(*offset);
  std::span<const uint8_t> tag = r.Take(kTagBytes);
  std::copy(tag.begin(), tag.end(), h.tag.begin());
  return h;
}

}  // namespace hallmark::puf
