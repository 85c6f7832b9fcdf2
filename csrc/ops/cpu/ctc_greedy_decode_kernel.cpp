// CPU kernel of cllstr::ctc_greedy_decode: at::parallel_for (OpenMP in torch's builds) over the batch; one pass per
// time step reads the next row from memory while it finds the arg-max and softmax normaliser of the current one.
// GCC 12's AVX-512 headers pass _mm512_undefined_ps() to masked builtins and then warn about it (GCC bug 105593);
// the warning's location is inside the system header, so it is silenced for the whole file, before any include.
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
#include <limits>
#include <vector>

#include "ops/cpu/row_scan.h"
#include "ops/ctc_greedy_decode.h"

namespace cllstr {
namespace ops {

namespace {

// Per row: the arg-max (first index on ties, the first NaN when there is one, as torch.max) and the log of the
// maximum probability. Rows are visited in pairs (ops/cpu/row_scan.h row_pair): the maximum of row t+1 is found in
// the same pass that finds row t's arg-max and softmax normaliser.
template <typename scalar_t>
void decode_batch(const at::Tensor& logits, const int64_t* lengths, int64_t blank, bool log_probs, int64_t* tokens,
                  int64_t* out_lengths, float* confidence) {
  const int64_t B = logits.size(0), T = logits.size(1), C = logits.size(2);
  const scalar_t* data = logits.const_data_ptr<scalar_t>();
  at::parallel_for(0, B, 1, [&](int64_t b0, int64_t b1) {
    std::vector<float> buffer;
    if (!std::is_same<scalar_t, float>::value) buffer.resize(2 * C);
    int slot = 0;  // low-precision rows are converted into two alternating buffers (cur and next)
    auto row = [&](int64_t b, int64_t t) -> const float* {
      const scalar_t* r = data + (b * T + t) * C;
      if constexpr (std::is_same<scalar_t, float>::value) {
        return r;
      } else {
        float* out = buffer.data() + (slot ^= 1) * C;
        for (int64_t c = 0; c < C; ++c) out[c] = static_cast<float>(r[c]);
        return out;
      }
    };
    // The rows to decode, in memory order: (b, t) for t < lengths[b]; the pipeline runs across sequences too, so
    // that the first row of a sequence is read while the last row of the previous one is finished.
    int64_t nb = b0;
    while (nb < b1 && lengths[nb] == 0) ++nb;
    int64_t nt = 0;
    const float* next = nb < b1 ? row(nb, 0) : nullptr;
    cpu::RowPair ahead = next ? cpu::row_pair(nullptr, 0.0f, next, C, false) : cpu::RowPair{};
    for (int64_t b = b0; b < b1; ++b) {
      const int64_t len = lengths[b];
      int64_t* out = tokens + b * T;
      int64_t n = 0;
      int64_t prev = -1;
      double logp_sum = 0.0;
      for (int64_t t = 0; t < len; ++t) {
        const float* cur = next;  // row (b, t) == (nb, nt)
        const float m = ahead.next_max;
        const bool nan = ahead.next_nan;
        if (++nt == lengths[nb]) {
          nt = 0;
          ++nb;
          while (nb < b1 && lengths[nb] == 0) ++nb;
        }
        next = nb < b1 ? row(nb, nt) : nullptr;
        const bool with_exp = !log_probs && !nan && !std::isinf(m);
        ahead = cpu::row_pair(cur, m, next, C, with_exp);
        int64_t best = ahead.first;
        float logp;
        if (nan) {
          best = 0;
          while (best < C && cur[best] == cur[best]) ++best;
          logp = std::numeric_limits<float>::quiet_NaN();
        } else if (log_probs) {
          logp = m;
        } else if (!with_exp) {
          logp = std::numeric_limits<float>::quiet_NaN();  // softmax of an all -inf (or +inf) row is undefined
        } else {
          logp = -std::log(ahead.sum);
        }
        logp_sum += logp;
        if (best != blank && best != prev) out[n++] = best;
        prev = best;
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
