#pragma once
// Shared declarations of cllstr::ctc_loss(_backward): the argument checks used by every backend.
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <vector>

namespace cllstr {
namespace ops {

// Checks logits (B, T, C) floating, targets 1-D (concatenated) or 2-D (B, S) padded integer, input_lengths and
// target_lengths (B,) integer, all on logits' device, 0 <= blank < C. `op` names the operator in the messages.
void check_ctc_loss_args(const char* op, const at::Tensor& logits, const at::Tensor& targets,
                         const at::Tensor& input_lengths, const at::Tensor& target_lengths, int64_t blank);

// The targets and lengths as contiguous int64 host tensors, and where each sample's targets start in `targets`' flat
// data (a 2-D targets tensor has its rows at b * S).
struct CtcTargets {
  at::Tensor targets, input_lengths, target_lengths;
  std::vector<int64_t> start;
};

// Checks the values (on the host): 0 <= input_lengths[b] <= T, target_lengths[b] >= 0, the targets they cover fit in
// `targets` and lie in [0, C) without the blank.
CtcTargets check_ctc_loss_values(const char* op, const at::Tensor& targets, const at::Tensor& input_lengths,
                                           const at::Tensor& target_lengths, int64_t T, int64_t C, int64_t blank);

}  // namespace ops
}  // namespace cllstr
