// CPU kernel of cllstr::ctc_beam_search: at::parallel_for (OpenMP in torch's builds) over the batch, one sequence per
// task. Per time step one or two vectorised passes over the row (the softmax normaliser when from_logits; the few most
// probable classes, ops/cpu/row_scan.h) and the beam update of ctc_beam_search_core.h on K beams x ~K candidates.
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
#include "ops/ctc_beam_search.h"
#include "ops/ctc_beam_search_core.h"

namespace cllstr {
namespace ops {

namespace {

using cpu::row_logsumexp;
using cpu::row_top;

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
    std::vector<float> vals(std::max(M, 1));
    std::vector<double> final_scores(K);
    for (int64_t b = b0; b < b1; ++b) {
      tree.reset();
      cur[0] = beam::Beam{0, 0.0, -INFINITY, 0.0};
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
        const int32_t m = std::min(M, beam::link(cur.data(), n, tree, K, scratch.data()));
        // The next row is asked for from memory during this row's pass (measured: as fast as asking for it all at
        // once before the beam update, faster than leaving it to the hardware prefetcher).
        const void* ahead = t + 1 < lengths[b] ? row + C : nullptr;
        int32_t n_chars = row_top(x, C, o.blank, m, vals.data(), chars.data(), ahead,
                                  C * static_cast<int64_t>(sizeof(scalar_t)));
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
