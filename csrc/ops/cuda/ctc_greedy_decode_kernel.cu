// CUDA kernel of cllstr::ctc_greedy_decode.
// Stage 1: one block per (b, t) row reduces the arg-max (first index on ties, NaN wins) and the softmax normaliser.
// Stage 2: one thread per sequence merges repeats, drops blanks and multiplies the step probabilities.
#include <ATen/core/Tensor.h>
#include <ATen/Dispatch.h>
#include <ATen/ops/aminmax.h>
#include <ATen/ops/empty.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>
#include <limits>

#include "ops/ctc_greedy_decode.h"

namespace cllstr {
namespace ops {

namespace {

constexpr int kThreads = 256;

struct ArgMax {
  float v;
  int64_t i;
};

// Larger value wins; NaN beats everything; on equal values (or two NaNs) the lower index wins.
__device__ __forceinline__ ArgMax better(ArgMax a, ArgMax b) {
  const bool a_nan = a.v != a.v, b_nan = b.v != b.v;
  if (a_nan || b_nan) {
    if (a_nan && b_nan) return a.i <= b.i ? a : b;
    return a_nan ? a : b;
  }
  if (a.v > b.v) return a;
  if (b.v > a.v) return b;
  return a.i <= b.i ? a : b;
}

__device__ __forceinline__ ArgMax warp_argmax(ArgMax a) {
  for (int off = 16; off > 0; off >>= 1) {
    ArgMax o{__shfl_down_sync(0xffffffffu, a.v, off), __shfl_down_sync(0xffffffffu, a.i, off)};
    a = better(a, o);
  }
  return a;
}

__device__ __forceinline__ float warp_sum(float s) {
  for (int off = 16; off > 0; off >>= 1) s += __shfl_down_sync(0xffffffffu, s, off);
  return s;
}

template <typename scalar_t>
__global__ void row_stats_kernel(const scalar_t* __restrict__ logits, const int64_t* __restrict__ lengths, int64_t T,
                                 int64_t C, bool log_probs, int64_t* __restrict__ best, float* __restrict__ logp) {
  const int64_t row = blockIdx.x;
  const int64_t b = row / T, t = row % T;
  if (t >= lengths[b]) return;  // uniform over the block
  const scalar_t* x = logits + row * C;
  __shared__ ArgMax warp_best[kThreads / 32];
  __shared__ float warp_s[kThreads / 32];
  __shared__ ArgMax row_best;
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;

  ArgMax a{-INFINITY, C};
  for (int64_t c = threadIdx.x; c < C; c += blockDim.x) a = better(a, ArgMax{static_cast<float>(x[c]), c});
  a = warp_argmax(a);
  if (lane == 0) warp_best[warp] = a;
  __syncthreads();
  if (warp == 0) {
    a = lane < kThreads / 32 ? warp_best[lane] : ArgMax{-INFINITY, C};
    a = warp_argmax(a);
    if (lane == 0) {
      // An all -inf row leaves index C: the first element is the arg-max then, as in torch.max.
      if (a.i >= C) a.i = 0;
      row_best = a;
    }
  }
  __syncthreads();
  const ArgMax m = row_best;
  if (log_probs || m.v != m.v || isinf(m.v)) {
    if (threadIdx.x == 0) {
      best[row] = m.i;
      logp[row] = log_probs ? m.v : NAN;
    }
    return;
  }
  float s = 0.f;
  for (int64_t c = threadIdx.x; c < C; c += blockDim.x) s += __expf(static_cast<float>(x[c]) - m.v);
  s = warp_sum(s);
  if (lane == 0) warp_s[warp] = s;
  __syncthreads();
  if (warp == 0) {
    s = lane < kThreads / 32 ? warp_s[lane] : 0.f;
    s = warp_sum(s);
    if (lane == 0) {
      best[row] = m.i;
      logp[row] = -logf(s);
    }
  }
}

__global__ void collapse_kernel(const int64_t* __restrict__ best, const float* __restrict__ logp,
                                const int64_t* __restrict__ lengths, int64_t B, int64_t T, int64_t blank,
                                int64_t* __restrict__ tokens, int64_t* __restrict__ out_lengths,
                                float* __restrict__ confidence) {
  const int64_t b = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (b >= B) return;
  const int64_t len = lengths[b];
  int64_t n = 0, prev = -1;
  double sum = 0.0;
  for (int64_t t = 0; t < len; ++t) {
    const int64_t k = best[b * T + t];
    sum += logp[b * T + t];
    if (k != blank && k != prev) tokens[b * T + n++] = k;
    prev = k;
  }
  for (int64_t t = n; t < T; ++t) tokens[b * T + t] = blank;
  out_lengths[b] = n;
  confidence[b] = static_cast<float>(exp(sum));
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> ctc_greedy_decode_cuda(const at::Tensor& logits_in,
                                                                     const at::Tensor& lengths_in, int64_t blank,
                                                                     bool log_probs) {
  check_ctc_greedy_decode_args(logits_in, lengths_in, blank);
  TORCH_CHECK(logits_in.is_cuda(), "ctc_greedy_decode (CUDA kernel): logits must be a CUDA tensor");
  const c10::cuda::CUDAGuard guard(logits_in.device());
  const at::Tensor logits = logits_in.contiguous();
  const at::Tensor lengths = lengths_in.to(at::kLong).contiguous();
  const int64_t B = logits.size(0), T = logits.size(1), C = logits.size(2);
  if (B > 0) {
    const auto mm = at::aminmax(lengths);
    check_ctc_greedy_decode_lengths(std::get<0>(mm).item<int64_t>(), std::get<1>(mm).item<int64_t>(), T);
  }
  at::Tensor tokens = at::empty({B, T}, logits.options().dtype(at::kLong));
  at::Tensor out_lengths = at::empty({B}, logits.options().dtype(at::kLong));
  at::Tensor confidence = at::empty({B}, logits.options().dtype(at::kFloat));
  if (B == 0) return {tokens, out_lengths, confidence};
  at::Tensor best = at::empty({B, T}, logits.options().dtype(at::kLong));
  at::Tensor logp = at::empty({B, T}, logits.options().dtype(at::kFloat));
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  TORCH_CHECK(B * T <= std::numeric_limits<int32_t>::max(), "ctc_greedy_decode (CUDA kernel): logits has ", B * T,
              " rows (batch x time), more than one launch takes (2^31 - 1)");
  if (B * T > 0) {
    AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, logits.scalar_type(), "ctc_greedy_decode_cuda", [&] {
      row_stats_kernel<scalar_t><<<static_cast<unsigned>(B * T), kThreads, 0, stream>>>(
          logits.const_data_ptr<scalar_t>(), lengths.const_data_ptr<int64_t>(), T, C, log_probs,
          best.data_ptr<int64_t>(), logp.data_ptr<float>());
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    });
  }
  const int threads = 128;
  collapse_kernel<<<static_cast<unsigned>((B + threads - 1) / threads), threads, 0, stream>>>(
      best.const_data_ptr<int64_t>(), logp.const_data_ptr<float>(), lengths.const_data_ptr<int64_t>(), B, T, blank,
      tokens.data_ptr<int64_t>(), out_lengths.data_ptr<int64_t>(), confidence.data_ptr<float>());
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return {tokens, out_lengths, confidence};
}

}  // namespace

TORCH_LIBRARY_IMPL(cllstr, CUDA, m) { m.impl("ctc_greedy_decode", &ctc_greedy_decode_cuda); }

}  // namespace ops
}  // namespace cllstr
