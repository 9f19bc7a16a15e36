// modReLU, the nonlinearity of unitary/orthogonal RNNs (Arjovsky et al. 2016; expRNN):
//     modReLU(z, b) = sign(z)·max(|z| + b, 0)
// with one bias b per feature (the last dimension of z). This header is its only definition:
// the scalar functions below are what the kernels of mantra::modrelu / modrelu_backward (CPU,
// CUDA) and the fused CPU loops of mantra::orthogonal_rnn compute; everything else calls the
// mantra::modrelu operator.
#pragma once

#include <ATen/ATen.h>
#include <c10/macros/Macros.h>
#include <c10/util/bit_cast.h>

#include <cstdint>

namespace mantra::detail {

// The functions below are written with integer masks on the bit patterns (c10::bit_cast) and
// no floating-point comparison: under the default -ftrapping-math a float compare may raise
// FE_INVALID on NaN, so GCC keeps it as a branch and the CPU row loops would stay scalar
// (measured: the modReLU pass took a third of the GEMM time of the recurrence). With masks the
// float32 loops vectorize. The results are the formulas' bit for bit (tested on ±0, ±∞, NaN).
template <typename T>
struct FloatBits;
template <>
struct FloatBits<float> {
  using U = uint32_t;
  static constexpr U sign = 0x80000000u, inf = 0x7f800000u, one = 0x3f800000u;
};
template <>
struct FloatBits<double> {
  using U = uint64_t;
  static constexpr U sign = 0x8000000000000000ull, inf = 0x7ff0000000000000ull, one = 0x3ff0000000000000ull;
};
// All ones where c holds, else 0.
template <typename U>
C10_HOST_DEVICE inline U all_ones_if(bool c) {
  return U(0) - U(c);
}

// modReLU(z, b), evaluated as torch evaluates the formula above: NaN in z or b gives NaN
// (sign(NaN) is 0, but 0·NaN is NaN), and so does sign(0)·∞:
//   r = |z| + b;  relu = r ≤ 0 ? +0 : r (NaN kept);  copysign(relu, z)·(z ≠ 0 ? 1 : 0).
template <typename T>
C10_HOST_DEVICE inline T modrelu(T z, T b) {
  using F = FloatBits<T>;
  using U = typename F::U;
  const U zu = c10::bit_cast<U>(z), az = zu & ~F::sign;
  const U ru = c10::bit_cast<U>(c10::bit_cast<T>(az) + b);
  // r ≤ 0: sign bit set or +0, and not NaN.
  const U keep = ~(all_ones_if<U>((ru & F::sign) != 0 || ru == 0) & all_ones_if<U>((ru & ~F::sign) <= F::inf));
  return c10::bit_cast<T>((ru & keep & ~F::sign) | (zu & F::sign)) * c10::bit_cast<T>(all_ones_if<U>(az != 0) & F::one);
}

// The derivatives, from the output h = modReLU(z, b) alone (so backward passes need only h):
// ∂h/∂z is 1 where h ≠ 0 and 0 where the unit is cut (h = 0); ∂h/∂b is sign(h). Both are NaN
// where h is NaN, so a NaN forward gives a NaN gradient instead of hiding it.
template <typename T>
C10_HOST_DEVICE inline T modrelu_dz(T h) {
  using F = FloatBits<T>;
  using U = typename F::U;
  const U u = c10::bit_cast<U>(h), a = u & ~F::sign;
  const U nan = all_ones_if<U>(a > F::inf);
  return c10::bit_cast<T>((nan & u) | (~nan & all_ones_if<U>(a != 0) & F::one));
}
template <typename T>
C10_HOST_DEVICE inline T modrelu_db(T h) {
  using F = FloatBits<T>;
  using U = typename F::U;
  const U u = c10::bit_cast<U>(h), a = u & ~F::sign;
  const U nan = all_ones_if<U>(a > F::inf);
  return c10::bit_cast<T>((nan & u) | (~nan & all_ones_if<U>(a != 0) & (F::one | (u & F::sign))));
}

// Argument checks of mantra::modrelu (z (..., H), bias (H,)) and mantra::modrelu_backward
// (grad and result of the shape of z), naming the op, the argument, expected and actual value.
void check_modrelu_arguments(const at::Tensor& z, const at::Tensor& bias, const char* op);
void check_modrelu_backward_arguments(const at::Tensor& grad, const at::Tensor& result, const char* op);

}  // namespace mantra::detail
