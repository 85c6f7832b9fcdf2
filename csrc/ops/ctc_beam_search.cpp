// cllstr::ctc_beam_search — schema and the argument checks shared by the CPU and CUDA kernels.
//
// CTC prefix beam search in log space: every beam is a distinct labelling prefix with the log-probabilities of its
// alignments ending in a blank (pb) and in its last character (pnb); extensions that produce the same prefix are
// merged. Without pruning (top_n = 0, cutoff = 1) the result equals trying every class at every step.
//   log_probs: (B, T, C) float32/float16/bfloat16 log-probabilities, or raw scores when from_logits (log-softmax is
//              applied per step)
//   lengths:   (B,) int32/int64, valid time steps per sequence, 0 <= lengths[b] <= T
//   top_n:     > 0 tries only the top_n most probable non-blank classes per step for new characters
//   cutoff:    < 1 tries classes in descending probability only while the blank's probability plus theirs so far is
//              below cutoff
//   trie_*:    an optional character trie (CSR: node n's edges are offsets[n]..offsets[n+1] of tokens/children, tokens
//              sorted ascending; node 0 is the root; is_word marks complete words). A labelling that is not a word
//              pays oov_penalty once (the empty labelling never does); trie characters bypass the pruning.
//   returns    tokens (B, K, T) int64 padded with blank, out_lengths (B, K) int64, scores (B, K) float32 — log P of
//              the labelling summed over its alignments (plus the penalty), best first; hypotheses beyond the number
//              found have length 0 and score -inf.
#include "ops/ctc_beam_search.h"

#include <ATen/ATen.h>
#include <torch/library.h>

#include <cmath>

namespace cllstr {
namespace ops {

namespace {

void check_index_tensor(const at::Tensor& t, const char* name, const at::Tensor& log_probs) {
  TORCH_CHECK_VALUE(t.dim() == 1, "ctc_beam_search: ", name, " must be 1-D, got shape ", t.sizes());
  TORCH_CHECK_TYPE(t.scalar_type() == at::kLong, "ctc_beam_search: ", name, " must be int64, got ", t.scalar_type());
  TORCH_CHECK_VALUE(t.device() == log_probs.device(), "ctc_beam_search: ", name, " is on ", t.device(),
                    " but log_probs is on ", log_probs.device());
}

}  // namespace

bool check_ctc_beam_search_args(const at::Tensor& log_probs, const at::Tensor& lengths, int64_t blank,
                                int64_t beam_width, int64_t top_k, int64_t top_n, double cutoff,
                                const c10::optional<at::Tensor>& trie_offsets,
                                const c10::optional<at::Tensor>& trie_tokens,
                                const c10::optional<at::Tensor>& trie_children,
                                const c10::optional<at::Tensor>& trie_is_word, double oov_penalty) {
  TORCH_CHECK_VALUE(log_probs.dim() == 3, "ctc_beam_search: log_probs must be 3-D (B, T, C), got ", log_probs.dim(),
                    "-D with shape ", log_probs.sizes());
  const auto dt = log_probs.scalar_type();
  TORCH_CHECK_TYPE(dt == at::kFloat || dt == at::kHalf || dt == at::kBFloat16,
                   "ctc_beam_search: log_probs must be float32, float16 or bfloat16, got ", dt);
  TORCH_CHECK_VALUE(lengths.dim() == 1, "ctc_beam_search: lengths must be 1-D (B,), got shape ", lengths.sizes());
  TORCH_CHECK_TYPE(lengths.scalar_type() == at::kLong || lengths.scalar_type() == at::kInt,
                   "ctc_beam_search: lengths must be int64 or int32, got ", lengths.scalar_type());
  TORCH_CHECK_VALUE(lengths.size(0) == log_probs.size(0), "ctc_beam_search: lengths has ", lengths.size(0),
                    " entries but log_probs has batch size ", log_probs.size(0));
  TORCH_CHECK_VALUE(lengths.device() == log_probs.device(), "ctc_beam_search: lengths is on ", lengths.device(),
                    " but log_probs is on ", log_probs.device());
  const int64_t T = log_probs.size(1), C = log_probs.size(2);
  TORCH_CHECK_VALUE(C > 0, "ctc_beam_search: log_probs has no classes (C == 0)");
  TORCH_CHECK_VALUE(blank >= 0 && blank < C, "ctc_beam_search: blank=", blank, " is out of range for C=", C,
                    " classes (expected 0 <= blank < C)");
  TORCH_CHECK_VALUE(beam_width >= 1 && beam_width <= (1 << 16), "ctc_beam_search: beam_width must be in [1, 65536], got ",
                    beam_width);
  TORCH_CHECK_VALUE(top_k >= 1 && top_k <= beam_width, "ctc_beam_search: top_k must be in [1, beam_width=",
                    beam_width, "], got ", top_k);
  TORCH_CHECK_VALUE(top_n >= 0, "ctc_beam_search: top_n must be >= 0 (0 = no limit), got ", top_n);
  TORCH_CHECK_VALUE(cutoff > 0.0 && cutoff <= 1.0, "ctc_beam_search: cutoff must be in (0, 1], got ", cutoff);
  TORCH_CHECK_VALUE(!std::isnan(oov_penalty) && oov_penalty <= 0.0,
                    "ctc_beam_search: oov_penalty must be <= 0 (a log-probability penalty), got ", oov_penalty);
  if (lengths.numel() > 0) {
    const auto mm = at::aminmax(lengths);
    const int64_t lo = std::get<0>(mm).item<int64_t>(), hi = std::get<1>(mm).item<int64_t>();
    TORCH_CHECK_VALUE(lo >= 0, "ctc_beam_search: lengths must be >= 0, got a length of ", lo);
    TORCH_CHECK_VALUE(hi <= T, "ctc_beam_search: lengths must be <= T=", T, ", got a length of ", hi);
  }

  const int given = trie_offsets.has_value() + trie_tokens.has_value() + trie_children.has_value() +
                    trie_is_word.has_value();
  TORCH_CHECK_VALUE(given == 0 || given == 4,
                    "ctc_beam_search: the lexicon trie needs all four of trie_offsets, trie_tokens, trie_children and "
                    "trie_is_word (got ", given, ")");
  if (given == 0) return false;
  const at::Tensor& offsets = *trie_offsets;
  const at::Tensor& tokens = *trie_tokens;
  const at::Tensor& children = *trie_children;
  const at::Tensor& is_word = *trie_is_word;
  check_index_tensor(offsets, "trie_offsets", log_probs);
  check_index_tensor(tokens, "trie_tokens", log_probs);
  check_index_tensor(children, "trie_children", log_probs);
  TORCH_CHECK_VALUE(is_word.dim() == 1, "ctc_beam_search: trie_is_word must be 1-D, got shape ", is_word.sizes());
  TORCH_CHECK_TYPE(is_word.scalar_type() == at::kBool, "ctc_beam_search: trie_is_word must be bool, got ",
                   is_word.scalar_type());
  TORCH_CHECK_VALUE(is_word.device() == log_probs.device(), "ctc_beam_search: trie_is_word is on ", is_word.device(),
                    " but log_probs is on ", log_probs.device());
  const int64_t N = is_word.size(0), E = tokens.size(0);
  TORCH_CHECK_VALUE(N >= 1, "ctc_beam_search: trie_is_word is empty; the trie needs at least its root node");
  TORCH_CHECK_VALUE(N < (int64_t{1} << 31), "ctc_beam_search: the trie has too many nodes (", N, ")");
  TORCH_CHECK_VALUE(offsets.size(0) == N + 1, "ctc_beam_search: trie_offsets must have N+1=", N + 1,
                    " entries for the N=", N, " nodes of trie_is_word, got ", offsets.size(0));
  TORCH_CHECK_VALUE(children.size(0) == E, "ctc_beam_search: trie_children has ", children.size(0),
                    " entries but trie_tokens has ", E);
  const at::Tensor bounds = offsets.index({at::indexing::Slice(0, 1)}).cpu();
  const at::Tensor last = offsets.index({at::indexing::Slice(N, N + 1)}).cpu();
  TORCH_CHECK_VALUE(bounds.item<int64_t>() == 0 && last.item<int64_t>() == E,
                    "ctc_beam_search: trie_offsets must start at 0 and end at the number of edges ", E);
  if (N > 1) {
    const at::Tensor step = offsets.index({at::indexing::Slice(1, at::indexing::None)}) -
                            offsets.index({at::indexing::Slice(0, N)});
    TORCH_CHECK_VALUE(step.min().item<int64_t>() >= 0, "ctc_beam_search: trie_offsets must be non-decreasing");
  }
  if (E > 0) {
    const auto tm = at::aminmax(tokens);
    const int64_t tlo = std::get<0>(tm).item<int64_t>(), thi = std::get<1>(tm).item<int64_t>();
    TORCH_CHECK_VALUE(tlo >= 0 && thi < C, "ctc_beam_search: trie_tokens must be class ids in [0, C=", C,
                      "), got values in [", tlo, ", ", thi, "]");
    TORCH_CHECK_VALUE(!(tokens == blank).any().item<bool>(), "ctc_beam_search: trie_tokens contains the blank class ",
                      blank);
    if (E > 1) {
      // Within a node, tokens ascend strictly (the kernels binary-search them); a new node may start anywhere.
      at::Tensor starts = at::zeros({E + 1}, offsets.options().dtype(at::kBool));
      starts.index_put_({offsets}, true);
      const at::Tensor ascending = tokens.index({at::indexing::Slice(1, at::indexing::None)}) >
                                   tokens.index({at::indexing::Slice(0, E - 1)});
      const at::Tensor ok = ascending.logical_or(starts.index({at::indexing::Slice(1, E)}));
      TORCH_CHECK_VALUE(ok.all().item<bool>(),
                        "ctc_beam_search: trie_tokens must ascend strictly within each node's edges");
    }
    const auto cm = at::aminmax(children);
    const int64_t clo = std::get<0>(cm).item<int64_t>(), chi = std::get<1>(cm).item<int64_t>();
    TORCH_CHECK_VALUE(clo >= 1 && chi < N, "ctc_beam_search: trie_children must be node ids in [1, N=", N,
                      "), got values in [", clo, ", ", chi, "]");
  }
  return true;
}

}  // namespace ops
}  // namespace cllstr

TORCH_LIBRARY_FRAGMENT(cllstr, m) {
  m.def(
      "ctc_beam_search(Tensor log_probs, Tensor lengths, int blank=0, int beam_width=10, int top_k=1, "
      "bool from_logits=False, int top_n=0, float cutoff=1.0, Tensor? trie_offsets=None, Tensor? trie_tokens=None, "
      "Tensor? trie_children=None, Tensor? trie_is_word=None, float oov_penalty=-10.0) -> "
      "(Tensor tokens, Tensor out_lengths, Tensor scores)");
}
