#pragma once
// Shared declarations of cllstr::ctc_greedy_decode: the argument checks run by every backend.
#include <ATen/core/Tensor.h>

#include <tuple>

namespace cllstr {
namespace ops {

// Checks shapes, dtypes and the blank index; lengths values are checked by the caller (device-specific).
void check_ctc_greedy_decode_args(const at::Tensor& logits, const at::Tensor& lengths, int64_t blank);

// Checks 0 <= lengths[b] <= T given the minimum and maximum lengths (already read back from the device).
void check_ctc_greedy_decode_lengths(int64_t min_len, int64_t max_len, int64_t T);

}  // namespace ops
}  // namespace cllstr
