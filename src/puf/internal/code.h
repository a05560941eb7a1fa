// The parts of the fuzzy extractor's code that the extractor and its evaluation must agree on:
// which cells carry which encoded bit, and how an inner repetition block is decided.
#ifndef HALLMARK_PUF_INTERNAL_CODE_H_
#define HALLMARK_PUF_INTERNAL_CODE_H_

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "puf/fuzzy_extractor.h"

namespace hallmark::puf::internal {

// SelectPairs returns the indices i of the first `count` pairs of cells (2i, 2i+1) whose values
// in `response` differ (von Neumann). Fewer if the response runs out.
std::vector<uint32_t> SelectPairs(std::span<const uint8_t> response, size_t count);

// BlockDecision decides one inner repetition block from its votes: `first` of the block's
// `repetition` first votes say 1, and with kPairs `second` of its second votes (the inverted
// partner cells) say 1. kNone: majority of the first votes. kPairs: majority of all 2r votes,
// a tie going to the majority of the first votes (r is odd, so that one never ties).
//
// The rule is symmetric under swapping 0 and 1, so with `first`/`second` counting *wrong* votes
// it also says whether the block decodes wrongly; the exact error model uses it that way.
inline bool BlockDecision(int first, int second, int repetition, Debiasing debiasing) {
  if (debiasing == Debiasing::kNone) {
    return 2 * first > repetition;
  }
  const int total = first + second;
  if (total != repetition) {
    return total > repetition;
  }
  return 2 * first > repetition;
}

}  // namespace hallmark::puf::internal

#endif  // HALLMARK_PUF_INTERNAL_CODE_H_
