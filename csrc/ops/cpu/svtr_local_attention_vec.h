#pragma once
// Register-blocked float32 kernels of cllstr::svtr_local_attention (forward and backward of one head), included by
// svtr_local_attention_kernel.cpp only.
//
// Layout: a head is stored transposed, element (t, y, x) at [t * TS + F + y * W + x], with F >= rw zeros in front of
// each channel row and zeros behind it, so that the keys of a whole 8-wide chunk of query columns at any column offset
// dx are one unaligned vector load. Scores are computed for all the chunk's lanes and the lanes whose key falls outside
// the grid (or past the row) are then set to -inf / probability 0; their (finite) products add exact zeros. One
// query-row chunk keeps up to 8 column offsets in registers while it streams the d channels (one load per FMA).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <type_traits>
#include <vector>

#include "ops/cpu/vec_math.h"
#include "ops/svtr_local_attention.h"

namespace cllstr {
namespace ops {
namespace cpu_vec {

constexpr int64_t kV = 8;  // lanes of a vector
typedef float vf __attribute__((vector_size(32)));

inline __attribute__((always_inline)) vf ld(const float* p) {
  vf v;
  __builtin_memcpy(&v, p, sizeof(v));
  return v;
}
inline __attribute__((always_inline)) void st(float* p, const vf& v) { __builtin_memcpy(p, &v, sizeof(v)); }

// Padded transposed layout of one head (see the file comment).
struct Pad {
  int64_t F, TS, Wv;  // front pad, channel-row stride, query row rounded up to whole vectors
  explicit Pad(const LocalWindow& g)
      : F((g.rw + kV - 1) / kV * kV), TS(F + g.H * g.W + g.rw + 2 * kV), Wv((g.W + kV - 1) / kV * kV) {}
  // Row length of a per-offset buffer (probabilities, score gradients) read at x - dx.
  int64_t row() const { return F + Wv + F + kV; }
};

// outs[j][0..kV) = scale * sum_t a[t*TS + i] * b[t*TS + shifts[j] + i], for G column offsets at once.
template <int G>
inline __attribute__((always_inline)) void dots(const float* a, const float* b, int64_t TS, int64_t d,
                                                const int64_t* shifts, float scale, float* const* outs) {
  vf acc[G];
  for (int j = 0; j < G; ++j) acc[j] = vf{};
  for (int64_t t = 0; t < d; ++t) {
    const vf av = ld(a + t * TS);
    const float* bt = b + t * TS;
    for (int j = 0; j < G; ++j) acc[j] += av * ld(bt + shifts[j]);
  }
  for (int j = 0; j < G; ++j) st(outs[j], acc[j] * scale);
}

// Calls f(std::integral_constant<int, G>{}) for 1 <= G <= kMax (G clamped).
template <int kMax, typename Fn>
inline __attribute__((always_inline)) void with_g(int64_t G, Fn&& f) {
  if constexpr (kMax > 1) {
    if (G < kMax) return with_g<kMax - 1>(G, f);
  }
  f(std::integral_constant<int, kMax>{});
}

// outs[g] (one vector) = sum_o ld(p + o * ps) * ld(rows + offs[o] + g * TS): probability-weighted sums of shifted rows
// for G channels at once (G independent accumulators, one load of p shared by them).
template <int G>
inline __attribute__((always_inline)) void weighted_rows(const float* p, int64_t ps, int64_t n, const int64_t* offs,
                                                         const float* rows, int64_t TS, vf* outs) {
  vf acc[G];
  for (int g = 0; g < G; ++g) acc[g] = vf{};
  for (int64_t o = 0; o < n; ++o) {
    const vf pv = ld(p + o * ps);
    const float* r = rows + offs[o];
    for (int g = 0; g < G; ++g) acc[g] += pv * ld(r + g * TS);
  }
  for (int g = 0; g < G; ++g) outs[g] = acc[g];
}

// Score rows out[j * stride + x] for every column offset dx = j - rw and x in [0, Wv) of one query row.
inline __attribute__((always_inline)) void offset_dots(const float* a, const float* b, const Pad& P, int64_t nd,
                                                       int64_t rw, int64_t d, float scale, float* out,
                                                       int64_t stride) {
  int64_t shifts[8];
  float* outs[8];
  for (int64_t x0 = 0; x0 < P.Wv; x0 += kV) {
    for (int64_t j0 = 0; j0 < nd; j0 += 8) {
      const int G = static_cast<int>(std::min<int64_t>(8, nd - j0));
      for (int j = 0; j < G; ++j) {
        shifts[j] = j0 + j - rw;
        outs[j] = out + (j0 + j) * stride + x0;
      }
      switch (G) {
        case 1: dots<1>(a + x0, b + x0, P.TS, d, shifts, scale, outs); break;
        case 2: dots<2>(a + x0, b + x0, P.TS, d, shifts, scale, outs); break;
        case 3: dots<3>(a + x0, b + x0, P.TS, d, shifts, scale, outs); break;
        case 4: dots<4>(a + x0, b + x0, P.TS, d, shifts, scale, outs); break;
        case 5: dots<5>(a + x0, b + x0, P.TS, d, shifts, scale, outs); break;
        case 6: dots<6>(a + x0, b + x0, P.TS, d, shifts, scale, outs); break;
        case 7: dots<7>(a + x0, b + x0, P.TS, d, shifts, scale, outs); break;
        default: dots<8>(a + x0, b + x0, P.TS, d, shifts, scale, outs); break;
      }
    }
  }
}

// Sets row[x] = value where key column x + dx is outside [0, W) (and on the lanes past the row).
inline void invalidate(float* row, int64_t W, int64_t Wv, int64_t dx, float value) {
  const int64_t xa = std::max<int64_t>(0, -dx), xb = std::min<int64_t>(W, W - dx);
  for (int64_t x = 0; x < xa; ++x) row[x] = value;
  for (int64_t x = xb; x < Wv; ++x) row[x] = value;
}

// Forward of one head. S: (kh' * nd, Wv) scores; voff: (kh' * nd); m, l: (Wv); out_t: (N, d); lse: (N).
inline __attribute__((always_inline)) void forward_head(const float* Qt, const float* Kt, const float* Vt,
                                                        const LocalWindow& g, const Pad& P, int64_t d, float scale,
                                                        float* S, int64_t* voff, float* m, float* l, float* out_t,
                                                        float* lse) {
  const int64_t W = g.W, nd = 2 * g.rw + 1, F = P.F, Wv = P.Wv;
  constexpr float kNegInf = -std::numeric_limits<float>::infinity();
  for (int64_t y = 0; y < g.H; ++y) {
    const int64_t dy0 = std::max(-g.rh, -y), dy1 = std::min(g.rh, g.H - 1 - y), rows = dy1 - dy0 + 1;
    for (int64_t dy = dy0; dy <= dy1; ++dy) {
      float* Sd = S + (dy - dy0) * nd * Wv;
      offset_dots(Qt + F + y * W, Kt + F + (y + dy) * W, P, nd, g.rw, d, scale, Sd, Wv);
      for (int64_t j = 0; j < nd; ++j) invalidate(Sd + j * Wv, W, Wv, j - g.rw, kNegInf);
    }
    std::fill(m, m + Wv, kNegInf);
    for (int64_t r = 0; r < rows * nd; ++r) {
      const float* s = S + r * Wv;
#pragma omp simd
      for (int64_t x = 0; x < W; ++x) m[x] = std::max(m[x], s[x]);
    }
    std::fill(l, l + Wv, 0.0f);
    for (int64_t r = 0; r < rows * nd; ++r) {
      float* s = S + r * Wv;
#pragma omp simd
      for (int64_t x = 0; x < W; ++x) {
        s[x] = cpu::exp_nonpositive(s[x] - m[x]);
        l[x] += s[x];
      }
      invalidate(s, W, Wv, r % nd - g.rw, 0.0f);  // exp(-inf) is clamped, not 0: make the masked weights exact
    }
    for (int64_t x = 0; x < W; ++x) l[x] = 1.0f / l[x];
    // Offsets of the value rows: entry (dy, j) of S weighs V at row y + dy, column x + j - rw.
    for (int64_t r = 0; r < rows * nd; ++r) voff[r] = (dy0 + r / nd) * W + r % nd - g.rw;
    alignas(32) float tmp[kV];
    vf acc[8];
    for (int64_t x0 = 0; x0 < Wv; x0 += kV) {
      const int64_t n = std::min(kV, W - x0);
      for (int64_t t0 = 0; t0 < d; t0 += 8) {
        const int64_t G = std::min<int64_t>(8, d - t0);
        with_g<8>(G, [&](auto gc) {
          weighted_rows<decltype(gc)::value>(S + x0, Wv, rows * nd, voff, Vt + t0 * P.TS + F + y * W + x0, P.TS,
                                             acc);
        });
        for (int64_t gi = 0; gi < G; ++gi) {
          st(tmp, acc[gi]);
          for (int64_t i = 0; i < n; ++i) out_t[(y * W + x0 + i) * d + t0 + gi] = tmp[i] * l[x0 + i];
        }
      }
    }
    for (int64_t x = 0; x < W; ++x) lse[y * W + x] = m[x] - std::log(l[x]);
  }
}

// For G channels t0.. and the query chunk x0 of row y against key row ky: grad_q += sum_j dS * K(x + dx),
// grad_k(x') += sum_j dS(x' - dx) * Q(x' - dx), grad_v(x') += sum_j P(x' - dx) * dO(x' - dx), dx = j - rw.
template <int G>
inline __attribute__((always_inline)) void grad_rows(const float* Qt, const float* Kt, const float* Gt, const float* Pr,
                                                     const float* Dr, int64_t R, int64_t nd, int64_t rw, int64_t W,
                                                     int64_t F, int64_t TS, int64_t t0, int64_t x0, int64_t y,
                                                     int64_t ky, float* dQt, float* dKt, float* dVt) {
  vf aq[G], ak[G], av[G];
  for (int c = 0; c < G; ++c) aq[c] = ak[c] = av[c] = vf{};
  const int64_t base = t0 * TS + F;
  const float* krow = Kt + base + ky * W + x0 - rw;  // + j: the key at column offset j - rw
  const float* qrow = Qt + base + y * W + x0 + rw;   // - j: the query that sees this key at offset j - rw
  const float* grow = Gt + base + y * W + x0 + rw;
  for (int64_t j = 0; j < nd; ++j) {
    const vf ds = ld(Dr + j * R + F + x0);
    const vf dsk = ld(Dr + j * R + F + x0 + rw - j);
    const vf pk = ld(Pr + j * R + F + x0 + rw - j);
    for (int c = 0; c < G; ++c) {
      aq[c] += ds * ld(krow + c * TS + j);
      ak[c] += dsk * ld(qrow + c * TS - j);
      av[c] += pk * ld(grow + c * TS - j);
    }
  }
  for (int c = 0; c < G; ++c) {
    float* dq = dQt + base + c * TS + y * W + x0;
    float* dk = dKt + base + c * TS + ky * W + x0;
    float* dv = dVt + base + c * TS + ky * W + x0;
    st(dq, ld(dq) + aq[c]);
    st(dk, ld(dk) + ak[c]);
    st(dv, ld(dv) + av[c]);
  }
}

// Backward of one head: accumulates into dQt, dKt, dVt (padded layout, zeroed by the caller). Pr, Dr: (nd, row())
// probability and score-gradient rows with zero pads; S, DP: (nd, Wv) scratch; lrow, drow: (Wv) scratch.
inline __attribute__((always_inline)) void backward_head(const float* Qt, const float* Kt, const float* Vt,
                                                         const float* Gt, const float* lse, const float* dD,
                                                         const LocalWindow& g, const Pad& P, int64_t d, float scale,
                                                         float* S, float* DP, float* Pr, float* Dr, float* lrow,
                                                         float* drow, float* dQt, float* dKt, float* dVt) {
  const int64_t W = g.W, nd = 2 * g.rw + 1, F = P.F, Wv = P.Wv, R = P.row();
  for (int64_t y = 0; y < g.H; ++y) {
    const int64_t dy0 = std::max(-g.rh, -y), dy1 = std::min(g.rh, g.H - 1 - y);
    std::fill(lrow, lrow + Wv, 0.0f);
    std::fill(drow, drow + Wv, 0.0f);
    std::copy(lse + y * W, lse + (y + 1) * W, lrow);
    std::copy(dD + y * W, dD + (y + 1) * W, drow);
    for (int64_t dy = dy0; dy <= dy1; ++dy) {
      const int64_t ky = y + dy;
      offset_dots(Qt + F + y * W, Kt + F + ky * W, P, nd, g.rw, d, scale, S, Wv);
      offset_dots(Gt + F + y * W, Vt + F + ky * W, P, nd, g.rw, d, 1.0f, DP, Wv);
      for (int64_t j = 0; j < nd; ++j) {
        const float* s = S + j * Wv;
        const float* dp = DP + j * Wv;
        float* p = Pr + j * R + F;
        float* ds = Dr + j * R + F;
#pragma omp simd
        for (int64_t x = 0; x < Wv; ++x) {
          p[x] = cpu::exp_nonpositive(std::min(s[x] - lrow[x], 0.0f));
          ds[x] = p[x] * (dp[x] - drow[x]) * scale;
        }
        invalidate(p, W, Wv, j - g.rw, 0.0f);
        invalidate(ds, W, Wv, j - g.rw, 0.0f);
      }
      for (int64_t x0 = 0; x0 < Wv; x0 += kV) {
        for (int64_t t0 = 0; t0 < d; t0 += 4) {
          with_g<4>(std::min<int64_t>(4, d - t0), [&](auto gc) {
            grad_rows<decltype(gc)::value>(Qt, Kt, Gt, Pr, Dr, R, nd, g.rw, W, F, P.TS, t0, x0, y, ky, dQt, dKt, dVt);
          });
        }
      }
    }
  }
}

}  // namespace cpu_vec
}  // namespace ops
}  // namespace cllstr
