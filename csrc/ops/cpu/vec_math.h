#pragma once
// Small vectorisable math shared by the CPU kernels.
#include <cstdint>

namespace cllstr {
namespace ops {
namespace cpu {

// exp(x) for x <= 0 in plain arithmetic the compiler vectorises: 2^(x*log2 e) split into a rounded integer part,
// placed in the exponent bits, and a degree-6 polynomial of the fraction in [-0.5, 0.5] (relative error < 2e-7).
inline float exp_nonpositive(float x) {
  x = x < -87.0f ? -87.0f : x;  // vectorised as a blend (needs -fno-trapping-math, set in setup.py)
  const float t = x * 1.44269504088896341f;
  const float r = (t + 12582912.0f) - 12582912.0f;  // round to nearest integer (1.5 * 2^23 trick)
  const float f = (t - r) * 0.693147180559945309f;  // the fraction, in natural-log units: |f| <= 0.347
  float p = 1.0f / 720.0f;
  p = p * f + 1.0f / 120.0f;
  p = p * f + 1.0f / 24.0f;
  p = p * f + 1.0f / 6.0f;
  p = p * f + 0.5f;
  p = p * f + 1.0f;
  p = p * f + 1.0f;
  const int32_t n = static_cast<int32_t>(r);
  const int32_t bits = (n + 127) << 23;
  return p * __builtin_bit_cast(float, bits);
}

}  // namespace cpu
}  // namespace ops
}  // namespace cllstr
