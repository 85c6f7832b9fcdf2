// C++ unit test of the block-parallel beam update of the CUDA kernel of cllstr::ctc_beam_search, run here as a
// sequential emulation of the block: every candidate of beam::enumerated_candidate, then beam::place for each, then
// beam::commit, must give after every step exactly the beams (prefix-tree nodes, log-probabilities, order) of
// beam::step, the update of the CPU kernel. Random rows with ties, -inf entries and a blank anywhere; beams 1..33.
#include "ops/ctc_beam_search_core.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <random>
#include <vector>

namespace {

using namespace cllstr::ops;

int g_failures = 0;

#define EXPECT(cond, ...)                                                                   \
  do {                                                                                      \
    if (!(cond)) {                                                                          \
      std::fprintf(stderr, "%s:%d: expectation failed: %s: ", __FILE__, __LINE__, #cond); \
      std::fprintf(stderr, __VA_ARGS__);                                                    \
      std::fprintf(stderr, "\n");                                                           \
      ++g_failures;                                                                         \
    }                                                                                       \
  } while (0)

struct Search {
  int32_t K;
  std::vector<int32_t> store;
  beam::PrefixTree tree;
  std::vector<beam::Beam> cur, nxt;
  std::vector<beam::Cand> heap, cands;
  std::vector<int32_t> scratch;
  int32_t n = 1;

  Search(int32_t K_, int64_t T, int32_t M) : K(K_) {
    const int64_t cap = 1 + static_cast<int64_t>(K) * T;
    store.resize(6 * cap);
    int32_t* s = store.data();
    tree = beam::PrefixTree{s, s + cap, s + 2 * cap, s + 3 * cap, s + 4 * cap, s + 5 * cap, 0};
    tree.reset();
    cur.resize(K);
    nxt.resize(K);
    heap.resize(K);
    cands.resize(beam::enumerated_step_size(K, std::max(M, 1)));
    scratch.resize(2 * K);
    cur[0] = beam::Beam{0, 0.0, -INFINITY, 0.0};
  }
};

// One emulated block step: what the CUDA kernel's threads do between its barriers, one work item after another.
template <typename LogProb>
int32_t parallel_step(Search& s, const LogProb& lp, int64_t blank, const int32_t* chars, int32_t n_chars) {
  const int32_t N = beam::enumerated_step_size(s.n, n_chars);
  const double lp_blank = lp(blank);
  for (int32_t id = 0; id < N; ++id) {
    s.cands[id] = beam::enumerated_candidate(id, lp, lp_blank, chars, n_chars, s.cur.data(), s.n, s.K,
                                             s.scratch.data(), s.tree);
  }
  int32_t possible = 0;
  for (int32_t id = 0; id < N; ++id) {
    possible += s.cands[id].score > -INFINITY;
    beam::place(id, s.cands.data(), N, s.heap.data(), s.K);
  }
  return beam::commit(s.heap.data(), std::min(possible, s.K), s.cur.data(), s.nxt.data(), s.tree);
}

void run_case(std::mt19937& rng, int32_t K, int64_t C, int64_t T, int mode) {
  std::uniform_real_distribution<double> u(0.0, 1.0);
  const int64_t blank = static_cast<int64_t>(rng() % C);
  std::vector<float> rows(T * C);
  for (int64_t t = 0; t < T; ++t) {
    double sum = 0.0;
    std::vector<double> z(C);
    for (int64_t c = 0; c < C; ++c) {
      double v = 4.0 * std::log(u(rng) + 1e-12);
      if (mode == 1) v = std::round(v);  // many exact ties
      if (mode == 2 && c != blank && u(rng) < 0.3) v = -INFINITY;
      if (mode == 3 && c == blank) v += 3.0;  // mostly-blank rows
      z[c] = v;
      sum += std::exp(v);
    }
    for (int64_t c = 0; c < C; ++c) rows[t * C + c] = static_cast<float>(z[c] - std::log(sum));
  }
  const int32_t M = static_cast<int32_t>(std::min<int64_t>(C - 1, 2 * K));
  Search seq(K, T, M), par(K, T, M);
  beam::Trie none{};
  std::vector<int32_t> order(C), chars;
  for (int64_t t = 0; t < T; ++t) {
    const float* x = rows.data() + t * C;
    auto lp = [&](int64_t c) { return static_cast<double>(x[c]); };
    // the classes tried: non-blank, most probable first, lower index among equal values (the kernels' order)
    order.clear();
    for (int64_t c = 0; c < C; ++c) {
      if (c != blank) order.push_back(static_cast<int32_t>(c));
    }
    std::stable_sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return x[a] > x[b]; });
    const int32_t need = beam::link(seq.cur.data(), seq.n, seq.tree, K, seq.scratch.data());
    EXPECT(need == beam::link(par.cur.data(), par.n, par.tree, K, par.scratch.data()), "link t=%lld", (long long)t);
    const int32_t m = std::min<int32_t>({need, M, static_cast<int32_t>(order.size())});
    chars.assign(order.begin(), order.begin() + m);
    seq.n = beam::step(lp, blank, chars.data(), m, seq.cur.data(), seq.n, seq.nxt.data(), seq.heap.data(), K,
                       seq.scratch.data(), seq.tree, none);
    par.n = parallel_step(par, lp, blank, chars.data(), m);
    EXPECT(seq.n == par.n, "K=%d C=%lld t=%lld: %d vs %d beams", K, (long long)C, (long long)t, seq.n, par.n);
    EXPECT(seq.tree.size == par.tree.size, "K=%d C=%lld t=%lld: tree size", K, (long long)C, (long long)t);
    for (int32_t k = 0; k < std::min(seq.n, par.n); ++k) {
      const beam::Beam &a = seq.nxt[k], &b = par.nxt[k];
      const bool same = a.prefix == b.prefix && (a.pb == b.pb || (std::isnan(a.pb) && std::isnan(b.pb))) &&
                        a.pnb == b.pnb && a.tot == b.tot;
      EXPECT(same, "K=%d C=%lld mode=%d t=%lld beam %d: prefix %d/%d tot %.17g/%.17g", K, (long long)C, mode,
             (long long)t, k, a.prefix, b.prefix, a.tot, b.tot);
    }
    for (int32_t k = 0; k < seq.n; ++k) seq.cur[k] = seq.nxt[k];
    for (int32_t k = 0; k < par.n; ++k) par.cur[k] = par.nxt[k];
    if (seq.n == 0 || par.n == 0) break;
  }
}

}  // namespace

int main() {
  std::mt19937 rng(1234);
  int cases = 0;
  for (int32_t K : {1, 2, 3, 5, 10, 16, 33}) {
    for (int64_t C : {1, 2, 3, 7, 31, 257}) {
      for (int mode = 0; mode < 4; ++mode) {
        for (int64_t T : {1, 2, 9, 26}) {
          run_case(rng, K, C, T, mode);
          ++cases;
        }
      }
    }
  }
  if (g_failures) {
    std::fprintf(stderr, "%d failures\n", g_failures);
    return 1;
  }
  std::printf("ok: %d cases\n", cases);
  return 0;
}
