#include "registry/internal/line_reader.h"

#include <cstring>

namespace hallmark::registry::internal {

bool LineReader::Fill() {
  if (eof_) {
    return false;
  }
  in_.read(buf_.data(), static_cast<std::streamsize>(buf_.size()));
  end_ = static_cast<size_t>(in_.gcount());
  pos_ = 0;
  if (end_ == 0) {
    eof_ = true;
  }
  return end_ > 0;
}

Result<bool> LineReader::Next(std::string* line) {
  line->clear();
  bool any = false;
  for (;;) {
    if (pos_ == end_ && !Fill()) {
      if (in_.bad()) {
        return Error(Code::kUnavailable, "cannot read line " + std::to_string(line_number_ + 1));
      }
      if (!any) {
        return false;
      }
      break;
    }
    any = true;
    const char* start = buf_.data() + pos_;
    const auto* nl = static_cast<const char*>(std::memchr(start, '\n', end_ - pos_));
    size_t n = nl != nullptr ? static_cast<size_t>(nl - start) : end_ - pos_;
    if (line->size() + n > max_line_ + 1) {
      return Error(Code::kOutOfRange, "line " + std::to_string(line_number_ + 1) +
                                          " is longer than " + std::to_string(max_line_) +
                                          " bytes");
    }
    line->append(start, n);
    pos_ += n;
    if (nl != nullptr) {
      ++pos_;
      break;
    }
  }
  if (!line->empty() && line->back() == '\r') {
    line->pop_back();
  }
  if (line->size() > max_line_) {
    return Error(Code::kOutOfRange, "line " + std::to_string(line_number_ + 1) +
                                        " is longer than " + std::to_string(max_line_) + " bytes");
  }
  ++line_number_;
  return true;
}

}  // namespace hallmark::registry::internal
