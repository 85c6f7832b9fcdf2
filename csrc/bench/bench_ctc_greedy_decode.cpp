// Micro-benchmark of the CPU kernel of cllstr::ctc_greedy_decode at the MLT19 shape (B=256, T=25, C=4680, fp32),
// against the same work in ATen ops (softmax, max, product); prints the ratio measured in this run.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <ATen/core/dispatch/Dispatcher.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <tuple>

namespace {

double best_of(int repeat, const std::function<void()>& fn) {
  double best = 1e30;
  fn();
  for (int r = 0; r < repeat; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    fn();
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  return best;
}

}  // namespace

int main() {
  using Out = std::tuple<at::Tensor, at::Tensor, at::Tensor>;
  auto op = c10::Dispatcher::singleton()
                .findSchemaOrThrow("cllstr::ctc_greedy_decode", "")
                .typed<Out(const at::Tensor&, const at::Tensor&, int64_t, bool)>();
  const int64_t B = 256, T = 25, C = 4680;
  const auto x = at::randn({B, T, C});
  const auto lengths = at::full({B}, T, at::kLong);
  const double native = best_of(7, [&] { op.call(x, lengths, 0, false); });
  const double aten = best_of(7, [&] {
    auto [pmax, ids] = x.softmax(-1).max(-1);
    auto conf = pmax.prod(-1);
    (void)ids;
    (void)conf;
  });
  std::printf("ctc_greedy_decode B=%lld T=%lld C=%lld fp32, %d threads\n", (long long)B, (long long)T, (long long)C,
              at::get_num_threads());
  std::printf("  native %.0f seq/s, aten softmax+max+prod %.0f seq/s, ratio %.2fx\n", B / native, B / aten,
              aten / native);
  return 0;
}
