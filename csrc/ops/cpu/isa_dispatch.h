#pragma once
// Run-time choice of the instruction set for small hot CPU functions, by torch's own CPU capability check (cpuinfo,
// capped by ATEN_CPU_CAPABILITY). Not GCC's target_clones: its resolver trusts the OSXSAVE bit, which some VMs hide
// while supporting AVX2/AVX-512, and then always runs the baseline clone (measured on this project's CI machine).
//
//   CLLSTR_ALWAYS_INLINE inline float f_body(const float* x, int64_t n) { ... }   // portable C++ the compiler vectorises
//   CLLSTR_ISA_DISPATCH(float, f, (const float* x, int64_t n), (x, n))             // defines f(), AVX-512 / AVX2 / base
#include <ATen/Context.h>

#include <string>

namespace cllstr {
namespace ops {
namespace cpu {

enum class Isa { kBase, kAvx2, kAvx512 };

inline Isa isa() {
  static const Isa level = [] {
    const std::string cap = at::get_cpu_capability();  // "DEFAULT", "AVX2", "AVX512"
    return cap == "AVX512" ? Isa::kAvx512 : cap == "AVX2" ? Isa::kAvx2 : Isa::kBase;
  }();
  return level;
}

}  // namespace cpu
}  // namespace ops
}  // namespace cllstr

#if defined(__GNUC__)
#define CLLSTR_ALWAYS_INLINE __attribute__((always_inline))
#else
#define CLLSTR_ALWAYS_INLINE
#endif

#if defined(__GNUC__) && defined(__x86_64__)
#define CLLSTR_ISA_DISPATCH(ret, name, params, args)                                                                  \
  __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma"))) inline ret name##_avx512 params {            \
    return name##_body args;                                                                                          \
  }                                                                                                                   \
  __attribute__((target("avx2,fma"))) inline ret name##_avx2 params { return name##_body args; }                      \
  inline ret name params {                                                                                            \
    switch (::cllstr::ops::cpu::isa()) {                                                                              \
      case ::cllstr::ops::cpu::Isa::kAvx512:                                                                          \
        return name##_avx512 args;                                                                                    \
      case ::cllstr::ops::cpu::Isa::kAvx2:                                                                            \
        return name##_avx2 args;                                                                                      \
      default:                                                                                                        \
        return name##_body args;                                                                                      \
    }                                                                                                                 \
  }
#else
#define CLLSTR_ISA_DISPATCH(ret, name, params, args)                                                                  \
  inline ret name params { return name##_body args; }
#endif
