// cllstr::svtr_local_attention — schema and the argument checks shared by the CPU and CUDA kernels.
//
// SVTR's Local mixing: multi-head attention where each query of an H x W token grid sees only the keys inside the
// kh x kw window centred on it, truncated at the grid borders (not shifted):
//   q, k, v:  (B, heads, N = H*W, d) float32/float16/bfloat16/float64, any strides
//   returns   out (B, heads, N, d) in q's dtype — softmax(scale * q k^T) v over the window — stored as a
//             (B, N, heads, d) buffer so that merging the heads is a view — and lse (B, heads, N) float32
//             (float64 for float64 q), the log of the softmax normaliser, kept for the backward. float16/bfloat16
//             accumulate in float32.
// svtr_local_attention_backward takes grad_out and the forward's inputs and outputs and returns grad_q, grad_k, grad_v.
#include "ops/svtr_local_attention.h"

#include <torch/library.h>

namespace cllstr {
namespace ops {

namespace {

bool floating(at::ScalarType dt) {
  return dt == at::kFloat || dt == at::kHalf || dt == at::kBFloat16 || dt == at::kDouble;
}

}  // namespace

LocalWindow check_svtr_local_attention_args(const char* op, const at::Tensor& q, const at::Tensor& k,
                                            const at::Tensor& v, at::IntArrayRef grid, at::IntArrayRef window) {
  TORCH_CHECK_VALUE(q.dim() == 4, op, ": q must be 4-D (B, heads, N, d), got ", q.dim(), "-D with shape ", q.sizes());
  TORCH_CHECK_TYPE(floating(q.scalar_type()), op, ": q must be float32, float16, bfloat16 or float64, got ",
                   q.scalar_type());
  const std::pair<const char*, const at::Tensor*> others[] = {{"k", &k}, {"v", &v}};
  for (const auto& [name, t] : others) {
    TORCH_CHECK_VALUE(t->sizes() == q.sizes(), op, ": ", name, " must have the shape of q ", q.sizes(), ", got ",
                      t->sizes());
    TORCH_CHECK_TYPE(t->scalar_type() == q.scalar_type(), op, ": ", name, " must have the dtype of q (",
                     q.scalar_type(), "), got ", t->scalar_type());
    TORCH_CHECK_VALUE(t->device() == q.device(), op, ": ", name, " is on ", t->device(), " but q is on ", q.device());
  }
  TORCH_CHECK_VALUE(grid.size() == 2, op, ": grid must be (H, W), got ", grid.size(), " values");
  TORCH_CHECK_VALUE(grid[0] > 0 && grid[1] > 0, op, ": grid must be positive, got ", grid);
  TORCH_CHECK_VALUE(grid[0] * grid[1] == q.size(2), op, ": grid ", grid, " has ", grid[0] * grid[1],
                    " tokens but q has N=", q.size(2));
  TORCH_CHECK_VALUE(window.size() == 2, op, ": window must be (kh, kw), got ", window.size(), " values");
  TORCH_CHECK_VALUE(window[0] > 0 && window[1] > 0 && window[0] % 2 == 1 && window[1] % 2 == 1, op,
                    ": window must be odd and positive (a centred window), got ", window);
  TORCH_CHECK_VALUE(q.size(3) > 0, op, ": q has head dimension d == 0");
  return LocalWindow{grid[0], grid[1], std::min(window[0] / 2, grid[0] - 1), std::min(window[1] / 2, grid[1] - 1)};
}

void check_like_q(const char* op, const char* name, const at::Tensor& t, const at::Tensor& q) {
  TORCH_CHECK_VALUE(t.sizes() == q.sizes(), op, ": ", name, " must have the shape of q ", q.sizes(), ", got ",
                    t.sizes());
  TORCH_CHECK_TYPE(t.scalar_type() == q.scalar_type(), op, ": ", name, " must have the dtype of q (", q.scalar_type(),
                   "), got ", t.scalar_type());
  TORCH_CHECK_VALUE(t.device() == q.device(), op, ": ", name, " is on ", t.device(), " but q is on ", q.device());
}

void check_lse(const char* op, const at::Tensor& lse, const at::Tensor& q) {
  TORCH_CHECK_VALUE(lse.dim() == 3 && lse.size(0) == q.size(0) && lse.size(1) == q.size(1) && lse.size(2) == q.size(2),
                    op, ": lse must be (B, heads, N) = ", q.sizes().slice(0, 3), ", got ", lse.sizes());
  const auto acc = q.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
  TORCH_CHECK_TYPE(lse.scalar_type() == acc, op, ": lse must be ", acc, " for q of dtype ", q.scalar_type(), ", got ",
                   lse.scalar_type());
  TORCH_CHECK_VALUE(lse.device() == q.device(), op, ": lse is on ", lse.device(), " but q is on ", q.device());
}

}  // namespace ops
}  // namespace cllstr

TORCH_LIBRARY_FRAGMENT(cllstr, m) {
  m.def("svtr_local_attention(Tensor q, Tensor k, Tensor v, int[2] grid, int[2] window, float scale) -> "
        "(Tensor out, Tensor lse)");
  m.def("svtr_local_attention_backward(Tensor grad_out, Tensor q, Tensor k, Tensor v, Tensor out, Tensor lse, "
        "int[2] grid, int[2] window, float scale) -> (Tensor grad_q, Tensor grad_k, Tensor grad_v)");
}
