// CUDA kernels of cllstr::svtr_local_attention and its backward.
// A block takes a tile of up to 8 consecutive tokens of one grid row, one warp per token, and first copies the tile's
// key window (the union of its tokens' windows: up to kh rows x (8 + kw - 1) columns, K and V, converted to the
// accumulation type) into shared memory; each warp then walks its own window with the lanes over the head dimension
// (one warp-sum per key) and an online softmax. Backward: one pass per query computes grad_q and D = rowsum(grad_out *
// out); one pass per key computes grad_k and grad_v by walking the same window (it is symmetric: key j is in query
// i's window iff i is in j's), so no atomics. A window too large for shared memory reads global memory instead.
#include <ATen/core/Tensor.h>
#include <ATen/Dispatch.h>
#include <ATen/ops/empty.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>
#include <limits>
#include <type_traits>

#include "ops/svtr_local_attention.h"

namespace cllstr {
namespace ops {

namespace {

constexpr int kMaxTile = 8;  // tokens (warps) per block

__device__ __forceinline__ float exp_acc(float x) { return expf(x); }
__device__ __forceinline__ double exp_acc(double x) { return exp(x); }

template <typename T>
__device__ __forceinline__ T warp_sum(T s) {
  for (int off = 16; off > 0; off >>= 1) s += __shfl_xor_sync(0xffffffffu, s, off);
  return s;
}

// A (B, heads, N, d) tensor with unit stride on d.
template <typename scalar_t>
struct Strided {
  const scalar_t* data;
  int64_t s0, s1, s2;
};

template <typename scalar_t>
Strided<scalar_t> strided(const at::Tensor& t) {
  return {t.const_data_ptr<scalar_t>(), t.stride(0), t.stride(1), t.stride(2)};
}

// Geometry of one block: its grid row y, tile columns [x0, x0 + tile), and the region of tokens its windows cover.
struct Tile {
  int64_t bh, b, h;
  int y, x0, ylo, yhi, xlo, xhi, C;
  __device__ Tile(const LocalWindow& g, int64_t NH, int tile) {
    bh = blockIdx.x;
    b = bh / NH;
    h = bh % NH;
    y = blockIdx.y;
    x0 = blockIdx.z * tile;
    ylo = max(0, y - static_cast<int>(g.rh));
    yhi = min(static_cast<int>(g.H) - 1, y + static_cast<int>(g.rh));
    xlo = max(0, x0 - static_cast<int>(g.rw));
    xhi = min(static_cast<int>(g.W) - 1, x0 + tile - 1 + static_cast<int>(g.rw));
    C = xhi - xlo + 1;
  }
};

// The region's token vectors of one tensor: in shared memory (kShared) or read from global memory.
template <typename scalar_t, typename acc_t, bool kShared>
struct Region {
  const acc_t* sh;
  const scalar_t* g;
  int64_t rs;
  int W, ylo, xlo, C, d;
  __device__ __forceinline__ acc_t at(int ky, int kx, int c) const {
    if constexpr (kShared) {
      return sh[((ky - ylo) * C + (kx - xlo)) * d + c];
    } else {
      return static_cast<acc_t>(g[(static_cast<int64_t>(ky) * W + kx) * rs + c]);
    }
  }
};

template <typename scalar_t, typename acc_t, bool kShared>
__device__ Region<scalar_t, acc_t, kShared> load_region(acc_t* sh, const Strided<scalar_t>& t, const Tile& tl,
                                                        const LocalWindow& g, int d) {
  const scalar_t* base = t.data + tl.b * t.s0 + tl.h * t.s1;
  if constexpr (kShared) {
    const int R = tl.yhi - tl.ylo + 1, total = R * tl.C * d;
    for (int idx = threadIdx.x; idx < total; idx += blockDim.x) {
      const int key = idx / d, c = idx - key * d;
      const int ky = tl.ylo + key / tl.C, kx = tl.xlo + key % tl.C;
      sh[idx] = static_cast<acc_t>(base[static_cast<int64_t>(ky * g.W + kx) * t.s2 + c]);
    }
  }
  return {sh, base, t.s2, static_cast<int>(g.W), tl.ylo, tl.xlo, tl.C, d};
}

template <int CPL, typename scalar_t, typename acc_t>
__device__ __forceinline__ void load_own(acc_t (&r)[CPL], const scalar_t* row, int d, acc_t mul) {
#pragma unroll
  for (int j = 0; j < CPL; ++j) {
    const int c = threadIdx.x % 32 + 32 * j;
    r[j] = c < d ? static_cast<acc_t>(row[c]) * mul : acc_t(0);
  }
}

template <int CPL, typename RegionT, typename acc_t>
__device__ __forceinline__ acc_t dot(const acc_t (&a)[CPL], const RegionT& reg, int ky, int kx, int d) {
  acc_t s = 0;
#pragma unroll
  for (int j = 0; j < CPL; ++j) {
    const int c = threadIdx.x % 32 + 32 * j;
    if (c < d) s += a[j] * reg.at(ky, kx, c);
  }
  return warp_sum(s);
}

template <typename scalar_t, typename acc_t, int CPL, bool kShared>
__global__ void forward_kernel(Strided<scalar_t> q, Strided<scalar_t> k, Strided<scalar_t> v, LocalWindow g,
                               int64_t NH, int d, int tile, acc_t scale, scalar_t* __restrict__ out,
                               acc_t* __restrict__ lse) {
  extern __shared__ __align__(16) unsigned char smem[];
  const Tile tl(g, NH, tile);
  const int R = tl.yhi - tl.ylo + 1;
  acc_t* shk = reinterpret_cast<acc_t*>(smem);
  const auto K = load_region<scalar_t, acc_t, kShared>(shk, k, tl, g, d);
  const auto V = load_region<scalar_t, acc_t, kShared>(shk + R * tl.C * d, v, tl, g, d);
  if constexpr (kShared) __syncthreads();
  const int x = tl.x0 + threadIdx.x / 32;
  if (x >= g.W) return;
  const int64_t n = static_cast<int64_t>(tl.y) * g.W + x, N = g.H * g.W;
  acc_t qr[CPL], acc[CPL];
  load_own<CPL>(qr, q.data + tl.b * q.s0 + tl.h * q.s1 + n * q.s2, d, scale);
#pragma unroll
  for (int j = 0; j < CPL; ++j) acc[j] = 0;
  acc_t m = -INFINITY, l = 0;
  const int kx0 = max(0, x - static_cast<int>(g.rw)), kx1 = min(static_cast<int>(g.W) - 1, x + static_cast<int>(g.rw));
  for (int ky = tl.ylo; ky <= tl.yhi; ++ky) {
    for (int kx = kx0; kx <= kx1; ++kx) {
      const acc_t s = dot<CPL>(qr, K, ky, kx, d);
      const acc_t m_new = max(m, s);
      const acc_t corr = exp_acc(m - m_new), p = exp_acc(s - m_new);
      l = l * corr + p;
#pragma unroll
      for (int j = 0; j < CPL; ++j) {
        const int c = threadIdx.x % 32 + 32 * j;
        acc[j] = acc[j] * corr + (c < d ? p * V.at(ky, kx, c) : acc_t(0));
      }
      m = m_new;
    }
  }
  scalar_t* o = out + ((tl.b * N + n) * NH + tl.h) * d;  // the (B, N, heads, d) buffer
#pragma unroll
  for (int j = 0; j < CPL; ++j) {
    const int c = threadIdx.x % 32 + 32 * j;
    if (c < d) o[c] = static_cast<scalar_t>(acc[j] / l);
  }
  if (threadIdx.x % 32 == 0) lse[tl.bh * N + n] = m + log(l);
}

// grad_q and D = rowsum(grad_out * out), one warp per query; the region holds K and V.
template <typename scalar_t, typename acc_t, int CPL, bool kShared>
__global__ void grad_q_kernel(Strided<scalar_t> go, Strided<scalar_t> q, Strided<scalar_t> k, Strided<scalar_t> v,
                              Strided<scalar_t> out, const acc_t* __restrict__ lse, LocalWindow g, int64_t NH, int d,
                              int tile, acc_t scale, scalar_t* __restrict__ grad_q, acc_t* __restrict__ dD) {
  extern __shared__ __align__(16) unsigned char smem[];
  const Tile tl(g, NH, tile);
  const int R = tl.yhi - tl.ylo + 1;
  acc_t* sh = reinterpret_cast<acc_t*>(smem);
  const auto K = load_region<scalar_t, acc_t, kShared>(sh, k, tl, g, d);
  const auto V = load_region<scalar_t, acc_t, kShared>(sh + R * tl.C * d, v, tl, g, d);
  if constexpr (kShared) __syncthreads();
  const int x = tl.x0 + threadIdx.x / 32;
  if (x >= g.W) return;
  const int64_t n = static_cast<int64_t>(tl.y) * g.W + x, N = g.H * g.W;
  acc_t qr[CPL], gr[CPL], orr[CPL], dq[CPL];
  load_own<CPL>(qr, q.data + tl.b * q.s0 + tl.h * q.s1 + n * q.s2, d, scale);
  load_own<CPL>(gr, go.data + tl.b * go.s0 + tl.h * go.s1 + n * go.s2, d, acc_t(1));
  load_own<CPL>(orr, out.data + tl.b * out.s0 + tl.h * out.s1 + n * out.s2, d, acc_t(1));
  acc_t D = 0;
#pragma unroll
  for (int j = 0; j < CPL; ++j) {
    D += gr[j] * orr[j];
    dq[j] = 0;
  }
  D = warp_sum(D);
  const acc_t li = lse[tl.bh * N + n];
  const int kx0 = max(0, x - static_cast<int>(g.rw)), kx1 = min(static_cast<int>(g.W) - 1, x + static_cast<int>(g.rw));
  for (int ky = tl.ylo; ky <= tl.yhi; ++ky) {
    for (int kx = kx0; kx <= kx1; ++kx) {
      const acc_t p = exp_acc(min(dot<CPL>(qr, K, ky, kx, d) - li, acc_t(0)));
      const acc_t ds = p * (dot<CPL>(gr, V, ky, kx, d) - D);
#pragma unroll
      for (int j = 0; j < CPL; ++j) {
        const int c = threadIdx.x % 32 + 32 * j;
        if (c < d) dq[j] += ds * K.at(ky, kx, c);
      }
    }
  }
  scalar_t* o = grad_q + (tl.bh * N + n) * d;
#pragma unroll
  for (int j = 0; j < CPL; ++j) {
    const int c = threadIdx.x % 32 + 32 * j;
    if (c < d) o[c] = static_cast<scalar_t>(dq[j] * scale);
  }
  if (threadIdx.x % 32 == 0) dD[tl.bh * N + n] = D;
}

// grad_k and grad_v, one warp per key, walking the queries whose window holds it; the region holds Q and grad_out.
template <typename scalar_t, typename acc_t, int CPL, bool kShared>
__global__ void grad_kv_kernel(Strided<scalar_t> go, Strided<scalar_t> q, Strided<scalar_t> k, Strided<scalar_t> v,
                               const acc_t* __restrict__ lse, const acc_t* __restrict__ dD, LocalWindow g, int64_t NH,
                               int d, int tile, acc_t scale, scalar_t* __restrict__ grad_k,
                               scalar_t* __restrict__ grad_v) {
  extern __shared__ __align__(16) unsigned char smem[];
  const Tile tl(g, NH, tile);
  const int R = tl.yhi - tl.ylo + 1;
  acc_t* sh = reinterpret_cast<acc_t*>(smem);
  const auto Q = load_region<scalar_t, acc_t, kShared>(sh, q, tl, g, d);
  const auto G = load_region<scalar_t, acc_t, kShared>(sh + R * tl.C * d, go, tl, g, d);
  if constexpr (kShared) __syncthreads();
  const int x = tl.x0 + threadIdx.x / 32;
  if (x >= g.W) return;
  const int64_t n = static_cast<int64_t>(tl.y) * g.W + x, N = g.H * g.W;
  acc_t kr[CPL], vr[CPL], dk[CPL], dv[CPL];
  load_own<CPL>(kr, k.data + tl.b * k.s0 + tl.h * k.s1 + n * k.s2, d, scale);
  load_own<CPL>(vr, v.data + tl.b * v.s0 + tl.h * v.s1 + n * v.s2, d, acc_t(1));
#pragma unroll
  for (int j = 0; j < CPL; ++j) dk[j] = dv[j] = 0;
  const acc_t* lrow = lse + tl.bh * N;
  const acc_t* drow = dD + tl.bh * N;
  const int qx0 = max(0, x - static_cast<int>(g.rw)), qx1 = min(static_cast<int>(g.W) - 1, x + static_cast<int>(g.rw));
  for (int qy = tl.ylo; qy <= tl.yhi; ++qy) {
    for (int qx = qx0; qx <= qx1; ++qx) {
      const int64_t i = static_cast<int64_t>(qy) * g.W + qx;
      const acc_t p = exp_acc(min(dot<CPL>(kr, Q, qy, qx, d) - lrow[i], acc_t(0)));
      const acc_t ds = p * (dot<CPL>(vr, G, qy, qx, d) - drow[i]);
#pragma unroll
      for (int j = 0; j < CPL; ++j) {
        const int c = threadIdx.x % 32 + 32 * j;
        if (c < d) {
          dk[j] += ds * Q.at(qy, qx, c);
          dv[j] += p * G.at(qy, qx, c);
        }
      }
    }
  }
  scalar_t* ok = grad_k + (tl.bh * N + n) * d;
  scalar_t* ov = grad_v + (tl.bh * N + n) * d;
#pragma unroll
  for (int j = 0; j < CPL; ++j) {
    const int c = threadIdx.x % 32 + 32 * j;
    if (c < d) {
      ok[c] = static_cast<scalar_t>(dk[j] * scale);
      ov[c] = static_cast<scalar_t>(dv[j]);
    }
  }
}

// Launch geometry: the widest tile whose region fits the opt-in shared memory; 0 bytes means read global memory.
struct Launch {
  dim3 grid, block;
  int tile;
  size_t smem;
};

Launch plan(const LocalWindow& g, int64_t BH, int d, size_t elem) {
  int device = 0, optin = 0;
  C10_CUDA_CHECK(cudaGetDevice(&device));
  C10_CUDA_CHECK(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, device));
  const int64_t R = std::min<int64_t>(2 * g.rh + 1, g.H);
  int tile = static_cast<int>(std::min<int64_t>(kMaxTile, g.W));
  size_t smem = 0;
  for (; tile >= 1; tile /= 2) {
    const int64_t C = std::min<int64_t>(tile + 2 * g.rw, g.W);
    smem = static_cast<size_t>(2 * R * C * d) * elem;
    if (smem <= static_cast<size_t>(optin)) break;
  }
  if (tile < 1) {
    tile = static_cast<int>(std::min<int64_t>(kMaxTile, g.W));
    smem = 0;
  }
  const int64_t tiles = (g.W + tile - 1) / tile;
  TORCH_CHECK(tiles <= 65535 && g.H <= 65535 && BH <= std::numeric_limits<int32_t>::max(),
              "svtr_local_attention (CUDA kernel): grid ", g.H, "x", g.W, " with batch x heads ", BH,
              " is too large for one launch");
  return {dim3(static_cast<unsigned>(BH), static_cast<unsigned>(g.H), static_cast<unsigned>(tiles)),
          dim3(static_cast<unsigned>(32 * tile)), tile, smem};
}

template <typename Kernel>
void allow_smem(Kernel kernel, size_t smem) {
  if (smem > 48 * 1024) {
    C10_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem)));
  }
}

// Calls f(std::integral_constant<int, CPL>) with the channels per lane that cover d (d <= 256).
template <typename F>
void dispatch_cpl(int64_t d, const char* op, F&& f) {
  TORCH_CHECK_VALUE(d <= 256, op, " (CUDA kernel): head dimension d must be <= 256, got ", d);
  if (d <= 32) {
    f(std::integral_constant<int, 1>{});
  } else if (d <= 64) {
    f(std::integral_constant<int, 2>{});
  } else if (d <= 128) {
    f(std::integral_constant<int, 4>{});
  } else {
    f(std::integral_constant<int, 8>{});
  }
}

at::Tensor unit_inner_stride(const at::Tensor& t) { return t.stride(3) == 1 ? t : t.contiguous(); }

std::tuple<at::Tensor, at::Tensor> svtr_local_attention_cuda(const at::Tensor& q_in, const at::Tensor& k_in,
                                                             const at::Tensor& v_in, at::IntArrayRef grid,
                                                             at::IntArrayRef window, double scale) {
  constexpr const char* op = "svtr_local_attention";
  const LocalWindow g = check_svtr_local_attention_args(op, q_in, k_in, v_in, grid, window);
  TORCH_CHECK(q_in.is_cuda(), op, " (CUDA kernel): q must be a CUDA tensor");
  const c10::cuda::CUDAGuard guard(q_in.device());
  const at::Tensor q = unit_inner_stride(q_in), k = unit_inner_stride(k_in), v = unit_inner_stride(v_in);
  const int64_t B = q.size(0), NH = q.size(1), N = q.size(2), d = q.size(3);
  const auto acc_type = q.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
  at::Tensor out = at::empty({B, N, NH, d}, q.options()).transpose(1, 2);
  at::Tensor lse = at::empty({B, NH, N}, q.options().dtype(acc_type));
  if (B * NH == 0) return {out, lse};
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, q.scalar_type(), "svtr_local_attention_cuda", [&] {
    using acc_t = std::conditional_t<std::is_same_v<scalar_t, double>, double, float>;
    const Launch L = plan(g, B * NH, static_cast<int>(d), sizeof(acc_t));
    dispatch_cpl(d, op, [&](auto cpl) {
      constexpr int CPL = decltype(cpl)::value;
      auto args = [&](auto kernel) {
        kernel<<<L.grid, L.block, L.smem, stream>>>(strided<scalar_t>(q), strided<scalar_t>(k), strided<scalar_t>(v),
                                                    g, NH, static_cast<int>(d), L.tile, static_cast<acc_t>(scale),
                                                    out.data_ptr<scalar_t>(), lse.data_ptr<acc_t>());
      };
      if (L.smem > 0) {
        allow_smem(forward_kernel<scalar_t, acc_t, CPL, true>, L.smem);
        args(forward_kernel<scalar_t, acc_t, CPL, true>);
      } else {
        args(forward_kernel<scalar_t, acc_t, CPL, false>);
      }
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    });
  });
  return {out, lse};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> svtr_local_attention_backward_cuda(
    const at::Tensor& grad_out_in, const at::Tensor& q_in, const at::Tensor& k_in, const at::Tensor& v_in,
    const at::Tensor& out_in, const at::Tensor& lse_in, at::IntArrayRef grid, at::IntArrayRef window, double scale) {
  constexpr const char* op = "svtr_local_attention_backward";
  const LocalWindow g = check_svtr_local_attention_args(op, q_in, k_in, v_in, grid, window);
  check_like_q(op, "grad_out", grad_out_in, q_in);
  check_like_q(op, "out", out_in, q_in);
  check_lse(op, lse_in, q_in);
  TORCH_CHECK(q_in.is_cuda(), op, " (CUDA kernel): q must be a CUDA tensor");
  const c10::cuda::CUDAGuard guard(q_in.device());
  const at::Tensor q = unit_inner_stride(q_in), k = unit_inner_stride(k_in), v = unit_inner_stride(v_in);
  const at::Tensor go = unit_inner_stride(grad_out_in), out = unit_inner_stride(out_in), lse = lse_in.contiguous();
  const int64_t B = q.size(0), NH = q.size(1), N = q.size(2), d = q.size(3);
  at::Tensor grad_q = at::empty({B, NH, N, d}, q.options());
  at::Tensor grad_k = at::empty({B, NH, N, d}, q.options());
  at::Tensor grad_v = at::empty({B, NH, N, d}, q.options());
  if (B * NH == 0) return {grad_q, grad_k, grad_v};
  at::Tensor dD = at::empty({B, NH, N}, lse.options());
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, q.scalar_type(), "svtr_local_attention_bwd_cuda", [&] {
    using acc_t = std::conditional_t<std::is_same_v<scalar_t, double>, double, float>;
    const Launch L = plan(g, B * NH, static_cast<int>(d), sizeof(acc_t));
    const auto sq = strided<scalar_t>(q), sk = strided<scalar_t>(k), sv = strided<scalar_t>(v);
    const auto sg = strided<scalar_t>(go), so = strided<scalar_t>(out);
    const acc_t s = static_cast<acc_t>(scale);
    dispatch_cpl(d, op, [&](auto cpl) {
      constexpr int CPL = decltype(cpl)::value;
      auto run_q = [&](auto kernel) {
        kernel<<<L.grid, L.block, L.smem, stream>>>(sg, sq, sk, sv, so, lse.const_data_ptr<acc_t>(), g, NH,
                                                    static_cast<int>(d), L.tile, s, grad_q.data_ptr<scalar_t>(),
                                                    dD.data_ptr<acc_t>());
      };
      auto run_kv = [&](auto kernel) {
        kernel<<<L.grid, L.block, L.smem, stream>>>(sg, sq, sk, sv, lse.const_data_ptr<acc_t>(),
                                                    dD.const_data_ptr<acc_t>(), g, NH, static_cast<int>(d), L.tile, s,
                                                    grad_k.data_ptr<scalar_t>(), grad_v.data_ptr<scalar_t>());
      };
      if (L.smem > 0) {
        allow_smem(grad_q_kernel<scalar_t, acc_t, CPL, true>, L.smem);
        run_q(grad_q_kernel<scalar_t, acc_t, CPL, true>);
        C10_CUDA_KERNEL_LAUNCH_CHECK();
        allow_smem(grad_kv_kernel<scalar_t, acc_t, CPL, true>, L.smem);
        run_kv(grad_kv_kernel<scalar_t, acc_t, CPL, true>);
      } else {
        run_q(grad_q_kernel<scalar_t, acc_t, CPL, false>);
        C10_CUDA_KERNEL_LAUNCH_CHECK();
        run_kv(grad_kv_kernel<scalar_t, acc_t, CPL, false>);
      }
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    });
  });
  return {grad_q, grad_k, grad_v};
}

}  // namespace

TORCH_LIBRARY_IMPL(cllstr, CUDA, m) {
  m.impl("svtr_local_attention", &svtr_local_attention_cuda);
  m.impl("svtr_local_attention_backward", &svtr_local_attention_backward_cuda);
}

}  // namespace ops
}  // namespace cllstr
