// CUDA kernel of cllstr::ctc_beam_search: one block per sequence. Per time step the block's threads cooperate over
// the vocabulary (the softmax normaliser, then the ~2K most probable classes by repeated block arg-max, since
// T≈25 is short and C≈4.7K is large) and over beam x class: each thread scores (beam, class) candidates and ranks
// them against all others (beam::enumerated_candidate / beam::place of ctc_beam_search_core.h, which select exactly
// the candidates of the CPU kernel's beam::step), and one thread commits the K best to the prefix tree. With a
// lexicon the update is beam::step by one thread. Prefix trees, beams and candidates live in a global workspace.
#include <ATen/core/Tensor.h>
#include <ATen/Dispatch.h>
#include <ATen/ops/empty.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include <algorithm>

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "ops/ctc_beam_search.h"
#include "ops/ctc_beam_search_core.h"

namespace cllstr {
namespace ops {

namespace {

constexpr int kThreads = 256;
constexpr int kWarps = kThreads / 32;
// Most candidates of a step ranked by the block (each thread ranks its candidates against all: O(N^2 / threads));
// wider steps (beam_width above ~32) and lexicon steps are updated by one thread.
constexpr int64_t kMaxEnumerated = 2304;

struct Entry {
  float v;
  int32_t i;
};

// Order of the candidate classes: larger value first, lower index among equal values; NaN and i < 0 are last.
__device__ __forceinline__ bool ahead(Entry a, Entry b) {
  if (a.i < 0 || a.v != a.v) return false;
  if (b.i < 0 || b.v != b.v) return true;
  if (a.v != b.v) return a.v > b.v;
  return a.i < b.i;
}

__device__ __forceinline__ Entry warp_best(Entry a) {
  for (int off = 16; off > 0; off >>= 1) {
    Entry o{__shfl_down_sync(0xffffffffu, a.v, off), __shfl_down_sync(0xffffffffu, a.i, off)};
    if (ahead(o, a)) a = o;
  }
  return a;
}

__device__ __forceinline__ float warp_max(float v) {
  for (int off = 16; off > 0; off >>= 1) v = fmaxf(v, __shfl_down_sync(0xffffffffu, v, off));
  return v;
}

__device__ __forceinline__ float warp_sum(float v) {
  for (int off = 16; off > 0; off >>= 1) v += __shfl_down_sync(0xffffffffu, v, off);
  return v;
}

struct Workspace {
  int32_t* tree;  // 6 * cap per sequence
  beam::Beam* beams;  // 2 * K per sequence
  beam::Cand* heap;   // K (the selected candidates, best first)
  beam::Cand* cands;  // max_cands (the enumerated candidates of a step)
  int32_t* scratch;   // 2 * K + K (scratch, order)
  double* final_scores;  // K
  int32_t* chars;     // M
};

template <typename scalar_t>
__global__ void beam_search_kernel(const scalar_t* __restrict__ data, const int64_t* __restrict__ lengths, int64_t T,
                                   int64_t C, int64_t blank, int32_t K, int32_t M, int64_t top_k,
                                   double cutoff, bool from_logits, beam::Trie trie, Workspace ws, int32_t max_cands,
                                   int64_t* __restrict__ tokens, int64_t* __restrict__ out_lengths,
                                   float* __restrict__ scores) {
  const int64_t b = blockIdx.x;
  const int64_t cap = 1 + static_cast<int64_t>(K) * T;
  int32_t* tm = ws.tree + b * 6 * cap;
  beam::PrefixTree tree{tm, tm + cap, tm + 2 * cap, tm + 3 * cap, tm + 4 * cap, tm + 5 * cap, 0};
  beam::Beam* cur = ws.beams + b * 2 * K;
  beam::Beam* nxt = cur + K;
  beam::Cand* heap = ws.heap + b * K;
  beam::Cand* cands = ws.cands + b * max_cands;
  int32_t* scratch = ws.scratch + b * 3 * K;
  int32_t* order = scratch + 2 * K;
  double* final_scores = ws.final_scores + b * K;
  int32_t* chars = ws.chars + b * (M > 0 ? M : 1);

  __shared__ float red_f[kWarps];
  __shared__ Entry red_e[kWarps];
  __shared__ float s_norm;
  __shared__ Entry s_prev;
  __shared__ int32_t s_n, s_nchars, s_m, s_possible;
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;

  if (threadIdx.x == 0) {
    tree.reset();
    cur[0] = beam::Beam{0, 0.0, -INFINITY, 0.0};
    s_n = 1;
  }
  __syncthreads();
  const int64_t len = lengths[b];
  for (int64_t t = 0; t < len; ++t) {
    if (s_n == 0) break;  // uniform: read after a barrier
    const scalar_t* x = data + (b * T + t) * C;
    // Softmax normaliser of the row.
    if (from_logits) {
      float m = -INFINITY;
      int bad = 0;
      for (int64_t c = threadIdx.x; c < C; c += blockDim.x) {
        const float v = static_cast<float>(x[c]);
        bad |= (v != v) || (v == INFINITY);
        m = fmaxf(m, v);
      }
      bad = __syncthreads_or(bad);
      m = warp_max(m);
      if (lane == 0) red_f[warp] = m;
      __syncthreads();
      if (warp == 0) {
        m = lane < kWarps ? red_f[lane] : -INFINITY;
        m = warp_max(m);
        if (lane == 0) red_f[0] = m;
      }
      __syncthreads();
      m = red_f[0];
      __syncthreads();
      float s = 0.f;
      if (!bad && m > -INFINITY) {
        for (int64_t c = threadIdx.x; c < C; c += blockDim.x) s += __expf(static_cast<float>(x[c]) - m);
      }
      s = warp_sum(s);
      if (lane == 0) red_f[warp] = s;
      __syncthreads();
      if (threadIdx.x == 0) {
        float tot = 0.f;
        for (int w = 0; w < kWarps; ++w) tot += red_f[w];
        s_norm = bad ? NAN : (m > -INFINITY ? m + logf(tot) : -INFINITY);
      }
    } else if (threadIdx.x == 0) {
      s_norm = 0.f;
    }
    // The M classes tried for new characters: M rounds of a block arg-max over the entries after the previous one.
    if (threadIdx.x == 0) {
      s_prev = Entry{INFINITY, -1};
      const int32_t need = beam::link(cur, s_n, tree, K, scratch);
      s_m = need < M ? need : M;
    }
    __syncthreads();
    int32_t n_chars = 0;
    const int32_t m_step = s_m;
    for (int32_t r = 0; r < m_step; ++r) {
      const Entry prev = s_prev;
      Entry best{-INFINITY, -1};
      for (int64_t c = threadIdx.x; c < C; c += blockDim.x) {
        if (c == blank) continue;
        const Entry e{static_cast<float>(x[c]), static_cast<int32_t>(c)};
        const bool after = prev.i < 0 ? true : ahead(prev, e);
        if (after && ahead(e, best)) best = e;
      }
      best = warp_best(best);
      if (lane == 0) red_e[warp] = best;
      __syncthreads();
      if (threadIdx.x == 0) {
        Entry w = red_e[0];
        for (int k = 1; k < kWarps; ++k) {
          if (ahead(red_e[k], w)) w = red_e[k];
        }
        s_prev = w;
        if (w.i >= 0) chars[r] = w.i;
        s_nchars = w.i >= 0 ? r + 1 : r;
      }
      __syncthreads();
      n_chars = s_nchars;
      if (n_chars <= r) break;  // uniform
    }
    // Pruning by cumulative probability (one thread), then the beam update. The barrier first: every thread has
    // read s_nchars of the last selection round before thread 0 rewrites it. The beam count is read here, before the
    // next barrier: the one-thread update below rewrites s_n while a slower warp could otherwise still be about to
    // read it, and a warp that read the new count could take the other branch and wait at a different barrier.
    __syncthreads();
    const int32_t n_beams = s_n;
    const double norm = static_cast<double>(s_norm);
    auto lp = [&](int64_t c) { return static_cast<double>(static_cast<float>(x[c])) - norm; };
    if (threadIdx.x == 0) {
      if (cutoff < 1.0) {
        double acc = exp(lp(blank));
        int32_t k = 0;
        while (k < n_chars && acc < cutoff) acc += exp(lp(chars[k++]));
        n_chars = k;
      }
      s_nchars = n_chars;
      s_possible = 0;
    }
    __syncthreads();
    n_chars = s_nchars;
    const int32_t n_cands = beam::enumerated_step_size(n_beams, n_chars);
    if (!trie.enabled && n_cands <= max_cands) {  // uniform
      // every (beam, class) candidate by its own thread, then each one's rank by its own thread
      const double lp_blank = lp(blank);
      for (int32_t id = threadIdx.x; id < n_cands; id += blockDim.x) {
        cands[id] = beam::enumerated_candidate(id, lp, lp_blank, chars, n_chars, cur, n_beams, K, scratch, tree);
      }
      __syncthreads();
      int32_t possible = 0;
      for (int32_t id = threadIdx.x; id < n_cands; id += blockDim.x) {
        possible += cands[id].score > -INFINITY;
        beam::place(id, cands, n_cands, heap, K);
      }
      atomicAdd(&s_possible, possible);
      __syncthreads();
      if (threadIdx.x == 0) {
        s_n = beam::commit(heap, s_possible < K ? s_possible : K, cur, nxt, tree);
        for (int32_t k = 0; k < s_n; ++k) cur[k] = nxt[k];
      }
    } else if (threadIdx.x == 0) {  // a lexicon (or a very wide beam): the update by one thread
      s_n = beam::step(lp, blank, chars, n_chars, cur, n_beams, nxt, heap, K, scratch, tree, trie);
      for (int32_t k = 0; k < s_n; ++k) cur[k] = nxt[k];
    }
    __syncthreads();
  }
  if (threadIdx.x == 0) {
    const int32_t found = beam::finish(cur, s_n, tree, trie, final_scores, order);
    for (int64_t k = 0; k < top_k; ++k) {
      int64_t* out = tokens + (b * top_k + k) * T;
      int32_t length = 0;
      if (k < found) {
        int32_t node = cur[order[k]].prefix;
        length = tree.length[node];
        for (int32_t pos = length - 1; pos >= 0; --pos, node = tree.parent[node]) out[pos] = tree.token[node];
        scores[b * top_k + k] = static_cast<float>(final_scores[k]);
      } else {
        scores[b * top_k + k] = -INFINITY;
      }
      for (int64_t pos = length; pos < T; ++pos) out[pos] = blank;
      out_lengths[b * top_k + k] = length;
    }
  }
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> ctc_beam_search_cuda(
    const at::Tensor& log_probs_in, const at::Tensor& lengths_in, int64_t blank, int64_t beam_width, int64_t top_k,
    bool from_logits, int64_t top_n, double cutoff, const c10::optional<at::Tensor>& trie_offsets,
    const c10::optional<at::Tensor>& trie_tokens, const c10::optional<at::Tensor>& trie_children,
    const c10::optional<at::Tensor>& trie_is_word, double oov_penalty) {
  TORCH_CHECK(log_probs_in.is_cuda(), "ctc_beam_search (CUDA kernel): log_probs must be a CUDA tensor");
  const c10::cuda::CUDAGuard guard(log_probs_in.device());
  const bool lex = check_ctc_beam_search_args(log_probs_in, lengths_in, blank, beam_width, top_k, top_n, cutoff,
                                              trie_offsets, trie_tokens, trie_children, trie_is_word, oov_penalty);
  const at::Tensor log_probs = log_probs_in.contiguous();
  const at::Tensor lengths = lengths_in.to(at::kLong).contiguous();
  const int64_t B = log_probs.size(0), T = log_probs.size(1), C = log_probs.size(2);
  at::Tensor tokens = at::empty({B, top_k, T}, log_probs.options().dtype(at::kLong));
  at::Tensor out_lengths = at::empty({B, top_k}, log_probs.options().dtype(at::kLong));
  at::Tensor scores = at::empty({B, top_k}, log_probs.options().dtype(at::kFloat));
  if (B == 0) return {tokens, out_lengths, scores};
  const int32_t K = static_cast<int32_t>(beam_width);
  const int32_t M = static_cast<int32_t>(ctc_beam_search_num_chars(C, beam_width, top_n));
  const int64_t cap = 1 + beam_width * T;
  const auto opts = log_probs.options();
  at::Tensor tree = at::empty({B * 6 * cap}, opts.dtype(at::kInt));
  at::Tensor beams = at::empty({static_cast<int64_t>(B * 2 * K * sizeof(beam::Beam))}, opts.dtype(at::kByte));
  at::Tensor heap = at::empty({static_cast<int64_t>(B * K * sizeof(beam::Cand))}, opts.dtype(at::kByte));
  const int32_t max_cands = static_cast<int32_t>(
      std::min<int64_t>(static_cast<int64_t>(K) * (1 + (M > 0 ? M : 1)), kMaxEnumerated));
  at::Tensor cands = at::empty({static_cast<int64_t>(B * max_cands * sizeof(beam::Cand))}, opts.dtype(at::kByte));
  at::Tensor scratch = at::empty({B * 3 * K}, opts.dtype(at::kInt));
  at::Tensor final_scores = at::empty({B * K}, opts.dtype(at::kDouble));
  at::Tensor chars = at::empty({B * (M > 0 ? M : 1)}, opts.dtype(at::kInt));
  Workspace ws{tree.data_ptr<int32_t>(), reinterpret_cast<beam::Beam*>(beams.data_ptr<uint8_t>()),
               reinterpret_cast<beam::Cand*>(heap.data_ptr<uint8_t>()),
               reinterpret_cast<beam::Cand*>(cands.data_ptr<uint8_t>()), scratch.data_ptr<int32_t>(),
               final_scores.data_ptr<double>(), chars.data_ptr<int32_t>()};
  beam::Trie trie{};
  at::Tensor offsets, ttokens, tchildren, tword;
  if (lex) {
    offsets = trie_offsets->contiguous();
    ttokens = trie_tokens->contiguous();
    tchildren = trie_children->contiguous();
    tword = trie_is_word->contiguous();
    trie = beam::Trie{offsets.const_data_ptr<int64_t>(), ttokens.const_data_ptr<int64_t>(),
                      tchildren.const_data_ptr<int64_t>(), tword.const_data_ptr<bool>(), true, oov_penalty};
  }
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, log_probs.scalar_type(), "ctc_beam_search_cuda", [&] {
    beam_search_kernel<scalar_t><<<static_cast<unsigned>(B), kThreads, 0, stream>>>(
        log_probs.const_data_ptr<scalar_t>(), lengths.const_data_ptr<int64_t>(), T, C, blank, K, M, top_k, cutoff,
        from_logits, trie, ws, max_cands, tokens.data_ptr<int64_t>(), out_lengths.data_ptr<int64_t>(),
        scores.data_ptr<float>());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return {tokens, out_lengths, scores};
}

}  // namespace

TORCH_LIBRARY_IMPL(cllstr, CUDA, m) { m.impl("ctc_beam_search", &ctc_beam_search_cuda); }

}  // namespace ops
}  // namespace cllstr
