// CPU kernels of cllstr::ctc_loss and its backward: at::parallel_for (OpenMP in torch's builds) over the batch, one
// sample per task. The C-wide work is one vectorised pass per frame in each direction: the forward computes the
// softmax normaliser of each valid frame (ops/cpu/row_scan.h) and gathers the 2L+1 label scores; the backward writes
// grad_nll * softmax(row) and subtracts the occupancy of the label classes. The alpha/beta recursions over the
// extended label sequence (blank, l1, blank, l2, ..., blank) run in float64 on the gathered scores: (T x (2L+1)) cells,
// negligible next to the rows. The backward recomputes alpha from the saved normalisers rather than storing it.
//
// Compared with F.log_softmax + F.ctc_loss on (T, B, C) float32 this reads low-precision logits as they are (no
// float32 copy), never materialises the log-probabilities, and writes the gradient once, in the logits' dtype.
// GCC 12's AVX-512 headers (pulled in by row_scan.h) warn inside themselves (GCC bug 105593): silenced for the file.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <tuple>
#include <type_traits>
#include <vector>

#include "ops/cpu/isa_dispatch.h"
#include "ops/cpu/row_scan.h"
#include "ops/cpu/vec_math.h"
#include "ops/ctc_loss.h"

namespace cllstr {
namespace ops {

namespace {

constexpr double kNegInf = -std::numeric_limits<double>::infinity();

// ---- rows: conversions and the dense part of the gradient, vectorised per instruction set ----

CLLSTR_ALWAYS_INLINE inline void bf16_to_float_body(const uint16_t* x, float* out, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) out[i] = __builtin_bit_cast(float, static_cast<uint32_t>(x[i]) << 16);
}

// Round to nearest even, NaN kept a (quiet) NaN.
CLLSTR_ALWAYS_INLINE inline void float_to_bf16_body(const float* x, uint16_t* out, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) {
    const uint32_t u = __builtin_bit_cast(uint32_t, x[i]);
    const uint16_t r = static_cast<uint16_t>((u + 0x7FFFu + ((u >> 16) & 1u)) >> 16);
    out[i] = x[i] != x[i] ? static_cast<uint16_t>(0x7FC0) : r;
  }
}

// out[i] = g * exp(x[i] - lse), for a finite lse >= max(x).
CLLSTR_ALWAYS_INLINE inline void scaled_softmax_body(const float* x, float lse, float g, float* out, int64_t n) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) out[i] = g * cpu::exp_nonpositive(x[i] - lse);
}

CLLSTR_ISA_DISPATCH(void, bf16_to_float, (const uint16_t* x, float* out, int64_t n), (x, out, n))
CLLSTR_ISA_DISPATCH(void, float_to_bf16, (const float* x, uint16_t* out, int64_t n), (x, out, n))
CLLSTR_ISA_DISPATCH(void, scaled_softmax, (const float* x, float lse, float g, float* out, int64_t n),
                    (x, lse, g, out, n))

// The row in the arithmetic type: float32 and float64 rows are used in place, float16/bfloat16 converted into buf.
template <typename scalar_t>
using acc_of = std::conditional_t<std::is_same_v<scalar_t, double>, double, float>;

template <typename scalar_t>
const acc_of<scalar_t>* load_row(const scalar_t* row, int64_t C, acc_of<scalar_t>* buf) {
  if constexpr (std::is_same_v<scalar_t, float> || std::is_same_v<scalar_t, double>) {
    return row;
  } else if constexpr (std::is_same_v<scalar_t, c10::BFloat16>) {
    bf16_to_float(reinterpret_cast<const uint16_t*>(row), buf, C);
    return buf;
  } else {
    for (int64_t c = 0; c < C; ++c) buf[c] = static_cast<float>(row[c]);
    return buf;
  }
}

template <typename scalar_t>
void store_row(const acc_of<scalar_t>* src, int64_t C, scalar_t* dst) {
  if constexpr (std::is_same_v<scalar_t, c10::BFloat16>) {
    float_to_bf16(src, reinterpret_cast<uint16_t*>(dst), C);
  } else if constexpr (std::is_same_v<scalar_t, c10::Half>) {
    for (int64_t c = 0; c < C; ++c) dst[c] = static_cast<c10::Half>(src[c]);
  }  // float32/float64 rows are computed in place
}

// log(sum(exp(x))): NaN for a row holding NaN or +inf, -inf for an all -inf row.
inline float row_lse(const float* x, int64_t C) { return cpu::row_logsumexp(x, C); }

inline double row_lse(const double* x, int64_t C) {
  double m = kNegInf;
  bool nan = false;
  for (int64_t c = 0; c < C; ++c) {
    nan |= x[c] != x[c];
    m = std::max(m, x[c]);
  }
  if (nan || m == std::numeric_limits<double>::infinity()) return std::numeric_limits<double>::quiet_NaN();
  if (m == kNegInf) return m;
  double s = 0;
  for (int64_t c = 0; c < C; ++c) s += std::exp(x[c] - m);
  return m + std::log(s);
}

inline void scaled_softmax_row(const float* x, float lse, float g, float* out, int64_t C) {
  scaled_softmax(x, lse, g, out, C);
}

inline void scaled_softmax_row(const double* x, double lse, double g, double* out, int64_t C) {
  for (int64_t c = 0; c < C; ++c) out[c] = g * std::exp(x[c] - lse);
}

// ---- the recursions over the extended labels ----

inline double log_add(double a, double b) {
  const double m = std::max(a, b);
  if (m == kNegInf) return kNegInf;
  return m + std::log1p(std::exp(-std::abs(a - b)));
}

// One sample's extended labels l'[s] (blank at even s) and whether s may skip from s - 2 (a label differing from
// the label two back).
struct Extended {
  std::vector<int64_t> label;
  std::vector<char> skip;

  void build(const int64_t* tgt, int64_t L, int64_t blank) {
    const int64_t S = 2 * L + 1;
    label.assign(S, blank);
    skip.assign(S, 0);
    for (int64_t i = 0; i < L; ++i) {
      label[2 * i + 1] = tgt[i];
      skip[2 * i + 1] = i > 0 && tgt[i] != tgt[i - 1];
    }
  }
};

// alpha[t][s] = log of the summed probability of the alignments of the first t + 1 frames ending in state s (this
// frame's score included). Returns log p(target) over T frames; lp[t * S + s] is frame t's log-probability of l'[s].
double forward_alpha(const double* lp, int64_t T, const Extended& e, double* alpha) {
  const int64_t S = static_cast<int64_t>(e.label.size());
  if (T == 0) return S == 1 ? 0.0 : kNegInf;
  for (int64_t s = 0; s < S; ++s) alpha[s] = s < 2 ? lp[s] : kNegInf;
  for (int64_t t = 1; t < T; ++t) {
    const double* prev = alpha + (t - 1) * S;
    double* cur = alpha + t * S;
    const double* lpt = lp + t * S;
    for (int64_t s = 0; s < S; ++s) {
      double a = prev[s];
      if (s > 0) a = log_add(a, prev[s - 1]);
      if (e.skip[s]) a = log_add(a, prev[s - 2]);
      cur[s] = a + lpt[s];
    }
  }
  const double* last = alpha + (T - 1) * S;
  return S == 1 ? last[0] : log_add(last[S - 1], last[S - 2]);
}

// ---- forward ----

template <typename scalar_t>
void forward_batch(const at::Tensor& logits, const CtcTargets& tg, int64_t blank, at::Tensor& nll, at::Tensor& lse) {
  using acc_t = acc_of<scalar_t>;
  const int64_t B = logits.size(0), T = logits.size(1), C = logits.size(2);
  const scalar_t* x = logits.const_data_ptr<scalar_t>();
  const int64_t* tgp = tg.targets.const_data_ptr<int64_t>();
  const int64_t* il = tg.input_lengths.const_data_ptr<int64_t>();
  const int64_t* tl = tg.target_lengths.const_data_ptr<int64_t>();
  acc_t* nll_p = nll.data_ptr<acc_t>();
  acc_t* lse_p = lse.data_ptr<acc_t>();
  at::parallel_for(0, B, 1, [&](int64_t b0, int64_t b1) {
    std::vector<acc_t> buf(std::is_same_v<scalar_t, acc_t> ? 0 : C);
    std::vector<double> lp, alpha;
    Extended e;
    for (int64_t b = b0; b < b1; ++b) {
      const int64_t Tb = il[b], S = 2 * tl[b] + 1;
      e.build(tgp + tg.start[b], tl[b], blank);
      lp.resize(Tb * S);
      alpha.resize(Tb * S);
      for (int64_t t = 0; t < T; ++t) {
        if (t >= Tb) {
          lse_p[b * T + t] = 0;
          continue;
        }
        const acc_t* row = load_row<scalar_t>(x + (b * T + t) * C, C, buf.data());
        const acc_t z = row_lse(row, C);
        lse_p[b * T + t] = z;
        for (int64_t s = 0; s < S; ++s) lp[t * S + s] = static_cast<double>(row[e.label[s]]) - z;
      }
      nll_p[b] = static_cast<acc_t>(-forward_alpha(lp.data(), Tb, e, alpha.data()));
    }
  });
}

std::tuple<at::Tensor, at::Tensor> ctc_loss_cpu(const at::Tensor& logits_in, const at::Tensor& targets,
                                                const at::Tensor& input_lengths, const at::Tensor& target_lengths,
                                                int64_t blank) {
  constexpr const char* op = "ctc_loss";
  check_ctc_loss_args(op, logits_in, targets, input_lengths, target_lengths, blank);
  TORCH_CHECK(logits_in.device().is_cpu(), op, " (CPU kernel): logits must be on the CPU");
  const int64_t B = logits_in.size(0), T = logits_in.size(1), C = logits_in.size(2);
  const CtcTargets tg = check_ctc_loss_values(op, targets, input_lengths, target_lengths, T, C, blank);
  const at::Tensor logits = logits_in.contiguous();
  const auto acc = logits.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
  at::Tensor nll = at::empty({B}, logits.options().dtype(acc));
  at::Tensor lse = at::empty({B, T}, logits.options().dtype(acc));
  if (B == 0) return {nll, lse};
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, logits.scalar_type(), "ctc_loss_cpu",
                                  [&] { forward_batch<scalar_t>(logits, tg, blank, nll, lse); });
  return {nll, lse};
}

// ---- backward ----

template <typename scalar_t>
void backward_batch(const at::Tensor& grad_nll, const at::Tensor& logits, const CtcTargets& tg, int64_t blank,
                    const at::Tensor& nll, const at::Tensor& lse, at::Tensor& grad) {
  using acc_t = acc_of<scalar_t>;
  const int64_t B = logits.size(0), T = logits.size(1), C = logits.size(2);
  const scalar_t* x = logits.const_data_ptr<scalar_t>();
  scalar_t* gx = grad.data_ptr<scalar_t>();
  const int64_t* tgp = tg.targets.const_data_ptr<int64_t>();
  const int64_t* il = tg.input_lengths.const_data_ptr<int64_t>();
  const int64_t* tl = tg.target_lengths.const_data_ptr<int64_t>();
  const acc_t* gn = grad_nll.const_data_ptr<acc_t>();
  const acc_t* nll_p = nll.const_data_ptr<acc_t>();
  const acc_t* lse_p = lse.const_data_ptr<acc_t>();
  at::parallel_for(0, B, 1, [&](int64_t b0, int64_t b1) {
    constexpr bool in_place = std::is_same_v<scalar_t, acc_t>;
    std::vector<acc_t> buf(in_place ? 0 : C), out(in_place ? 0 : C);
    std::vector<double> lp, alpha, beta, beta_next;
    Extended e;
    for (int64_t b = b0; b < b1; ++b) {
      scalar_t* gb = gx + b * T * C;
      const int64_t Tb = il[b], S = 2 * tl[b] + 1;
      const acc_t g = gn[b];
      const acc_t v = nll_p[b];
      // Past the valid frames, for a zero weight (a sample masked out, whatever its loss) and for an infeasible
      // sample (no alignment: zero_infinity's zero gradient) the gradient is zero; otherwise a NaN loss or weight
      // gives NaN over the valid frames.
      std::fill(gb + Tb * C, gb + T * C, scalar_t(0));
      if (g == 0 || v == std::numeric_limits<acc_t>::infinity() || Tb == 0) {
        std::fill(gb, gb + Tb * C, scalar_t(0));
        continue;
      }
      if (v != v || g != g) {
        std::fill(gb, gb + Tb * C, static_cast<scalar_t>(std::numeric_limits<float>::quiet_NaN()));
        continue;
      }
      e.build(tgp + tg.start[b], tl[b], blank);
      lp.resize(Tb * S);
      alpha.resize(Tb * S);
      beta.resize(S);
      beta_next.resize(S);
      for (int64_t t = 0; t < Tb; ++t) {
        const scalar_t* row = x + (b * T + t) * C;
        const double z = lse_p[b * T + t];
        for (int64_t s = 0; s < S; ++s) lp[t * S + s] = static_cast<double>(static_cast<acc_t>(row[e.label[s]])) - z;
      }
      const double ll = forward_alpha(lp.data(), Tb, e, alpha.data());
      for (int64_t t = Tb - 1; t >= 0; --t) {
        // beta[s]: log of the summed probability of the alignments of frames t .. Tb-1 from state s (frame t's score
        // included), so that alpha + beta - lp is the log-probability of passing through s at t.
        const double* lpt = lp.data() + t * S;
        for (int64_t s = 0; s < S; ++s) {
          double bsum;
          if (t == Tb - 1) {
            bsum = s >= S - 2 ? 0.0 : kNegInf;
          } else {
            bsum = beta_next[s];
            if (s + 1 < S) bsum = log_add(bsum, beta_next[s + 1]);
            if (s + 2 < S && e.skip[s + 2]) bsum = log_add(bsum, beta_next[s + 2]);
          }
          beta[s] = bsum + lpt[s];
        }
        const acc_t* row = load_row<scalar_t>(x + (b * T + t) * C, C, buf.data());
        acc_t* dst = in_place ? reinterpret_cast<acc_t*>(gb + t * C) : out.data();
        scaled_softmax_row(row, static_cast<acc_t>(lse_p[b * T + t]), g, dst, C);
        const double* at = alpha.data() + t * S;
        for (int64_t s = 0; s < S; ++s) {
          const double occ = at[s] + beta[s] - lpt[s] - ll;
          if (occ > -700.0) dst[e.label[s]] -= static_cast<acc_t>(g * std::exp(occ));
        }
        if constexpr (!in_place) store_row<scalar_t>(dst, C, gb + t * C);
        std::swap(beta, beta_next);
      }
    }
  });
}

at::Tensor ctc_loss_backward_cpu(const at::Tensor& grad_nll_in, const at::Tensor& logits_in, const at::Tensor& targets,
                                 const at::Tensor& input_lengths, const at::Tensor& target_lengths,
                                 const at::Tensor& nll_in, const at::Tensor& lse_in, int64_t blank) {
  constexpr const char* op = "ctc_loss_backward";
  check_ctc_loss_args(op, logits_in, targets, input_lengths, target_lengths, blank);
  TORCH_CHECK(logits_in.device().is_cpu(), op, " (CPU kernel): logits must be on the CPU");
  const int64_t B = logits_in.size(0), T = logits_in.size(1), C = logits_in.size(2);
  const auto acc = logits_in.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
  const std::pair<const char*, const at::Tensor*> saved[] = {{"grad_nll", &grad_nll_in}, {"nll", &nll_in}};
  for (const auto& [name, t] : saved) {
    TORCH_CHECK_VALUE(t->dim() == 1 && t->size(0) == B, op, ": ", name, " must be (B,) = (", B, ",), got ",
                      t->sizes());
  }
  TORCH_CHECK_VALUE(lse_in.dim() == 2 && lse_in.size(0) == B && lse_in.size(1) == T, op, ": lse must be (B, T) = (",
                    B, ", ", T, "), got ", lse_in.sizes());
  const CtcTargets tg = check_ctc_loss_values(op, targets, input_lengths, target_lengths, T, C, blank);
  const at::Tensor logits = logits_in.contiguous();
  const at::Tensor grad_nll = grad_nll_in.to(acc).contiguous();
  const at::Tensor nll = nll_in.to(acc).contiguous(), lse = lse_in.to(acc).contiguous();
  at::Tensor grad = at::empty({B, T, C}, logits.options());
  if (B == 0 || T == 0) return grad;
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, logits.scalar_type(), "ctc_loss_backward_cpu",
                                  [&] { backward_batch<scalar_t>(grad_nll, logits, tg, blank, nll, lse, grad); });
  return grad;
}

}  // namespace

TORCH_LIBRARY_IMPL(cllstr, CPU, m) {
  m.impl("ctc_loss", &ctc_loss_cpu);
  m.impl("ctc_loss_backward", &ctc_loss_backward_cpu);
}

}  // namespace ops
}  // namespace cllstr
