#pragma once
// Shared declarations of cllstr::svtr_local_attention(_backward): the argument checks and the window geometry used by
// every backend.
#include <ATen/core/Tensor.h>

#include <algorithm>
#include <cstdint>

namespace cllstr {
namespace ops {

// The window geometry of one call: a grid of H x W tokens, window radii clamped to the grid (a radius past the grid
// adds no key), so that every offset (dy, dx) with |dy| <= rh, |dx| <= rw can reach at least one query/key pair.
struct LocalWindow {
  int64_t H, W, rh, rw;
  int64_t offsets() const { return (2 * rh + 1) * (2 * rw + 1); }
};

// Checks q, k, v (B, heads, N, d) — same shape, dtype and device, floating dtype — the grid (H, W) with H * W == N and
// the window (kh, kw), odd and positive. `op` names the operator in the messages. Returns the clamped geometry.
LocalWindow check_svtr_local_attention_args(const char* op, const at::Tensor& q, const at::Tensor& k,
                                            const at::Tensor& v, at::IntArrayRef grid, at::IntArrayRef window);

// Checks a tensor that must have the shape, dtype and device of q (out, grad_out), or lse: (B, heads, N) in the
// accumulation dtype (float32; float64 for float64 q).
void check_like_q(const char* op, const char* name, const at::Tensor& t, const at::Tensor& q);
void check_lse(const char* op, const at::Tensor& lse, const at::Tensor& q);

}  // namespace ops
}  // namespace cllstr
