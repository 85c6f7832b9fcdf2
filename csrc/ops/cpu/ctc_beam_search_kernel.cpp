// CPU kernel of cllstr::ctc_beam_search: at::parallel_for (OpenMP in torch's builds) over the batch, one sequence per
// task. Per time step two vectorised passes over the row (the softmax normaliser when from_logits, then the few most
// probable classes) and the beam update of ctc_beam_search_core.h on K beams x ~2K candidate classes.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <vector>

#include "ops/cpu/isa_dispatch.h"
#include "ops/cpu/vec_math.h"
#include "ops/ctc_beam_search.h"
#include "ops/ctc_beam_search_core.h"

namespace cllstr {
namespace ops {

namespace {

using cpu::exp_nonpositive;

// log(sum(exp(x))) of one row; -inf for an all -inf row, NaN when the row holds NaN or +inf.
CLLSTR_ALWAYS_INLINE inline float row_logsumexp_body(const float* x, int64_t C) {
  bool has_nan = false;
  const float m = cpu::lanes_max(x, C, &has_nan);
  if (has_nan || m == std::numeric_limits<float>::infinity()) return std::numeric_limits<float>::quiet_NaN();
  if (m == -std::numeric_limits<float>::infinity()) return m;
  float s = 0.0f;
#pragma omp simd reduction(+ : s)
  for (int64_t i = 0; i < C; ++i) s += exp_nonpositive(x[i] - m);
  return m + std::log(s);
}
CLLSTR_ISA_DISPATCH(float, row_logsumexp, (const float* x, int64_t C), (x, C))

constexpr int64_t kChunk = 64;
constexpr int64_t kGroup = 8;

// Maximum of every kChunk entries of x, vectorised (a NaN may or may not win: callers scan such chunks).
CLLSTR_ALWAYS_INLINE inline void chunk_max_body(const float* x, int64_t C, float* out) {
  for (int64_t c0 = 0, k = 0; c0 < C; c0 += kChunk, ++k) {
    const int64_t c1 = std::min(C, c0 + kChunk);
    bool has_nan = false;  // a chunk with NaN may report any maximum: callers scan such chunks anyway
    out[k] = cpu::lanes_max(x + c0, c1 - c0, &has_nan);
  }
}
CLLSTR_ISA_DISPATCH(void, chunk_max, (const float* x, int64_t C, float* out), (x, C, out))

// Bit j set when x[g + j] >= thr, for the n <= kGroup entries from g.
CLLSTR_ALWAYS_INLINE inline unsigned group_mask_body(const float* x, int64_t n, float thr) {
  unsigned mask = 0;
  if (n == kGroup) {
    for (int j = 0; j < kGroup; ++j) mask |= static_cast<unsigned>(x[j] >= thr) << j;
  } else {
    for (int64_t j = 0; j < n; ++j) mask |= static_cast<unsigned>(x[j] >= thr) << j;
  }
  return mask;
}
CLLSTR_ISA_DISPATCH(unsigned, group_mask, (const float* x, int64_t n, float thr), (x, n, thr))

// The M largest entries of x except `blank`, in descending order, lower index first among equal values (NaN never
// enters). The (M+1)-th largest chunk maximum bounds the M-th largest non-blank entry from below (M+1 chunks reach
// it, at most one of them through the blank), so only those chunks are scanned, eight entries per test.
int32_t row_top(const float* x, int64_t C, int64_t blank, int32_t M, float* vals, int32_t* idx,
                std::vector<float>& cmax, std::vector<float>& sorted) {
  if (M <= 0) return 0;
  const int64_t nchunks = (C + kChunk - 1) / kChunk;
  cmax.resize(nchunks);
  chunk_max(x, C, cmax.data());
  float floor = -std::numeric_limits<float>::infinity();
  if (nchunks > M) {
    sorted.resize(nchunks);
    for (int64_t k = 0; k < nchunks; ++k) sorted[k] = cmax[k] == cmax[k] ? cmax[k] : -INFINITY;  // NaN: no bound
    std::nth_element(sorted.begin(), sorted.begin() + M, sorted.end(), std::greater<float>());
    floor = sorted[M];
  }
  int32_t n = 0;
  float thr = floor;  // an entry enters when >= floor while the list is short, > the M-th value once it is full
  for (int64_t k = 0; k < nchunks; ++k) {
    if (cmax[k] < thr) continue;  // a NaN maximum is scanned
    const int64_t c1 = std::min(C, (k + 1) * kChunk);
    for (int64_t g = k * kChunk; g < c1; g += kGroup) {
      for (unsigned mask = group_mask(x + g, std::min(kGroup, c1 - g), thr); mask; mask &= mask - 1) {
        const int64_t i = g + __builtin_ctz(mask);
        const float v = x[i];
        if (i == blank || (n == M && !(v > thr))) continue;
        int32_t pos = n < M ? n++ : M - 1;
        while (pos > 0 && vals[pos - 1] < v) {
          vals[pos] = vals[pos - 1];
          idx[pos] = idx[pos - 1];
          --pos;
        }
        vals[pos] = v;
        idx[pos] = static_cast<int32_t>(i);
        if (n == M) thr = vals[M - 1];
      }
    }
  }
  return n;
}

struct Options {
  int64_t blank, K, top_k, top_n;
  double cutoff;
  bool from_logits;
  beam::Trie trie;
};

template <typename scalar_t>
void search_batch(const at::Tensor& log_probs, const int64_t* lengths, const Options& o, int64_t* tokens,
                  int64_t* out_lengths, float* scores) {
  const int64_t B = log_probs.size(0), T = log_probs.size(1), C = log_probs.size(2);
  const int32_t K = static_cast<int32_t>(o.K);
  const int32_t M = static_cast<int32_t>(ctc_beam_search_num_chars(C, o.K, o.top_n));
  const scalar_t* data = log_probs.const_data_ptr<scalar_t>();
  at::parallel_for(0, B, 1, [&](int64_t b0, int64_t b1) {
    std::vector<float> buffer;
    if (!std::is_same<scalar_t, float>::value) buffer.resize(C);
    const int64_t cap = 1 + o.K * T;
    std::vector<int32_t> tree_mem(6 * cap);
    beam::PrefixTree tree{tree_mem.data(),           tree_mem.data() + cap,     tree_mem.data() + 2 * cap,
                          tree_mem.data() + 3 * cap, tree_mem.data() + 4 * cap, tree_mem.data() + 5 * cap, 0};
    std::vector<beam::Beam> cur(K), nxt(K);
    std::vector<beam::Cand> heap(K);
    std::vector<int32_t> scratch(2 * K), chars(std::max(M, 1)), order(K);
    std::vector<float> vals(std::max(M, 1)), cmax, sorted;
    std::vector<double> final_scores(K);
    for (int64_t b = b0; b < b1; ++b) {
      tree.reset();
      cur[0] = beam::Beam{0, 0.0, -INFINITY};
      int32_t n = 1;
      for (int64_t t = 0; t < lengths[b] && n > 0; ++t) {
        const scalar_t* row = data + (b * T + t) * C;
        const float* x;
        if constexpr (std::is_same<scalar_t, float>::value) {
          x = row;
        } else {
          for (int64_t c = 0; c < C; ++c) buffer[c] = static_cast<float>(row[c]);
          x = buffer.data();
        }
        const double norm = o.from_logits ? static_cast<double>(row_logsumexp(x, C)) : 0.0;
        auto lp = [&](int64_t c) { return static_cast<double>(x[c]) - norm; };
        const int32_t m = std::min(M, beam::exact_num_chars(cur.data(), n, tree, K));
        int32_t n_chars = row_top(x, C, o.blank, m, vals.data(), chars.data(), cmax, sorted);
        if (o.cutoff < 1.0) {
          double acc = std::exp(lp(o.blank));
          int32_t k = 0;
          while (k < n_chars && acc < o.cutoff) acc += std::exp(lp(chars[k++]));
          n_chars = k;
        }
        n = beam::step(lp, o.blank, chars.data(), n_chars, cur.data(), n, nxt.data(), heap.data(), K, scratch.data(),
                       tree, o.trie);
        std::swap(cur, nxt);
      }
      const int32_t found = beam::finish(cur.data(), n, tree, o.trie, final_scores.data(), order.data());
      for (int64_t k = 0; k < o.top_k; ++k) {
        int64_t* out = tokens + (b * o.top_k + k) * T;
        std::fill(out, out + T, o.blank);
        if (k >= found) {
          out_lengths[b * o.top_k + k] = 0;
          scores[b * o.top_k + k] = -std::numeric_limits<float>::infinity();
          continue;
        }
        int32_t node = cur[order[k]].prefix;
        const int32_t len = tree.length[node];
        for (int32_t pos = len - 1; pos >= 0; --pos, node = tree.parent[node]) out[pos] = tree.token[node];
        out_lengths[b * o.top_k + k] = len;
        scores[b * o.top_k + k] = static_cast<float>(final_scores[k]);
      }
    }
  });
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> ctc_beam_search_cpu(
    const at::Tensor& log_probs_in, const at::Tensor& lengths_in, int64_t blank, int64_t beam_width, int64_t top_k,
    bool from_logits, int64_t top_n, double cutoff, const c10::optional<at::Tensor>& trie_offsets,
    const c10::optional<at::Tensor>& trie_tokens, const c10::optional<at::Tensor>& trie_children,
    const c10::optional<at::Tensor>& trie_is_word, double oov_penalty) {
  const bool lex = check_ctc_beam_search_args(log_probs_in, lengths_in, blank, beam_width, top_k, top_n, cutoff,
                                              trie_offsets, trie_tokens, trie_children, trie_is_word, oov_penalty);
  TORCH_CHECK(log_probs_in.device().is_cpu(), "ctc_beam_search (CPU kernel): log_probs must be on the CPU");
  const at::Tensor log_probs = log_probs_in.contiguous();
  const at::Tensor lengths = lengths_in.to(at::kLong).contiguous();
  const int64_t B = log_probs.size(0), T = log_probs.size(1);
  at::Tensor tokens = at::empty({B, top_k, T}, log_probs.options().dtype(at::kLong));
  at::Tensor out_lengths = at::empty({B, top_k}, log_probs.options().dtype(at::kLong));
  at::Tensor scores = at::empty({B, top_k}, log_probs.options().dtype(at::kFloat));
  if (B == 0) return {tokens, out_lengths, scores};
  Options o{blank, beam_width, top_k, top_n, cutoff, from_logits, beam::Trie{}};
  at::Tensor offsets, ttokens, tchildren, tword;
  if (lex) {
    offsets = trie_offsets->contiguous();
    ttokens = trie_tokens->contiguous();
    tchildren = trie_children->contiguous();
    tword = trie_is_word->contiguous();
    o.trie = beam::Trie{offsets.const_data_ptr<int64_t>(), ttokens.const_data_ptr<int64_t>(),
                        tchildren.const_data_ptr<int64_t>(), tword.const_data_ptr<bool>(), true, oov_penalty};
  }
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, log_probs.scalar_type(), "ctc_beam_search_cpu", [&] {
    search_batch<scalar_t>(log_probs, lengths.const_data_ptr<int64_t>(), o, tokens.data_ptr<int64_t>(),
                           out_lengths.data_ptr<int64_t>(), scores.data_ptr<float>());
  });
  return {tokens, out_lengths, scores};
}

}  // namespace

TORCH_LIBRARY_IMPL(cllstr, CPU, m) { m.impl("ctc_beam_search", &ctc_beam_search_cpu); }

}  // namespace ops
}  // namespace cllstr
