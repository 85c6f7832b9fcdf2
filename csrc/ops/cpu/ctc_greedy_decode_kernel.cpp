// CPU kernel of cllstr::ctc_greedy_decode: at::parallel_for (OpenMP in torch's builds) over the batch; per time step
// one fused pass finds the arg-max and the softmax normaliser of the row, which stays in L1 between the passes.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "ops/cpu/isa_dispatch.h"
#include "ops/cpu/vec_math.h"
#include "ops/ctc_greedy_decode.h"

namespace cllstr {
namespace ops {

namespace {

using cpu::exp_nonpositive;

struct RowResult {
  int64_t best;
  float logp;  // log of the maximum probability of the row
};

// Arg-max (first index on ties, NaN wins as in torch.max) and log max-probability of one row of C scores.
// Compiled for AVX-512, AVX2 and the baseline; the best the processor has runs (ops/cpu/isa_dispatch.h).
CLLSTR_ALWAYS_INLINE inline RowResult row_stats_body(const float* x, int64_t C, bool log_probs) {
  bool has_nan = false;
  const float m = cpu::lanes_max(x, C, &has_nan);
  RowResult res{0, 0.0f};
  if (has_nan) {
    while (res.best < C && x[res.best] == x[res.best]) ++res.best;
    res.logp = std::numeric_limits<float>::quiet_NaN();
    return res;
  }
  // First index holding the maximum: test chunks vectorised, scan only the chunk that has it.
  constexpr int64_t kChunk = 64;
  for (int64_t c0 = 0; c0 < C; c0 += kChunk) {
    const int64_t c1 = std::min(C, c0 + kChunk);
    int hit = 0;
#pragma omp simd reduction(| : hit)
    for (int64_t i = c0; i < c1; ++i) hit |= (x[i] == m);
    if (hit) {
      int64_t i = c0;
      while (x[i] != m) ++i;
      res.best = i;
      break;
    }
  }
  if (log_probs) {
    res.logp = m;
  } else if (std::isinf(m)) {
    res.logp = std::numeric_limits<float>::quiet_NaN();  // softmax of an all -inf (or +inf) row is undefined
  } else {
    float s = 0.0f;
#pragma omp simd reduction(+ : s)
    for (int64_t i = 0; i < C; ++i) s += exp_nonpositive(x[i] - m);
    res.logp = -std::log(s);
  }
  return res;
}

CLLSTR_ISA_DISPATCH(RowResult, row_stats, (const float* x, int64_t C, bool log_probs), (x, C, log_probs))

template <typename scalar_t>
void decode_batch(const at::Tensor& logits, const int64_t* lengths, int64_t blank, bool log_probs, int64_t* tokens,
                  int64_t* out_lengths, float* confidence) {
  const int64_t B = logits.size(0), T = logits.size(1), C = logits.size(2);
  const scalar_t* data = logits.const_data_ptr<scalar_t>();
  at::parallel_for(0, B, 1, [&](int64_t b0, int64_t b1) {
    std::vector<float> buffer;
    if (!std::is_same<scalar_t, float>::value) buffer.resize(C);
    for (int64_t b = b0; b < b1; ++b) {
      const int64_t len = lengths[b];
      int64_t* out = tokens + b * T;
      int64_t n = 0;
      int64_t prev = -1;
      double logp_sum = 0.0;
      for (int64_t t = 0; t < len; ++t) {
        const scalar_t* row = data + (b * T + t) * C;
        const float* x;
        if constexpr (std::is_same<scalar_t, float>::value) {
          x = row;
        } else {
          for (int64_t c = 0; c < C; ++c) buffer[c] = static_cast<float>(row[c]);
          x = buffer.data();
        }
        const RowResult r = row_stats(x, C, log_probs);
        logp_sum += r.logp;
        if (r.best != blank && r.best != prev) out[n++] = r.best;
        prev = r.best;
      }
      std::fill(out + n, out + T, blank);
      out_lengths[b] = n;
      confidence[b] = static_cast<float>(std::exp(logp_sum));
    }
  });
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> ctc_greedy_decode_cpu(const at::Tensor& logits_in,
                                                                    const at::Tensor& lengths_in, int64_t blank,
                                                                    bool log_probs) {
  check_ctc_greedy_decode_args(logits_in, lengths_in, blank);
  TORCH_CHECK(logits_in.device().is_cpu(), "ctc_greedy_decode (CPU kernel): logits must be on the CPU");
  const at::Tensor logits = logits_in.contiguous();
  const at::Tensor lengths = lengths_in.to(at::kLong).contiguous();
  const int64_t B = logits.size(0), T = logits.size(1);
  if (B > 0) {
    const auto mm = at::aminmax(lengths);
    check_ctc_greedy_decode_lengths(std::get<0>(mm).item<int64_t>(), std::get<1>(mm).item<int64_t>(), T);
  }
  at::Tensor tokens = at::empty({B, T}, logits.options().dtype(at::kLong));
  at::Tensor out_lengths = at::empty({B}, logits.options().dtype(at::kLong));
  at::Tensor confidence = at::empty({B}, logits.options().dtype(at::kFloat));
  if (B == 0) return {tokens, out_lengths, confidence};
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, logits.scalar_type(), "ctc_greedy_decode_cpu", [&] {
    decode_batch<scalar_t>(logits, lengths.const_data_ptr<int64_t>(), blank, log_probs, tokens.data_ptr<int64_t>(),
                           out_lengths.data_ptr<int64_t>(), confidence.data_ptr<float>());
  });
  return {tokens, out_lengths, confidence};
}

}  // namespace

TORCH_LIBRARY_IMPL(cllstr, CPU, m) { m.impl("ctc_greedy_decode", &ctc_greedy_decode_cpu); }

}  // namespace ops
}  // namespace cllstr
