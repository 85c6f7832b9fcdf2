#pragma once
// One step of CTC prefix beam search in log space, shared by the CPU kernel and the bookkeeping thread of the CUDA
// kernel (plain arrays, no allocation, __host__ __device__).
//
// A beam is a prefix of the canonical prefix tree (one node per distinct labelling, so identical prefixes are one
// entry and merge) with pb / pnb, the log-probabilities of its alignments ending in a blank / in its last character.
// From a beam with last character l, one step with log-probabilities lp gives:
//   stay (same prefix):   pb' = logadd(pb, pnb) + lp[blank];  pnb' = pnb + lp[l]  (repeats collapse)
//   extend by c != blank: pnb' = (c == l ? pb : logadd(pb, pnb)) + lp[c]   (doubled letters need a blank between)
// and an extension that equals a prefix already in the beam is added to that prefix's stay instead. Candidates
// are ranked by logadd(pb', pnb') plus the lexicon penalty and the K best are kept.
#include <cmath>
#include <cstdint>

#if defined(__CUDACC__)
#define CLLSTR_HD __host__ __device__
#else
#define CLLSTR_HD
#endif

namespace cllstr {
namespace ops {
namespace beam {

CLLSTR_HD inline double log_add(double a, double b) {
  if (a < b) {
    const double t = a;
    a = b;
    b = t;
  }
  // exp(-40) = 4e-18: below half an ulp of any a with |a| >= 0.04, and at most 4e-18 absolute otherwise.
  if (!(b - a > -40.0)) return a;  // also b = -inf and NaN
  return a + ::log1p(::exp(b - a));
}

// A character trie in CSR form: node n's edges are offsets[n]..offsets[n+1] of tokens (ascending) and children.
struct Trie {
  const int64_t* offsets = nullptr;
  const int64_t* tokens = nullptr;
  const int64_t* children = nullptr;
  const bool* is_word = nullptr;
  bool enabled = false;
  double oov = 0.0;

  // Child of `node` by class `c`, or -1.
  CLLSTR_HD int32_t child(int32_t node, int64_t c) const {
    int64_t lo = offsets[node], hi = offsets[node + 1];
    while (lo < hi) {
      const int64_t mid = lo + (hi - lo) / 2;
      if (tokens[mid] < c) {
        lo = mid + 1;
      } else {
        hi = mid;
      }
    }
    return (lo < offsets[node + 1] && tokens[lo] == c) ? static_cast<int32_t>(children[lo]) : -1;
  }
  // Penalty carried by a prefix at trie node `tnode` during the search (-1: it has left the trie).
  CLLSTR_HD double running_penalty(int32_t tnode) const { return (enabled && tnode < 0) ? oov : 0.0; }
  // Penalty of a finished labelling: also an in-trie prefix that is not a word (the empty labelling never pays).
  CLLSTR_HD double final_penalty(int32_t tnode, int32_t length) const {
    if (!enabled || length == 0) return 0.0;
    return (tnode < 0 || !is_word[tnode]) ? oov : 0.0;
  }
};

// Canonical prefix tree, capacity 1 + K*T nodes (each step adds at most K); node 0 is the empty prefix.
struct PrefixTree {
  int32_t* parent;
  int32_t* token;
  int32_t* length;
  int32_t* trie_node;
  int32_t* first_child;
  int32_t* next_sibling;
  int32_t size;

  CLLSTR_HD void reset() {
    size = 1;
    parent[0] = -1;
    token[0] = -1;
    length[0] = 0;
    trie_node[0] = 0;
    first_child[0] = -1;
    next_sibling[0] = -1;
  }
  CLLSTR_HD int32_t last(int32_t node) const { return length[node] > 0 ? token[node] : -1; }
  // The node of prefix(p) + c, created on first use.
  CLLSTR_HD int32_t extend(int32_t p, int32_t c, int32_t tnode) {
    for (int32_t k = first_child[p]; k >= 0; k = next_sibling[k]) {
      if (token[k] == c) return k;
    }
    const int32_t k = size++;
    parent[k] = p;
    token[k] = c;
    length[k] = length[p] + 1;
    trie_node[k] = tnode;
    first_child[k] = -1;
    next_sibling[k] = first_child[p];
    first_child[p] = k;
    return k;
  }
};

struct Beam {
  int32_t prefix;
  double pb, pnb;
  double tot;  // logadd(pb, pnb)
};

struct Cand {
  double score, pb, pnb, tot;  // score = tot + the lexicon penalty
  int32_t src;    // index of the beam it comes from
  int32_t token;  // -1: the beam itself (stay), else the appended class
  int32_t tnode;
};

// Strict order of candidates, best first: higher score, then lower (src, token) so that every backend agrees.
CLLSTR_HD inline bool better(const Cand& a, const Cand& b) {
  if (a.score != b.score) return a.score > b.score;
  if (a.src != b.src) return a.src < b.src;
  return a.token < b.token;
}

// Bounded selection of the K best candidates: a binary min-heap on `better` (worst at the root).
struct TopK {
  Cand* heap;
  int32_t capacity;
  int32_t n;

  CLLSTR_HD bool full() const { return n == capacity; }
  CLLSTR_HD const Cand& worst() const { return heap[0]; }
  CLLSTR_HD void sift_down(int32_t i) {
    for (;;) {
      const int32_t l = 2 * i + 1, r = l + 1;
      int32_t w = i;
      if (l < n && better(heap[w], heap[l])) w = l;
      if (r < n && better(heap[w], heap[r])) w = r;
      if (w == i) return;
      const Cand t = heap[i];
      heap[i] = heap[w];
      heap[w] = t;
      i = w;
    }
  }
  CLLSTR_HD void push(const Cand& c) {
    if (!(c.score > -INFINITY)) return;  // impossible (or NaN) candidates never enter the beam
    if (n < capacity) {
      int32_t i = n++;
      heap[i] = c;
      while (i > 0) {
        const int32_t p = (i - 1) / 2;
        if (!better(heap[p], heap[i])) break;
        const Cand t = heap[i];
        heap[i] = heap[p];
        heap[p] = t;
        i = p;
      }
    } else if (better(c, heap[0])) {
      heap[0] = c;
      sift_down(0);
    }
  }
  // Sorts the kept candidates best first in place (heap[0..n)) and returns n.
  CLLSTR_HD int32_t sort() {
    const int32_t total = n;
    while (n > 1) {
      const Cand t = heap[0];
      heap[0] = heap[n - 1];
      heap[n - 1] = t;
      --n;
      sift_down(0);
    }
    n = total;
    return total;
  }
};

// Links the beams of a step: scratch[j] (parent_beam) is the beam holding prefix_j minus its last character, or -1,
// and scratch[K + i] (child_count) the number of beams whose parent_beam is i. Returns the number of candidate
// classes the step needs to equal trying every class: a beam's K best extensions lie among the K + 1 + m most
// probable non-blank classes, where the +1 is its own last class (scored from pb only) and m counts the classes
// that extend it into another beam (they merge there instead).
CLLSTR_HD inline int32_t link(const Beam* beams, int32_t n_beams, const PrefixTree& tree, int32_t K, int32_t* scratch) {
  int32_t* parent_beam = scratch;
  int32_t* child_count = scratch + K;
  for (int32_t i = 0; i < n_beams; ++i) child_count[i] = 0;
  int32_t most = 0;
  for (int32_t j = 0; j < n_beams; ++j) {
    parent_beam[j] = -1;
    const int32_t p = tree.parent[beams[j].prefix];
    if (p < 0) continue;
    for (int32_t i = 0; i < n_beams; ++i) {
      if (beams[i].prefix == p) {
        parent_beam[j] = i;
        const int32_t c = ++child_count[i];
        most = c > most ? c : most;
        break;
      }
    }
  }
  return K + 1 + most;
}

// The candidate that keeps beam j's prefix (scratch filled by link()): its blank and repeated-last-character
// alignments, plus the extension of its parent beam by its last character, which reaches this prefix and merges here.
template <typename LogProb>
CLLSTR_HD Cand stay(const LogProb& lp, double lp_blank, int32_t j, const Beam* beams, int32_t K,
                    const int32_t* scratch, const PrefixTree& tree, const Trie& trie) {
  const int32_t* parent_beam = scratch;  // see link()
  const Beam& b = beams[j];
  const int32_t pre = b.prefix, last = tree.last(pre);
  const double pb = b.tot + lp_blank;
  double pnb = -INFINITY;
  if (last >= 0) {
    const double lp_last = lp(last);
    pnb = b.pnb + lp_last;
    const int32_t i = parent_beam[j];
    if (i >= 0) {  // the extension of beam i by `last` is this prefix: merge it here
      const Beam& a = beams[i];
      const double src = (tree.last(a.prefix) == last) ? a.pb : a.tot;
      pnb = log_add(pnb, src + lp_last);
    }
  }
  const int32_t tnode = tree.trie_node[pre];
  const double tot = log_add(pb, pnb);
  return Cand{tot + trie.running_penalty(tnode), pb, pnb, tot, j, -1, tnode};
}

// Whether extending beam i by class c gives the prefix of another beam (the extension merges into that beam's stay).
CLLSTR_HD inline bool merged(int32_t i, int64_t c, const Beam* beams, int32_t n_beams, int32_t K,
                             const int32_t* scratch, const PrefixTree& tree) {
  const int32_t* parent_beam = scratch;  // see link()
  const int32_t* child_count = scratch + K;
  if (child_count[i] == 0) return false;
  for (int32_t j = 0; j < n_beams; ++j) {
    if (parent_beam[j] == i && tree.token[beams[j].prefix] == c) return true;
  }
  return false;
}

// The candidate that extends beam i by class c != blank, reaching trie node `tnode` (-1: outside the lexicon).
template <typename LogProb>
CLLSTR_HD Cand extension(const LogProb& lp, int32_t i, int64_t c, int32_t tnode, const Beam* beams,
                         const PrefixTree& tree, const Trie& trie) {
  const Beam& a = beams[i];
  const double pnb = ((c == tree.last(a.prefix)) ? a.pb : a.tot) + lp(c);
  return Cand{pnb + trie.running_penalty(tnode), -INFINITY, pnb, pnb, i, static_cast<int32_t>(c), tnode};
}

// Writes the selected candidates sorted[0..n) (best first) as the next beams, creating their prefix-tree nodes in
// that order, and returns n.
CLLSTR_HD inline int32_t commit(const Cand* sorted, int32_t n, const Beam* beams, Beam* out, PrefixTree& tree) {
  for (int32_t k = 0; k < n; ++k) {
    const Cand& c = sorted[k];
    const int32_t src_prefix = beams[c.src].prefix;
    const int32_t prefix = c.token < 0 ? src_prefix : tree.extend(src_prefix, c.token, c.tnode);
    out[k] = Beam{prefix, c.pb, c.pnb, c.tot};
  }
  return n;
}

// One time step. lp(c) returns the step's log-probability of class c (as double); chars[0..n_chars) are the classes
// tried for new characters, most probable first (trie children of a beam's node are tried in addition). scratch
// holds 2*K int32 filled by link() for these beams. Writes the new beams, best first, to `out` and returns their
// number (0 when all are impossible).
template <typename LogProb>
CLLSTR_HD int32_t step(const LogProb& lp, int64_t blank, const int32_t* chars, int32_t n_chars, const Beam* beams,
                       int32_t n_beams, Beam* out, Cand* heap_storage, int32_t K, int32_t* scratch, PrefixTree& tree,
                       const Trie& trie) {
  TopK top{heap_storage, K, 0};
  const double lp_blank = lp(blank);
  for (int32_t j = 0; j < n_beams; ++j) top.push(stay(lp, lp_blank, j, beams, K, scratch, tree, trie));
  const double pen_out = trie.enabled ? trie.oov : 0.0;
  const int32_t tnode_out = trie.enabled ? -1 : 0;
  for (int32_t i = 0; i < n_beams; ++i) {
    const int32_t tn = tree.trie_node[beams[i].prefix];
    const double base = beams[i].tot;
    const bool in_trie = trie.enabled && tn >= 0;
    if (in_trie) {
      for (int64_t e = trie.offsets[tn]; e < trie.offsets[tn + 1]; ++e) {
        const int64_t c = trie.tokens[e];
        if (!merged(i, c, beams, n_beams, K, scratch, tree)) {
          top.push(extension(lp, i, c, static_cast<int32_t>(trie.children[e]), beams, tree, trie));
        }
      }
    }
    for (int32_t k = 0; k < n_chars; ++k) {
      const int32_t c = chars[k];
      // chars descend in probability and an extension scores at most base + lp[c]: nothing later can enter.
      if (top.full() && base + lp(c) + pen_out < top.worst().score) break;
      if (in_trie && trie.child(tn, c) >= 0) continue;
      if (merged(i, c, beams, n_beams, K, scratch, tree)) continue;
      top.push(extension(lp, i, c, tnode_out, beams, tree, trie));
    }
  }
  return commit(heap_storage, top.sort(), beams, out, tree);
}

// The same step without a lexicon as independent work items, for a block of threads (the CUDA kernel): candidate
// `id` of the N = n_beams * (1 + n_chars) of enumerated_step_size() is the stay of beam id for id < n_beams, else
// beam i's extension by chars[k] with id = n_beams + i * n_chars + k (merged ones impossible). place() then puts each
// possible candidate at its rank among all of them; ranks are distinct since `better` is a strict order over distinct
// (src, token). The candidates of rank < K, in rank order, are the K best that step() keeps (its early break only
// skips candidates that cannot enter), so commit(sorted, n) continues exactly as step() does.
CLLSTR_HD inline int32_t enumerated_step_size(int32_t n_beams, int32_t n_chars) { return n_beams * (1 + n_chars); }

template <typename LogProb>
CLLSTR_HD Cand enumerated_candidate(int32_t id, const LogProb& lp, double lp_blank, const int32_t* chars,
                                    int32_t n_chars, const Beam* beams, int32_t n_beams, int32_t K,
                                    const int32_t* scratch, const PrefixTree& tree) {
  const Trie none{};
  if (id < n_beams) return stay(lp, lp_blank, id, beams, K, scratch, tree, none);
  const int32_t i = (id - n_beams) / n_chars, c = chars[(id - n_beams) % n_chars];
  if (merged(i, c, beams, n_beams, K, scratch, tree)) return Cand{-INFINITY, -INFINITY, -INFINITY, -INFINITY, i, c, 0};
  return extension(lp, i, c, 0, beams, tree, none);
}

// Writes cands[id] to sorted[rank] when it is possible and its rank among the possible cands[0..n) is below K.
// Possible candidates have ranks 0..P-1, so sorted[0..min(K, P)) is filled.
CLLSTR_HD inline void place(int32_t id, const Cand* cands, int32_t n, Cand* sorted, int32_t K) {
  const Cand& c = cands[id];
  if (!(c.score > -INFINITY)) return;  // impossible (or NaN), as TopK::push
  int32_t rank = 0;
  for (int32_t j = 0; j < n && rank < K; ++j) {
    if (cands[j].score > -INFINITY && better(cands[j], c)) ++rank;
  }
  if (rank < K) sorted[rank] = c;
}

// Final ranking: scores[k] = logadd(pb, pnb) + final penalty; order[k] = beam index, best first. Returns the number
// of possible (finite-score) labellings.
CLLSTR_HD inline int32_t finish(const Beam* beams, int32_t n_beams, const PrefixTree& tree, const Trie& trie,
                                double* scores, int32_t* order) {
  int32_t n = 0;
  for (int32_t j = 0; j < n_beams; ++j) {
    const int32_t pre = beams[j].prefix;
    const double s = beams[j].tot + trie.final_penalty(tree.trie_node[pre], tree.length[pre]);
    if (!(s > -INFINITY)) continue;
    int32_t pos = n++;  // insertion sort (K is small), stable: equal scores keep the beam order
    while (pos > 0 && scores[pos - 1] < s) {
      scores[pos] = scores[pos - 1];
      order[pos] = order[pos - 1];
      --pos;
    }
    scores[pos] = s;
    order[pos] = j;
  }
  return n;
}

}  // namespace beam
}  // namespace ops
}  // namespace cllstr
