// C++ unit tests of the CPU kernel of cllstr::ctc_greedy_decode, called through the dispatcher as Python would.
#include <ATen/ATen.h>
#include <ATen/core/dispatch/Dispatcher.h>

#include <cmath>
#include <cstdio>
#include <functional>
#include <string>
#include <tuple>
#include <vector>

namespace {

int g_failures = 0;

#define EXPECT(cond)                                                          \
  do {                                                                        \
    if (!(cond)) {                                                            \
      std::fprintf(stderr, "%s:%d: expectation failed: %s\n", __FILE__, __LINE__, #cond); \
      ++g_failures;                                                           \
    }                                                                         \
  } while (0)

using Out = std::tuple<at::Tensor, at::Tensor, at::Tensor>;

Out decode(const at::Tensor& logits, const at::Tensor& lengths, int64_t blank, bool log_probs) {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("cllstr::ctc_greedy_decode", "")
                       .typed<Out(const at::Tensor&, const at::Tensor&, int64_t, bool)>();
  return op.call(logits, lengths, blank, log_probs);
}

// Straightforward per-sequence reference: arg-max (first on ties), merge repeats, drop blanks; confidence as the
// product of the softmax maxima over the valid steps.
void reference(const at::Tensor& logits, const at::Tensor& lengths, int64_t blank, std::vector<std::vector<int64_t>>& ids,
               std::vector<double>& conf) {
  const auto x = logits.to(at::kDouble).contiguous();
  const auto acc = x.accessor<double, 3>();
  const int64_t B = x.size(0), C = x.size(2);
  ids.assign(B, {});
  conf.assign(B, 1.0);
  for (int64_t b = 0; b < B; ++b) {
    int64_t prev = -1;
    for (int64_t t = 0; t < lengths[b].item<int64_t>(); ++t) {
      int64_t best = 0;
      for (int64_t c = 1; c < C; ++c) best = acc[b][t][c] > acc[b][t][best] ? c : best;
      double s = 0.0;
      for (int64_t c = 0; c < C; ++c) s += std::exp(acc[b][t][c] - acc[b][t][best]);
      conf[b] *= 1.0 / s;
      if (best != blank && best != prev) ids[b].push_back(best);
      prev = best;
    }
  }
}

void check_case(const std::string& name, const at::Tensor& logits, const at::Tensor& lengths, int64_t blank) {
  auto [tokens, out_len, conf] = decode(logits, lengths, blank, false);
  std::vector<std::vector<int64_t>> ids;
  std::vector<double> rconf;
  reference(logits, lengths, blank, ids, rconf);
  const int64_t B = logits.size(0), T = logits.size(1);
  EXPECT(tokens.sizes() == at::IntArrayRef({B, T}));
  for (int64_t b = 0; b < B; ++b) {
    const int64_t n = out_len[b].item<int64_t>();
    bool same = n == static_cast<int64_t>(ids[b].size());
    for (int64_t i = 0; same && i < n; ++i) same = tokens[b][i].item<int64_t>() == ids[b][i];
    for (int64_t i = n; same && i < T; ++i) same = tokens[b][i].item<int64_t>() == blank;
    const double c = conf[b].item<float>();
    const bool close = std::fabs(c - rconf[b]) <= 1e-4 * std::fabs(rconf[b]) + 1e-7;
    if (!same || !close) std::fprintf(stderr, "case %s, sequence %lld differs\n", name.c_str(), (long long)b);
    EXPECT(same);
    EXPECT(close);
  }
}

bool throws_with(const std::function<void()>& fn, const std::string& needle) {
  try {
    fn();
  } catch (const c10::Error& e) {
    return std::string(e.what()).find(needle) != std::string::npos;
  }
  return false;
}

}  // namespace

int main() {
  at::manual_seed(0);
  check_case("odd", at::randn({7, 13, 37}) * 3, at::randint(0, 14, {7}, at::kLong), 0);
  check_case("T1", at::randn({5, 1, 9}), at::ones({5}, at::kLong), 0);
  check_case("max_length_mlt19", at::randn({2, 26, 4680}) * 4, at::full({2}, 26, at::kLong), 0);
  check_case("blank_last", at::randn({4, 11, 23}) * 3, at::full({4}, 11, at::kLong), 22);
  check_case("non_contiguous", (at::randn({9, 6, 15}) * 3).transpose(0, 1), at::full({6}, 9, at::kLong), 0);
  check_case("int32_lengths", at::randn({3, 8, 10}) * 3, at::tensor({8, 0, 5}, at::kInt), 0);

  auto [t0, l0, c0] = decode(at::randn({0, 5, 7}), at::zeros({0}, at::kLong), 0, false);
  EXPECT(t0.size(0) == 0 && l0.size(0) == 0 && c0.size(0) == 0);

  auto all_blank = at::full({2, 6, 5}, -3.0);
  all_blank.select(2, 0).fill_(3.0);
  auto [t1, l1, c1] = decode(all_blank, at::full({2}, 6, at::kLong), 0, false);
  EXPECT(l1.sum().item<int64_t>() == 0);
  EXPECT(t1.eq(0).all().item<bool>());

  // Log-probability input: the confidence is the product of exp(max) without a softmax.
  auto lp = at::randn({3, 7, 11}).log_softmax(-1);
  auto [t2, l2, c2] = decode(lp, at::full({3}, 7, at::kLong), 0, true);
  auto expect = std::get<0>(lp.max(-1)).sum(-1).exp();
  EXPECT(at::allclose(c2, expect.to(at::kFloat), 1e-4, 1e-7));

  // Half precision input decodes like its float32 copy.
  auto h = (at::randn({4, 9, 33}) * 3).to(at::kHalf);
  auto [th, lh, ch] = decode(h, at::full({4}, 9, at::kLong), 0, false);
  auto [tf, lf, cf] = decode(h.to(at::kFloat), at::full({4}, 9, at::kLong), 0, false);
  EXPECT(at::equal(th, tf) && at::equal(lh, lf) && at::allclose(ch, cf, 1e-5, 1e-7));

  const auto x = at::randn({2, 3, 4});
  EXPECT(throws_with([&] { decode(at::randn({2, 3}), at::ones({2}, at::kLong), 0, false); }, "logits must be 3-D"));
  EXPECT(throws_with([&] { decode(x, at::full({2}, 4, at::kLong), 0, false); }, "lengths must be <= T=3"));
  EXPECT(throws_with([&] { decode(x, at::full({2}, -1, at::kLong), 0, false); }, "lengths must be >= 0"));
  EXPECT(throws_with([&] { decode(x, at::ones({2}, at::kLong), 4, false); }, "blank=4 is out of range"));
  EXPECT(throws_with([&] { decode(x.to(at::kDouble), at::ones({2}, at::kLong), 0, false); }, "float32"));
  EXPECT(throws_with([&] { decode(x, at::ones({3}, at::kLong), 0, false); }, "lengths has 3 entries"));

  if (g_failures) {
    std::fprintf(stderr, "test_ctc_greedy_decode: %d expectation(s) failed\n", g_failures);
    return 1;
  }
  std::printf("test_ctc_greedy_decode: all expectations passed\n");
  return 0;
}
