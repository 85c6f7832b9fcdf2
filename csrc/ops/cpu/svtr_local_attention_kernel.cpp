// CPU kernels of cllstr::svtr_local_attention and its backward: at::parallel_for (OpenMP in torch's builds) over
// batch x heads; each task works on one head in a transposed (d, N) layout, where the keys at a window offset (dy, dx)
// of a whole query row are a contiguous run of the key row: every inner loop is a plain vectorised pass over grid
// columns (no horizontal reductions, no masked-out work). float16/bfloat16 are converted to float32 on the way in.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <tuple>
#include <type_traits>
#include <vector>

#include "ops/cpu/vec_math.h"
#include "ops/svtr_local_attention.h"

namespace cllstr {
namespace ops {

namespace {

template <typename acc_t>
inline acc_t exp_np(acc_t x) {
  if constexpr (std::is_same_v<acc_t, float>) {
    return cpu::exp_nonpositive(x);
  } else {
    return std::exp(x);
  }
}

// One head, transposed: element (n, t) of a (N, d) matrix lives at [t * N + n].
template <typename acc_t>
struct HeadT {
  const acc_t* q;
  const acc_t* k;
  const acc_t* v;
};

// Valid query columns [xa, xb) for a column offset dx: both x and x + dx inside [0, W).
inline void column_range(int64_t W, int64_t dx, int64_t& xa, int64_t& xb) {
  xa = std::max<int64_t>(0, -dx);
  xb = std::min<int64_t>(W, W - dx);
}

// s[x] = scale * sum_t a[t*N + x] * b[t*N + x + shift] for x in [xa, xb).
template <typename acc_t>
__attribute__((always_inline)) inline void shifted_dot(const acc_t* __restrict a, const acc_t* __restrict b,
                                                       int64_t N, int64_t d, int64_t xa, int64_t xb, acc_t scale,
                                                       acc_t* __restrict s) {
  for (int64_t x = xa; x < xb; ++x) s[x] = 0;
  for (int64_t t = 0; t < d; ++t) {
    const acc_t* ar = a + t * N;
    const acc_t* br = b + t * N;
#pragma omp simd
    for (int64_t x = xa; x < xb; ++x) s[x] += ar[x] * br[x];
  }
  for (int64_t x = xa; x < xb; ++x) s[x] *= scale;
}

// Forward of one head. S: (offsets, W) scores of one query row; o: (d, W) accumulator; m, l: (W).
template <typename acc_t>
__attribute__((always_inline)) inline void forward_head_impl(HeadT<acc_t> h, const LocalWindow& g, int64_t d,
                                                             acc_t scale, acc_t* S, acc_t* o, acc_t* m, acc_t* l,
                                                             acc_t* out_t, acc_t* lse) {
  const int64_t H = g.H, W = g.W, N = H * W, kw = 2 * g.rw + 1;
  for (int64_t y = 0; y < H; ++y) {
    const int64_t dy0 = std::max(-g.rh, -y), dy1 = std::min(g.rh, H - 1 - y);
    for (int64_t x = 0; x < W; ++x) {
      m[x] = -std::numeric_limits<acc_t>::infinity();
      l[x] = 0;
    }
    for (int64_t dy = dy0; dy <= dy1; ++dy) {
      for (int64_t dx = -g.rw; dx <= g.rw; ++dx) {
        int64_t xa, xb;
        column_range(W, dx, xa, xb);
        acc_t* s = S + ((dy + g.rh) * kw + dx + g.rw) * W;
        shifted_dot(h.q + y * W, h.k + (y + dy) * W + dx, N, d, xa, xb, scale, s);
#pragma omp simd
        for (int64_t x = xa; x < xb; ++x) m[x] = std::max(m[x], s[x]);
      }
    }
    std::fill(o, o + d * W, acc_t(0));
    for (int64_t dy = dy0; dy <= dy1; ++dy) {
      for (int64_t dx = -g.rw; dx <= g.rw; ++dx) {
        int64_t xa, xb;
        column_range(W, dx, xa, xb);
        acc_t* s = S + ((dy + g.rh) * kw + dx + g.rw) * W;
#pragma omp simd
        for (int64_t x = xa; x < xb; ++x) {
          s[x] = exp_np<acc_t>(s[x] - m[x]);
          l[x] += s[x];
        }
        const acc_t* vb = h.v + (y + dy) * W + dx;
        for (int64_t t = 0; t < d; ++t) {
          acc_t* orow = o + t * W;
          const acc_t* vr = vb + t * N;
#pragma omp simd
          for (int64_t x = xa; x < xb; ++x) orow[x] += s[x] * vr[x];
        }
      }
    }
    for (int64_t x = 0; x < W; ++x) {
      const acc_t inv = acc_t(1) / l[x];
      for (int64_t t = 0; t < d; ++t) out_t[(y * W + x) * d + t] = o[t * W + x] * inv;
      lse[y * W + x] = m[x] + std::log(l[x]);
    }
  }
}

// Backward of one head (transposed inputs; dq/dk/dv transposed accumulators, zeroed by the caller). dD: (N) the row
// sums of grad_out * out; s, p, dp: (W) scratch.
template <typename acc_t>
__attribute__((always_inline)) inline void backward_head_impl(HeadT<acc_t> h, const acc_t* go, const acc_t* lse,
                                                              const acc_t* dD, const LocalWindow& g, int64_t d,
                                                              acc_t scale, acc_t* s, acc_t* dp, acc_t* dq, acc_t* dk,
                                                              acc_t* dv) {
  const int64_t H = g.H, W = g.W, N = H * W;
  for (int64_t y = 0; y < H; ++y) {
    const int64_t dy0 = std::max(-g.rh, -y), dy1 = std::min(g.rh, H - 1 - y);
    const acc_t* lrow = lse + y * W;
    const acc_t* drow = dD + y * W;
    for (int64_t dy = dy0; dy <= dy1; ++dy) {
      for (int64_t dx = -g.rw; dx <= g.rw; ++dx) {
        int64_t xa, xb;
        column_range(W, dx, xa, xb);
        const int64_t qoff = y * W, koff = (y + dy) * W + dx;
        shifted_dot(h.q + qoff, h.k + koff, N, d, xa, xb, scale, s);
        shifted_dot(go + qoff, h.v + koff, N, d, xa, xb, acc_t(1), dp);
#pragma omp simd
        for (int64_t x = xa; x < xb; ++x) {
          s[x] = exp_np<acc_t>(std::min<acc_t>(s[x] - lrow[x], 0));  // the probability p
          dp[x] = s[x] * (dp[x] - drow[x]) * scale;                   // d loss / d (q . k)
        }
        for (int64_t t = 0; t < d; ++t) {
          const int64_t r = t * N;
          acc_t* __restrict dqr = dq + r + qoff;
          acc_t* __restrict dkr = dk + r + koff;
          acc_t* __restrict dvr = dv + r + koff;
          const acc_t* kr = h.k + r + koff;
          const acc_t* qr = h.q + r + qoff;
          const acc_t* gr = go + r + qoff;
#pragma omp simd
          for (int64_t x = xa; x < xb; ++x) {
            dqr[x] += dp[x] * kr[x];
            dkr[x] += dp[x] * qr[x];
            dvr[x] += s[x] * gr[x];
          }
        }
      }
    }
  }
}

// Compiled for several instruction sets; the loader picks the best the processor has (GCC function multi-versioning).
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define CLLSTR_CLONES __attribute__((target_clones("arch=haswell", "default")))
#else
#define CLLSTR_CLONES
#endif

CLLSTR_CLONES void forward_head(HeadT<float> h, const LocalWindow& g, int64_t d, float scale, float* S, float* o,
                                float* m, float* l, float* out_t, float* lse) {
  forward_head_impl<float>(h, g, d, scale, S, o, m, l, out_t, lse);
}
void forward_head(HeadT<double> h, const LocalWindow& g, int64_t d, double scale, double* S, double* o, double* m,
                  double* l, double* out_t, double* lse) {
  forward_head_impl<double>(h, g, d, scale, S, o, m, l, out_t, lse);
}
CLLSTR_CLONES void backward_head(HeadT<float> h, const float* go, const float* lse, const float* dD,
                                 const LocalWindow& g, int64_t d, float scale, float* s, float* dp, float* dq,
                                 float* dk, float* dv) {
  backward_head_impl<float>(h, go, lse, dD, g, d, scale, s, dp, dq, dk, dv);
}
void backward_head(HeadT<double> h, const double* go, const double* lse, const double* dD, const LocalWindow& g,
                   int64_t d, double scale, double* s, double* dp, double* dq, double* dk, double* dv) {
  backward_head_impl<double>(h, go, lse, dD, g, d, scale, s, dp, dq, dk, dv);
}

// A (B, heads, N, d) tensor with unit stride on d, read head by head.
template <typename scalar_t>
struct Strided {
  const scalar_t* data;
  int64_t s0, s1, s2;
  explicit Strided(const at::Tensor& t)
      : data(t.const_data_ptr<scalar_t>()), s0(t.stride(0)), s1(t.stride(1)), s2(t.stride(2)) {}
  const scalar_t* head(int64_t b, int64_t h) const { return data + b * s0 + h * s1; }
};

// Copies one head (N rows of d, row stride rs) into the transposed (d, N) buffer dst, converting to acc_t.
template <typename scalar_t, typename acc_t>
void load_transposed(const scalar_t* src, int64_t rs, int64_t N, int64_t d, acc_t* dst) {
  for (int64_t n = 0; n < N; ++n) {
    const scalar_t* row = src + n * rs;
    for (int64_t t = 0; t < d; ++t) dst[t * N + n] = static_cast<acc_t>(row[t]);
  }
}

at::Tensor unit_inner_stride(const at::Tensor& t) { return t.stride(3) == 1 ? t : t.contiguous(); }

std::tuple<at::Tensor, at::Tensor> svtr_local_attention_cpu(const at::Tensor& q_in, const at::Tensor& k_in,
                                                            const at::Tensor& v_in, at::IntArrayRef grid,
                                                            at::IntArrayRef window, double scale) {
  constexpr const char* op = "svtr_local_attention";
  const LocalWindow g = check_svtr_local_attention_args(op, q_in, k_in, v_in, grid, window);
  TORCH_CHECK(q_in.device().is_cpu(), op, " (CPU kernel): q must be on the CPU");
  const at::Tensor q = unit_inner_stride(q_in), k = unit_inner_stride(k_in), v = unit_inner_stride(v_in);
  const int64_t B = q.size(0), NH = q.size(1), N = q.size(2), d = q.size(3);
  const auto acc_type = q.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
  at::Tensor out = at::empty({B, N, NH, d}, q.options()).transpose(1, 2);
  at::Tensor lse = at::empty({B, NH, N}, q.options().dtype(acc_type));
  if (B * NH == 0) return {out, lse};
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, q.scalar_type(), "svtr_local_attention_cpu", [&] {
    using acc_t = std::conditional_t<std::is_same_v<scalar_t, double>, double, float>;
    const Strided<scalar_t> qs(q), ks(k), vs(v);
    scalar_t* out_data = out.data_ptr<scalar_t>();
    acc_t* lse_data = lse.data_ptr<acc_t>();
    at::parallel_for(0, B * NH, 1, [&](int64_t i0, int64_t i1) {
      std::vector<acc_t> qt(d * N), kt(d * N), vt(d * N), S(g.offsets() * g.W), o(d * g.W), m(g.W), l(g.W),
          out_t(N * d);
      for (int64_t i = i0; i < i1; ++i) {
        const int64_t b = i / NH, hh = i % NH;
        load_transposed(qs.head(b, hh), qs.s2, N, d, qt.data());
        load_transposed(ks.head(b, hh), ks.s2, N, d, kt.data());
        load_transposed(vs.head(b, hh), vs.s2, N, d, vt.data());
        forward_head(HeadT<acc_t>{qt.data(), kt.data(), vt.data()}, g, d, static_cast<acc_t>(scale), S.data(),
                     o.data(), m.data(), l.data(), out_t.data(), lse_data + i * N);
        scalar_t* dst = out_data + b * N * NH * d + hh * d;  // the (B, N, heads, d) buffer
        for (int64_t n = 0; n < N; ++n) {
          for (int64_t t = 0; t < d; ++t) dst[n * NH * d + t] = static_cast<scalar_t>(out_t[n * d + t]);
        }
      }
    });
  });
  return {out, lse};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> svtr_local_attention_backward_cpu(
    const at::Tensor& grad_out_in, const at::Tensor& q_in, const at::Tensor& k_in, const at::Tensor& v_in,
    const at::Tensor& out_in, const at::Tensor& lse_in, at::IntArrayRef grid, at::IntArrayRef window, double scale) {
  constexpr const char* op = "svtr_local_attention_backward";
  const LocalWindow g = check_svtr_local_attention_args(op, q_in, k_in, v_in, grid, window);
  check_like_q(op, "grad_out", grad_out_in, q_in);
  check_like_q(op, "out", out_in, q_in);
  check_lse(op, lse_in, q_in);
  TORCH_CHECK(q_in.device().is_cpu(), op, " (CPU kernel): q must be on the CPU");
  const at::Tensor q = unit_inner_stride(q_in), k = unit_inner_stride(k_in), v = unit_inner_stride(v_in);
  const at::Tensor go = unit_inner_stride(grad_out_in), out = unit_inner_stride(out_in), lse = lse_in.contiguous();
  const int64_t B = q.size(0), NH = q.size(1), N = q.size(2), d = q.size(3);
  at::Tensor grad_q = at::empty({B, NH, N, d}, q.options());
  at::Tensor grad_k = at::empty({B, NH, N, d}, q.options());
  at::Tensor grad_v = at::empty({B, NH, N, d}, q.options());
  if (B * NH == 0) return {grad_q, grad_k, grad_v};
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, q.scalar_type(), "svtr_local_attention_backward_cpu", [&] {
    using acc_t = std::conditional_t<std::is_same_v<scalar_t, double>, double, float>;
    const Strided<scalar_t> qs(q), ks(k), vs(v), gs(go), os(out);
    const acc_t* lse_data = lse.const_data_ptr<acc_t>();
    scalar_t* dst[3] = {grad_q.data_ptr<scalar_t>(), grad_k.data_ptr<scalar_t>(), grad_v.data_ptr<scalar_t>()};
    at::parallel_for(0, B * NH, 1, [&](int64_t i0, int64_t i1) {
      std::vector<acc_t> qt(d * N), kt(d * N), vt(d * N), gt(d * N), dD(N), s(g.W), dp(g.W), grads(3 * d * N);
      for (int64_t i = i0; i < i1; ++i) {
        const int64_t b = i / NH, hh = i % NH;
        load_transposed(qs.head(b, hh), qs.s2, N, d, qt.data());
        load_transposed(ks.head(b, hh), ks.s2, N, d, kt.data());
        load_transposed(vs.head(b, hh), vs.s2, N, d, vt.data());
        load_transposed(gs.head(b, hh), gs.s2, N, d, gt.data());
        const scalar_t* orow = os.head(b, hh);
        const scalar_t* grow = gs.head(b, hh);
        for (int64_t n = 0; n < N; ++n) {  // D = rowsum(grad_out * out), the softmax backward's correction
          acc_t acc = 0;
          for (int64_t t = 0; t < d; ++t) {
            acc += static_cast<acc_t>(grow[n * gs.s2 + t]) * static_cast<acc_t>(orow[n * os.s2 + t]);
          }
          dD[n] = acc;
        }
        std::fill(grads.begin(), grads.end(), acc_t(0));
        acc_t* dq = grads.data();
        acc_t* dk = dq + d * N;
        acc_t* dv = dk + d * N;
        backward_head(HeadT<acc_t>{qt.data(), kt.data(), vt.data()}, gt.data(), lse_data + i * N, dD.data(), g, d,
                      static_cast<acc_t>(scale), s.data(), dp.data(), dq, dk, dv);
        for (int j = 0; j < 3; ++j) {
          const acc_t* src = grads.data() + j * d * N;
          scalar_t* o = dst[j] + i * N * d;
          for (int64_t n = 0; n < N; ++n) {
            for (int64_t t = 0; t < d; ++t) o[n * d + t] = static_cast<scalar_t>(src[t * N + n]);
          }
        }
      }
    });
  });
  return {grad_q, grad_k, grad_v};
}

}  // namespace

TORCH_LIBRARY_IMPL(cllstr, CPU, m) {
  m.impl("svtr_local_attention", &svtr_local_attention_cpu);
  m.impl("svtr_local_attention_backward", &svtr_local_attention_backward_cpu);
}

}  // namespace ops
}  // namespace cllstr
