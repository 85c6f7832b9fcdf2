// cllstr::ctc_greedy_decode — schema and the argument checks shared by the CPU and CUDA kernels.
//
// Best-path (greedy) CTC decoding: per time step take the arg-max class, merge repeats, drop blanks.
//   logits:  (B, T, C) float32/float16/bfloat16, raw scores (log_probs=False) or log-probabilities (log_probs=True)
//   lengths: (B,) int32/int64, valid time steps per sequence, 0 <= lengths[b] <= T
//   returns  tokens (B, T) int64 padded with `blank`, out_lengths (B,) int64, confidence (B,) float32 — the product
//            over the valid steps of the per-step maximum probability, as reference STR code reports it.
#include "ops/ctc_greedy_decode.h"

#include <torch/library.h>

namespace cllstr {
namespace ops {

void check_ctc_greedy_decode_args(const at::Tensor& logits, const at::Tensor& lengths, int64_t blank) {
  TORCH_CHECK_VALUE(logits.dim() == 3, "ctc_greedy_decode: logits must be 3-D (B, T, C), got ", logits.dim(),
              "-D with shape ", logits.sizes());
  const auto dt = logits.scalar_type();
  TORCH_CHECK_TYPE(dt == at::kFloat || dt == at::kHalf || dt == at::kBFloat16,
              "ctc_greedy_decode: logits must be float32, float16 or bfloat16, got ", dt);
  TORCH_CHECK_VALUE(lengths.dim() == 1, "ctc_greedy_decode: lengths must be 1-D (B,), got shape ", lengths.sizes());
  TORCH_CHECK_TYPE(lengths.scalar_type() == at::kLong || lengths.scalar_type() == at::kInt,
              "ctc_greedy_decode: lengths must be int64 or int32, got ", lengths.scalar_type());
  TORCH_CHECK_VALUE(lengths.size(0) == logits.size(0), "ctc_greedy_decode: lengths has ", lengths.size(0),
              " entries but logits has batch size ", logits.size(0));
  TORCH_CHECK_VALUE(lengths.device() == logits.device(), "ctc_greedy_decode: lengths is on ", lengths.device(),
              " but logits is on ", logits.device());
  const int64_t C = logits.size(2);
  TORCH_CHECK_VALUE(C > 0, "ctc_greedy_decode: logits has no classes (C == 0)");
  TORCH_CHECK_VALUE(blank >= 0 && blank < C, "ctc_greedy_decode: blank=", blank, " is out of range for C=", C,
              " classes (expected 0 <= blank < C)");
}

void check_ctc_greedy_decode_lengths(int64_t min_len, int64_t max_len, int64_t T) {
  TORCH_CHECK_VALUE(min_len >= 0, "ctc_greedy_decode: lengths must be >= 0, got a length of ", min_len);
  TORCH_CHECK_VALUE(max_len <= T, "ctc_greedy_decode: lengths must be <= T=", T, ", got a length of ", max_len);
}

}  // namespace ops
}  // namespace cllstr

TORCH_LIBRARY_FRAGMENT(cllstr, m) {
  m.def(
      "ctc_greedy_decode(Tensor logits, Tensor lengths, int blank=0, bool log_probs=False) -> "
      "(Tensor tokens, Tensor out_lengths, Tensor confidence)");
}
