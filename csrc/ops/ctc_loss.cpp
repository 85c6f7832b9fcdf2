// cllstr::ctc_loss — schema and the argument checks shared by the kernels.
//
// CTC negative log-likelihood fused with the softmax, on batch-first raw scores, as a recogniser's head emits them:
//   logits:         (B, T, C) float32/float16/bfloat16/float64, raw scores (the log-softmax is part of the op)
//   targets:        int64/int32, 1-D (the targets of all samples, concatenated) or 2-D (B, S) padded
//   input_lengths:  (B,) valid frames per sample, 0 <= input_lengths[b] <= T
//   target_lengths: (B,) target length per sample
//   returns         nll (B,) — -log p(target | logits), summed over alignments; +inf where no alignment fits — and
//                   lse (B, T), the log-softmax normaliser of each valid frame (0 past input_lengths[b]), both
//                   float32 (float64 for float64 logits), kept for the backward.
// ctc_loss_backward(grad_nll, ...) returns d(sum_b grad_nll[b] * nll[b]) / d logits in logits' dtype:
//   grad_nll[b] * (softmax(logits[b, t]) - occupancy of each class at t); zero for frames past input_lengths[b], for
//   samples whose nll is +inf (no alignment: there is nothing to learn from them) and where grad_nll[b] == 0 (a
//   masked sample, even with a NaN loss).
#include "ops/ctc_loss.h"

#include <torch/library.h>

#include <utility>
#include <vector>

namespace cllstr {
namespace ops {

namespace {

bool integral(at::ScalarType dt) { return dt == at::kLong || dt == at::kInt; }

}  // namespace

void check_ctc_loss_args(const char* op, const at::Tensor& logits, const at::Tensor& targets,
                         const at::Tensor& input_lengths, const at::Tensor& target_lengths, int64_t blank) {
  TORCH_CHECK_VALUE(logits.dim() == 3, op, ": logits must be 3-D (B, T, C), got ", logits.dim(), "-D with shape ",
                    logits.sizes());
  const auto dt = logits.scalar_type();
  TORCH_CHECK_TYPE(dt == at::kFloat || dt == at::kHalf || dt == at::kBFloat16 || dt == at::kDouble, op,
                   ": logits must be float32, float16, bfloat16 or float64, got ", dt);
  const int64_t B = logits.size(0), C = logits.size(2);
  TORCH_CHECK_VALUE(C > 0, op, ": logits has no classes (C == 0)");
  TORCH_CHECK_VALUE(blank >= 0 && blank < C, op, ": blank=", blank, " is out of range for C=", C,
                    " classes (expected 0 <= blank < C)");
  TORCH_CHECK_VALUE(targets.dim() == 1 || (targets.dim() == 2 && targets.size(0) == B), op,
                    ": targets must be 1-D (concatenated) or 2-D (B=", B, ", S), got shape ", targets.sizes());
  const std::pair<const char*, const at::Tensor*> ints[] = {
      {"targets", &targets}, {"input_lengths", &input_lengths}, {"target_lengths", &target_lengths}};
  for (const auto& [name, t] : ints) {
    TORCH_CHECK_TYPE(integral(t->scalar_type()), op, ": ", name, " must be int64 or int32, got ", t->scalar_type());
    TORCH_CHECK_VALUE(t->device() == logits.device(), op, ": ", name, " is on ", t->device(), " but logits is on ",
                      logits.device());
  }
  for (const auto& [name, t] : {ints[1], ints[2]}) {
    TORCH_CHECK_VALUE(t->dim() == 1 && t->size(0) == B, op, ": ", name, " must be 1-D with B=", B,
                      " entries, got shape ", t->sizes());
  }
}

CtcTargets check_ctc_loss_values(const char* op, const at::Tensor& targets, const at::Tensor& input_lengths,
                                           const at::Tensor& target_lengths, int64_t T, int64_t C, int64_t blank) {
  const at::Tensor il = input_lengths.to(at::kCPU, at::kLong).contiguous();
  const at::Tensor tl = target_lengths.to(at::kCPU, at::kLong).contiguous();
  const at::Tensor tg = targets.to(at::kCPU, at::kLong).contiguous();
  const int64_t B = il.numel();
  const int64_t* ilp = il.const_data_ptr<int64_t>();
  const int64_t* tlp = tl.const_data_ptr<int64_t>();
  const int64_t* tgp = tg.const_data_ptr<int64_t>();
  const bool padded = targets.dim() == 2;
  const int64_t S = padded ? targets.size(1) : 0;
  std::vector<int64_t> start(B);
  int64_t offset = 0;
  for (int64_t b = 0; b < B; ++b) {
    TORCH_CHECK_VALUE(ilp[b] >= 0 && ilp[b] <= T, op, ": input_lengths[", b, "]=", ilp[b],
                      " is out of range (expected 0 <= input_lengths <= T=", T, ")");
    TORCH_CHECK_VALUE(tlp[b] >= 0, op, ": target_lengths[", b, "]=", tlp[b], " is negative");
    if (padded) {
      TORCH_CHECK_VALUE(tlp[b] <= S, op, ": target_lengths[", b, "]=", tlp[b], " exceeds the S=", S,
                        " columns of targets");
      start[b] = b * S;
    } else {
      TORCH_CHECK_VALUE(offset + tlp[b] <= tg.numel(), op, ": target_lengths sum past the ", tg.numel(),
                        " entries of targets (sample ", b, ")");
      start[b] = offset;
      offset += tlp[b];
    }
    for (int64_t i = start[b]; i < start[b] + tlp[b]; ++i) {
      TORCH_CHECK_VALUE(tgp[i] >= 0 && tgp[i] < C && tgp[i] != blank, op, ": targets of sample ", b,
                        " hold the class ", tgp[i], " (expected 0 <= class < C=", C, ", not the blank ", blank, ")");
    }
  }
  return CtcTargets{tg, il, tl, std::move(start)};
}

}  // namespace ops
}  // namespace cllstr

TORCH_LIBRARY_FRAGMENT(cllstr, m) {
  m.def("ctc_loss(Tensor logits, Tensor targets, Tensor input_lengths, Tensor target_lengths, int blank=0) -> "
        "(Tensor nll, Tensor lse)");
  m.def("ctc_loss_backward(Tensor grad_nll, Tensor logits, Tensor targets, Tensor input_lengths, "
        "Tensor target_lengths, Tensor nll, Tensor lse, int blank=0) -> Tensor");
}
