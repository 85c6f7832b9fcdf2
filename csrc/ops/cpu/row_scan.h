#pragma once
// Scans of one row of C class scores for the CTC decoding kernels, with AVX-512 and AVX2 implementations chosen at
// run time (ops/cpu/isa_dispatch.h) and a portable one the compiler vectorises for every other processor:
//   row_top:       the M largest entries except the blank: a lower bound from the maxima of 64 buckets, then one
//                  pass against a rising threshold;
//   row_logsumexp: log(sum(exp(x))), the softmax normaliser;
//   row_pair:      the greedy decoder's inner loop, pipelined over consecutive rows: the maximum of row `next` and,
//                  for row `cur` whose maximum is already known, the first index of that maximum and sum(exp(x - m)).
//                  Reading `next` from memory overlaps the exp arithmetic on `cur`, which sits in L1.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>

#include "ops/cpu/isa_dispatch.h"
#include "ops/cpu/vec_math.h"

#if defined(__GNUC__) && defined(__x86_64__)
#include <immintrin.h>
#define CLLSTR_HAVE_AVX512_SCAN 1
#define CLLSTR_TARGET_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma")))
#else
#define CLLSTR_HAVE_AVX512_SCAN 0
#endif

namespace cllstr {
namespace ops {
namespace cpu {

// Inserts (v, i) into the descending list vals/idx of n <= M entries; a full list drops its last entry. Equal
// values keep their order of arrival (callers arrive in ascending index: lower index first among ties).
CLLSTR_ALWAYS_INLINE inline void insert_desc(float v, int32_t i, float* vals, int32_t* idx, int32_t& n, int32_t M) {
  int32_t pos = n < M ? n++ : M - 1;
  while (pos > 0 && vals[pos - 1] < v) {
    vals[pos] = vals[pos - 1];
    idx[pos] = idx[pos - 1];
    --pos;
  }
  vals[pos] = v;
  idx[pos] = i;
}

// Asks for the cache lines of [p, p + bytes) ahead of their use (a no-op where the compiler has no prefetch).
inline void prefetch_row(const void* p, int64_t bytes) {
#if defined(__GNUC__)
  const char* c = static_cast<const char*>(p);
  for (int64_t off = 0; off < bytes; off += 64) __builtin_prefetch(c + off, 0, 3);
#endif
}

// Software prefetch distance of the row read from memory (override with -DCLLSTR_ROW_PREFETCH_BYTES=N to tune).
// The pass over a row is short (~3.5 cycles per cache line with the exp arithmetic of the row before), so the
// distance must cover the memory latency: measured on the 2-core AMD EPYC CI machine for 6400 rows of 4680 fp32,
// one thread, the pipelined pass ran at 80% of a plain vectorised max over the same bytes with 1 KiB ahead, 83% with
// 2 KiB, ~102% with 4 KiB, ~125% with 8 KiB (the plain max has no software prefetch) and 114% with 16 KiB. Past the
// row's end it asks for the next rows of the batch, which follow in memory (x86 prefetches never fault).
#ifndef CLLSTR_ROW_PREFETCH_BYTES
#define CLLSTR_ROW_PREFETCH_BYTES 8192
#endif
constexpr int64_t kPrefetchBytes = CLLSTR_ROW_PREFETCH_BYTES;

// A lower bound on the M-th largest non-blank entry, from one pass at memory speed: the maxima of 64 disjoint
// buckets (entry i in bucket i mod 64). M+1 buckets hold an entry >= their (M+1)-th largest maximum and at most one
// of those entries is the blank. NaN never enters a bucket (the comparison is false), so a bucket's maximum is one
// of its entries or -inf, and the bound stays valid. -inf when M+1 > 64 or the row is short. The same bound as
// row_top_floor_avx512, in plain arithmetic the compiler vectorises (eight 8-lane accumulators under AVX2).
constexpr int kTopBuckets = 64;
CLLSTR_ALWAYS_INLINE inline float row_top_floor_portable_body(const float* x, int64_t C, int32_t M) {
  const float ninf = -std::numeric_limits<float>::infinity();
  if (M + 1 > kTopBuckets || C < 2 * kTopBuckets) return ninf;
  float m[kTopBuckets];
  for (int j = 0; j < kTopBuckets; ++j) m[j] = ninf;
  for (int64_t i = 0; i + kTopBuckets <= C; i += kTopBuckets) {
    for (int j = 0; j < kTopBuckets; ++j) {
      const float v = x[i + j];
      m[j] = v > m[j] ? v : m[j];
    }
  }  // the tail (< 64 entries) is left out: fewer entries per bucket only lower the bound
  // The (M+1)-th largest maximum: the largest maximum that at least M+1 maxima reach.
  float floor = ninf;
  for (int j = 0; j < kTopBuckets; ++j) {
    int reach = 0;
    for (int k = 0; k < kTopBuckets; ++k) reach += m[k] >= m[j] ? 1 : 0;
    floor = (reach > M && m[j] > floor) ? m[j] : floor;
  }
  return floor;
}

// Portable row_top: entries enter when >= thr while the list is short (thr starts at the floor), > its last value
// once it is full (NaN never does). Blocks of 32 are tested at once; a block with no candidate costs only the test.
CLLSTR_ALWAYS_INLINE inline int32_t row_top_portable_body(const float* x, int64_t C, int64_t blank, int32_t M,
                                                          float* vals, int32_t* idx) {
  if (M <= 0) return 0;
  float thr = row_top_floor_portable_body(x, C, M);
  int32_t n = 0;
  auto take = [&](int64_t k) {
    const float v = x[k];
    if (k == blank || !(n < M ? v >= thr : v > thr)) return;
    insert_desc(v, static_cast<int32_t>(k), vals, idx, n, M);
    if (n == M) thr = vals[M - 1];
  };
  constexpr int kGroup = 32;
  int64_t i = 0;
  for (; i + kGroup <= C; i += kGroup) {
    // >= thr also covers the full list's > thr (the exact test is take()'s); NaN compares false.
    unsigned mask = 0;
    for (int j = 0; j < kGroup; ++j) mask |= static_cast<unsigned>(x[i + j] >= thr) << j;
    for (; mask; mask &= mask - 1) take(i + __builtin_ctz(mask));
  }
  for (; i < C; ++i) take(i);
  return n;
}

// log(sum(exp(x))); -inf for an all -inf row, NaN when the row holds NaN or +inf.
CLLSTR_ALWAYS_INLINE inline float row_logsumexp_portable_body(const float* x, int64_t C) {
  bool has_nan = false;
  const float m = lanes_max(x, C, &has_nan);
  if (has_nan || m == std::numeric_limits<float>::infinity()) return std::numeric_limits<float>::quiet_NaN();
  if (m == -std::numeric_limits<float>::infinity()) return m;
  float s = 0.0f;
#pragma omp simd reduction(+ : s)
  for (int64_t i = 0; i < C; ++i) s += exp_nonpositive(x[i] - m);
  return m + std::log(s);
}

// Result of row_pair for the row `cur`, and the maximum of `next`.
struct RowPair {
  int64_t first;     // first index of m_cur in cur (C when absent: the row holds NaN)
  float sum;         // sum(exp(cur - m_cur)) when with_exp
  float next_max;    // maximum of next (meaningless when next_nan)
  bool next_nan;     // next holds a NaN
};

CLLSTR_ALWAYS_INLINE inline RowPair row_pair_portable_body(const float* cur, float m_cur, const float* next,
                                                           int64_t C, bool with_exp) {
  RowPair r{C, 0.0f, -std::numeric_limits<float>::infinity(), false};
  if (next != nullptr) r.next_max = lanes_max(next, C, &r.next_nan);
  if (cur == nullptr) return r;
  for (int64_t i = 0; i < C; ++i) {
    if (cur[i] == m_cur) {
      r.first = i;
      break;
    }
  }
  if (with_exp) {
    float s = 0.0f;
#pragma omp simd reduction(+ : s)
    for (int64_t i = 0; i < C; ++i) s += exp_nonpositive(cur[i] - m_cur);
    r.sum = s;
  }
  return r;
}

CLLSTR_ISA_DISPATCH(int32_t, row_top_portable,
                    (const float* x, int64_t C, int64_t blank, int32_t M, float* vals, int32_t* idx),
                    (x, C, blank, M, vals, idx))
CLLSTR_ISA_DISPATCH(float, row_logsumexp_portable, (const float* x, int64_t C), (x, C))
CLLSTR_ISA_DISPATCH(RowPair, row_pair_portable,
                    (const float* cur, float m_cur, const float* next, int64_t C, bool with_exp),
                    (cur, m_cur, next, C, with_exp))

#if CLLSTR_HAVE_AVX512_SCAN


// exp(d) for 16 values d <= 0 (d = x - m): 2^t with t = d*log2(e) split into a rounded integer r and a fraction
// f in [-0.5, 0.5], 2^f by its degree-6 Taylor polynomial (relative error < 2e-7, as exp_nonpositive), scaled by
// 2^r with vscalefps. Inputs below -87 give ~exp(-87) or less, as exp_nonpositive.
CLLSTR_TARGET_AVX512 inline __m512 exp512_nonpositive(__m512 d) {
  const __m512 t = _mm512_max_ps(_mm512_mul_ps(d, _mm512_set1_ps(1.44269504088896341f)), _mm512_set1_ps(-125.5f));
  const __m512 r = _mm512_roundscale_ps(t, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  const __m512 f = _mm512_sub_ps(t, r);
  // Coefficients ln(2)^k / k!.
  __m512 p = _mm512_set1_ps(1.5403530393381606e-4f);
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.3333558146428443e-3f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(9.6181291076284772e-3f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(5.5504108664821580e-2f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(2.4022650695910071e-1f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(6.9314718055994531e-1f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.0f));
  return _mm512_scalef_ps(p, r);
}

CLLSTR_TARGET_AVX512 inline float hmax512(__m512 v) { return _mm512_reduce_max_ps(v); }

// A lower bound on the M-th largest non-blank entry, from one pass at memory speed: the maxima of 64 disjoint
// buckets (entry i in bucket i mod 64: four accumulators of 16 lanes). M+1 buckets hold an entry >= their (M+1)-th
// largest maximum and at most one of those entries is the blank. A NaN can only make a bucket report a smaller
// entry of its own (vmaxps keeps the second operand), so the bound stays valid. -inf when M+1 > 64.
CLLSTR_TARGET_AVX512 inline float row_top_floor_avx512(const float* x, int64_t C, int32_t M) {
  constexpr int kBuckets = 64;
  const float ninf = -std::numeric_limits<float>::infinity();
  if (M + 1 > kBuckets || C < 2 * kBuckets) return ninf;
  __m512 a0 = _mm512_set1_ps(ninf), a1 = a0, a2 = a0, a3 = a0;
  int64_t i = 0;
  for (; i + kBuckets <= C; i += kBuckets) {
    // Four cache lines a fixed distance ahead (kPrefetchBytes, as row_pair): past this row's end they are the next
    // rows of the batch, which follow in memory. Measured for B=256 T=25 C=4680 beam 10 on one core of the CI
    // machine: ~8% faster than spreading the prefetch of `ahead` over this pass, whose short loop (four loads per
    // iteration) could not keep that many requests in flight.
    const char* pf_at = reinterpret_cast<const char*>(x + i) + kPrefetchBytes;
    _mm_prefetch(pf_at, _MM_HINT_T0);
    _mm_prefetch(pf_at + 64, _MM_HINT_T0);
    _mm_prefetch(pf_at + 128, _MM_HINT_T0);
    _mm_prefetch(pf_at + 192, _MM_HINT_T0);
    a0 = _mm512_max_ps(a0, _mm512_loadu_ps(x + i));
    a1 = _mm512_max_ps(a1, _mm512_loadu_ps(x + i + 16));
    a2 = _mm512_max_ps(a2, _mm512_loadu_ps(x + i + 32));
    a3 = _mm512_max_ps(a3, _mm512_loadu_ps(x + i + 48));
  }  // the tail (< 64 entries) is left out: fewer entries per bucket only lower the bound
  // The (M+1)-th largest maximum without a branchy selection: the largest maximum that at least M+1 maxima reach.
  const __m512 vninf = _mm512_set1_ps(ninf);
  a0 = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(a0, a0, _CMP_UNORD_Q), a0, vninf);
  a1 = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(a1, a1, _CMP_UNORD_Q), a1, vninf);
  a2 = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(a2, a2, _CMP_UNORD_Q), a2, vninf);
  a3 = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(a3, a3, _CMP_UNORD_Q), a3, vninf);
  alignas(64) float m[kBuckets];
  _mm512_store_ps(m, a0);
  _mm512_store_ps(m + 16, a1);
  _mm512_store_ps(m + 32, a2);
  _mm512_store_ps(m + 48, a3);
  float floor = ninf;
  for (int j = 0; j < kBuckets; ++j) {
    const __m512 v = _mm512_set1_ps(m[j]);
    const int reach = __builtin_popcount(_mm512_cmp_ps_mask(a0, v, _CMP_GE_OQ)) +
                      __builtin_popcount(_mm512_cmp_ps_mask(a1, v, _CMP_GE_OQ)) +
                      __builtin_popcount(_mm512_cmp_ps_mask(a2, v, _CMP_GE_OQ)) +
                      __builtin_popcount(_mm512_cmp_ps_mask(a3, v, _CMP_GE_OQ));
    floor = (reach > M && m[j] > floor) ? m[j] : floor;
  }
  return floor;
}

CLLSTR_TARGET_AVX512 inline int32_t row_top_avx512(const float* x, int64_t C, int64_t blank, int32_t M,
                                                   float* vals, int32_t* idx) {
  if (M <= 0) return 0;
  // Entries enter when >= thr while the list is short (thr: the floor), > its last value once it is full.
  float thr = row_top_floor_avx512(x, C, M);
  int32_t n = 0;
  // Entries of one block that pass the test (the list may fill on the way: then only > its last value enters).
  auto take = [&](int64_t i, unsigned mask) {
    for (; mask; mask &= mask - 1) {
      const int64_t k = i + __builtin_ctz(mask);
      const float val = x[k];
      if (k == blank || (n == M && !(val > thr))) continue;
      insert_desc(val, static_cast<int32_t>(k), vals, idx, n, M);
      if (n == M) thr = vals[M - 1];
    }
  };
  // Four blocks per test (NaN compares false); full blocks load unmasked (a masked load per block is several times
  // slower on AMD EPYC).
  int64_t i = 0;
  for (; i + 64 <= C; i += 64) {
    const __m512 vthr = _mm512_set1_ps(thr);
    __mmask16 m0, m1, m2, m3;
    if (n < M) {
      m0 = _mm512_cmp_ps_mask(_mm512_loadu_ps(x + i), vthr, _CMP_GE_OQ);
      m1 = _mm512_cmp_ps_mask(_mm512_loadu_ps(x + i + 16), vthr, _CMP_GE_OQ);
      m2 = _mm512_cmp_ps_mask(_mm512_loadu_ps(x + i + 32), vthr, _CMP_GE_OQ);
      m3 = _mm512_cmp_ps_mask(_mm512_loadu_ps(x + i + 48), vthr, _CMP_GE_OQ);
    } else {
      m0 = _mm512_cmp_ps_mask(_mm512_loadu_ps(x + i), vthr, _CMP_GT_OQ);
      m1 = _mm512_cmp_ps_mask(_mm512_loadu_ps(x + i + 16), vthr, _CMP_GT_OQ);
      m2 = _mm512_cmp_ps_mask(_mm512_loadu_ps(x + i + 32), vthr, _CMP_GT_OQ);
      m3 = _mm512_cmp_ps_mask(_mm512_loadu_ps(x + i + 48), vthr, _CMP_GT_OQ);
    }
    if ((m0 | m1 | m2 | m3) == 0) continue;
    take(i, m0);
    take(i + 16, m1);
    take(i + 32, m2);
    take(i + 48, m3);
  }
  for (; i < C; i += 16) {
    const int64_t left = C - i;
    const __mmask16 live = left >= 16 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << left) - 1);
    const __m512 v = _mm512_maskz_loadu_ps(live, x + i);
    const __m512 vthr = _mm512_set1_ps(thr);
    take(i, n < M ? _mm512_mask_cmp_ps_mask(live, v, vthr, _CMP_GE_OQ)
                  : _mm512_mask_cmp_ps_mask(live, v, vthr, _CMP_GT_OQ));
  }
  return n;
}

// Maximum of 16-lane blocks with a NaN flag, masked tail.
CLLSTR_TARGET_AVX512 inline float max512(const float* x, int64_t C, bool* has_nan) {
  const __m512 ninf = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
  __m512 a0 = ninf, a1 = ninf;
  __mmask16 nan = 0;
  int64_t i = 0;
  for (; i + 32 <= C; i += 32) {
    const __m512 v0 = _mm512_loadu_ps(x + i), v1 = _mm512_loadu_ps(x + i + 16);
    a0 = _mm512_max_ps(a0, v0);
    a1 = _mm512_max_ps(a1, v1);
    nan |= _mm512_cmp_ps_mask(v0, v1, _CMP_UNORD_Q);
  }
  for (; i < C; i += 16) {
    const int64_t left = C - i;
    const __mmask16 live = left >= 16 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << left) - 1);
    const __m512 v = _mm512_mask_loadu_ps(ninf, live, x + i);
    a0 = _mm512_max_ps(a0, v);
    nan |= _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
  }
  *has_nan = nan != 0;
  return hmax512(_mm512_max_ps(a0, a1));
}

CLLSTR_TARGET_AVX512 inline float row_logsumexp_avx512(const float* x, int64_t C) {
  bool has_nan = false;
  const float m = max512(x, C, &has_nan);
  if (has_nan || m == std::numeric_limits<float>::infinity()) return std::numeric_limits<float>::quiet_NaN();
  if (m == -std::numeric_limits<float>::infinity()) return m;
  const __m512 vm = _mm512_set1_ps(m);
  __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
  int64_t i = 0;
  for (; i + 32 <= C; i += 32) {
    s0 = _mm512_add_ps(s0, exp512_nonpositive(_mm512_sub_ps(_mm512_loadu_ps(x + i), vm)));
    s1 = _mm512_add_ps(s1, exp512_nonpositive(_mm512_sub_ps(_mm512_loadu_ps(x + i + 16), vm)));
  }
  for (; i < C; i += 16) {
    const int64_t left = C - i;
    const __mmask16 live = left >= 16 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << left) - 1);
    const __m512 e = exp512_nonpositive(_mm512_sub_ps(_mm512_maskz_loadu_ps(live, x + i), vm));
    s0 = _mm512_mask_add_ps(s0, live, s0, e);
  }
  return m + std::log(_mm512_reduce_add_ps(_mm512_add_ps(s0, s1)));
}

// One 16-lane block of row_pair: `live` masks the tail block (full blocks load unmasked: masked loads of every block
// measured several times slower on this project's AMD EPYC machine).
template <bool kNext, bool kCur, bool kExp, bool kTail>
CLLSTR_TARGET_AVX512 CLLSTR_ALWAYS_INLINE inline void row_pair_block(const float* cur, const float* next, int64_t i,
                                                                     __mmask16 live, __m512 vm, __m512& acc,
                                                                     __mmask16& nan, __m512& sum, int64_t& first) {
  if constexpr (kNext) {
    if constexpr (!kTail) _mm_prefetch(reinterpret_cast<const char*>(next + i) + kPrefetchBytes, _MM_HINT_T0);
    const __m512 v = kTail ? _mm512_mask_loadu_ps(_mm512_set1_ps(-std::numeric_limits<float>::infinity()), live,
                                                  next + i)
                           : _mm512_loadu_ps(next + i);
    acc = _mm512_max_ps(acc, v);
    nan |= _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
  }
  if constexpr (kCur) {
    const __m512 c = kTail ? _mm512_maskz_loadu_ps(live, cur + i) : _mm512_loadu_ps(cur + i);
    if (first < 0) {
      const unsigned eq = _mm512_mask_cmp_ps_mask(live, c, vm, _CMP_EQ_OQ);
      if (eq) first = i + __builtin_ctz(eq);
    }
    if constexpr (kExp) {
      const __m512 e = exp512_nonpositive(_mm512_sub_ps(c, vm));
      sum = kTail ? _mm512_mask_add_ps(sum, live, sum, e) : _mm512_add_ps(sum, e);
    }
  }
}

template <bool kNext, bool kCur, bool kExp>
CLLSTR_TARGET_AVX512 inline RowPair row_pair_avx512_impl(const float* cur, float m_cur, const float* next,
                                                         int64_t C) {
  RowPair r{C, 0.0f, -std::numeric_limits<float>::infinity(), false};
  const __m512 vm = _mm512_set1_ps(m_cur);
  __m512 acc = _mm512_set1_ps(-std::numeric_limits<float>::infinity()), sum = _mm512_setzero_ps();
  __mmask16 nan = 0;
  int64_t first = -1, i = 0;
  for (; i + 16 <= C; i += 16) {
    row_pair_block<kNext, kCur, kExp, false>(cur, next, i, 0xFFFF, vm, acc, nan, sum, first);
  }
  if (i < C) {
    const __mmask16 live = static_cast<__mmask16>((1u << (C - i)) - 1);
    row_pair_block<kNext, kCur, kExp, true>(cur, next, i, live, vm, acc, nan, sum, first);
  }
  if (kCur) {
    if (first >= 0) r.first = first;
    r.sum = _mm512_reduce_add_ps(sum);
  }
  if (kNext) {
    r.next_max = hmax512(acc);
    r.next_nan = nan != 0;
  }
  return r;
}

CLLSTR_TARGET_AVX512 inline RowPair row_pair_avx512(const float* cur, float m_cur, const float* next, int64_t C,
                                                    bool with_exp) {
  if (cur == nullptr) return row_pair_avx512_impl<true, false, false>(cur, m_cur, next, C);
  if (next == nullptr) {
    return with_exp ? row_pair_avx512_impl<false, true, true>(cur, m_cur, next, C)
                    : row_pair_avx512_impl<false, true, false>(cur, m_cur, next, C);
  }
  return with_exp ? row_pair_avx512_impl<true, true, true>(cur, m_cur, next, C)
                  : row_pair_avx512_impl<true, true, false>(cur, m_cur, next, C);
}

#endif  // CLLSTR_HAVE_AVX512_SCAN

#if CLLSTR_HAVE_AVX512_SCAN
#define CLLSTR_TARGET_AVX2 __attribute__((target("avx2,fma")))

CLLSTR_TARGET_AVX2 inline float hmax256(__m256 v) {
  __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  m = _mm_max_ps(m, _mm_movehl_ps(m, m));
  m = _mm_max_ss(m, _mm_movehdup_ps(m));
  return _mm_cvtss_f32(m);
}

CLLSTR_TARGET_AVX2 inline float hsum256(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// row_top for AVX2 processors (measured on an AMD EPYC without AVX-512: the portable body's masks are built lane
// by lane, and its prefetch of the whole next row in one burst leaves most of that row to the hardware): the floor
// pass of row_top_floor_portable_body with eight 8-lane accumulators and a fixed-distance prefetch (as the AVX-512
// pass), then the threshold pass over 64 entries per test with movemask.
CLLSTR_TARGET_AVX2 inline float row_top_floor_avx2(const float* x, int64_t C, int32_t M) {
  const float ninf = -std::numeric_limits<float>::infinity();
  if (M + 1 > kTopBuckets || C < 2 * kTopBuckets) return ninf;
  // Eight named accumulators (an array of them was kept on the stack by GCC 12).
  __m256 a0 = _mm256_set1_ps(ninf), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
  for (int64_t i = 0; i + kTopBuckets <= C; i += kTopBuckets) {
    const char* pf_at = reinterpret_cast<const char*>(x + i) + kPrefetchBytes;
    _mm_prefetch(pf_at, _MM_HINT_T0);
    _mm_prefetch(pf_at + 64, _MM_HINT_T0);
    _mm_prefetch(pf_at + 128, _MM_HINT_T0);
    _mm_prefetch(pf_at + 192, _MM_HINT_T0);
    // max(v, a) with v first: vmaxps returns its second operand when either is NaN, so NaN never enters.
    a0 = _mm256_max_ps(_mm256_loadu_ps(x + i), a0);
    a1 = _mm256_max_ps(_mm256_loadu_ps(x + i + 8), a1);
    a2 = _mm256_max_ps(_mm256_loadu_ps(x + i + 16), a2);
    a3 = _mm256_max_ps(_mm256_loadu_ps(x + i + 24), a3);
    a4 = _mm256_max_ps(_mm256_loadu_ps(x + i + 32), a4);
    a5 = _mm256_max_ps(_mm256_loadu_ps(x + i + 40), a5);
    a6 = _mm256_max_ps(_mm256_loadu_ps(x + i + 48), a6);
    a7 = _mm256_max_ps(_mm256_loadu_ps(x + i + 56), a7);
  }
  alignas(32) float m[kTopBuckets];
  _mm256_store_ps(m, a0);
  _mm256_store_ps(m + 8, a1);
  _mm256_store_ps(m + 16, a2);
  _mm256_store_ps(m + 24, a3);
  _mm256_store_ps(m + 32, a4);
  _mm256_store_ps(m + 40, a5);
  _mm256_store_ps(m + 48, a6);
  _mm256_store_ps(m + 56, a7);
  // The (M+1)-th largest maximum: the largest maximum that at least M+1 maxima reach, eight maxima at a time
  // (reach[j] counts the k with m[k] >= m[j]; a compare's all-ones lane is -1 as an integer).
  const __m256i need = _mm256_set1_epi32(M);
  __m256 best = _mm256_set1_ps(ninf);
  for (int j = 0; j < kTopBuckets; j += 8) {
    const __m256 mj = _mm256_load_ps(m + j);
    __m256i reach = _mm256_setzero_si256();
    for (int k = 0; k < kTopBuckets; ++k) {
      const __m256 ge = _mm256_cmp_ps(_mm256_broadcast_ss(m + k), mj, _CMP_GE_OQ);
      reach = _mm256_sub_epi32(reach, _mm256_castps_si256(ge));
    }
    const __m256 ok = _mm256_castsi256_ps(_mm256_cmpgt_epi32(reach, need));
    best = _mm256_max_ps(best, _mm256_blendv_ps(_mm256_set1_ps(ninf), mj, ok));
  }
  return hmax256(best);
}

CLLSTR_TARGET_AVX2 inline int32_t row_top_avx2(const float* x, int64_t C, int64_t blank, int32_t M, float* vals,
                                               int32_t* idx) {
  if (M <= 0) return 0;
  float thr = row_top_floor_avx2(x, C, M);
  int32_t n = 0;
  auto take = [&](int64_t i, uint64_t mask) {
    for (; mask; mask &= mask - 1) {
      const int64_t k = i + __builtin_ctzll(mask);
      const float val = x[k];
      if (k == blank || !(n < M ? val >= thr : val > thr)) continue;
      insert_desc(val, static_cast<int32_t>(k), vals, idx, n, M);
      if (n == M) thr = vals[M - 1];
    }
  };
  // This pass reads the row from L1; the memory is free meanwhile: ask for the row after next (one row plus the floor
  // pass's distance ahead), so that the next floor pass reads from cache.
  const char* pf = reinterpret_cast<const char*>(x + C) + kPrefetchBytes;
  const __m256 vninf = _mm256_set1_ps(-std::numeric_limits<float>::infinity());
  int64_t i = 0;
  for (; i + 64 <= C; i += 64) {
    _mm_prefetch(pf + 4 * i, _MM_HINT_T1);
    _mm_prefetch(pf + 4 * i + 64, _MM_HINT_T1);
    _mm_prefetch(pf + 4 * i + 128, _MM_HINT_T1);
    _mm_prefetch(pf + 4 * i + 192, _MM_HINT_T1);
    // The block's maximum against the threshold first; >= also covers the full list's > (take() applies the exact
    // test). vmaxps(v, b) returns b when either is NaN, so every chain starts from -inf and takes the loads as v:
    // a NaN is skipped and never hides another entry of its lane (the max of two loads could be a NaN).
    const __m256 vthr = _mm256_set1_ps(thr);
    __m256 b0 = _mm256_max_ps(_mm256_loadu_ps(x + i), vninf);
    __m256 b1 = _mm256_max_ps(_mm256_loadu_ps(x + i + 8), vninf);
    b0 = _mm256_max_ps(_mm256_loadu_ps(x + i + 16), b0);
    b1 = _mm256_max_ps(_mm256_loadu_ps(x + i + 24), b1);
    b0 = _mm256_max_ps(_mm256_loadu_ps(x + i + 32), b0);
    b1 = _mm256_max_ps(_mm256_loadu_ps(x + i + 40), b1);
    b0 = _mm256_max_ps(_mm256_loadu_ps(x + i + 48), b0);
    b1 = _mm256_max_ps(_mm256_loadu_ps(x + i + 56), b1);
    if (_mm256_movemask_ps(_mm256_cmp_ps(_mm256_max_ps(b0, b1), vthr, _CMP_GE_OQ)) == 0) continue;
    uint64_t mask = 0;
    for (int j = 0; j < 8; ++j) {
      mask |= static_cast<uint64_t>(_mm256_movemask_ps(_mm256_cmp_ps(_mm256_loadu_ps(x + i + 8 * j), vthr,
                                                                     _CMP_GE_OQ))) << (8 * j);
    }
    take(i, mask);
  }
  for (; i < C; ++i) take(i, 1);
  return n;
}
// exp(d) for 8 values d <= 0, as exp512_nonpositive: 2^t, t = d*log2(e) split into a rounded integer r and a
// fraction f in [-0.5, 0.5], 2^f by its Taylor polynomial of degree kDegree, scaled by 2^r built in the exponent
// bits (r >= -126 after the clamp, so the biased exponent stays normal). Relative error < 2e-7 at degree 6 (the
// softmax normalisers of the beam search and the CTC loss), < 3e-6 at degree 5 (the greedy decoder's confidence,
// where the one fewer multiply-add per 8 values measured ~12% of the decoding time on an AVX2 EPYC).
template <int kDegree = 6>
CLLSTR_TARGET_AVX2 inline __m256 exp256_nonpositive(__m256 d) {
  static_assert(kDegree == 5 || kDegree == 6, "exp256_nonpositive: degree 5 or 6");
  const __m256 t = _mm256_max_ps(_mm256_mul_ps(d, _mm256_set1_ps(1.44269504088896341f)), _mm256_set1_ps(-125.5f));
  const __m256 r = _mm256_round_ps(t, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  const __m256 f = _mm256_sub_ps(t, r);
  __m256 p = _mm256_set1_ps(1.3333558146428443e-3f);
  if constexpr (kDegree == 6) p = _mm256_fmadd_ps(_mm256_set1_ps(1.5403530393381606e-4f), f, p);
  p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(9.6181291076284772e-3f));
  p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(5.5504108664821580e-2f));
  p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(2.4022650695910071e-1f));
  p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(6.9314718055994531e-1f));
  p = _mm256_fmadd_ps(p, f, _mm256_set1_ps(1.0f));
  const __m256i bits = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(r), _mm256_set1_epi32(127)), 23);
  return _mm256_mul_ps(p, _mm256_castsi256_ps(bits));
}

// Maximum with a NaN flag (GCC 12 leaves lanes_max scalar in the AVX2 clone): two 8-lane accumulators, scalar tail.
// vmaxps(v, a) keeps a when v is NaN; the flag records it.
CLLSTR_TARGET_AVX2 inline float max256(const float* x, int64_t C, bool* has_nan) {
  __m256 a0 = _mm256_set1_ps(-std::numeric_limits<float>::infinity()), a1 = a0, nan = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 16 <= C; i += 16) {
    const __m256 v0 = _mm256_loadu_ps(x + i), v1 = _mm256_loadu_ps(x + i + 8);
    a0 = _mm256_max_ps(v0, a0);
    a1 = _mm256_max_ps(v1, a1);
    nan = _mm256_or_ps(nan, _mm256_cmp_ps(v0, v1, _CMP_UNORD_Q));
  }
  float m = hmax256(_mm256_max_ps(a0, a1));
  bool any = !_mm256_testz_ps(nan, nan);
  for (; i < C; ++i) {
    m = x[i] > m ? x[i] : m;
    any |= x[i] != x[i];
  }
  *has_nan = any;
  return m;
}

CLLSTR_TARGET_AVX2 inline float row_logsumexp_avx2(const float* x, int64_t C) {
  bool has_nan = false;
  const float m = max256(x, C, &has_nan);
  if (has_nan || m == std::numeric_limits<float>::infinity()) return std::numeric_limits<float>::quiet_NaN();
  if (m == -std::numeric_limits<float>::infinity()) return m;
  const __m256 vm = _mm256_set1_ps(m);
  __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 16 <= C; i += 16) {
    s0 = _mm256_add_ps(s0, exp256_nonpositive(_mm256_sub_ps(_mm256_loadu_ps(x + i), vm)));
    s1 = _mm256_add_ps(s1, exp256_nonpositive(_mm256_sub_ps(_mm256_loadu_ps(x + i + 8), vm)));
  }
  float s = hsum256(_mm256_add_ps(s0, s1));
  for (; i < C; ++i) s += exp_nonpositive(x[i] - m);
  return m + std::log(s);
}

// row_pair for AVX2 processors, as row_pair_avx512_impl: two 8-lane blocks per iteration, `next` prefetched a fixed
// distance ahead,
// the tail of both rows in scalar code.
template <bool kNext, bool kCur, bool kExp>
CLLSTR_TARGET_AVX2 inline RowPair row_pair_avx2_impl(const float* cur, float m_cur, const float* next, int64_t C) {
  RowPair r{C, 0.0f, -std::numeric_limits<float>::infinity(), false};
  const __m256 vm = _mm256_set1_ps(m_cur);
  __m256 acc = _mm256_set1_ps(-std::numeric_limits<float>::infinity()), acc1 = acc, nan = _mm256_setzero_ps();
  __m256 sum = _mm256_setzero_ps(), sum1 = _mm256_setzero_ps();
  int64_t first = -1, i = 0;
  // Two blocks per iteration: the exp chains of two accumulators overlap.
  for (; i + 16 <= C; i += 16) {
    if constexpr (kNext) {
      _mm_prefetch(reinterpret_cast<const char*>(next + i) + kPrefetchBytes, _MM_HINT_T0);
      const __m256 v0 = _mm256_loadu_ps(next + i), v1 = _mm256_loadu_ps(next + i + 8);
      acc = _mm256_max_ps(v0, acc);
      acc1 = _mm256_max_ps(v1, acc1);
      nan = _mm256_or_ps(nan, _mm256_cmp_ps(v0, v1, _CMP_UNORD_Q));
    }
    if constexpr (kCur) {
      const __m256 c0 = _mm256_loadu_ps(cur + i), c1 = _mm256_loadu_ps(cur + i + 8);
      if (first < 0) {
        const unsigned eq = static_cast<unsigned>(_mm256_movemask_ps(_mm256_cmp_ps(c0, vm, _CMP_EQ_OQ))) |
                            static_cast<unsigned>(_mm256_movemask_ps(_mm256_cmp_ps(c1, vm, _CMP_EQ_OQ))) << 8;
        if (eq) first = i + __builtin_ctz(eq);
      }
      if constexpr (kExp) {
        sum = _mm256_add_ps(sum, exp256_nonpositive<5>(_mm256_sub_ps(c0, vm)));
        sum1 = _mm256_add_ps(sum1, exp256_nonpositive<5>(_mm256_sub_ps(c1, vm)));
      }
    }
  }
  acc = _mm256_max_ps(acc, acc1);
  sum = _mm256_add_ps(sum, sum1);
  float next_max = hmax256(acc), s = hsum256(sum);
  bool next_nan = !_mm256_testz_ps(nan, nan);
  for (; i < C; ++i) {
    if constexpr (kNext) {
      next_max = next[i] > next_max ? next[i] : next_max;
      next_nan |= next[i] != next[i];
    }
    if constexpr (kCur) {
      if (first < 0 && cur[i] == m_cur) first = i;
      if constexpr (kExp) s += exp_nonpositive(cur[i] - m_cur);
    }
  }
  if (kCur) {
    if (first >= 0) r.first = first;
    r.sum = s;
  }
  if (kNext) {
    r.next_max = next_max;
    r.next_nan = next_nan;
  }
  return r;
}

CLLSTR_TARGET_AVX2 inline RowPair row_pair_avx2(const float* cur, float m_cur, const float* next, int64_t C,
                                                bool with_exp) {
  if (cur == nullptr) return row_pair_avx2_impl<true, false, false>(cur, m_cur, next, C);
  if (next == nullptr) {
    return with_exp ? row_pair_avx2_impl<false, true, true>(cur, m_cur, next, C)
                    : row_pair_avx2_impl<false, true, false>(cur, m_cur, next, C);
  }
  return with_exp ? row_pair_avx2_impl<true, true, true>(cur, m_cur, next, C)
                  : row_pair_avx2_impl<true, true, false>(cur, m_cur, next, C);
}
#endif  // CLLSTR_HAVE_AVX512_SCAN

// The M largest entries of x except `blank`, in descending order, lower index first among equal values (NaN never
// enters); returns how many (fewer than M only when the row has fewer non-NaN, non-blank entries).
// `ahead` (optional): the next row, asked for from memory during this one's pass.
inline int32_t row_top(const float* x, int64_t C, int64_t blank, int32_t M, float* vals, int32_t* idx,
                       const void* ahead = nullptr, int64_t ahead_bytes = 0) {
#if CLLSTR_HAVE_AVX512_SCAN
  if (isa() == Isa::kAvx512) {
    // The pass prefetches a fixed distance ahead of x, which covers `ahead` when it follows x in memory (fp32 rows);
    // another `ahead` (the next fp16/bf16 row, while x is its converted copy) is asked for here.
    if (ahead != nullptr && ahead != static_cast<const void*>(x + C)) prefetch_row(ahead, ahead_bytes);
    return row_top_avx512(x, C, blank, M, vals, idx);
  }
#endif
#if CLLSTR_HAVE_AVX512_SCAN
  if (isa() == Isa::kAvx2) {
    if (ahead != nullptr && ahead != static_cast<const void*>(x + C)) prefetch_row(ahead, ahead_bytes);
    return row_top_avx2(x, C, blank, M, vals, idx);
  }
#endif
  if (ahead != nullptr) prefetch_row(ahead, ahead_bytes);
  return row_top_portable(x, C, blank, M, vals, idx);
}

inline float row_logsumexp(const float* x, int64_t C) {
#if CLLSTR_HAVE_AVX512_SCAN
  if (isa() == Isa::kAvx512) return row_logsumexp_avx512(x, C);
  if (isa() == Isa::kAvx2) return row_logsumexp_avx2(x, C);
#endif
  return row_logsumexp_portable(x, C);
}

// cur or next may be null (the first and last rows of the pipeline).
inline RowPair row_pair(const float* cur, float m_cur, const float* next, int64_t C, bool with_exp) {
#if CLLSTR_HAVE_AVX512_SCAN
  if (isa() == Isa::kAvx512) return row_pair_avx512(cur, m_cur, next, C, with_exp);
  if (isa() == Isa::kAvx2) return row_pair_avx2(cur, m_cur, next, C, with_exp);
#endif
  return row_pair_portable(cur, m_cur, next, C, with_exp);
}

}  // namespace cpu
}  // namespace ops
}  // namespace cllstr
