// CPU kernels of cllstr::svtr_local_attention and its backward: at::parallel_for (OpenMP in torch's builds) over
// batch x heads; each task works on one head in a transposed (d, N) layout, where the keys at a window offset (dy, dx)
// of a whole query row are a contiguous run of the key row. float32 (and float16/bfloat16, converted to float32 on
// the way in) runs the register-blocked kernels of svtr_local_attention_vec.h; float64 (for gradcheck) runs the plain
// loops below, a second implementation of the same arithmetic.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <ATen/Version.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <tuple>
#include <type_traits>
#include <vector>

#include "ops/cpu/svtr_local_attention_vec.h"
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

// The float32 kernels are compiled twice, for AVX2+FMA and for the baseline, and picked at run time by torch's own CPU
// capability check (cpuinfo). Not GCC's target_clones: its resolver trusts the OSXSAVE bit, which some VMs hide while
// supporting AVX2 (this one does), and then always runs the baseline clone.
#if defined(__GNUC__) && defined(__x86_64__)
#define CLLSTR_AVX2_PATH 1
__attribute__((target("avx2,fma"))) void forward_head_f32_avx2(const float* qt, const float* kt, const float* vt,
                                                               const LocalWindow& g, const cpu_vec::Pad& P, int64_t d,
                                                               float scale, float* S, int64_t* voff, float* m,
                                                               float* l, float* out_t, float* lse) {
  cpu_vec::forward_head(qt, kt, vt, g, P, d, scale, S, voff, m, l, out_t, lse);
}
__attribute__((target("avx2,fma"))) void backward_head_f32_avx2(
    const float* qt, const float* kt, const float* vt, const float* gt, const float* lse, const float* dD,
    const LocalWindow& g, const cpu_vec::Pad& P, int64_t d, float scale, float* S, float* DP, float* Pr, float* Dr,
    float* lrow, float* drow, float* dq, float* dk, float* dv) {
  cpu_vec::backward_head(qt, kt, vt, gt, lse, dD, g, P, d, scale, S, DP, Pr, Dr, lrow, drow, dq, dk, dv);
}
bool use_avx2() {
  static const bool avx2 = [] {
    const std::string cap = at::get_cpu_capability();  // "DEFAULT", "AVX2" or "AVX512"; ATEN_CPU_CAPABILITY caps it
    return cap == "AVX2" || cap == "AVX512";
  }();
  return avx2;
}
#endif

void forward_head_f32(const float* qt, const float* kt, const float* vt, const LocalWindow& g, const cpu_vec::Pad& P,
                      int64_t d, float scale, float* S, int64_t* voff, float* m, float* l, float* out_t, float* lse) {
#ifdef CLLSTR_AVX2_PATH
  if (use_avx2()) return forward_head_f32_avx2(qt, kt, vt, g, P, d, scale, S, voff, m, l, out_t, lse);
#endif
  cpu_vec::forward_head(qt, kt, vt, g, P, d, scale, S, voff, m, l, out_t, lse);
}
void backward_head_f32(const float* qt, const float* kt, const float* vt, const float* gt, const float* lse,
                       const float* dD, const LocalWindow& g, const cpu_vec::Pad& P, int64_t d, float scale, float* S,
                       float* DP, float* Pr, float* Dr, float* lrow, float* drow, float* dq, float* dk, float* dv) {
#ifdef CLLSTR_AVX2_PATH
  if (use_avx2()) return backward_head_f32_avx2(qt, kt, vt, gt, lse, dD, g, P, d, scale, S, DP, Pr, Dr, lrow, drow,
                                                dq, dk, dv);
#endif
  cpu_vec::backward_head(qt, kt, vt, gt, lse, dD, g, P, d, scale, S, DP, Pr, Dr, lrow, drow, dq, dk, dv);
}
void forward_head(HeadT<double> h, const LocalWindow& g, int64_t d, double scale, double* S, double* o, double* m,
                  double* l, double* out_t, double* lse) {
  forward_head_impl<double>(h, g, d, scale, S, o, m, l, out_t, lse);
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

// Copies one head into the padded transposed float layout of cpu_vec (pads left as they are: zero).
template <typename scalar_t>
void load_padded(const scalar_t* src, int64_t rs, int64_t N, int64_t d, const cpu_vec::Pad& P, float* dst) {
  for (int64_t n = 0; n < N; ++n) {
    const scalar_t* row = src + n * rs;
    for (int64_t t = 0; t < d; ++t) dst[t * P.TS + P.F + n] = static_cast<float>(row[t]);
  }
}

// Writes one head's (N, d) result into the (B, N, heads, d) output buffer (dst points at its (b, 0, h, 0)).
template <typename acc_t, typename scalar_t>
void store_out(const acc_t* out_t, scalar_t* dst, int64_t N, int64_t NH, int64_t d) {
  for (int64_t n = 0; n < N; ++n) {
    for (int64_t t = 0; t < d; ++t) dst[n * NH * d + t] = static_cast<scalar_t>(out_t[n * d + t]);
  }
}

// Writes a transposed gradient (element (t, n) at src[t * ts + n]) into a contiguous (N, d) head.
template <typename acc_t, typename scalar_t>
void store_grad(const acc_t* src, int64_t ts, scalar_t* dst, int64_t N, int64_t d) {
  for (int64_t n = 0; n < N; ++n) {
    for (int64_t t = 0; t < d; ++t) dst[n * d + t] = static_cast<scalar_t>(src[t * ts + n]);
  }
}

at::Tensor unit_inner_stride(const at::Tensor& t) { return t.stride(3) == 1 ? t : t.contiguous(); }

// The forward of every head of q, k, v into out (the (B, N, heads, d) buffer) and lse.
template <typename scalar_t>
void forward_all(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const LocalWindow& g, double scale,
                 at::Tensor& out, at::Tensor& lse) {
  const int64_t B = q.size(0), NH = q.size(1), N = q.size(2), d = q.size(3);
  using acc_t = std::conditional_t<std::is_same_v<scalar_t, double>, double, float>;
  const Strided<scalar_t> qs(q), ks(k), vs(v);
  scalar_t* out_data = out.data_ptr<scalar_t>();
  acc_t* lse_data = lse.data_ptr<acc_t>();
  const int64_t nd = 2 * g.rw + 1;
  at::parallel_for(0, B * NH, 1, [&](int64_t i0, int64_t i1) {
    if constexpr (std::is_same_v<acc_t, float>) {
      const cpu_vec::Pad P(g);
      std::vector<float> qt(d * P.TS, 0.0f), kt(d * P.TS, 0.0f), vt(d * P.TS, 0.0f), S((2 * g.rh + 1) * nd * P.Wv),
          m(P.Wv), l(P.Wv), out_t(N * d);
      std::vector<int64_t> voff((2 * g.rh + 1) * nd);
      for (int64_t i = i0; i < i1; ++i) {
        const int64_t b = i / NH, hh = i % NH;
        load_padded(qs.head(b, hh), qs.s2, N, d, P, qt.data());
        load_padded(ks.head(b, hh), ks.s2, N, d, P, kt.data());
        load_padded(vs.head(b, hh), vs.s2, N, d, P, vt.data());
        forward_head_f32(qt.data(), kt.data(), vt.data(), g, P, d, static_cast<float>(scale), S.data(),
                         voff.data(), m.data(), l.data(), out_t.data(), lse_data + i * N);
        store_out(out_t.data(), out_data + b * N * NH * d + hh * d, N, NH, d);
      }
    } else {
      std::vector<acc_t> qt(d * N), kt(d * N), vt(d * N), S(g.offsets() * g.W), o(d * g.W), m(g.W), l(g.W),
          out_t(N * d);
      for (int64_t i = i0; i < i1; ++i) {
        const int64_t b = i / NH, hh = i % NH;
        load_transposed(qs.head(b, hh), qs.s2, N, d, qt.data());
        load_transposed(ks.head(b, hh), ks.s2, N, d, kt.data());
        load_transposed(vs.head(b, hh), vs.s2, N, d, vt.data());
        forward_head(HeadT<acc_t>{qt.data(), kt.data(), vt.data()}, g, d, static_cast<acc_t>(scale), S.data(),
                     o.data(), m.data(), l.data(), out_t.data(), lse_data + i * N);
        store_out(out_t.data(), out_data + b * N * NH * d + hh * d, N, NH, d);
      }
    }
  });
}

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
    forward_all<scalar_t>(q, k, v, g, scale, out, lse);
  });
  return {out, lse};
}

// The backward of every head into grad_q, grad_k, grad_v (contiguous (B, heads, N, d)).
template <typename scalar_t>
void backward_all(const at::Tensor& go, const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                  const at::Tensor& out, const at::Tensor& lse, const LocalWindow& g, double scale, at::Tensor& grad_q,
                  at::Tensor& grad_k, at::Tensor& grad_v) {
  const int64_t B = q.size(0), NH = q.size(1), N = q.size(2), d = q.size(3);
  using acc_t = std::conditional_t<std::is_same_v<scalar_t, double>, double, float>;
  const Strided<scalar_t> qs(q), ks(k), vs(v), gs(go), os(out);
  const acc_t* lse_data = lse.const_data_ptr<acc_t>();
  scalar_t* dst[3] = {grad_q.data_ptr<scalar_t>(), grad_k.data_ptr<scalar_t>(), grad_v.data_ptr<scalar_t>()};
  at::parallel_for(0, B * NH, 1, [&](int64_t i0, int64_t i1) {
    std::vector<acc_t> dD(N);
    // D = rowsum(grad_out * out), the softmax backward's correction.
    auto correction = [&](int64_t b, int64_t hh) {
      const scalar_t* orow = os.head(b, hh);
      const scalar_t* grow = gs.head(b, hh);
      for (int64_t n = 0; n < N; ++n) {
        acc_t acc = 0;
        for (int64_t t = 0; t < d; ++t) {
          acc += static_cast<acc_t>(grow[n * gs.s2 + t]) * static_cast<acc_t>(orow[n * os.s2 + t]);
        }
        dD[n] = acc;
      }
    };
    if constexpr (std::is_same_v<acc_t, float>) {
      const cpu_vec::Pad P(g);
      const int64_t nd = 2 * g.rw + 1;
      std::vector<float> qt(d * P.TS, 0.0f), kt(d * P.TS, 0.0f), vt(d * P.TS, 0.0f), gt(d * P.TS, 0.0f),
          S(nd * P.Wv), DP(nd * P.Wv), Pr(nd * P.row(), 0.0f), Dr(nd * P.row(), 0.0f), lrow(P.Wv), drow(P.Wv),
          grads(3 * d * P.TS);
      for (int64_t i = i0; i < i1; ++i) {
        const int64_t b = i / NH, hh = i % NH;
        load_padded(qs.head(b, hh), qs.s2, N, d, P, qt.data());
        load_padded(ks.head(b, hh), ks.s2, N, d, P, kt.data());
        load_padded(vs.head(b, hh), vs.s2, N, d, P, vt.data());
        load_padded(gs.head(b, hh), gs.s2, N, d, P, gt.data());
        correction(b, hh);
        std::fill(grads.begin(), grads.end(), 0.0f);
        float* dq = grads.data();
        backward_head_f32(qt.data(), kt.data(), vt.data(), gt.data(), lse_data + i * N, dD.data(), g, P, d,
                          static_cast<float>(scale), S.data(), DP.data(), Pr.data(), Dr.data(), lrow.data(),
                          drow.data(), dq, dq + d * P.TS, dq + 2 * d * P.TS);
        for (int j = 0; j < 3; ++j) store_grad(grads.data() + j * d * P.TS + P.F, P.TS, dst[j] + i * N * d, N, d);
      }
    } else {
      std::vector<acc_t> qt(d * N), kt(d * N), vt(d * N), gt(d * N), s(g.W), dp(g.W), grads(3 * d * N);
      for (int64_t i = i0; i < i1; ++i) {
        const int64_t b = i / NH, hh = i % NH;
        load_transposed(qs.head(b, hh), qs.s2, N, d, qt.data());
        load_transposed(ks.head(b, hh), ks.s2, N, d, kt.data());
        load_transposed(vs.head(b, hh), vs.s2, N, d, vt.data());
        load_transposed(gs.head(b, hh), gs.s2, N, d, gt.data());
        correction(b, hh);
        std::fill(grads.begin(), grads.end(), acc_t(0));
        acc_t* dq = grads.data();
        backward_head(HeadT<acc_t>{qt.data(), kt.data(), vt.data()}, gt.data(), lse_data + i * N, dD.data(), g, d,
                      static_cast<acc_t>(scale), s.data(), dp.data(), dq, dq + d * N, dq + 2 * d * N);
        for (int j = 0; j < 3; ++j) store_grad(grads.data() + j * d * N, N, dst[j] + i * N * d, N, d);
      }
    }
  });
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
    backward_all<scalar_t>(go, q, k, v, out, lse, g, scale, grad_q, grad_k, grad_v);
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
