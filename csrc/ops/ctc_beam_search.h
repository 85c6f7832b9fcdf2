#pragma once
// Shared declarations of cllstr::ctc_beam_search: the argument checks run by every backend.
#include <ATen/core/Tensor.h>

#include <c10/util/Optional.h>

#include <cstdint>

namespace cllstr {
namespace ops {

// Checks shapes, dtypes, scalar arguments and the lengths values (0 <= lengths[b] <= T) on any device; when a trie is
// given, checks that its four tensors are consistent (offsets non-decreasing from 0 to E, tokens and children in
// range) so that no kernel can read out of bounds. Returns whether a trie is given.
bool check_ctc_beam_search_args(const at::Tensor& log_probs, const at::Tensor& lengths, int64_t blank,
                                int64_t beam_width, int64_t top_k, int64_t top_n, double cutoff,
                                const c10::optional<at::Tensor>& trie_offsets,
                                const c10::optional<at::Tensor>& trie_tokens,
                                const c10::optional<at::Tensor>& trie_children,
                                const c10::optional<at::Tensor>& trie_is_word, double oov_penalty);

// Most candidate characters a step can need: the beam search is exact (equal to trying every class) with the 2K
// most probable non-blank classes, since a beam's K best extensions skip at most K-1 classes that merge into other
// beams and its own last class (beam::exact_num_chars gives the step's own need); top_n > 0 lowers it.
inline int64_t ctc_beam_search_num_chars(int64_t C, int64_t beam_width, int64_t top_n) {
  int64_t m = C - 1;
  if (2 * beam_width < m) m = 2 * beam_width;
  if (top_n > 0 && top_n < m) m = top_n;
  return m < 0 ? 0 : m;
}

}  // namespace ops
}  // namespace cllstr
