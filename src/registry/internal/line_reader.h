// LineReader: reads a stream line by line with a bound on the line length, so a manifest of any
// size is read in constant memory and a file without newlines cannot exhaust it.
#ifndef HALLMARK_REGISTRY_INTERNAL_LINE_READER_H_
#define HALLMARK_REGISTRY_INTERNAL_LINE_READER_H_

#include <cstddef>
#include <cstdint>
#include <istream>
#include <string>
#include <vector>

#include "core/status.h"

namespace hallmark::registry::internal {

// LineReader is not thread-safe.
class LineReader {
 public:
  LineReader(std::istream& in, size_t max_line) : in_(in), max_line_(max_line), buf_(1 << 16) {}

  // Next stores the next line in `line` (without its "\n" or "\r\n") and returns true, or false
  // at the end of the input. kOutOfRange if the line is longer than the bound; kUnavailable if
  // the stream fails.
  Result<bool> Next(std::string* line);
  // line_number is the 1-based number of the line `Next` returned last.
  uint64_t line_number() const { return line_number_; }

 private:
  bool Fill();

  std::istream& in_;
  size_t max_line_;
  std::vector<char> buf_;
  size_t pos_ = 0;
  size_t end_ = 0;
  bool eof_ = false;
  uint64_t line_number_ = 0;
};

}  // namespace hallmark::registry::internal

#endif  // HALLMARK_REGISTRY_INTERNAL_LINE_READER_H_
